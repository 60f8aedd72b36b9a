// Index-driven ops with PyTorch semantics: gather, scatterAdd, indexSelect, maskedFill, oneHot.
// They validate indices and shapes here (naming the op and the shapes) so the kernels never read
// out of bounds, and they are composites of the gather/scatterAdd/where primitives, so they
// differentiate with respect to their floating inputs (never their indices).
import { isIntegral } from '../core/dtype.js';
import { TesseraError, check, fmtShape } from '../core/errors.js';
import { normalizeAxis } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { bind } from './dispatch.js';
import { full, scalar } from './creation.js';
import { broadcastTo, cast, where, type TensorLike } from './elementwise.js';
import { reshape, unsqueeze } from './shape.js';

/** Integer indices as int32 (the index dtype of the primitives); rejects floating indices. */
function asIndex(index: Tensor, op: string): Tensor {
  check(isIntegral(index.dtype) && index.dtype !== 'bool', op, () =>
    `index must be an integer tensor, got ${index.dtype} (shape ${fmtShape(index.shape)}); cast it with .int().`);
  return cast(index, 'int32');
}

/**
 * torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for axis 1. `index` has the rank of `x` and
 * is no larger than `x` on every other axis; the output has the shape of `index`.
 */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = normalizeAxis(axis, x.rank, 'gather');
  const idx = asIndex(index, 'gather');
  const xr = x.rank === 0 ? reshape(x, [1]) : x;
  const ir = idx.rank === 0 ? reshape(idx, [1]) : idx;
  check(ir.rank === xr.rank, 'gather', () =>
    `index ${fmtShape(index.shape)} must have the same number of dimensions as the input ${fmtShape(x.shape)}.`);
  check(ir.shape.every((d, i) => i === a || d <= xr.shape[i]!), 'gather', () =>
    `index ${fmtShape(index.shape)} is larger than the input ${fmtShape(x.shape)} outside axis ${axis}.`);
  const out = bind('gather', [xr, ir], { axis: a });
  return idx.rank === 0 ? reshape(out, []) : out;
}

/**
 * torch.scatter_add (out of place): a copy of `x` where out[i][index[i][j]] += src[i][j] along
 * `axis`. Only the part of `src` the shape of `index` is used.
 */
export function scatterAdd(x: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  const a = normalizeAxis(axis, x.rank, 'scatterAdd');
  const idx = asIndex(index, 'scatterAdd');
  check(x.dtype === src.dtype, 'scatterAdd', () => `self (${x.dtype}) and src (${src.dtype}) must have one dtype; cast src first.`);
  check(idx.rank === x.rank && src.rank === x.rank, 'scatterAdd', () =>
    `input ${fmtShape(x.shape)}, index ${fmtShape(index.shape)} and src ${fmtShape(src.shape)} must have the same number of dimensions.`);
  check(idx.shape.every((d, i) => d <= src.shape[i]! && (i === a || d <= x.shape[i]!)), 'scatterAdd', () =>
    `index ${fmtShape(index.shape)} must be no larger than src ${fmtShape(src.shape)} on every axis and than the input ${fmtShape(x.shape)} outside axis ${axis}.`);
  const s = idx.shape.every((d, i) => d === src.shape[i]) ? src : src.at(...idx.shape.map((d) => [0, d] as const));
  return bind('scatterAdd', [x, idx, s], { axis: a });
}

/** Selects entries along `axis` by a 1-D index (torch.index_select); the axis length becomes index.length. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  const idx = asIndex(index, 'indexSelect');
  check(idx.rank <= 1, 'indexSelect', () => `index must be 1-D, got shape ${fmtShape(index.shape)}.`);
  if (x.rank === 0) {
    normalizeAxis(axis, 0, 'indexSelect');
    return gather(x, 0, reshape(idx, []));
  }
  const a = normalizeAxis(axis, x.rank, 'indexSelect');
  const k = idx.size;

  const shape = x.shape.map((d, i) => (i === a ? k : d));
  // Broadcast the index across the other axes (a stride-0 view, no copy) and gather.
  const along = reshape(idx, x.shape.map((_, i) => (i === a ? k : 1)));
  return asOp('indexSelect', () => bind('gather', [x, broadcastTo(along, shape)], { axis: a }));
}

/**
 * Runs a primitive on behalf of `op`, so an out-of-range index reported by its kernel names the op
 * the user called. Indices are deliberately not read here: a read would make a traced function
 * guard on (and retrace for) every new batch of indices.
 */
function asOp<T>(op: string, fn: () => T, describe?: (index: string) => string): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof TesseraError)) throw e;
    const m = /^(gather|scatterAdd): index (\S+)/.exec(e.message);
    if (m === null) throw e;
    throw new TesseraError(describe === undefined ? e.message.replace(/^(gather|scatterAdd):/, `${op}:`) : `${op}: ${describe(m[2]!)}`);
  }
}

/**
 * `value` where `mask` is true, `x` elsewhere (torch.masked_fill). The mask is bool and broadcasts
 * against x; value is a number or a 0-d tensor (which then receives gradients).
 */
export function maskedFill(x: Tensor, mask: Tensor, value: TensorLike): Tensor {
  check(mask.dtype === 'bool', 'maskedFill', () => `mask must be a bool tensor, got ${mask.dtype}; build it with a comparison such as x.gt(0).`);
  let v: Tensor;
  if (value instanceof Tensor) {
    check(value.rank === 0, 'maskedFill', () => `value must be a number or a 0-d tensor, got shape ${fmtShape(value.shape)}.`);
    v = cast(value, x.dtype);
  } else {
    // Like PyTorch, the value is converted to x's dtype (2.7 fills an int32 tensor with 2).
    v = scalar(value, x.dtype, x.backend);
  }
  return where(mask, v, x);
}

/**
 * One-hot encoding (torch.nn.functional.one_hot): int32 output with a new last axis of length
 * `numClasses` (by default the largest index + 1).
 */
export function oneHot(indices: Tensor, numClasses = -1): Tensor {
  const idx = asIndex(indices, 'oneHot');
  let n = numClasses;
  if (n === -1) {
    // Like PyTorch, inferring the class count has to read the indices.
    check(idx.size > 0, 'oneHot', () => 'cannot infer numClasses from an empty tensor; pass numClasses.');
    n = Math.max(...idx.data()) + 1;
  }
  check(Number.isInteger(n) && n > 0, 'oneHot', () => `numClasses must be a positive integer or -1, got ${numClasses}.`);
  // Scattering ones lets the kernel reject indices outside [0, n) without reading them here.
  const shape = [...idx.shape, n];
  const zeros = full(shape, 0, { dtype: 'int32', backend: idx.backend });
  const ones = full([...idx.shape, 1], 1, { dtype: 'int32', backend: idx.backend });
  return asOp('oneHot', () => bind('scatterAdd', [zeros, unsqueeze(idx, -1), ones], { axis: shape.length - 1 }),
    (v) => `class index ${v} is out of range for numClasses ${n}; indices must be in [0, ${n}).`);
}

declare module '../core/tensor.js' {
  interface Tensor {
    gather(axis: number, index: Tensor): Tensor;
    scatterAdd(axis: number, index: Tensor, src: Tensor): Tensor;
    indexSelect(axis: number, index: Tensor): Tensor;
    maskedFill(mask: Tensor, value: TensorLike): Tensor;
  }
}

const P = Tensor.prototype;
P.gather = function (a, i) { return gather(this, a, i); };
P.scatterAdd = function (a, i, s) { return scatterAdd(this, a, i, s); };
P.indexSelect = function (a, i) { return indexSelect(this, a, i); };
P.maskedFill = function (m, v) { return maskedFill(this, m, v); };
