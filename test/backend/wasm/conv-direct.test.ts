import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { bind } from '../../../src/ops/dispatch.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';
import { directConvolutionFits } from '../../../src/backend/wasm/conv-direct.js';
import type { PatchAttrs } from '../../../src/ops/primitives.js';
import { assertNearReference, cpuWasmPair, seededUniform } from '../../helpers/cpu-wasm-pair.js';

// The generated direct convolution kernels (forward and weight gradient) against the cpu reference
// kernels of the same primitives, on one and two threads, with work splits over output rows (few
// channel blocks) and over the batch (few output channels: partial weight gradients added up).
// float32 sums in another order than the reference's double ones: compared within a tolerance.

const values = seededUniform(5);
/** The same float32 values on the cpu and wasm backends. */
const pair = cpuWasmPair(values);
const assertNear = assertNearReference;

const g = (kernel: number[], o: Partial<PatchAttrs> = {}): PatchAttrs => ({
  kernel, stride: o.stride ?? kernel.map(() => 1), dilation: o.dilation ?? kernel.map(() => 1),
  pads: o.pads ?? kernel.map((): [number, number] => [0, 0]), groups: o.groups ?? 1,
});

interface Case { name: string; x: number[]; cOut: number; attrs: PatchAttrs; bias: boolean }
const cases: Case[] = [
  { name: 'the CNN conv1 (1→32 3x3 pad 1), large enough to share', x: [16, 1, 28, 28], cOut: 32, attrs: g([3, 3], { pads: [[1, 1], [1, 1]] }), bias: true },
  { name: 'one output channel: row chunks, batch chunks with partial dW', x: [6, 1, 40, 40], cOut: 1, attrs: g([3, 3], { pads: [[1, 1], [1, 1]] }), bias: true },
  { name: 'batch 1, 2 output channels, stride 2, dilation 2', x: [1, 3, 37, 41], cOut: 2, attrs: g([3, 3], { stride: [2, 2], dilation: [2, 2], pads: [[2, 1], [0, 3]] }), bias: false },
  { name: 'depthwise, channel blocks of one', x: [4, 8, 19, 23], cOut: 8, attrs: g([3, 5], { pads: [[1, 1], [2, 2]], groups: 8 }), bias: true },
  { name: 'groups 2, 6 → 12 channels (blocks of 2), stride [1, 3]', x: [3, 6, 13, 29], cOut: 12, attrs: g([2, 3], { stride: [1, 3], pads: [[0, 1], [1, 1]], groups: 2 }), bias: true },
  { name: '1-D, 16 taps', x: [5, 4, 300], cOut: 4, attrs: g([16], { stride: [2], pads: [[7, 8]] }), bias: true },
];

for (const threads of [1, 2]) {
  test(`convDirect and convWeightGrad agree with the cpu reference (${threads} thread(s))`, () => {
    const previous = wasmBackend.pool.threads;
    enableWasmThreads(threads);
    try {
      for (const c of cases) {
        assert.ok(directConvolutionFits(c.attrs), `${c.name}: the kernels serve this geometry`);
        const [xc, xw] = pair(c.x);
        const [wc, ww] = pair([c.cOut, c.x[1]! / c.attrs.groups, ...c.attrs.kernel]);
        const [bc, bw] = pair([c.cOut]);
        const calls = () => ({ ...(wasmBackend.kernelCalls.get('convDirect') ?? { wasm: 0, reference: 0 }) });
        const before = calls();
        const yw = bind('convDirect', c.bias ? [xw, ww, bw] : [xw, ww], c.attrs);
        const yc = bind('convDirect', c.bias ? [xc, wc, bc] : [xc, wc], c.attrs);
        assert.deepEqual(calls(), { wasm: before.wasm + 1, reference: before.reference }, `${c.name}: the generated kernel ran`);
        assertNear(yw, yc, `forward ${c.name}`);
        const [gc, gw] = pair([...yc.shape]);
        const dwBefore = wasmBackend.kernelCalls.get('convWeightGrad')?.wasm ?? 0;
        const dw = bind('convWeightGrad', [xw, gw], c.attrs);
        assert.equal(wasmBackend.kernelCalls.get('convWeightGrad')!.wasm, dwBefore + 1, `${c.name}: the generated weight-gradient kernel ran`);
        assertNear(dw, bind('convWeightGrad', [xc, gc], c.attrs), `weight gradient ${c.name}`);
      }
    } finally {
      enableWasmThreads(previous);
    }
  });
}

test('float64, 3-D and more than 64 taps run the reference kernel on the heap', () => {
  const before = wasmBackend.kernelCalls.get('convDirect')?.reference ?? 0;
  const x64 = t.zeros([1, 2, 5, 5], { dtype: 'float64', backend: 'wasm' });
  bind('convDirect', [x64, t.zeros([3, 2, 3, 3], { dtype: 'float64', backend: 'wasm' })], g([3, 3]));
  bind('convDirect', [t.zeros([1, 1, 3, 3, 3], { backend: 'wasm' }), t.zeros([1, 1, 2, 2, 2], { backend: 'wasm' })], g([2, 2, 2]));
  bind('convDirect', [t.zeros([1, 1, 9, 9], { backend: 'wasm' }), t.zeros([1, 1, 9, 8], { backend: 'wasm' })], g([9, 8]));
  assert.equal(wasmBackend.kernelCalls.get('convDirect')!.reference, before + 3);
  assert.equal(directConvolutionFits(g([9, 8])), false);
});

test('NaN and infinity in the input propagate like the reference (no lane reads past the data)', () => {
  const [xc, xw] = pair([2, 1, 6, 7]);
  const data = xc.data() as Float32Array;
  data[3] = NaN; data[50] = Infinity;
  const xn = t.tensor(data, { shape: [2, 1, 6, 7], dtype: 'float32', backend: 'wasm' });
  const xr = t.tensor(data, { shape: [2, 1, 6, 7], dtype: 'float32', backend: 'cpu' });
  const [wc, ww] = pair([3, 1, 3, 3]);
  const attrs = g([3, 3], { pads: [[1, 1], [1, 1]] });
  const y = bind('convDirect', [xn, ww], attrs).data(), yr = bind('convDirect', [xr, wc], attrs).data();
  for (let i = 0; i < yr.length; i++) assert.equal(Number.isNaN(y[i]), Number.isNaN(yr[i]), `output ${i}: NaN where the reference has ${yr[i]}`);
  const [gc, gw] = pair([2, 3, 6, 7]);
  const dw = bind('convWeightGrad', [xn, gw], attrs).data(), dwr = bind('convWeightGrad', [xr, gc], attrs).data();
  for (let i = 0; i < dwr.length; i++) assert.equal(Number.isNaN(dw[i]), Number.isNaN(dwr[i]), `dW ${i}`);
  void xw;
  // Stride 2 over 12 columns: no window reaches column 11, so an infinity there changes nothing.
  const [wide] = pair([1, 1, 4, 12]);
  const wd = wide.data() as Float32Array;
  wd[11] = Infinity; wd[23] = -Infinity;
  const xi = t.tensor(wd, { shape: [1, 1, 4, 12], dtype: 'float32', backend: 'wasm' });
  const s2 = g([3, 3], { stride: [1, 2] });
  const [, g2] = pair([1, 2, 2, 5]);
  const dwi = bind('convWeightGrad', [xi, g2], s2).data();
  assert.ok(Array.from(dwi).every(Number.isFinite), `weight gradient ${Array.from(dwi)} should be finite`);
  assert.ok(Array.from(bind('convDirect', [xi, bind('convWeightGrad', [xi, g2], s2)], s2).data()).every(Number.isFinite));
});
