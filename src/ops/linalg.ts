// Matrix products: matmul with NumPy's rules (1-D operands, batched broadcasting), bmm, mm, outer, dot.
import { check, fmtShape } from '../core/errors.js';
import { broadcastShapes } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { autocastOperands, bind } from './dispatch.js';
import { cast, broadcastTo, resultType } from './elementwise.js';
import { reshape, unsqueeze, squeeze } from './shape.js';

/**
 * a @ b following numpy.matmul: 1-D operands are promoted to matrices (and the added dim removed
 * after), batch dimensions broadcast.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  check(a.rank >= 1 && b.rank >= 1, 'matmul', () => `both operands need at least 1 dimension, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}.`);
  // Under autocast both operands go to the region's dtype before promotion (bfloat16 @ float32 is a bfloat16 product).
  [a, b] = autocastOperands('matmul', [a, b]);
  const dtype = resultType(a, b);
  let x = cast(a, dtype), y = cast(b, dtype);
  const aVec = x.rank === 1, bVec = y.rank === 1;
  if (aVec) x = unsqueeze(x, 0);
  if (bVec) y = unsqueeze(y, 1);
  check(x.shape[x.rank - 1] === y.shape[y.rank - 2], 'matmul', () =>
    `shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be multiplied (${x.shape[x.rank - 1]} vs ${y.shape[y.rank - 2]}).`);
  const batch = broadcastShapes('matmul', x.shape.slice(0, -2), y.shape.slice(0, -2));
  if (x.rank > 2 && y.rank === 2) {
    // [..., M, K] @ [K, N] is one [(…·M), K] @ [K, N] GEMM (as PyTorch folds it): a batched product
    // would broadcast the matrix over the batch and its backward would compute the weight gradient
    // as one small product per batch element, summed afterwards, instead of a single large GEMM.
    const k = x.shape[x.rank - 1]!;
    const folded = bind('matmul', [reshape(x, [-1, k]), y], {});
    let out = reshape(folded, [...batch, x.shape[x.rank - 2]!, y.shape[1]!]);
    if (bVec) out = squeeze(out, -1);
    return out;
  }
  x = broadcastTo(x, [...batch, ...x.shape.slice(-2)]);
  y = broadcastTo(y, [...batch, ...y.shape.slice(-2)]);
  let out = bind('matmul', [x, y], {});
  if (aVec) out = squeeze(out, -2);
  if (bVec) out = squeeze(out, -1);
  return out;
}

/** Batched matrix product of two 3-D tensors with equal batch sizes (no broadcasting, as torch.bmm). */
export function bmm(a: Tensor, b: Tensor): Tensor {
  check(a.rank === 3 && b.rank === 3 && a.shape[0] === b.shape[0], 'bmm', () =>
    `needs two 3-D tensors with the same batch size, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}.`);
  return matmul(a, b);
}

/** Matrix product of two 2-D tensors. */
export function mm(a: Tensor, b: Tensor): Tensor {
  check(a.rank === 2 && b.rank === 2, 'mm', () => `needs two 2-D tensors, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}.`);
  return matmul(a, b);
}

/** Outer product of two vectors. */
export function outer(a: Tensor, b: Tensor): Tensor {
  check(a.rank === 1 && b.rank === 1, 'outer', () => `needs two 1-D tensors, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}.`);
  return matmul(reshape(a, [-1, 1]), reshape(b, [1, -1]));
}

/** Inner product of two vectors. */
export function dot(a: Tensor, b: Tensor): Tensor {
  check(a.rank === 1 && b.rank === 1 && a.shape[0] === b.shape[0], 'dot', () => `needs two 1-D tensors of one length, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}.`);
  return matmul(a, b);
}

declare module '../core/tensor.js' {
  interface Tensor {
    matmul(other: Tensor): Tensor;
    mm(other: Tensor): Tensor;
    bmm(other: Tensor): Tensor;
    dot(other: Tensor): Tensor;
    outer(other: Tensor): Tensor;
  }
}
const P = Tensor.prototype;
P.matmul = function (o) { return matmul(this, o); };
P.mm = function (o) { return mm(this, o); };
P.bmm = function (o) { return bmm(this, o); };
P.dot = function (o) { return dot(this, o); };
P.outer = function (o) { return outer(this, o); };
