// Auto-parallel search: enumerate data/tensor/pipeline(/sequence) parallel degrees, micro-batch
// size, ZeRO stage, recomputation and interleaving; reject invalid or non-fitting configurations
// with the reason; rank the rest by predicted step time. The constraints are Megatron's (§3:
// n = t·p·d, m = B/(b·d); heads divisible by t; interleaving needs m % p = 0 and p > 2,
// Megatron-LM#750) plus memory (memory.ts). For MoE models the expert-parallel degree is searched
// too (a divisor of d and of the expert count). The step time comes from step-time.ts; the
// framework's communication overlaps (SearchOptions.overlap*) hold for every candidate, so turning
// one on can change which layout wins (a TP degree whose collectives now hide, say). When
// overlapped GEMMs are assumed slower (overlapComputeSlowdown > 0), an overlap can cost more than
// it hides, so each candidate also runs with the tensor- and expert-parallel overlaps (the ones
// that slow GEMMs) off, each or both, and keeps the fastest: those flags are switches a Megatron
// user sets per run.
import type { Conventions } from './conventions.js';
import type { Recompute } from './flops.js';
import { type ClusterSpec, clusterSize } from './hardware.js';
import { memoryPerDevice, type MemoryBreakdown } from './memory.js';
import type { TransformerSpec } from './model.js';
import { microBatchCount, parallelConfig, type Optimizer, type ParallelConfig, type ZeroStage } from './parallel-config.js';
import { stepTime, type StepTime } from './step-time.js';

export interface SearchOptions {
  /** Sequences per step; default: the model's published batch, else one per device. */
  globalBatch?: number;
  microBatches?: readonly number[];
  zeroStages?: readonly ZeroStage[];
  recompute?: readonly Recompute[];
  interleave?: readonly number[];
  sequenceParallel?: readonly boolean[];
  /** Expert-parallel degrees to try (MoE models only); default: every divisor of DP that divides the expert count. */
  expertParallel?: readonly number[];
  optimizer?: Optimizer;
  /** Whether the framework overlaps the gradient reduction with the backward pass (ParallelConfig.overlapGradReduce). Default false. */
  overlapGradReduce?: boolean;
  /** Whether ZeRO-3 gathers are prefetched a layer ahead (ParallelConfig.overlapParamGather). Default false. */
  overlapParamGather?: boolean;
  /** Whether tensor-parallel collectives are pipelined with their GEMMs (ParallelConfig.overlapTensorParallelComm). Default false. */
  overlapTensorParallelComm?: boolean;
  /** Whether expert all-to-alls are pipelined with the experts over token chunks (ParallelConfig.overlapExpertParallelComm). Default false. */
  overlapExpertParallelComm?: boolean;
  /** Token chunks of that overlap (ParallelConfig.expertOverlapChunks). Default 2. */
  expertOverlapChunks?: number;
  /** Whether the interleaved schedule's transfers run beside compute (ParallelConfig.overlapPipelineComm). Default false. */
  overlapPipelineComm?: boolean;
  /** Share by which overlapped GEMMs slow down (ParallelConfig.overlapComputeSlowdown). Default 0.
   * Above 0, each candidate keeps the TP and EP overlaps asked for only where they pay (see above). */
  overlapComputeSlowdown?: number;
  /** Share of device memory kept free for the allocator's cache and fragmentation (DeepSpeed#4527
   * et al. report real use well above the estimate). Default 0.1. */
  memoryReserve?: number;
  /** How many ranked configurations to return. Default 10. */
  top?: number;
}

export interface RankedConfig {
  config: ParallelConfig;
  step: StepTime;
  memory: MemoryBreakdown;
}

export interface RejectedConfig {
  config: ParallelConfig;
  reason: string;
}

export interface SearchResult {
  ranked: RankedConfig[];
  /** Count of rejected configurations per kind of reason. */
  rejectedByReason: Record<string, number>;
  /** A few rejected configurations with their full reasons, one or two per kind. */
  rejectedExamples: RejectedConfig[];
  evaluated: number;
  feasible: number;
  globalBatch: number;
}

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}

/** Why a configuration cannot run, or undefined if it is structurally valid. The first word(s) up
 * to ':' name the kind of reason. */
export function validateParallelConfig(m: TransformerSpec, c: ClusterSpec, cfg: ParallelConfig): string | undefined {
  const n = clusterSize(c);
  if (cfg.dp * cfg.tp * cfg.pp !== n) return `degrees: DP ${cfg.dp} × TP ${cfg.tp} × PP ${cfg.pp} = ${cfg.dp * cfg.tp * cfg.pp}, not the ${n} devices`;
  if (m.heads % cfg.tp !== 0) return `heads: ${m.heads} attention heads are not divisible by TP ${cfg.tp}`;
  if (m.ffn % cfg.tp !== 0) return `ffn: ffn width ${m.ffn} is not divisible by TP ${cfg.tp}`;
  if (cfg.sequenceParallel && cfg.tp === 1) return 'sequence-parallel: sequence parallelism needs TP > 1';
  if (m.layers % (cfg.pp * cfg.interleave) !== 0) return `layers: ${m.layers} layers do not split into PP ${cfg.pp} × ${cfg.interleave} chunks`;
  if (cfg.globalBatch % (cfg.microBatch * cfg.dp) !== 0) return `batch: global batch ${cfg.globalBatch} is not divisible by micro-batch ${cfg.microBatch} × DP ${cfg.dp}`;
  const mb = microBatchCount(cfg);
  if (cfg.interleave > 1) {
    if (cfg.pp <= 2) return `interleave: interleaving needs PP > 2, got PP ${cfg.pp}`;
    if (mb % cfg.pp !== 0) return `interleave: interleaving needs micro-batches (${mb}) divisible by PP ${cfg.pp}`;
  }
  const chunks = cfg.expertOverlapChunks;
  if (chunks !== undefined && !(Number.isInteger(chunks) && chunks >= 1)) return `overlap: expert overlap chunks must be a positive integer, got ${String(chunks)}`;
  const slowdown = cfg.overlapComputeSlowdown;
  if (slowdown !== undefined && !(slowdown >= 0 && slowdown < 1)) return `overlap: the overlapped-compute slowdown is a share in [0, 1) (0.05 = 5% slower), got ${String(slowdown)}`;
  if (cfg.zero > 0 && cfg.dp === 1) return `zero: ZeRO stage ${cfg.zero} shards over data-parallel ranks but DP is 1`;
  if (!Number.isInteger(cfg.ep) || cfg.ep < 1) return `expert-parallel: EP must be a positive integer, got ${String(cfg.ep)}`;
  if (cfg.ep > 1) {
    if (m.moe === undefined) return `expert-parallel: EP ${cfg.ep} needs an MoE model; '${m.name}' is dense`;
    if (m.moe.experts % cfg.ep !== 0) return `expert-parallel: ${m.moe.experts} experts do not split over EP ${cfg.ep}`;
    if (cfg.dp % cfg.ep !== 0) return `expert-parallel: EP ${cfg.ep} must divide DP ${cfg.dp} (expert ranks are data-parallel ranks)`;
    const shard = cfg.zeroShardGroup ?? cfg.dp;
    if (cfg.zero > 0 && shard % cfg.ep !== 0 && cfg.ep % shard !== 0) {
      return `expert-parallel: EP ${cfg.ep} and the ZeRO shard group ${shard} must nest (one a multiple of the other)`;
    }
  }
  return undefined;
}

/** The search options that say which communication the framework overlaps. */
export type OverlapOptions = Pick<SearchOptions, 'overlapGradReduce' | 'overlapParamGather' | 'overlapTensorParallelComm' | 'overlapExpertParallelComm' | 'expertOverlapChunks' | 'overlapPipelineComm' | 'overlapComputeSlowdown'>;

/** The framework's overlap settings the caller asked for; the same in every candidate, since they
 * say what the framework does rather than how to split the model. */
export function overlapsOf(opts: OverlapOptions): Pick<ParallelConfig, keyof OverlapOptions> {
  return {
    overlapGradReduce: opts.overlapGradReduce ?? false,
    overlapParamGather: opts.overlapParamGather ?? false,
    overlapTensorParallelComm: opts.overlapTensorParallelComm ?? false,
    overlapExpertParallelComm: opts.overlapExpertParallelComm ?? false,
    overlapPipelineComm: opts.overlapPipelineComm ?? false,
    ...(opts.expertOverlapChunks !== undefined ? { expertOverlapChunks: opts.expertOverlapChunks } : {}),
    ...(opts.overlapComputeSlowdown !== undefined ? { overlapComputeSlowdown: opts.overlapComputeSlowdown } : {}),
  };
}

/** Every combination the search tries on n devices (valid or not: validateParallelConfig says). */
function* candidateConfigs(m: TransformerSpec, n: number, globalBatch: number, opts: SearchOptions): Generator<ParallelConfig> {
  for (const tp of divisors(n)) {
    for (const pp of divisors(n / tp)) {
      const dp = n / (tp * pp);
      const eps = m.moe === undefined ? [1] : opts.expertParallel ?? divisors(dp).filter((e) => m.moe!.experts % e === 0);
      for (const ep of eps) {
        for (const microBatch of opts.microBatches ?? [1, 2, 4, 8]) {
          for (const zero of opts.zeroStages ?? [0, 1, 2, 3]) {
            for (const recompute of opts.recompute ?? ['none', 'selective', 'full']) {
              for (const interleave of opts.interleave ?? [1, 2, 4]) {
                for (const sequenceParallel of opts.sequenceParallel ?? [false, true]) {
                  yield parallelConfig({ dp, tp, pp, ep, microBatch, zero, recompute, interleave, sequenceParallel, globalBatch, optimizer: opts.optimizer ?? 'adam', ...overlapsOf(opts) });
                }
              }
            }
          }
        }
      }
    }
  }
}

/**
 * The config's step time, and with a compute slowdown for overlapped GEMMs the fastest of the
 * config with its TP and EP overlaps on or off (each of them; memory does not depend on them).
 */
function fastestOverlaps(m: TransformerSpec, conv: Conventions, c: ClusterSpec, config: ParallelConfig): { config: ParallelConfig; step: StepTime } {
  let best = { config, step: stepTime(m, conv, c, config) };
  if (!((config.overlapComputeSlowdown ?? 0) > 0)) return best;
  const tpChoices = config.overlapTensorParallelComm ? [true, false] : [false];
  const epChoices = config.overlapExpertParallelComm ? [true, false] : [false];
  for (const tp of tpChoices) {
    for (const ep of epChoices) {
      if (tp === config.overlapTensorParallelComm && ep === config.overlapExpertParallelComm) continue;
      const variant = { ...config, overlapTensorParallelComm: tp, overlapExpertParallelComm: ep };
      const step = stepTime(m, conv, c, variant);
      if (step.seconds < best.step.seconds) best = { config: variant, step };
    }
  }
  return best;
}

export function searchParallelConfigs(m: TransformerSpec, conv: Conventions, c: ClusterSpec, opts: SearchOptions = {}): SearchResult {
  const n = clusterSize(c);
  const globalBatch = opts.globalBatch ?? m.globalBatch ?? n;
  const reserve = opts.memoryReserve ?? 0.1;
  const usable = c.device.memory * (1 - reserve);
  const rejectedByReason: Record<string, number> = {};
  const rejectedExamples: RejectedConfig[] = [];
  const exampleKinds = new Map<string, number>();
  const feasible: RankedConfig[] = [];
  let evaluated = 0;
  const reject = (config: ParallelConfig, reason: string): void => {
    const kind = reason.split(':')[0]!;
    rejectedByReason[kind] = (rejectedByReason[kind] ?? 0) + 1;
    const seen = exampleKinds.get(kind) ?? 0;
    if (seen < 2) { rejectedExamples.push({ config, reason }); exampleKinds.set(kind, seen + 1); }
  };
  for (const config of candidateConfigs(m, n, globalBatch, opts)) {
    evaluated++;
    const invalid = validateParallelConfig(m, c, config);
    if (invalid !== undefined) { reject(config, invalid); continue; }
    const memory = memoryPerDevice(m, conv, config);
    if (memory.total > usable) {
      reject(config, `memory: needs ${(memory.total / 1e9).toFixed(1)} GB per device, ${(usable / 1e9).toFixed(1)} GB usable (${Math.round(reserve * 100)}% reserved)`);
      continue;
    }
    feasible.push({ ...fastestOverlaps(m, conv, c, config), memory });
  }
  feasible.sort((a, b) => a.step.seconds - b.step.seconds || a.memory.total - b.memory.total);
  return { ranked: feasible.slice(0, opts.top ?? 10), rejectedByReason, rejectedExamples, evaluated, feasible: feasible.length, globalBatch };
}
