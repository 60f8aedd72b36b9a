// pow at the edges where JavaScript's ** and C's pow (which PyTorch follows) disagree: 1^NaN and
// (±1)^(±∞) are 1 in PyTorch (torch.pow(torch.tensor([1., -1.]), inf) == [1., 1.]), NaN in
// JavaScript. Checked on every backend, eager and jitted (the generated kernels).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

forEachBackend('pow edges (C semantics)', () => {
  it('1^NaN, (±1)^(±inf) and x^0 are 1; a negative base to a non-integer power is NaN', () => {
    const x = [1, -1, 1, -1, 1, -1, Number.NaN, -2, 0, -0];
    const y = [Number.NaN, Infinity, -Infinity, -Infinity, Infinity, 0, 0, 0.5, -1, -1];
    const want = [1, 1, 1, 1, 1, 1, 1, Number.NaN, Infinity, -Infinity];
    for (const dtype of ['float32', 'float64'] as const) {
      const run = (a: t.Tensor, b: t.Tensor): t.Tensor => t.pow(a, b).mul(1);
      const a = t.tensor(x, { dtype }), b = t.tensor(y, { dtype });
      for (const [how, got] of [['eager', run(a, b)], ['jit', t.jit(run)(a, b)]] as const) {
        Array.from(got.data()).forEach((v, i) => assert.ok(Object.is(v, want[i]), `${dtype} ${how}: pow(${x[i]}, ${y[i]}) = ${v}, PyTorch ${want[i]}`));
      }
    }
  });
});
