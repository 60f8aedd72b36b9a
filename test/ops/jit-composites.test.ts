// The shape/indexing composites trace into primitives: under jit they give the eager results, and
// new index values do not retrace (the ops never read their indices, which would add guards).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';

const i32 = (a: t.NestedArray): Tensor => t.tensor(a, { dtype: 'int32' });

function composite(x: Tensor, idx: Tensor): Tensor[] {
  return [
    t.einsum('ij,kj->ik', x, x), t.pad(x, [2, 1], 'reflect'), t.pad(x, [1, -1, 0, 1], 'constant', 3), x.sort(1).values,
    x.topk(2).indices, x.gather(1, idx), x.indexSelect(1, idx.at(0)), t.oneHot(idx, 4), x.tril(), t.cat([x, x.flip(0)], 1),
    t.stack(x.split(2, 1).map((p) => p.sum(1))), x.maskedFill(x.gt(0), -1), x.repeat([1, 2]), x.scatterAdd(1, idx, x.at(null, [0, 2])),
  ];
}

forEachBackend('composites under jit', () => {
  it('match eager results and do not retrace for new index values', () => {
    const f = t.jit(composite);
    const g = new t.Generator(3);
    const cases: [Tensor, Tensor][] = [
      [t.randn([3, 4], { generator: g }), i32([[0, 3], [1, 1], [2, 0]])],
      [t.randn([3, 4], { generator: g }), i32([[3, 3], [0, 2], [1, 0]])],
      [t.randn([3, 4], { generator: g }), i32([[2, 1], [3, 0], [0, 0]])],
    ];
    for (const [x, idx] of cases) {
      const compiled = f(x, idx);
      const eager = composite(x, idx);
      compiled.forEach((c, k) => assertClose(c, eager[k]!, { rtol: 1e-6, atol: 1e-6 }, `output ${k}`));
    }
    assert.equal(f.stats().traces, 1, `retraced: ${f.stats().traceReasons.join('; ')}`);
  });
});
