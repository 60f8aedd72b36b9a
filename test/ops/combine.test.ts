// cat stack split chunk pad flip repeat tril triu: semantics beyond the PyTorch fixtures
// (dtype handling, empty pieces, views vs copies, modes and their limits).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertThrowsWith } from '../helpers/close.js';

const m = (): t.Tensor => t.arange(6, undefined, 1, { dtype: 'float64' }).reshape([2, 3]);

forEachBackend('combine ops', () => {
  it('cat promotes dtypes, skips 1-D empty tensors and copies', () => {
    const out = t.cat([t.tensor([1, 2], { dtype: 'int32' }), t.tensor([0.5])]);
    assert.equal(out.dtype, 'float32');
    assert.deepEqual(out.toArray(), [1, 2, 0.5]);
    assert.deepEqual(t.cat([t.zeros([0]), m()], 1).shape, [2, 3]);
    assert.deepEqual(t.cat([m(), m().at([0, 0])]).shape, [2, 3], 'empty pieces of the right rank are fine');
    const single = t.cat([m()]);
    assert.notEqual(single.storage, m().storage);
    assert.deepEqual(t.cat([m(), m()], -1).toArray(), [[0, 1, 2, 0, 1, 2], [3, 4, 5, 3, 4, 5]]);
  });

  it('stack adds an axis anywhere, including negative positions', () => {
    const a = m(), b = m().mul(-1);
    assert.deepEqual(t.stack([a, b]).shape, [2, 2, 3]);
    assert.deepEqual(t.stack([a, b], 1).shape, [2, 2, 3]);
    assert.deepEqual(t.stack([a, b], -1).shape, [2, 3, 2]);
    assert.deepEqual(t.stack([a, b], -1).at(1, 2).toArray(), [5, -5]);
    assert.deepEqual(t.stack([t.tensor(1), t.tensor(2)]).toArray(), [1, 2]);
  });

  it('split and chunk return views; sizes as in PyTorch', () => {
    const x = t.arange(10);
    const parts = x.split(4);
    assert.deepEqual(parts.map((p) => p.toArray()), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    assert.ok(parts.every((p) => p.storage === x.storage));
    assert.deepEqual(x.split([0, 7, 3]).map((p) => p.shape[0]), [0, 7, 3]);
    assert.deepEqual(x.chunk(3).map((p) => p.shape[0]), [4, 4, 2]);
    assert.deepEqual(t.arange(6).chunk(4).map((p) => p.shape[0]), [2, 2, 2], 'chunk may return fewer pieces');
    assert.deepEqual(t.arange(3).chunk(5).map((p) => p.shape[0]), [1, 1, 1]);
    assert.deepEqual(m().chunk(2, -1).map((p) => p.shape), [[2, 2], [2, 1]]);
  });

  it('pad: pairs from the last axis backwards, constant values, cropping, modes', () => {
    const x = m();
    assert.deepEqual(t.pad(x, [1, 0]).toArray(), [[0, 0, 1, 2], [0, 3, 4, 5]]);
    assert.deepEqual(t.pad(x, [0, 0, 1, 0], 'constant', 9).toArray(), [[9, 9, 9], [0, 1, 2], [3, 4, 5]]);
    const cropped = t.pad(x, [-1, -1]);
    assert.deepEqual(cropped.toArray(), [[1], [4]]);
    assert.equal(cropped.storage, x.storage, 'a pure crop is a view');
    assert.deepEqual(t.pad(x, [-1, 1]).toArray(), [[1, 2, 0], [4, 5, 0]]);
    assert.deepEqual(t.pad(t.tensor([1, 2, 3]), [2, 2], 'reflect').toArray(), [3, 2, 1, 2, 3, 2, 1]);
    assert.deepEqual(t.pad(t.tensor([1, 2, 3]), [2, 2], 'replicate').toArray(), [1, 1, 1, 2, 3, 3, 3]);
    assert.deepEqual(t.pad(t.tensor([1, 2, 3]), [2, 2], 'circular').toArray(), [2, 3, 1, 2, 3, 1, 2]);
    const ints = t.pad(t.tensor([1, 2], { dtype: 'int32' }), [1, 1], 'constant', 7);
    assert.equal(ints.dtype, 'int32');
    assert.deepEqual(ints.toArray(), [7, 1, 2, 7]);
    assertThrowsWith(() => t.pad(x, [-2, -2]), 'pad', 'negative size');
    assertThrowsWith(() => t.pad(x, [1, 1, 1, 1, 1, 1]), 'pad', 'at most 2 axes');
    assertThrowsWith(() => t.pad(t.tensor([1, 2]), [3, 0], 'circular'), 'pad', 'circular');
  });

  it('flip copies in reverse order; repeat tiles and adds leading axes', () => {
    const x = m();
    const f = x.flip(-1);
    assert.notEqual(f.storage, x.storage);
    assert.deepEqual(f.toArray(), [[2, 1, 0], [5, 4, 3]]);
    assert.deepEqual(x.flip([]).toArray(), x.toArray());
    assert.deepEqual(t.tensor([1, 2]).repeat([2, 2]).toArray(), [[1, 2, 1, 2], [1, 2, 1, 2]]);
    assert.deepEqual(x.repeat([1, 0]).shape, [2, 0]);
    assert.deepEqual(x.repeat([2, 1, 1]).shape, [2, 2, 3]);
    assert.notEqual(x.repeat([1, 1]).storage, x.storage, 'repeat always copies');
    assert.equal(t.tensor(3).flip(0).item(), 3, 'a 0-d tensor flips to itself');
  });

  it('tril/triu on batches keep the dtype (bool masks stay bool)', () => {
    const ones = t.ones([2, 3, 3], { dtype: 'int32' });
    assert.deepEqual(ones.tril().at(1).toArray(), [[1, 0, 0], [1, 1, 0], [1, 1, 1]]);
    assert.equal(ones.triu().dtype, 'int32');
    const mask = t.ones([2, 4], { dtype: 'bool' }).triu(1);
    assert.equal(mask.dtype, 'bool');
    assert.deepEqual(mask.toArray(), [[false, true, true, true], [false, false, true, true]]);
    assert.deepEqual(t.ones([3, 2]).tril(-1).toArray(), [[0, 0], [1, 0], [1, 1]]);
  });
});
