// Shape and stride arithmetic shared by tensors, kernels and the compiler.
import { check, fmtShape } from './errors.js';

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C-contiguous) strides in elements. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function isContiguousLayout(shape: Shape, strides: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Normalizes a possibly negative axis against `rank`; throws naming the op when out of range. */
export function normalizeAxis(axis: number, rank: number, op: string): number {
  const r = Math.max(rank, 1);
  check(Number.isInteger(axis) && axis >= -r && axis < r, op,
    () => `axis ${axis} is out of range for a tensor of rank ${rank} (valid: ${-r}..${r - 1}).`);
  return axis < 0 ? axis + r : axis;
}

/** Normalizes and sorts a list of axes (undefined = all axes); rejects repeats. */
export function normalizeAxes(axes: number | readonly number[] | undefined, rank: number, op: string): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => normalizeAxis(a, rank, op));
  const seen = new Set<number>();
  for (const a of out) {
    check(!seen.has(a), op, () => `axis ${a} appears more than once in ${JSON.stringify(list)}.`);
    seen.add(a);
  }
  return out.sort((a, b) => a - b);
}

/** NumPy/PyTorch broadcasting of several shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (d === out[o]) continue;
      if (out[o] === 1) out[o] = d;
      else check(d === 1, op, () =>
        `shapes ${shapes.map(fmtShape).join(' and ')} cannot be broadcast together (dimension ${o - rank} is ${out[o]} vs ${d}). ` +
        'Sizes must match or be 1; use reshape/unsqueeze to line them up.');
    }
  }
  return out;
}

/** Strides that view a tensor of `shape`/`strides` as `target` (broadcast: stride 0 on new or size-1 dims). */
export function broadcastStrides(shape: Shape, strides: readonly number[], target: Shape): number[] {
  const out = new Array<number>(target.length).fill(0);
  const off = target.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 && target[off + i] !== 1 ? 0 : strides[i]!;
  return out;
}

/**
 * Strides for viewing (shape, strides) as newShape without copying, or undefined when the layout
 * does not allow it (then reshape must copy). Same algorithm as PyTorch's computeStride.
 */
export function viewStrides(shape: Shape, strides: readonly number[], newShape: Shape): number[] | undefined {
  const numel = sizeOf(shape);
  if (numel === 0 || shape.length === 0) return contiguousStrides(newShape);
  const newStrides = new Array<number>(newShape.length).fill(0);
  let viewD = newShape.length - 1;
  let chunkBaseStride = strides[strides.length - 1]!;
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorNumel *= shape[d]!;
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorNumel * chunkBaseStride)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] === 1)) {
        newStrides[viewD] = viewNumel * chunkBaseStride;
        viewNumel *= newShape[viewD]!;
        viewD--;
      }
      if (viewNumel !== tensorNumel) return undefined;
      if (d > 0) {
        chunkBaseStride = strides[d - 1]!;
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  if (viewD !== -1) return undefined;
  return newStrides;
}

/** Resolves one -1 in a requested shape against the element count. */
export function inferReshape(op: string, from: Shape, to: readonly number[]): number[] {
  const numel = sizeOf(from);
  let unknown = -1;
  let known = 1;
  to.forEach((d, i) => {
    if (d === -1) {
      check(unknown === -1, op, () => `only one dimension can be -1, got ${fmtShape(to)}.`);
      unknown = i;
    } else {
      check(Number.isInteger(d) && d >= 0, op, () => `invalid size ${d} in ${fmtShape(to)}.`);
      known *= d;
    }
  });
  const out = [...to];
  if (unknown >= 0) {
    check(known !== 0 && numel % known === 0, op, () => `cannot reshape ${fmtShape(from)} (${numel} elements) into ${fmtShape(to)}.`);
    out[unknown] = numel / known;
  }
  check(sizeOf(out) === numel, op, () =>
    `cannot reshape a tensor of shape ${fmtShape(from)} (${numel} elements) into ${fmtShape(to)} (${sizeOf(out)} elements).`);
  return out;
}

/** The elements [lo, hi] a view touches (lo > hi when it touches none). */
export function viewSpan(x: { readonly shape: Shape; readonly strides: readonly number[]; readonly offset: number }): { lo: number; hi: number } {
  let lo = x.offset, hi = x.offset;
  for (let d = 0; d < x.shape.length; d++) {
    const extent = x.shape[d]!;
    if (extent === 0) return { lo: 0, hi: -1 };
    const reach = (extent - 1) * x.strides[d]!;
    if (reach < 0) lo += reach;
    else hi += reach;
  }
  return { lo, hi };
}
