// ONNX activations and the softmax family (Softmax, LogSoftmax, Hardmax), over tessera's
// activation ops (src/ops/nn/activations.ts, src/ops/elementwise.ts) or short compositions.

import type { Tensor } from '../../core/tensor.js';
import { isFloating } from '../../core/dtype.js';
import { normalizeAxis } from '../../core/shape.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { registerOnnxOp } from '../registry.js';

/** Registers an activation: f of the single input and the node (for attributes). */
function activation(opType: string, f: (x: Tensor, ctx: NodeContext) => Tensor): void {
  registerOnnxOp(opType, (ctx) => [f(ctx.tensor(0), ctx)]);
}

activation('Relu', (x) => ops.relu(x));
// LeakyRelu: x for x >= 0, alpha·x below (alpha 0.01).
activation('LeakyRelu', (x, ctx) => ops.leakyRelu(x, ctx.float('alpha', 0.01)));
// Elu: x for x > 0, alpha·(exp(x) − 1) otherwise (alpha 1).
activation('Elu', (x, ctx) => ops.elu(x, ctx.float('alpha', 1)));
// Selu: gamma·elu(x, alpha), with ONNX's float32 defaults of the self-normalising constants.
activation('Selu', (x, ctx) => ops.mul(ops.elu(x, ctx.float('alpha', 1.67326319217681884765625)), ctx.float('gamma', 1.05070102214813232421875)));
// Celu: max(0, x) + min(0, alpha·(exp(x/alpha) − 1)) (alpha 1).
activation('Celu', (x, ctx) => ops.celu(x, ctx.float('alpha', 1)));
activation('Sigmoid', (x) => ops.sigmoid(x));
// HardSigmoid: max(0, min(1, alpha·x + beta)) (alpha 0.2, beta 0.5).
activation('HardSigmoid', (x, ctx) => ops.clamp(ops.add(ops.mul(x, ctx.float('alpha', 0.2)), ctx.float('beta', 0.5)), 0, 1));
// HardSwish: x·max(0, min(1, x/6 + 1/2)).
activation('HardSwish', (x) => ops.hardswish(x));
// Softplus: log(exp(x) + 1) (linear above x = 20, where the two agree to float precision).
activation('Softplus', (x) => ops.softplus(x));
// Softsign: x/(1 + |x|).
activation('Softsign', (x) => ops.softsign(x));
// ThresholdedRelu: x for x > alpha, else 0 (alpha 1).
activation('ThresholdedRelu', (x, ctx) => ops.threshold(x, ctx.float('alpha', 1), 0));
// Gelu (opset 20): exact (erf) or, with approximate='tanh', the tanh approximation.
activation('Gelu', (x, ctx) => {
  const approximate = ctx.string('approximate', 'none');
  if (approximate === 'none' || approximate === 'tanh') return ops.gelu(x, approximate);
  return ctx.fail(`approximate must be 'none' or 'tanh', got '${approximate}'`);
});
// Mish: x·tanh(softplus(x)).
activation('Mish', (x) => ops.mish(x));

// PRelu: x for x > 0, slope·x otherwise, slope broadcasting to X (numpy rules, so one slope per
// channel comes as shape [C, 1, 1]); integer types too (opset 16).
registerOnnxOp('PRelu', (ctx) => {
  const x = ctx.tensor(0);
  return [ops.where(ops.gt(x, 0), x, ops.mul(x, ctx.tensor(1)))];
});

// Shrink: x − bias above lambd, x + bias below −lambd, 0 between (lambd 0.5, bias 0); integer
// inputs keep their type (the float bias is applied, then truncated).
activation('Shrink', (x, ctx) => {
  const lambd = ctx.float('lambd', 0.5);
  const bias = ctx.float('bias', 0);
  const y = ops.where(ops.gt(x, lambd), ops.sub(x, bias), ops.where(ops.lt(x, -lambd), ops.add(x, bias), 0));
  return isFloating(x.dtype) ? y : ops.cast(y, x.dtype);
});

// ---- softmax family --------------------------------------------------------------------------

/**
 * Applies f along the node's axis. From opset 13, along `axis` (default −1). Before 13, the input
 * is seen as a 2-D matrix [d0·…·d(axis−1), d(axis)·…·d(n−1)] (axis default 1) and f runs along its
 * rows, so the result normalises over all the trailing axes together.
 */
function alongAxis(ctx: NodeContext, f: (x: Tensor, axis: number) => Tensor): Tensor {
  const x = ctx.tensor(0);
  if (ctx.opset >= 13) return f(x, ctx.int('axis', -1));
  const axis = ctx.int('axis', 1);
  const start = axis < 0 ? axis + x.rank : axis;
  if (start < 0 || start > x.rank) ctx.fail(`axis ${axis} is out of range for an input of rank ${x.rank}`);
  const rows = x.shape.slice(0, start).reduce((a, d) => a * d, 1);
  const cols = x.shape.slice(start).reduce((a, d) => a * d, 1);
  return ops.reshape(f(ops.reshape(x, [rows, cols]), 1), x.shape);
}

registerOnnxOp('Softmax', (ctx) => [alongAxis(ctx, (x, axis) => ops.softmax(x, axis))]);
registerOnnxOp('LogSoftmax', (ctx) => [alongAxis(ctx, (x, axis) => ops.logSoftmax(x, axis))]);

/** 1 at the first maximum along `axis`, 0 elsewhere, in x's dtype. */
function hardmax(x: Tensor, axis: number): Tensor {
  if (x.rank === 0) return ops.onesLike(x);
  const ax = normalizeAxis(axis, x.rank, 'Hardmax');
  const index = ops.argmax(x, ax, true);
  const n = x.shape[ax]!;
  const positions = ops.reshape(ops.arange(n, undefined, 1, { backend: x.backend }), x.shape.map((d, i) => (i === ax ? n : 1)));
  return ops.cast(ops.eq(positions, index), x.dtype);
}

registerOnnxOp('Hardmax', (ctx) => [alongAxis(ctx, hardmax)]);
