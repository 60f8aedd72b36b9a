// A transformer described by plain numbers: what the planner needs to count parameters, FLOPs,
// activation memory and communication. Presets live in presets.ts.

export interface MoeSpec {
  /** Experts per MoE layer (every layer's MLP is an MoE layer). */
  experts: number;
  /** Experts each token is routed to. */
  topK: number;
  /**
   * Slots per expert as a multiple of its balanced share of the routed tokens (GShard/Switch's
   * capacity factor; default 1). Expert inputs, their all-to-all exchange and the expert matmuls
   * are sized by it (padded above 1, tokens dropped below); a dropless router with perfectly
   * balanced load is 1.
   */
  capacityFactor?: number;
}

export interface TransformerSpec {
  name: string;
  layers: number;
  /** d_model. */
  hidden: number;
  /** Query heads. */
  heads: number;
  /** Key/value heads: = heads (MHA), 1 (MQA), in between (GQA). */
  kvHeads: number;
  /** Per-head width; PaLM shows it need not equal hidden/heads. */
  headDim: number;
  /** MLP intermediate width (per expert for MoE). */
  ffn: number;
  vocab: number;
  /** Training sequence length. */
  seqLen: number;
  /** SwiGLU/GeGLU: three MLP matrices instead of two. */
  gatedMlp: boolean;
  /** Input embedding shared with the output projection. */
  tiedEmbeddings: boolean;
  /** Biases in linear layers and norms (GPT: yes; Llama, PaLM: no). */
  biases: boolean;
  norm: 'layernorm' | 'rmsnorm';
  /** Learned absolute positions add seqLen·hidden parameters; rotary adds none. */
  positions: 'learned' | 'rotary';
  /** PaLM's parallel attention+MLP block: one norm per layer instead of two. */
  parallelBlock: boolean;
  moe?: MoeSpec;
  /** Global batch in sequences used by the model's paper, when it published one. */
  globalBatch?: number;
}

export type TransformerInput = Pick<TransformerSpec, 'name' | 'layers' | 'hidden' | 'heads' | 'vocab' | 'seqLen'> &
  Partial<Omit<TransformerSpec, 'name' | 'layers' | 'hidden' | 'heads' | 'vocab' | 'seqLen'>>;

/** Expert slots each token fills: top-k × the capacity factor (1 for a dense model). */
export function expertSlotsPerToken(m: TransformerSpec): number {
  return m.moe === undefined ? 1 : m.moe.topK * (m.moe.capacityFactor ?? 1);
}

/** Fills the GPT-style defaults (MHA, ffn = 4h, biases, LayerNorm, learned positions, tied
 * embeddings) and validates the result. */
export function transformer(input: TransformerInput): TransformerSpec {
  const spec: TransformerSpec = {
    kvHeads: input.heads,
    headDim: input.hidden / input.heads,
    ffn: 4 * input.hidden,
    gatedMlp: false,
    tiedEmbeddings: true,
    biases: true,
    norm: 'layernorm',
    positions: 'learned',
    parallelBlock: false,
    ...input,
  };
  validateTransformer(spec);
  return spec;
}

export function validateTransformer(m: TransformerSpec): void {
  const positive: (keyof TransformerSpec)[] = ['layers', 'hidden', 'heads', 'kvHeads', 'headDim', 'ffn', 'vocab', 'seqLen'];
  for (const k of positive) {
    const v = m[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new Error(`model '${m.name}': ${k} must be a positive integer, got ${String(v)}.`);
    }
  }
  if (m.heads % m.kvHeads !== 0) {
    throw new Error(`model '${m.name}': heads (${m.heads}) must be a multiple of kvHeads (${m.kvHeads}) for grouped-query attention.`);
  }
  if (m.moe !== undefined) {
    const { experts, topK } = m.moe;
    if (!Number.isInteger(experts) || !Number.isInteger(topK) || topK < 1 || topK > experts) {
      throw new Error(`model '${m.name}': MoE needs 1 <= topK <= experts (integers); got experts=${experts}, topK=${topK}.`);
    }
    const cf = m.moe.capacityFactor;
    if (cf !== undefined && !(cf > 0 && Number.isFinite(cf))) {
      throw new Error(`model '${m.name}': MoE capacityFactor must be a finite number > 0 (1 = the balanced share; below 1 drops tokens), got ${String(cf)}.`);
    }
  }
}
