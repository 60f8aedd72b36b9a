// One way of running a training step on a cluster: the degrees of each kind of parallelism and the
// memory-saving options. Shared by the memory model, the step-time model and the search.
import type { Recompute } from './flops.js';
import { defaultExpertOverlapChunks } from './comm-overlap.js';

export type ZeroStage = 0 | 1 | 2 | 3;
export type Optimizer = 'adam' | 'sgd-momentum' | 'sgd';
/** Where model states live: `optimizer` moves optimizer states and fp32 gradients to host memory
 * (ZeRO-Offload); `optimizer+params` also moves the fp16 weights (ZeRO-Infinity). */
export type Offload = 'none' | 'optimizer' | 'optimizer+params';
export type PipelineScheduleKind = 'gpipe' | '1f1b';

export interface ParallelConfig {
  /** Data-parallel degree. */
  dp: number;
  /** Tensor (intra-layer, Megatron) parallel degree. */
  tp: number;
  /** Pipeline (inter-layer) parallel degree. */
  pp: number;
  /**
   * Expert-parallel degree (MoE models; DeepSpeed-MoE, Megatron-Core): each MoE layer's experts
   * are spread over `ep` ranks of the data-parallel group, so a device holds experts/ep of them,
   * and tokens travel to their experts and back by all-to-all. Dense weights stay replicated over
   * all dp ranks; each expert is replicated over dp/ep of them (its gradient all-reduce and ZeRO
   * sharding run over that expert-data-parallel group). Must divide dp and the expert count.
   * Default 1.
   */
  ep: number;
  /** Megatron sequence parallelism in the non-tensor-parallel regions (needs tp > 1). */
  sequenceParallel: boolean;
  /** Sequences per micro-batch. */
  microBatch: number;
  /** Sequences per optimizer step, over all data-parallel ranks. */
  globalBatch: number;
  zero: ZeroStage;
  /** Ranks a ZeRO stage shards over; defaults to dp. FSDP's HYBRID_SHARD shards within a node only. */
  zeroShardGroup?: number;
  recompute: Recompute;
  /** Model chunks per pipeline device (interleaved 1F1B); 1 = no interleaving. */
  interleave: number;
  schedule: PipelineScheduleKind;
  optimizer: Optimizer;
  offload: Offload;
  /**
   * Reduce gradients in buckets while the backward pass still runs (PyTorch DDP's default,
   * Megatron's --overlap-grad-reduce): with gradient accumulation only the last micro-batch's
   * backward can hide them. Default false, as in the Megatron-LM runs of its 2021 paper.
   */
  overlapGradReduce: boolean;
  /**
   * Under ZeRO-3, gather the next layer's parameters while the current layer computes (DeepSpeed
   * ZeRO-3's prefetch; PyTorch FSDP's forward_prefetch / backward_prefetch; tessera's
   * FullyShardedDataParallel `prefetch`). Default false: every gather on the critical path.
   */
  overlapParamGather: boolean;
  /**
   * Pipeline tensor-parallel communication with the GEMMs next to it. With sequence parallelism:
   * Megatron-LM's --tp-comm-overlap (TransformerEngine userbuffers): each all-gather is a ring
   * exchange under the chunks of the GEMM it feeds, each forward reduce-scatter follows the GEMM
   * in 4 pipelined chunks, and the backward reduce-scatter runs beside the weight-gradient GEMM.
   * Without it (--tp-comm-overlap requires sequence parallelism), Megatron's asynchronous
   * backward all-reduce beside the weight-gradient GEMM; the forward all-reduces stay exposed.
   * MoE layers' MLP communication is not overlapped (TE's overlap covers its dense linear layers).
   * Default false, as in the Megatron-LM runs of its 2021 paper.
   */
  overlapTensorParallelComm: boolean;
  /**
   * Split each MoE layer's tokens into `expertOverlapChunks` chunks whose dispatch and combine
   * all-to-alls pipeline with the experts' GEMMs (Tutel's a2a_ffn_overlap_degree). Default false.
   */
  overlapExpertParallelComm: boolean;
  /** Token chunks of an overlapped expert all-to-all (≥ 1; 1 hides nothing). Default
   * defaultExpertOverlapChunks (2). */
  expertOverlapChunks?: number;
  /**
   * Run pipeline sends and receives beside compute (Megatron-LM's --overlap-p2p-comm). Like
   * Megatron, only the interleaved schedule (interleave > 1) uses it: in plain 1F1B each pass
   * waits for the transfer it needs, so Megatron keeps its blocking transfers. Default false.
   */
  overlapPipelineComm: boolean;
  /**
   * Share by which a GEMM slows while communication of the three overlaps above runs beside it
   * (communication kernels take SMs and memory bandwidth; Megatron users report roughly 5-10%).
   * An assumption to set, not a measurement. Default 0. Does not apply to overlapGradReduce or
   * overlapParamGather, whose results predate it.
   */
  overlapComputeSlowdown?: number;
}

export const defaultParallelConfig: ParallelConfig = {
  dp: 1, tp: 1, pp: 1, ep: 1, sequenceParallel: false, microBatch: 1, globalBatch: 1, zero: 0,
  recompute: 'none', interleave: 1, schedule: '1f1b', optimizer: 'adam', offload: 'none',
  overlapGradReduce: false, overlapParamGather: false,
  overlapTensorParallelComm: false, overlapExpertParallelComm: false, overlapPipelineComm: false,
};

export function parallelConfig(overrides: Partial<ParallelConfig>): ParallelConfig {
  return { ...defaultParallelConfig, ...overrides };
}

/** Ranks a ZeRO stage shards the dense model states over (1 without ZeRO). */
export function zeroShardRanks(c: ParallelConfig): number {
  return c.zero === 0 ? 1 : (c.zeroShardGroup ?? c.dp);
}

/** Ranks a ZeRO stage shards the expert model states over: the expert-data-parallel part of the
 * shard group (each expert lives on dp/ep ranks), 1 without ZeRO. */
export function expertZeroShardRanks(c: ParallelConfig): number {
  return c.zero === 0 ? 1 : Math.max(1, zeroShardRanks(c) / c.ep);
}

/** Micro-batches per pipeline per step: B / (b·d). */
export function microBatchCount(c: ParallelConfig): number {
  return c.globalBatch / (c.microBatch * c.dp);
}

export type FsdpStrategy = 'FULL_SHARD' | 'SHARD_GRAD_OP' | 'NO_SHARD' | 'HYBRID_SHARD';

/** PyTorch FSDP's ShardingStrategy as ZeRO settings (parallel-anchors.md §3): FULL_SHARD ≈ ZeRO-3,
 * SHARD_GRAD_OP ≈ ZeRO-2, NO_SHARD ≈ DDP, HYBRID_SHARD = ZeRO-3 inside a node, replicas across. */
export function fsdpAsZero(strategy: FsdpStrategy, devicesPerNode: number): Pick<ParallelConfig, 'zero' | 'zeroShardGroup'> {
  switch (strategy) {
    case 'FULL_SHARD': return { zero: 3 };
    case 'SHARD_GRAD_OP': return { zero: 2 };
    case 'NO_SHARD': return { zero: 0 };
    case 'HYBRID_SHARD': return { zero: 3, zeroShardGroup: devicesPerNode };
  }
}

export function describeParallelConfig(c: ParallelConfig): string {
  const parts = [`DP ${c.dp}`, `TP ${c.tp}${c.sequenceParallel ? '+SP' : ''}`, `PP ${c.pp}${c.interleave > 1 ? ` (v=${c.interleave})` : ''}`];
  if (c.ep > 1) parts.push(`EP ${c.ep}`);
  parts.push(`mb ${c.microBatch}`, `ZeRO ${c.zero}`, `recompute ${c.recompute}`);
  if (c.offload !== 'none') parts.push(`offload ${c.offload}`);
  if (c.overlapGradReduce) parts.push('gradient reduction overlapped');
  if (c.overlapParamGather && c.zero === 3) parts.push('parameter gathers prefetched');
  // Each overlap is named only where it applies, so the text says what the step-time model did.
  if (c.overlapTensorParallelComm && c.tp > 1) parts.push(c.sequenceParallel ? 'TP communication overlapped with GEMMs' : 'TP backward all-reduce overlapped');
  if (c.overlapExpertParallelComm && c.ep > 1 && (c.expertOverlapChunks ?? defaultExpertOverlapChunks) > 1) parts.push(`EP all-to-all overlapped (${c.expertOverlapChunks ?? defaultExpertOverlapChunks} chunks)`);
  if (c.overlapPipelineComm && c.pp > 1 && c.interleave > 1) parts.push('PP transfers overlapped');
  if ((c.overlapComputeSlowdown ?? 0) > 0 && (c.overlapTensorParallelComm || c.overlapExpertParallelComm)) parts.push(`overlapped GEMMs ${Math.round((c.overlapComputeSlowdown ?? 0) * 100)}% slower`);
  return parts.join(', ');
}
