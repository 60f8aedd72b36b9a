// Joining, cutting and rearranging tensors: cat stack split chunk pad flip roll repeat
// repeatInterleave tril triu.
// All are composites of primitives (cat, slice, pad, flip, expand, where, gather), so they
// differentiate in both modes for free.
import { type DType, castScalar, isFloating, promoteTypes } from '../core/dtype.js';
import { check, fmtShape } from '../core/errors.js';
import { normalizeAxes, normalizeAxis, shapesEqual } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { bind } from './dispatch.js';
import { arange, tensor } from './creation.js';
import { cast, ge, le, sub, where } from './elementwise.js';
import { clone, expand, narrow, reshape, slice, unsqueeze } from './shape.js';
import { indexSelect } from './indexing.js';

function commonDType(op: string, ts: readonly Tensor[]): DType {
  check(ts.length > 0, op, () => 'needs a non-empty list of tensors.');
  return ts.map((t) => t.dtype).reduce((a, b) => promoteTypes(a, b));
}

/**
 * Concatenates along an existing axis (torch.cat). Dtypes are promoted; like PyTorch, 1-D empty
 * tensors (shape [0]) are skipped whatever the other ranks.
 */
export function cat(tensors: readonly Tensor[], axis = 0): Tensor {
  const dtype = commonDType('cat', tensors);
  const parts = tensors.filter((t) => !(t.rank === 1 && t.shape[0] === 0));
  if (parts.length === 0) return clone(cast(tensors[0]!, dtype));
  const first = parts[0]!;
  check(first.rank > 0, 'cat', () => 'zero-dimensional tensors cannot be concatenated; use stack() or unsqueeze them first.');
  const a = normalizeAxis(axis, first.rank, 'cat');
  for (const t of parts) {
    check(t.rank === first.rank && t.shape.every((d, i) => i === a || d === first.shape[i]), 'cat', () =>
      `tensors must have the same shape except along axis ${axis}, got ${parts.map((p) => fmtShape(p.shape)).join(', ')}.`);
  }
  return bind('cat', parts.map((t) => cast(t, dtype)), { axis: a });
}

/** Joins tensors of one shape along a new axis (torch.stack). */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  commonDType('stack', tensors);
  const shape = tensors[0]!.shape;
  for (const t of tensors) {
    check(shapesEqual(t.shape, shape), 'stack', () =>
      `all tensors must have one shape, got ${tensors.map((p) => fmtShape(p.shape)).join(', ')}.`);
  }
  const a = normalizeAxis(axis, shape.length + 1, 'stack');
  return cat(tensors.map((t) => unsqueeze(t, a)), a);
}

/**
 * Splits into views along `axis` (torch.split): a number gives pieces of that size (the last may be
 * smaller); a list gives the sizes, which must add up to the axis length.
 */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  check(x.rank > 0, 'split', () => 'cannot split a zero-dimensional tensor.');
  const a = normalizeAxis(axis, x.rank, 'split');
  const n = x.shape[a]!;
  let list: number[];
  if (typeof sizes === 'number') {
    check(Number.isInteger(sizes) && sizes >= 0 && (sizes > 0 || n === 0), 'split', () => `split size must be a positive integer, got ${sizes}.`);
    list = [];
    if (n === 0) list.push(0);
    for (let s = 0; s < n; s += sizes) list.push(Math.min(sizes, n - s));
  } else {
    list = [...sizes];
    const total = list.reduce((p, q) => p + q, 0);
    check(list.every((s) => Number.isInteger(s) && s >= 0) && total === n, 'split', () =>
      `sizes ${JSON.stringify(list)} add up to ${total}, but axis ${axis} of shape ${fmtShape(x.shape)} has length ${n}.`);
  }
  const out: Tensor[] = [];
  let start = 0;
  for (const s of list) {
    out.push(narrow(x, a, start, s));
    start += s;
  }
  return out;
}

/** Splits into `chunks` views of size ceil(n / chunks) along `axis` (torch.chunk; may return fewer). */
export function chunk(x: Tensor, chunks: number, axis = 0): Tensor[] {
  check(Number.isInteger(chunks) && chunks > 0, 'chunk', () => `chunks must be a positive integer, got ${chunks}.`);
  check(x.rank > 0, 'chunk', () => 'cannot chunk a zero-dimensional tensor.');
  const a = normalizeAxis(axis, x.rank, 'chunk');
  const n = x.shape[a]!;
  const size = Math.ceil(n / chunks);
  if (size === 0) return Array.from({ length: chunks }, () => narrow(x, a, 0, 0));
  return split(x, size, a);
}

export type PadMode = 'constant' | 'reflect' | 'replicate' | 'circular';

/** Source positions along one axis of length n for a reflect/replicate/circular pad. */
function padIndices(mode: Exclude<PadMode, 'constant'>, n: number, before: number, after: number): number[] {
  const out: number[] = [];
  for (let i = -before; i < n + after; i++) {
    if (mode === 'replicate') out.push(Math.min(Math.max(i, 0), n - 1));
    else if (mode === 'circular') out.push(((i % n) + n) % n);
    else {
      // Reflect without repeating the edge: period 2(n-1).
      const period = 2 * (n - 1);
      let j = period === 0 ? 0 : ((i % period) + period) % period;
      if (j >= n) j = period - j;
      out.push(j);
    }
  }
  return out;
}

/**
 * Pads like torch.nn.functional.pad: `pads` holds [before, after] pairs starting from the LAST axis
 * ([left, right, top, bottom, ...]). Negative amounts crop. Modes: constant (with `value`),
 * reflect, replicate, circular.
 */
export function pad(x: Tensor, pads: readonly number[], mode: PadMode = 'constant', value = 0): Tensor {
  check(pads.length % 2 === 0 && pads.length / 2 <= x.rank, 'pad', () =>
    `pads must hold [before, after] pairs for at most ${x.rank} axes (shape ${fmtShape(x.shape)}), got ${JSON.stringify(pads)}.`);
  check(pads.every(Number.isInteger), 'pad', () => `pad amounts must be integers, got ${JSON.stringify(pads)}.`);
  const pairs: [number, number][] = x.shape.map(() => [0, 0]);
  for (let k = 0; k < pads.length / 2; k++) pairs[x.rank - 1 - k] = [pads[2 * k]!, pads[2 * k + 1]!];
  // Crop first (negative amounts), then grow.
  let y = x;
  pairs.forEach(([b, e], axis) => {
    if (b >= 0 && e >= 0) return;
    const n = y.shape[axis]!;
    const start = Math.max(0, -b), stop = n - Math.max(0, -e);
    check(stop >= start, 'pad', () => `cropping ${-Math.min(b, 0)} + ${-Math.min(e, 0)} elements from axis ${axis} of size ${n} leaves a negative size.`);
    y = slice(y, axis, start, stop);
  });
  const grow: [number, number][] = pairs.map(([b, e]) => [Math.max(b, 0), Math.max(e, 0)]);
  if (grow.every(([b, e]) => b === 0 && e === 0)) return y === x ? clone(x) : y;
  if (mode === 'constant') {
    check(isFloating(y.dtype) || Number.isInteger(value) || y.dtype === 'bool', 'pad', () =>
      `value ${value} cannot be stored in a ${y.dtype} tensor; cast the tensor to float first.`);
    return bind('pad', [y], { pads: grow, value: castScalar(value, y.dtype) });
  }
  grow.forEach(([b, e], axis) => {
    if (b === 0 && e === 0) return;
    const n = y.shape[axis]!;
    check(n > 0, 'pad', () => `${mode} padding needs a non-empty axis ${axis} (shape ${fmtShape(y.shape)}).`);
    if (mode === 'reflect') {
      check(b < n && e < n, 'pad', () =>
        `reflect padding (${b}, ${e}) must be smaller than the size ${n} of axis ${axis} (shape ${fmtShape(y.shape)}); use replicate or pad less.`);
    }
    if (mode === 'circular') {
      check(b <= n && e <= n, 'pad', () => `circular padding (${b}, ${e}) cannot exceed the size ${n} of axis ${axis}.`);
    }
    const idx = padIndices(mode, n, b, e);
    y = indexSelect(y, axis, tensor(idx, { dtype: 'int32', backend: y.backend }));
  });
  return y;
}

/** Reverses the order of elements along the given axes (a copy, as in torch.flip). */
export function flip(x: Tensor, axes: number | readonly number[]): Tensor {
  const ax = normalizeAxes(axes, x.rank, 'flip');
  // A 0-d tensor accepts axis 0 / -1 and has nothing to reverse.
  return ax.length === 0 || x.rank === 0 ? clone(x) : bind('flip', [x], { axes: ax });
}

/**
 * Tiles the tensor `reps[i]` times along each axis (torch.Tensor.repeat); `reps` may have more
 * entries than the rank (new leading axes).
 */
export function repeat(x: Tensor, reps: readonly number[]): Tensor {
  check(reps.length >= x.rank, 'repeat', () =>
    `needs at least ${x.rank} repetition counts for shape ${fmtShape(x.shape)}, got ${JSON.stringify(reps)}.`);
  check(reps.every((r) => Number.isInteger(r) && r >= 0), 'repeat', () => `repetition counts must be non-negative integers, got ${JSON.stringify(reps)}.`);
  const shape = [...new Array<number>(reps.length - x.rank).fill(1), ...x.shape];
  // [s0, s1, ...] → [1, s0, 1, s1, ...] → expand to [r0, s0, r1, s1, ...] → merge pairs.
  const interleaved = shape.flatMap((d) => [1, d]);
  const expanded = expand(reshape(x, interleaved), shape.flatMap((d, i) => [reps[i]!, d]));
  const out = reshape(expanded, shape.map((d, i) => d * reps[i]!));
  // Like torch.Tensor.repeat, always a copy (all-ones repetitions would otherwise give a view).
  return out.storage === x.storage ? clone(out) : out;
}

/**
 * Shifts elements along axes, wrapping around (torch.roll): element i moves to (i + shift) mod n.
 * Without axes, the tensor is rolled as if flattened and then given its shape back. A copy.
 */
export function roll(x: Tensor, shifts: number | readonly number[], axes?: number | readonly number[]): Tensor {
  const shiftList = typeof shifts === 'number' ? [shifts] : [...shifts];
  check(shiftList.every((s) => Number.isInteger(s)), 'roll', () => `shifts must be integers, got ${JSON.stringify(shifts)}.`);
  if (axes === undefined) {
    check(shiftList.length === 1, 'roll', () => `without axes, one shift rolls the flattened tensor; got ${shiftList.length} shifts. Pass the axes.`);
    return reshape(roll(reshape(x, [x.size]), shiftList[0]!, 0), x.shape);
  }
  // In the order given (normalizeAxes would sort them away from their shifts).
  const axisList = (typeof axes === 'number' ? [axes] : [...axes]).map((a) => normalizeAxis(a, x.rank, 'roll'));
  check(axisList.length === shiftList.length, 'roll', () =>
    `needs one shift per axis, got ${shiftList.length} shift(s) for ${axisList.length} axis/axes.`);
  let out = x;
  axisList.forEach((a, k) => {
    const n = x.shape[a]!;
    const s = n === 0 ? 0 : ((shiftList[k]! % n) + n) % n;
    // The last s entries come first: [x[n − s:], x[:n − s]].
    if (s !== 0) out = cat([narrow(out, a, n - s, s), narrow(out, a, 0, n - s)], a);
  });
  return out === x ? clone(x) : out;
}

/**
 * Repeats each element `repeats` times along `axis`, next to itself (torch.repeat_interleave):
 * [a, b] → [a, a, b, b]. `repeats` is one count for every element, or one count per element along
 * the axis. Without an axis the tensor is flattened first.
 */
export function repeatInterleave(x: Tensor, repeats: number | readonly number[] | Tensor, axis?: number): Tensor {
  const input = axis === undefined ? reshape(x, [x.size]) : x;
  const a = normalizeAxis(axis ?? 0, input.rank === 0 ? 1 : input.rank, 'repeatInterleave');
  const src = input.rank === 0 ? reshape(input, [1]) : input;
  const n = src.shape[a]!;
  const counts = typeof repeats === 'number' ? new Array<number>(n).fill(repeats)
    : repeats instanceof Tensor ? Array.from(repeats.data(), Number) : [...repeats];
  check(counts.length === n || counts.length === 1, 'repeatInterleave', () =>
    `repeats has ${counts.length} counts for ${n} elements along axis ${axis ?? 0} (shape ${fmtShape(src.shape)}); give one count or one per element.`);
  check(counts.every((c) => Number.isInteger(c) && c >= 0), 'repeatInterleave', () => `repeats must be non-negative integers, got ${JSON.stringify(counts.slice(0, 8))}.`);
  const perElement = counts.length === 1 ? new Array<number>(n).fill(counts[0]!) : counts;
  const index = new Int32Array(perElement.reduce((s, c) => s + c, 0));
  let at = 0;
  perElement.forEach((c, i) => { index.fill(i, at, at + c); at += c; });
  return indexSelect(src, a, tensor(index, { dtype: 'int32', backend: x.backend }));
}

/** Mask over the last two axes: col - row <= diagonal (lower) or >= diagonal (upper). */
function bandMask(x: Tensor, keep: 'lower' | 'upper', diagonal: number): Tensor {
  check(x.rank >= 2, keep === 'lower' ? 'tril' : 'triu', () => `needs at least 2 dimensions, got shape ${fmtShape(x.shape)}.`);
  const rows = x.shape[x.rank - 2]!, cols = x.shape[x.rank - 1]!;
  const r = reshape(arange(rows, undefined, 1, { backend: x.backend }), [rows, 1]);
  const c = reshape(arange(cols, undefined, 1, { backend: x.backend }), [1, cols]);
  const offset = sub(c, r);
  return keep === 'lower' ? le(offset, diagonal) : ge(offset, diagonal);
}

/** Keeps the lower triangle of the last two axes (elements with col - row <= diagonal), zeros elsewhere. */
export function tril(x: Tensor, diagonal = 0): Tensor {
  return where(bandMask(x, 'lower', diagonal), x, x.dtype === 'bool' ? false : 0);
}

/** Keeps the upper triangle of the last two axes (elements with col - row >= diagonal), zeros elsewhere. */
export function triu(x: Tensor, diagonal = 0): Tensor {
  return where(bandMask(x, 'upper', diagonal), x, x.dtype === 'bool' ? false : 0);
}

declare module '../core/tensor.js' {
  interface Tensor {
    split(sizes: number | readonly number[], axis?: number): Tensor[];
    chunk(chunks: number, axis?: number): Tensor[];
    flip(axes: number | readonly number[]): Tensor;
    repeat(reps: readonly number[]): Tensor;
    roll(shifts: number | readonly number[], axes?: number | readonly number[]): Tensor;
    repeatInterleave(repeats: number | readonly number[] | Tensor, axis?: number): Tensor;
    tril(diagonal?: number): Tensor;
    triu(diagonal?: number): Tensor;
  }
}

const P = Tensor.prototype;
P.split = function (s, a) { return split(this, s, a); };
P.chunk = function (c, a) { return chunk(this, c, a); };
P.flip = function (a) { return flip(this, a); };
P.repeat = function (r) { return repeat(this, r); };
P.roll = function (s, a) { return roll(this, s, a); };
P.repeatInterleave = function (r, a) { return repeatInterleave(this, r, a); };
P.tril = function (d) { return tril(this, d); };
P.triu = function (d) { return triu(this, d); };
