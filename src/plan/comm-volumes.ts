// Bytes each device sends per training step for each kind of parallelism (Megatron §3.2 for TP and
// PP, ZeRO §7 for DP/ZeRO, Korthikanti §4.2.2 for sequence parallelism). A ring collective over r
// ranks sends (r−1)/r of its buffer per reduce-scatter or all-gather phase, so an all-reduce sends
// 2(r−1)/r of it.
import type { Conventions } from './conventions.js';
import type { TransformerSpec } from './model.js';
import { countParams } from './params.js';
import { microBatchCount, type ParallelConfig } from './parallel-config.js';

export interface CommVolumes {
  /** Tensor parallel: 4 all-reduces (or SP's reduce-scatter + all-gather pairs) of b·s·h per layer
   * per micro-batch, 6 with full recomputation: 8bsh(t−1)/t elements sent per layer forward+backward. */
  tensorParallel: number;
  /** Pipeline: one b·s·h activation forward and one gradient backward per stage boundary per
   * micro-batch (b·s·h/t each with Megatron's scatter/gather), ×v when interleaved. */
  pipelineParallel: number;
  /** Data parallel gradient all-reduce (ZeRO-1/2: reduce-scatter + all-gather, the same 2Ψ). */
  dataParallel: number;
  /** ZeRO-3's extra parameter all-gather (the third Ψ: 1.5× DP in total). */
  zero3: number;
  total: number;
}

export function communicationVolumes(m: TransformerSpec, conv: Conventions, cfg: ParallelConfig): CommVolumes {
  const p = countParams(m);
  const t = cfg.tp, d = cfg.dp, pp = cfg.pp;
  const act = 2; // bytes per activation element
  const mb = microBatchCount(cfg);
  const bsh = cfg.microBatch * m.seqLen * m.hidden;
  const layersPerStage = m.layers / pp;
  const allReduces = 4 + (cfg.recompute === 'full' ? 2 : 0);
  const tensorParallel = t === 1 ? 0 : mb * layersPerStage * allReduces * act * bsh * (2 * (t - 1)) / t;
  const pipelineParallel = pp === 1 ? 0 : mb * Math.max(1, cfg.interleave) * 2 * act * bsh / t;
  const stageParams = (layersPerStage * p.perLayer + Math.max(p.embedding, m.tiedEmbeddings ? m.vocab * m.hidden : p.lmHead)) / t;
  const gradBytes = conv.bytesPerParam === 18 ? 4 : 2;
  const dataParallel = d === 1 ? 0 : gradBytes * stageParams * (2 * (d - 1)) / d;
  const shard = cfg.zeroShardGroup ?? d;
  const zero3 = cfg.zero === 3 && shard > 1 ? 2 * stageParams * (shard - 1) / shard : 0;
  return { tensorParallel, pipelineParallel, dataParallel, zero3, total: tensorParallel + pipelineParallel + dataParallel + zero3 };
}
