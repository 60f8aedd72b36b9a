import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import type { PatchAttrs } from '../../../src/ops/primitives.js';

// The channels-last patch matrix of convNd's im2col path on wasm float32 (conv-algorithm.ts
// channelsLastPatches): outputs and gradients (input, weight, bias) against the same convolution
// in float64 on the cpu backend, which builds the plain patch matrix; and which layout each case
// takes, read from the im2col primitive's geometry.

let seed = 3;
function values(n: number): number[] {
  return Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32 - 0.5;
  });
}

/** The kernel geometries of every im2col bound while f runs. */
function im2colKernels(f: () => void): number[][] {
  const kernels: number[][] = [];
  const stop = t.addDispatchObserver({ onPrimitive: (prim, _inputs, attrs) => { if (prim === 'im2col') kernels.push([...(attrs as PatchAttrs).kernel]); } });
  try { f(); } finally { stop(); }
  return kernels;
}

function assertClose(actual: t.Tensor, expected: t.Tensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = Array.from(actual.data(), Number), e = Array.from(expected.data(), Number);
  const scale = Math.max(1, ...e.map(Math.abs));
  for (let i = 0; i < e.length; i++) {
    assert.ok(Math.abs(a[i]! - e[i]!) <= 2e-5 * scale, `${what}: element ${i} is ${a[i]}, expected ${e[i]} (scale ${scale})`);
  }
}

interface Case { name: string; x: number[]; w: number[]; opts: t.ConvOptions; channelsLast: boolean }
const cases: Case[] = [
  { name: 'the bench conv2 shape, smaller', x: [3, 32, 9, 9], w: [16, 32, 3, 3], opts: { padding: 1 }, channelsLast: true },
  { name: 'stride, dilation, padding', x: [2, 8, 11, 10], w: [5, 8, 3, 2], opts: { stride: [2, 3], dilation: [2, 1], padding: [2, 1] }, channelsLast: true },
  { name: "padding 'same' (extra on the right), 1x1 kernel rows", x: [2, 12, 7, 6], w: [6, 12, 1, 4], opts: { padding: 'same' }, channelsLast: true },
  { name: '1-D', x: [3, 9, 17], w: [4, 9, 5], opts: { stride: 2, padding: 2 }, channelsLast: true },
  { name: '3-D', x: [2, 8, 4, 5, 6], w: [3, 8, 2, 3, 2], opts: { stride: [1, 2, 1], padding: [1, 0, 1] }, channelsLast: true },
  { name: 'dilation along the last axis keeps the plain layout', x: [2, 8, 7, 7], w: [4, 8, 3, 3], opts: { padding: 1, dilation: [1, 2] }, channelsLast: false },
  { name: 'unbatched', x: [8, 6, 6], w: [3, 8, 3, 3], opts: { padding: 1 }, channelsLast: true },
  { name: 'groups keep the plain layout', x: [2, 8, 6, 6], w: [4, 4, 3, 3], opts: { padding: 1, groups: 2 }, channelsLast: false },
  { name: 'few channels keep the plain layout', x: [2, 4, 6, 6], w: [4, 4, 3, 3], opts: { padding: 1 }, channelsLast: false },
];

test('channels-last patches: outputs and gradients equal the plain float64 convolution', () => {
  const previous = t.setConvAlgorithm('im2col');
  try {
    for (const c of cases) {
      const conv = [t.conv1d, t.conv2d, t.conv3d][c.w.length - 3]!;
      const [xs, ws, bs] = [values(c.x.reduce((a, b) => a * b, 1)), values(c.w.reduce((a, b) => a * b, 1)), values(c.w[0]!)];
      const cots = values(1 << 16);
      const run = (backend: string, dtype: t.DType) => {
        const x = t.tensor(xs, { shape: c.x, dtype, backend, requiresGrad: true });
        const w = t.tensor(ws, { shape: c.w, dtype, backend, requiresGrad: true });
        const b = t.tensor(bs, { shape: [c.w[0]!], dtype, backend, requiresGrad: true });
        let y: t.Tensor | undefined;
        const kernels = im2colKernels(() => { y = conv(x, w, { ...c.opts, bias: b }); });
        const cot = t.tensor(cots.slice(0, y!.size), { shape: [...y!.shape], dtype, backend });
        y!.mul(cot).sum().backward();
        return { y: y!, dx: x.grad!, dw: w.grad!, db: b.grad!, kernels };
      };
      const wasm = run('wasm', 'float32');
      const ref = run('cpu', 'float64');
      // Channels-last: the last kernel axis spans its taps times every channel.
      const k = c.w.slice(2), channels = c.x[c.x.length - k.length - 1]!;
      const expected = c.channelsLast ? [...k.slice(0, -1), k[k.length - 1]! * channels] : k;
      assert.deepEqual(wasm.kernels, [expected], `${c.name}: patch layout`);
      assertClose(wasm.y, ref.y, `${c.name}: output`);
      assertClose(wasm.dx, ref.dx, `${c.name}: input gradient`);
      assertClose(wasm.dw, ref.dw, `${c.name}: weight gradient`);
      assertClose(wasm.db, ref.db, `${c.name}: bias gradient`);
    }
  } finally {
    t.setConvAlgorithm(previous);
  }
});

test('the cpu backend and float64 keep the plain patch layout', () => {
  const previous = t.setConvAlgorithm('im2col');
  try {
    for (const [backend, dtype] of [['cpu', 'float32'], ['wasm', 'float64']] as const) {
      const x = t.randn([2, 16, 5, 5], { backend, dtype }), w = t.randn([4, 16, 3, 3], { backend, dtype });
      assert.deepEqual(im2colKernels(() => t.conv2d(x, w, { padding: 1 })), [[3, 3]], `${backend} ${dtype}`);
    }
  } finally {
    t.setConvAlgorithm(previous);
  }
});
