// Eager vs jit on the wasm backend: one training step (forward, cross-entropy, backward, Adam) of
// the peer benchmark's MLP and GPT (bench/spec.ts sizes, built like bench/workloads/tessera-models.ts),
// run three ways in one process:
//   eager       the step as plain code (what `npm run bench` times);
//   jit-before  jit with what wasm graphs got before fusion: the backend-independent passes
//               (portablePasses), the fused-op-free graph interpreted on the wasm kernels;
//   jit-after   jit as installed now: the full pipeline (fusion, matmul epilogues, layouts), the
//               fused nodes run as generated wasm kernels (src/compiler/wasm-kernels.ts).
// Per mode: best-of-N wall time and mean CPU time (process.cpuUsage, user + system) per step, and
// the losses (jit must reproduce eager's). Run with one thread for CPU time to mean per-step work:
//   TESSERA_THREADS=1 npx tsx bench/jit-wasm.ts [--steps N] [--models mlp,gpt] [--quick] [--out FILE]
// Writes bench/results/jit-wasm.json. Not part of `npm run bench`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadavg } from 'node:os';
import * as t from '../src/index.js';
import { jit } from '../src/index.js';
import { setGraphCompiler, type GraphCompiler } from '../src/graph/jit.js';
import { compile, jitGraphCompiler, portablePasses } from '../src/compiler/index.js';
import { GPT, Linear, ReLU, Sequential, flattenLogits, type Module } from '../src/nn/index.js';
import { Adam } from '../src/optim/index.js';
import { defaultSpec, type BenchSpec } from './spec.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  if (a === '--quick') args.set('quick', '1');
  else args.set(a.replace(/^--/, ''), process.argv[++i] ?? '');
}
const steps = Number(args.get('steps') ?? 10);
const models = (args.get('models') ?? 'mlp,gpt').split(',').filter((m) => m !== '');
const outFile = args.get('out') ?? 'bench/results/jit-wasm.json';
const spec: BenchSpec = defaultSpec(args.has('quick'));
if (args.has('quick')) {
  spec.mlp = { batch: 32, sizes: [256, 128, 10] };
  spec.gpt = { batch: 4, vocab: 65, context: 16, d: 64, heads: 4, layers: 1 };
}

type Model = Module<[t.Tensor], t.Tensor>;
interface Workload { model: Model; x: t.Tensor; y: t.Tensor; flatten: boolean }

function build(name: string): Workload {
  t.manualSeed(spec.seed);
  if (name === 'mlp') {
    const { batch, sizes } = spec.mlp;
    const layers: Model[] = [];
    for (let i = 0; i + 1 < sizes.length; i++) {
      if (i > 0) layers.push(new ReLU());
      layers.push(new Linear(sizes[i]!, sizes[i + 1]!));
    }
    return { model: new Sequential(...layers), x: t.randn([batch, sizes[0]!]), y: t.randint(0, sizes[sizes.length - 1]!, [batch]), flatten: false };
  }
  const g = spec.gpt;
  const model = new GPT({ vocabSize: g.vocab, blockSize: g.context, embedDim: g.d, numHeads: g.heads, numLayers: g.layers });
  return { model, x: t.randint(0, g.vocab, [g.batch, g.context]), y: t.randint(0, g.vocab, [g.batch, g.context]), flatten: true };
}

const lossOf = (w: Workload): t.Tensor => {
  const logits = w.model.call(w.x);
  return w.flatten ? t.crossEntropy(flattenLogits(logits), w.y.reshape([-1])) : t.crossEntropy(logits, w.y);
};

/** One step → its loss. The eager step is bench/workloads' (scoped, gradients kept to the next step). */
function stepFor(mode: string, w: Workload): () => number {
  const params = w.model.parameters();
  const optimizer = new Adam(params, { lr: spec.lr });
  if (mode === 'eager') {
    return () => {
      for (const p of params) p.grad?.dispose();
      optimizer.zeroGrad();
      return t.scope(() => {
        const loss = lossOf(w);
        loss.backward();
        for (const p of params) if (p.grad !== undefined) t.keep(p.grad);
        optimizer.step();
        return loss.item();
      });
    };
  }
  const compiled = jit(() => {
    optimizer.zeroGrad();
    const loss = lossOf(w);
    loss.backward();
    optimizer.step();
    return loss;
  });
  return () => {
    // The graph writes fresh gradients each call; free the previous ones as the eager step does.
    for (const p of params) {
      p.grad?.dispose();
      p.grad = undefined;
    }
    const loss = compiled();
    const v = loss.item();
    loss.dispose();
    return v;
  };
}

const installed: GraphCompiler = jitGraphCompiler;
const before: GraphCompiler = {
  compile: (g, o) => compile(g, { reuseOutputs: o.reuseOutputs, ...(o.onCpu ? {} : { passes: portablePasses(), planned: false, wasmKernels: false }) }),
};

interface Row { model: string; mode: string; bestWallMs: number; cpuMsPerStep: number; losses: number[] }

function measure(model: string, mode: string): Row {
  setGraphCompiler(mode === 'jit-before' ? before : installed);
  const w = build(model);
  const step = stepFor(mode, w);
  const losses: number[] = [];
  for (let i = 0; i < 2; i++) losses.push(step()); // warm-up (the trace, kernel compilation)
  let best = Infinity;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    losses.push(step());
    best = Math.min(best, performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  return { model, mode, bestWallMs: best, cpuMsPerStep: (cpu.user + cpu.system) / 1000 / steps, losses };
}

t.setBackend('wasm');
const load = [loadavg()];
const rows: Row[] = [];
for (const model of models) {
  for (const mode of ['eager', 'jit-before', 'jit-after']) {
    const r = measure(model, mode);
    rows.push(r);
    const eager = rows.find((x) => x.model === model && x.mode === 'eager')!;
    const diff = Math.max(...r.losses.map((l, i) => Math.abs(l - eager.losses[i]!)));
    console.log(`${model} ${mode.padEnd(10)} best ${r.bestWallMs.toFixed(2)} ms  cpu ${r.cpuMsPerStep.toFixed(2)} ms/step  max |loss - eager| ${diff.toExponential(2)}`);
  }
}
setGraphCompiler(installed);
load.push(loadavg());
console.log(`load average before ${load[0]!.map((x) => x.toFixed(2)).join(' ')}, after ${load[1]!.map((x) => x.toFixed(2)).join(' ')}; threads ${process.env.TESSERA_THREADS ?? '(default)'}`);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify({ date: new Date().toISOString(), steps, threads: process.env.TESSERA_THREADS ?? null, loadavg: load, spec: { mlp: spec.mlp, gpt: spec.gpt }, rows }, null, 2)}\n`);
console.log(`wrote ${outFile}`);
