// Parameter counts from the architecture. One general formula covers GPT (Megatron eq. 2),
// Llama (GQA, SwiGLU, RMSNorm, untied head), PaLM (MQA, parallel block, no biases, H·d ≠ h) and
// MoE (per-expert MLPs + router). See parallel-anchors.md §1.
import type { TransformerSpec } from './model.js';

export interface ParamBreakdown {
  /** Attention projections of one layer (Q, K, V, O with biases). */
  attentionPerLayer: number;
  /** One expert's (or the dense) MLP of one layer. */
  mlpPerLayer: number;
  /** Router of one MoE layer (0 for dense models). */
  routerPerLayer: number;
  /** All experts' MLPs of one MoE layer: what expert parallelism spreads over its ranks (0 for dense models). */
  expertsPerLayer: number;
  normsPerLayer: number;
  /** All parameters of one layer (all experts). */
  perLayer: number;
  /** Parameters of one layer that one token uses (top-k experts). */
  activePerLayer: number;
  /** Token embedding + learned positions. */
  embedding: number;
  /** Output projection when not tied to the embedding (0 when tied). */
  lmHead: number;
  finalNorm: number;
  total: number;
  /** Parameters one token touches: total minus the experts it is not routed to. */
  active: number;
  /** total minus embeddings and LM head (the "N" of Kaplan et al.). */
  nonEmbedding: number;
}

function normParams(m: TransformerSpec): number {
  // LayerNorm has a scale and (with biases) a shift; RMSNorm only a scale.
  return m.norm === 'layernorm' && m.biases ? 2 * m.hidden : m.hidden;
}

export function countParams(m: TransformerSpec): ParamBreakdown {
  const h = m.hidden;
  const qWidth = m.heads * m.headDim;
  const kvWidth = m.kvHeads * m.headDim;
  const b = m.biases ? 1 : 0;
  const attentionPerLayer = h * qWidth + 2 * h * kvWidth + qWidth * h + b * (qWidth + 2 * kvWidth + h);
  const mlpPerLayer = m.gatedMlp
    ? 3 * h * m.ffn + b * (2 * m.ffn + h)
    : 2 * h * m.ffn + b * (m.ffn + h);
  const experts = m.moe?.experts ?? 1;
  const topK = m.moe?.topK ?? 1;
  const routerPerLayer = m.moe === undefined ? 0 : h * experts;
  const normsPerLayer = (m.parallelBlock ? 1 : 2) * normParams(m);
  const perLayer = attentionPerLayer + experts * mlpPerLayer + routerPerLayer + normsPerLayer;
  const activePerLayer = attentionPerLayer + topK * mlpPerLayer + routerPerLayer + normsPerLayer;
  const embedding = m.vocab * h + (m.positions === 'learned' ? m.seqLen * h : 0);
  const lmHead = m.tiedEmbeddings ? 0 : m.vocab * h;
  const finalNorm = normParams(m);
  const total = m.layers * perLayer + embedding + lmHead + finalNorm;
  const active = m.layers * activePerLayer + embedding + lmHead + finalNorm;
  return {
    attentionPerLayer, mlpPerLayer, routerPerLayer, expertsPerLayer: m.moe === undefined ? 0 : experts * mlpPerLayer,
    normsPerLayer, perLayer, activePerLayer,
    embedding, lmHead, finalNorm, total, active,
    nonEmbedding: total - embedding - lmHead,
  };
}

/** Megatron eq. 2 (Narayanan et al. 2021, arXiv:2104.04473 §5.1): GPT with learned positions,
 * biases and tied embeddings; omits the final LayerNorm. Kept for checking against Table 1. */
export function megatronParamCount(layers: number, hidden: number, vocab: number, seqLen: number): number {
  const l = layers, h = hidden;
  return 12 * l * h * h * (1 + 13 / (12 * h) + (vocab + seqLen) / (12 * l * h));
}
