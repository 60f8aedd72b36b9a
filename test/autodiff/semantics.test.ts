// Autodiff semantics, checked against closed forms: PyTorch's accumulation into .grad,
// retainGraph, createGraph (grad of grad), the function transforms (grad, valueAndGrad, vjp, jvp,
// jacobian by both modes, hessian), noGrad/enableGrad, detach, requiresGrad_, and hooks.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';

const f64 = { dtype: 'float64' as const };
const vec = (a: number[], requiresGrad = false): Tensor => t.tensor(a, { ...f64, requiresGrad });

forEachBackend('autodiff semantics', () => {
  it('gradients accumulate in .grad until cleared, like PyTorch', () => {
    const x = vec([1, 2, 3], true);
    const y = x.mul(x).sum();
    y.backward(undefined, { retainGraph: true });
    assertClose(x.grad!, [2, 4, 6]);
    y.backward();
    assertClose(x.grad!, [4, 8, 12]);
    x.mul(3).sum().backward();
    assertClose(x.grad!, [7, 11, 15]);
    x.grad = undefined;
    x.sin().sum().backward();
    assertClose(x.grad!, [1, 2, 3].map(Math.cos));
    assert.equal(x.grad!.requiresGrad, false, 'without createGraph, .grad is not part of a graph');
  });

  it('a tensor used twice gets the sum of both paths; non-leaves keep .grad only with retainGrad', () => {
    const x = vec([0.5, -1], true);
    const h = x.mul(2).retainGrad();
    const k = x.exp();
    h.mul(k).add(h).sum().backward();
    // d/dx [2x e^x + 2x] = 2e^x + 2x e^x + 2
    assertClose(x.grad!, [0.5, -1].map((v) => 2 * Math.exp(v) + 2 * v * Math.exp(v) + 2));
    assertClose(h.grad!, [0.5, -1].map((v) => Math.exp(v) + 1));
    assert.equal(k.grad, undefined);
  });

  it('backward with an explicit gradient computes a vector-Jacobian product', () => {
    const x = vec([1, 2], true);
    x.pow(3).backward(vec([1, -2]));
    assertClose(x.grad!, [3, -24]);
  });

  it('createGraph makes gradients differentiable (grad of grad)', () => {
    const x = vec([0.5, 2], true);
    const y = x.pow(3).sum();
    const [g] = t.gradientsOf(y, [x], undefined, { createGraph: true });
    assertClose(g!, [0.75, 12]);
    assert.equal(g!.requiresGrad, true);
    g!.sum().backward();
    assertClose(x.grad!, [3, 12], {}, '6x');
    // backward({ createGraph }) leaves a differentiable .grad; differentiating it accumulates into
    // .grad again, exactly as PyTorch does (3x² + 6x).
    const w = vec([1, 2], true);
    w.pow(3).sum().backward(undefined, { createGraph: true });
    assert.equal(w.grad!.requiresGrad, true);
    w.grad!.sum().backward();
    assertClose(w.grad!, [9, 24]);
    // Third order through the same mechanism.
    const z = vec([1.5], true);
    const d1 = t.gradientsOf(z.sin(), [z], undefined, { createGraph: true })[0]!;
    const d2 = t.gradientsOf(d1, [z], undefined, { createGraph: true })[0]!;
    const d3 = t.gradientsOf(d2, [z])[0]!;
    assertClose(d1, [Math.cos(1.5)]);
    assertClose(d2, [-Math.sin(1.5)]);
    assertClose(d3, [-Math.cos(1.5)]);
  });

  it('grad and valueAndGrad (argnums) match closed forms, without touching .grad', () => {
    const f = (a: Tensor, b: Tensor): Tensor => a.mul(b.sin()).sum();
    const a = vec([1, 2], true), b = vec([0.3, -0.4]);
    const ga = t.grad(f)(a, b) as Tensor;
    assertClose(ga, [Math.sin(0.3), Math.sin(-0.4)]);
    const [value, grads] = t.valueAndGrad(f, { argnums: [0, 1] })(a, b) as [Tensor, Tensor[]];
    assertClose(value, [Math.sin(0.3) + 2 * Math.sin(-0.4)]);
    assertClose(grads[1]!, [Math.cos(0.3), 2 * Math.cos(-0.4)]);
    assert.equal(a.grad, undefined);
    assertClose(t.grad(f, 1)(a, b) as Tensor, grads[1]!, {}, 'argnums given directly, as grad(f, argnums)');
    assert.equal((t.grad(f, [0, 1])(a, b) as Tensor[]).length, 2);
    // grad composes: d²/dx² x³ = 6x.
    const second = t.grad((x) => (t.grad((y) => y.pow(3).sum())(x) as Tensor).sum());
    assertClose(second(vec([2, -1])) as Tensor, [12, -6]);
  });

  it('vjp returns the output and a pullback; jvp returns the output and J·v', () => {
    const f = (x: Tensor): Tensor => x.mul(x).cumsum(0);
    const x = vec([1, 2, 3]);
    const [out, pullback] = t.vjp(f, x);
    assertClose(out, [1, 5, 14]);
    // J[i][j] = 2 x_j for j <= i, so uᵀJ = 2 x_j * sum_{i>=j} u_i.
    assertClose(pullback(vec([1, 0, 1]))[0]!, [4, 4, 6]);
    const [o2, tangent] = t.jvp(f, [x], [vec([1, 0, -1])]);
    assertClose(o2, out);
    assertClose(tangent, [2, 2, -4]);
    // Nested jvp gives a second directional derivative: d²/dε² sin(x + ε v) = -sin(x) v².
    const inner = (y: Tensor): Tensor => t.jvp((z) => z.sin(), [y], [vec([2])])[1];
    assertClose(t.jvp(inner, [vec([0.7])], [vec([2])])[1], [-Math.sin(0.7) * 4]);
  });

  it('jacobian by reverse and forward mode agree with the closed form; hessian of a quadratic form', () => {
    const A = t.tensor([[2, 1, 0], [1, 3, -1], [4, 0, 1]], f64);
    const f = (x: Tensor): Tensor => A.matmul(x.tanh());
    const xs = [0.1, -0.5, 0.9];
    const x = vec(xs);
    // d (A tanh x)_i / d x_j = A_ij (1 - tanh² x_j)
    const expected = [[2, 1, 0], [1, 3, -1], [4, 0, 1]].map((row) => row.map((a, j) => a * (1 - Math.tanh(xs[j]!) ** 2)));
    assertClose(t.jacrev(f)(x), expected);
    assertClose(t.jacfwd(f)(x), expected);
    assertClose(t.jacobian(f)(x), expected);
    // Hessian of xᵀAx is A + Aᵀ.
    const H = t.hessian((y) => y.dot(A.matmul(y)))(x);
    assertClose(H, A.add(A.T));
  });

  it('noGrad records nothing, enableGrad re-enables inside it, detach cuts the graph', () => {
    const x = vec([1, 2], true);
    const y = t.noGrad(() => x.mul(2));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradNode, undefined);
    const z = t.noGrad(() => t.enableGrad(() => x.mul(2)));
    assert.equal(z.requiresGrad, true);
    assert.equal(t.isGradEnabled(), true);
    const d = x.mul(3).detach();
    assert.equal(d.requiresGrad, false);
    x.mul(d).sum().backward();
    assertClose(x.grad!, [3, 6], {}, 'the detached factor is a constant');
    const leaf = vec([1]).requiresGrad_();
    assert.equal(leaf.requiresGrad, true);
    assert.equal(leaf.requiresGrad_(false).requiresGrad, false);
    assert.equal(x.mul(2).argmax().requiresGrad, false, 'integer outputs never require grad');
  });

  it('hooks see and may replace gradients; post-accumulate hooks run once the leaf grad is final', () => {
    const x = vec([1, 2], true);
    const seen: number[][] = [];
    const remove = x.registerHook((g) => { seen.push(g.toArray() as number[]); return g.mul(10); });
    const mid = x.mul(3);
    mid.registerHook((g) => g.add(1));
    const order: string[] = [];
    x.registerPostAccumulateGradHook((leaf) => order.push(`acc ${String(leaf.grad!.toArray())}`));
    mid.add(x).sum().backward();
    // mid's grad 1 → hook → 2, times 3 = 6, plus 1 from the direct path = 7 (hooks on x see the total).
    assert.deepEqual(seen, [[7, 7]]);
    assertClose(x.grad!, [70, 70]);
    assert.deepEqual(order, ['acc 70,70']);
    remove();
    x.grad = undefined;
    x.sum().backward();
    assertClose(x.grad!, [1, 1], {}, 'the removed hook no longer runs');
  });

  it('gradients flow through views, integer-indexed ops and where without leaking NaN', () => {
    const x = vec([-1, 0.5, 4], true);
    // sqrt(x) is NaN at -1, but where picks the other branch there and its zero cotangent stays 0.
    t.where(x.gt(0), x.clamp(1e-9).sqrt(), x.mul(0)).sum().backward();
    assertClose(x.grad!, [0, 0.5 / Math.sqrt(0.5), 0.25]);
    const w = vec([1, 2, 3, 4], true);
    w.gather(0, t.tensor([3, 3, 0], { dtype: 'int32' })).mul(vec([1, 2, 3])).sum().backward();
    assertClose(w.grad!, [3, 0, 0, 3]);
  });
});
