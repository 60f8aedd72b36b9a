// sort, argsort, topk: PyTorch's order (NaN largest, stable ties), dtypes, gradients.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

forEachBackend('sorting', () => {
  it('sort is stable, puts NaN last ascending and first descending, returns int32 indices', () => {
    const x = t.tensor([2, NaN, 1, 2, -Infinity], { dtype: 'float64' });
    const up = x.sort();
    assert.deepEqual(up.values.toArray(), [-Infinity, 1, 2, 2, NaN]);
    assert.deepEqual(up.indices.toArray(), [4, 2, 0, 3, 1]);
    assert.equal(up.indices.dtype, 'int32');
    const down = x.sort(0, { descending: true });
    assert.deepEqual(down.indices.toArray(), [1, 0, 3, 2, 4]);
    assert.deepEqual(t.argsort(x).toArray(), [4, 2, 0, 3, 1]);
  });

  it('sorts along any axis, integer dtypes and 0-d tensors', () => {
    const x = t.tensor([[3, 1], [2, 4], [1, 0]], { dtype: 'int32' });
    const s = x.sort(0);
    assert.equal(s.values.dtype, 'int32');
    assert.deepEqual(s.values.toArray(), [[1, 0], [2, 1], [3, 4]]);
    assert.deepEqual(s.indices.toArray(), [[2, 2], [1, 0], [0, 1]]);
    const z = t.tensor(5).sort();
    assert.deepEqual(z.values.shape, []);
    assert.equal(z.indices.item(), 0);
  });

  it('topk: largest or smallest, sorted, first index first among ties, k = 0', () => {
    const x = t.tensor([[4, 9, 9, 1], [0, 0, 5, 0]]);
    const top = x.topk(2);
    assert.deepEqual(top.values.toArray(), [[9, 9], [5, 0]]);
    assert.deepEqual(top.indices.toArray(), [[1, 2], [2, 0]]);
    const low = x.topk(3, 1, { largest: false });
    assert.deepEqual(low.indices.toArray(), [[3, 0, 1], [0, 1, 3]]);
    assert.deepEqual(x.topk(1, 0).values.toArray(), [[4, 9, 9, 1]]);
    assert.deepEqual(x.topk(0).values.shape, [2, 0]);
  });

  it('gradients reach the elements that were selected', () => {
    const x = t.tensor([0.3, -1, 2, 0.7], { dtype: 'float64', requiresGrad: true });
    x.topk(2).values.mul(t.tensor([10, 1], { dtype: 'float64' })).sum().backward();
    assert.deepEqual(x.grad!.toArray(), [0, 0, 10, 1]);
  });
});
