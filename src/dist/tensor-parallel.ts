// Tensor (intra-layer) parallelism as in Megatron-LM (Shoeybi et al. 2019, arXiv:1909.08053 §3):
// each rank of the group holds a slice of every large weight of a transformer block, and two
// all-reduces per block (one forward, one backward) make the slices' partial results whole.
//
//   MLP:        y = x + fc2(act(fc1(LN(x))))   fc1 split by output rows (column parallel), fc2 by
//               input columns (row parallel): each rank computes act(fc1ᵣ(h)) on its slice of the
//               hidden units and a partial fc2ᵣ(·) of the whole output; an all-reduce sums the
//               partials, then fc2's bias (whole on every rank) is added.
//   Attention:  y = x + out(attention(q, k, v))  the heads are split: each rank projects and
//               attends over its heads only, and its slice of out_proj's columns gives a partial
//               output summed by the all-reduce.
// Megatron's conjugate operators: "f" (identity forward, all-reduce of the gradient backward) sits
// after the LayerNorm, "g" (all-reduce forward, identity backward) after the row-parallel product.
//
// Sequence parallelism (Korthikanti et al. 2022, arXiv:2205.05198 §4.2.2), `sequenceParallel:
// true`: outside the parallel products the activations are split along the sequence (rank r
// holds positions [r·T/p, (r+1)·T/p)), so LayerNorm, residual and bias work on 1/p of them; f
// becomes an all-gather along the sequence (its backward a reduce-scatter) and g a reduce-scatter
// (its backward an all-gather): the same volume as the two all-reduces. The replicated
// parameters (LayerNorm, the output bias) then see only their rank's positions, and
// syncGradients() sums their gradients over the group.
//
// Why the blocks are asynchronous: tessera's autodiff is synchronous and its collectives progress
// on the event loop, so a block cannot all-reduce in the middle of one autodiff graph. Each block
// cuts its computation at f and g into separately differentiated pieces, joined by fresh leaves,
// and its backward pass walks them in reverse with the all-reduces between them (parallel-stack.ts
// runs such blocks in sequence).
//
//   const stack = new ParallelStack([TensorParallelAttention.fromModules(ln1, mha, group, { causal: true }),
//                                   TensorParallelMLP.fromModules(ln2, fc1, fc2, group), head]);
//   const out = await stack.forward(x);
//   await stack.backward(lossOf(out));   // every rank's slices now hold their gradients
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { backward } from '../autodiff/backward.js';
import { Parameter } from '../nn/module.js';
import type { LayerNorm } from '../nn/layers/normalization.js';
import type { Linear } from '../nn/layers/linear.js';
import type { MultiheadAttention } from '../nn/layers/attention.js';
import { tensor } from '../ops/creation.js';
import { add, gelu } from '../ops/elementwise.js';
import { matmul } from '../ops/linalg.js';
import { scaledDotProductAttention } from '../ops/nn/attention.js';
import { narrow, permute, reshape } from '../ops/shape.js';
import { PassStates, type ParallelBlock } from './parallel-stack.js';
import type { ProcessGroup } from './process-group.js';
import { allReduced, commDType, cut, reduceGradients } from './tensor-sync.js';
import { allocArray } from './types.js';

/** A parameter holding a copy of rows [from, from + count) of `t` along `axis`. */
function sliceParameter(t: Tensor, axis: number, from: number, count: number): Parameter {
  const part = narrow(t, axis, from, count);
  return new Parameter(tensor(part.data(), { shape: [...part.shape], dtype: t.dtype, backend: t.storage.backend.name }));
}

function copyParameter(t: Tensor): Parameter {
  return new Parameter(tensor(t.data(), { shape: [...t.shape], dtype: t.dtype, backend: t.storage.backend.name }));
}

function share(total: number, group: ProcessGroup, what: string): { from: number; count: number } {
  if (total % group.size !== 0) throw new TesseraError(`tensor parallel: ${what} (${total}) is not divisible by the group's ${group.size} ranks.`);
  const count = total / group.size;
  return { from: group.rank * count, count };
}

/** What a pre-norm block keeps between its forward and backward passes. */
interface Pieces {
  x: Tensor;
  normed: Tensor;
  /** The parallel products' input: the normalized activation (gathered along the sequence with SP), a leaf. */
  normedLeaf: Tensor;
  partial: Tensor;
  /** The partials summed over the ranks (and scattered along the sequence with SP), a leaf. */
  summed: Tensor;
}

/**
 * [B, T/p, d] on every rank → [B, T, d], rank r's positions at [r·T/p, (r+1)·T/p): an all-gather
 * along the sequence, as a new leaf (requiring grad when asked).
 */
async function gatherSequence(t: Tensor, group: ProcessGroup, requiresGrad: boolean): Promise<Tensor> {
  const [B, Tp, d] = [t.shape[0]!, t.shape[1]!, t.shape[2]!];
  const p = group.size;
  const mine = allocArray(commDType(t.dtype, 'sequence parallel'), t.size);
  mine.set(t.data());
  const all = await group.allGather(mine);
  // all: p blocks of [B, Tp, d]; the result interleaves them per batch row.
  const out = allocArray(commDType(t.dtype, 'sequence parallel'), p * t.size);
  for (let r = 0; r < p; r++) {
    for (let b = 0; b < B; b++) out.set(all.subarray((r * B + b) * Tp * d, (r * B + b + 1) * Tp * d), (b * p + r) * Tp * d);
  }
  return tensor(out, { shape: [B, p * Tp, d], dtype: t.dtype, backend: t.storage.backend.name, requiresGrad });
}

/** [B, T, d] on every rank → this rank's positions of the sum over the ranks, [B, T/p, d]: a reduce-scatter along the sequence. */
async function scatterSequence(t: Tensor, group: ProcessGroup, requiresGrad: boolean): Promise<Tensor> {
  const [B, T, d] = [t.shape[0]!, t.shape[1]!, t.shape[2]!];
  const p = group.size;
  if (T % p !== 0) throw new TesseraError(`sequence parallel: the sequence length ${T} is not divisible by the group's ${p} ranks.`);
  const Tp = T / p;
  const values = t.data();
  // Rank-major order: rank r's block holds positions [r·Tp, (r+1)·Tp) of every batch row.
  const ordered = allocArray(commDType(t.dtype, 'sequence parallel'), t.size);
  for (let r = 0; r < p; r++) {
    for (let b = 0; b < B; b++) ordered.set(values.subarray((b * p + r) * Tp * d, (b * p + r + 1) * Tp * d), (r * B + b) * Tp * d);
  }
  const mine = await group.reduceScatter(ordered);
  return tensor(mine, { shape: [B, Tp, d], dtype: t.dtype, backend: t.storage.backend.name, requiresGrad });
}

/**
 * The pre-norm residual structure both blocks share: y = x + bias + Σᵣ partialᵣ(LN(x)), with f
 * after the LayerNorm and g after the partial product.
 */
abstract class PreNormBlock implements ParallelBlock {
  private readonly passes = new PassStates<Pieces>('tensor parallel');

  constructor(
    readonly group: ProcessGroup, readonly norm: LayerNorm, readonly outBias: Parameter | undefined,
    /** Activations outside the parallel products are split along the sequence (dimension 1). */
    readonly sequenceParallel: boolean,
  ) {}

  abstract parameters(): Parameter[];
  /** This rank's partial output from the normalized input (its slice of the block). */
  protected abstract partialOf(normed: Tensor): Tensor;

  /** The parameters every rank holds whole: the LayerNorm's and the output bias. */
  replicatedParameters(): Parameter[] {
    return [...this.norm.parameters(), ...(this.outBias ? [this.outBias] : [])];
  }

  /**
   * With sequence parallelism, sums the replicated parameters' gradients over the group (each
   * rank saw its own positions only); without, they are already whole, and nothing is sent.
   * Each rank's loss must then be its share of the whole batch's (e.g. its mean × its share).
   */
  async syncGradients(): Promise<void> {
    if (this.sequenceParallel) await reduceGradients(this.replicatedParameters(), this.group, 'sum');
  }

  async forward(x: Tensor): Promise<Tensor> {
    const sp = this.sequenceParallel;
    const normed = this.norm.call(x);
    const normedLeaf = sp ? await gatherSequence(normed, this.group, true) : cut(normed);               // f
    const partial = this.partialOf(normedLeaf);
    const summed = sp ? await scatterSequence(partial, this.group, true) : await allReduced(partial, this.group, true); // g
    const y = add(x, summed);
    return this.passes.keep(this.outBias === undefined ? y : add(y, this.outBias), { x, normed, normedLeaf, partial, summed });
  }

  async finishBackward(output: Tensor): Promise<void> {
    const k = this.passes.take(output);
    if (k.summed.grad === undefined) throw new TesseraError('tensor parallel: the block\'s output did not reach the loss; nothing to differentiate.');
    const sp = this.sequenceParallel;
    // g's backward: identity (all-gather along the sequence with SP).
    backward(k.partial, sp ? await gatherSequence(k.summed.grad, this.group, false) : k.summed.grad);
    // f's backward: all-reduce (reduce-scatter along the sequence with SP).
    const g = sp ? await scatterSequence(k.normedLeaf.grad!, this.group, false) : await allReduced(k.normedLeaf.grad!, this.group, false);
    backward(k.normed, g);
  }
}

/** Megatron's MLP block: fc1 column parallel, fc2 row parallel, GELU between (pre-norm, residual). */
export class TensorParallelMLP extends PreNormBlock {
  private constructor(
    group: ProcessGroup, norm: LayerNorm,
    readonly fc1Weight: Parameter, readonly fc1Bias: Parameter | undefined,
    readonly fc2Weight: Parameter, fc2Bias: Parameter | undefined, sequenceParallel: boolean,
  ) {
    super(group, norm, fc2Bias, sequenceParallel);
  }

  /**
   * This rank's share of `fc2(gelu(fc1(norm(x))))`: rows of fc1 (and its bias) and columns of
   * fc2 for hidden units [r·h/p, (r+1)·h/p). The LayerNorm and fc2's bias are used as they are
   * (replicated); the weights are copied, so the original modules are left alone.
   */
  static fromModules(norm: LayerNorm, fc1: Linear, fc2: Linear, group: ProcessGroup, options: { sequenceParallel?: boolean } = {}): TensorParallelMLP {
    const { from, count } = share(fc1.outFeatures, group, 'the MLP\'s hidden width');
    return new TensorParallelMLP(
      group, norm,
      sliceParameter(fc1.weight, 0, from, count), fc1.bias === undefined ? undefined : sliceParameter(fc1.bias, 0, from, count),
      sliceParameter(fc2.weight, 1, from, count), fc2.bias === undefined ? undefined : copyParameter(fc2.bias), options.sequenceParallel ?? false,
    );
  }

  parameters(): Parameter[] {
    return [...this.norm.parameters(), this.fc1Weight, ...(this.fc1Bias ? [this.fc1Bias] : []), this.fc2Weight, ...(this.outBias ? [this.outBias] : [])];
  }

  protected partialOf(normed: Tensor): Tensor {
    const h = matmul(normed, this.fc1Weight.mT);
    return matmul(gelu(this.fc1Bias === undefined ? h : add(h, this.fc1Bias)), this.fc2Weight.mT);
  }
}

/** Megatron's self-attention block: heads split over the ranks, out_proj row parallel (pre-norm, residual). */
export class TensorParallelAttention extends PreNormBlock {
  private constructor(
    group: ProcessGroup, norm: LayerNorm,
    readonly qkvWeights: readonly Parameter[], readonly qkvBiases: readonly Parameter[] | undefined,
    readonly outWeight: Parameter, outBias: Parameter | undefined,
    readonly localHeads: number, readonly headDim: number, readonly causal: boolean, sequenceParallel: boolean,
  ) {
    super(group, norm, outBias, sequenceParallel);
  }

  /**
   * This rank's heads [r·H/p, (r+1)·H/p) of `attention`: its rows of the q, k and v projections
   * (PyTorch's in_proj layout) and its columns of out_proj. Self-attention, batch first.
   */
  static fromModules(norm: LayerNorm, attention: MultiheadAttention, group: ProcessGroup, options: { causal?: boolean; sequenceParallel?: boolean } = {}): TensorParallelAttention {
    const E = attention.embedDim;
    if (!attention.batchFirst) throw new TesseraError('TensorParallelAttention: the attention module must be batch first.');
    const heads = share(attention.numHeads, group, 'the attention heads');
    const from = heads.from * attention.headDim, count = heads.count * attention.headDim;
    const qkvWeights = [0, 1, 2].map((which) => sliceParameter(attention.in_proj_weight, 0, which * E + from, count));
    const qkvBiases = attention.in_proj_bias === undefined ? undefined : [0, 1, 2].map((which) => sliceParameter(attention.in_proj_bias!, 0, which * E + from, count));
    const outBias = attention.out_proj.bias === undefined ? undefined : copyParameter(attention.out_proj.bias);
    return new TensorParallelAttention(group, norm, qkvWeights, qkvBiases, sliceParameter(attention.out_proj.weight, 1, from, count), outBias,
      heads.count, attention.headDim, options.causal ?? false, options.sequenceParallel ?? false);
  }

  parameters(): Parameter[] {
    return [...this.norm.parameters(), ...this.qkvWeights, ...(this.qkvBiases ?? []), this.outWeight, ...(this.outBias ? [this.outBias] : [])];
  }

  protected partialOf(normed: Tensor): Tensor {
    const [B, T] = [normed.shape[0]!, normed.shape[1]!];
    const project = (which: number): Tensor => {
      const y = matmul(normed, this.qkvWeights[which]!.mT);
      const biased = this.qkvBiases === undefined ? y : add(y, this.qkvBiases[which]!);
      return permute(reshape(biased, [B, T, this.localHeads, this.headDim]), [0, 2, 1, 3]);
    };
    const attended = scaledDotProductAttention(project(0), project(1), project(2), this.causal ? { isCausal: true } : {});
    const merged = reshape(permute(attended, [0, 2, 1, 3]), [B, T, this.localHeads * this.headDim]);
    return matmul(merged, this.outWeight.mT);
  }
}

