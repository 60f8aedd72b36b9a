// Activation modules: stateless wrappers of the activation functions, and PReLU with its weight.
import { defaultFloatDType } from '../../core/dtype.js';
import { check } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { full } from '../../ops/creation.js';
import { gelu, leakyRelu, relu, sigmoid, silu, softplus, tanh } from '../../ops/elementwise.js';
import {
  celu, elu, glu, hardshrink, hardsigmoid, hardswish, hardtanh, logSigmoid, logSoftmax, mish, prelu, relu6, selu,
  softmax, softmin, softshrink, softsign, tanhshrink, threshold,
} from '../../ops/nn/index.js';
import { Module, Parameter } from '../module.js';
import type { LayerOptions } from './linear.js';

export class ReLU extends Module {
  override forward(x: Tensor): Tensor { return relu(x); }
}
export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') { super(); }
  override forward(x: Tensor): Tensor { return gelu(x, this.approximate); }
}
export class SiLU extends Module {
  override forward(x: Tensor): Tensor { return silu(x); }
}
export class Tanh extends Module {
  override forward(x: Tensor): Tensor { return tanh(x); }
}
export class Sigmoid extends Module {
  override forward(x: Tensor): Tensor { return sigmoid(x); }
}
export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) { super(); }
  override forward(x: Tensor): Tensor { return leakyRelu(x, this.negativeSlope); }
}

/** Softmax along `axis` (default the last). */
export class Softmax extends Module {
  constructor(readonly axis = -1) { super(); }
  override forward(x: Tensor): Tensor { return softmax(x, this.axis); }
}
export class LogSoftmax extends Module {
  constructor(readonly axis = -1) { super(); }
  override forward(x: Tensor): Tensor { return logSoftmax(x, this.axis); }
}

export class ELU extends Module {
  constructor(readonly alpha = 1) { super(); }
  override forward(x: Tensor): Tensor { return elu(x, this.alpha); }
}
export class SELU extends Module {
  override forward(x: Tensor): Tensor { return selu(x); }
}
export class CELU extends Module {
  constructor(readonly alpha = 1) { super(); }
  override forward(x: Tensor): Tensor { return celu(x, this.alpha); }
}
export class Mish extends Module {
  override forward(x: Tensor): Tensor { return mish(x); }
}
export class Hardtanh extends Module {
  constructor(readonly minVal = -1, readonly maxVal = 1) { super(); }
  override forward(x: Tensor): Tensor { return hardtanh(x, this.minVal, this.maxVal); }
}
export class ReLU6 extends Module {
  override forward(x: Tensor): Tensor { return relu6(x); }
}
export class Hardswish extends Module {
  override forward(x: Tensor): Tensor { return hardswish(x); }
}
export class Hardsigmoid extends Module {
  override forward(x: Tensor): Tensor { return hardsigmoid(x); }
}
export class Softsign extends Module {
  override forward(x: Tensor): Tensor { return softsign(x); }
}
export class Tanhshrink extends Module {
  override forward(x: Tensor): Tensor { return tanhshrink(x); }
}
export class Softshrink extends Module {
  constructor(readonly lambd = 0.5) { super(); }
  override forward(x: Tensor): Tensor { return softshrink(x, this.lambd); }
}
export class Hardshrink extends Module {
  constructor(readonly lambd = 0.5) { super(); }
  override forward(x: Tensor): Tensor { return hardshrink(x, this.lambd); }
}
/** x where x > threshold, else value (both required, as in torch.nn.Threshold). */
export class Threshold extends Module {
  constructor(readonly threshold: number, readonly value: number) { super(); }
  override forward(x: Tensor): Tensor { return threshold(x, this.threshold, this.value); }
}
/** Gated linear unit over `axis` (default the last). */
export class GLU extends Module {
  constructor(readonly axis = -1) { super(); }
  override forward(x: Tensor): Tensor { return glu(x, this.axis); }
}
/** softmax(−x) along `axis` (default the last). */
export class Softmin extends Module {
  constructor(readonly axis = -1) { super(); }
  override forward(x: Tensor): Tensor { return softmin(x, this.axis); }
}
export class LogSigmoid extends Module {
  override forward(x: Tensor): Tensor { return logSigmoid(x); }
}
export class Softplus extends Module {
  constructor(readonly beta = 1, readonly threshold = 20) { super(); }
  override forward(x: Tensor): Tensor { return softplus(x, this.beta, this.threshold); }
}

/**
 * PReLU with a learned slope for x <= 0: one shared (numParameters 1, the default) or one per
 * channel (axis 1 of the input), initialised to `init` (PyTorch's 0.25).
 */
export class PReLU extends Module {
  weight: Parameter;

  constructor(readonly numParameters = 1, init = 0.25, opts: Omit<LayerOptions, 'generator'> = {}) {
    super();
    check(Number.isInteger(numParameters) && numParameters > 0, 'PReLU', () => `numParameters must be a positive integer (1, or the number of channels), got ${numParameters}.`);
    this.weight = new Parameter(full([numParameters], init, { dtype: opts.dtype ?? defaultFloatDType(), backend: opts.backend }));
  }

  override forward(x: Tensor): Tensor { return prelu(x, this.weight); }
}
