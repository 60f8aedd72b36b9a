// fp32 matmul throughput of the wasm backend's generated SGEMM.
//   node --import tsx bench/matmul.ts [--quick] [--training] [--threads=1,2] [--sizes=128,256] [--tune] [--out=FILE]
// --training times only the products of the MLP/CNN/GPT training steps (transposed operands included).
// --micro times only the micro-kernel of a few tile shapes, mul+add and FMA, on L1-resident panels
// (the figures quoted in src/backend/wasm/matmul-config.ts).
// --versus='{"kc":320,"mc":128}' compares the config (default, or --config) with the given
// change, run by run in alternation, on the shapes chosen (--training, --sizes): on a VM whose
// speed moves from one second to the next, only paired runs compare two configs fairly.
// Writes bench/results/matmul-tessera.json (medians, GFLOP/s, the idle check before and after,
// the config used, and this machine's estimated 128-bit SIMD peak).

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { WasmHeap } from '../src/backend/wasm/memory.js';
import { ThreadPool } from '../src/backend/wasm/threads.js';
import { createNodeThreadPool } from '../src/backend/wasm/node-workers.js';
import { WasmMatmul, rowMajorOperand } from '../src/backend/wasm/matmul.js';
import { defaultMatmulConfig, matmulConfigKey, type MatmulConfig } from '../src/backend/wasm/matmul-config.js';
import { buildMatmulModule } from '../src/backend/wasm/matmul-kernel.js';
import { relaxedSimdSupported } from '../src/backend/wasm/simd-features.js';
import { checkIdle, machineDescription, type IdleCheck } from './idle-check.js';

interface Shape {
  name: string; m: number; n: number; k: number;
  batch?: number;
  /** Operands stored transposed (read through swapped strides, as autodiff's backward products are). */
  transA?: boolean; transB?: boolean;
}

const args = new Map(process.argv.slice(2).map((a) => {
  const [key, value] = a.replace(/^--/, '').split('=');
  return [key!, value ?? 'true'] as const;
}));
const quick = args.has('quick');
const threadCounts = (args.get('threads') ?? '1,2').split(',').map(Number);
const squareSizes = (args.get('sizes') ?? (quick ? '256,1024' : '128,256,512,1024,2048')).split(',').map(Number);
const outFile = args.get('out') ?? 'bench/results/matmul-tessera.json';

/**
 * The products of one training step of the MLP, CNN and GPT workloads (bench/workloads):
 * forward (X·Wᵀ, B transposed), weight gradient (Gᵀ·X, A transposed) and input gradient (G·W).
 */
const TRAINING_SHAPES: Shape[] = [
  { name: 'mlp fc1 fwd', m: 128, n: 512, k: 784, transB: true },
  { name: 'mlp fc1 dW', m: 512, n: 784, k: 128, transA: true },
  { name: 'mlp fc2 dX', m: 128, n: 512, k: 512 },
  { name: 'gpt qkv fwd', m: 1024, n: 384, k: 128, transB: true },
  { name: 'gpt mlp-up fwd', m: 1024, n: 512, k: 128, transB: true },
  { name: 'gpt mlp-down fwd', m: 1024, n: 128, k: 512, transB: true },
  { name: 'gpt mlp-up dW', m: 512, n: 128, k: 1024, transA: true },
  { name: 'gpt mlp-down dX', m: 1024, n: 512, k: 128 },
  { name: 'gpt attn q·kᵀ', m: 64, n: 64, k: 32, batch: 64, transB: true },
  { name: 'gpt attn p·v', m: 64, n: 32, k: 64, batch: 64 },
  { name: 'cnn conv2 fwd', m: 12544, n: 64, k: 288, transB: true },
  { name: 'cnn conv2 dW', m: 64, n: 288, k: 12544, transA: true },
  { name: 'cnn conv2 dcols', m: 12544, n: 288, k: 64 },
];

const shapes: Shape[] = args.has('training') ? [] : squareSizes.map((n) => ({ name: `square ${n}`, m: n, n, k: n }));
if (args.has('training') || (!quick && !args.has('sizes'))) shapes.push(...TRAINING_SHAPES);
if (!quick && !args.has('sizes') && !args.has('training')) {
  // Transformer-shaped products at batch×seq = 1024, d = 768: QKV/out projections and the MLP.
  shapes.push({ name: 'proj 1024x768x768', m: 1024, n: 768, k: 768 });
  shapes.push({ name: 'mlp-up 1024x768x3072', m: 1024, n: 3072, k: 768 });
  shapes.push({ name: 'mlp-down 1024x3072x768', m: 1024, n: 768, k: 3072 });
}

const heap = new WasmHeap({ initialBytes: 128 * 2 ** 20 });
const pools = new Map<number, ThreadPool>();
for (const t of threadCounts) pools.set(t, t === 1 ? new ThreadPool(heap, { threads: 1 }) : createNodeThreadPool(heap, { threads: t }));
for (const p of pools.values()) p.waitUntilReady();

function fillRandom(ptr: number, count: number): void {
  const f = heap.f32;
  let s = 1234567;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    f[ptr / 4 + i] = s / 2 ** 32 - 0.5;
  }
}

/** A quick correctness check against a float64 reference before timing anything. */
function sanityCheck(mm: WasmMatmul, config: MatmulConfig): void {
  const [m, n, k] = [67, 45, 300];
  const a = heap.alloc(m * k * 4), b = heap.alloc(k * n * 4), c = heap.alloc(m * n * 4);
  fillRandom(a, m * k);
  fillRandom(b, k * n);
  mm.run({ m, n, k, a: rowMajorOperand(a, m, k), b: rowMajorOperand(b, k, n), c: rowMajorOperand(c, m, n) }, config);
  const f = heap.f32;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += f[a / 4 + i * k + p]! * f[b / 4 + p * n + j]!;
    if (Math.abs(s - f[c / 4 + i * n + j]!) > 1e-4) throw new Error(`sanity check failed at (${i}, ${j}): ${f[c / 4 + i * n + j]} vs ${s}`);
  }
  heap.free(a); heap.free(b); heap.free(c);
}

/**
 * The micro-kernel alone: `micro(kc = 256)` on the same packed panels again and again (all in L1),
 * best of many short runs after a warm-up long enough for V8 to tier the module up to TurboFan.
 */
function microKernelBench(ghz: number): Array<Record<string, unknown>> {
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 64 });
  new Float32Array(memory.buffer).fill(0.001);
  const kc = 256, reps = 200, pa = 1 << 16, pb = 1 << 17, c = 1 << 18, tile = 1 << 19;
  const shapes: Array<[number, number, boolean]> = [[4, 8, false], [4, 8, true], [2, 16, true], [3, 8, true]];
  const out: Array<Record<string, unknown>> = [];
  for (const [mr, nr, fma] of shapes) {
    if (fma && !relaxedSimdSupported()) continue;
    const config: MatmulConfig = { mr, nr, kc, mc: mr * 32, nc: nr * 32, unroll: 1, fma };
    const bytes = buildMatmulModule(config, { module: 'env', name: 'memory', minPages: 1, maxPages: 64, shared: false });
    const micro = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.micro as
      (...args: number[]) => void;
    const once = () => { for (let i = 0; i < reps; i++) micro(kc, pa, pb, c, nr * 4, 4, mr, nr, 1, 0, 0, 0, tile); };
    const warm = performance.now();
    while (performance.now() - warm < 300) once();
    let best = Infinity;
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      once();
      best = Math.min(best, performance.now() - t);
    }
    const gflops = (2 * mr * nr * kc * reps) / best / 1e6;
    const cyclesPerK = (2 * mr * nr * ghz) / gflops;
    out.push({ tile: `${mr}x${nr}`, fma, gflops, cyclesPerKStep: cyclesPerK });
    console.log(`micro ${mr}x${nr} ${fma ? 'FMA    ' : 'mul+add'}  ${gflops.toFixed(1).padStart(5)} GFLOP/s  ${cyclesPerK.toFixed(2)} cycles per k step at ~${ghz.toFixed(2)} GHz`);
  }
  return out;
}

interface Timing {
  medianMs: number;
  minMs: number;
  runs: number;
  gflops: number;
  /** From the fastest run: on a busy machine, the run least disturbed by other processes. */
  bestGflops: number;
  /**
   * GFLOP per second of CPU time used by the process (all its threads): less sensitive than wall
   * time to being descheduled on a busy machine, so it helps read a BUSY run.
   */
  gflopsPerCpuSecond: number;
}

function time(mm: WasmMatmul, s: Shape, config: MatmulConfig, budgetMs: number): Timing {
  const batch = s.batch ?? 1;
  const a = heap.alloc(batch * s.m * s.k * 4), b = heap.alloc(batch * s.k * s.n * 4), c = heap.alloc(batch * s.m * s.n * 4);
  fillRandom(a, batch * s.m * s.k);
  fillRandom(b, batch * s.k * s.n);
  const aOp = s.transA ? rowMajorOperand(a, s.k, s.m, true) : rowMajorOperand(a, s.m, s.k);
  const bOp = s.transB ? rowMajorOperand(b, s.n, s.k, true) : rowMajorOperand(b, s.k, s.n);
  const run = () => mm.run({ m: s.m, n: s.n, k: s.k, batch, a: aOp, b: bOp, c: rowMajorOperand(c, s.m, s.n) }, config);
  // Warm-up: the first calls run V8's baseline (Liftoff) code until the optimised tier is ready.
  const warmStart = performance.now();
  for (let i = 0; i < 3 || performance.now() - warmStart < budgetMs / 3; i++) run();
  const times: number[] = [];
  const cpuTimes: number[] = [];
  const start = performance.now();
  while (times.length < 5 || (performance.now() - start < budgetMs && times.length < 200)) {
    const cpu = process.cpuUsage();
    const t = performance.now();
    run();
    times.push(performance.now() - t);
    const used = process.cpuUsage(cpu);
    cpuTimes.push((used.user + used.system) / 1000);
  }
  cpuTimes.sort((x, y) => x - y);
  heap.free(a); heap.free(b); heap.free(c);
  times.sort((x, y) => x - y);
  const medianMs = times[times.length >> 1]!;
  const flops = 2 * s.m * s.n * s.k * batch;
  return {
    medianMs, minMs: times[0]!, runs: times.length, gflops: flops / medianMs / 1e6, bestGflops: flops / times[0]! / 1e6,
    gflopsPerCpuSecond: flops / Math.max(cpuTimes[cpuTimes.length >> 1]!, 1e-3) / 1e6,
  };
}

/**
 * Times `base` and `other` alternately, run after run, on every shape and thread count; the
 * median of the per-pair time ratios says which is faster even while the machine's speed moves.
 */
function compareConfigs(base: MatmulConfig, other: MatmulConfig, budgetMs: number): Array<Record<string, unknown>> {
  console.log(`versus: ${matmulConfigKey(other)} (ratio > 1: it is faster than ${matmulConfigKey(base)})`);
  const out: Array<Record<string, unknown>> = [];
  const median = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1]!;
  for (const [threads, pool] of pools) {
    const mm = new WasmMatmul(heap, pool, base);
    sanityCheck(mm, base);
    sanityCheck(mm, other);
    for (const s of shapes) {
      const batch = s.batch ?? 1;
      const a = heap.alloc(batch * s.m * s.k * 4), b = heap.alloc(batch * s.k * s.n * 4), c = heap.alloc(batch * s.m * s.n * 4);
      fillRandom(a, batch * s.m * s.k);
      fillRandom(b, batch * s.k * s.n);
      const aOp = { ...(s.transA ? rowMajorOperand(a, s.k, s.m, true) : rowMajorOperand(a, s.m, s.k)), batchStride: s.m * s.k };
      const bOp = { ...(s.transB ? rowMajorOperand(b, s.n, s.k, true) : rowMajorOperand(b, s.k, s.n)), batchStride: s.k * s.n };
      const cOp = { ...rowMajorOperand(c, s.m, s.n), batchStride: s.m * s.n };
      const runWith = (config: MatmulConfig) => { const t = performance.now(); mm.run({ m: s.m, n: s.n, k: s.k, batch, a: aOp, b: bOp, c: cOp }, config); return performance.now() - t; };
      const warmStart = performance.now();
      while (performance.now() - warmStart < budgetMs / 3) { runWith(base); runWith(other); }
      const baseMs: number[] = [], otherMs: number[] = [], ratios: number[] = [];
      const start = performance.now();
      while (ratios.length < 11 || (performance.now() - start < budgetMs && ratios.length < 200)) {
        const x = runWith(base), y = runWith(other);
        baseMs.push(x); otherMs.push(y); ratios.push(x / y);
      }
      heap.free(a); heap.free(b); heap.free(c);
      const flops = 2 * s.m * s.n * s.k * batch;
      const row = { name: s.name, threads, pairs: ratios.length, baseGflops: flops / median(baseMs) / 1e6, otherGflops: flops / median(otherMs) / 1e6, speedup: median(ratios) };
      out.push(row);
      console.log(`${s.name.padEnd(26)} threads ${threads}  ${row.baseGflops.toFixed(1).padStart(6)} vs ${row.otherGflops.toFixed(1).padStart(6)} GFLOP/s  median ratio ${row.speedup.toFixed(3)} (${row.pairs} pairs)`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const machine = machineDescription();
  const idleBefore: IdleCheck = await checkIdle(2);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}`);
  console.log(`idle check before: ${idleBefore.verdict}; loadavg ${idleBefore.loadavg1}; ~${idleBefore.estimatedGHz.toFixed(2)} GHz`);
  // 128-bit SIMD peak per core: 4 lanes × (1 mul + 1 add, or 1 FMA) × 2 pipes.
  const peakPerCore = 16 * idleBefore.estimatedGHz;
  const config: MatmulConfig = args.has('config') ? { ...defaultMatmulConfig(), ...JSON.parse(args.get('config')!) } : defaultMatmulConfig();
  console.log(`config: ${matmulConfigKey(config)}`);

  const results: Array<Record<string, unknown>> = [];
  const budget = args.has('budget') ? Number(args.get('budget')) : quick ? 400 : 1000;
  const micro = args.has('micro') ? microKernelBench(idleBefore.estimatedGHz) : undefined;
  const versus = args.has('versus') ? { ...config, ...JSON.parse(args.get('versus')!) } as MatmulConfig : undefined;
  const comparisons = versus ? compareConfigs(config, versus, budget) : undefined;
  for (const [threads, pool] of micro || versus ? [] : pools) {
    const mm = new WasmMatmul(heap, pool, config);
    sanityCheck(mm, config);
    for (const s of shapes) {
      const t = time(mm, s, config, budget);
      // The clock estimate (and so the peak) only means something on an idle machine.
      const fractionOfPeak = idleBefore.idle ? t.gflops / (peakPerCore * threads) : null;
      results.push({ name: s.name, m: s.m, n: s.n, k: s.k, batch: s.batch ?? 1, transA: s.transA ?? false, transB: s.transB ?? false, threads, ...t, fractionOfPeak });
      const ofPeak = fractionOfPeak === null ? 'peak n/a: busy' : `${(100 * fractionOfPeak).toFixed(0)}% of est. 128-bit peak`;
      console.log(`${s.name.padEnd(26)} threads ${threads}  ${t.gflops.toFixed(1).padStart(6)} GFLOP/s  median ${t.medianMs.toFixed(2)} ms  best ${t.bestGflops.toFixed(1)}  ${t.gflopsPerCpuSecond.toFixed(1)} GFLOP/cpu-s  (${t.runs} runs, ${ofPeak})`);
    }
  }

  let tuning: Array<Record<string, unknown>> | undefined;
  if (args.has('tune')) {
    // A small search over tile shapes and blocking; the compiler's autotuner will own this later.
    const candidates: MatmulConfig[] = [];
    for (const [mr, nr] of [[4, 8], [2, 16], [3, 8], [6, 8]] as const) {
      for (const kc of [128, 256, 320, 384]) for (const mcTarget of [64, 128]) for (const unroll of [1, 2]) {
        candidates.push({ mr, nr, kc, mc: Math.ceil(mcTarget / mr) * mr, nc: 1024, unroll, fma: config.fma });
      }
    }
    const mm = new WasmMatmul(heap, pools.get(1) ?? new ThreadPool(heap, { threads: 1 }));
    const shape: Shape = { name: 'square 512', m: 512, n: 512, k: 512 };
    tuning = [];
    for (const c of candidates) {
      const t = time(mm, shape, c, 250);
      tuning.push({ config: matmulConfigKey(c), ...c, gflops: t.gflops, bestGflops: t.bestGflops, gflopsPerCpuSecond: t.gflopsPerCpuSecond, medianMs: t.medianMs });
      console.log(`tune ${matmulConfigKey(c).padEnd(34)} ${t.gflops.toFixed(1)} GFLOP/s  best ${t.bestGflops.toFixed(1)}  ${t.gflopsPerCpuSecond.toFixed(1)} GFLOP/cpu-s`);
    }
    // Ranked by the fastest run, the one least disturbed on a busy machine.
    tuning.sort((x, y) => (y.bestGflops as number) - (x.bestGflops as number));
    console.log(`best: ${tuning[0]!.config} ${(tuning[0]!.bestGflops as number).toFixed(1)} GFLOP/s (fastest run)`);
  }

  const idleAfter = await checkIdle(2);
  console.log(`idle check after: ${idleAfter.verdict}; loadavg ${idleAfter.loadavg1}`);
  const report = {
    library: 'tessera (wasm SIMD SGEMM)',
    date: new Date().toISOString(),
    command: `node --import tsx bench/matmul.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine,
    idleBefore,
    idleAfter,
    config: { ...config, key: matmulConfigKey(config) },
    peak: {
      per128BitCoreGflops: peakPerCore, reliable: idleBefore.idle,
      assumption: '16 flops/cycle/core (4 f32 lanes × mul+add × 2 pipes) at the clock estimated by the idle check',
    },
    results,
    ...(micro ? { micro } : {}),
    ...(tuning ? { tuning } : {}),
    ...(comparisons ? { versus: { config: matmulConfigKey(versus!), comparisons } } : {}),
  };
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${outFile}`);
  for (const p of pools.values()) p.dispose();
}

await main();
