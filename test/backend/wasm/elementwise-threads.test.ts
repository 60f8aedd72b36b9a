import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';

// Large elementwise blocks are split over the thread pool (by rows, or each row in pieces whose
// length is a multiple of 4): the results must be bit-identical to one thread's, for every kind of
// kernel (binary with broadcasts, strided inputs, transcendentals, comparisons, where).

function data(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround((s / 2 ** 32) * 8 - 4);
  });
}

function cases(): { name: string; run: () => t.Tensor }[] {
  const x = t.tensor(data(300 * 301, 1), { dtype: 'float32', shape: [300, 301] }); // one row of 90300 (not a multiple of 4)
  const y = t.tensor(data(300 * 301, 2), { dtype: 'float32', shape: [300, 301] });
  const wide = t.tensor(data(512 * 200, 3), { dtype: 'float32', shape: [512, 200] }); // 512 rows once a bias is broadcast
  const bias = t.tensor(data(200, 4), { dtype: 'float32', shape: [200] });
  const column = t.tensor(data(300, 5), { dtype: 'float32', shape: [300, 1] });
  return [
    { name: 'add (one long row, pieces)', run: () => t.add(x, y) },
    { name: 'mul with a row broadcast (rows)', run: () => t.mul(wide, bias) },
    { name: 'sub with a column broadcast', run: () => t.sub(x, column) },
    { name: 'div of a transposed (strided) input', run: () => t.div(t.transpose(x), t.transpose(y)) },
    { name: 'reluGrad with a transposed gradient', run: () => t.reluGrad(x, t.transpose(t.transpose(y).contiguous())) },
    { name: 'exp', run: () => t.exp(x) },
    { name: 'gelu', run: () => t.gelu(x) },
    { name: 'tanh of a transposed input', run: () => t.tanh(t.transpose(y)) },
    { name: 'gt (bool output)', run: () => t.gt(x, y) },
    { name: 'where', run: () => t.where(t.gt(x, y), x, y) },
  ];
}

test('elementwise kernels split over two threads give the same bits as one thread', () => {
  t.setBackend('wasm');
  const single = cases().map((c) => ({ name: c.name, values: Array.from(c.run().data()) }));
  const threads = enableWasmThreads(2);
  try {
    assert.equal(threads, 2);
    const pool = wasmBackend.pool;
    let jobs = 0;
    const run = pool.run.bind(pool);
    pool.run = (...args: Parameters<typeof pool.run>) => { jobs++; run(...args); };
    cases().forEach((c, i) => {
      const before = jobs;
      const values = Array.from(c.run().data());
      assert.ok(jobs > before, `${c.name}: ran on the pool`);
      assert.deepEqual(values, single[i]!.values, `${c.name}: differs from one thread`);
    });
  } finally {
    wasmBackend.stopThreads();
  }
});
