// ONNX products: MatMul, Gemm, Einsum, Det.

import * as ops from '../../ops/index.js';
import { registerOnnxOp } from '../registry.js';

/** MatMul follows numpy.matmul: 1-D operands become a row / column (removed after), batch dims broadcast. */
registerOnnxOp('MatMul', (ctx) => [ops.matmul(ctx.tensor(0), ctx.tensor(1))]);

/**
 * Gemm: Y = alpha · A' B' + beta · C, with A' = transA ? Aᵀ : A (likewise B). C (optional from
 * opset 11) broadcasts to [M, N]. Opset 6's `broadcast` attribute needs no handling: tessera
 * always broadcasts. alpha and beta only multiply when they are not 1, and a result an integer Gemm
 * with a fractional alpha made floating goes back to the inputs' type.
 */
registerOnnxOp('Gemm', (ctx) => {
  const a0 = ctx.tensor(0), b0 = ctx.tensor(1);
  if (a0.rank !== 2 || b0.rank !== 2) ctx.fail(`A and B must be matrices, got shapes [${a0.shape.join(', ')}] and [${b0.shape.join(', ')}]`);
  const a = ctx.int('transA', 0) !== 0 ? ops.transpose(a0) : a0;
  const b = ctx.int('transB', 0) !== 0 ? ops.transpose(b0) : b0;
  const alpha = ctx.float('alpha', 1), beta = ctx.float('beta', 1);
  const product = ops.matmul(a, b);
  let y = alpha === 1 ? product : ops.mul(product, alpha);
  const c = ctx.optionalTensor(2);
  if (c !== undefined) y = ops.add(y, beta === 1 ? c : ops.mul(c, beta));
  return [y.dtype === product.dtype ? y : ops.cast(y, product.dtype)];
});

/** Einsum with numpy's equation syntax: explicit or implicit output, '...' broadcasting, repeated labels (diagonals). */
registerOnnxOp('Einsum', (ctx) => {
  const equation = ctx.string('equation') ?? ctx.fail("the required attribute 'equation' is missing");
  return [ops.einsum(equation, ...ctx.tensors())];
});

/**
 * Det: the determinant of each square matrix in the last two dims. tessera's det takes float32 and
 * float64; FLOAT16 / BFLOAT16 are computed in float32 and rounded back.
 */
registerOnnxOp('Det', (ctx) => {
  const x = ctx.tensor(0);
  if (x.dtype !== 'float16' && x.dtype !== 'bfloat16') return [ops.linalg.det(x)];
  return [ops.cast(ops.linalg.det(ops.cast(x, 'float32')), x.dtype)];
});
