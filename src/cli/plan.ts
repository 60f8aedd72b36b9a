// `tessera plan`: the parallelism planner on the command line. Text tables by default, JSON with
// --json, a self-contained HTML report with --html FILE.
import { writeFileSync } from 'node:fs';
import * as plan from '../plan/index.js';
import * as viz from '../viz/index.js';

const usageText = `usage:
  tessera plan [search] --model M --cluster C [--batch B] [--seq S] [--top N] [overlaps] [--json] [--html FILE]
  tessera plan memory   --model M [--cluster C] [--dp D --tp T --pp P --ep E --mb B --batch B --zero 0-3 | --fsdp FULL_SHARD|SHARD_GRAD_OP|NO_SHARD|HYBRID_SHARD]
                        [--recompute none|selective|full] [--sp] [--interleave V] [--schedule 1f1b|gpipe]
                        [--optimizer adam|sgd-momentum|sgd] [--offload none|optimizer|optimizer+params] [--json]
  tessera plan pipeline --schedule NAME --stages P --microbatches M [--forward T|T1,T2,.. --backward T|..]
                        [--p2p T] [--interleave V] [--slices K] [--svg FILE] [--json]
  tessera plan comm     --op all-reduce|all-to-all|.. --bytes N --ranks P --link nvlink3 [--json]
  tessera plan mfu      --model M --cluster C --tokens-per-second X [--recompute ..] [--json]
  tessera plan shard    --model M [--tp T] [--link nvlink3] [--json]
  tessera plan models | devices

overlaps (what the framework hides under compute; default none, as in Megatron-LM's 2021 runs):
  --overlap-grad-reduce   gradient buckets reduced during the last backward pass (DDP, Megatron)
  --overlap-param-gather  ZeRO-3 gathers prefetched one layer ahead (DeepSpeed, FSDP)
  --tp-comm-overlap       TP collectives pipelined with their GEMMs (Megatron/TransformerEngine, with sequence
                          parallelism; without it only the backward all-reduce hides)
  --ep-comm-overlap [--ep-overlap-chunks C]  MoE all-to-alls pipelined with the experts over C token chunks (Tutel; C = 2)
  --overlap-p2p-comm      interleaved-schedule transfers beside compute (Megatron; no effect without interleaving)
  --overlap-slowdown F    overlapped GEMMs run F slower (an assumption; Megatron users report 0.05-0.1; default 0)

conventions (printed with every result):
  --bytes-per-param 16|18  --flops matmul|palm-6n  --peak dense|sparse  --unit GB|GiB
  --attention full|causal  --flash
schedules: ${plan.scheduleNames.join(', ')}
models: ${[...plan.modelPresets.keys()].join(', ')}
clusters: NODESxPER_NODExDEVICE (128x8xH100), COUNTxDEVICE (1024xA100) or DEVICE`;

/** Parsed `--name value` / `--flag` options. */
export class Options {
  private readonly values = new Map<string, string | true>();
  readonly positional: string[] = [];
  constructor(args: readonly string[], private readonly flags: ReadonlySet<string> = new Set(['json', 'sp', 'flash', 'help', 'overlap-grad-reduce', 'overlap-param-gather', 'tp-comm-overlap', 'ep-comm-overlap', 'overlap-p2p-comm'])) {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '-h') { this.values.set('help', true); continue; }
      if (!a.startsWith('--')) { this.positional.push(a); continue; }
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      if (eq >= 0) this.values.set(name, a.slice(eq + 1));
      else if (this.flags.has(name)) this.values.set(name, true);
      else {
        const v = args[i + 1];
        if (v === undefined || v.startsWith('--')) throw new Error(`option --${name} needs a value.`);
        this.values.set(name, v);
        i++;
      }
    }
  }
  has(name: string): boolean { return this.values.has(name); }
  flag(name: string): boolean { return this.values.get(name) === true; }
  string(name: string): string | undefined {
    const v = this.values.get(name);
    if (v === true) throw new Error(`option --${name} needs a value.`);
    return v;
  }
  required(name: string, hint: string): string {
    const v = this.string(name);
    if (v === undefined) throw new Error(`missing --${name} (${hint}).`);
    return v;
  }
  number(name: string, fallback: number): number;
  number(name: string): number | undefined;
  number(name: string, fallback?: number): number | undefined {
    const v = this.string(name);
    if (v === undefined) return fallback;
    const x = Number(v);
    if (!Number.isFinite(x)) throw new Error(`--${name} must be a number, got '${v}'.`);
    return x;
  }
  choice<const T extends string>(name: string, allowed: readonly T[], fallback: NoInfer<T>): T {
    const v = this.string(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${name} must be one of ${allowed.join(', ')}; got '${v}'.`);
    return v as T;
  }
  numbers(name: string): number | number[] | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const xs = v.split(',').map(Number);
    if (xs.some((x) => !Number.isFinite(x))) throw new Error(`--${name} must be a number or comma-separated numbers, got '${v}'.`);
    return xs.length === 1 ? xs[0]! : xs;
  }
}

export function conventionsFrom(o: Options): plan.Conventions {
  return plan.withConventions({
    bytesPerParam: Number(o.choice('bytes-per-param', ['16', '18'], '16')) as 16 | 18,
    flops: o.choice('flops', ['matmul', 'palm-6n'], 'matmul'),
    peak: o.choice('peak', ['dense', 'sparse'], 'dense'),
    memoryUnit: o.choice('unit', ['GB', 'GiB'], 'GB'),
    attention: o.choice('attention', ['full', 'causal'], 'full'),
    flashAttention: o.flag('flash'),
  });
}

export function modelFrom(o: Options): plan.TransformerSpec {
  const base = plan.modelPreset(o.required('model', `one of: ${[...plan.modelPresets.keys()].join(', ')}`));
  const seq = o.number('seq');
  return seq === undefined ? base : plan.transformer({ ...base, seqLen: seq });
}

export function clusterFrom(o: Options, fallback?: string): plan.ClusterSpec {
  const text = o.string('cluster') ?? fallback;
  if (text === undefined) throw new Error('missing --cluster (e.g. 128x8xH100, 1024xA100 or H100).');
  return plan.parseCluster(text);
}

/** Right-aligned text table; the first column is left-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const secs = (x: number): string => (x >= 1 ? `${x.toFixed(2)} s` : `${(x * 1e3).toFixed(2)} ms`);

function modelSummary(m: plan.TransformerSpec, conv: plan.Conventions): string[] {
  const p = plan.countParams(m);
  const f = plan.flopsPerToken(m, conv);
  return [
    `model    ${m.name}: ${m.layers} layers, hidden ${m.hidden}, ${m.heads} heads (${m.kvHeads} KV) × ${m.headDim}, ffn ${m.ffn}${m.gatedMlp ? ' (gated)' : ''}, vocab ${m.vocab}, seq ${m.seqLen}${m.moe ? `, ${m.moe.experts} experts top-${m.moe.topK}` : ''}`,
    `params   ${(p.total / 1e9).toFixed(3)} B${m.moe ? ` (${(p.active / 1e9).toFixed(3)} B active)` : ''}; training FLOPs/token ${f.model.toExponential(3)} (${(f.model / p.active).toFixed(2)} × N)`,
  ];
}

/** A ranked configuration as a table row; MoE models get an EP column after PP. */
function configRow(r: plan.RankedConfig, unit: plan.Conventions['memoryUnit'], rank: number, moe: boolean): string[] {
  const c = r.config;
  return [String(rank), String(c.dp), `${c.tp}${c.sequenceParallel ? '+SP' : ''}`, String(c.pp), ...(moe ? [String(c.ep)] : []), String(c.interleave), String(c.microBatch), String(r.step.microBatches),
    String(c.zero), c.recompute, secs(r.step.seconds), pct(r.step.mfu), plan.formatBytes(r.memory.total, unit, 1)];
}
const configHeader = (moe: boolean): string[] => ['#', 'DP', 'TP', 'PP', ...(moe ? ['EP'] : []), 'v', 'mb', 'm', 'ZeRO', 'recompute', 'step', 'MFU', 'memory'];

function memoryRows(mem: plan.MemoryBreakdown, unit: plan.Conventions['memoryUnit']): string[][] {
  const rows: [string, number][] = [['weights', mem.weights], ['gradients', mem.gradients], ['optimizer states', mem.optimizer], ['activations', mem.activations], ['temporary buffers', mem.temporary], ['total', mem.total]];
  const out = rows.map(([k, v]) => [k, plan.formatBytes(v, unit)]);
  if (mem.hostOffloaded > 0) out.push(['offloaded to host', plan.formatBytes(mem.hostOffloaded, unit)]);
  return out;
}

/** "TP 1.77 s + PP 200.9 ms": the hidden communication by kind, the kinds with any. */
function hiddenKinds(s: plan.StepTime): string {
  const names = { dataParallel: 'DP', tensorParallel: 'TP', expertParallel: 'EP', pipeline: 'PP' } as const;
  return (Object.keys(names) as (keyof typeof names)[]).filter((k) => s.hiddenCommByKind[k] > 0).map((k) => `${names[k]} ${secs(s.hiddenCommByKind[k])}`).join(' + ');
}

/** The step's pipeline, simulated from the step-time model's per-micro-batch times. */
function pipelineOfBest(best: plan.RankedConfig): plan.PipelineResult | undefined {
  const c = best.config;
  if (c.pp === 1) return undefined;
  const m = best.step.microBatches;
  const interleaved = c.interleave > 1;
  return plan.simulatePipeline({
    schedule: interleaved ? 'interleaved-1f1b' : '1f1b', stages: c.pp, microBatches: m, interleave: interleaved ? c.interleave : undefined,
    forward: best.step.forwardPerMicroBatch, backward: best.step.backwardPerMicroBatch,
  });
}

async function searchCommand(o: Options): Promise<number> {
  const m = modelFrom(o), conv = conventionsFrom(o), c = clusterFrom(o);
  const t0 = performance.now();
  const r = plan.searchParallelConfigs(m, conv, c, { globalBatch: o.number('batch'), top: o.number('top', 10), ...overlapsFrom(o) });
  const ms = performance.now() - t0;
  const moe = m.moe !== undefined;
  if (o.flag('json')) {
    console.log(JSON.stringify({ model: m, cluster: plan.describeCluster(c), conventions: conv, searchMilliseconds: ms, ...r }, null, 2));
  } else {
    const lines = [...modelSummary(m, conv), `cluster  ${plan.describeCluster(c)}`, `batch    ${r.globalBatch} sequences × ${m.seqLen} tokens`, `conventions: ${plan.describeConventions(conv)}`, ''];
    lines.push(`searched ${r.evaluated} configurations in ${(ms / 1000).toFixed(2)} s: ${r.feasible} feasible; rejected: ${Object.entries(r.rejectedByReason).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
    lines.push('', formatTable(configHeader(moe), r.ranked.map((x, i) => configRow(x, conv.memoryUnit, i + 1, moe))));
    const best = r.ranked[0];
    if (best !== undefined) {
      const s = best.step;
      lines.push('', `best: ${plan.describeParallelConfig(best.config)}`);
      lines.push(`  ${s.tokensPerSecond.toFixed(0)} tokens/s, ${(s.modelFlopsPerDevice / 1e12).toFixed(1)} model TFLOP/s per device, MFU ${pct(s.mfu)}, HFU ${pct(s.hfu)} (${s.dtype} peak ${(s.peakPerDevice / 1e12).toFixed(1)} TFLOP/s)`);
      lines.push(`  step ${secs(s.seconds)} = ${Object.entries(s.parts).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${secs(v)}`).join(' + ')}`
        + `${s.hiddenCommSeconds > 0 ? ` (and ${secs(s.hiddenCommSeconds)} of communication hidden under compute: ${hiddenKinds(s)})` : ''}`
        + `${s.overlapSlowdownSeconds > 0 ? `; compute includes ${secs(s.overlapSlowdownSeconds)} of GEMM slowdown from overlap` : ''}`);
      const vol = plan.communicationVolumes(m, conv, best.config);
      lines.push(`  sent per device per step: TP ${plan.formatBytes(vol.tensorParallel, conv.memoryUnit)}, PP ${plan.formatBytes(vol.pipelineParallel, conv.memoryUnit)}, `
        + `${vol.expertParallel > 0 ? `EP all-to-all ${plan.formatBytes(vol.expertParallel, conv.memoryUnit)}, ` : ''}DP ${plan.formatBytes(vol.dataParallel, conv.memoryUnit)}`
        + `${vol.zero3 > 0 ? `, ZeRO-3 gathers ${plan.formatBytes(vol.zero3, conv.memoryUnit)}` : ''}`);
      lines.push('', formatTable(['memory per device', 'bytes'], memoryRows(best.memory, conv.memoryUnit)));
    }
    lines.push('', 'examples of rejected configurations:');
    for (const x of r.rejectedExamples.slice(0, 8)) lines.push(`  ${plan.describeParallelConfig(x.config)}: ${x.reason}`);
    console.log(lines.join('\n'));
  }
  const html = o.string('html');
  if (html !== undefined) {
    const best = r.ranked[0];
    const blocks: viz.ReportBlock[] = [
      { kind: 'paragraph', text: [...modelSummary(m, conv), `cluster ${plan.describeCluster(c)}`].join(' · ') },
      { kind: 'paragraph', text: `Conventions: ${plan.describeConventions(conv)}` },
      { kind: 'heading', text: 'Ranked configurations' },
      { kind: 'table', header: configHeader(moe), rows: r.ranked.map((x, i) => configRow(x, conv.memoryUnit, i + 1, moe)) },
      { kind: 'paragraph', text: `${r.evaluated} configurations evaluated, ${r.feasible} feasible. Rejected: ${Object.entries(r.rejectedByReason).map(([k, v]) => `${k} ${v}`).join(', ')}.` },
    ];
    if (best !== undefined) {
      const mem = best.memory;
      blocks.push({ kind: 'heading', text: `Memory per device: ${plan.describeParallelConfig(best.config)}` });
      blocks.push({ kind: 'svg', svg: viz.stackedBarSvg([
        { label: 'weights', value: mem.weights }, { label: 'gradients', value: mem.gradients }, { label: 'optimizer', value: mem.optimizer },
        { label: 'activations', value: mem.activations }, { label: 'temporary', value: mem.temporary },
      ], { limit: c.device.memory, limitLabel: `${c.device.name} ${plan.formatBytes(c.device.memory, conv.memoryUnit, 0)}`, format: (v) => plan.formatBytes(v, conv.memoryUnit, 1) }) });
      blocks.push({ kind: 'table', header: ['component', 'bytes'], rows: memoryRows(mem, conv.memoryUnit) });
      const pipe = pipelineOfBest(best);
      if (pipe !== undefined) {
        blocks.push({ kind: 'heading', text: 'Pipeline schedule of the best configuration' });
        blocks.push({ kind: 'svg', svg: viz.ganttSvg(pipe.ops, { title: `${pipe.schedule}, p=${pipe.stages}, m=${pipe.microBatches}` }), caption: `bubble ${pct(pipe.bubbleOfTotal)} of total time, ${pct(pipe.bubbleOfIdeal)} of ideal time` });
      }
    }
    writeFileSync(html, viz.htmlReport(`tessera plan: ${m.name} on ${plan.describeCluster(c)}`, blocks));
    if (!o.flag('json')) console.log(`\nwrote ${html}`);
  }
  return 0;
}

function configFrom(o: Options, m: plan.TransformerSpec, c: plan.ClusterSpec): plan.ParallelConfig {
  const tp = o.number('tp', 1), pp = o.number('pp', 1), ep = o.number('ep', 1);
  const dp = o.number('dp', Math.max(1, (c.nodes * c.devicesPerNode) / (tp * pp)));
  const fsdp = o.string('fsdp');
  let zero: Pick<plan.ParallelConfig, 'zero' | 'zeroShardGroup'> = { zero: o.choice('zero', ['0', '1', '2', '3'], '0') === '0' ? 0 : (Number(o.string('zero')) as plan.ZeroStage) };
  if (fsdp !== undefined) {
    const allowed = ['FULL_SHARD', 'SHARD_GRAD_OP', 'NO_SHARD', 'HYBRID_SHARD'] as const;
    if (!(allowed as readonly string[]).includes(fsdp)) throw new Error(`--fsdp must be one of ${allowed.join(', ')}; got '${fsdp}'.`);
    zero = plan.fsdpAsZero(fsdp as plan.FsdpStrategy, c.devicesPerNode);
  }
  const mb = o.number('mb', 1);
  return plan.parallelConfig({
    dp, tp, pp, ep, microBatch: mb, globalBatch: o.number('batch', m.globalBatch ?? dp * mb), ...zero,
    recompute: o.choice('recompute', ['none', 'selective', 'full'], 'none'),
    sequenceParallel: o.flag('sp'), interleave: o.number('interleave', 1),
    schedule: o.choice('schedule', ['1f1b', 'gpipe'], '1f1b'),
    optimizer: o.choice('optimizer', ['adam', 'sgd-momentum', 'sgd'], 'adam'),
    offload: o.choice('offload', ['none', 'optimizer', 'optimizer+params'], 'none'),
    ...plan.overlapsOf(overlapsFrom(o)),
  });
}

/** The overlap flags (see the usage text), shared by `tessera plan` and `tessera advise`. */
export function overlapsFrom(o: Options): plan.OverlapOptions {
  // Checked here so that a bad value is one error, not every configuration rejected by the search.
  const chunks = o.number('ep-overlap-chunks'), slowdown = o.number('overlap-slowdown');
  if (chunks !== undefined && !(Number.isInteger(chunks) && chunks >= 1)) throw new Error(`--ep-overlap-chunks must be a positive integer (Tutel uses 2), got ${chunks}.`);
  if (slowdown !== undefined && !(slowdown >= 0 && slowdown < 1)) throw new Error(`--overlap-slowdown is a share in [0, 1) (0.05 = overlapped GEMMs 5% slower), got ${slowdown}.`);
  return {
    overlapGradReduce: o.flag('overlap-grad-reduce'),
    overlapParamGather: o.flag('overlap-param-gather'),
    overlapTensorParallelComm: o.flag('tp-comm-overlap'),
    overlapExpertParallelComm: o.flag('ep-comm-overlap'),
    expertOverlapChunks: chunks,
    overlapPipelineComm: o.flag('overlap-p2p-comm'),
    overlapComputeSlowdown: slowdown,
  };
}

async function memoryCommand(o: Options): Promise<number> {
  const m = modelFrom(o), conv = conventionsFrom(o);
  // Without --cluster, size an A100 cluster (nodes of 8) to the degrees given.
  const n = o.number('dp', 1) * o.number('tp', 1) * o.number('pp', 1);
  const c = clusterFrom(o, n <= 8 ? `1x${n}xA100` : n % 8 === 0 ? `${n / 8}x8xA100` : `${n}x1xA100`);
  const cfg = configFrom(o, m, c);
  const invalid = plan.validateParallelConfig(m, c, cfg);
  const mem = plan.memoryPerDevice(m, conv, cfg);
  const fits = mem.total <= c.device.memory;
  if (o.flag('json')) {
    console.log(JSON.stringify({ model: m.name, cluster: plan.describeCluster(c), config: cfg, conventions: conv, memory: mem, fits, warning: invalid ?? null }, null, 2));
    return 0;
  }
  const lines = [...modelSummary(m, conv), `config   ${plan.describeParallelConfig(cfg)} (${plan.microBatchCount(cfg)} micro-batches per step)`, `conventions: ${plan.describeConventions(conv)}`, ''];
  if (invalid !== undefined) lines.push(`warning: this configuration cannot run on ${plan.describeCluster(c)}: ${invalid}`, '');
  lines.push(formatTable([`memory per device (${mem.stage} stage)`, 'bytes'], memoryRows(mem, conv.memoryUnit)));
  if (m.moe !== undefined) {
    lines.push('', `experts: ${m.moe.experts / cfg.ep} of ${m.moe.experts} per MoE layer on each device (EP ${cfg.ep}); `
      + `${(mem.expertParamsPerDevice / 1e9).toFixed(3)} B of its ${(mem.paramsPerDevice / 1e9).toFixed(3)} B parameters are experts'`);
  }
  lines.push('', `${fits ? 'fits' : 'does NOT fit'} in one ${c.device.name} (${plan.formatBytes(c.device.memory, conv.memoryUnit)}); ${mem.layersInFlight.toFixed(1)} micro-batch-layers of activations in flight`);
  console.log(lines.join('\n'));
  return 0;
}

async function pipelineCommand(o: Options): Promise<number> {
  const schedule = o.choice('schedule', plan.scheduleNames, '1f1b');
  const stages = o.number('stages', 4), microBatches = o.number('microbatches', 8);
  const r = plan.simulatePipeline({
    schedule, stages, microBatches,
    forward: o.numbers('forward') ?? 1, backward: o.numbers('backward') ?? 2, p2p: o.number('p2p', 0),
    interleave: o.number('interleave'), slices: o.number('slices'), weightGradFraction: o.number('w-fraction'),
  });
  const svgPath = o.string('svg');
  if (svgPath !== undefined) writeFileSync(svgPath, viz.ganttSvg(r.ops, { title: `${schedule}: ${stages} stages, ${microBatches} micro-batches`, formatTime: (t) => String(Number(t.toPrecision(3))) }));
  if (o.flag('json')) {
    const { ops, ...rest } = r;
    console.log(JSON.stringify({ ...rest, operations: ops.length }, null, 2));
    return 0;
  }
  const lines = [`schedule ${schedule}: ${stages} stages, ${microBatches} micro-batches${r.asynchronous ? ' (asynchronous: steady-state step)' : ''}`];
  lines.push(`step time ${r.stepTime.toFixed(3)}; bubble ${pct(r.bubbleOfTotal)} of total time, ${pct(r.bubbleOfIdeal)} of ideal time`);
  if (schedule === 'gpipe' || schedule === '1f1b' || schedule === 'interleaved-1f1b') {
    const cf = plan.closedFormBubble(schedule, stages, microBatches, o.number('interleave', 2));
    lines.push(`closed form for equal stages: ${pct(cf.ofTotal)} of total, ${pct(cf.ofIdeal)} of ideal`);
  }
  lines.push('', formatTable(['stage', 'busy', 'peak activations (micro-batches)', 'weight versions'],
    r.busy.map((b, i) => [String(i), b.toFixed(3), r.peakActivations[i]!.toFixed(2), String(r.weightVersions[i])])));
  if (svgPath !== undefined) lines.push('', `wrote ${svgPath}`);
  console.log(lines.join('\n'));
  return 0;
}

async function commCommand(o: Options): Promise<number> {
  const op = o.choice('op', plan.collectives, 'all-reduce');
  const bytes = o.number('bytes', 1e9), ranks = o.number('ranks', 8);
  const l = plan.link(o.string('link') ?? 'nvlink3');
  const ab = plan.alphaBetaOf(l);
  const best = plan.bestCollective(op, bytes, ranks, ab);
  const rows = best.candidates.map((x) => {
    const bw = plan.ncclBandwidths(op, bytes, x.seconds, ranks);
    return [x.algorithm, secs(x.seconds), `${(bw.algbw / 1e9).toFixed(1)} GB/s`, `${(bw.busbw / 1e9).toFixed(1)} GB/s`, x.algorithm === best.algorithm ? 'best' : ''];
  });
  if (o.flag('json')) { console.log(JSON.stringify({ op, bytes, ranks, link: l, ...best }, null, 2)); return 0; }
  console.log([`${op} of ${bytes.toExponential(2)} bytes over ${ranks} ranks on ${l.name} (α ${l.latency * 1e6} µs, ${(l.bandwidth / 1e9).toFixed(0)} GB/s × ${l.efficiency} efficiency)`, '',
    formatTable(['algorithm', 'time', 'algbw', 'busbw', ''], rows)].join('\n'));
  return 0;
}

async function mfuCommand(o: Options): Promise<number> {
  const m = modelFrom(o), conv = conventionsFrom(o), c = clusterFrom(o);
  const tps = o.number('tokens-per-second');
  if (tps === undefined) throw new Error('missing --tokens-per-second (measured training throughput of the whole cluster).');
  const recompute = o.choice('recompute', ['none', 'selective', 'full'], 'none');
  const dtype = plan.trainingDtype(c);
  const peak = plan.peakFlops(c.device, dtype, conv.peak);
  const u = plan.utilization(m, conv, tps, c.nodes * c.devicesPerNode, peak, recompute);
  if (o.flag('json')) { console.log(JSON.stringify({ model: m.name, conventions: conv, peak, dtype, ...u }, null, 2)); return 0; }
  console.log([...modelSummary(m, conv), `conventions: ${plan.describeConventions(conv)}`,
    `MFU ${pct(u.mfu)}, HFU ${pct(u.hfu)} (recompute ${recompute}); ${(u.modelFlopsPerDevice / 1e12).toFixed(1)} model TFLOP/s per device of ${(peak / 1e12).toFixed(1)} ${dtype} ${conv.peak} peak`].join('\n'));
  return 0;
}

async function shardCommand(o: Options): Promise<number> {
  const m = modelFrom(o);
  const c = clusterFrom(o, '1x8xA100');
  const tp = o.number('tp', c.devicesPerNode);
  const l = plan.link(o.string('link') ?? c.intraLink.name);
  const g = plan.transformerMlpGraph(m, o.number('mb', 1));
  const rate = plan.peakFlops(c.device, plan.trainingDtype(c)) * c.device.matmulEfficiency;
  const p = await plan.solveSharding(g, { shape: [tp], axes: [plan.alphaBetaOf(l)], flopsPerSecond: rate });
  if (o.flag('json')) { console.log(JSON.stringify({ ...p, tensorSpecs: Object.fromEntries([...p.tensorSpecs].map(([k, v]) => [k, plan.formatSpec(v)])) }, null, 2)); return 0; }
  console.log([`intra-op sharding ILP (Alpa) for the MLP block of ${m.name} on a [${tp}] mesh over ${l.name}: ${p.variables} variables, ${p.constraints} constraints, ${p.status}`, '',
    formatTable(['node', 'strategy', 'compute', 'comm'], p.choices.map((x) => [x.node, x.strategy.label, secs(x.strategy.computeSeconds), secs(x.strategy.commSeconds)])), '',
    `objective ${secs(p.objectiveSeconds)} = compute ${secs(p.computeSeconds)} + comm ${secs(p.commSeconds)} + resharding ${secs(p.reshardSeconds)}`].join('\n'));
  return 0;
}

function listCommand(what: 'models' | 'devices'): number {
  if (what === 'models') {
    console.log(formatTable(['model', 'params', 'layers', 'hidden', 'heads', 'kv', 'ffn', 'vocab', 'seq'],
      [...plan.modelPresets.values()].map((m) => [m.name, `${(plan.countParams(m).total / 1e9).toFixed(2)} B`, String(m.layers), String(m.hidden), String(m.heads), String(m.kvHeads), String(m.ffn), String(m.vocab), String(m.seqLen)])));
  } else {
    console.log(formatTable(['device', 'bf16/fp16 TFLOP/s', 'fp32 TFLOP/s', 'memory', 'bandwidth', 'links'],
      [...plan.devices.values()].map((d) => [d.name, String(((d.peak.bf16 ?? d.peak.fp16 ?? 0) / 1e12).toFixed(1)), String(((d.peak.fp32 ?? 0) / 1e12).toFixed(2)), `${(d.memory / 1e9).toFixed(0)} GB`, `${(d.memoryBandwidth / 1e9).toFixed(0)} GB/s`, `${d.defaultIntraLink} / ${d.defaultInterLink}`])));
  }
  return 0;
}

export async function run(args: string[]): Promise<number> {
  try {
    const o = new Options(args);
    if (o.flag('help')) { console.log(usageText); return 0; }
    const sub = o.positional[0] ?? 'search';
    switch (sub) {
      case 'search': return await searchCommand(o);
      case 'memory': return await memoryCommand(o);
      case 'pipeline': return await pipelineCommand(o);
      case 'comm': return await commCommand(o);
      case 'mfu': return await mfuCommand(o);
      case 'shard': return await shardCommand(o);
      case 'models': case 'devices': return listCommand(sub);
      default:
        console.error(`tessera plan: unknown subcommand '${sub}'.\n\n${usageText}`);
        return 2;
    }
  } catch (e) {
    console.error(`tessera plan: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
