// quantize(x, options) → QuantizedTensor and dequantize(q) → Tensor.
//
//   q = clamp(zero_point + round(x · fp32(1 / scale)), qmin, qmax)      (round half to even, as torch)
//   x̂ = fp32((q − zero_point) · scale)
//
// Every value inside the calibrated range comes back within scale / 2 (plus float32 rounding);
// values clipped by 'percentile' or 'mse' calibration come back at the range's edge. The work runs
// on the host over the tensor's values (quantization is a one-off conversion); the codes, scales and
// zero points are then put on the input's backend.
import { TesseraError, fmtShape } from '../core/errors.js';
import { isFloating, type DType } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { fromValues } from '../ops/creation.js';
import { calibrate, quantizeValue, sliceLayout, sliceOf } from './calibrate.js';
import { packInt4, unpackInt4 } from './int4.js';
import { QuantizedTensor, dataDtypeOf, dataShapeOf } from './quantized-tensor.js';
import { quantRange, resolveSpec, scalesShape, type QuantizeOptions, type QuantSpec } from './scheme.js';

/** Throws a TesseraError naming the first NaN or infinity of `values`. */
function checkFinite(op: string, values: ArrayLike<number>, shape: readonly number[], dtype: DType): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      throw new TesseraError(`${op}: the input of shape ${fmtShape(shape)} (${dtype}) holds ${v} at flat index ${i}; ` +
        'a scale cannot be computed from non-finite values. Find where it came from (a diverged training run, a bad checkpoint), ' +
        'or replace such values first (e.g. t.where(t.isnan(x), 0, x)).');
    }
  }
}

/** Quantizes a floating-point tensor (see QuantizeOptions for the schemes; default 8-bit symmetric per-tensor). */
export function quantize(x: Tensor, options: QuantizeOptions = {}): QuantizedTensor {
  if (!isFloating(x.dtype)) {
    throw new TesseraError(`quantize: the input of shape ${fmtShape(x.shape)} is ${x.dtype}; quantize takes floating-point tensors. Cast it first (x.float()).`);
  }
  const spec = resolveSpec('quantize', x.shape, x.dtype, options);
  const calibration = options.calibration ?? 'minmax';
  if (!['minmax', 'percentile', 'mse'].includes(calibration)) {
    throw new TesseraError(`quantize: calibration must be 'minmax', 'percentile' or 'mse', got '${String(calibration)}'.`);
  }
  const percentile = options.percentile ?? 99.99;
  if (!(percentile > 50 && percentile <= 100)) {
    throw new TesseraError(`quantize: percentile must be in (50, 100], got ${percentile} (99.99 clips the 0.01% largest magnitudes).`);
  }
  const values = x.data();
  checkFinite('quantize', values, x.shape, x.dtype);
  const layout = sliceLayout(spec, x.shape);
  const { scales, zeroPoints } = calibrate(values, layout, spec, calibration, percentile);
  const { qmin, qmax } = quantRange(spec.bits, spec.symmetric);
  const codes = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const s = sliceOf(layout, i);
    codes[i] = quantizeValue(values[i]!, scales[s]!, zeroPoints[s]!, qmin, qmax);
  }
  return fromCodes(codes, scales, spec.symmetric ? undefined : zeroPoints, x.shape, spec, x.backend);
}

/**
 * A QuantizedTensor from unpacked integer codes (row-major, one per element), scales and zero
 * points, on `backend`. For importing weights quantized elsewhere (GPTQ, AWQ, torch).
 */
export function fromCodes(codes: ArrayLike<number>, scales: ArrayLike<number>, zeroPoints: ArrayLike<number> | undefined,
  shape: readonly number[], spec: QuantSpec, backend?: string): QuantizedTensor {
  const opts = backend === undefined ? {} : { backend };
  const k = shape.length === 0 ? 1 : shape[shape.length - 1]!;
  const rows = k === 0 ? 0 : codes.length / k;
  const dtype = dataDtypeOf(spec);
  const data = spec.bits === 4
    ? packInt4(codes, rows, k)
    : dtype === 'int8' ? Int8Array.from(codes) : Uint8Array.from(codes);
  const sshape = scalesShape(spec, shape);
  return new QuantizedTensor(
    fromValues(data, dataShapeOf(spec, shape), dtype, opts),
    fromValues(Float32Array.from(scales), sshape, 'float32', opts),
    zeroPoints === undefined ? undefined : fromValues(Int32Array.from(zeroPoints), sshape, 'int32', opts),
    shape, spec,
  );
}

/** The integer codes of q, unpacked (one per element, row-major). */
export function codesOf(q: QuantizedTensor): Int8Array | Uint8Array {
  const raw = q.data.data() as Int8Array | Uint8Array;
  if (q.spec.bits === 8) return raw;
  return unpackInt4(raw, q.rows, q.rowLength, q.spec.symmetric);
}

export interface DequantizeOptions {
  /** float32 (default) or float64 (a reference: (q − zp) · scale without rounding to float32). */
  dtype?: 'float32' | 'float64';
}

/** The real tensor that q stands for, (q − zero_point) · scale, on q's backend. */
export function dequantize(q: QuantizedTensor, options: DequantizeOptions = {}): Tensor {
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new TesseraError(`dequantize: dtype must be float32 or float64, got '${String(dtype)}'.`);
  }
  const codes = codesOf(q);
  const scales = q.scales.data();
  const zps = q.zeroPoints?.data();
  const layout = sliceLayout(q.spec, q.shape);
  const out = dtype === 'float32' ? new Float32Array(codes.length) : new Float64Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const s = sliceOf(layout, i);
    out[i] = (codes[i]! - (zps === undefined ? 0 : zps[s]!)) * scales[s]!;
  }
  return fromValues(out, q.shape, dtype, { backend: q.data.backend });
}
