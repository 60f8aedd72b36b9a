import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { bind } from '../../../src/ops/dispatch.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';
import { rowParallelMinElements } from '../../../src/backend/wasm/row-jobs.js';

// The row-wise kernels (softmax, layerNormCore/Rstd/CoreGrad, float32 sum/max/min) split over a
// 2-thread pool by rows, or by kept columns of a reduction (row-jobs.ts): each result must have
// the same bits as one thread's (every row, every column sum, computed alone by the same code in the
// same order), and match the float64 cpu reference. Small and odd shapes are forced onto the pool
// by a split threshold of 0; rows fewer than units, a single row and layouts that fall back to the
// reference kernel are covered too.

function data(n: number, seed: number, scale = 8): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround((s / 2 ** 32 - 0.5) * scale);
  });
}

/** A float32 tensor of this shape on `backend` (the same values on every backend). */
function input(shape: number[], seed: number, backend: string, dtype: t.DType = 'float32'): t.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return t.tensor(Float64Array.from(data(n, seed)), { dtype, shape, backend });
}

interface Case {
  name: string;
  /** Runs the op on `backend` in `dtype` (float32 on wasm; float64 on cpu for the reference). */
  run: (backend: string, dtype: t.DType) => t.Tensor;
  /** How the 2-thread run must go: split over the pool, or stay on the calling thread. */
  pool: 'split' | 'calling thread';
  /** Forces the split threshold to 0 (small shapes). */
  force?: boolean;
  /** Largest |wasm f32 − f64 reference| allowed, relative to the row's or column's scale. */
  tolerance: number;
}

const eps = 1e-5;
const core = (x: t.Tensor) => bind('layerNormCore', [x], { eps });
const rstd = (x: t.Tensor) => bind('layerNormRstd', [x], { eps });
const coreGrad = (x: t.Tensor, g: t.Tensor) => bind('layerNormCoreGrad', [x, g], { eps });

function cases(): Case[] {
  const softmax = 1e-5, norm = 1e-4, sum = 1e-5, exact = 0;
  return [
    // softmax
    { name: 'softmax [2,4,64,64] (attention scores)', run: (b, d) => t.softmax(input([2, 4, 64, 64], 1, b, d), -1), pool: 'split', tolerance: softmax },
    { name: 'softmax [37,29] (odd rows, a row tail)', run: (b, d) => t.softmax(input([37, 29], 2, b, d), -1), pool: 'split', force: true, tolerance: softmax },
    { name: 'softmax [3,3] (rows fewer than units, tail only)', run: (b, d) => t.softmax(input([3, 3], 3, b, d), -1), pool: 'split', force: true, tolerance: softmax },
    { name: 'softmax [1,301] (one row: not split)', run: (b, d) => t.softmax(input([1, 301], 4, b, d), -1), pool: 'calling thread', force: true, tolerance: softmax },
    {
      name: 'softmax of permuted rows (kept dims that do not merge)',
      run: (b, d) => t.softmax(t.permute(input([5, 3, 21], 5, b, d), [1, 0, 2]), -1), pool: 'split', force: true, tolerance: softmax,
    },
    {
      name: 'softmax along a strided axis (falls back to the reference)',
      run: (b, d) => t.softmax(t.transpose(input([40, 30], 6, b, d)), -1), pool: 'calling thread', force: true, tolerance: softmax,
    },
    // layerNorm primitives
    { name: 'layerNormCore [4,64,128]', run: (b, d) => core(input([4, 64, 128], 7, b, d)), pool: 'split', tolerance: norm },
    { name: 'layerNormCore [13,37] (odd rows, a row tail)', run: (b, d) => core(input([13, 37], 8, b, d)), pool: 'split', force: true, tolerance: norm },
    { name: 'layerNormRstd [4,64,128]', run: (b, d) => rstd(input([4, 64, 128], 9, b, d)), pool: 'split', tolerance: norm },
    { name: 'layerNormRstd [5,3,7] (odd)', run: (b, d) => rstd(input([5, 3, 7], 10, b, d)), pool: 'split', force: true, tolerance: norm },
    {
      name: 'layerNormCoreGrad [4,64,128]',
      run: (b, d) => coreGrad(input([4, 64, 128], 11, b, d), input([4, 64, 128], 12, b, d)), pool: 'split', tolerance: norm,
    },
    {
      name: 'layerNormCoreGrad of permuted rows, odd sizes',
      run: (b, d) => coreGrad(t.permute(input([3, 7, 19], 13, b, d), [1, 0, 2]), input([7, 3, 19], 14, b, d)), pool: 'split', force: true, tolerance: norm,
    },
    {
      name: 'layerNormCore along a strided axis (falls back)',
      run: (b, d) => core(t.transpose(input([33, 20], 15, b, d))), pool: 'calling thread', force: true, tolerance: norm,
    },
    // reductions: columns (reduced leading axes), rows (reduced last axis), both in two stages
    { name: 'sum [16,64,512] over [0,1] (a bias gradient: columns)', run: (b, d) => t.sum(input([16, 64, 512], 16, b, d), [0, 1], true), pool: 'split', tolerance: exact },
    { name: 'sum [1024,65] over 1 (row sums)', run: (b, d) => t.sum(input([1024, 65], 17, b, d), 1, true), pool: 'split', force: true, tolerance: sum },
    { name: 'sum [8,32,28,28] over [0,2,3] (a conv bias gradient: rows, then columns)', run: (b, d) => t.sum(input([8, 32, 28, 28], 18, b, d), [0, 2, 3]), pool: 'split', force: true, tolerance: sum },
    { name: 'sum [16,64,128] over [0,1] (below the reductions\' threshold)', run: (b, d) => t.sum(input([16, 64, 128], 26, b, d), [0, 1], true), pool: 'calling thread', tolerance: exact },
    { name: 'max [300,37] over 0 (odd columns)', run: (b, d) => t.max(input([300, 37], 19, b, d), 0), pool: 'split', force: true, tolerance: exact },
    { name: 'min [41,13] over 1 (odd rows and lengths)', run: (b, d) => t.min(input([41, 13], 20, b, d), 1), pool: 'split', force: true, tolerance: exact },
    { name: 'sum [500,50] over 0 (columns in 16s and a rest)', run: (b, d) => t.sum(input([500, 50], 21, b, d), 0), pool: 'split', force: true, tolerance: exact },
    { name: 'sum [500,7] over 0 (fewer columns than a unit: not split)', run: (b, d) => t.sum(input([500, 7], 22, b, d), 0), pool: 'calling thread', force: true, tolerance: exact },
    { name: 'sum [1,5000] over 1 (one row: not split)', run: (b, d) => t.sum(input([1, 5000], 23, b, d), 1), pool: 'calling thread', force: true, tolerance: sum },
    {
      name: 'sum of a permuted [5,4,6] over its middle axis (falls back)',
      run: (b, d) => t.sum(t.permute(input([5, 4, 6], 24, b, d), [2, 0, 1]), 1), pool: 'calling thread', force: true, tolerance: sum,
    },
  ];
}

/** Checks wasm float32 values against the float64 cpu reference: |got − want| ≤ tolerance·max(1, |want|). */
function assertNearReference(got: Float32Array | ArrayLike<number>, c: Case): void {
  const want = c.run('cpu', 'float64').data();
  assert.equal(got.length, want.length, `${c.name}: length`);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    assert.ok(err <= c.tolerance * Math.max(1, Math.abs(want[i]!)) + (c.tolerance === 0 ? 2 ** -23 * Math.abs(want[i]!) : 0),
      `${c.name}[${i}]: ${got[i]} vs reference ${want[i]}`);
  }
}

function withThreshold<T>(force: boolean | undefined, fn: () => T): T {
  const saved = { ...rowParallelMinElements };
  if (force === true) for (const k of Object.keys(rowParallelMinElements) as (keyof typeof rowParallelMinElements)[]) rowParallelMinElements[k] = 0;
  try {
    return fn();
  } finally {
    Object.assign(rowParallelMinElements, saved);
  }
}

test('row-wise kernels on two threads give the same bits as on one, and match the reference', () => {
  t.setBackend('wasm');
  wasmBackend.setThreads(1);
  const single = cases().map((c) => withThreshold(c.force, () => Float32Array.from(c.run('wasm', 'float32').data())));
  assert.equal(enableWasmThreads(2), 2);
  try {
    const pool = wasmBackend.pool;
    assert.equal(pool.waitUntilReady(), 1, 'the worker started');
    let splits = 0;
    const run = pool.run.bind(pool);
    pool.run = (...args: Parameters<typeof pool.run>) => {
      if (args[2] > 1 && args[3] !== false) splits++;
      run(...args);
    };
    cases().forEach((c, i) => {
      const before = splits;
      const got = withThreshold(c.force, () => Float32Array.from(c.run('wasm', 'float32').data()));
      assert.equal(splits > before, c.pool === 'split', `${c.name}: ${c.pool === 'split' ? 'was not split over the pool' : 'went to the pool'}`);
      assert.deepEqual(got, single[i]!, `${c.name}: differs from one thread`);
      assertNearReference(got, c);
    });
  } finally {
    wasmBackend.stopThreads();
  }
});

test('below the split threshold a row-wise kernel stays on the calling thread', () => {
  t.setBackend('wasm');
  assert.equal(enableWasmThreads(2), 2);
  try {
    const pool = wasmBackend.pool;
    let jobs = 0;
    const run = pool.run.bind(pool);
    pool.run = (...args: Parameters<typeof pool.run>) => { jobs++; run(...args); };
    const x = input([8, 64], 25, 'wasm'); // 512 elements: far below every default threshold
    t.softmax(x, -1).data();
    core(x).data();
    t.sum(x, 0).data();
    t.sum(x, 1).data();
    assert.equal(jobs, 0, 'no pool job for small inputs');
  } finally {
    wasmBackend.stopThreads();
  }
});
