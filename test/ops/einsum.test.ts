// einsum against explicit products: the attention contractions, matrix forms, diagonals, implicit
// output order, ellipsis placement, broadcasting of size-1 labels, several operands, 0-d operands.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose, assertThrowsWith } from '../helpers/close.js';

const g = new t.Generator(7);
const r = (shape: number[]): t.Tensor => t.randn(shape, { dtype: 'float64', generator: g });

forEachBackend('einsum', () => {
  it('attention contractions equal batched matmuls', () => {
    const q = r([2, 3, 4, 5]), k = r([2, 3, 6, 5]), v = r([2, 3, 6, 5]);
    const s = t.einsum('bhqd,bhkd->bhqk', q, k);
    assert.deepEqual(s.shape, [2, 3, 4, 6]);
    assertClose(s, q.matmul(k.mT));
    assertClose(t.einsum('bhqk,bhkd->bhqd', s, v), s.matmul(v));
  });

  it('matrix forms: ij,jk->ik; bij,bjk->bik; i,i->; ij->ji; ii->i; ii; i,j->ij', () => {
    const a = r([3, 4]), b = r([4, 2]), c = r([2, 3, 4]), d = r([2, 4, 5]), u = r([4]), w = r([4]);
    assertClose(t.einsum('ij,jk->ik', a, b), a.matmul(b));
    assertClose(t.einsum('bij,bjk->bik', c, d), c.bmm(d));
    assertClose(t.einsum('i,i->', u, w), u.dot(w));
    const tr = t.einsum('ij->ji', a);
    assertClose(tr, a.T);
    assert.equal(tr.storage, a.storage, 'a pure permutation stays a view');
    const sq = r([3, 3]);
    assertClose(t.einsum('ii->i', sq), [0, 1, 2].map((i) => (sq.toArray() as number[][])[i]![i]!));
    assertClose(t.einsum('ii', sq), [[0, 1, 2].reduce((s, i) => s + (sq.toArray() as number[][])[i]![i]!, 0)]);
    assertClose(t.einsum('i,j->ij', u, w), t.outer(u, w));
    assertClose(t.einsum('ii->i', t.tensor([[1, Infinity], [NaN, 2]])), [1, 2], {}, 'values off the diagonal do not leak in');
    assertClose(t.einsum('ij->', a), a.sum());
    assertClose(t.einsum('ij->j', a), a.sum(0));
  });

  it('implicit output: labels seen once, in alphabetical order (uppercase first)', () => {
    const a = r([2, 3]), b = r([3, 4]);
    assertClose(t.einsum('ij,jk', a, b), a.matmul(b));
    assertClose(t.einsum('ba', a), a.T, {}, "'ba' implicitly means 'ba->ab'");
    assert.deepEqual(t.einsum('aB', r([2, 3])).shape, [3, 2], "'B' sorts before 'a'");
  });

  it('ellipsis: broadcast dims, output placement, summed when absent from an explicit output', () => {
    const a = r([2, 1, 3, 4]), b = r([5, 4, 2]);
    assertClose(t.einsum('...ij,...jk->...ik', a, b), a.matmul(b));
    const x = r([2, 3, 4]);
    assertClose(t.einsum('b...->...b', x), x.permute([1, 2, 0]));
    assertClose(t.einsum('...i->...', x), x.sum(-1));
    assertClose(t.einsum('i...->i', x), x.sum([1, 2]));
  });

  it('three operands, size-1 broadcasting of a named label, and 0-d operands', () => {
    const a = r([2, 3]), b = r([3, 4]), c = r([4, 5]);
    assertClose(t.einsum('ij,jk,kl->il', a, b, c), a.matmul(b).matmul(c));
    const p = r([1, 3]), q = r([4, 3]);
    assertClose(t.einsum('ij,ij->ij', p, q), p.mul(q));
    const s = t.tensor(2.5, { dtype: 'float64' });
    assertClose(t.einsum(',i->i', s, b.at(0)), b.at(0).mul(2.5));
    assert.equal(t.einsum('ij,jk->ik', a.float(), b).dtype, 'float64', 'operands are promoted');
  });

  it('rejects malformed equations with the equation in the message', () => {
    assertThrowsWith(() => t.einsum('ij,jk->ik', r([2, 2])), 'einsum', '2 operand(s)', '1 tensor(s)');
    assertThrowsWith(() => t.einsum('ijk->i', r([2, 2])), 'einsum', "'ijk'", '[2, 2]');
    assertThrowsWith(() => t.einsum('ij->iz', r([2, 2])), 'einsum', "'z'");
    assertThrowsWith(() => t.einsum('ij->ii', r([2, 2])), 'einsum', 'repeat');
    assertThrowsWith(() => t.einsum('i1->i', r([2, 2])), 'einsum', "'1'");
    assertThrowsWith(() => t.einsum('ii->i', r([2, 3])), 'einsum', "'i'", 'size 2', '[2, 3]');
    assertThrowsWith(() => t.einsum('i..j->i', r([2, 3])), 'einsum', 'ellipsis');
    assertThrowsWith(() => t.einsum('i->i->i', r([2])), 'einsum', "'->'");
  });
});
