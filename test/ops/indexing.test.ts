// gather, scatterAdd, indexSelect, maskedFill, oneHot: shapes, dtypes and gradients beyond the
// PyTorch fixtures.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose, assertThrowsWith } from '../helpers/close.js';

const i32 = (a: t.NestedArray): t.Tensor => t.tensor(a, { dtype: 'int32' });

forEachBackend('indexing ops', () => {
  it('gather takes any integer index dtype and an index smaller than the input', () => {
    const x = t.arange(12, undefined, 1, { dtype: 'float64' }).reshape([3, 4]);
    assert.deepEqual(x.gather(0, i32([[2, 0]])).toArray(), [[8, 1]]);
    assert.deepEqual(x.gather(1, t.tensor([[3], [0]], { dtype: 'uint8' })).toArray(), [[3], [4]]);
    assert.deepEqual(x.T.gather(1, i32([[2], [1]])).toArray(), [[8], [5]], 'strided inputs');
  });

  it('scatterAdd accumulates repeated indices and uses only the index-shaped part of src', () => {
    const base = t.zeros([2, 3], { dtype: 'float64' });
    const src = t.arange(8, undefined, 1, { dtype: 'float64' }).reshape([2, 4]).add(1);
    const out = base.scatterAdd(1, i32([[0, 0, 2], [1, 1, 1]]), src);
    assert.deepEqual(out.toArray(), [[3, 0, 3], [0, 18, 0]]);
    assert.deepEqual(base.toArray(), [[0, 0, 0], [0, 0, 0]], 'out of place');
  });

  it('indexSelect repeats and reorders; gradients add up over repeats', () => {
    const x = t.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64', requiresGrad: true });
    const y = x.indexSelect(1, i32([2, 2, 0]));
    assert.deepEqual(y.toArray(), [[3, 3, 1], [6, 6, 4]]);
    y.sum().backward();
    assert.deepEqual(x.grad!.toArray(), [[1, 0, 2], [1, 0, 2]]);
    assert.deepEqual(x.indexSelect(0, i32(1)).toArray(), [[4, 5, 6]], 'a 0-d index selects one entry');
  });

  it('maskedFill broadcasts the mask, converts the value, and differentiates w.r.t. a 0-d value', () => {
    const x = t.tensor([[1, 2], [3, 4]], { dtype: 'int32' });
    assert.deepEqual(x.maskedFill(t.tensor([true, false]), 2.7).toArray(), [[2, 2], [2, 4]]);
    const v = t.tensor(0.5, { dtype: 'float64', requiresGrad: true });
    const y = t.tensor([[1, 2], [3, 4]], { dtype: 'float64', requiresGrad: true });
    y.maskedFill(t.tensor([[true], [false]]), v).mul(t.tensor([[1, 2], [3, 4]], { dtype: 'float64' })).sum().backward();
    assertClose(v.grad!, [3]);
    assert.deepEqual(y.grad!.toArray(), [[0, 0], [3, 4]]);
    assertThrowsWith(() => y.maskedFill(t.tensor([true, false]), t.ones([2])), 'maskedFill', '0-d');
  });

  it('oneHot infers the class count and returns int32', () => {
    const h = t.oneHot(i32([[1], [3]]));
    assert.equal(h.dtype, 'int32');
    assert.deepEqual(h.shape, [2, 1, 4]);
    assert.deepEqual(h.toArray(), [[[0, 1, 0, 0]], [[0, 0, 0, 1]]]);
    assert.deepEqual(t.oneHot(i32([0]), 2).toArray(), [[1, 0]]);
    assertThrowsWith(() => t.oneHot(i32([])), 'oneHot', 'empty');
  });
});
