import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { loadFixtures, checkCase, checkGradients, rand64, assertClose } from './helpers.js';

type PoolFn = (x: t.Tensor, k: t.SpatialArg, o: Record<string, unknown>) => t.Tensor;
const pools: Record<string, PoolFn> = {
  maxPool1d: t.maxPool1d, maxPool2d: t.maxPool2d, maxPool3d: t.maxPool3d,
  avgPool1d: t.avgPool1d, avgPool2d: t.avgPool2d, avgPool3d: t.avgPool3d,
};

for (const c of loadFixtures('pool')) {
  test(`matches PyTorch: ${c.name}`, () => {
    checkCase(c, (x, o) => {
      if (c.op.startsWith('adaptive')) {
        const f = c.op === 'adaptiveAvgPool1d' ? t.adaptiveAvgPool1d : t.adaptiveAvgPool2d;
        return f(x.x!, o.outputSize as number | number[]);
      }
      const { kernelSize, ...rest } = o;
      return pools[c.op]!(x.x!, kernelSize as t.SpatialArg, rest);
    });
  });
}

test('maxPool2d gives the whole gradient of a tied window to its first maximum (like PyTorch)', () => {
  const x = t.tensor([[[[1, 3], [3, 2]]]], { dtype: 'float64', requiresGrad: true });
  t.maxPool2d(x, 2).sum().backward();
  assert.deepEqual(x.grad!.toArray(), [[[[0, 1], [0, 0]]]]);
});

test('pooling: float64 gradcheck (vjp and jvp)', () => {
  // Distinct values keep the max away from ties, where the derivative does not exist.
  checkGradients((x) => t.maxPool2d(x, [2, 3], { stride: [1, 2], padding: 1, dilation: [2, 1] }), [rand64([1, 2, 5, 6], 1)]);
  checkGradients((x) => t.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false }), [rand64([1, 2, 5, 5], 2)]);
  checkGradients((x) => t.avgPool1d(x, 2), [rand64([2, 2, 5], 3)]);
  checkGradients((x) => t.adaptiveAvgPool2d(x, [3, 2]), [rand64([1, 2, 5, 4], 4)]);
  checkGradients((x) => t.maxPool3d(x, 2, { stride: 1 }), [rand64([1, 1, 3, 3, 3], 5)]);
});

test('adaptiveAvgPool2d: null keeps an axis; a divisible size is plain average pooling', () => {
  const x = rand64([2, 3, 6, 4], 6);
  assert.deepEqual(t.adaptiveAvgPool2d(x, [3, null]).shape, [2, 3, 3, 4]);
  assertClose(t.adaptiveAvgPool2d(x, [3, 2]), t.avgPool2d(x, 2), 'divisible adaptive = avgPool');
  assertClose(t.adaptiveAvgPool2d(x, 1).squeeze([2, 3]), x.mean([2, 3]), 'global average');
});

test('pooling accepts unbatched input and keeps float32', () => {
  const x = t.randn([3, 6, 6]);
  const y = t.maxPool2d(x, 2);
  assert.deepEqual([y.shape, y.dtype], [[3, 3, 3], 'float32']);
});

test('pooling errors say what was wrong', () => {
  assert.throws(() => t.maxPool2d(t.zeros([1, 1, 4, 4]), 2, { padding: 2 }), /maxPool2d: padding 2 on spatial axis 0 must be at most half the kernel size 2/);
  assert.throws(() => t.avgPool2d(t.zeros([1, 1, 2, 2]), 3), /avgPool2d: spatial axis 0 has size 2/);
  assert.throws(() => t.maxPool1d(t.zeros([4]), 2), /maxPool1d: input must be \[N, C, L\]/);
  assert.throws(() => t.adaptiveAvgPool2d(t.zeros([1, 1, 4, 4]), [0, 2]), /outputSize needs 2 positive integer/);
  assert.throws(() => t.maxPool2d(t.zeros([1, 1, 4, 4], { dtype: 'int32' }), 2), /needs a floating input/);
});
