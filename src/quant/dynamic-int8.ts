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
// It runs as the quantizedMatmul primitive: on the wasm backend the kernels in
// backend/wasm/quant-dynamic-int8*.ts compute it; elsewhere the reference kernel does
// (backend/cpu/quantized-kernels.ts), with the same float32 roundings in the same order: both give
// the same bits. Its gradient is the weight-only product's (straight-through: rounding has none). A row holding NaN or ±Inf comes out all NaN (its scale is NaN or Inf).
import { TesseraError, fmtShape } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { DYNAMIC_INT8_MAX_K } from '../backend/wasm/quant-dynamic-int8.js';
import type { QuantizedTensor } from './quantized-tensor.js';
import type { QuantSpec } from './scheme.js';
import { quantizedLinear } from './quantized-linear.js';

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
  // The quantizedMatmul primitive: the wasm kernels for float32 input, the reference elsewhere.
  return quantizedLinear(x, weight, bias, { activations: 'dynamic-int8' });
}

// The formula's pieces on host arrays live with the reference kernel (backend/cpu/quantized-kernels.ts).
export { quantizeRowsInt8, int8MatmulInt32, scaleInt32, dynamicInt8Reference } from '../backend/cpu/quantized-kernels.js';
