import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';
import { transposePlan } from '../../../src/backend/wasm/transpose.js';

// The transposing copy (transpose-kernel.ts) behind `contiguous` of transposed views on wasm:
// bit for bit against the cpu reference, with edges that do not fill 4x4 blocks, an outer axis,
// float32 and int32, on one and two threads; and which layouts it takes.

let seed = 9;
function bits(n: number): Int32Array {
  return Int32Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed | 0;
  });
}

function pair(shape: number[], dtype: 'float32' | 'int32'): [t.Tensor, t.Tensor] {
  const raw = bits(shape.reduce((a, b) => a * b, 1));
  // int32: arbitrary bit patterns (the kernel moves bits whatever the dtype); float32: finite
  // values (the cpu reference moves them as JS numbers, which may quiet a signalling NaN).
  const data = dtype === 'int32' ? raw : Float32Array.from(raw, (v) => v / 2 ** 20);
  return [t.tensor(data, { shape, dtype, backend: 'cpu' }), t.tensor(data, { shape, dtype, backend: 'wasm' })];
}

function sameBits(actual: t.Tensor, expected: t.Tensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  assert.ok(actual.isContiguous(), `${what}: not materialized`);
  const a = new Int32Array(actual.data().buffer.slice(0)), e = new Int32Array(expected.data().buffer.slice(0));
  for (let i = 0; i < e.length; i++) if (a[i] !== e[i]) assert.fail(`${what}: element ${i} has bits ${a[i]}, the cpu reference ${e[i]}`);
}

const cases: { name: string; shape: number[]; perm: number[] }[] = [
  { name: 'square 2-D', shape: [8, 8], perm: [1, 0] },
  { name: 'edges in both directions', shape: [7, 13], perm: [1, 0] },
  { name: 'NCHW → NHWC (outer axis, merged spatial axes)', shape: [5, 12, 6, 7], perm: [0, 2, 3, 1] },
  { name: 'NHWC → NCHW', shape: [16, 14, 14, 33], perm: [0, 3, 1, 2] },
  { name: 'large enough to be split between threads (≥ 2^21 elements), odd edges', shape: [3, 701, 1001], perm: [0, 2, 1] },
  { name: "a conv GEMM result's gradient [N, C, L] → [N, L, C]", shape: [64, 64, 50], perm: [0, 2, 1] },
];

for (const threads of [1, 2]) {
  test(`transposed views copied contiguous equal the cpu reference bit for bit (${threads} thread(s))`, () => {
    const previous = wasmBackend.pool.threads;
    assert.equal(enableWasmThreads(threads), threads);
    try {
      for (const c of cases) {
        for (const dtype of ['float32', 'int32'] as const) {
          const [xc, xw] = pair(c.shape, dtype);
          const pool = wasmBackend.pool, run = pool.run;
          let split = false;
          pool.run = function (module, params, units, parallel) { split ||= units > 1 && parallel !== false; return run.call(this, module, params, units, parallel); };
          try {
            sameBits(t.contiguous(t.permute(xw, c.perm)), t.contiguous(t.permute(xc, c.perm)), `${c.name} ${dtype}`);
          } finally {
            pool.run = run;
          }
          const large = c.shape.reduce((a, b) => a * b, 1) >= 2 ** 21;
          assert.equal(split, threads === 2 && large, `${c.name}: split between threads`);
        }
      }
      // A transposed view with an offset (a slice) and a negative stride (flip) before it.
      const [xc, xw] = pair([9, 10, 11], 'float32');
      const view = (x: t.Tensor) => t.permute(t.flip(x.at([1, null], null, null), [0]), [0, 2, 1]);
      sameBits(t.contiguous(view(xw)), t.contiguous(view(xc)), 'sliced, flipped, transposed');
    } finally {
      enableWasmThreads(previous);
    }
  });
}

test('transposePlan takes [outer?, P, Q] copies with dst rows along src columns, and nothing else', () => {
  // [N, C, L] → [N, L, C]: dst [N, L, C] contiguous, src strides (C·L, 1, L).
  assert.deepEqual(transposePlan([2, 50, 64], [3200, 64, 1], [3200, 1, 50]), { outer: 2, p: 50, q: 64, dP: 64, sQ: 50, dOuter: 3200, sOuter: 3200 });
  assert.deepEqual(transposePlan([6, 5], [5, 1], [1, 6]), { outer: 1, p: 6, q: 5, dP: 5, sQ: 6, dOuter: 0, sOuter: 0 });
  assert.equal(transposePlan([6, 5], [5, 1], [5, 1]), undefined, 'a plain copy');
  assert.equal(transposePlan([6, 3], [3, 1], [1, 6]), undefined, 'a side shorter than a block');
  assert.equal(transposePlan([2, 3, 6, 5], [90, 30, 5, 1], [90, 1, 3, 18]), undefined, 'two outer axes that do not merge');
});
