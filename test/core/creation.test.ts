// Creating and reading tensors: tensor() from nested/typed arrays, filled tensors, ranges, eye,
// seeded random generators, toArray/data/item/toString.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';

forEachBackend('creation and reading', () => {
  it('tensor() infers shape and dtype; typed arrays keep theirs', () => {
    const x = t.tensor([[1, 2], [3, 4.5]]);
    assert.deepEqual(x.shape, [2, 2]);
    assert.equal(x.dtype, 'float32', 'JS numbers give the default float dtype');
    assert.equal(t.tensor([true, false]).dtype, 'bool');
    assert.equal(t.tensor(new Int32Array([1, 2])).dtype, 'int32');
    assert.deepEqual(t.tensor(new Float64Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] }).toArray(), [[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(t.tensor(7).shape, []);
    assert.deepEqual(t.tensor([]).shape, [0]);
    assert.equal(t.tensor([1, 2], { requiresGrad: true }).requiresGrad, true);
  });

  it('filled tensors, likes, ranges, linspace and eye', () => {
    assert.deepEqual(t.zeros([2]).toArray(), [0, 0]);
    assert.deepEqual(t.ones([1, 2], { dtype: 'int32' }).toArray(), [[1, 1]]);
    assert.equal(t.full([2], 7).dtype, 'int32');
    assert.equal(t.full([2], 0.5).dtype, 'float32');
    assert.equal(t.full([2], true).dtype, 'bool');
    const like = t.onesLike(t.zeros([2, 3], { dtype: 'float64' }));
    assert.equal(like.dtype, 'float64');
    assert.deepEqual(like.shape, [2, 3]);
    assert.deepEqual(t.zerosLike(like, { dtype: 'int32' }).dtype, 'int32');
    assert.deepEqual(t.fullLike(like, 3).at(0).toArray(), [3, 3, 3]);
    assert.deepEqual(t.arange(5).toArray(), [0, 1, 2, 3, 4]);
    assert.equal(t.arange(5).dtype, 'int32');
    assert.deepEqual(t.arange(1, 2, 0.25).toArray(), [1, 1.25, 1.5, 1.75]);
    assert.deepEqual(t.arange(5, 0, -2).toArray(), [5, 3, 1]);
    assert.deepEqual(t.linspace(0, 1, 3).toArray(), [0, 0.5, 1]);
    assert.deepEqual(t.linspace(2, 2, 1).toArray(), [2]);
    assert.deepEqual(t.eye(2, 3).toArray(), [[1, 0, 0], [0, 1, 0]]);
  });

  it('random tensors are reproducible with manualSeed and a Generator, and have the right ranges', () => {
    t.manualSeed(42);
    const a = t.randn([100]).toArray();
    t.manualSeed(42);
    assert.deepEqual(t.randn([100]).toArray(), a);
    const g1 = new t.Generator(5), g2 = new t.Generator(5);
    assert.deepEqual(t.rand([10], { generator: g1 }).toArray(), t.rand([10], { generator: g2 }).toArray());
    const u = t.rand([1000]).data();
    assert.ok(u.every((v) => v >= 0 && v < 1));
    const k = t.randint(-2, 3, [1000]).data();
    assert.ok(k.every((v) => v >= -2 && v < 3 && Number.isInteger(v)));
    assert.ok(new Set(k).size === 5, 'every value in range appears');
    const n = t.randn([4000], { dtype: 'float64' });
    assert.ok(Math.abs(n.mean().item()) < 0.1 && Math.abs(n.std().item() - 1) < 0.1);
    const w = t.uniform([500], -3, -2).data();
    assert.ok(w.every((v) => v >= -3 && v < -2));
  });

  it('toArray, data, item and toString', () => {
    const x = t.tensor([[1.5, 2], [3, 4]]);
    assert.ok(x.data() instanceof Float32Array);
    assert.deepEqual(Array.from(x.T.data()), [1.5, 3, 2, 4]);
    assert.equal(t.tensor([[2.5]]).item(), 2.5);
    assert.equal(x.toString(), 'tensor([[1.5000, 2.0000],\n        [3.0000, 4.0000]])');
    assert.equal(t.tensor([1, 2], { dtype: 'int32' }).toString(), 'tensor([1, 2], dtype=int32)');
    assert.equal(t.tensor([1, 2], { requiresGrad: true }).mul(2).toString(), 'tensor([2., 4.], gradFn=mul)');
    assert.match(t.arange(100).toString(), /\.\.\./, 'long tensors are abbreviated');
    assert.equal(t.tensor([1e-6, 1, 1e20]).toString(), 'tensor([1.0000e-06, 1.0000e+00, 1.0000e+20])', 'PyTorch-style scientific format');
    assertClose(t.tensor([0.1], { dtype: 'float64' }).data(), [0.1]);
  });
});
