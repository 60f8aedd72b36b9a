// Bytes each device sends per training step for each kind of parallelism (Megatron §3.2 for TP and
// PP, ZeRO §7 for DP/ZeRO, Korthikanti §4.2.2 for sequence parallelism). A ring collective over r
// ranks sends (r−1)/r of its buffer per reduce-scatter or all-gather phase, so an all-reduce sends
// 2(r−1)/r of it. Expert parallelism (DeepSpeed-MoE, Rajbhandari et al. 2022, arXiv:2201.05596;
// Megatron-Core MoE): an all-to-all over ep ranks sends (ep−1)/ep of its buffer.
import type { Conventions } from './conventions.js';
import { expertSlotsPerToken, type TransformerSpec } from './model.js';
import { countParams } from './params.js';
import { microBatchCount, zeroShardRanks, type ParallelConfig } from './parallel-config.js';

export interface CommVolumes {
  /** Tensor parallel: 4 all-reduces (or SP's reduce-scatter + all-gather pairs) of b·s·h per layer
   * per micro-batch, 6 with full recomputation: 8bsh(t−1)/t elements sent per layer forward+backward. */
  tensorParallel: number;
  /** Pipeline: one b·s·h activation forward and one gradient backward per stage boundary per
   * micro-batch (b·s·h/t each with Megatron's scatter/gather), ×v when interleaved. */
  pipelineParallel: number;
  /** Expert parallel: per MoE layer per micro-batch, a dispatch and a combine all-to-all forward
   * and both again backward (6 with full recomputation), each of the device's b·s·k·cf·h/t token
   * slots (sequence parallelism splits tokens over TP); (ep−1)/ep of each leaves the device. */
  expertParallel: number;
  /** Data parallel gradient all-reduce (ZeRO-1/2: reduce-scatter + all-gather, the same 2Ψ): dense
   * gradients over dp ranks, expert gradients over the dp/ep ranks that hold each expert. */
  dataParallel: number;
  /** ZeRO-3's extra parameter all-gather (the third Ψ: 1.5× DP in total). */
  zero3: number;
  total: number;
}

export function communicationVolumes(m: TransformerSpec, conv: Conventions, cfg: ParallelConfig): CommVolumes {
  const t = cfg.tp, d = cfg.dp, pp = cfg.pp;
  const act = 2; // bytes per activation element
  const mb = microBatchCount(cfg);
  const bsh = cfg.microBatch * m.seqLen * m.hidden;
  const layersPerStage = m.layers / pp;
  const allReduces = 4 + (cfg.recompute === 'full' ? 2 : 0);
  const tensorParallel = t === 1 ? 0 : mb * layersPerStage * allReduces * act * bsh * (2 * (t - 1)) / t;
  const pipelineParallel = pp === 1 ? 0 : mb * Math.max(1, cfg.interleave) * 2 * act * bsh / t;
  const ep = cfg.ep;
  const slotsBytes = act * (cfg.microBatch * m.seqLen / (t > 1 && cfg.sequenceParallel ? t : 1)) * expertSlotsPerToken(m) * m.hidden;
  const allToAlls = 4 + (cfg.recompute === 'full' ? 2 : 0);
  const expertParallel = ep === 1 || m.moe === undefined ? 0 : mb * layersPerStage * allToAlls * slotsBytes * (ep - 1) / ep;
  const { dense, expert } = stageParamsPerDevice(m, cfg);
  const gradBytes = conv.bytesPerParam === 18 ? 4 : 2;
  const allReduceShare = (r: number): number => (r === 1 ? 0 : (2 * (r - 1)) / r);
  const dataParallel = gradBytes * (dense * allReduceShare(d) + expert * allReduceShare(d / ep));
  // ZeRO-3 gathers each weight from the ranks that shard it: dense over the shard group, each
  // expert over that group's expert-data-parallel part.
  const shard = cfg.zero === 3 ? zeroShardRanks(cfg) : 1;
  const expertShard = Math.max(1, shard / ep);
  const zero3 = cfg.zero === 3 ? 2 * (dense * (shard - 1) / shard + expert * (expertShard - 1) / expertShard) : 0;
  return { tensorParallel, pipelineParallel, expertParallel, dataParallel, zero3, total: tensorParallel + pipelineParallel + expertParallel + dataParallel + zero3 };
}

/**
 * Parameters of the most loaded pipeline stage on one device, split into the dense part (over TP)
 * and the MoE experts' part (experts/ep of each MoE layer, over TP): what the data-parallel
 * reduction and the ZeRO-3 gathers move. One stage holds the embedding, the LM head and the final
 * norm; with a pipeline, the first stage holds the embedding and the last the LM head (a tied
 * embedding's copy, as Megatron keeps) and the final norm, and the larger end is counted.
 */
export function stageParamsPerDevice(m: TransformerSpec, cfg: Pick<ParallelConfig, 'tp' | 'pp' | 'ep'>): { dense: number; expert: number } {
  const p = countParams(m);
  const layersPerStage = m.layers / cfg.pp;
  const ends = cfg.pp === 1
    ? p.embedding + p.lmHead + p.finalNorm
    : Math.max(p.embedding, (m.tiedEmbeddings ? m.vocab * m.hidden : p.lmHead) + p.finalNorm);
  const expert = (layersPerStage * p.expertsPerLayer) / (cfg.tp * cfg.ep);
  const dense = (layersPerStage * (p.perLayer - p.expertsPerLayer) + ends) / cfg.tp;
  return { dense, expert };
}
