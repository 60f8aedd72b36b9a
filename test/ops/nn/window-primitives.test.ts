// The window primitives (im2col, col2im, maxPoolIndices) that convolution and max pooling run on,
// on every backend: adjointness and finite differences in float64, and float32 results (the wasm
// kernels) against a float64 cpu computation through the same ops.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { bind } from '../../../src/ops/dispatch.js';
import type { PatchAttrs } from '../../../src/ops/primitives.js';
import { forEachBackend, runsFloat64Checks } from '../../helpers/backends.js';
import { checkGradients, rand64 } from './helpers.js';

const geometries: { name: string; shape: number[]; attrs: PatchAttrs }[] = [
  { name: '1-D stride 2, uneven pads', shape: [2, 3, 9], attrs: { kernel: [3], stride: [2], dilation: [1], pads: [[2, 1]], groups: 1 } },
  { name: '2-D dilation, groups', shape: [2, 4, 6, 5], attrs: { kernel: [2, 3], stride: [1, 2], dilation: [2, 1], pads: [[1, 1], [0, 2]], groups: 2 } },
  { name: '3-D', shape: [1, 2, 4, 3, 5], attrs: { kernel: [2, 2, 3], stride: [2, 1, 1], dilation: [1, 1, 2], pads: [[0, 1], [1, 0], [1, 1]], groups: 1 } },
];

/** Float32 values of a float64 tensor on the current backend. */
const f32 = (x: t.Tensor): t.Tensor => t.tensor(x.data(), { shape: [...x.shape], dtype: 'float32' });
const onCpu = (x: t.Tensor): t.Tensor => t.tensor(x.data(), { shape: [...x.shape], dtype: x.dtype, backend: 'cpu' });

function assertNear(actual: t.Tensor, expected: t.Tensor, tol: number, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = actual.data(), e = expected.data();
  let scale = 1;
  for (let i = 0; i < e.length; i++) scale = Math.max(scale, Math.abs(Number(e[i])));
  for (let i = 0; i < e.length; i++) {
    assert.ok(Math.abs(Number(a[i]) - Number(e[i])) <= tol * scale, `${what}[${i}]: ${a[i]} vs ${e[i]}`);
  }
}

forEachBackend('window primitives', (backend) => {
  it('im2col and col2im are adjoint: <im2col(x), c> = <x, col2im(c)> (float64)', () => {
    for (const g of geometries) {
      const x = rand64(g.shape, 1);
      const cols = bind('im2col', [x], g.attrs);
      const c = rand64([...cols.shape], 2);
      const col2im = bind('col2im', [c], { ...g.attrs, inputShape: g.shape });
      const lhs = cols.mul(c).sum().item(), rhs = x.mul(col2im).sum().item();
      assert.ok(Math.abs(lhs - rhs) < 1e-10 * Math.max(1, Math.abs(lhs)), `${g.name}: ${lhs} vs ${rhs}`);
    }
  });

  // float64 only: see runsFloat64Checks (helpers/backends.ts).
  if (runsFloat64Checks(backend)) it('im2col and col2im: vjp and jvp against finite differences (float64)', () => {
    const small = [geometries[0]!, { ...geometries[1]!, shape: [1, 4, 4, 3] }];
    for (const g of small) {
      checkGradients((x) => bind('im2col', [x], g.attrs).square(), [rand64(g.shape, 3)]);
      const cols = bind('im2col', [rand64(g.shape, 4)], g.attrs);
      checkGradients((c) => bind('col2im', [c], { ...g.attrs, inputShape: g.shape }).square(), [rand64([...cols.shape], 5)]);
    }
  });

  it('conv2d and maxPool2d in float32 match the float64 cpu computation, gradients included', () => {
    // The CNN's layer pattern (conv 3x3 pad 1 → ReLU → 2x2 max pool), plus a strided grouped one.
    for (const [shape, wShape, o, pool] of [
      [[4, 3, 12, 12], [8, 3, 3, 3], { padding: 1 }, { k: 2, o: {} }],
      [[2, 4, 11, 9], [6, 2, 3, 2], { padding: [1, 2], stride: [2, 1], dilation: [1, 2], groups: 2 }, { k: 3, o: { stride: 2, padding: 1, ceilMode: true } }],
    ] as const) {
      const run = (x: t.Tensor, w: t.Tensor, b: t.Tensor) => {
        const h = t.maxPool2d(t.relu(t.conv2d(x, w, { ...o, bias: b })), pool.k, pool.o);
        return h.mul(h).sum();
      };
      const x64 = rand64([...shape], 6, true), w64 = rand64([...wShape], 7, true), b64 = rand64([wShape[0]], 8, true);
      const ref = [x64, w64, b64].map((v) => onCpu(v).requiresGrad_());
      const lossRef = run(ref[0]!, ref[1]!, ref[2]!);
      lossRef.backward();
      const got = [x64, w64, b64].map((v) => f32(v).requiresGrad_());
      const loss = run(got[0]!, got[1]!, got[2]!);
      loss.backward();
      assertNear(loss, lossRef, 1e-5, 'loss');
      ['dx', 'dw', 'db'].forEach((name, i) => assertNear(got[i]!.grad!, ref[i]!.grad!, 1e-4, name));
    }
  });

  it('maxPoolIndices: the first maximum of each window wins ties, a NaN wins over numbers', () => {
    const x = t.tensor([[[[1, 3, 3, 0], [2, 3, NaN, 5], [7, 7, 1, 1], [7, 0, 1, 1]]]], { dtype: 'float32' });
    const idx = bind('maxPoolIndices', [x], { kernel: [2, 2], stride: [2, 2], dilation: [1, 1] });
    assert.equal(idx.dtype, 'int32');
    assert.deepEqual(Array.from(idx.data()), [1, 6, 8, 10]);
    const pooled = t.maxPool2d(x, 2);
    assert.deepEqual(Array.from(pooled.data()), [3, NaN, 7, 1]);
    // The gradient goes to the first maximum only.
    const xg = t.tensor([[[[1, 3, 3, 0], [2, 3, 0, 5], [7, 7, 1, 1], [7, 0, 1, 1]]]], { dtype: 'float32', requiresGrad: true });
    t.maxPool2d(xg, 2).sum().backward();
    assert.deepEqual(Array.from(xg.grad!.data()), [0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0]);
  });

  it('gather and scatterAdd (max pooling\'s value and gradient path) report an index out of range', () => {
    const x = t.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float32' });
    const bad = t.tensor([[0, 3], [1, 2]], { dtype: 'int32' });
    // At the call on the CPU backends; by the first read of the result on webgpu (the GPU checks).
    assert.throws(() => bind('gather', [x, bad], { axis: 1 }).data(), /gather: index 3 is out of bounds for axis 1 of size 3/);
    assert.throws(() => bind('scatterAdd', [x, bad, t.ones([2, 2])], { axis: 1 }).data(), /scatterAdd: index 3 is out of bounds/);
    const good = t.tensor([[2, 0], [1, 1]], { dtype: 'int32' });
    assert.deepEqual(Array.from(bind('gather', [x, good], { axis: 1 }).data()), [3, 1, 5, 5]);
    assert.deepEqual(Array.from(bind('scatterAdd', [x, good, t.ones([2, 2])], { axis: 1 }).data()), [2, 2, 4, 4, 7, 6]);
    // A strided (transposed) index and source.
    const it2 = t.tensor([[2, 1], [0, 1]], { dtype: 'int32' }).mT;
    assert.deepEqual(Array.from(bind('gather', [x, it2], { axis: 1 }).data()), [3, 1, 5, 5]);
  });

  it('the window primitives reject inconsistent attributes with the values', () => {
    const x = t.zeros([1, 3, 5, 5]);
    assert.throws(() => bind('im2col', [x], { kernel: [3, 3], stride: [1, 1], dilation: [1, 1], pads: [[0, 0], [0, 0]], groups: 2 }),
      /im2col: groups=2 must be a positive integer dividing the 3 channels of \[1, 3, 5, 5\]/);
    assert.throws(() => bind('im2col', [x], { kernel: [3], stride: [1], dilation: [1], pads: [[0, 0]], groups: 1 }), /input must be \[N, C, \*spatial\] with 1 spatial axes/);
    assert.throws(() => bind('maxPoolIndices', [x], { kernel: [6, 2], stride: [1, 1], dilation: [1, 1] }), /smaller than the window's span 6/);
    assert.throws(() => bind('col2im', [t.zeros([1, 9, 26])], { kernel: [3, 3], stride: [1, 1], dilation: [1, 1], pads: [[0, 0], [0, 0]], groups: 1, inputShape: [1, 3, 5, 5] }),
      /col2im: patches of shape \[1, 9, 26\] should be \[1, 9, 27\] for an input of shape \[1, 3, 5, 5\]/);
  });
});
