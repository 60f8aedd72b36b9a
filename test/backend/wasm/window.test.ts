import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { bind } from '../../../src/ops/dispatch.js';
import { wasmBackend, WasmBackend } from '../../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';
import type { PatchAttrs } from '../../../src/ops/primitives.js';

// The generated window kernels (im2col, col2im, maxPoolIndices) against the cpu reference: the
// copies and indices bit for bit, and col2im too, since it adds in the reference's order.

let seed = 11;
function values(n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    // Few distinct values, so that pooling windows hold ties.
    out[i] = Math.round((seed / 2 ** 32) * 16 - 8) / 4;
  }
  return out;
}

function pair(shape: number[], dtype: t.DType = 'float32'): [t.Tensor, t.Tensor] {
  const data = values(shape.reduce((a, b) => a * b, 1));
  return [t.tensor(data, { shape, dtype, backend: 'cpu' }), t.tensor(data, { shape, dtype, backend: 'wasm' })];
}

function assertSame(actual: t.Tensor, expected: t.Tensor, what: string): void {
  assert.equal(actual.backend, 'wasm', `${what}: result left the wasm backend`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  assert.deepEqual(Array.from(actual.data()), Array.from(expected.data()), `${what}: values differ from the cpu backend`);
}

interface Case { name: string; shape: number[]; attrs: PatchAttrs }
const g = (kernel: number[], o: Partial<PatchAttrs> = {}): PatchAttrs => ({
  kernel, stride: o.stride ?? kernel.map(() => 1), dilation: o.dilation ?? kernel.map(() => 1),
  pads: o.pads ?? kernel.map((): [number, number] => [0, 0]), groups: o.groups ?? 1,
});
const cases: Case[] = [
  { name: '2-D 3x3 pad 1 (the CNN conv)', shape: [3, 4, 9, 9], attrs: g([3, 3], { pads: [[1, 1], [1, 1]] }) },
  // Large enough (> 2^15 elements) to be split between threads.
  { name: '2-D 3x3 pad 1, shared between threads', shape: [8, 8, 16, 16], attrs: g([3, 3], { pads: [[1, 1], [1, 1]] }) },
  { name: '2-D one input channel', shape: [2, 1, 7, 6], attrs: g([3, 3], { pads: [[1, 1], [1, 1]] }) },
  { name: '2-D stride 2, dilation 2, uneven pads, groups 2', shape: [2, 4, 11, 10], attrs: g([3, 2], { stride: [2, 1], dilation: [2, 2], pads: [[2, 0], [1, 3]], groups: 2 }) },
  { name: '2-D wide kernel (two v128 copies per run)', shape: [2, 3, 6, 13], attrs: g([2, 7], { pads: [[0, 1], [3, 3]] }) },
  { name: '2-D 1x1 kernel (runs of one tap)', shape: [2, 5, 4, 4], attrs: g([1, 1]) },
  // conv.ts's channels-last patches (W·C merged, 10 channels): runs of KW·C = 30 taps, more taps than
  // are unrolled, so the generic loops run (v128 adds in col2im), edges in the padding included.
  { name: '2-D channels-last geometry (long runs)', shape: [2, 1, 7, 60], attrs: g([3, 30], { stride: [1, 10], pads: [[1, 1], [10, 10]] }) },
  { name: '1-D', shape: [2, 3, 17], attrs: g([5], { stride: [3], pads: [[2, 2]] }) },
  { name: '3-D', shape: [2, 2, 5, 6, 4], attrs: g([2, 3, 2], { stride: [1, 2, 1], pads: [[1, 0], [1, 1], [0, 1]] }) },
];

for (const threads of [1, 2]) {
  test(`im2col and col2im agree with the cpu reference (${threads} thread(s))`, () => {
    const previous = wasmBackend.pool.threads;
    enableWasmThreads(threads);
    try {
      for (const c of cases) {
        const [xc, xw] = pair(c.shape);
        const before = wasmBackend.kernelCalls.get('im2col')?.reference ?? 0;
        const colsW = bind('im2col', [xw], c.attrs);
        assertSame(colsW, bind('im2col', [xc], c.attrs), `im2col ${c.name}`);
        assert.equal(wasmBackend.kernelCalls.get('im2col')?.reference ?? 0, before, `${c.name}: im2col ran the reference`);
        const [gc, gw] = pair([...colsW.shape]);
        const inputShape = [...c.shape];
        assertSame(bind('col2im', [gw], { ...c.attrs, inputShape }), bind('col2im', [gc], { ...c.attrs, inputShape }), `col2im ${c.name}`);
      }
    } finally {
      enableWasmThreads(previous);
    }
  });
}

test('im2col reads strided inputs and int32; col2im reads a strided patch matrix', () => {
  const [xc, xw] = pair([4, 3, 8, 9]);
  const attrs = g([3, 3], { pads: [[1, 1], [1, 1]], groups: 2 });
  const view = (x: t.Tensor) => x.permute([1, 0, 3, 2]).at(null, null, [1, null], [null, null, 2]);
  assertSame(bind('im2col', [view(xw)], attrs), bind('im2col', [view(xc)], attrs), 'permuted, sliced input');
  const ints = (x: t.Tensor) => x.mul(4).cast('int32');
  assertSame(bind('im2col', [ints(view(xw))], attrs), bind('im2col', [ints(view(xc))], attrs), 'int32 input');
  const shape = [2, 6, 5, 5];
  const attrs2 = g([3, 3], { pads: [[1, 1], [1, 1]] });
  const [gc, gw] = pair([1, 6 * 9, 2 * 25]);
  const cols = (x: t.Tensor) => x.mT; // [1, 50, 54], transposed
  assertSame(bind('col2im', [cols(gw)], { ...attrs2, inputShape: shape }), bind('col2im', [cols(gc)], { ...attrs2, inputShape: shape }), 'transposed patches');
});

test('im2col of float64 runs the reference on the heap (same values)', () => {
  const [xc, xw] = pair([2, 2, 5, 5], 'float64');
  const attrs = g([3, 3], { pads: [[1, 1], [1, 1]] });
  const w = bind('im2col', [xw], attrs);
  assert.equal(w.dtype, 'float64');
  assertSame(w, bind('im2col', [xc], attrs), 'float64');
});

for (const threads of [1, 2]) {
  test(`maxPoolIndices agrees with the cpu reference, ties and NaN included (${threads} thread(s))`, () => {
    const previous = wasmBackend.pool.threads;
    enableWasmThreads(threads);
    try {
      const pools: { shape: number[]; kernel: number[]; stride: number[]; dilation: number[] }[] = [
        { shape: [8, 8, 28, 28], kernel: [2, 2], stride: [2, 2], dilation: [1, 1] },
        // 2x2/2 rows of 7, 5 and 3 windows: four at a time, then the last four again or one by one.
        { shape: [3, 4, 14, 15], kernel: [2, 2], stride: [2, 2], dilation: [1, 1] },
        { shape: [2, 3, 10, 10], kernel: [2, 2], stride: [2, 2], dilation: [1, 1] },
        { shape: [2, 2, 6, 6], kernel: [2, 2], stride: [2, 2], dilation: [1, 1] },
        { shape: [2, 3, 9, 8], kernel: [3, 2], stride: [2, 3], dilation: [2, 1] },
        { shape: [2, 3, 10], kernel: [4], stride: [1], dilation: [2] },
        { shape: [1, 2, 5, 6, 7], kernel: [2, 3, 2], stride: [1, 2, 2], dilation: [1, 1, 2] },
      ];
      for (const p of pools) {
        const data = values(p.shape.reduce((a, b) => a * b, 1));
        for (let i = 0; i < data.length; i += 37) data[i] = NaN;
        const xc = t.tensor(data, { shape: p.shape, dtype: 'float32', backend: 'cpu' });
        const xw = t.tensor(data, { shape: p.shape, dtype: 'float32', backend: 'wasm' });
        const attrs = { kernel: p.kernel, stride: p.stride, dilation: p.dilation };
        const expected = bind('maxPoolIndices', [xc], attrs);
        assertSame(bind('maxPoolIndices', [xw], attrs), expected, `maxPool ${JSON.stringify(p)}`);
        // The reference itself: each index holds the first maximum of its window (a NaN if any).
        assert.equal(expected.dtype, 'int32');
      }
      const [xc, xw] = pair([2, 3, 8, 8]);
      const attrs = { kernel: [2, 2], stride: [2, 2], dilation: [1, 1] };
      assertSame(bind('maxPoolIndices', [xw.mT], attrs), bind('maxPoolIndices', [xc.mT], attrs), 'transposed input');
    } finally {
      enableWasmThreads(previous);
    }
  });
}

test('the window kernels and gather/scatterAdd run on an unshared memory that grows between calls', () => {
  const backend = new WasmBackend({ name: 'wasm-window-unshared', heap: { initialBytes: 2 ** 16, shared: false } });
  t.registerBackend(backend);
  assert.equal(backend.heap.shared, false);
  const attrs = g([3, 3], { pads: [[1, 1], [1, 1]] });
  // Each result outgrows the initial heap, so every kernel runs after a growth of the memory.
  const data = values(4 * 8 * 20 * 20);
  const xc = t.tensor(data, { shape: [4, 8, 20, 20], dtype: 'float32', backend: 'cpu' });
  const xu = t.tensor(data, { shape: [4, 8, 20, 20], dtype: 'float32', backend: 'wasm-window-unshared' });
  const colsU = bind('im2col', [xu], attrs);
  const colsC = bind('im2col', [xc], attrs);
  assert.deepEqual(Array.from(colsU.data()), Array.from(colsC.data()), 'im2col');
  const inputShape = [4, 8, 20, 20];
  assert.deepEqual(Array.from(bind('col2im', [colsU], { ...attrs, inputShape }).data()), Array.from(bind('col2im', [colsC], { ...attrs, inputShape }).data()), 'col2im');
  const pool = { kernel: [2, 2], stride: [2, 2], dilation: [1, 1] };
  const idxU = bind('maxPoolIndices', [xu], pool), idxC = bind('maxPoolIndices', [xc], pool);
  assert.deepEqual(Array.from(idxU.data()), Array.from(idxC.data()), 'maxPoolIndices');
  const flat = (x: t.Tensor) => x.reshape([4, 8, 400]);
  const gatheredU = bind('gather', [flat(xu), idxU.reshape([4, 8, 100])], { axis: 2 });
  assert.deepEqual(Array.from(gatheredU.data()), Array.from(bind('gather', [flat(xc), idxC.reshape([4, 8, 100])], { axis: 2 }).data()), 'gather');
  assert.equal(backend.kernelCalls.get('im2col')?.wasm, 1);
});
