// Training FLOPs per token and per step, and MFU/HFU. 1 multiply-add = 2 FLOPs, counted whatever
// the precision (Megatron §5.1, PaLM App. B). See parallel-anchors.md §2 and §6.
import type { Conventions } from './conventions.js';
import { expertSlotsPerToken, type TransformerSpec } from './model.js';
import { countParams } from './params.js';

export type Recompute = 'none' | 'selective' | 'full';

export interface FlopsPerToken {
  /** One forward pass, including the attention score/value products. */
  forward: number;
  /** Model FLOPs: forward + backward (2× forward). What MFU counts. */
  model: number;
  /** Hardware FLOPs: model + what recomputation runs again (+ MoE capacity padding: experts
   * compute top-k × capacity-factor slots per token, not top-k). What HFU counts. */
  hardware: number;
  /** The attention-core part (QKᵀ and AV) of one forward pass, all layers. */
  attentionForward: number;
}

/** Attention core FLOPs of one forward pass per token for all layers: QKᵀ and AV, each
 * 2·s·H·d per token per layer (PaLM's 12LHQT is 3× this pair for training). */
function attentionCoreForward(m: TransformerSpec, c: Conventions): number {
  const full = 4 * m.layers * m.seqLen * m.heads * m.headDim;
  return c.attention === 'causal' ? full / 2 : full;
}

export function flopsPerToken(m: TransformerSpec, c: Conventions, recompute: Recompute = 'none'): FlopsPerToken {
  const p = countParams(m);
  const attn = attentionCoreForward(m, c);
  let forward: number;
  let layerForward: number;
  if (c.flops === 'palm-6n') {
    // PaLM App. B: 6N + 12·L·H·Q·T with N = all (active) parameters.
    forward = 2 * p.active + attn;
    layerForward = 2 * m.layers * p.activePerLayer + attn;
  } else {
    // Matmul count: each weight matrix element is one multiply-add per token. Biases, norms and
    // the embedding lookup are not matmuls; the (tied or not) LM head is.
    const h = m.hidden;
    const qWidth = m.heads * m.headDim, kvWidth = m.kvHeads * m.headDim;
    const attnWeights = 2 * h * qWidth + 2 * h * kvWidth;
    const mlpWeights = (m.gatedMlp ? 3 : 2) * h * m.ffn;
    const topK = m.moe?.topK ?? 1;
    const router = m.moe === undefined ? 0 : h * m.moe.experts;
    layerForward = m.layers * 2 * (attnWeights + topK * mlpWeights + router) + attn;
    forward = layerForward + 2 * m.vocab * h;
  }
  const model = 3 * forward;
  // Full recomputation reruns every layer's forward (not the LM head: Megatron eq. 3's V/16lh term);
  // selective reruns only the attention core (Korthikanti et al. 2022, §5).
  const extra = recompute === 'full' ? layerForward : recompute === 'selective' ? attn : 0;
  // Expert matmuls run on every slot, filled or padding: (k·cf − k) slots per token beyond the model's k.
  const paddingForward = m.moe === undefined ? 0 : 2 * m.layers * (expertSlotsPerToken(m) - m.moe.topK) * (m.gatedMlp ? 3 : 2) * m.hidden * m.ffn;
  const padding = (3 + (recompute === 'full' ? 1 : 0)) * paddingForward;
  return { forward, model, hardware: model + extra + padding, attentionForward: attn };
}

/** FLOPs of one training step over `sequences` sequences of the model's length. */
export function flopsPerStep(m: TransformerSpec, c: Conventions, sequences: number, recompute: Recompute = 'none'): FlopsPerToken {
  const f = flopsPerToken(m, c, recompute);
  const tokens = sequences * m.seqLen;
  return { forward: f.forward * tokens, model: f.model * tokens, hardware: f.hardware * tokens, attentionForward: f.attentionForward * tokens };
}

/** Megatron eq. 3 (arXiv:2104.04473): FLOPs per iteration assuming full recomputation. */
export function megatronIterationFlops(batch: number, seqLen: number, layers: number, hidden: number, vocab: number): number {
  const B = batch, s = seqLen, l = layers, h = hidden;
  return 96 * B * s * l * h * h * (1 + s / (6 * h) + vocab / (16 * l * h));
}

/** Total training FLOPs for a token budget: the 6ND rule plus attention (GPT-3 App. D). */
export function trainingFlops(m: TransformerSpec, c: Conventions, tokens: number): number {
  return flopsPerToken(m, c).model * tokens;
}

export interface Utilization {
  /** Model FLOPs utilization (PaLM App. B): excludes recomputation. */
  mfu: number;
  /** Hardware FLOPs utilization: includes recomputation. */
  hfu: number;
  /** Achieved model FLOP/s per device. */
  modelFlopsPerDevice: number;
  hardwareFlopsPerDevice: number;
}

export function utilization(
  m: TransformerSpec, c: Conventions, tokensPerSecond: number, devices: number, peakPerDevice: number, recompute: Recompute = 'none',
): Utilization {
  if (!(tokensPerSecond > 0) || !(devices > 0) || !(peakPerDevice > 0)) {
    throw new Error(`utilization needs positive tokens/s, devices and peak; got ${tokensPerSecond}, ${devices}, ${peakPerDevice}.`);
  }
  const f = flopsPerToken(m, c, recompute);
  const modelFlopsPerDevice = (tokensPerSecond * f.model) / devices;
  const hardwareFlopsPerDevice = (tokensPerSecond * f.hardware) / devices;
  return { mfu: modelFlopsPerDevice / peakPerDevice, hfu: hardwareFlopsPerDevice / peakPerDevice, modelFlopsPerDevice, hardwareFlopsPerDevice };
}
