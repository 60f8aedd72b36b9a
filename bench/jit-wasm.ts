// Eager vs jit on the wasm backend: one training step (forward, cross-entropy, backward, Adam) of
// the peer benchmark's MLP and GPT (bench/spec.ts sizes, the steps of bench/workloads/tessera-models.ts),
// run three ways in one process:
//   eager       the step as plain code (what `npm run bench` times);
//   jit-before  jit with what wasm graphs got before fusion: the backend-independent passes
//               (portablePasses), the fused-op-free graph interpreted on the wasm kernels;
//   jit-after   jit as installed now: the full pipeline (fusion, matmul epilogues, layouts), the
//               fused nodes run as generated wasm kernels (src/compiler/wasm-kernels.ts).
// Per mode: best-of-N wall time and mean CPU time (process.cpuUsage, user + system) per step, and
// the losses (jit must reproduce eager's). The modes' steps are interleaved (see measureModel). Run with one thread for CPU time to mean per-step work:
//   TESSERA_THREADS=1 npx tsx bench/jit-wasm.ts [--steps N] [--models mlp,gpt] [--quick] [--out FILE]
// Writes bench/results/jit-wasm.json. Not part of `npm run bench`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadavg } from 'node:os';
import * as t from '../src/index.js';
import { setGraphCompiler, type GraphCompiler } from '../src/graph/jit.js';
import { compile, defaultPasses, jitGraphCompiler, portablePasses } from '../src/compiler/index.js';
import { defaultSpec, type BenchSpec } from './spec.js';
import { tesseraGptStep, tesseraMlpStep } from './workloads/tessera-models.js';

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

/** One step → its loss: bench/workloads' eager step, or the same step compiled by `t.jit`. */
function stepFor(mode: string, model: string): () => number {
  const build = model === 'mlp' ? tesseraMlpStep : tesseraGptStep;
  return build(spec, { jit: mode !== 'eager' });
}

const installed: GraphCompiler = jitGraphCompiler;
const before: GraphCompiler = {
  compile: (g, o) => compile(g, { reuseOutputs: o.reuseOutputs, ...(o.onCpu ? {} : { passes: portablePasses(), planned: false, wasmKernels: false }) }),
};

interface Row { model: string; mode: string; bestWallMs: number; medianWallMs: number; cpuMsPerStep: number; losses: number[] }

// Diagnostic modes (--modes): jit-after without the layout pass, or without matmul epilogues.
const withoutPass = (name: string): GraphCompiler => ({
  compile: (g, o) => compile(g, { reuseOutputs: o.reuseOutputs, ...(o.onCpu ? {} : { planned: false, passes: defaultPasses().filter((p) => p.name !== name) }) }),
});
const COMPILERS: Record<string, GraphCompiler> = {
  'jit-before': before, 'jit-after': installed, 'jit-after-no-layout': withoutPass('layout'), 'jit-after-no-epilogue': withoutPass('matmul-epilogue'),
};
const MODES = (args.get('modes') ?? 'eager,jit-before,jit-after').split(',').filter((m) => m !== '');
for (const m of MODES) if (m !== 'eager' && COMPILERS[m] === undefined) throw new Error(`--modes: unknown mode '${m}'; use eager or ${Object.keys(COMPILERS).join(', ')}`);

/**
 * The three modes of one model, interleaved step by step (eager, before, after, eager, ...), so
 * that a change in the machine's load during the run hits every mode alike.
 */
function measureModel(model: string): Row[] {
  const runs = MODES.map((mode) => {
    setGraphCompiler(COMPILERS[mode] ?? installed);
    const step = stepFor(mode, model);
    const losses = [step(), step()]; // warm-up: the trace and compilation happen here
    return { mode, step, losses, walls: [] as number[], cpuMicros: 0 };
  });
  setGraphCompiler(installed);
  for (let i = 0; i < steps; i++) {
    for (const r of runs) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      r.losses.push(r.step());
      r.walls.push(performance.now() - t0);
      const cpu = process.cpuUsage(cpu0);
      r.cpuMicros += cpu.user + cpu.system;
    }
  }
  return runs.map((r) => ({ model, mode: r.mode, bestWallMs: Math.min(...r.walls), medianWallMs: [...r.walls].sort((a, b) => a - b)[r.walls.length >> 1]!, cpuMsPerStep: r.cpuMicros / 1000 / steps, losses: r.losses }));
}

t.setBackend('wasm');
const load = [loadavg()];
const rows: Row[] = [];
for (const model of models) {
  const measured = measureModel(model);
  rows.push(...measured);
  for (const r of measured) {
    const ref = measured[0]!; // eager unless --modes leaves it out
    const diff = Math.max(...r.losses.map((l, i) => Math.abs(l - ref.losses[i]!)));
    console.log(`${model} ${r.mode.padEnd(21)} best ${r.bestWallMs.toFixed(2)} ms  median ${r.medianWallMs.toFixed(2)} ms  cpu ${r.cpuMsPerStep.toFixed(2)} ms/step  max |loss - ${ref.mode}| ${diff.toExponential(2)}`);
  }
}
setGraphCompiler(installed);
load.push(loadavg());
console.log(`load average before ${load[0]!.map((x) => x.toFixed(2)).join(' ')}, after ${load[1]!.map((x) => x.toFixed(2)).join(' ')}; threads ${process.env.TESSERA_THREADS ?? '(default)'}`);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify({ date: new Date().toISOString(), steps, threads: process.env.TESSERA_THREADS ?? null, loadavg: load, spec: { mlp: spec.mlp, gpt: spec.gpt }, rows }, null, 2)}\n`);
console.log(`wrote ${outFile}`);
