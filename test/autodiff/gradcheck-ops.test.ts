// Every differentiable op passes gradcheck in float64 in both modes (vjp: reverse Jacobian from
// basis cotangents; jvp: forward Jacobian from basis tangents) and gradgradcheck (second
// derivatives, reverse-over-reverse and forward-over-reverse), including softmax, layerNorm and
// conv2d from src/ops/nn.
//
// Inputs are random but kept away from kinks (|x| >= 0.1 for abs/relu, distinct values for
// max/sort, positive where a log or sqrt is taken), so central differences are exact to ~1e-9.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

const gen = new t.Generator(1234);
const f64 = { dtype: 'float64' as const };

/** Uniform values in [lo, hi]; with `away`, magnitudes in [away, hi] with random signs. */
function rnd(shape: number[], opts: { lo?: number; hi?: number; away?: number } = {}): Tensor {
  const lo = opts.lo ?? -1, hi = opts.hi ?? 1;
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (opts.away !== undefined) v[i] = (opts.away + (hi - opts.away) * gen.uniform()) * (gen.uniform() < 0.5 ? -1 : 1);
    else v[i] = lo + (hi - lo) * gen.uniform();
  }
  return t.tensor(v, { ...f64, shape });
}

/** Distinct values (pairwise gaps >= 0.1) in random order, so max/sort/topk have no ties. */
function distinct(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(gen.uniform() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return t.tensor(Float64Array.from(order, (k) => (k - n / 2) * 0.2 + 0.05 * gen.uniform()), { ...f64, shape });
}

const idx = (a: t.NestedArray): Tensor => t.tensor(a, { dtype: 'int32' });

interface Case {
  name: string;
  f: (...xs: Tensor[]) => Tensor | Tensor[];
  inputs: () => Tensor[];
  /** Finite-difference step, when the default 1e-6 is not exact (e.g. through float32). */
  eps?: number;
}

const cases: Case[] = [
  // Elementwise, unary.
  { name: 'neg', f: (x) => t.neg(x), inputs: () => [rnd([2, 3])] },
  { name: 'abs', f: (x) => x.abs(), inputs: () => [rnd([2, 3], { away: 0.1 })] },
  { name: 'exp', f: (x) => x.exp(), inputs: () => [rnd([2, 3])] },
  { name: 'log', f: (x) => x.log(), inputs: () => [rnd([2, 3], { lo: 0.5, hi: 2 })] },
  { name: 'log1p', f: (x) => x.log1p(), inputs: () => [rnd([5], { lo: -0.5, hi: 2 })] },
  { name: 'expm1', f: (x) => x.expm1(), inputs: () => [rnd([5])] },
  { name: 'sqrt', f: (x) => x.sqrt(), inputs: () => [rnd([5], { lo: 0.5, hi: 2 })] },
  { name: 'rsqrt', f: (x) => x.rsqrt(), inputs: () => [rnd([5], { lo: 0.5, hi: 2 })] },
  { name: 'sin', f: (x) => x.sin(), inputs: () => [rnd([5], { lo: -3, hi: 3 })] },
  { name: 'cos', f: (x) => x.cos(), inputs: () => [rnd([5], { lo: -3, hi: 3 })] },
  { name: 'tanh', f: (x) => x.tanh(), inputs: () => [rnd([2, 3], { lo: -2, hi: 2 })] },
  { name: 'sigmoid', f: (x) => x.sigmoid(), inputs: () => [rnd([5], { lo: -3, hi: 3 })] },
  { name: 'erf', f: (x) => t.erf(x), inputs: () => [rnd([5], { lo: -2, hi: 2 })] },
  { name: 'relu', f: (x) => x.relu(), inputs: () => [rnd([6], { away: 0.1 })] },
  // ReLU's vjp primitive: linear in g, piecewise constant in x (kept away from 0).
  { name: 'reluGrad', f: (x, g) => t.reluGrad(x, g), inputs: () => [rnd([2, 3], { away: 0.1 }), rnd([2, 3])] },
  { name: 'leakyRelu', f: (x) => t.leakyRelu(x, 0.2), inputs: () => [rnd([6], { away: 0.1 })] },
  { name: 'gelu', f: (x) => t.gelu(x), inputs: () => [rnd([5], { lo: -3, hi: 3 })] },
  { name: 'gelu tanh', f: (x) => t.gelu(x, 'tanh'), inputs: () => [rnd([5], { lo: -3, hi: 3 })] },
  { name: 'silu', f: (x) => t.silu(x), inputs: () => [rnd([5], { lo: -3, hi: 3 })] },
  // beta 2, threshold 1: both the linear branch (2x > 1) and the log branch, away from the switch.
  { name: 'softplus', f: (x) => t.softplus(x, 2, 1), inputs: () => [t.tensor([-2, -0.3, 0.1, 0.3, 0.8, 1.5], f64)] },
  { name: 'square', f: (x) => x.square(), inputs: () => [rnd([5])] },
  { name: 'reciprocal', f: (x) => t.reciprocal(x), inputs: () => [rnd([5], { away: 0.3 })] },
  // Piecewise constant: zero derivative away from the jumps (x = k + 0.3).
  { name: 'floor/ceil/round/sign/trunc', f: (x) => [x.floor(), x.ceil(), x.round(), x.sign(), t.trunc(x)], inputs: () => [t.tensor([-2.7, -0.7, 0.3, 1.3], f64)] },
  { name: 'clamp', f: (x) => x.clamp(-0.5, 0.5), inputs: () => [t.tensor([-0.9, -0.3, 0.1, 0.45, 0.8], f64)] },
  { name: 'clamp tensor bounds', f: (x, lo, hi) => t.clamp(x, lo, hi), inputs: () => [t.tensor([-0.9, -0.3, 0.1, 0.8], f64), t.tensor([-0.5, -0.5, 0.2, 0.0], f64), t.tensor([0.5, 0.5, 0.6, 0.6], f64)] },
  // Elementwise, binary (with broadcasting).
  { name: 'add broadcast', f: (a, b) => a.add(b), inputs: () => [rnd([2, 3]), rnd([3])] },
  { name: 'sub broadcast', f: (a, b) => a.sub(b), inputs: () => [rnd([2, 1]), rnd([1, 3])] },
  { name: 'mul broadcast', f: (a, b) => a.mul(b), inputs: () => [rnd([2, 3]), rnd([2, 1])] },
  { name: 'div', f: (a, b) => a.div(b), inputs: () => [rnd([2, 3]), rnd([2, 3], { away: 0.5 })] },
  { name: 'div broadcast scalar', f: (a) => t.div(2, a).add(a.div(3)), inputs: () => [rnd([4], { away: 0.5 })] },
  { name: 'pow', f: (a, b) => a.pow(b), inputs: () => [rnd([2, 3], { lo: 0.5, hi: 2 }), rnd([2, 3], { lo: -2, hi: 2 })] },
  { name: 'pow scalar exponent', f: (a) => a.pow(3).add(a.abs().pow(0.5)), inputs: () => [rnd([4], { away: 0.2 })] },
  { name: 'pow scalar base', f: (a) => t.pow(2, a), inputs: () => [rnd([4])] },
  { name: 'maximum/minimum', f: (a, b) => [a.maximum(b), a.minimum(b)], inputs: () => { const a = rnd([5]); return [a, a.add(rnd([5], { away: 0.1 }))]; } },
  { name: 'where broadcast', f: (a, b) => t.where(t.tensor([true, false, true]), a, b), inputs: () => [rnd([2, 3]), rnd([2, 1])] },
  { name: 'remainder', f: (a, b) => t.remainder(a, b), inputs: () => [t.tensor([1.3, -1.3, 2.6, -0.4], f64), t.tensor([1, 1, -1.1, 0.7], f64)] },
  { name: 'scalar arithmetic', f: (a) => a.add(2).mul(3).sub(1).div(4), inputs: () => [rnd([3])] },
  // Reductions.
  { name: 'sum all/axes/keepdim', f: (x) => [x.sum(), x.sum(0), x.sum(-1, true), x.sum([0, 2])], inputs: () => [rnd([2, 3, 2])] },
  { name: 'mean', f: (x) => [x.mean(), x.mean(1), x.mean([0, 1], true)], inputs: () => [rnd([2, 3, 2])] },
  { name: 'prod', f: (x) => [x.prod(), x.prod(1)], inputs: () => [rnd([2, 3], { away: 0.3 })] },
  // Exact zeros: one zero in a row (only its product-of-others survives), two zeros (all zero).
  { name: 'prod with zeros', f: (x) => x.prod(1), inputs: () => [t.tensor([[0, 2, 3, 0.5], [0, 0, 4, 1.5], [0, 0, 0, 2], [1, 2, 3, -1]], f64)] },
  { name: 'max/min over axes', f: (x) => [x.max(1), x.min(0), x.max(), x.min([0, 1], true)], inputs: () => [distinct([3, 4])] },
  { name: 'var/std', f: (x) => [x.var(1), x.var(undefined, { correction: 0 }), x.std(0), x.std(1, { keepdim: true })], inputs: () => [rnd([3, 4])] },
  { name: 'logsumexp', f: (x) => [x.logsumexp(1), x.logsumexp()], inputs: () => [rnd([2, 3], { lo: -3, hi: 3 })] },
  { name: 'cumsum', f: (x) => [x.cumsum(0), x.cumsum(-1)], inputs: () => [rnd([3, 2])] },
  { name: 'norm p=1,2,inf,3', f: (x) => [x.norm(1), x.norm(2, 1), x.norm(Infinity), x.norm(3, 0)], inputs: () => [distinct([2, 3]).add(0.01)] },
  // Matrix products.
  { name: 'matmul 2-D', f: (a, b) => a.matmul(b), inputs: () => [rnd([2, 3]), rnd([3, 2])] },
  { name: 'matmul vector cases', f: (a, b, v) => [v.matmul(b), a.matmul(v.at([0, 3]).contiguous().reshape([3]).mul(1)), v.dot(v)], inputs: () => [rnd([2, 3]), rnd([3, 2]), rnd([3])] },
  { name: 'matmul batched broadcast', f: (a, b) => a.matmul(b), inputs: () => [rnd([2, 1, 2, 3]), rnd([3, 3, 2])] },
  { name: 'bmm/mm/outer', f: (a, b, u, v) => [a.bmm(b), a.at(0).mm(b.at(1)), t.outer(u, v)], inputs: () => [rnd([2, 2, 3]), rnd([2, 3, 2]), rnd([2]), rnd([3])] },
  { name: 'einsum attention', f: (q, k, v) => t.einsum('bhqk,bhkd->bhqd', t.einsum('bhqd,bhkd->bhqk', q, k), v), inputs: () => [rnd([1, 2, 2, 3]), rnd([1, 2, 3, 3]), rnd([1, 2, 3, 2])] },
  { name: 'einsum diag/trace/transpose/implicit', f: (a, b) => [t.einsum('ii->i', a), t.einsum('ii', a), t.einsum('ij->ji', b), t.einsum('ij,jk', a, b), t.einsum('i,i->', a.at(0), a.at(1))], inputs: () => [rnd([3, 3]), rnd([3, 2])] },
  { name: 'einsum ellipsis broadcast', f: (a, b) => t.einsum('...ij,...jk->...ik', a, b), inputs: () => [rnd([2, 1, 2, 2]), rnd([3, 2, 2])] },
  // Views and data movement.
  { name: 'reshape/view/flatten', f: (x) => [x.reshape([3, 2]), x.view([-1]), x.flatten(), x.reshape([1, 6]).squeeze(0).unsqueeze(-1)], inputs: () => [rnd([2, 3])] },
  { name: 'permute/transpose/mT/T', f: (x) => [x.permute([2, 0, 1]), x.transpose(0, 2), x.mT, x.at(0).T], inputs: () => [rnd([2, 3, 2])] },
  { name: 'expand', f: (x) => x.expand([2, 3, 2]).mul(t.arange(6, undefined, 1, f64).reshape([1, 3, 2])), inputs: () => [rnd([3, 1])] },
  { name: 'slicing with negatives and steps', f: (x) => [x.at([1, null], [null, null, 2]), x.at(-1, [-3, -1]), x.slice(1, 0, null, 3), x.narrow(0, 1, 2)], inputs: () => [rnd([3, 5])] },
  { name: 'unfold (overlapping windows)', f: (x) => x.unfold(1, 3, 1).mul(t.arange(9, undefined, 1, f64).reshape([3, 3])), inputs: () => [rnd([2, 5])] },
  { name: 'contiguous/clone of a transposed view', f: (x) => [x.mT.contiguous(), x.clone()], inputs: () => [rnd([2, 3])] },
  // A power-of-two step keeps x ± eps exactly representable in float32, so the differences are exact.
  { name: 'cast to float32 and back', f: (x) => x.float().mul(2).double(), inputs: () => [t.tensor([0.5, -1.25, 2], f64)], eps: 2 ** -6 },
  // Joining and cutting.
  { name: 'cat', f: (a, b) => [t.cat([a, b], 1), t.cat([a, a], 0)], inputs: () => [rnd([2, 2]), rnd([2, 3])] },
  { name: 'stack', f: (a, b) => [t.stack([a, b]), t.stack([a, b], -1)], inputs: () => [rnd([2, 2]), rnd([2, 2])] },
  { name: 'split/chunk', f: (x) => [...x.split([1, 2], 1).map((p) => p.mul(2)), ...x.chunk(2, 0)], inputs: () => [rnd([3, 3])] },
  { name: 'pad constant (grow and crop)', f: (x) => [t.pad(x, [1, 2], 'constant', 3), t.pad(x, [-1, 1, 1, 0])], inputs: () => [rnd([2, 3])] },
  { name: 'pad reflect/replicate/circular', f: (x) => [t.pad(x, [2, 1], 'reflect'), t.pad(x, [1, 2, 1, 0], 'replicate'), t.pad(x, [2, 2], 'circular')], inputs: () => [rnd([2, 3])] },
  { name: 'flip', f: (x) => [x.flip(0), x.flip([0, 1])], inputs: () => [rnd([2, 3])] },
  { name: 'repeat', f: (x) => x.repeat([2, 1, 2]), inputs: () => [rnd([2, 2])] },
  { name: 'tril/triu', f: (x) => [x.tril(), x.triu(1), x.tril(-1)], inputs: () => [rnd([3, 4])] },
  // Indexing.
  { name: 'gather', f: (x) => x.gather(1, idx([[0, 2, 2], [1, 1, 0]])), inputs: () => [rnd([2, 3])] },
  { name: 'scatterAdd (self and src, repeated indices)', f: (x, s) => x.scatterAdd(0, idx([[0, 1, 0], [0, 0, 2]]), s), inputs: () => [rnd([3, 3]), rnd([2, 3])] },
  { name: 'indexSelect (repeated indices)', f: (x) => [x.indexSelect(1, idx([2, 0, 2])), x.indexSelect(0, idx([1]))], inputs: () => [rnd([2, 3])] },
  { name: 'maskedFill (input and 0-d value)', f: (x, v) => x.maskedFill(t.tensor([[true], [false]]), v), inputs: () => [rnd([2, 3]), rnd([])] },
  { name: 'sort/topk values', f: (x) => [x.sort(1).values, x.sort(0, { descending: true }).values, x.topk(2).values, x.topk(1, 0, { largest: false }).values], inputs: () => [distinct([3, 4])] },
];

forEachBackend('gradcheck (float64, vjp and jvp)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const report = t.gradcheck(c.f, c.inputs(), { name: c.name, atol: 1e-6, rtol: 1e-5, ...(c.eps === undefined ? {} : { eps: c.eps }) });
      assert.ok(report.ok);
      assert.ok(report.maxAbsError.vjp !== undefined && report.maxAbsError.jvp !== undefined);
    });
  }
}, { float64Only: true });

// Second order for every op as well: vjp and jvp rules are written with ops, so each rule must
// itself differentiate correctly (reverse-over-reverse and forward-over-reverse).
forEachBackend('gradgradcheck (second order)', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.ok(t.gradgradcheck(c.f, c.inputs(), { name: c.name, atol: 1e-5, rtol: 1e-4, ...(c.eps === undefined ? {} : { eps: c.eps }) }).ok);
    });
  }
  it('softmax', () => {
    assert.ok(t.gradgradcheck((x) => t.softmax(x, -1), [rnd([2, 3], { lo: -2, hi: 2 })], { atol: 1e-5, rtol: 1e-4 }).ok);
  });
  it('layerNorm with weight and bias', () => {
    const f = (x: Tensor, w: Tensor, b: Tensor): Tensor => t.layerNorm(x, [3], { weight: w, bias: b });
    assert.ok(t.gradgradcheck(f, [rnd([2, 3]), rnd([3]), rnd([3])], { atol: 1e-5, rtol: 1e-4 }).ok);
  });
  it('conv2d with stride, padding and bias', () => {
    const f = (x: Tensor, w: Tensor, b: Tensor): Tensor => t.conv2d(x, w, { bias: b, stride: 2, padding: 1 });
    assert.ok(t.gradgradcheck(f, [rnd([1, 2, 3, 3]), rnd([2, 2, 2, 2]), rnd([2])], { atol: 1e-5, rtol: 1e-4 }).ok);
  });
}, { float64Only: true });
