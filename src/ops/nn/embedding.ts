// Embedding lookup: rows of a [numEmbeddings, dim] table picked by integer indices (a gather, so
// the gradient is a scatter-add into the rows that were used).
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { bind } from '../dispatch.js';
import { eq, where } from '../elementwise.js';
import { reshape, expand, detach } from '../shape.js';
import { withContext } from './context.js';

export interface EmbeddingOptions {
  /** Rows looked up at this index receive no gradient (their entry stays fixed during training). */
  paddingIdx?: number;
}

/** weight[indices]: indices int32 of any shape, weight [numEmbeddings, dim] → [...indices.shape, dim]. */
export function embedding(indices: Tensor, weight: Tensor, opts: EmbeddingOptions = {}): Tensor {
  check(indices.dtype === 'int32' || indices.dtype === 'int8' || indices.dtype === 'uint8', 'embedding', () =>
    `indices must be an integer tensor (int32), got ${indices.dtype}.`);
  check(weight.rank === 2, 'embedding', () => `weight must be [numEmbeddings, dim], got shape ${fmtShape(weight.shape)}.`);
  const [rows, dim] = [weight.shape[0]!, weight.shape[1]!];
  const idx = indices.dtype === 'int32' ? indices : bind('cast', [indices], { dtype: 'int32' });
  const flat = reshape(idx, [-1]);
  let paddingIdx = opts.paddingIdx;
  if (paddingIdx !== undefined) {
    check(Number.isInteger(paddingIdx) && paddingIdx >= -rows && paddingIdx < rows, 'embedding', () =>
      `paddingIdx ${paddingIdx} is out of range for a table of ${rows} rows.`);
    if (paddingIdx < 0) paddingIdx += rows;
  }
  // The gather kernel checks the bounds (reading the indices here would make a traced step guard on them).
  const picked = withContext('embedding', `indices must be in [0, ${rows})`,
    () => bind('gather', [weight, expand(reshape(flat, [-1, 1]), [flat.shape[0]!, dim])], { axis: 0 }));
  // The padding row's value is returned, but cut off from the gradient.
  const out = paddingIdx === undefined ? picked : where(reshape(eq(flat, paddingIdx), [-1, 1]), detach(picked), picked);
  return reshape(out, [...indices.shape, dim]);
}
