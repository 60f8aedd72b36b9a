// A pre-norm transformer block and a GPT (decoder-only language model) with tied embeddings and
// KV-cached sampling.
import { check, fmtShape } from '../../core/errors.js';
import { defaultGenerator, type Generator } from '../../core/random.js';
import type { Tensor } from '../../core/tensor.js';
import { checkpoint } from '../../autodiff/checkpoint.js';
import { offload } from '../../autodiff/offload.js';
import { noGrad } from '../../autodiff/mode.js';
import { arange, fromValues } from '../../ops/creation.js';
import { add } from '../../ops/elementwise.js';
import { narrow, reshape } from '../../ops/shape.js';
import { ModuleList, Sequential } from '../containers.js';
import { normal_, zeros_ } from '../init.js';
import { Module, type Parameter } from '../module.js';
import { GELU } from './activation.js';
import { KVCache, MultiheadAttention } from './attention.js';
import { Dropout, Embedding } from './dropout.js';
import { Linear, type LayerOptions } from './linear.js';
import { LayerNorm } from './normalization.js';

export interface TransformerBlockOptions extends LayerOptions {
  /** Hidden size of the MLP (default 4 × embedDim). */
  mlpDim?: number;
  dropout?: number;
  /** Causal self-attention (default true). */
  causal?: boolean;
}

/** x + attn(ln1(x)), then x + mlp(ln2(x)) (pre-norm, as GPT-2). */
export class TransformerBlock extends Module<[Tensor, KVCache?], Tensor> {
  ln1: LayerNorm;
  attn: MultiheadAttention;
  ln2: LayerNorm;
  fc: Linear;
  act = new GELU();
  proj: Linear;
  drop: Dropout;
  readonly causal: boolean;

  constructor(readonly embedDim: number, readonly numHeads: number, options: TransformerBlockOptions = {}) {
    super();
    const layer = { dtype: options.dtype, backend: options.backend, generator: options.generator };
    this.ln1 = new LayerNorm(embedDim, layer);
    this.attn = new MultiheadAttention(embedDim, numHeads, { ...layer, dropout: options.dropout ?? 0 });
    this.ln2 = new LayerNorm(embedDim, layer);
    const hidden = options.mlpDim ?? 4 * embedDim;
    this.fc = new Linear(embedDim, hidden, layer);
    this.proj = new Linear(hidden, embedDim, layer);
    this.drop = new Dropout(options.dropout ?? 0);
    this.causal = options.causal ?? true;
  }

  override forward(x: Tensor, cache?: KVCache): Tensor {
    const h = this.ln1.call(x);
    x = add(x, this.drop.call(this.attn.call(h, h, h, { isCausal: this.causal, ...(cache ? { cache } : {}) })));
    return add(x, this.drop.call(this.proj.call(this.act.call(this.fc.call(this.ln2.call(x))))));
  }
}

export interface GptConfig {
  vocabSize: number;
  /** Longest context (number of positions). */
  blockSize: number;
  embedDim: number;
  numHeads: number;
  numLayers: number;
  dropout?: number;
  /**
   * Activation checkpointing: in training, keep only each block's input and recompute the block's
   * activations during backward (autodiff/checkpoint.ts). Saves memory, costs about one more forward.
   */
  checkpoint?: boolean;
  /**
   * Activation offloading: in training, move what each block saves for backward to host memory and
   * bring it back in backward (autodiff/offload.ts). Frees backend memory, costs two copies.
   */
  offload?: boolean;
}

export interface SampleOptions {
  maxNewTokens: number;
  /** Divides the logits (default 1); lower is more conservative. */
  temperature?: number;
  /** Sample only among the k most likely tokens. */
  topK?: number;
  generator?: Generator;
}

/** GPT: token + position embeddings, pre-norm blocks, final LayerNorm, head tied to the token embedding. */
export class GPT extends Module<[Tensor, KVCache[]?], Tensor> {
  wte: Embedding;
  wpe: Embedding;
  drop: Dropout;
  blocks: ModuleList<TransformerBlock>;
  ln_f: LayerNorm;
  head: Linear;

  constructor(readonly config: GptConfig, options: LayerOptions = {}) {
    super();
    const c = config;
    check([c.vocabSize, c.blockSize, c.embedDim, c.numHeads, c.numLayers].every((v) => Number.isInteger(v) && v > 0), 'GPT', () =>
      `vocabSize, blockSize, embedDim, numHeads and numLayers must be positive integers, got ${JSON.stringify(c)}.`);
    check(!(c.checkpoint === true && c.offload === true), 'GPT', () =>
      'checkpoint and offload are two ways to keep a block\'s activations off the backend (recompute them, or copy them to the host); choose one.');
    this.wte = new Embedding(c.vocabSize, c.embedDim, options);
    this.wpe = new Embedding(c.blockSize, c.embedDim, options);
    this.drop = new Dropout(c.dropout ?? 0);
    this.blocks = new ModuleList(Array.from({ length: c.numLayers }, () => new TransformerBlock(c.embedDim, c.numHeads, { ...options, dropout: c.dropout ?? 0 })));
    this.ln_f = new LayerNorm(c.embedDim, options);
    this.head = new Linear(c.embedDim, c.vocabSize, { ...options, bias: false });
    // GPT-2's initialisation: N(0, 0.02) weights, zero biases, residual projections scaled by 1/sqrt(2·layers).
    for (const m of this.modules()) {
      if (m instanceof Linear) {
        normal_(m.weight, 0, 0.02, options.generator);
        if (m.bias) zeros_(m.bias);
      } else if (m instanceof Embedding) {
        normal_(m.weight, 0, 0.02, options.generator);
      } else if (m instanceof MultiheadAttention) {
        normal_(m.in_proj_weight, 0, 0.02, options.generator);
        if (m.in_proj_bias) zeros_(m.in_proj_bias);
      }
    }
    for (const b of this.blocks) normal_(b.proj.weight, 0, 0.02 / Math.sqrt(2 * c.numLayers), options.generator);
    this.head.weight = this.wte.weight;
  }

  /** Token ids [B, T] (int32) → logits [B, T, vocabSize]. With caches, positions continue after the cached ones. */
  override forward(idx: Tensor, caches?: KVCache[]): Tensor {
    let x = embedTokens(this.wte, this.wpe, this.drop, this.config.blockSize, idx, caches?.[0]?.length ?? 0);
    let i = 0;
    const training = caches === undefined;
    const wrap = training && this.config.checkpoint === true ? checkpoint : training && this.config.offload === true ? offload : undefined;
    for (const block of this.blocks) x = wrap !== undefined ? wrap((h: Tensor) => block.call(h), x) : block.call(x, caches?.[i++]);
    return this.head.call(this.ln_f.call(x));
  }

  /**
   * The GPT as a sequence of modules whose composition is forward(idx) without caches:
   * [embeddings (wte, wpe, dropout), blocks[0], ..., blocks[L − 1], ln_f + head]. They hold this
   * GPT's own layers (training them trains it; the head stays tied to wte, now across the first
   * and last part), for FullyShardedDataParallel units; pipelineStage cuts them into pipeline
   * stages. The checkpoint and offload options do not apply to the parts.
   */
  parts(): Module<[Tensor], Tensor>[] {
    return [new GptEmbeddings(this.wte, this.wpe, this.drop, this.config.blockSize), ...this.blocks, new GptHead(this.ln_f, this.head)];
  }

  /**
   * Pipeline stage `stage` of `stages` (dist.PipelineParallel): consecutive parts() split as evenly
   * as possible (the first stages take one more), so the embeddings are on the first stage and
   * ln_f + the head on the last, each counting as one part. `tied` lists wte's weight under one
   * name on the stages that use it (first and last), for PipelineParallel's `tiedParameters`: each
   * rank builds the same GPT and keeps its stage; the last stage's head then holds a copy of the
   * embedding whose gradient is summed with the first stage's, as Megatron-LM's embedding group.
   */
  pipelineStage(stage: number, stages: number): { module: Sequential; tied: { name: string; parameter: Parameter }[] } {
    const parts = this.parts();
    check(Number.isInteger(stages) && stages >= 1 && stages <= parts.length, 'GPT.pipelineStage', () =>
      `stages must be an integer from 1 to ${parts.length} (the ${this.config.numLayers} blocks, the embeddings and the head), got ${String(stages)}.`);
    check(Number.isInteger(stage) && stage >= 0 && stage < stages, 'GPT.pipelineStage', () => `stage must be an integer in [0, ${stages}), got ${String(stage)}.`);
    const per = Math.floor(parts.length / stages), extra = parts.length % stages;
    const from = stage * per + Math.min(stage, extra), to = from + per + (stage < extra ? 1 : 0);
    const usesEmbedding = from === 0 || to === parts.length;
    return { module: new Sequential(...parts.slice(from, to)), tied: usesEmbedding ? [{ name: 'gpt.wte.weight', parameter: this.wte.weight }] : [] };
  }

  /**
   * Continues each row of `idx` [B, T] by maxNewTokens sampled tokens; returns [B, T + maxNewTokens].
   * Uses a KV cache while the sequence fits in blockSize, then a sliding window.
   */
  generate(idx: Tensor, options: SampleOptions): Tensor {
    return noGrad(() => {
      const wasTraining = this.training;
      this.eval();
      const B = idx.shape[0]!;
      const rows: number[][] = Array.from({ length: B }, (_, b) => Array.from(narrow(idx, 0, b, 1).data()));
      let caches: KVCache[] | undefined = Array.from({ length: this.config.numLayers }, () => new KVCache());
      let logits = this.forward(idx.shape[1]! > this.config.blockSize ? narrow(idx, 1, idx.shape[1]! - this.config.blockSize, this.config.blockSize) : idx, caches);
      for (let n = 0; n < options.maxNewTokens; n++) {
        const V = this.config.vocabSize;
        const last = narrow(logits, 1, logits.shape[1]! - 1, 1).data();
        const next = Array.from({ length: B }, (_, b) => sampleToken(last.subarray(b * V, (b + 1) * V) as Float32Array, options));
        next.forEach((tok, b) => rows[b]!.push(tok));
        if (n === options.maxNewTokens - 1) break;
        const len = rows[0]!.length;
        if (caches !== undefined && len <= this.config.blockSize) {
          logits = this.forward(fromValues(Int32Array.from(next), [B, 1], 'int32', { backend: idx.backend }), caches);
        } else {
          // Past blockSize the positions shift every step, so the cache no longer applies.
          caches = undefined;
          const start = Math.max(0, len - this.config.blockSize);
          const window = Int32Array.from(rows.flatMap((r) => r.slice(start)));
          logits = this.forward(fromValues(window, [B, len - start], 'int32', { backend: idx.backend }));
        }
      }
      this.train(wasTraining);
      return fromValues(Int32Array.from(rows.flat()), [B, rows[0]!.length], 'int32', { backend: idx.backend });
    });
  }
}

/** Token + position embeddings of ids [B, T] at positions past, ..., past + T − 1, with dropout. */
function embedTokens(wte: Embedding, wpe: Embedding, drop: Dropout, blockSize: number, idx: Tensor, past: number): Tensor {
  check(idx.rank === 2, 'GPT', () => `expects token ids of shape [batch, time], got ${fmtShape(idx.shape)}.`);
  const T = idx.shape[1]!;
  check(past + T <= blockSize, 'GPT', () =>
    `sequence of ${past + T} positions exceeds blockSize ${blockSize}; crop the context to the last ${blockSize} tokens.`);
  const pos = arange(past, past + T, 1, { backend: idx.backend });
  return drop.call(add(wte.call(idx), wpe.call(pos)));
}

/** GPT.parts()[0]: token ids [B, T] → embeddings [B, T, embedDim]. */
class GptEmbeddings extends Module<[Tensor], Tensor> {
  constructor(readonly wte: Embedding, readonly wpe: Embedding, readonly drop: Dropout, readonly blockSize: number) {
    super();
  }

  override forward(idx: Tensor): Tensor {
    return embedTokens(this.wte, this.wpe, this.drop, this.blockSize, idx, 0);
  }
}

/** The last of GPT.parts(): final LayerNorm and the (tied) head, [B, T, embedDim] → logits. */
class GptHead extends Module<[Tensor], Tensor> {
  constructor(readonly ln_f: LayerNorm, readonly head: Linear) {
    super();
  }

  override forward(x: Tensor): Tensor {
    return this.head.call(this.ln_f.call(x));
  }
}

/** Samples an index from logits with temperature and optional top-k (temperature 0 = greedy). */
export function sampleToken(logits: ArrayLike<number>, options: { temperature?: number; topK?: number; generator?: Generator }): number {
  const n = logits.length;
  const temperature = options.temperature ?? 1;
  let best = 0;
  for (let i = 1; i < n; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature <= 0) return best;
  let threshold = -Infinity;
  if (options.topK !== undefined && options.topK > 0 && options.topK < n) {
    const sorted = Array.from(logits).sort((a, b) => b - a);
    threshold = sorted[options.topK - 1]!;
  }
  const max = logits[best]!;
  const weights = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (logits[i]! < threshold) continue;
    weights[i] = Math.exp((logits[i]! - max) / temperature);
    total += weights[i]!;
  }
  let u = (options.generator ?? defaultGenerator).uniform() * total;
  for (let i = 0; i < n; i++) {
    u -= weights[i]!;
    if (u < 0 && weights[i]! > 0) return i;
  }
  return best;
}

/** Cross-entropy helper shape: logits [B, T, V] → [B·T, V]. */
export function flattenLogits(logits: Tensor): Tensor {
  return reshape(logits, [-1, logits.shape[logits.rank - 1]!]);
}
