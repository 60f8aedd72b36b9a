// Kernels accept strided inputs: every primitive gives the same result on a non-contiguous view
// (transposed, stepped, offset, broadcast) as on a contiguous copy of it. This is the contract a
// backend must meet (DESIGN.md "Kernels accept strided inputs"), checked for each backend under test.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';

const g = new t.Generator(99);

/** Non-contiguous [3, 4] float64 views of different kinds, with positive values away from 0. */
function views(): [string, Tensor][] {
  const base = t.rand([5, 8, 6], { dtype: 'float64', generator: g }).add(0.5);
  return [
    ['transposed', base.at(1, [0, 4], [0, 3]).T],
    ['stepped', base.at(2, [1, 7, 2], [1, 5])],
    ['permuted offset', base.permute([2, 1, 0]).at([2, 5], [3, 7], 4)],
    ['broadcast', base.at(0, 0, [0, 4]).unsqueeze(0).expand([3, 4])],
    ['unfolded', base.at(3, 2).unfold(0, 4, 1).at([0, 3])],
  ];
}

const unary: [string, (x: Tensor) => Tensor][] = [
  ['exp', (x) => x.exp()], ['log', (x) => x.log()], ['sqrt', (x) => x.sqrt()], ['tanh', (x) => x.tanh()], ['sigmoid', (x) => x.sigmoid()],
  ['erf', (x) => t.erf(x)], ['neg', (x) => x.neg()], ['abs', (x) => x.sub(1).abs()], ['relu', (x) => x.sub(1).relu()], ['round', (x) => x.mul(3).round()],
  ['floor', (x) => x.mul(3).floor()], ['sign', (x) => x.sub(1).sign()], ['isnan', (x) => x.isnan()], ['cast int32', (x) => x.mul(10).int()],
  ['cast float32', (x) => x.float()], ['sum axis 0', (x) => x.sum(0)], ['sum all', (x) => x.sum()], ['prod axis 1', (x) => x.prod(1)],
  ['max axis 1', (x) => x.max(1, true)], ['min all', (x) => x.min()], ['argmax axis 0', (x) => x.argmax(0)], ['argmin axis 1', (x) => x.argmin(1)],
  ['cumsum axis 1', (x) => x.cumsum(1)], ['argsort axis 0', (x) => t.argsort(x, 0)], ['flip', (x) => x.flip([0, 1])], ['pad', (x) => t.pad(x, [1, 2, 0, 1], 'constant', 7)],
  ['cat with itself', (x) => t.cat([x, x.mul(2)], 1)], ['gather', (x) => x.gather(1, t.tensor([[3, 0], [1, 1], [2, 3]], { dtype: 'int32' }))],
  ['scatterAdd into view', (x) => x.scatterAdd(0, t.tensor([[2, 0, 1, 1]], { dtype: 'int32' }), t.ones([1, 4], { dtype: 'float64' }))],
  ['matmul (view on the left)', (x) => x.matmul(t.arange(8, undefined, 1, { dtype: 'float64' }).reshape([4, 2]))],
  ['matmul (view on the right)', (x) => t.arange(6, undefined, 1, { dtype: 'float64' }).reshape([2, 3]).matmul(x)],
  ['reshape (copies when needed)', (x) => x.reshape([2, 6])], ['contiguous', (x) => x.contiguous()],
];

const binary: [string, (a: Tensor, b: Tensor) => Tensor][] = [
  ['add', (a, b) => a.add(b)], ['div', (a, b) => a.div(b)], ['pow', (a, b) => a.pow(b)], ['maximum', (a, b) => a.maximum(b)],
  ['lt', (a, b) => a.lt(b)], ['where', (a, b) => t.where(a.gt(b), a, b)], ['matmul a·bᵀ', (a, b) => a.matmul(b.T)],
];

forEachBackend('strided inputs', () => {
  it('the views are [3, 4] and not contiguous', () => {
    for (const [kind, v] of views()) {
      assert.deepEqual(v.shape, [3, 4], kind);
      assert.equal(v.isContiguous(), false, kind);
    }
  });
  for (const [name, f] of unary) {
    it(name, () => {
      for (const [kind, v] of views()) assertClose(f(v), f(v.contiguous()), { rtol: 1e-12, atol: 1e-12 }, `${name} of a ${kind} view`);
    });
  }
  for (const [name, f] of binary) {
    it(`${name} of two differently strided views`, () => {
      const vs = views();
      for (let i = 0; i < vs.length; i++) {
        const [ka, a] = vs[i]!, [kb, b] = vs[(i + 1) % vs.length]!;
        assertClose(f(a, b), f(a.contiguous(), b.contiguous()), { rtol: 1e-12, atol: 1e-12 }, `${name}(${ka}, ${kb})`);
      }
    });
  }
});
