// Resampling of images, volumes and sequences (torch.nn.functional.interpolate): x is
// [N, C, *spatial] with 1 to 3 spatial axes, resized to a given size or by scale factors.
//
// Every mode but 'area' is separable: the output along one spatial axis is a weighted sum of a
// few input rows along it (1 for nearest, 2 for linear, 4 for cubic), with indices and weights
// that depend only on that axis's sizes. So each axis in turn is one indexSelect per tap times a
// weight vector broadcast along the axis, summed: a composite of primitives, differentiable in
// both modes on every backend (the gradient of indexSelect adds each output row back into its
// input rows, which is upsampling's backward pass).
//
// The indices and weights follow PyTorch's CPU kernels (aten/src/ATen/native/UpSample.h), in the
// input's precision (float32 inputs: float32 arithmetic, as its scalar_t):
//   nearest:        src = min(floor(dst · scale), in − 1), scale = in/out, or 1/scale_factor when
//                   a factor is given (with PyTorch's shortcuts: out = in copies, out = 2·in halves);
//   nearest-exact:  src = min(floor((dst + 0.5) · scale), in − 1);
//   linear:         src = scale · (dst + 0.5) − 0.5 clamped at 0 (align_corners false) or
//                   dst · (in − 1)/(out − 1) (true); rows floor(src) and the next (or itself at
//                   the end), weights 1 − λ and λ;
//   cubic:          the same source position without the clamp, rows floor(src) − 1 … + 2 clamped
//                   into the input, Keys' coefficients with A = −0.75 (bicubic);
//   area:           adaptive average pooling to the output size (what PyTorch runs).
import type { Tensor } from '../../core/tensor.js';
import { check, fmtShape } from '../../core/errors.js';
import { isFloating } from '../../core/dtype.js';
import { tensor } from '../creation.js';
import { add, mul } from '../elementwise.js';
import { reshape } from '../shape.js';
import { indexSelect } from '../indexing.js';
import { adaptiveAvgPoolNd } from './pool.js';

export type InterpolateMode = 'nearest' | 'nearest-exact' | 'linear' | 'bilinear' | 'bicubic' | 'trilinear' | 'area';

export interface InterpolateOptions {
  /** Output spatial size (one number for every axis, or one per axis). Exactly one of size and scaleFactor. */
  size?: number | readonly number[];
  /** Multiplier of each spatial size (the output is floor(in · factor)). */
  scaleFactor?: number | readonly number[];
  /** Default 'nearest'. linear needs 1 spatial axis, bilinear and bicubic 2, trilinear 3. */
  mode?: InterpolateMode;
  /** linear modes and bicubic only: map the corner pixels' centres onto each other (default false). */
  alignCorners?: boolean;
  /**
   * With scaleFactor: compute the source positions from the output size (in/out) rather than from
   * the factor given (PyTorch's recompute_scale_factor). Default false.
   */
  recomputeScaleFactor?: boolean;
}

const SPATIAL_AXES: Partial<Record<InterpolateMode, number>> = { linear: 1, bilinear: 2, bicubic: 2, trilinear: 3 };

/** One axis's resampling: for each tap, the input row of every output row and its weight (undefined: weight 1). */
interface AxisTaps {
  indices: Int32Array[];
  weights: (Float64Array | undefined)[];
}

/** Resizes the spatial axes of x [N, C, *spatial] (torch.nn.functional.interpolate). */
export function interpolate(x: Tensor, options: InterpolateOptions): Tensor {
  const mode = options.mode ?? 'nearest';
  const op = `interpolate(${mode})`;
  const spatial = x.rank - 2;
  check(spatial >= 1 && spatial <= 3, op, () => `expects [N, C, *spatial] with 1 to 3 spatial axes, got shape ${fmtShape(x.shape)}.`);
  check(isFloating(x.dtype), op, () => `needs a floating-point tensor, got ${x.dtype}; cast it first (x.float()).`);
  const wanted = SPATIAL_AXES[mode];
  check(wanted === undefined || wanted === spatial, op, () =>
    `'${mode}' resizes ${wanted} spatial axis${wanted === 1 ? '' : 'es'} ([N, C, ${['L', 'H, W', 'D, H, W'][wanted! - 1]}]), got shape ${fmtShape(x.shape)}${spatial === 1 ? "; use 'linear'" : spatial === 2 ? "; use 'bilinear' or 'bicubic'" : "; use 'trilinear'"}.`);
  const linearish = mode === 'linear' || mode === 'bilinear' || mode === 'trilinear' || mode === 'bicubic';
  check(options.alignCorners === undefined || linearish, op, () => "alignCorners applies to the linear modes and bicubic only; leave it out for 'nearest', 'nearest-exact' and 'area'.");
  const alignCorners = options.alignCorners ?? false;
  check((options.size === undefined) !== (options.scaleFactor === undefined), op, () => 'give exactly one of size and scaleFactor.');
  const inSizes = x.shape.slice(2);
  const perAxis = (v: number | readonly number[], what: string): number[] => {
    const list = typeof v === 'number' ? inSizes.map(() => v) : [...v];
    check(list.length === spatial, op, () => `${what} has ${list.length} entries for ${spatial} spatial axes (input ${fmtShape(x.shape)}).`);
    return list;
  };
  let outSizes: number[];
  let factors: (number | undefined)[];
  if (options.size !== undefined) {
    outSizes = perAxis(options.size, 'size');
    check(outSizes.every((s) => Number.isInteger(s) && s >= 1), op, () => `size must be positive integers, got [${outSizes.join(', ')}].`);
    factors = outSizes.map(() => undefined);
  } else {
    const f = perAxis(options.scaleFactor!, 'scaleFactor');
    check(f.every((s) => Number.isFinite(s) && s > 0), op, () => `scaleFactor must be positive and finite, got [${f.join(', ')}].`);
    outSizes = f.map((s, i) => Math.floor(inSizes[i]! * s));
    check(outSizes.every((s) => s >= 1), op, () => `scaleFactor [${f.join(', ')}] makes an empty output from spatial size ${fmtShape(inSizes)}.`);
    factors = options.recomputeScaleFactor === true ? f.map(() => undefined) : f;
  }
  check(inSizes.every((s) => s >= 1), op, () => `cannot resize an empty spatial axis (input ${fmtShape(x.shape)}).`);
  if (mode === 'area') return adaptiveAvgPoolNd(op, spatial, x, outSizes);

  const round = x.dtype === 'float32' || x.dtype === 'float16' || x.dtype === 'bfloat16' ? Math.fround : (v: number) => v;
  let y = x;
  for (let a = 0; a < spatial; a++) {
    const axis = 2 + a, n = inSizes[a]!, m = outSizes[a]!;
    const taps = mode === 'nearest' || mode === 'nearest-exact' ? nearestTaps(n, m, factors[a], mode === 'nearest-exact')
      : mode === 'bicubic' ? cubicTaps(n, m, factors[a], alignCorners, round)
        : linearTaps(n, m, factors[a], alignCorners, round);
    y = resampleAxis(y, axis, taps);
  }
  return y;
}

/** Σ over the taps of indexSelect(x, axis, idx) · weight broadcast along the axis. */
function resampleAxis(x: Tensor, axis: number, taps: AxisTaps): Tensor {
  const opts = { backend: x.backend };
  let out: Tensor | undefined;
  taps.indices.forEach((idx, k) => {
    let term = indexSelect(x, axis, tensor(idx, { dtype: 'int32', ...opts }));
    const w = taps.weights[k];
    if (w !== undefined) {
      const shape = x.shape.map((_, i) => (i === axis ? w.length : 1));
      term = mul(term, reshape(tensor(w, { dtype: x.dtype, ...opts }), shape));
    }
    out = out === undefined ? term : add(out, term);
  });
  return out!;
}

/** The scale of source positions per output position: from the factor given, else in/out (float32, as PyTorch's nearest). */
function nearestScale(n: number, m: number, factor: number | undefined): number {
  return Math.fround(factor !== undefined ? 1 / factor : n / m);
}

function nearestTaps(n: number, m: number, factor: number | undefined, exact: boolean): AxisTaps {
  const idx = new Int32Array(m);
  const scale = nearestScale(n, m, factor);
  for (let d = 0; d < m; d++) {
    if (!exact && m === n) idx[d] = d;
    else if (!exact && m === 2 * n) idx[d] = d >> 1;
    else idx[d] = Math.min(Math.floor(Math.fround((exact ? d + 0.5 : d) * scale)), n - 1);
  }
  return { indices: [idx], weights: [undefined] };
}

/** Source position scale for the linear and cubic modes (area_pixel_compute_scale), in the input's precision. */
function areaScale(n: number, m: number, factor: number | undefined, alignCorners: boolean, round: (v: number) => number): number {
  if (alignCorners) return m > 1 ? round((n - 1) / (m - 1)) : 0;
  return round(factor !== undefined ? 1 / factor : n / m);
}

function sourcePosition(scale: number, d: number, alignCorners: boolean, cubic: boolean, round: (v: number) => number): number {
  if (alignCorners) return round(scale * d);
  const src = round(round(scale * round(d + 0.5)) - 0.5);
  return !cubic && src < 0 ? 0 : src;
}

function linearTaps(n: number, m: number, factor: number | undefined, alignCorners: boolean, round: (v: number) => number): AxisTaps {
  const scale = areaScale(n, m, factor, alignCorners, round);
  const i0 = new Int32Array(m), i1 = new Int32Array(m), w0 = new Float64Array(m), w1 = new Float64Array(m);
  for (let d = 0; d < m; d++) {
    const src = sourcePosition(scale, d, alignCorners, false, round);
    const lo = Math.min(Math.floor(src), n - 1);
    const lambda = Math.min(Math.max(round(src - lo), 0), 1);
    i0[d] = lo;
    i1[d] = lo + (lo < n - 1 ? 1 : 0);
    w0[d] = round(1 - lambda);
    w1[d] = lambda;
  }
  return { indices: [i0, i1], weights: [w0, w1] };
}

/** Keys' cubic convolution weights for offset t in [0, 1] with A = −0.75 (PyTorch's
 * get_cubic_upsample_coefficients, operation by operation in the input's precision). */
function cubicCoefficients(t: number, round: (v: number) => number): number[] {
  const A = -0.75; // A + 2, A + 3, 5A, 8A and 4A are exact in float32
  // ((A + 2)·v − (A + 3))·v·v + 1, for |v| ≤ 1
  const near = (v: number): number => round(round(round(round(round((A + 2) * v) - (A + 3)) * v) * v) + 1);
  // ((A·v − 5A)·v + 8A)·v − 4A, for 1 < |v| < 2
  const far = (v: number): number => round(round(round(round(round(round(A * v) - 5 * A) * v) + 8 * A) * v) - 4 * A);
  const opposite = round(1 - t);
  return [far(round(t + 1)), near(t), near(opposite), far(round(opposite + 1))];
}

function cubicTaps(n: number, m: number, factor: number | undefined, alignCorners: boolean, round: (v: number) => number): AxisTaps {
  const scale = areaScale(n, m, factor, alignCorners, round);
  const indices = [0, 1, 2, 3].map(() => new Int32Array(m));
  const weights = [0, 1, 2, 3].map(() => new Float64Array(m));
  for (let d = 0; d < m; d++) {
    const src = sourcePosition(scale, d, alignCorners, true, round);
    const base = Math.min(Math.floor(src), n - 1);
    const coefficients = cubicCoefficients(Math.min(Math.max(round(src - base), 0), 1), round);
    for (let k = 0; k < 4; k++) {
      indices[k]![d] = Math.min(Math.max(base - 1 + k, 0), n - 1);
      weights[k]![d] = coefficients[k]!;
    }
  }
  return { indices, weights };
}
