import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

// reluGrad(x, g) = x > 0 ? g : 0 replaced ReLU's vjp where(gt(x, 0), g, 0): it must give the same
// bits for every pair of special values (NaN x → +0, NaN g kept where x > 0, signed zeros of g kept),
// contiguous, broadcast and strided, with row lengths that leave a scalar tail after the SIMD loop.

const SPECIAL = [NaN, -0, 0, -1, 1, 2.5, -2.5, Infinity, -Infinity, 1e-40, -1e-40, 3.4e38];

/** All pairs of special values as two [n] tensors (n = 144: a multiple of 4), plus a 4k+3 slice of them. */
function pairs(dtype: 'float32' | 'float64'): { x: t.Tensor; g: t.Tensor } {
  const xs: number[] = [], gs: number[] = [];
  for (const a of SPECIAL) for (const b of SPECIAL) { xs.push(a); gs.push(b); }
  return { x: t.tensor(xs, { dtype }), g: t.tensor(gs, { dtype }) };
}

/** The float64 reference, element by element (Object.is so that -0 and +0 differ). */
function expected(x: t.Tensor, g: t.Tensor): number[] {
  const xv = x.contiguous().data(), gv = g.contiguous().data();
  return Array.from(xv, (xi, i) => (xi > 0 ? gv[i]! : 0));
}

function assertBits(actual: t.Tensor, want: number[], what: string): void {
  const got = Array.from(actual.data());
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const w = actual.dtype === 'float32' ? Math.fround(want[i]!) : want[i]!;
    assert.ok(Object.is(got[i], w), `${what}[${i}]: got ${got[i]}, expected ${w}`);
  }
}

forEachBackend('reluGrad', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: special values, a scalar tail, broadcast and strided inputs match the reference bit for bit`, () => {
      const { x, g } = pairs(dtype);
      assertBits(t.reluGrad(x, g), expected(x, g), 'contiguous');
      assertBits(t.reluGrad(x, g), Array.from(t.where(t.gt(x, 0), g, 0).data()), 'the old where(gt(x, 0), g, 0)');
      const xs = x.narrow(0, 1, 143), gs = g.narrow(0, 0, 143);
      assertBits(t.reluGrad(xs, gs), expected(xs, gs), '4k+3 elements, offset input');
      const x2 = x.reshape([12, 12]), g2 = g.reshape([12, 12]);
      assertBits(t.reluGrad(x2, g2.T), expected(x2, g2.T), 'transposed gradient');
      assertBits(t.reluGrad(x2.T, g2), expected(x2.T, g2), 'transposed input');
      const row = g2.at(3);
      assertBits(t.reluGrad(x2, row), expected(x2, row.expand([12, 12])), 'broadcast gradient row');
      const column = g2.at([null], [5, 6]);
      assertBits(t.reluGrad(x2, column), expected(x2, column.expand([12, 12])), 'broadcast gradient column');
      assertBits(t.reluGrad(x2, 2), expected(x2, t.full([12, 12], 2, { dtype })), 'scalar gradient');
    });
  }

  it('is the gradient of relu (first order, float32) and keeps the dtype', () => {
    const x = t.tensor([-2, -0, 0, 0.5, 3, NaN, -1e-30, 1e-30], { dtype: 'float32', requiresGrad: true });
    const g = t.tensor([1, 2, 3, 4, 5, 6, 7, 8], { dtype: 'float32' });
    t.relu(x).backward(g);
    assert.equal(x.grad!.dtype, 'float32');
    assertBits(x.grad!, [0, 0, 0, 4, 5, 0, 0, 8], 'relu backward');
  });

  it('differentiates in both arguments: linear in g, zero in x', () => {
    const x = t.tensor([-1, 2, 3, -4], { dtype: 'float64', requiresGrad: true });
    const g = t.tensor([0.5, 0.25, -1, 2], { dtype: 'float64', requiresGrad: true });
    const w = t.tensor([1, 10, 100, 1000], { dtype: 'float64' });
    const [dx, dg] = t.gradientsOf(t.reluGrad(x, g).mul(w).sum(), [x, g]);
    assert.ok(dx === undefined || Array.from(dx.data()).every((v) => v === 0), 'no gradient flows to x');
    assert.deepEqual(Array.from(dg!.data()), [0, 10, 100, 0]);
    const tangent = t.jvp((a: t.Tensor, b: t.Tensor) => t.reluGrad(a, b), [x.detach(), g.detach()], [t.onesLike(x), w]);
    assert.deepEqual(Array.from(tangent[1].data()), [0, 10, 100, 0]);
  });
});
