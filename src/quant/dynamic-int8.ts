// Dynamic int8 quantization of a Linear's activations (torch.ao.quantization.quantize_dynamic's
// dynamic quantized Linear): the input is quantized on the fly, per row (per token), to symmetric
// int8 with scale sx = max|x| / 127; the weight is the layer's symmetric int8 codes (per output
// channel or per tensor); the product is summed exactly in int32 and scaled once per output:
//
//   sx[i] = max(fp32(max_k |x[i, k]| / 127), 2^-126)          (2^-126: an all-zero row stays finite)
//   xq[i, k] = nearest_even(fp32(x[i, k] · fp32(1 / sx[i])))   ∈ [−127, 127]
//   acc[i, j] = Σ_k xq[i, k] · wq[j, k]                        (int32, exact for K ≤ 133,144)
//   y[i, j] = fp32(fp32(fp32(acc[i, j]) · sw[j]) · sx[i]) (+ b[j], rounded to fp32)
//
// On the wasm backend the kernels in backend/wasm/quant-dynamic-int8*.ts compute it; elsewhere this
// file's reference does, in plain JavaScript, with the same float32 roundings in the same order:
// both give the same bits. A row holding NaN or ±Inf comes out all NaN (its scale is NaN or Inf).
import { TesseraError, fmtShape } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { sizeOf } from '../core/shape.js';
import { cast } from '../ops/elementwise.js';
import { contiguous } from '../ops/shape.js';
import { fromValues } from '../ops/creation.js';
import { WasmBackend } from '../backend/wasm/backend.js';
import { wasmDynamicInt8, DYNAMIC_INT8_MAX_K } from '../backend/wasm/quant-dynamic-int8.js';
import { DQ_MIN_SCALE } from '../backend/wasm/quant-dynamic-int8-kernel.js';
import type { QuantizedTensor } from './quantized-tensor.js';
import type { QuantSpec } from './scheme.js';
import { roundHalfEven } from './rounding.js';

export { DYNAMIC_INT8_MAX_K };

/** How a QuantizedLinear treats its input: 'none' (float activations, weight-only) or 'dynamic-int8'. */
export type ActivationQuant = 'none' | 'dynamic-int8';

/** Throws unless `spec` is a weight the dynamic int8 path takes: int8, symmetric, per channel (axis 0) or per tensor, K ≤ 133,144. */
export function checkDynamicInt8Weight(op: string, spec: QuantSpec, shape: readonly number[]): void {
  if (spec.bits !== 8 || !spec.symmetric || !(spec.scheme === 'per-tensor' || (spec.scheme === 'per-channel' && spec.axis === 0))) {
    const how = `${spec.bits}-bit ${spec.symmetric ? 'symmetric' : 'affine'} ${spec.scheme}${spec.scheme === 'per-channel' ? ` (axis ${spec.axis})` : spec.scheme === 'group' ? ` (groups of ${spec.groupSize})` : ''}`;
    throw new TesseraError(`${op}: activations 'dynamic-int8' needs an 8-bit symmetric weight, per output channel (axis 0) or per tensor; this one is ${how}. Quantize with { bits: 8, scheme: 'per-channel' }.`);
  }
  const k = shape[1] ?? 0;
  if (k > DYNAMIC_INT8_MAX_K) {
    throw new TesseraError(`${op}: activations 'dynamic-int8' sums K · 127² in int32, so K must be at most ${DYNAMIC_INT8_MAX_K}; this layer has ${k} input features. Use activations 'none'.`);
  }
}

/** Per-row symmetric int8 quantization of m rows of k values (the reference of the wasm dqrows pass). */
export function quantizeRowsInt8(x: ArrayLike<number>, m: number, k: number): { codes: Int8Array; scales: Float32Array } {
  const codes = new Int8Array(m * k);
  const scales = new Float32Array(m);
  for (let i = 0; i < m; i++) {
    let amax = 0;
    for (let p = 0; p < k; p++) amax = Math.max(amax, Math.abs(x[i * k + p]!));
    const sx = Math.max(Math.fround(amax / 127), DQ_MIN_SCALE);
    scales[i] = sx;
    const inv = Math.fround(1 / sx);
    for (let p = 0; p < k; p++) {
      const q = roundHalfEven(Math.fround(x[i * k + p]! * inv));
      codes[i * k + p] = Number.isNaN(q) ? 0 : q;
    }
  }
  return { codes, scales };
}

/** Σ_k a[i, k] · b[j, k] for int8 rows (exact; the reference of the wasm GEMM's int32 sums). */
export function int8MatmulInt32(a: ArrayLike<number>, m: number, b: ArrayLike<number>, n: number, k: number): Int32Array {
  const out = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[j * k + p]!;
      out[i * n + j] = s;
    }
  }
  return out;
}

/** y = fp32(fp32(fp32(acc) · sw[j]) · sx[i]) (+ b[j]): the scaling epilogue, as the kernel rounds it. */
export function scaleInt32(acc: Int32Array, m: number, n: number, sx: ArrayLike<number>, sw: ArrayLike<number>, bias?: ArrayLike<number>): Float32Array {
  const y = new Float32Array(m * n);
  const perTensor = sw.length === 1 && n !== 1;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let v = Math.fround(Math.fround(Math.fround(acc[i * n + j]!) * sw[perTensor ? 0 : j]!) * sx[i]!);
      if (bias !== undefined) v = Math.fround(v + bias[j]!);
      y[i * n + j] = v;
    }
  }
  return y;
}

/**
 * y = dynamic-int8(x) · Wᵀ + bias for x of shape [..., k] and a symmetric int8 weight [n, k]
 * (per channel or per tensor): wasm kernels on the wasm backend (float32 input), the JavaScript
 * reference elsewhere. float32 output (float64 for float64 input, computed the same way).
 * Not differentiable (rounding has no gradient): QuantizedLinear takes the weight-only path when a
 * gradient is needed.
 */
export function dynamicInt8Linear(x: Tensor, weight: QuantizedTensor, bias?: Tensor): Tensor {
  checkDynamicInt8Weight('dynamicInt8Linear', weight.spec, weight.shape);
  const [n, k] = weight.shape as [number, number];
  if (x.rank === 0 || x.shape[x.rank - 1] !== k) {
    throw new TesseraError(`dynamicInt8Linear: input of shape ${fmtShape(x.shape)} should have ${k} features in its last dimension (the weight is ${fmtShape(weight.shape)}).`);
  }
  if (x.dtype !== 'float32' && x.dtype !== 'float64') {
    throw new TesseraError(`dynamicInt8Linear: input of shape ${fmtShape(x.shape)} is ${x.dtype}; pass float32 activations (x.float()).`);
  }
  if (bias !== undefined && (bias.rank !== 1 || bias.shape[0] !== n)) {
    throw new TesseraError(`dynamicInt8Linear: bias of shape ${fmtShape(bias.shape)} should be [${n}].`);
  }
  const m = sizeOf(x.shape.slice(0, -1));
  const outShape = [...x.shape.slice(0, -1), n];
  const be = x.storage.backend;
  if (be instanceof WasmBackend && x.dtype === 'float32' && weight.data.backend === x.backend && (bias === undefined || (bias.dtype === 'float32' && bias.backend === x.backend))) {
    const xc = x.isContiguous() ? x : contiguous(x);
    const bc = bias === undefined || bias.isContiguous() ? bias : contiguous(bias);
    const storage = wasmDynamicInt8(be).run(xc, m, { n, k, codes: weight.data, scales: weight.scales, perTensor: weight.spec.scheme === 'per-tensor' }, bc);
    if (xc !== x) xc.dispose();
    if (bc !== bias) bc?.dispose();
    if (storage !== undefined) return Tensor.fromStorage(storage, outShape, 'float32');
  }
  const xv = x.data();
  const y = dynamicInt8Reference(xv instanceof Float32Array ? xv : Float32Array.from(xv), m, k, weight.data.data() as Int8Array, n, weight.scales.data(), bias?.data());
  const out = fromValues(y, outShape, 'float32', { backend: x.backend });
  return x.dtype === 'float32' ? out : cast(out, x.dtype);
}

/** The whole formula on host arrays: quantize the rows, int32 sums, scale. */
export function dynamicInt8Reference(x: ArrayLike<number>, m: number, k: number, wq: ArrayLike<number>, n: number, sw: ArrayLike<number>, bias?: ArrayLike<number>): Float32Array {
  const { codes, scales } = quantizeRowsInt8(x, m, k);
  return scaleInt32(int8MatmulInt32(codes, m, wq, n, k), m, n, scales, sw, bias);
}
