// gradcheck itself: it passes correct derivatives, and it catches a wrong vjp rule, a wrong jvp rule
// and a wrong second derivative, naming the mode, the input and the element.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { vjpRules } from '../../src/autodiff/vjp-rules.js';
import { jvpRules } from '../../src/autodiff/jvp-rules.js';
import { assertThrowsWith } from '../helpers/close.js';
import { forEachBackend } from '../helpers/backends.js';

const x = (): Tensor => t.tensor([[0.3, -0.7, 1.1], [0.5, 2.0, -1.4]], { dtype: 'float64' });

/** Runs fn with one rule of a table replaced, restoring it afterwards. */
function withRule<T extends object, K extends keyof T>(table: T, key: K, rule: T[K], fn: () => void): void {
  const saved = table[key];
  table[key] = rule;
  try {
    fn();
  } finally {
    table[key] = saved;
  }
}

forEachBackend('gradcheck', () => {
  it('passes a correct function and reports both modes and the numerical Jacobian', () => {
    const r = t.gradcheck((a, b) => a.mul(b).sin(), [x(), x().flip(1)]);
    assert.equal(r.ok, true);
    assert.deepEqual(r.inputs, [0, 1]);
    assert.ok(r.maxAbsError.vjp! < 1e-8 && r.maxAbsError.jvp! < 1e-8);
    // d sin(a*b)_k / d a_j is diagonal: cos(a_j b_j) b_j.
    const jac = r.numerical[0]!;
    assert.equal(jac.length, 36);
    assert.ok(Math.abs(jac[1]!) < 1e-9 && Math.abs(jac[0]! - Math.cos(0.3 * 1.1) * 1.1) < 1e-8);
  });

  it('passes integer inputs through without differentiating them', () => {
    const r = t.gradcheck((a, i) => a.gather(1, i), [x(), t.tensor([[2, 0], [1, 1]], { dtype: 'int32' })]);
    assert.deepEqual(r.inputs, [0]);
  });

  it('catches a wrong reverse-mode rule and names mode, input and element', () => {
    withRule(vjpRules, 'sin', (g, [a]) => [g.mul(a!.cos()).mul(1.5)], () => {
      assertThrowsWith(() => t.gradcheck((a) => a.sin(), [x()], { name: 'sin' }), 'reverse-mode (vjp)', 'sin', 'input 0', 'analytically', 'numerically');
      // Forward mode does not use the vjp table, so it still passes alone.
      assert.equal(t.gradcheck((a) => a.sin(), [x()], { mode: 'jvp' }).ok, true);
    });
  });

  it('catches a wrong forward-mode rule', () => {
    withRule(jvpRules, 'exp', ([tg], _i, out) => (tg === undefined ? undefined : tg.mul(out).add(1e-3)), () => {
      assertThrowsWith(() => t.gradcheck((a) => a.exp(), [x()], { mode: 'jvp' }), 'forward-mode (jvp)');
      assert.equal(t.gradcheck((a) => a.exp(), [x()], { mode: 'vjp' }).ok, true);
      const r = t.gradcheck((a) => a.exp(), [x()], { throwOnFailure: false });
      assert.equal(r.ok, false);
      assert.equal(r.worst!.mode, 'jvp');
    });
  });

  it('gradgradcheck catches a wrong second derivative that first-order checks miss', () => {
    // sin's first derivative uses cos; a wrong cos rule only shows in second order.
    withRule(vjpRules, 'cos', (g, [a]) => [g.mul(a!.sin()).mul(-2)], () => {
      assert.equal(t.gradcheck((a) => a.sin(), [x()]).ok, true);
      assertThrowsWith(() => t.gradgradcheck((a) => a.sin(), [x()], { mode: 'vjp' }), 'the gradient of');
    });
    assert.equal(t.gradgradcheck((a) => a.sin(), [x()]).ok, true);
  });

  it('rejects float32 inputs and integer outputs with a clear message', () => {
    assertThrowsWith(() => t.gradcheck((a) => a.exp(), [x().float()]), 'float32', 'float64', '.double()');
    assertThrowsWith(() => t.gradcheck((a) => a.argmax(), [x()]), 'int32', 'only floating outputs');
  });

  it('flags NaN derivatives as failures', () => {
    // sqrt at 0: the analytical derivative is inf, finite differences are not.
    const r = t.gradcheck((a) => a.sqrt(), [t.tensor([0, 1], { dtype: 'float64' })], { throwOnFailure: false, mode: 'vjp' });
    assert.equal(r.ok, false);
  });
});
