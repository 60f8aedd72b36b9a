import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { bind } from '../../../src/ops/dispatch.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';
import { splitAxis } from '../../../src/backend/wasm/gather-scatter.js';

// gather and scatterAdd on the wasm backend against the cpu reference, bit for bit, with one
// thread and with jobs large enough (≥ 2^15 index elements) to be split over two threads. The
// scatter-adds send many contributions to one element in float32 values whose sum depends on the
// order of additions, so a split that reordered them (or raced) would show.

let seed = 5;
function random(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
}

function floats(shape: number[]): [t.Tensor, t.Tensor] {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, () => (random() - 0.5) * 2 ** Math.floor(random() * 20 - 10));
  return [t.tensor(data, { shape, backend: 'cpu' }), t.tensor(data, { shape, backend: 'wasm' })];
}

/** Indices in [0, size), few distinct ones so that scatter-adds collide. */
function indices(shape: number[], size: number, distinct = size): [t.Tensor, t.Tensor] {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Int32Array.from({ length: n }, () => Math.floor(random() * Math.min(size, distinct)));
  return [t.tensor(data, { shape, dtype: 'int32', backend: 'cpu' }), t.tensor(data, { shape, dtype: 'int32', backend: 'wasm' })];
}

function assertSame(actual: t.Tensor, expected: t.Tensor, what: string): void {
  assert.equal(actual.backend, 'wasm', `${what}: result left the wasm backend`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = actual.data(), e = expected.data();
  for (let i = 0; i < e.length; i++) {
    if (!Object.is(a[i], e[i])) assert.fail(`${what}: element ${i} is ${a[i]}, the cpu reference ${e[i]}`);
  }
}

/** A zero base as gather's vjp builds it (a broadcast scalar zero). */
const zeroBase = (shape: number[], backend: string) => bind('expand', [t.full([], 0, { dtype: 'float32', backend })], { shape });

/** Counts the thread pool's jobs while fn runs. */
function poolJobs(fn: () => void): number {
  const pool = wasmBackend.pool;
  const run = pool.run;
  let jobs = 0;
  pool.run = function (...args: Parameters<typeof run>) { jobs++; return run.apply(this, args); };
  try { fn(); } finally { pool.run = run; }
  return jobs;
}

interface Case { name: string; dst: number[]; index: number[]; axis: number; distinct?: number; transposed?: boolean }
const cases: Case[] = [
  // Max pooling's shape: [N, C, H·W] picked along the flattened spatial axis.
  { name: 'pooling, axis last', dst: [6, 7, 900], index: [6, 7, 800], axis: 2 },
  // Collisions come from index elements that differ only along axis 0; the split (along axis 1) keeps each group in one unit.
  { name: 'axis first, many collisions', dst: [50, 33, 27], index: [60, 33, 27], axis: 0, distinct: 5 },
  // Index shorter than dst along the split axis: dst is zeroed whole first, not in slabs per unit.
  { name: 'index narrower than dst', dst: [12, 40, 120], index: [9, 31, 118], axis: 1, distinct: 7 },
  // Leading size-1 axis: split along axis 1, zero slabs along it.
  { name: 'leading size 1', dst: [1, 70, 600], index: [1, 70, 500], axis: 2, distinct: 30 },
  // Units of unequal length along an innermost split axis (rows of 4 or 5 elements).
  { name: 'split innermost, uneven units', dst: [9000, 37], index: [9000, 37], axis: 0, distinct: 3 },
  // Strided operands (a transposed view of contiguous tensors).
  { name: 'transposed views', dst: [40, 30, 50], index: [40, 30, 50], axis: 1, distinct: 4, transposed: true },
];

for (const threads of [1, 2]) {
  test(`gather and scatterAdd equal the cpu reference bit for bit (${threads} thread(s))`, () => {
    const previous = wasmBackend.pool.threads;
    assert.equal(enableWasmThreads(threads), threads);
    try {
      for (const c of cases) {
        const [xc, xw] = floats(c.dst);
        const [ic, iw] = indices(c.index, c.dst[c.axis]!, c.distinct);
        const [sc, sw] = floats(c.index);
        let jobs = poolJobs(() => assertSame(t.gather(xw, c.axis, iw), t.gather(xc, c.axis, ic), `gather ${c.name}`));
        if (threads === 2) assert.ok(jobs > 0, `${c.name}: gather was not split over the threads`);
        jobs = poolJobs(() => assertSame(
          bind('scatterAdd', [zeroBase(c.dst, 'wasm'), iw, sw], { axis: c.axis }),
          bind('scatterAdd', [zeroBase(c.dst, 'cpu'), ic, sc], { axis: c.axis }), `scatterAdd onto zeros ${c.name}`));
        if (threads === 2) assert.ok(jobs > 0, `${c.name}: scatterAdd was not split over the threads`);
        assertSame(t.scatterAdd(xw, c.axis, iw, sw), t.scatterAdd(xc, c.axis, ic, sc), `scatterAdd onto a base ${c.name}`);
        if (c.transposed === true) {
          const tr = (x: t.Tensor) => t.transpose(x, 0, 2);
          assertSame(t.gather(tr(xw), 2 - c.axis, tr(iw)), t.gather(tr(xc), 2 - c.axis, tr(ic)), `gather transposed ${c.name}`);
          assertSame(bind('scatterAdd', [zeroBase([...tr(xw).shape], 'wasm'), tr(iw), tr(sw)], { axis: 2 - c.axis }),
            bind('scatterAdd', [zeroBase([...tr(xc).shape], 'cpu'), tr(ic), tr(sc)], { axis: 2 - c.axis }), `scatterAdd transposed ${c.name}`);
        }
      }
    } finally {
      enableWasmThreads(previous);
    }
  });
}

test('an index out of range in a split job reports as the reference does, and a later job is unaffected', () => {
  const previous = wasmBackend.pool.threads;
  enableWasmThreads(2);
  try {
    const [xc, xw] = floats([8, 16, 600]);
    const [ic, iw] = indices([8, 16, 300], 600);
    const [sc, sw] = floats([8, 16, 300]);
    const bad = (i: t.Tensor) => t.where(t.eq(t.arange(0, 300, 1, { dtype: 'int32', backend: i.backend }), 299), t.full([], 600, { dtype: 'int32', backend: i.backend }), i);
    const message = (f: () => unknown) => { try { f(); } catch (e) { return (e as Error).message; } return ''; };
    for (const [name, wasm, cpu] of [
      ['gather', () => t.gather(xw, 2, bad(iw)), () => t.gather(xc, 2, bad(ic))],
      ['scatterAdd', () => bind('scatterAdd', [zeroBase([8, 16, 600], 'wasm'), bad(iw), sw], { axis: 2 }),
        () => bind('scatterAdd', [zeroBase([8, 16, 600], 'cpu'), bad(ic), sc], { axis: 2 })],
    ] as const) {
      const m = message(wasm);
      assert.notEqual(m, '', `${name}: no error`);
      assert.equal(m, message(cpu), `${name}: error`);
    }
    assertSame(t.gather(xw, 2, iw), t.gather(xc, 2, ic), 'gather after the error');
  } finally {
    enableWasmThreads(previous);
  }
});

test('splitAxis picks the first axis of size above one other than the gathered one', () => {
  assert.equal(splitAxis([64, 32, 196], 2), 0);
  assert.equal(splitAxis([64, 32, 196], 0), 1);
  assert.equal(splitAxis([1, 32, 196], 2), 1);
  assert.equal(splitAxis([1, 1, 196], 2), undefined);
  assert.equal(splitAxis([500], 0), undefined);
});
