// The knobs on which published numbers disagree. Every planner result carries the conventions it
// was computed with, and every printed report prints them, so that a number can be compared with a
// paper only after checking that both count the same way.
// Sources for each choice: ../../shared/research/parallel-anchors.md §0 (summarised per field below).

/** How training FLOPs per token are counted. */
export type FlopConvention =
  /** PaLM App. B: 6N (N = all parameters, embeddings included) + 12·L·H·Q·T attention term. */
  | 'palm-6n'
  /** Count the matmuls of the architecture (2 FLOPs per multiply-add, LM head included, embedding
   * lookup excluded). For a GPT this is Megatron eq. 3's `72Bslh²(1 + s/6h + V/12lh)`. */
  | 'matmul';

export interface Conventions {
  /** Bytes per parameter of mixed-precision Adam: 16 = fp16 grads (ZeRO paper), 18 = fp32 grads
   * (Megatron, EleutherAI calculator). Split as 2 (weights) + 2|4 (grads) + 12 (fp32 master, m, v). */
  bytesPerParam: 16 | 18;
  flops: FlopConvention;
  /** Peak used for MFU: dense, or NVIDIA's 2:4-structured-sparse figure (2× dense). Megatron-LM#1276. */
  peak: 'dense' | 'sparse';
  /** Memory units for printing: GB = 1e9 bytes (ZeRO paper), GiB = 2^30 (DeepSpeed prints GiB as "GB"). */
  memoryUnit: 'GB' | 'GiB';
  /** Attention FLOPs over the full s×s matrix (PaLM, Megatron) or only the causal half (maxtext#537). */
  attention: 'full' | 'causal';
  /** Flash attention: the s×s score/softmax/dropout tensors are never stored, which removes the
   * 5as/h term of Korthikanti's activation formula (Megatron-LM#1225, #1300). */
  flashAttention: boolean;
}

export const defaultConventions: Conventions = {
  bytesPerParam: 16,
  flops: 'matmul',
  peak: 'dense',
  memoryUnit: 'GB',
  attention: 'full',
  flashAttention: false,
};

export function withConventions(overrides: Partial<Conventions> = {}): Conventions {
  const c = { ...defaultConventions, ...overrides };
  if (c.bytesPerParam !== 16 && c.bytesPerParam !== 18) {
    throw new Error(`bytesPerParam must be 16 (fp16 grads, ZeRO) or 18 (fp32 grads, Megatron); got ${String(c.bytesPerParam)}.`);
  }
  return c;
}

/** One line that states every convention, printed next to every result. */
export function describeConventions(c: Conventions): string {
  return [
    `${c.bytesPerParam} B/param (Adam, ${c.bytesPerParam === 16 ? 'fp16' : 'fp32'} grads)`,
    `FLOPs: ${c.flops === 'palm-6n' ? '6N + 12LHQT (PaLM)' : 'matmul count (Megatron eq. 3)'}`,
    `1 FMA = 2 FLOPs`,
    `${c.peak} peak`,
    `${c.attention} attention FLOPs`,
    `flash attention ${c.flashAttention ? 'assumed' : 'not assumed'}`,
    `memory in ${c.memoryUnit}`,
  ].join('; ');
}

export function bytesIn(bytes: number, unit: Conventions['memoryUnit']): number {
  return unit === 'GB' ? bytes / 1e9 : bytes / 2 ** 30;
}

export function formatBytes(bytes: number, unit: Conventions['memoryUnit'], digits = 2): string {
  return `${bytesIn(bytes, unit).toFixed(digits)} ${unit}`;
}
