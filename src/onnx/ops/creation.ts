// ONNX operators that make tensors: Constant, ConstantOfShape, Range, EyeLike, OneHot and the
// Blackman/Hann/Hamming windows.
//
// Sizes and scalar parameters are read to the host and the values built there (they depend on
// nothing but those parameters); OneHot compares its indices with tensor ops, so it runs on the
// indices' backend and its on/off values receive gradients.

import { allocStorage, castScalar, type DType } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';
import { requireStorageDType, type OnnxTensor } from '../value.js';
import { normAxis } from './shape.js';

/** A tensor of the given ONNX type from values computed in float64 (cast to the storage). */
function build(ctx: NodeContext, values: ArrayLike<number>, shape: readonly number[], type: number, backend?: string): OnnxTensor {
  const dtype: DType = requireStorageDType(type, `the output of ${ctx.where}`);
  const data = allocStorage(dtype, values.length);
  for (let i = 0; i < values.length; i++) data[i] = castScalar(values[i]!, dtype);
  return ctx.output(ops.fromValues(data, shape, dtype, backend === undefined ? {} : { backend }), type);
}

// Constant: the tensor in the one attribute given: 'value' (a tensor), 'value_float(s)' (FLOAT
// scalar / 1-D) or 'value_int(s)' (INT64 scalar / 1-D). Strings and sparse tensors are not held.
registerOnnxOp('Constant', (ctx) => {
  const value = ctx.tensorAttr('value');
  if (value !== undefined) return [value];
  const f = ctx.float('value_float');
  if (f !== undefined) return [build(ctx, [f], [], ElemType.FLOAT)];
  const fs = ctx.floatList('value_floats');
  if (fs !== undefined) return [build(ctx, fs, [fs.length], ElemType.FLOAT)];
  const i = ctx.int('value_int');
  if (i !== undefined) return [build(ctx, [i], [], ElemType.INT64)];
  const is = ctx.intList('value_ints');
  if (is !== undefined) return [build(ctx, is, [is.length], ElemType.INT64)];
  if (ctx.hasAttr('value_string') || ctx.hasAttr('value_strings')) ctx.fail('string constants (value_string/value_strings) are not supported: tessera has no string tensors');
  if (ctx.hasAttr('sparse_value')) ctx.fail('sparse_value is not supported: tessera holds dense tensors only');
  return ctx.fail('needs one of the attributes value, value_float(s), value_int(s)');
});

// ConstantOfShape: a tensor of the shape input (INT64 1-D; empty gives a scalar) filled with the
// one element of 'value' (default FLOAT 0), of value's type.
registerOnnxOp('ConstantOfShape', (ctx) => {
  const shape = ctx.ints(0);
  if (shape.some((d) => d < 0)) ctx.fail(`the shape ${JSON.stringify(shape)} has a negative dimension`);
  const value = ctx.tensorAttr('value');
  if (value !== undefined && value.tensor.size !== 1) ctx.fail(`'value' must hold one element, got shape [${value.tensor.shape.join(', ')}]`);
  const fill = value === undefined ? 0 : Number(value.tensor.data()[0]);
  const type = value?.type ?? ElemType.FLOAT;
  const dtype = requireStorageDType(type, `'value' of ${ctx.where}`);
  return [ctx.output(ops.full(shape, fill, { dtype, backend: ctx.tensor(0).backend }), type)];
});

// Range: start, start + delta, ... up to (not including) limit: max(ceil((limit - start) / delta), 0)
// elements of the type of start.
registerOnnxOp('Range', (ctx) => {
  const start = ctx.scalar(0), limit = ctx.scalar(1), delta = ctx.scalar(2);
  if (delta === 0) ctx.fail('delta must not be 0');
  const n = Math.max(Math.ceil((limit - start) / delta), 0);
  const values = Array.from({ length: n }, (_, i) => start + i * delta);
  return [build(ctx, values, [n], ctx.typeOf(0), ctx.tensor(0).backend)];
});

// EyeLike: a 2-D tensor of the input's shape with ones on diagonal k (col - row = k) and zeros
// elsewhere, of the 'dtype' attribute's type (default: the input's).
registerOnnxOp('EyeLike', (ctx) => {
  const x = ctx.tensor(0);
  if (x.rank !== 2) ctx.fail(`needs a 2-D input, got shape [${x.shape.join(', ')}]`);
  const [rows, cols] = x.shape as [number, number];
  const k = ctx.int('k', 0);
  const values = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) if (r + k >= 0 && r + k < cols) values[r * cols + r + k] = 1;
  return [build(ctx, values, [rows, cols], ctx.int('dtype', ctx.typeOf(0)), x.backend)];
});

// OneHot: a new axis ('axis', default -1: last) of length depth, holding values[1] where it
// equals the index (negative indices count from depth) and values[0] elsewhere; indices outside
// [-depth, depth) give all values[0]. Non-integer indices and depth are truncated.
registerOnnxOp('OneHot', (ctx) => {
  const indices = ctx.tensor(0);
  const depth = Math.trunc(ctx.scalar(1));
  const values = ctx.tensor(2);
  if (depth < 1) ctx.fail(`depth must be positive, got ${depth}`);
  if (values.size !== 2) ctx.fail(`values must hold [off_value, on_value], got shape [${values.shape.join(', ')}]`);
  const rank = indices.rank + 1;
  const a = normAxis(ctx, ctx.int('axis', -1), rank);
  const idx = ops.cast(indices, 'int32');
  const wrapped = ops.unsqueeze(ops.where(ops.lt(idx, 0), ops.add(idx, depth), idx), a);
  const classShape = Array.from({ length: rank }, (_, i) => (i === a ? depth : 1));
  const classes: Tensor = ops.reshape(ops.arange(depth, undefined, 1, { dtype: 'int32', backend: indices.backend }), classShape);
  const flat = ops.reshape(values, [2]);
  const out = ops.where(ops.eq(wrapped, classes), ops.at(flat, 1), ops.at(flat, 0));
  return [ctx.output(out, ctx.typeOf(2))];
});

/**
 * A cosine-sum window of `size` points: sum_k (-1)^k a_k cos(2πkn/N) with N = size (periodic=1,
 * default) or size - 1 (symmetric), of the output_datatype type (default FLOAT).
 */
function cosineWindow(ctx: NodeContext, coefficients: readonly number[]): OnnxTensor {
  const size = Math.trunc(ctx.scalar(0));
  if (size < 0) ctx.fail(`size must not be negative, got ${size}`);
  const n = ctx.int('periodic', 1) !== 0 ? size : size - 1;
  const values = Array.from({ length: size }, (_, i) =>
    coefficients.reduce((sum, c, k) => sum + (k === 0 ? c : (k % 2 === 0 ? c : -c) * Math.cos((2 * Math.PI * k * i) / n)), 0));
  return build(ctx, values, [size], ctx.int('output_datatype', ElemType.FLOAT), ctx.tensor(0).backend);
}

registerOnnxOp('BlackmanWindow', (ctx) => [cosineWindow(ctx, [0.42, 0.5, 0.08])]);
registerOnnxOp('HannWindow', (ctx) => [cosineWindow(ctx, [0.5, 0.5])]);
registerOnnxOp('HammingWindow', (ctx) => [cosineWindow(ctx, [25 / 46, 1 - 25 / 46])]);
