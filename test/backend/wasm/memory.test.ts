import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmHeap, BLOCK_ALIGN, WASM_PAGE_BYTES } from '../../../src/backend/wasm/memory.js';
import { AddressMap } from '../../../src/backend/wasm/address-map.js';

test('blocks are 64-byte aligned, at least the requested size, and never overlap (random alloc/free)', () => {
  const heap = new WasmHeap({ initialBytes: WASM_PAGE_BYTES, maximumBytes: 64 * 2 ** 20 });
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const live = new Map<number, number>(); // ptr → requested bytes
  for (let step = 0; step < 3000; step++) {
    if (live.size > 0 && rand() < 0.45) {
      const keys = [...live.keys()];
      const ptr = keys[Math.floor(rand() * keys.length)]!;
      live.delete(ptr);
      heap.free(ptr);
    } else {
      const bytes = rand() < 0.1 ? Math.floor(rand() * 200000) : Math.floor(rand() * 3000);
      const ptr = heap.alloc(bytes);
      assert.equal(ptr % BLOCK_ALIGN, 0);
      assert.ok(ptr > 0, 'address 0 is reserved');
      assert.ok(heap.blockSize(ptr) >= bytes);
      assert.ok(ptr + bytes <= heap.byteLength);
      live.set(ptr, bytes);
    }
  }
  const intervals = [...live.keys()].map((p) => [p, p + heap.blockSize(p)] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < intervals.length; i++) assert.ok(intervals[i - 1]![1] <= intervals[i]![0], 'blocks overlap');
  const stats = heap.stats();
  assert.equal(stats.blocksInUse, live.size);
  assert.equal(stats.bytesInUse, intervals.reduce((s, [a, b]) => s + (b - a), 0));
  assert.ok(stats.peakBytesInUse >= stats.bytesInUse);
  // Everything freed: the heap coalesces back to an empty bump region.
  for (const p of live.keys()) heap.free(p);
  const empty = heap.stats();
  assert.equal(empty.bytesInUse, 0);
  assert.equal(empty.freeBlocks, 0);
  assert.equal(empty.heapTop, BLOCK_ALIGN);
});

test('a freed block is reused for a request of the same size class', () => {
  const heap = new WasmHeap({ initialBytes: WASM_PAGE_BYTES });
  const a = heap.alloc(1000);
  const guard = heap.alloc(64); // keeps `a` from merging into the top
  heap.free(a);
  assert.equal(heap.stats().freeBlocks, 1);
  const b = heap.alloc(1000);
  assert.equal(b, a);
  assert.equal(heap.stats().freeBlocks, 0);
  heap.free(b);
  heap.free(guard);
});

test('adjacent free blocks coalesce and a larger free block is split', () => {
  const heap = new WasmHeap({ initialBytes: WASM_PAGE_BYTES });
  const a = heap.alloc(4096);
  const b = heap.alloc(4096);
  const guard = heap.alloc(64);
  heap.free(a);
  heap.free(b);
  assert.equal(heap.stats().freeBlocks, 1);
  assert.equal(heap.stats().bytesFree, 8192);
  const big = heap.alloc(8192); // fits only in the merged block
  assert.equal(big, a);
  heap.free(big);
  const small = heap.alloc(1024); // split: takes the front, leaves the rest free
  assert.equal(small, a);
  assert.equal(heap.stats().bytesFree, 8192 - 1024);
  heap.free(small);
  heap.free(guard);
  assert.equal(heap.stats().heapTop, BLOCK_ALIGN);
});

test('size classes bound the rounding waste to 25% beyond 512 bytes', () => {
  const heap = new WasmHeap({ initialBytes: WASM_PAGE_BYTES });
  for (const bytes of [1, 64, 65, 500, 513, 1000, 4097, 100000, 1234567]) {
    const p = heap.alloc(bytes);
    const size = heap.blockSize(p);
    assert.ok(size >= bytes && size % 64 === 0);
    if (bytes > 512) assert.ok(size <= bytes * 1.25 + 64, `${bytes} → ${size}`);
    heap.free(p);
  }
});

test('the memory grows on demand and data survives growth', () => {
  const heap = new WasmHeap({ initialBytes: WASM_PAGE_BYTES, maximumBytes: 32 * 2 ** 20 });
  const a = heap.alloc(1024);
  heap.f32.set([1, 2, 3], a / 4);
  const before = heap.byteLength;
  const big = heap.alloc(4 * 2 ** 20);
  assert.ok(heap.byteLength > before);
  assert.deepEqual(Array.from(heap.f32.subarray(a / 4, a / 4 + 3)), [1, 2, 3]);
  heap.f32[big / 4 + 2 ** 20 - 1] = 7; // last float of the block is addressable
  assert.equal(heap.f32[big / 4 + 2 ** 20 - 1], 7);
});

test('errors name the problem: double free, foreign pointer, bad size, out of memory', () => {
  const heap = new WasmHeap({ initialBytes: WASM_PAGE_BYTES, maximumBytes: 4 * WASM_PAGE_BYTES });
  const p = heap.alloc(100);
  heap.free(p);
  assert.throws(() => heap.free(p), /not the address of a live block/);
  assert.throws(() => heap.free(12345), /not the address of a live block/);
  assert.throws(() => heap.alloc(-1), /non-negative integer/);
  assert.throws(() => heap.alloc(1.5), /non-negative integer/);
  assert.throws(() => heap.alloc(5 * WASM_PAGE_BYTES), /out of memory allocating 327680 bytes.*raise maximumBytes/);
  assert.throws(() => new WasmHeap({ initialBytes: 2 ** 20, maximumBytes: 2 ** 16 }), /exceeds maximumBytes/);
});

test('shared and unshared memories', () => {
  const shared = new WasmHeap({ initialBytes: WASM_PAGE_BYTES, maximumBytes: 2 ** 20, shared: true });
  assert.ok(shared.memory.buffer instanceof SharedArrayBuffer);
  const plain = new WasmHeap({ initialBytes: WASM_PAGE_BYTES, shared: false });
  assert.ok(!(plain.memory.buffer instanceof SharedArrayBuffer));
  assert.equal(new WasmHeap({ initialBytes: WASM_PAGE_BYTES, maximumBytes: 2 ** 20 }).shared, true);
});

test('pressure alerts fire as the bytes in use pass rising thresholds, and re-arm after frees', () => {
  const alerts: number[] = [];
  const heap = new WasmHeap({ initialBytes: WASM_PAGE_BYTES, onPressure: (s) => alerts.push(s.bytesInUse), pressureStepBytes: 1 << 20 });
  const blocks: number[] = [];
  for (let i = 0; i < 16; i++) blocks.push(heap.alloc(256 * 1024)); // 4 MiB in all
  // Thresholds: 1 MiB; then in use + step + half of in use = 2.5 MiB; then 4.75 MiB (not reached).
  assert.deepEqual(alerts, [1 << 20, 2.5 * (1 << 20)]);
  for (const b of blocks) heap.free(b);
  heap.alloc(1 << 20);
  assert.equal(alerts.length, 2, 'memory given back (the top retracted) and taken again is no growth: no alert');
  heap.alloc(4 << 20); // 5 MiB in use, the top past its highest point (4 MiB) and the 4.75 MiB threshold
  assert.equal(alerts.length, 3, 'after the memory came back, growth past the old top alerts again');
});

test('memory cycled through free blocks raises no alert; growth of the heap top does', () => {
  const alerts: number[] = [];
  const heap = new WasmHeap({ initialBytes: WASM_PAGE_BYTES, onPressure: (s) => alerts.push(s.bytesInUse), pressureStepBytes: 1 << 20 });
  const allocAll = () => Array.from({ length: 8 }, () => heap.alloc(256 * 1024)); // 2 MiB
  const first = allocAll();
  assert.equal(alerts.length, 1, 'the first 2 MiB pass the 1 MiB threshold once');
  heap.alloc(64); // pinned above the blocks, so that freeing them leaves free blocks below the top
  for (const b of first) heap.free(b);
  for (let step = 0; step < 3; step++) {
    // Like a training step in a memory scope: the same bytes again, from the free blocks.
    const again = allocAll();
    for (const b of again) heap.free(b);
  }
  assert.equal(alerts.length, 1, 'reusing freed memory past the threshold must not alert (it would force a collection every step)');
  const leaked = [...allocAll(), ...allocAll()]; // the second 2 MiB must extend the top
  assert.equal(alerts.length, 2, 'memory that is not given back still alerts once the top has to move');
  assert.equal(leaked.length, 16);
});

test('AddressMap agrees with a Map under random sets and deletes, across its rebuilds', () => {
  const m = new AddressMap(), ref = new Map<number, number>();
  let seed = 777;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let step = 0; step < 20000; step++) {
    // Few distinct keys early (reuse, as an allocator does), many later (to force rebuilds).
    const key = 64 * Math.floor(rand() * (step < 10000 ? 50 : 5000));
    if (rand() < 0.5) { const v = 1 + Math.floor(rand() * 100); m.set(key, v); ref.set(key, v); } else { m.delete(key); ref.delete(key); }
    if (step % 997 === 0 || step === 19999) {
      assert.equal(m.size, ref.size);
      assert.deepEqual([...m.values()].sort((a, b) => a - b), [...ref.values()].sort((a, b) => a - b));
      for (let k = 0; k < 5000; k += 7) assert.equal(m.get(64 * k), ref.get(64 * k));
    }
  }
});

test('many blocks alive, one reused address and heavy coalescing: stats stay exact', () => {
  const heap = new WasmHeap({ initialBytes: WASM_PAGE_BYTES });
  // Alternate live and freed small blocks (free blocks between live ones, never coalescing)...
  const kept: number[] = [];
  const gaps: number[] = [];
  for (let i = 0; i < 3000; i++) { kept.push(heap.alloc(64)); gaps.push(heap.alloc(64)); kept.push(heap.alloc(64)); }
  for (const g of gaps) heap.free(g);
  assert.equal(heap.stats().freeBlocks, 3000);
  // ...then cycle one size through them (the same addresses over and over)...
  for (let i = 0; i < 5000; i++) heap.free(heap.alloc(40));
  // ...and free every other kept block so each merges with the gap after it (128 bytes).
  for (let i = 0; i < kept.length; i += 2) heap.free(kept[i]!);
  const s = heap.stats();
  assert.equal(s.blocksInUse, kept.length / 2);
  assert.equal(s.bytesInUse, 64 * kept.length / 2);
  // Every freed byte below the top is accounted for in free blocks, and they are all reusable.
  assert.equal(s.bytesFree + s.bytesInUse, s.heapTop - BLOCK_ALIGN);
  const again: number[] = [];
  for (let i = 0; i < s.freeBlocks; i++) again.push(heap.alloc(128));
  assert.equal(heap.stats().heapTop, s.heapTop, 'the 128-byte free blocks were reused, not bumped');
  for (const p of [...again, ...kept.filter((_, i) => i % 2 === 1)]) heap.free(p);
  assert.deepEqual([heap.stats().bytesInUse, heap.stats().freeBlocks, heap.stats().heapTop], [0, 0, BLOCK_ALIGN]);
});
