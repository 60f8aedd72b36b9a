// Eager vs compiled (jit) training steps: step time (median of timed steps after warm-up) and peak
// memory. Eager peak: highest tracked bytes during a step above what was live before it. Compiled
// peak: the same measurement (results, gradients) plus the executor's arena (an ArrayBuffer the
// planner sized at compile time, not counted by memoryStats).
// Each case runs on every backend of --backends (default wasm,cpu): on cpu the compiled step is the
// full pipeline on the planned executor; on wasm (the default backend) it is the full pipeline's
// graph interpreted on wasm kernels, fused nodes as generated wasm kernels (src/compiler/wasm-kernels.ts).
// Usage: npx tsx bench/compiler.ts [--steps N] [--backends wasm,cpu] [--out FILE]. Writes bench/results/compiler.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as t from '../src/index.js';
import { jit, assign } from '../src/index.js';
import { mlpParams, mlp, mse, gptParams, gptBlock, crossEntropyOneHot } from '../test/graph/models.js';
import { checkIdle, machineDescription } from './idle-check.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const steps = Number(args.get('steps') ?? 20);
const outFile = args.get('out') ?? 'bench/results/compiler.json';
const backends = (args.get('backends') ?? 'wasm,cpu').split(',').filter((b) => b !== '');

interface Case { name: string; params: t.Tensor[]; loss: (x: t.Tensor, y: t.Tensor) => t.Tensor; x: t.Tensor; y: t.Tensor }

function sgd(c: Case, lr: number) {
  return (x: t.Tensor, y: t.Tensor): t.Tensor => {
    for (const p of c.params) p.grad = undefined;
    const l = c.loss(x, y);
    l.backward();
    t.noGrad(() => { for (const p of c.params) assign(p, t.sub(p, t.mul(p.grad!, lr))); });
    return l;
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function measure(step: (x: t.Tensor, y: t.Tensor) => t.Tensor, c: Case): { msPerStep: number; peakBytes: number; losses: number[] } {
  for (let i = 0; i < 3; i++) step(c.x, c.y).item();
  const times: number[] = [];
  const losses: number[] = [];
  let peak = 0;
  for (let i = 0; i < steps; i++) {
    const live = t.memoryStats().liveBytes;
    t.resetPeakMemory();
    const t0 = performance.now();
    const l = step(c.x, c.y);
    const v = l.item();
    times.push(performance.now() - t0);
    peak = Math.max(peak, t.memoryStats().peakBytes - live);
    losses.push(v);
  }
  return { msPerStep: median(times), peakBytes: peak, losses };
}

function makeCases(): { eager: Case; compiled: Case }[] {
  const out: { eager: Case; compiled: Case }[] = [];
  const mk = (seed: number, build: () => Case): void => {
    t.manualSeed(seed);
    const eager = build();
    t.manualSeed(seed);
    out.push({ eager, compiled: build() });
  };
  mk(1, () => {
    const p = mlpParams(256, 128, 10);
    const x = t.randn([32, 256]);
    const y = t.cast(t.eq(t.arange(10).reshape([1, 10]), t.randint(0, 10, [32, 1])), 'float32');
    return { name: 'mlp-256-128-10-b32', params: [p.w1, p.b1, p.w2, p.b2], loss: (a, b) => crossEntropyOneHot(mlp(p, a), b), x, y };
  });
  mk(2, () => {
    const p = gptParams(64, 4);
    const x = t.randn([4, 16, 64]), y = t.randn([4, 16, 64]);
    return { name: 'gpt-block-c64-h4-b4-s16', params: Object.values(p).filter((v): v is t.Tensor => v instanceof t.Tensor), loss: (a, b) => mse(gptBlock(p, a), b), x, y };
  });
  return out;
}

const idleBefore = await checkIdle(2);
console.log(`idle check: ${idleBefore.verdict}`);
const results: Record<string, unknown>[] = [];
for (const backend of backends) for (const { eager, compiled } of (t.setBackend(backend), makeCases())) {
  const e = measure(sgd(eager, 0.05), eager);
  const step = jit(sgd(compiled, 0.05), { reuseOutputs: true });
  const c = measure(step, compiled);
  // Only the cpu planned executor has an arena; on wasm the optimized graph is interpreted.
  const arenaBytes = (backend === 'cpu' && step.graphs()[0]?.optimized !== undefined)
    ? (await import('../src/compiler/index.js')).memoryPlan(step.graphs()[0]!.optimized!).arenaBytes : 0;
  const maxLossDiff = Math.max(...e.losses.map((l, i) => Math.abs(l - c.losses[i]!)));
  const g = step.graphs()[0]!;
  const row = {
    name: eager.name,
    backend,
    eagerMsPerStep: e.msPerStep, compiledMsPerStep: c.msPerStep, speedup: e.msPerStep / c.msPerStep,
    eagerPeakBytes: e.peakBytes, compiledPeakBytes: c.peakBytes + arenaBytes, compiledArenaBytes: arenaBytes,
    tracedNodes: g.traced.nodes.length, optimizedNodes: g.optimized?.nodes.length, maxLossDiff,
    jit: step.stats(),
  };
  console.log(`${row.name} [${backend}]: eager ${e.msPerStep.toFixed(2)} ms, compiled ${c.msPerStep.toFixed(2)} ms (x${row.speedup.toFixed(2)}); ` +
    `peak eager ${(e.peakBytes / 1024).toFixed(1)} KiB, compiled ${(row.compiledPeakBytes / 1024).toFixed(1)} KiB; nodes ${row.tracedNodes} -> ${row.optimizedNodes}; max |loss diff| ${maxLossDiff.toExponential(2)}`);
  results.push(row);
}
const idleAfter = await checkIdle(2);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify({ date: new Date().toISOString(), machine: machineDescription(), steps, idleBefore, idleAfter, results }, null, 2)}\n`);
console.log(`wrote ${outFile}`);
