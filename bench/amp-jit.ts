// A float16 training step with dynamic loss scaling (autocast float16 + GradScaler + Adam), eager
// vs compiled by `t.jit` (the scaler's state on the device, the step skipped there, no value read),
// for the mnist-mlp and char-gpt recipes' models on random batches. The two modes' steps are
// interleaved (eager, jit, eager, jit, ...) after warm-up, each with its own model, optimizer and
// scaler built from the same seed; the losses of both must agree bit for bit.
//
//   node --import tsx bench/amp-jit.ts [--backend=wasm|cpu] [--steps=N] [--warmup=N] [--scaler=off] [--out=FILE]
//
// --scaler=off: the same steps with a disabled scaler (no loss scaling, no skipping), for the cost
// of the scaler itself in each mode.
// Prints wall ms/step (median and best), steps/s (from the best) and CPU ms/step (process.cpuUsage,
// user + system: with TESSERA_THREADS=1 the per-step work, less sensitive to other load on a shared
// machine than wall time); with --out, writes JSON there. Not part of `npm run bench`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as t from '../src/index.js';
import { GPT, Linear, ReLU, Sequential, flattenLogits, type Module } from '../src/nn/index.js';
import { Adam } from '../src/optim/index.js';
import { GradScaler, autocast } from '../src/quant/index.js';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
const backend = args.get('backend') ?? 'wasm';
const steps = Number(args.get('steps') ?? 20);
const warmup = Number(args.get('warmup') ?? 5);
const out = args.get('out');
const scalerEnabled = args.get('scaler') !== 'off';
t.setBackend(backend);

type Model = Module<[t.Tensor], t.Tensor>;
interface Workload { name: string; make: () => { model: Model; x: t.Tensor; y: t.Tensor; flatten: boolean } }

const workloads: Workload[] = [
  {
    // mnist-mlp: Linear(784→128) → ReLU → Linear(128→10), batch 64.
    name: 'mnist-mlp (batch 64)',
    make: () => ({ model: new Sequential(new Linear(784, 128), new ReLU(), new Linear(128, 10)), x: t.randn([64, 784]), y: t.randint(0, 10, [64]), flatten: false }),
  },
  {
    // char-gpt: GPT(vocab 65, context 64, d 64, 4 heads, 2 layers), batch 32.
    name: 'char-gpt (batch 32 × 64)',
    make: () => ({
      model: new GPT({ vocabSize: 65, blockSize: 64, embedDim: 64, numHeads: 4, numLayers: 2, dropout: 0 }),
      x: t.randint(0, 65, [32, 64]), y: t.randint(0, 65, [32, 64]), flatten: true,
    }),
  },
];

/** One iteration → its loss; `jit`: the whole iteration compiled. */
function stepFor(w: Workload, jit: boolean): () => number {
  t.manualSeed(0);
  const { model, x, y, flatten } = w.make();
  const params = model.parameters();
  const opt = new Adam(params, { lr: 1e-3 });
  const scaler = new GradScaler({ enabled: scalerEnabled });
  const iteration = (): t.Tensor => {
    opt.zeroGrad();
    const loss = autocast({ dtype: 'float16' }, () => {
      const logits = model.call(x);
      return flatten ? t.crossEntropy(flattenLogits(logits), y.reshape([-1])) : t.crossEntropy(logits, y);
    });
    scaler.scale(loss).backward();
    scaler.step(opt);
    scaler.update();
    return loss;
  };
  if (jit) {
    const compiled = t.jit(iteration);
    return () => {
      for (const p of params) { p.grad?.dispose(); p.grad = undefined; }
      const loss = compiled();
      const v = loss.item();
      loss.dispose();
      return v;
    };
  }
  return () => {
    for (const p of params) { p.grad?.dispose(); p.grad = undefined; }
    return t.scope(() => {
      const loss = iteration();
      for (const p of params) if (p.grad !== undefined) t.keep(p.grad);
      return loss.item();
    });
  };
}

interface Row { workload: string; mode: string; medianMs: number; bestMs: number; stepsPerSecond: number; cpuMsPerStep: number }
const rows: Row[] = [];
for (const w of workloads) {
  const modes = { eager: stepFor(w, false), jit: stepFor(w, true) };
  const times: Record<string, number[]> = { eager: [], jit: [] };
  const cpu: Record<string, number> = { eager: 0, jit: 0 };
  for (let i = 0; i < warmup + steps; i++) {
    const losses: number[] = [];
    for (const [mode, step] of Object.entries(modes)) {
      const started = performance.now(), cpuStarted = process.cpuUsage();
      losses.push(step());
      if (i >= warmup) {
        times[mode]!.push(performance.now() - started);
        const used = process.cpuUsage(cpuStarted);
        cpu[mode]! += (used.user + used.system) / 1000;
      }
    }
    if (!Object.is(losses[0], losses[1])) throw new Error(`${w.name}, step ${i}: eager loss ${losses[0]} but jit ${losses[1]}`);
  }
  for (const mode of ['eager', 'jit']) {
    const ts = times[mode]!.sort((a, b) => a - b);
    const median = ts[Math.floor(ts.length / 2)]!;
    const row = { workload: w.name, mode, medianMs: median, bestMs: ts[0]!, stepsPerSecond: 1000 / ts[0]!, cpuMsPerStep: cpu[mode]! / steps };
    rows.push(row);
    console.log(`${w.name.padEnd(26)} ${mode.padEnd(5)} median ${median.toFixed(1).padStart(6)} ms, best ${row.bestMs.toFixed(1).padStart(6)} ms ` +
      `(${row.stepsPerSecond.toFixed(1).padStart(5)} steps/s), cpu ${row.cpuMsPerStep.toFixed(1).padStart(6)} ms/step`);
  }
}
if (out !== undefined) {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ backend, scaler: scalerEnabled, threads: process.env.TESSERA_THREADS ?? 'default', steps, warmup, rows }, null, 1) + '\n');
}
