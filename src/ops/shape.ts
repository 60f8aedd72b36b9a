// Views and basic data movement: reshape, permute, transpose, expand, squeeze, unsqueeze, flatten,
// slicing with negative indices and steps, sliding windows, contiguous, clone, detach.
import { check, fmtShape } from '../core/errors.js';
import { inferReshape, normalizeAxes, normalizeAxis, shapesEqual } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { bind } from './dispatch.js';

/** A view with a new shape when the layout allows (else a copy), like torch.reshape. One dim may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const target = inferReshape('reshape', x.shape, shape);
  return shapesEqual(target, x.shape) ? x : bind('reshape', [x], { shape: target });
}

/** Like reshape, but refuses to copy (torch.Tensor.view). */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  const target = inferReshape('view', x.shape, shape);
  if (!x.isContiguous()) {
    const probe = bind('reshape', [x], { shape: target });
    check(probe.storage === x.storage, 'view', () =>
      `a tensor of shape ${fmtShape(x.shape)} with strides ${fmtShape(x.strides)} cannot be viewed as ${fmtShape(target)} without copying; use reshape() (which copies) or contiguous() first.`);
    return probe;
  }
  return shapesEqual(target, x.shape) ? x : bind('reshape', [x], { shape: target });
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  check(perm.length === x.rank, 'permute', () => `needs ${x.rank} axes for shape ${fmtShape(x.shape)}, got ${JSON.stringify(perm)}.`);
  const p = perm.map((a) => normalizeAxis(a, x.rank, 'permute'));
  return p.every((a, i) => a === i) ? x : bind('permute', [x], { perm: p });
}

/** Swaps two axes (defaults: the last two, like .mT). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  // Axes are checked even for 0-d and 1-D tensors (where the only valid swap is a no-op), so
  // x.mT of a vector fails as in PyTorch instead of silently returning the vector.
  const a = normalizeAxis(dim0, x.rank, 'transpose');
  const b = normalizeAxis(dim1, x.rank, 'transpose');
  if (x.rank < 2) return x;
  const perm = [...x.shape.keys()];
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** Broadcasts to `shape` without copying; -1 keeps a dimension. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const off = shape.length - x.rank;
  check(off >= 0, 'expand', () => `cannot expand shape ${fmtShape(x.shape)} to fewer dims ${fmtShape(shape)}.`);
  const target = shape.map((d, i) => (d === -1 ? (check(i >= off, 'expand', () => `-1 is not allowed for new leading dims in ${fmtShape(shape)}.`), x.shape[i - off]!) : d));
  return shapesEqual(target, x.shape) ? x : bind('expand', [x], { shape: target });
}

/** Removes size-1 dims (all, or the given ones; a named dim that is not 1 is kept, as in PyTorch). */
export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  const drop = axes === undefined ? [...x.shape.keys()].filter((i) => x.shape[i] === 1) : normalizeAxes(axes, x.rank, 'squeeze').filter((i) => x.shape[i] === 1);
  if (drop.length === 0) return x;
  return reshape(x, x.shape.filter((_, i) => !drop.includes(i)));
}

/** Inserts a size-1 dim at `axis` (which may be -1 for last). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis(axis, x.rank + 1, 'unsqueeze');
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

/** Merges dims startDim..endDim into one. */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.rank === 0) return reshape(x, [1]);
  const s = normalizeAxis(startDim, x.rank, 'flatten');
  const e = normalizeAxis(endDim, x.rank, 'flatten');
  check(s <= e, 'flatten', () => `startDim ${startDim} comes after endDim ${endDim}.`);
  const merged = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(x, [...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)]);
}

/** One axis of a slice: a single index (removes the axis), a [start, stop, step] range, or null (all). */
export type SliceSpec = number | null | readonly [number | null | undefined, (number | null)?, (number | null)?];

/**
 * Zero-copy slicing, one spec per leading axis (missing trailing axes are kept whole). Negative
 * indices count from the end; out-of-range bounds are clipped like Python slices; steps must be >= 1.
 * `x.at(0, [1, null, 2])` is x[0, 1::2].
 */
export function at(x: Tensor, ...specs: SliceSpec[]): Tensor {
  check(specs.length <= x.rank, 'at', () => `${specs.length} indices given for a tensor of rank ${x.rank} (shape ${fmtShape(x.shape)}).`);
  const starts: number[] = [], steps: number[] = [], sizes: number[] = [];
  const dropped: number[] = [];
  x.shape.forEach((n, i) => {
    const spec = specs[i];
    if (spec === undefined || spec === null) {
      starts.push(0); steps.push(1); sizes.push(n);
    } else if (typeof spec === 'number') {
      check(Number.isInteger(spec) && spec >= -n && spec < n, 'at', () => `index ${spec} is out of range for axis ${i} of size ${n}.`);
      starts.push(spec < 0 ? spec + n : spec); steps.push(1); sizes.push(1);
      dropped.push(i);
    } else {
      const [a, b, c] = spec;
      const step = c ?? 1;
      check(Number.isInteger(step) && step >= 1, 'at', () => `step must be a positive integer, got ${step} (negative steps: use flip).`);
      const clip = (v: number): number => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
      const start = a === null || a === undefined ? 0 : clip(a);
      const stop = b === null || b === undefined ? n : clip(b);
      const size = Math.max(0, Math.ceil((stop - start) / step));
      starts.push(size === 0 ? 0 : start); steps.push(step); sizes.push(size);
    }
  });
  let out = x;
  if (!(starts.every((s) => s === 0) && steps.every((s) => s === 1) && shapesEqual(sizes, x.shape))) {
    out = bind('slice', [x], { starts, steps, sizes });
  }
  return dropped.length > 0 ? reshape(out, out.shape.filter((_, i) => !dropped.includes(i))) : out;
}

/** Elements start..stop (exclusive, negative allowed) with `step` along one axis. */
export function slice(x: Tensor, axis: number, start?: number | null, stop?: number | null, step = 1): Tensor {
  const a = normalizeAxis(axis, x.rank, 'slice');
  const specs: SliceSpec[] = x.shape.map(() => null);
  specs[a] = [start ?? null, stop ?? null, step];
  return at(x, ...specs);
}

/** `length` elements from `start` along `axis` (torch.narrow). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normalizeAxis(axis, x.rank, 'narrow');
  const n = x.shape[a]!;
  const s = start < 0 ? start + n : start;
  check(s >= 0 && length >= 0 && s + length <= n, 'narrow', () => `start ${start} + length ${length} exceeds axis ${axis} of size ${n}.`);
  return slice(x, a, s, s + length);
}

/** Sliding windows of `size` every `step` along `axis`, as a new last dim (zero-copy, torch.Tensor.unfold). */
export function unfold(x: Tensor, axis: number, size: number, step: number): Tensor {
  return bind('unfold', [x], { axis: normalizeAxis(axis, x.rank, 'unfold'), size, step });
}

/** The same values in a contiguous layout (no copy when already contiguous). */
export function contiguous(x: Tensor): Tensor {
  return x.isContiguous() ? x : bind('contiguous', [x], {});
}

/** A copy with its own storage; gradients flow through it. */
export function clone(x: Tensor): Tensor {
  return bind('contiguous', [x], {});
}

/** The same data cut off from autodiff (shares storage; requiresGrad false). */
export function detach(x: Tensor): Tensor {
  x.assertAlive('detach');
  return new Tensor(x.storage, x.shape, x.strides, x.offset, x.dtype);
}

declare module '../core/tensor.js' {
  interface Tensor {
    reshape(shape: readonly number[]): Tensor;
    view(shape: readonly number[]): Tensor;
    permute(perm: readonly number[]): Tensor;
    transpose(dim0?: number, dim1?: number): Tensor;
    /** The transpose of the last two dims. */
    readonly mT: Tensor;
    /** The transpose of a 2-D tensor (all dims reversed in general). */
    readonly T: Tensor;
    expand(shape: readonly number[]): Tensor;
    expandAs(other: Tensor): Tensor;
    squeeze(axes?: number | readonly number[]): Tensor;
    unsqueeze(axis: number): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    at(...specs: SliceSpec[]): Tensor;
    slice(axis: number, start?: number | null, stop?: number | null, step?: number): Tensor;
    narrow(axis: number, start: number, length: number): Tensor;
    unfold(axis: number, size: number, step: number): Tensor;
    contiguous(): Tensor;
    clone(): Tensor;
    detach(): Tensor;
  }
}

const P = Tensor.prototype;
P.reshape = function (s) { return reshape(this, s); };
P.view = function (s) { return view(this, s); };
P.permute = function (p) { return permute(this, p); };
P.transpose = function (a, b) { return transpose(this, a, b); };
Object.defineProperty(P, 'mT', { get(this: Tensor) { return transpose(this, -2, -1); } });
Object.defineProperty(P, 'T', { get(this: Tensor) { return permute(this, [...this.shape.keys()].reverse()); } });
P.expand = function (s) { return expand(this, s); };
P.expandAs = function (o) { return expand(this, o.shape); };
P.squeeze = function (a) { return squeeze(this, a); };
P.unsqueeze = function (a) { return unsqueeze(this, a); };
P.flatten = function (s, e) { return flatten(this, s, e); };
P.at = function (...specs) { return at(this, ...specs); };
P.slice = function (a, s, e, st) { return slice(this, a, s, e, st); };
P.narrow = function (a, s, l) { return narrow(this, a, s, l); };
P.unfold = function (a, s, st) { return unfold(this, a, s, st); };
P.contiguous = function () { return contiguous(this); };
P.clone = function () { return clone(this); };
P.detach = function () { return detach(this); };
