// Views: slicing (negative indices, steps), transpose/permute/expand/squeeze/unsqueeze/flatten and
// reshape of contiguous data share the base's storage (zero-copy), writes through a view are seen
// by the base, reshape copies only when the layout requires it, and isContiguous reports layouts.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertThrowsWith } from '../helpers/close.js';

const grid = (): t.Tensor => t.arange(12, undefined, 1, { dtype: 'float64' }).reshape([3, 4]);

forEachBackend('views', () => {
  it('slicing with negative indices and steps is a zero-copy view with the right values', () => {
    const x = grid();
    const v = x.at([-2, null], [null, null, 2]); // x[-2:, ::2]
    assert.equal(v.storage, x.storage);
    assert.deepEqual(v.toArray(), [[4, 6], [8, 10]]);
    assert.deepEqual(v.strides, [4, 2]);
    assert.equal(v.offset, 4);
    assert.deepEqual(x.at(-1).toArray(), [8, 9, 10, 11]);
    assert.deepEqual(x.at(null, [1, -1]).toArray(), [[1, 2], [5, 6], [9, 10]]);
    assert.deepEqual(x.at([5, 9]).shape, [0, 4], 'out-of-range bounds clip like Python slices');
    assert.deepEqual(x.slice(1, -3, null, 2).toArray(), [[1, 3], [5, 7], [9, 11]]);
    assert.deepEqual(x.narrow(0, 1, 1).toArray(), [[4, 5, 6, 7]]);
  });

  it('transpose, permute, expand, squeeze, unsqueeze, flatten, unfold, split and detach share storage', () => {
    const x = grid();
    const views: [string, t.Tensor][] = [
      ['transpose', x.transpose(0, 1)], ['mT', x.mT], ['T', x.T], ['permute', x.reshape([3, 2, 2]).permute([2, 0, 1])],
      ['expand', x.at(0).unsqueeze(0).expand([5, 4])], ['unsqueeze', x.unsqueeze(1)], ['squeeze', x.unsqueeze(0).squeeze(0)],
      ['flatten', x.flatten()], ['reshape', x.reshape([2, 6])], ['view', x.view([4, 3])], ['unfold', x.at(0).unfold(0, 2, 1)],
      ['split', x.split(2, 1)[1]!], ['chunk', x.chunk(3)[2]!], ['detach', x.detach()],
    ];
    for (const [name, v] of views) assert.equal(v.storage, x.storage, `${name} should be a view`);
    assert.deepEqual(x.transpose(0, 1).strides, [1, 4]);
    assert.deepEqual(x.at(0).unsqueeze(0).expand([5, 4]).strides, [0, 1], 'expanded dims have stride 0');
    assert.deepEqual(x.at(0).unfold(0, 2, 1).toArray(), [[0, 1], [1, 2], [2, 3]]);
  });

  it('writes through a view are visible in the base (and in other views)', () => {
    const x = grid();
    x.at(1).fill_(-1);
    assert.deepEqual(x.at(1).toArray(), [-1, -1, -1, -1]);
    x.T.at(0).copy_(t.tensor([100, 200, 300], { dtype: 'float64' })); // column 0
    assert.deepEqual(x.at(null, 0).toArray(), [100, 200, 300]);
    const every2 = x.at(null, [null, null, 2]);
    every2.copy_(t.zeros([1, 2], { dtype: 'float64' })); // broadcast source
    assert.deepEqual(x.toArray(), [[0, 1, 0, 3], [0, -1, 0, -1], [0, 9, 0, 11]]);
    const alias = x.reshape([12]);
    alias.at([10, 12]).fill_(7);
    assert.deepEqual(x.at(2).toArray(), [0, 9, 7, 7]);
    // Casting on copy: float source into an int32 view truncates like a C cast.
    const ints = t.zeros([3], { dtype: 'int32' });
    ints.at([1, null]).copy_(t.tensor([2.7, -2.7]));
    assert.deepEqual(ints.toArray(), [0, 2, -2]);
  });

  it('in-place writes refuse overlapping (expanded) views and tensors that require grad, unless under noGrad', () => {
    assertThrowsWith(() => t.zeros([1, 3]).expand([2, 3]).fill_(1), 'fill_', 'expanded view');
    const w = t.zeros([2], { requiresGrad: true });
    assertThrowsWith(() => w.fill_(1), 'fill_', 'requires grad', 'noGrad');
    assertThrowsWith(() => w.copy_(t.ones([2])), 'copy_', 'requires grad');
    t.noGrad(() => w.copy_(t.ones([2])));
    assert.deepEqual(w.toArray(), [1, 1]);
    assertThrowsWith(() => t.zeros([2, 3]).copy_(t.ones([3, 3])), 'copy_', '[3, 3]', '[2, 3]');
  });

  it('reshape is a view when the layout allows and copies otherwise; view() refuses to copy', () => {
    const x = grid();
    assert.equal(x.reshape([4, 3]).storage, x.storage);
    const tr = x.T; // [4, 3] with strides [1, 4]
    const r = tr.reshape([12]);
    assert.notEqual(r.storage, x.storage, 'a transposed tensor cannot be flattened without a copy');
    assert.deepEqual(r.toArray(), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    // Splitting one dim of a transposed tensor keeps it a view (PyTorch's computeStride rule).
    assert.equal(tr.reshape([2, 2, 3]).storage, x.storage);
    assertThrowsWith(() => tr.view([12]), 'view', 'without copying', 'reshape()');
    assert.equal(x.at(null, [0, 2]).reshape([3, 2, 1]).storage, x.storage);
  });

  it('isContiguous and contiguous(): copies only when needed', () => {
    const x = grid();
    assert.equal(x.isContiguous(), true);
    assert.equal(x.T.isContiguous(), false);
    assert.equal(x.at(1).isContiguous(), true);
    assert.equal(x.at(null, [0, null, 2]).isContiguous(), false);
    assert.equal(x.at([1, 3]).isContiguous(), true);
    assert.equal(x.at(0).unsqueeze(0).expand([2, 4]).isContiguous(), false);
    assert.equal(x.unsqueeze(0).isContiguous(), true, 'size-1 dims do not break contiguity');
    assert.equal(x.contiguous(), x, 'contiguous() of a contiguous tensor is the tensor itself');
    const c = x.T.contiguous();
    assert.notEqual(c.storage, x.storage);
    assert.equal(c.isContiguous(), true);
    assert.deepEqual(c.toArray(), x.T.toArray());
    assert.notEqual(x.clone().storage, x.storage, 'clone always copies');
  });

  it('views of views compose offsets and strides', () => {
    const x = t.arange(24, undefined, 1, { dtype: 'float64' }).reshape([2, 3, 4]);
    const v = x.permute([2, 0, 1]).at([1, null, 2], null, -1); // [2, 2]: x[:, -1, 1::2].T
    assert.equal(v.storage, x.storage);
    assert.deepEqual(v.toArray(), [[9, 21], [11, 23]]);
    assert.deepEqual(v.contiguous().data(), Float64Array.from([9, 21, 11, 23]));
    assert.deepEqual(v.data(), Float64Array.from([9, 21, 11, 23]), 'data() reads strided views in row-major order');
  });

  it('views take part in autodiff: gradients land on the viewed elements', () => {
    const x = t.arange(6, undefined, 1, { dtype: 'float64' }).reshape([2, 3]).requiresGrad_();
    x.T.at([1, null]).mul(t.tensor([[1, 2], [3, 4]], { dtype: 'float64' })).sum().backward();
    assert.deepEqual(x.grad!.toArray(), [[0, 1, 3], [0, 2, 4]]);
  });
});
