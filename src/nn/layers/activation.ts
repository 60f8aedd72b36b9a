// Activation modules (stateless wrappers of the elementwise functions).
import type { Tensor } from '../../core/tensor.js';
import { gelu, leakyRelu, relu, sigmoid, silu, tanh } from '../../ops/elementwise.js';
import { logSoftmax, softmax } from '../../ops/nn/index.js';
import { Module } from '../module.js';

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
