// Per-op cost on the wasm backend as the number of live tensors grows: the allocator's bookkeeping
// must not slow down with many blocks alive (V8's Map degrades when one key is deleted and set
// again over and over, which an allocator does; see src/backend/wasm/address-map.ts).
//   node --import tsx bench/heap.ts [--out=FILE]
// Writes bench/results/heap.json: for 0, 10k and 40k extra live tensors, the median time of a
// WasmHeap alloc + free of one block, and of t.add on 4 floats + dispose (the dispatch included).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as t from '../src/index.js';
import { WasmHeap } from '../src/backend/wasm/memory.js';
import { checkIdle, machineDescription } from './idle-check.js';

const outFile = process.argv.find((a) => a.startsWith('--out='))?.slice(6) ?? 'bench/results/heap.json';

/** Median over 7 rounds of the mean time per call (µs) of `fn` called `n` times. */
function perCall(fn: () => void, n: number): number {
  for (let i = 0; i < n; i++) fn();
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    const s = performance.now();
    for (let i = 0; i < n; i++) fn();
    rounds.push(((performance.now() - s) / n) * 1000);
  }
  return rounds.sort((a, b) => a - b)[3]!;
}

const idleBefore = await checkIdle(2);
console.log(`idle check before: ${idleBefore.verdict}`);
t.setBackend('wasm');
const heap = new WasmHeap({});
const heapBlocks: number[] = [];
const tensors: t.Tensor[] = [];
const a = t.rand([4]), b = t.rand([4]);
const rows: { liveTensors: number; allocFreeMicros: number; addMicros: number }[] = [];
for (const live of [0, 10_000, 40_000]) {
  while (tensors.length < live) tensors.push(t.tensor([tensors.length]));
  // The same pattern in a bare heap: live blocks with a freed one between (the address reused).
  while (heapBlocks.length < 2 * live) { heapBlocks.push(heap.alloc(4)); const gap = heap.alloc(4); heapBlocks.push(heap.alloc(4)); heap.free(gap); }
  const row = {
    liveTensors: live,
    allocFreeMicros: perCall(() => heap.free(heap.alloc(16)), 20_000),
    addMicros: perCall(() => t.add(a, b).dispose(), 5_000),
  };
  rows.push(row);
  console.log(`${String(live).padStart(6)} live tensors: heap alloc+free ${row.allocFreeMicros.toFixed(3)} µs, add of 4 floats + dispose ${row.addMicros.toFixed(2)} µs`);
}
const idleAfter = await checkIdle(2);
console.log(`idle check after: ${idleAfter.verdict}`);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify({
  what: 'wasm backend: allocator and small-op cost vs live tensors (medians of 7 rounds)',
  date: new Date().toISOString(), command: `node --import tsx bench/heap.ts ${process.argv.slice(2).join(' ')}`.trim(),
  machine: machineDescription(), idleBefore, idleAfter, rows,
}, null, 2)}\n`);
console.log(`wrote ${outFile}`);
