// Calibration: from the values of each slice (the whole tensor, one channel, or one group) to its
// scale and zero point.
//
//   symmetric:  amax = max(|lo|, |hi|),  scale = amax / qmax,                      zero point 0
//   affine:     lo ≤ 0 ≤ hi (the range always holds 0, so 0 is exact),
//               scale = (hi − lo) / (qmax − qmin),  zero point = qmin − round(lo / scale), clamped
//
// with scale raised to at least float32 epsilon (an all-zero slice gets scale = eps and quantizes to
// the zero point: no division by zero, and dequantize gives exact zeros). These are the formulas
// of torch's MinMaxObserver / PerChannelMinMaxObserver given quant_min/quant_max = our ranges, in
// the same float32 arithmetic, so the scales and zero points are bit-equal to torch's.
import { groupsPerRow, quantRange, type Calibration, type QuantSpec } from './scheme.js';
import { roundHalfEven } from './rounding.js';

/** torch.finfo(torch.float32).eps, the observers' lower bound on a scale. */
export const SCALE_EPS = 2 ** -23;

/**
 * How a flat (row-major) index maps to its slice: floor(i / div) % count, or for groups
 * floor(i / rowLength) · groupsPerRow + floor((i mod rowLength) / div).
 */
export interface SliceLayout {
  readonly count: number;
  readonly div: number;
  /** Groups only: the last axis' length and the groups along it. */
  readonly rowLength?: number;
  readonly groupsPerRow?: number;
}

export function sliceLayout(spec: QuantSpec, shape: readonly number[]): SliceLayout {
  let n = 1;
  for (const d of shape) n *= d;
  if (spec.scheme === 'per-tensor') return { count: 1, div: Math.max(n, 1) };
  if (spec.scheme === 'group') {
    const k = shape[shape.length - 1]!, g = groupsPerRow(spec, k);
    return { count: k === 0 ? 0 : (n / k) * g, div: spec.groupSize, rowLength: k, groupsPerRow: g };
  }
  let inner = 1;
  for (let d = spec.axis + 1; d < shape.length; d++) inner *= shape[d]!;
  return { count: shape[spec.axis]!, div: inner };
}

export function sliceOf(layout: SliceLayout, i: number): number {
  if (layout.rowLength !== undefined) {
    const row = Math.floor(i / layout.rowLength);
    return row * layout.groupsPerRow! + Math.floor((i - row * layout.rowLength) / layout.div);
  }
  return Math.floor(i / layout.div) % layout.count;
}

export interface SliceParams {
  scales: Float32Array;
  /** Integer zero points (all 0 when symmetric). */
  zeroPoints: Int32Array;
}

/** Scale and zero point of one range [lo, hi] (float32 arithmetic, as torch's observers). */
export function paramsOfRange(lo: number, hi: number, spec: QuantSpec): { scale: number; zeroPoint: number } {
  const f = Math.fround;
  const { qmin, qmax } = quantRange(spec.bits, spec.symmetric);
  const lo0 = Math.min(f(lo), 0), hi0 = Math.max(f(hi), 0);
  if (spec.symmetric) {
    const amax = Math.max(-lo0, hi0);
    return { scale: Math.max(f(amax / qmax), SCALE_EPS), zeroPoint: 0 };
  }
  const scale = Math.max(f(f(hi0 - lo0) / (qmax - qmin)), SCALE_EPS);
  const zp = qmin - roundHalfEven(f(lo0 / scale));
  return { scale, zeroPoint: Math.min(Math.max(zp, qmin), qmax) };
}

/** The integer of x on the grid (scale, zeroPoint): clamp(zp + nearbyint(x · (1/scale)), qmin, qmax), as torch. */
export function quantizeValue(x: number, scale: number, zeroPoint: number, qmin: number, qmax: number): number {
  const invScale = Math.fround(1 / scale);
  const q = zeroPoint + roundHalfEven(Math.fround(x * invScale));
  return q < qmin ? qmin : q > qmax ? qmax : q;
}

/** Per slice: the min and max of its values. */
function minMax(values: ArrayLike<number>, layout: SliceLayout): { lo: Float64Array; hi: Float64Array } {
  const lo = new Float64Array(layout.count).fill(Infinity);
  const hi = new Float64Array(layout.count).fill(-Infinity);
  for (let i = 0; i < values.length; i++) {
    const s = sliceOf(layout, i), v = values[i]!;
    if (v < lo[s]!) lo[s] = v;
    if (v > hi[s]!) hi[s] = v;
  }
  for (let s = 0; s < layout.count; s++) if (lo[s] === Infinity) lo[s] = hi[s] = 0; // empty tensor
  return { lo, hi };
}

/** The values of each slice, gathered (for the calibrations that look at more than the extremes). */
function gatherSlices(values: ArrayLike<number>, layout: SliceLayout): Float64Array[] {
  const counts = new Int32Array(layout.count);
  for (let i = 0; i < values.length; i++) counts[sliceOf(layout, i)]!++;
  const out = Array.from(counts, (c) => new Float64Array(c));
  counts.fill(0);
  for (let i = 0; i < values.length; i++) {
    const s = sliceOf(layout, i);
    out[s]![counts[s]!++] = values[i]!;
  }
  return out;
}

/** The p-th percentile (0..100) of sorted values, interpolated linearly (numpy's default). */
function percentileOfSorted(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const pos = (p / 100) * (sorted.length - 1);
  const i = Math.floor(pos), frac = pos - i;
  return i + 1 < sorted.length ? sorted[i]! + frac * (sorted[i + 1]! - sorted[i]!) : sorted[i]!;
}

/** Ratios of the min/max range tried by the 'mse' calibration (1 = no clipping). */
const MSE_RATIOS = Array.from({ length: 21 }, (_, i) => 1 - i * 0.025);

function roundTripError(xs: Float64Array, lo: number, hi: number, spec: QuantSpec): number {
  const { scale, zeroPoint } = paramsOfRange(lo, hi, spec);
  const { qmin, qmax } = quantRange(spec.bits, spec.symmetric);
  let err = 0;
  for (let i = 0; i < xs.length; i++) {
    const d = xs[i]! - (quantizeValue(xs[i]!, scale, zeroPoint, qmin, qmax) - zeroPoint) * scale;
    err += d * d;
  }
  return err;
}

/** Scales and zero points of every slice of `values` under `spec`. */
export function calibrate(values: ArrayLike<number>, layout: SliceLayout, spec: QuantSpec, calibration: Calibration = 'minmax', percentile = 99.99): SliceParams {
  let { lo, hi } = minMax(values, layout);
  if (calibration === 'percentile') {
    const slices = gatherSlices(values, layout);
    slices.forEach((xs, s) => {
      if (spec.symmetric) {
        const mags = Float64Array.from(xs, Math.abs).sort();
        const a = percentileOfSorted(mags, percentile);
        lo[s] = -a;
        hi[s] = a;
      } else {
        xs.sort();
        lo[s] = percentileOfSorted(xs, 100 - percentile);
        hi[s] = percentileOfSorted(xs, percentile);
      }
    });
  } else if (calibration === 'mse') {
    const slices = gatherSlices(values, layout);
    lo = Float64Array.from(lo);
    hi = Float64Array.from(hi);
    slices.forEach((xs, s) => {
      let best = Infinity, bestRatio = 1;
      for (const r of MSE_RATIOS) {
        const e = roundTripError(xs, r * lo[s]!, r * hi[s]!, spec);
        if (e < best) { best = e; bestRatio = r; }
      }
      lo[s] = bestRatio * lo[s]!;
      hi[s] = bestRatio * hi[s]!;
    });
  }
  const scales = new Float32Array(layout.count);
  const zeroPoints = new Int32Array(layout.count);
  for (let s = 0; s < layout.count; s++) {
    const p = paramsOfRange(lo[s]!, hi[s]!, spec);
    scales[s] = p.scale;
    zeroPoints[s] = p.zeroPoint;
  }
  return { scales, zeroPoints };
}
