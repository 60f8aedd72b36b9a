// Do the two cores slow each other down? Runs the same single-threaded wasm workload in one
// process alone, then in two processes at once, and prints each process's throughput per 0.3 s
// window. Two workloads: the SGEMM micro-kernel on L1-resident panels (compute only) and a whole
// GEMM of the MLP's first layer, half of its columns (128×256×784, B transposed: what each
// thread does when two threads split that product), which also streams its operands through
// L2/L3.
//   node --import tsx bench/contention.ts [--seconds=2] [--rounds=2]
// If "together" is much slower than "alone" for the GEMM but not for the micro-kernel, the cores
// compete for the memory system, not for arithmetic, and a second thread cannot double a GEMM's
// speed on this machine whatever the thread pool does.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WasmHeap } from '../src/backend/wasm/memory.js';
import { ThreadPool } from '../src/backend/wasm/threads.js';
import { WasmMatmul, rowMajorOperand } from '../src/backend/wasm/matmul.js';
import { defaultMatmulConfig } from '../src/backend/wasm/matmul-config.js';
import { microKernelCall } from './host-probe.js';

type Workload = 'micro' | 'gemm';

const args = new Map(process.argv.slice(2).map((a) => {
  const [key, value] = a.replace(/^--/, '').split('=');
  return [key!, value ?? 'true'] as const;
}));
const seconds = Number(args.get('seconds') ?? 2);
const rounds = Number(args.get('rounds') ?? 2);

/** Runs `workload` for `seconds` and returns GFLOP/s per 0.3 s window. */
function measure(workload: Workload, ms: number): number[] {
  const config = defaultMatmulConfig();
  let step: () => number;
  if (workload === 'micro') {
    const call = microKernelCall();
    const memory = new WebAssembly.Memory({ initial: call.pages, maximum: call.pages });
    const micro = new WebAssembly.Instance(new WebAssembly.Module(call.bytes), { env: { memory } }).exports.micro as
      (...a: number[]) => void;
    step = () => {
      for (let i = 0; i < 1000; i++) micro(...call.args);
      return 1000 * call.flopsPerCall;
    };
  } else {
    const heap = new WasmHeap({ initialBytes: 32 * 2 ** 20 });
    const mm = new WasmMatmul(heap, new ThreadPool(heap, { threads: 1 }), config);
    const [m, n, k] = [128, 256, 784];
    const a = heap.alloc(m * k * 4), b = heap.alloc(k * n * 4), c = heap.alloc(m * n * 4);
    heap.f32.fill(0.5, a / 4, a / 4 + m * k);
    heap.f32.fill(0.25, b / 4, b / 4 + k * n);
    const args = { m, n, k, a: rowMajorOperand(a, m, k), b: rowMajorOperand(b, n, k, true), c: rowMajorOperand(c, m, n) };
    step = () => {
      mm.run(args);
      return 2 * m * n * k;
    };
  }
  for (let i = 0; i < 50; i++) step(); // tier-up
  const windows: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = performance.now();
    let flops = 0;
    while (performance.now() - t0 < 300) flops += step();
    windows.push(flops / ((performance.now() - t0) / 1e3) / 1e9);
  }
  return windows;
}

function child(workload: Workload): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), `--child=${workload}`, `--seconds=${seconds}`],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(`child exited with ${code}`))));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `median ${median(xs).toFixed(1)} (${xs.map((x) => x.toFixed(1)).join(' ')})`;

const childWorkload = args.get('child') as Workload | undefined;
if (childWorkload !== undefined) {
  process.stdout.write(JSON.stringify(measure(childWorkload, seconds * 1000)));
} else {
  for (const workload of ['micro', 'gemm'] as const) {
    for (let r = 0; r < rounds; r++) {
      const alone = await child(workload);
      const [a, b] = await Promise.all([child(workload), child(workload)]);
      console.log(`${workload.padEnd(5)} round ${r + 1}: alone ${fmt(alone)} GFLOP/s`);
      console.log(`${''.padEnd(14)}together ${fmt(a!)} | ${fmt(b!)}`);
    }
  }
}
