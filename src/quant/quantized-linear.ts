// QuantizedLinear: y = x · dequant(W)ᵀ + b with W stored quantized (int8, or int4 packed two per
// byte; per-tensor, per-channel or group scales), for inference, like torch.ao's weight-only /
// dynamic quantized Linear and bitsandbytes' Linear8bitLt/Linear4bit.
//
// The product is one primitive, quantizedMatmul (ops/primitives.ts), so eager calls, traced graphs
// (which keep the packed codes as constants, not a dequantized float32 weight) and autodiff take one
// path. Its kernels: on the wasm backend, for float32 inputs, the fused ones
// (backend/wasm/quant-matmul.ts: codes decoded in registers for small batches, decoded panels +
// SGEMM for large ones; quant-dynamic-int8.ts for dynamic int8); elsewhere the reference
// (backend/cpu/quantized-kernels.ts), equal to the fused path up to float32 summation order.
//
// Input scale (AWQ, awq.ts). A layer may carry a per-input-feature scale applied before the product,
// y = (x ⊙ inputScale) · dequant(W)ᵀ + b, like AutoAWQ's ScaledActivation: AWQ quantizes W·diag(s)
// and the layer must then see x / s. AutoAWQ folds 1/s into the previous LayerNorm or Linear where
// the graph allows; tessera has no map of which module feeds which, so the scale stays here, as
// one elementwise multiply (an ordinary op, so eager, jit and autodiff take it like any other) in
// front of the unchanged quantizedMatmul kernels.
//
// Gradients. The layer has no trainable parameters (the codes are buffers). The input gets its
// gradient (dL/dx = dL/dy · dequant(W), the transposed product) — enough to train layers before it,
// or to take input gradients of a quantized model; with dynamic int8 it is the same weight-only
// product (straight-through: rounding the input has no gradient).
import { TesseraError, fmtShape } from '../core/errors.js';
import { itemsize, isFloating } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { bind } from '../ops/dispatch.js';
import { cast, mul } from '../ops/elementwise.js';
import { ones, zeros } from '../ops/creation.js';
import { Module } from '../nn/module.js';
import { QuantizedTensor, dataDtypeOf, dataShapeOf } from './quantized-tensor.js';
import { quantize } from './quantize.js';
import { scalesShape, type QuantizeOptions, type QuantSpec } from './scheme.js';
import { checkDynamicInt8Weight, type ActivationQuant } from './dynamic-int8.js';

/**
 * y = x · dequant(w)ᵀ + bias for x of shape [..., k] and a quantized weight of shape [n, k]
 * (the functional form of QuantizedLinear, like torch.nn.functional.linear).
 */
export function quantizedLinear(x: Tensor, weight: QuantizedTensor, bias?: Tensor, options: QuantizedLinearCallOptions = {}): Tensor {
  if (weight.shape.length !== 2) {
    throw new TesseraError(`quantizedLinear: the weight must be 2-D [outFeatures, inFeatures]; this one has shape ${fmtShape(weight.shape)}.`);
  }
  const [n, k] = weight.shape as [number, number];
  if (x.rank === 0 || x.shape[x.rank - 1] !== k) {
    throw new TesseraError(`quantizedLinear: input of shape ${fmtShape(x.shape)} (${x.dtype}) should have ${k} features in its last dimension (the weight is ${fmtShape(weight.shape)}).`);
  }
  if (!isFloating(x.dtype)) {
    throw new TesseraError(`quantizedLinear: input of shape ${fmtShape(x.shape)} is ${x.dtype}; pass floating-point activations (x.float()).`);
  }
  if (x.backend !== weight.data.backend) {
    throw new TesseraError(`quantizedLinear: the input lives on '${x.backend}' but the quantized weight on '${weight.data.backend}'; move the layer with .to('${x.backend}') (or the input with .to('${weight.data.backend}')).`);
  }
  if (bias !== undefined && (bias.rank !== 1 || bias.shape[0] !== n)) {
    throw new TesseraError(`quantizedLinear: bias of shape ${fmtShape(bias.shape)} should be [${n}].`);
  }
  const activations = options.activations ?? 'none';
  if (activations !== 'none' && activations !== 'dynamic-int8') {
    throw new TesseraError(`quantizedLinear: activations must be 'none' or 'dynamic-int8', got ${JSON.stringify(activations)}.`);
  }
  if (activations === 'dynamic-int8') checkDynamicInt8Weight('quantizedLinear', weight.spec, weight.shape);
  const inputScale = options.inputScale;
  if (inputScale !== undefined) {
    checkInputScale('quantizedLinear', inputScale, k, weight.data.backend);
    x = mul(x, inputScale.dtype === x.dtype ? inputScale : cast(inputScale, x.dtype));
  }
  // One primitive (eager, traced and differentiated alike): the fused wasm kernels where they apply,
  // the reference kernel elsewhere; a traced graph keeps the packed codes, not a float32 copy.
  const spec = weight.spec;
  // The bias rides along into the kernel (one op per layer: at batch 1 a separate add would cost as
  // much as the product).
  const b = bias === undefined || bias.dtype === x.dtype ? bias : cast(bias, x.dtype);
  const inputs = [x, weight.data, weight.scales, ...(weight.zeroPoints === undefined ? [] : [weight.zeroPoints]), ...(b === undefined ? [] : [b])];
  return bind('quantizedMatmul', inputs, {
    bits: spec.bits, symmetric: spec.symmetric, scheme: spec.scheme, axis: spec.axis, groupSize: spec.groupSize,
    n, k, activations, transposed: false, bias: b !== undefined,
  });
}


/** Options of one quantizedLinear call. */
export interface QuantizedLinearCallOptions {
  /**
   * 'none' (default): float activations, weight-only quantization. 'dynamic-int8': the input is
   * quantized per row to int8 on the fly and multiplied in int32 (docs/quantization.md); needs an
   * 8-bit symmetric per-channel or per-tensor weight.
   */
  activations?: ActivationQuant;
  /**
   * A per-input-feature scale [k] the input is multiplied by before the product (AWQ's 1/s; see
   * the module comment). Floating point, on the weight's backend.
   */
  inputScale?: Tensor;
}

/** Throws unless `scale` is a floating-point [k] tensor on `backend`. */
function checkInputScale(op: string, scale: Tensor, k: number, backend: string): void {
  if (scale.rank !== 1 || scale.shape[0] !== k || !isFloating(scale.dtype)) {
    throw new TesseraError(`${op}: inputScale of shape ${fmtShape(scale.shape)} (${scale.dtype}) should be a floating-point vector [${k}], one factor per input feature.`);
  }
  if (scale.backend !== backend) {
    throw new TesseraError(`${op}: inputScale lives on '${scale.backend}' but the quantized weight on '${backend}'; put both on one backend (.to('${backend}')).`);
  }
}

/** The options of QuantizedLinear.fromLinear and quantizeModel (quantize's, defaulting to per-channel, plus the activation mode). */
export interface LinearQuantizeOptions extends QuantizeOptions {
  /** How forward treats the input: 'none' (default, weight-only) or 'dynamic-int8'. */
  activations?: ActivationQuant;
}

/** A Linear's weight and bias, as QuantizedLinear.fromLinear reads them (nn.Linear fits). */
export interface LinearLike {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
}

export class QuantizedLinear extends Module {
  /** The quantized weight's codes, scales and zero points, as buffers (saved in the state dict). */
  weight_q!: Tensor;
  weight_scale!: Tensor;
  weight_zero_point: Tensor | undefined;
  bias: Tensor | undefined;
  /** AWQ's per-input-feature factor (x ⊙ input_scale goes into the product), or undefined. */
  input_scale: Tensor | undefined;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    weight: QuantizedTensor,
    bias?: Tensor,
    options: QuantizedLinearCallOptions = {},
  ) {
    super();
    if (weight.shape.length !== 2 || weight.shape[0] !== outFeatures || weight.shape[1] !== inFeatures) {
      throw new TesseraError(`QuantizedLinear: the quantized weight has shape ${fmtShape(weight.shape)}; a layer ${inFeatures} → ${outFeatures} needs [${outFeatures}, ${inFeatures}].`);
    }
    this.spec = weight.spec;
    const activations = options.activations ?? 'none';
    if (activations !== 'none' && activations !== 'dynamic-int8') {
      throw new TesseraError(`QuantizedLinear: activations must be 'none' or 'dynamic-int8', got ${JSON.stringify(activations)}.`);
    }
    if (activations === 'dynamic-int8') checkDynamicInt8Weight('QuantizedLinear', weight.spec, weight.shape);
    this.activations = activations;
    this.registerBuffer('weight_q', weight.data);
    this.registerBuffer('weight_scale', weight.scales);
    if (weight.zeroPoints !== undefined) this.registerBuffer('weight_zero_point', weight.zeroPoints);
    // The bias stays in floating point (it is n values) and is a buffer: nothing here trains.
    this.registerBuffer('bias', bias?.detach());
    // Registered only when present, so that state dicts of layers without one keep their keys.
    if (options.inputScale !== undefined) {
      checkInputScale('QuantizedLinear', options.inputScale, inFeatures, weight.data.backend);
      this.registerBuffer('input_scale', options.inputScale.detach());
    }
  }

  /** How the weight is quantized. */
  readonly spec: QuantSpec;

  /** How forward treats the input: 'none' (weight-only) or 'dynamic-int8' (int8 × int8 → int32). */
  readonly activations: ActivationQuant;

  /** The quantized weight (a view of the current buffers, which to() and loadStateDict may replace). */
  get weight(): QuantizedTensor {
    return new QuantizedTensor(this.weight_q, this.weight_scale, this.weight_zero_point, [this.outFeatures, this.inFeatures], this.spec);
  }

  /** Quantizes a Linear's weight (per output channel by default) and keeps its bias. */
  static fromLinear(linear: LinearLike, options: LinearQuantizeOptions = {}): QuantizedLinear {
    const { activations, ...qopts } = options;
    const opts: QuantizeOptions = { scheme: 'per-channel', axis: 0, ...qopts };
    const q = quantize(linear.weight.detach(), opts);
    const bias = linear.bias === undefined ? undefined : linear.bias.detach();
    return new QuantizedLinear(linear.inFeatures, linear.outFeatures, q, bias === undefined ? undefined : bias.dtype === 'float32' || bias.dtype === 'float64' ? bias : cast(bias, 'float32'), { activations });
  }

  /** An all-zero layer of this geometry and spec, to load a state dict into (see prepareQuantized). */
  static empty(inFeatures: number, outFeatures: number, spec: QuantSpec,
    options: { bias?: boolean; backend?: string; activations?: ActivationQuant; inputScale?: boolean } = {}): QuantizedLinear {
    const shape = [outFeatures, inFeatures];
    const create = options.backend === undefined ? {} : { backend: options.backend };
    const sshape = scalesShape(spec, shape);
    const q = new QuantizedTensor(
      zeros(dataShapeOf(spec, shape), { dtype: dataDtypeOf(spec), ...create }),
      zeros(sshape, { dtype: 'float32', ...create }),
      spec.symmetric ? undefined : zeros(sshape, { dtype: 'int32', ...create }),
      shape, spec,
    );
    return new QuantizedLinear(inFeatures, outFeatures, q, options.bias === false ? undefined : zeros([outFeatures], { dtype: 'float32', ...create }), {
      activations: options.activations,
      inputScale: options.inputScale === true ? ones([inFeatures], { dtype: 'float32', ...create }) : undefined,
    });
  }

  /** Bytes of the weight (codes, scales, zero points), bias and input scale. */
  get nbytes(): number {
    const bytes = (t: Tensor | undefined) => (t === undefined ? 0 : t.size * itemsize(t.dtype));
    return this.weight.nbytes + bytes(this.bias) + bytes(this.input_scale);
  }

  override forward(x: Tensor): Tensor {
    if (x.shape[x.rank - 1] !== this.inFeatures) {
      throw new TesseraError(`QuantizedLinear: input of shape ${fmtShape(x.shape)} has ${x.shape[x.rank - 1]} features in its last dimension; this layer expects ${this.inFeatures}.`);
    }
    return quantizedLinear(x, this.weight, this.bias, { activations: this.activations, inputScale: this.input_scale });
  }
}

