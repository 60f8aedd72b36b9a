// The webgpu backend's benchmark: fp32 matmul GFLOP/s and the peer benchmark's training steps (MLP,
// CNN, GPT: forward, backward, Adam; bench/workloads/tessera-models.ts), on the GPU, with the same
// steps on the wasm backend in the same process for reference. Every timed run ends with the GPU
// idle (a step reads its loss; products are followed by synchronize()), so times are wall times of
// finished work.
//
//   node --import tsx bench/webgpu.ts [--quick] [--out=bench/results] [--no-wasm] [--sizes=256,1024]
//
// Writes webgpu-<adapter>.json and .md to --out, and spec.json (the workloads, for
// bench/peers/torch_cuda_bench.py, which times PyTorch on CUDA for the same steps).
// On a machine without a GPU the adapter is a CPU Vulkan driver (SwiftShader, lavapipe): the numbers
// then say nothing about GPUs; the table names the adapter.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src/index.js';
import { webgpuBackend } from '../src/backend/webgpu/backend.js';
import { tesseraCnnStep, tesseraGptStep, tesseraMlpStep } from './workloads/tessera-models.js';
import { defaultSpec } from './spec.js';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
const quick = args.has('quick');
const outDir = args.get('out') ?? 'bench/results';
const sizes = (args.get('sizes') ?? (quick ? '256,512' : '256,512,1024,2048,4096')).split(',').map(Number);
const spec = defaultSpec(quick);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Median ms of `runs` calls after `warmup`, each finished (fn must leave the GPU idle). */
function timeMs(fn: () => void, warmup: number, runs: number): { medianMs: number; minMs: number; runs: number } {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return { medianMs: median(times), minMs: Math.min(...times), runs };
}

const info = webgpuBackend.device.info;
const adapter = [info.vendor, info.architecture, info.device, info.description].filter((s) => s !== '').join(' / ') || 'unknown adapter';
console.log(`adapter: ${adapter}${info.isFallbackAdapter ? ' (fallback adapter: a CPU driver)' : ''}`);

interface MatmulRow { n: number; gflops: number; medianMs: number; products: number; maxRelError: number }
const matmul: MatmulRow[] = [];
t.setBackend('webgpu');
for (const n of sizes) {
  const a = t.randn([n, n]), b = t.randn([n, n]);
  // Enough products per timed run that launch overhead is amortized (≥ ~2 GFLOP per run).
  const products = Math.max(1, Math.ceil(2e9 / (2 * n ** 3)));
  const run = (): void => {
    for (let i = 0; i < products; i++) t.matmul(a, b).dispose();
    webgpuBackend.synchronize();
  };
  const timing = timeMs(run, 2, quick ? 3 : 7);
  // Spot-check the product against float64 on a few rows (the full reference would dominate at 4096).
  const c = t.matmul(a, b);
  const rows = [0, n >> 1, n - 1];
  const av = a.data(), bv = b.data(), cv = c.data();
  let maxRel = 0;
  for (const i of rows) {
    for (let j = 0; j < n; j += Math.max(1, n >> 5)) {
      let ref = 0, scale = 0;
      for (let k = 0; k < n; k++) { ref += av[i * n + k]! * bv[k * n + j]!; scale += Math.abs(av[i * n + k]! * bv[k * n + j]!); }
      maxRel = Math.max(maxRel, Math.abs(cv[i * n + j]! - ref) / scale);
    }
  }
  c.dispose(); a.dispose(); b.dispose();
  const gflops = (2 * n ** 3 * products) / (timing.medianMs * 1e6);
  matmul.push({ n, gflops, medianMs: timing.medianMs, products, maxRelError: maxRel });
  console.log(`matmul ${n}: ${gflops.toFixed(1)} GFLOP/s (${products} products in ${timing.medianMs.toFixed(2)} ms; max error / Σ|terms| ${maxRel.toExponential(1)})`);
}

interface StepRow { workload: string; backend: string; medianMs: number; minMs: number; firstLoss: number; lastLoss: number }
const steps: StepRow[] = [];
const backends = args.has('no-wasm') ? ['webgpu'] : ['webgpu', 'wasm'];
for (const [name, make] of [['mlp', tesseraMlpStep], ['cnn', tesseraCnnStep], ['gpt', tesseraGptStep]] as const) {
  for (const backend of backends) {
    t.setBackend(backend);
    const step = make(spec);
    const losses: number[] = [];
    const timing = timeMs(() => { losses.push(step()); }, 3, quick ? 3 : 15);
    steps.push({ workload: name, backend, medianMs: timing.medianMs, minMs: timing.minMs, firstLoss: losses[0]!, lastLoss: losses[losses.length - 1]! });
    console.log(`${name} step on ${backend}: ${timing.medianMs.toFixed(2)} ms (min ${timing.minMs.toFixed(2)}; loss ${losses[0]!.toFixed(4)} → ${losses[losses.length - 1]!.toFixed(4)})`);
  }
}

const slug = (info.description || info.device || info.vendor || 'adapter').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
const result = { date: new Date().toISOString(), adapter, fallbackAdapter: info.isFallbackAdapter, node: process.version, spec, matmul, steps };
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, `webgpu-${slug}.json`), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(outDir, 'spec.json'), JSON.stringify(spec) + '\n');
const md = [
  `# webgpu backend on ${adapter}`, '',
  `${result.date}, Node ${process.version}. \`node --import tsx bench/webgpu.ts\`.`, '',
  '| fp32 matmul n | GFLOP/s | ms per run (products) | max error / Σ\\|terms\\| |', '| --- | --- | --- | --- |',
  ...matmul.map((m) => `| ${m.n} | ${m.gflops.toFixed(1)} | ${m.medianMs.toFixed(2)} (${m.products}) | ${m.maxRelError.toExponential(1)} |`), '',
  '| training step | backend | median ms | min ms | loss first → last |', '| --- | --- | --- | --- | --- |',
  ...steps.map((s) => `| ${s.workload} | ${s.backend} | ${s.medianMs.toFixed(2)} | ${s.minMs.toFixed(2)} | ${s.firstLoss.toFixed(4)} → ${s.lastLoss.toFixed(4)} |`), '',
].join('\n');
writeFileSync(join(outDir, `webgpu-${slug}.md`), md);
console.log(`wrote ${join(outDir, `webgpu-${slug}.json`)} and .md`);
