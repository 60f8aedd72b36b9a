// The vocabulary split over a tensor-parallel group (Megatron-LM, Shoeybi et al. 2019 §3): rank
// r holds rows [r·V/p, (r+1)·V/p) of the embedding table and of the output layer, so neither the
// table nor the logits ever exist whole on one rank.
//   VocabParallelEmbedding: each rank looks up the tokens in its range (zero rows for the others)
//     and an all-reduce sums the partial embeddings.
//   VocabParallelHead:      each rank computes the logits of its vocabulary slice from the
//     (replicated) hidden states; backward, an all-reduce sums the hidden states' partial
//     gradients (Megatron's f).
//   vocabParallelCrossEntropy: the mean cross-entropy over the split logits, from three
//     all-reduces of one number per token (the row maximum, the sum of exponentials and the
//     target's logit), as Megatron's vocab_parallel_cross_entropy computes it.
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { backward } from '../autodiff/backward.js';
import { Parameter } from '../nn/module.js';
import type { Embedding } from '../nn/layers/dropout.js';
import type { Linear } from '../nn/layers/linear.js';
import { fromValues, tensor } from '../ops/creation.js';
import { add, mul } from '../ops/elementwise.js';
import { matmul } from '../ops/linalg.js';
import { embedding } from '../ops/nn/embedding.js';
import { sum } from '../ops/reduce.js';
import { narrow, reshape } from '../ops/shape.js';
import { PassStates, type ParallelBlock } from './parallel-stack.js';
import type { ProcessGroup } from './process-group.js';
import { allReduced } from './tensor-sync.js';

/** This rank's range of a vocabulary of `size` words. */
function vocabRange(size: number, group: ProcessGroup): { start: number; count: number } {
  if (size % group.size !== 0) throw new TesseraError(`vocabulary parallel: the vocabulary (${size}) is not divisible by the group's ${group.size} ranks.`);
  const count = size / group.size;
  return { start: group.rank * count, count };
}

function rowsOf(t: Tensor, start: number, count: number): Parameter {
  const part = narrow(t, 0, start, count);
  return new Parameter(tensor(part.data(), { shape: [...part.shape], dtype: t.dtype, backend: t.storage.backend.name }));
}

/** An embedding table split by rows over the group; the token ids are the same on every rank. */
export class VocabParallelEmbedding implements ParallelBlock {
  private readonly passes = new PassStates<{ partial: Tensor; summed: Tensor }>('VocabParallelEmbedding');

  private constructor(readonly group: ProcessGroup, readonly weight: Parameter, readonly start: number, readonly vocabulary: number) {}

  /** This rank's rows of `table`'s weight (copied). */
  static fromModule(table: Embedding, group: ProcessGroup): VocabParallelEmbedding {
    const V = table.weight.shape[0]!;
    const { start, count } = vocabRange(V, group);
    return new VocabParallelEmbedding(group, rowsOf(table.weight, start, count), start, V);
  }

  parameters(): Parameter[] {
    return [this.weight];
  }

  async forward(ids: Tensor): Promise<Tensor> {
    const count = this.weight.shape[0]!;
    const values = ids.data();
    const local = new Int32Array(values.length);
    const inRange = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const id = values[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabulary) throw new TesseraError(`VocabParallelEmbedding: token id ${id} is outside the vocabulary of ${this.vocabulary}.`);
      const j = id - this.start;
      if (j >= 0 && j < count) { local[i] = j; inRange[i] = 1; }
    }
    const looked = embedding(fromValues(local, [...ids.shape], 'int32', { backend: this.weight.backend }), this.weight);
    const mask = fromValues(inRange, [...ids.shape, 1], this.weight.dtype, { backend: this.weight.backend });
    const partial = mul(looked, mask);
    const summed = await allReduced(partial, this.group, true);
    return this.passes.keep(summed, { partial, summed });
  }

  async finishBackward(output: Tensor): Promise<void> {
    const k = this.passes.take(output);
    if (k.summed.grad === undefined) throw new TesseraError('VocabParallelEmbedding: the forward pass\'s output did not reach the loss.');
    backward(k.partial, k.summed.grad);
  }
}

/** The output layer split by vocabulary rows: each rank's logits for its slice of the words. */
export class VocabParallelHead implements ParallelBlock {
  private readonly passes = new PassStates<Tensor>('VocabParallelHead');

  private constructor(readonly group: ProcessGroup, readonly weight: Parameter, readonly bias: Parameter | undefined) {}

  /** This rank's rows of `head` (a Linear from the hidden size to the vocabulary; copied). */
  static fromModule(head: Linear, group: ProcessGroup): VocabParallelHead {
    const { start, count } = vocabRange(head.outFeatures, group);
    return new VocabParallelHead(group, rowsOf(head.weight, start, count), head.bias === undefined ? undefined : rowsOf(head.bias, start, count));
  }

  parameters(): Parameter[] {
    return [this.weight, ...(this.bias ? [this.bias] : [])];
  }

  async forward(x: Tensor): Promise<Tensor> {
    const y = matmul(x, this.weight.mT);
    return this.passes.keep(this.bias === undefined ? y : add(y, this.bias), x);
  }

  /** f's backward: the hidden states' gradient is the sum of every rank's slice's contribution. */
  async finishBackward(output: Tensor): Promise<void> {
    const x = this.passes.take(output);
    if (x.grad === undefined) throw new TesseraError('VocabParallelHead: the forward pass\'s output did not reach the loss.');
    const whole = await allReduced(x.grad, this.group, false);
    x.grad.dispose();
    x.grad = whole;
  }
}

/**
 * The mean cross-entropy of the tokens whose logits are split by vocabulary over the group
 * (`logits` [..., V/p] this rank's slice, `targets` [...] word ids, the same on every rank). The
 * result is a scalar tensor with the loss as its value whose gradient with respect to `logits` is
 * this rank's slice of the whole loss's: pass it to ParallelStack.backward.
 */
export async function vocabParallelCrossEntropy(logits: Tensor, targets: Tensor, group: ProcessGroup): Promise<Tensor> {
  const Vp = logits.shape[logits.rank - 1]!;
  const flat = reshape(logits, [-1, Vp]);
  const N = flat.shape[0]!;
  if (targets.size !== N) throw new TesseraError(`vocabParallelCrossEntropy: ${targets.size} targets for ${N} rows of logits.`);
  const start = group.rank * Vp;
  const x = flat.data(), t = targets.data();
  const rows = (fill: (n: number) => number) => Float64Array.from({ length: N }, (_, n) => fill(n));
  const fetch = async (v: Float64Array, op: 'max' | 'sum'): Promise<Float64Array> => {
    await group.allReduce(v, { op });
    return v;
  };
  // The row maximum (for a stable exponential), the sum of exponentials and the target's logit.
  const m = await fetch(rows((n) => { let best = -Infinity; for (let j = 0; j < Vp; j++) best = Math.max(best, x[n * Vp + j]!); return best; }), 'max');
  const s = await fetch(rows((n) => { let acc = 0; for (let j = 0; j < Vp; j++) acc += Math.exp(x[n * Vp + j]! - m[n]!); return acc; }), 'sum');
  const z = await fetch(rows((n) => { const j = t[n]! - start; return j >= 0 && j < Vp ? x[n * Vp + j]! : 0; }), 'sum');
  let loss = 0;
  for (let n = 0; n < N; n++) loss += Math.log(s[n]!) + m[n]! - z[n]!;
  loss /= N;
  // d loss / d logit[n, j] = (softmax − one-hot) / N on this rank's columns.
  const grad = new Float64Array(N * Vp);
  for (let n = 0; n < N; n++) {
    const target = t[n]! - start;
    for (let j = 0; j < Vp; j++) grad[n * Vp + j] = (Math.exp(x[n * Vp + j]! - m[n]!) / s[n]! - (j === target ? 1 : 0)) / N;
  }
  // Σ logits · grad has that gradient; shifting it by a constant gives the loss as its value.
  const surrogate = sum(mul(flat, tensor(grad, { shape: [N, Vp], dtype: logits.dtype, backend: logits.storage.backend.name })));
  return add(surrogate, loss - surrogate.item());
}
