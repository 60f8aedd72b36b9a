// Throughput of tensor ops on the wasm backend against the cpu reference backend, through the
// public ops (so dispatch overhead is included).
//   node --import tsx bench/wasm-ops.ts [--quick] [--out=FILE]
// Writes bench/results/wasm-ops.json with medians (wall and CPU time) and the idle check.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as t from '../src/index.js';
import '../src/backend/wasm/backend.js';
import { checkIdle, machineDescription } from './idle-check.js';

const args = new Map(process.argv.slice(2).map((a) => {
  const [key, value] = a.replace(/^--/, '').split('=');
  return [key!, value ?? 'true'] as const;
}));
const quick = args.has('quick');
const outFile = args.get('out') ?? 'bench/results/wasm-ops.json';

interface Case { name: string; elements: number; make: (backend: string) => () => t.Tensor }

const N = 1 << 20;
const cases: Case[] = [
  { name: 'add 1M', elements: N, make: (b) => { const x = t.rand([1024, 1024], { backend: b }), y = t.rand([1024, 1024], { backend: b }); return () => t.add(x, y); } },
  { name: 'add bias row-broadcast 1M', elements: N, make: (b) => { const x = t.rand([1024, 1024], { backend: b }), y = t.rand([1024], { backend: b }); return () => t.add(x, y); } },
  { name: 'relu 1M', elements: N, make: (b) => { const x = t.randn([1024, 1024], { backend: b }); return () => t.relu(x); } },
  { name: 'mul transposed 1M', elements: N, make: (b) => { const x = t.rand([1024, 1024], { backend: b }); return () => t.mul(t.transpose(x), x); } },
  // A convolution's output as an NCHW view of NHWC memory: the inner axis is strided.
  { name: 'relu channels-last view 1.6M', elements: 64 * 32 * 28 * 28, make: (b) => { const x = t.randn([64, 28, 28, 32], { backend: b }).permute([0, 3, 1, 2]); return () => t.relu(x); } },
  { name: 'exp transposed 1M', elements: N, make: (b) => { const x = t.randn([1024, 1024], { backend: b }); return () => t.exp(t.transpose(x)); } },
  { name: 'sum last axis 1M', elements: N, make: (b) => { const x = t.rand([1024, 1024], { backend: b }); return () => t.sum(x, -1); } },
  { name: 'sum axis 0 1M', elements: N, make: (b) => { const x = t.rand([1024, 1024], { backend: b }); return () => t.sum(x, 0); } },
  { name: 'max last axis 1M', elements: N, make: (b) => { const x = t.rand([1024, 1024], { backend: b }); return () => t.max(x, -1); } },
  { name: 'exp 1M', elements: N, make: (b) => { const x = t.randn([1024, 1024], { backend: b }); return () => t.exp(x); } },
  { name: 'tanh 1M', elements: N, make: (b) => { const x = t.randn([1024, 1024], { backend: b }); return () => t.tanh(x); } },
  { name: 'erf 1M', elements: N, make: (b) => { const x = t.randn([1024, 1024], { backend: b }); return () => t.erf(x); } },
  { name: 'gelu 1M', elements: N, make: (b) => { const x = t.randn([1024, 1024], { backend: b }); return () => t.gelu(x); } },
  { name: 'softmax 256x1024', elements: 256 * 1024, make: (b) => { const x = t.randn([256, 1024], { backend: b }); return () => t.softmax(x, -1); } },
  { name: 'avgPool2d 8x64x56x56 3x3/2', elements: 8 * 64 * 56 * 56, make: (b) => { const x = t.randn([8, 64, 56, 56], { backend: b }); return () => t.avgPool2d(x, 3, { stride: 2 }); } },
  { name: 'matmul 256', elements: 256 ** 3, make: (b) => { const x = t.rand([256, 256], { backend: b }), y = t.rand([256, 256], { backend: b }); return () => t.matmul(x, y); } },
];

function measure(fn: () => t.Tensor, budgetMs: number): { medianMs: number; cpuMedianMs: number; runs: number } {
  for (let i = 0; i < 3; i++) fn().dispose();
  const wall: number[] = [], cpu: number[] = [];
  const start = performance.now();
  while (wall.length < 5 || (performance.now() - start < budgetMs && wall.length < 300)) {
    const u = process.cpuUsage();
    const s = performance.now();
    const out = fn();
    wall.push(performance.now() - s);
    const d = process.cpuUsage(u);
    cpu.push((d.user + d.system) / 1000);
    out.dispose();
  }
  wall.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return { medianMs: wall[wall.length >> 1]!, cpuMedianMs: cpu[cpu.length >> 1]!, runs: wall.length };
}

const idleBefore = await checkIdle(2);
console.log(`idle check before: ${idleBefore.verdict}`);
const results: Array<Record<string, unknown>> = [];
for (const c of cases) {
  const row: Record<string, unknown> = { name: c.name };
  for (const backend of ['cpu', 'wasm']) {
    const m = measure(c.make(backend), quick ? 200 : 600);
    row[backend] = m;
  }
  const cpuMs = (row.cpu as { medianMs: number }).medianMs, wasmMs = (row.wasm as { medianMs: number }).medianMs;
  row.speedup = cpuMs / wasmMs;
  results.push(row);
  console.log(`${c.name.padEnd(36)} cpu ${cpuMs.toFixed(3).padStart(8)} ms   wasm ${wasmMs.toFixed(3).padStart(8)} ms   ×${(cpuMs / wasmMs).toFixed(1)}`);
}
const idleAfter = await checkIdle(2);
console.log(`idle check after: ${idleAfter.verdict}`);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify({
  library: 'tessera wasm backend vs cpu reference backend (one thread)',
  date: new Date().toISOString(),
  command: `node --import tsx bench/wasm-ops.ts ${process.argv.slice(2).join(' ')}`.trim(),
  machine: machineDescription(), idleBefore, idleAfter, results,
}, null, 2)}\n`);
console.log(`wrote ${outFile}`);
