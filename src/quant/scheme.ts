// What a quantization is: bits, granularity (per-tensor, per-channel, group-wise), symmetric or
// affine, and how the range is calibrated. Options given by a user are resolved once, against the
// tensor's shape, into a QuantSpec that every other file trusts.
//
// Integer ranges. Symmetric quantization uses the restricted signed range [-(2^(b-1) - 1), 2^(b-1) - 1]
// ([-127, 127] for int8, [-7, 7] for int4), so that the grid is symmetric around zero and the zero
// point is 0 (bitsandbytes' absmax, torch's qint8 with reduce-range-free symmetric weights minus the
// -128 code). Affine (asymmetric) quantization uses the unsigned range [0, 2^b - 1] with an integer
// zero point, like torch's quint8.
import { TesseraError, fmtShape } from '../core/errors.js';

export type QuantBits = 4 | 8;
export type QuantScheme = 'per-tensor' | 'per-channel' | 'group';
/**
 * How each slice's range is chosen: 'minmax' (the observed min and max, torch's MinMaxObserver),
 * 'percentile' (clip at a percentile of the values, which ignores a few outliers) or 'mse' (search
 * the clipping ratio that minimises the squared round-trip error of the slice).
 */
export type Calibration = 'minmax' | 'percentile' | 'mse';

export interface QuantizeOptions {
  /** 8 (int8) or 4 (int4, two values per byte). Default 8. */
  bits?: QuantBits;
  /** Default 'per-tensor' for quantize(); quantizeModel defaults to 'per-channel'. */
  scheme?: QuantScheme;
  /** per-channel: the axis that keeps its own scale (default 0, a Linear weight's output features). */
  axis?: number;
  /**
   * group: consecutive elements of the last axis that share a scale (default 32). When it does not
   * divide the axis, the last group of each row is shorter (see groupsPerRow).
   */
  groupSize?: number;
  /** Zero point 0 and a signed range (default true); false: affine, unsigned range and a zero point. */
  symmetric?: boolean;
  calibration?: Calibration;
  /** calibration 'percentile': the percentile of |x| (symmetric) or of x at each end kept (default 99.99). */
  percentile?: number;
}

/** A resolved quantization: every field set and checked against the tensor's shape. */
export interface QuantSpec {
  readonly bits: QuantBits;
  readonly scheme: QuantScheme;
  /** per-channel: the (non-negative) axis; group: the last axis; per-tensor: -1. */
  readonly axis: number;
  /** group: the group size; per-channel: the axis length is not used here (0); per-tensor: 0. */
  readonly groupSize: number;
  readonly symmetric: boolean;
}

/** The integer range [qmin, qmax] of a (bits, symmetric) pair. */
export function quantRange(bits: QuantBits, symmetric: boolean): { qmin: number; qmax: number } {
  return symmetric ? { qmin: -(2 ** (bits - 1) - 1), qmax: 2 ** (bits - 1) - 1 } : { qmin: 0, qmax: 2 ** bits - 1 };
}

const SCHEMES: readonly QuantScheme[] = ['per-tensor', 'per-channel', 'group'];

/** Checks options against a shape and dtype and fills in the defaults. */
export function resolveSpec(op: string, shape: readonly number[], dtype: string, opts: QuantizeOptions = {}): QuantSpec {
  const where = `input of shape ${fmtShape(shape)} (${dtype})`;
  const bits = opts.bits ?? 8;
  if (bits !== 8 && bits !== 4) throw new TesseraError(`${op}: bits must be 8 or 4, got ${String(bits)}. int8 keeps ~2 decimal digits per value; int4 halves the size again at a larger error.`);
  const scheme = opts.scheme ?? 'per-tensor';
  if (!SCHEMES.includes(scheme)) throw new TesseraError(`${op}: scheme must be one of ${SCHEMES.join(', ')}, got '${String(scheme)}'.`);
  const symmetric = opts.symmetric ?? true;
  const rank = shape.length;
  if (scheme === 'per-tensor') return { bits, scheme, axis: -1, groupSize: 0, symmetric };
  if (rank === 0) throw new TesseraError(`${op}: scheme '${scheme}' needs a tensor with at least one axis; the ${where} is a scalar. Use scheme 'per-tensor'.`);
  if (scheme === 'per-channel') {
    const raw = opts.axis ?? 0;
    if (!Number.isInteger(raw) || raw < -rank || raw >= rank) {
      throw new TesseraError(`${op}: per-channel axis ${raw} is out of range for the ${where}; give an axis in [${-rank}, ${rank - 1}] (0 = a Linear weight's output features).`);
    }
    return { bits, scheme, axis: raw < 0 ? raw + rank : raw, groupSize: 0, symmetric };
  }
  const groupSize = opts.groupSize ?? 32;
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new TesseraError(`${op}: groupSize must be a positive integer, got ${groupSize} (typical: 32, 64, 128).`);
  }
  return { bits, scheme, axis: rank - 1, groupSize, symmetric };
}

/** The shape of the scales (and zero points) of a spec on a tensor of `shape`. */
export function scalesShape(spec: QuantSpec, shape: readonly number[]): number[] {
  if (spec.scheme === 'per-tensor') return [1];
  if (spec.scheme === 'per-channel') return [shape[spec.axis]!];
  return [...shape.slice(0, -1), groupsPerRow(spec, shape[shape.length - 1]!)];
}

/**
 * Groups along a row of length k. The group size need not divide k: the last group of each row then
 * holds the remainder (784 inputs in groups of 32 = 24 groups of 32 and one of 16), as if the row
 * were padded with zeros to a whole group, without storing the padding. Groups never straddle rows.
 */
export function groupsPerRow(spec: QuantSpec, k: number): number {
  return Math.max(1, Math.ceil(k / spec.groupSize));
}

/** A JSON-able description of a spec (for checkpoints). */
export interface QuantSpecJson {
  bits: number;
  scheme: string;
  axis: number;
  groupSize: number;
  symmetric: boolean;
}

export function specToJson(spec: QuantSpec): QuantSpecJson {
  return { bits: spec.bits, scheme: spec.scheme, axis: spec.axis, groupSize: spec.groupSize, symmetric: spec.symmetric };
}

/** A spec read back from a checkpoint, re-validated against the tensor's shape. */
export function specFromJson(op: string, json: QuantSpecJson, shape: readonly number[]): QuantSpec {
  const opts: QuantizeOptions = { bits: json.bits as QuantBits, scheme: json.scheme as QuantScheme, symmetric: json.symmetric };
  if (json.scheme === 'per-channel') opts.axis = json.axis;
  if (json.scheme === 'group') opts.groupSize = json.groupSize;
  return resolveSpec(op, shape, 'float32', opts);
}
