// The decision procedure for parallelizing a training job, with the numbers behind each step:
//   1. Does the model (with its training state) fit on one device? If so, is the job time
//      acceptable on one device? If not → data parallelism over the cluster.
//   2. If it does not fit: memory techniques first (recomputation, micro-batching with gradient
//      accumulation, ZeRO/FSDP sharding over data-parallel ranks, CPU offload).
//   3. If those are not enough (or too slow): intra-op (tensor) and inter-op (pipeline)
//      parallelism, chosen by the auto-parallel search (TP within a node, PP across nodes, as
//      Megatron §3's takeaways recommend).
import type { Conventions } from './conventions.js';
import { formatBytes } from './conventions.js';
import { type ClusterSpec, clusterSize, cluster as makeCluster } from './hardware.js';
import { trainingFlops } from './flops.js';
import { memoryPerDevice } from './memory.js';
import type { TransformerSpec } from './model.js';
import { countParams } from './params.js';
import { describeParallelConfig, parallelConfig, type ParallelConfig } from './parallel-config.js';
import { searchParallelConfigs, type OverlapOptions, type SearchResult } from './search.js';
import { stepTime } from './step-time.js';

export interface AdviceStep {
  question: string;
  answer: string;
  /** The numbers the answer rests on. */
  numbers: Record<string, string>;
}

export interface Advice {
  steps: AdviceStep[];
  recommendation: ParallelConfig | undefined;
  /** Predicted days for the whole job under the recommendation. */
  days: number | undefined;
  summary: string;
  search?: SearchResult;
}

export interface AdviceOptions {
  /** Training tokens; default 20 per parameter (Chinchilla, Hoffmann et al. 2022). */
  tokens?: number;
  /** Longest acceptable job, in days. Default 30. */
  maxDays?: number;
  /** Share of device memory kept free (see SearchOptions.memoryReserve). Default 0.1. */
  memoryReserve?: number;
  /** The framework's communication overlaps (SearchOptions.overlapGradReduce … overlapComputeSlowdown),
   * used by the parallelism search of step 3. Default: none. */
  overlaps?: OverlapOptions;
}

export function advise(m: TransformerSpec, conv: Conventions, c: ClusterSpec, opts: AdviceOptions = {}): Advice {
  const params = countParams(m).total;
  const tokens = opts.tokens ?? 20 * params;
  const maxDays = opts.maxDays ?? 30;
  const usable = c.device.memory * (1 - (opts.memoryReserve ?? 0.1));
  const n = clusterSize(c);
  const unit = conv.memoryUnit;
  const fmt = (b: number): string => formatBytes(b, unit, 1);
  const steps: AdviceStep[] = [];
  const totalFlops = trainingFlops(m, conv, tokens);
  const single = makeCluster(1, 1, c.device.name, c.intraLink.name, c.interLink.name);
  const batch = m.globalBatch ?? n;
  const daysFor = (cl: ClusterSpec, cfg: ParallelConfig): number => {
    const st = stepTime(m, conv, cl, cfg);
    return (tokens / (cfg.globalBatch * m.seqLen)) * st.seconds / 86400;
  };

  // 1. One device.
  const one = parallelConfig({ globalBatch: batch, microBatch: 1 });
  const memOne = memoryPerDevice(m, conv, one);
  const fitsOne = memOne.total <= usable;
  steps.push({
    question: 'Does it fit on one device?',
    answer: fitsOne ? 'yes' : 'no',
    numbers: {
      parameters: `${(params / 1e9).toFixed(2)} B`,
      'model states': fmt(memOne.weights + memOne.gradients + memOne.optimizer),
      'activations (micro-batch 1, no recompute)': fmt(memOne.activations),
      total: fmt(memOne.total),
      [`usable on one ${c.device.name}`]: fmt(usable),
    },
  });
  if (fitsOne) {
    const days1 = daysFor(single, one);
    const ok = days1 <= maxDays;
    steps.push({
      question: `Is the job time acceptable on one device (≤ ${maxDays} days)?`,
      answer: ok ? 'yes: train on one device' : `no: ${days1.toFixed(1)} days → data parallelism`,
      numbers: { 'training FLOPs': totalFlops.toExponential(2), tokens: tokens.toExponential(2), days: days1.toFixed(1) },
    });
    if (ok) return { steps, recommendation: one, days: days1, summary: `Train on one ${c.device.name}: ${days1.toFixed(1)} days.` };
    const dpCfg = parallelConfig({ dp: n, globalBatch: Math.max(batch, n), microBatch: 1 });
    const dpDays = daysFor(c, dpCfg);
    steps.push({
      question: `Data parallel over all ${n} devices: fast enough?`,
      answer: dpDays <= maxDays ? 'yes' : 'no, even with every device',
      numbers: { days: dpDays.toFixed(2), 'devices': String(n), 'global batch': String(dpCfg.globalBatch) },
    });
    return { steps, recommendation: dpCfg, days: dpDays, summary: `Data parallel over ${n} devices (${describeParallelConfig(dpCfg)}): ${dpDays.toFixed(2)} days.` };
  }

  // 2. Memory techniques, in order of cost.
  const tries: { label: string; cfg: ParallelConfig }[] = [
    { label: 'selective recomputation', cfg: parallelConfig({ ...one, recompute: 'selective' }) },
    { label: 'full recomputation', cfg: parallelConfig({ ...one, recompute: 'full' }) },
  ];
  if (n > 1) {
    for (const zero of [1, 2, 3] as const) tries.push({ label: `ZeRO-${zero} over ${n} data-parallel ranks + full recomputation`, cfg: parallelConfig({ dp: n, globalBatch: Math.max(batch, n), zero, recompute: 'full' }) });
  }
  tries.push({ label: 'CPU offload of optimizer states and gradients + full recomputation', cfg: parallelConfig({ ...one, dp: n, globalBatch: Math.max(batch, n), zero: n > 1 ? 3 : 0, recompute: 'full', offload: 'optimizer' }) });
  for (const t of tries) {
    const mem = memoryPerDevice(m, conv, t.cfg);
    const fits = mem.total <= usable;
    const cl = t.cfg.dp > 1 ? c : single;
    const days = fits ? daysFor(cl, t.cfg) : undefined;
    steps.push({
      question: `With ${t.label}?`,
      answer: !fits ? `does not fit (${fmt(mem.total)} > ${fmt(usable)})` : days! <= maxDays ? 'fits, and is fast enough' : `fits, but takes ${days!.toFixed(1)} days`,
      numbers: { 'model states': fmt(mem.weights + mem.gradients + mem.optimizer), activations: fmt(mem.activations), temporary: fmt(mem.temporary), total: fmt(mem.total), ...(days !== undefined ? { days: days.toFixed(2) } : {}) },
    });
    if (fits && days! <= maxDays) return { steps, recommendation: t.cfg, days, summary: `${t.label}: ${describeParallelConfig(t.cfg)}, ${days!.toFixed(2)} days.` };
  }

  // 3. Intra- and inter-op parallelism.
  const search = searchParallelConfigs(m, conv, c, { ...opts.overlaps, globalBatch: batch, memoryReserve: opts.memoryReserve, top: 5 });
  const best = search.ranked[0];
  if (best === undefined) {
    steps.push({ question: 'With tensor and pipeline parallelism (auto-parallel search)?', answer: 'no configuration fits', numbers: { evaluated: String(search.evaluated), ...Object.fromEntries(Object.entries(search.rejectedByReason).map(([k, v]) => [`rejected (${k})`, String(v)])) } });
    return { steps, recommendation: undefined, days: undefined, summary: `No configuration of ${n} ${c.device.name} fits ${m.name}; add devices or use devices with more memory.`, search };
  }
  const days = (tokens / (best.config.globalBatch * m.seqLen)) * best.step.seconds / 86400;
  steps.push({
    question: 'With tensor and pipeline parallelism (auto-parallel search)?',
    answer: `yes: ${describeParallelConfig(best.config)}${days > maxDays ? `, but the job takes ${days.toFixed(1)} days (> ${maxDays}); add devices` : ''}`,
    numbers: {
      'step time': `${best.step.seconds.toFixed(2)} s`, MFU: `${(best.step.mfu * 100).toFixed(1)}%`, memory: fmt(best.memory.total),
      // Only where an overlap was asked for, so the numbers say what the step time already assumes.
      ...(best.step.hiddenCommSeconds > 0 ? { 'communication hidden under compute': `${best.step.hiddenCommSeconds.toFixed(2)} s` } : {}),
      ...(best.step.overlapSlowdownSeconds > 0 ? { 'GEMM slowdown from overlap': `${best.step.overlapSlowdownSeconds.toFixed(2)} s` } : {}),
      days: days.toFixed(1), 'configurations evaluated': String(search.evaluated), feasible: String(search.feasible),
    },
  });
  return { steps, recommendation: best.config, days, summary: `${describeParallelConfig(best.config)}: ${best.step.seconds.toFixed(2)} s/step, MFU ${(best.step.mfu * 100).toFixed(1)}%, ${days.toFixed(1)} days.`, search };
}
