// Results match PyTorch, forward and backward, on the cases recorded by
// scripts/fixtures/torch_ops.py (test/fixtures/torch/ops.json): random inputs in float64 (within
// 1e-10) and float32 (rtol 1e-4 / atol 1e-5 after normalising by magnitude), and edge cases that pin
// PyTorch's semantics (integer division, empty reductions, ties, promotion, boundary gradients).
// Where PyTorch raises, tessera must raise a TesseraError too.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as t from '../../src/index.js';
import type { Tensor, DType } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertCloseNormalized } from '../helpers/close.js';

type Num = number | 'nan' | 'inf' | '-inf';
interface Encoded { dtype: DType; shape: number[]; data: Num[] }
interface Case {
  name: string;
  inputs: (Encoded & { requiresGrad: boolean })[];
  outputs?: Encoded[];
  cotangents?: Encoded[];
  grads?: (Encoded | null)[];
  error?: string;
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/torch/ops.json', import.meta.url), 'utf8')) as { torch: string; cases: Case[] };

const num = (v: Num): number => (v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v);
function decode(e: Encoded, requiresGrad = false): Tensor {
  const x = t.tensor(Float64Array.from(e.data, num), { dtype: e.dtype, shape: e.shape });
  return requiresGrad ? x.requiresGrad_() : x;
}

type Op = (...xs: Tensor[]) => Tensor | Tensor[];
const f64 = { dtype: 'float64' as const };

/** The tessera side of every case, by name (the part before '@dtype'). */
const ops: Record<string, Op> = {
  neg: (x) => x.neg(),
  abs: (x) => x.abs(),
  exp: (x) => x.exp(),
  log: (x) => x.log(),
  log1p: (x) => x.log1p(),
  expm1: (x) => x.expm1(),
  sqrt: (x) => x.sqrt(),
  rsqrt: (x) => x.rsqrt(),
  sin: (x) => x.sin(),
  cos: (x) => x.cos(),
  tanh: (x) => x.tanh(),
  sigmoid: (x) => x.sigmoid(),
  erf: (x) => t.erf(x),
  relu: (x) => x.relu(),
  leakyRelu: (x) => t.leakyRelu(x, 0.1),
  gelu: (x) => t.gelu(x),
  geluTanh: (x) => t.gelu(x, 'tanh'),
  silu: (x) => t.silu(x),
  softplus: (x) => t.softplus(x),
  softplusBeta: (x) => t.softplus(x, 2, 5),
  clamp: (x) => x.clamp(-0.5, 0.5),
  square: (x) => x.square(),
  reciprocal: (x) => t.reciprocal(x),
  add: (a, b) => a.add(b),
  sub: (a, b) => a.sub(b),
  mul: (a, b) => a.mul(b),
  div: (a, b) => a.div(b),
  pow: (a, b) => a.pow(b),
  powScalar: (x) => x.pow(3).add(x.abs().pow(0.5)),
  maximum: (a, b) => a.maximum(b),
  minimum: (a, b) => a.minimum(b),
  where: (c, x, y) => t.where(c, x, y),
  remainder: (a, b) => t.remainder(a, b),
  sum: (x) => [x.sum(), x.sum(0), x.sum(-1, true), x.sum([0, 2])],
  mean: (x) => [x.mean(), x.mean(1), x.mean([0, -1], true)],
  prod: (x) => [x.prod(), x.prod(1)],
  amaxAmin: (x) => [x.max(1), x.min(0), x.max(), x.min([0, 1], true)],
  var: (x) => [x.var(), x.var(1), x.var(0, { correction: 0 }), x.std(1, { keepdim: true })],
  logsumexp: (x) => [x.logsumexp(1), x.logsumexp([0, 1])],
  cumsum: (x) => [x.cumsum(0), x.cumsum(-1)],
  norm: (x) => [x.norm(), x.norm(1, 1), x.norm(Infinity), x.norm(3, 0)],
  argmaxArgmin: (x) => [x.argmax(), x.argmax(1), x.argmin(0, true)],
  matmul2d: (a, b) => a.matmul(b),
  matmulVecMat: (a, b) => a.matmul(b),
  matmulMatVec: (a, b) => a.matmul(b),
  matmulBatched: (a, b) => a.matmul(b),
  bmm: (a, b) => a.bmm(b),
  outer: (a, b) => t.outer(a, b),
  dot: (a, b) => a.dot(b),
  einsumAttention: (q, k, v) => t.einsum('bhqk,bhkd->bhqd', t.softmax(t.einsum('bhqd,bhkd->bhqk', q, k), -1), v),
  einsumMisc: (a, b) => [
    t.einsum('ii->i', a), t.einsum('ii', a), t.einsum('ij->ji', b), t.einsum('ij,jk', a, b), t.einsum('i,i->', a.at(0), a.at(1)),
    t.einsum('...ij,jk->...ik', b.reshape([1, 3, 2]).expand([2, 3, 2]), a.at([0, 2], [0, 2])),
  ],
  cat: (a, b) => [t.cat([a, b], 1), t.cat([a, a], -2)],
  stack: (a, b) => [t.stack([a, b]), t.stack([a, b], -1)],
  split: (x) => [...x.split([1, 3], 1), ...x.split(2, 0), ...x.chunk(3, 1)],
  padConstant: (x) => [t.pad(x, [1, 2]), t.pad(x, [1, 0, 2, 1], 'constant', -2.5), t.pad(x, [-1, 1, 0, -1])],
  padModes: (x) => [t.pad(x, [2, 1], 'reflect'), t.pad(x, [1, 2, 2, 0], 'replicate'), t.pad(x, [2, 3], 'circular')],
  flip: (x) => [x.flip(0), x.flip([0, -1])],
  repeat: (x) => x.repeat([2, 1, 3]),
  trilTriu: (x) => [x.tril(), x.triu(1), x.tril(-1), x.triu(-2)],
  gather: (x, i) => x.gather(1, i),
  scatterAdd: (x, i, s) => x.scatterAdd(0, i, s),
  indexSelect: (x, i) => [x.indexSelect(1, i), x.indexSelect(0, i.at([0, 2]))],
  maskedFill: (x, m) => x.maskedFill(m, -3.5),
  sort: (x) => [x.sort(1).values, x.sort(0, { descending: true }).values, x.sort(1).indices],
  topk: (x) => [x.topk(2).values, x.topk(2, 0, { largest: false }).values, x.topk(3).indices],
  viewsChain: (x) => [
    x.permute([2, 0, 1]).at([1, null], [null, null, 2]), x.transpose(0, 1).reshape([3, -1]),
    x.at(null, null, 1).unsqueeze(0).expand([2, 2, 3]), x.flatten(1).at(null, [-3]),
  ],
  unfold: (x) => x.unfold(1, 3, 2),
  // Edge cases.
  divTrueIntInt: (a, b) => a.div(b),
  divTruncInt: (a, b) => a.div(b, { roundingMode: 'trunc' }),
  divFloorInt: (a, b) => a.div(b, { roundingMode: 'floor' }),
  floorDivideNeg: (a, b) => t.floorDivide(a, b),
  divFloorFloat: (a, b) => a.div(b, { roundingMode: 'floor' }),
  divTruncFloat: (a, b) => a.div(b, { roundingMode: 'trunc' }),
  divByZeroFloat: (a, b) => a.div(b),
  remainderInt: (a, b) => t.remainder(a, b),
  remainderFloat: (a, b) => t.remainder(a, b),
  sumEmptyAxis: (x) => [x.sum(0), x.prod(0), x.sum()],
  meanEmpty: (x) => [x.mean(), x.mean(0)],
  sumEmpty1d: (x) => [x.sum(), x.prod()],
  maxEmptyErrors: (x) => x.max(0),
  argmaxEmptyErrors: (x) => x.argmax(),
  argmaxTies: (x) => [x.argmax(), x.argmax(1), x.argmin(1), x.argmin()],
  argmaxNaN: (x) => [x.argmax(), x.argmin(1)],
  varDefaultUnbiased: (x) => [x.var(), x.std(), x.var(0), x.var(undefined, { unbiased: false })],
  varSingleElement: (x) => [x.var(), x.var(undefined, { correction: 0 })],
  roundHalfEven: (x) => x.round(),
  roundFloat32: (x) => x.round(),
  promoteIntPlusFloatScalar: (x) => x.add(2.5),
  promoteIntPlusIntScalar: (x) => x.add(3),
  promoteBoolPlusInt: (a, b) => a.add(b),
  promoteBoolPlusBool: (a, b) => a.add(b),
  promoteBoolTimesScalar: (a) => a.mul(2),
  promoteInt32PlusFloat32: (a, b) => a.add(b),
  promoteFloat32PlusFloat64: (a, b) => a.add(b),
  promoteFloat32Plus0dFloat64: (a, b) => a.add(b),
  promoteInt32Plus0dFloat64: (a, b) => a.add(b),
  promote0dIntPlusFloat32: (a, b) => a.add(b),
  promoteFloat32Plus0dInt: (a, b) => a.add(b),
  promoteCompare: (a, b) => [a.lt(b), a.eq(2)],
  intDivScalar: (a) => [a.div(2), t.floorDivide(a, 2), a.mul(0.5)],
  broadcastSize1: (a, b) => [a.add(b), a.mul(b)],
  broadcastSize1Grad: (a, b) => a.mul(b).sum(),
  broadcastMismatchErrors: (a, b) => a.add(b),
  negativeAxes: (x) => [x.sum(-1), x.mean(-2, true), x.cumsum(-1), x.max(-3), x.transpose(-1, -3)],
  clampBoundaryGrad: (x) => x.clamp(0, 1),
  clampMinOnlyGrad: (x) => x.clamp(0),
  maximumTiesGrad: (a, b) => [a.maximum(b), a.minimum(b)],
  amaxTiesGrad: (x) => [x.max(1), x.min()],
  absReluZeroGrad: (x) => [x.abs(), x.relu()],
  powZeroGrad: (x, y) => x.pow(y),
  sqrtZeroGrad: (x) => x.sqrt(),
  prodZerosGrad: (x) => x.prod(1),
  sortNaNAndTies: (x) => {
    const up = x.sort(), down = x.sort(-1, { descending: true });
    return [up.values, up.indices, down.values, down.indices];
  },
  topkTies: (x) => [x.topk(2).values, x.topk(2, -1, { largest: false }).values],
  logsumexpInf: (x) => x.logsumexp(1),
  sumBoolAndCumsumInt: (x, y) => [x.sum(), y.cumsum(0), y.sum(0)],
  sumDimEmptyList: (x) => x.sum([]),
  sliceNegativeStep: (x) => [x.at([-3, -1]), x.at([null, null, 3]), x.at([-1]), x.at([5, 1]), x.at([1, null, 2])],
  flattenScalar: (x) => [x.flatten(), x.reshape([1, 1])],
  matmulInnerMismatchErrors: (a, b) => a.matmul(b),
  oneHot: (i) => t.oneHot(i),
  oneHotClasses: (i) => t.oneHot(i, 5),
  gatherOutOfRangeErrors: (x, i) => x.gather(0, i),
  catPromotes: (a, b) => t.cat([a, b]),
  catSkipsEmpty1d: (a, b) => t.cat([a, b]),
  stackMismatchErrors: (a, b) => t.stack([a, b]),
  chunkUneven: (x) => x.chunk(4),
  whereScalarBranches: (c, x) => [t.where(c, x, 0), t.where(c, 1, x)],
  maskedFillBroadcast: (x, m) => x.maskedFill(m, -Infinity),
  isnanAndLogical: (x) => [x.isnan(), x.gt(0).logicalNot(), x.gt(0).logicalAnd(x.lt(2)), x.gt(1).logicalOr(x.isnan())],
  linspaceArange: () => [t.linspace(0, 1, 5, f64), t.arange(0, 1, 0.25, f64), t.linspace(-1, 1, 4, f64)],
  eye: () => [t.eye(3, 3, f64), t.eye(2, 3, f64)],
  zeroDimReductions: (x) => [x.sum(0), x.sum(-1), x.mean(0), x.max(0), x.cumsum(0), x.argmax(0), x.prod()],
  zeroDimBroadcast: (s, x) => [s.mul(x), x.sub(s), s.maximum(x)],
  nanPropagation: (x, y) => [x.max(), x.min(0), x.sum(), x.maximum(y), x.minimum(y), x.cumsum(0), x.clamp(0, 2)],
  infArithmetic: (x) => [x.mul(0), x.sub(x), x.neg().exp(), x.sigmoid(), x.tanh(), x.relu()],
  powSpecial: (x, y) => x.pow(y),
  extremeValues: (x) => [x.sigmoid(), x.logsumexp(0), t.softplus(x), x.mul(1e-300).log1p(), x.mul(1e-300).expm1(), t.gelu(x), t.erf(x)],
  intOps: (x, y) => [
    x.abs(), x.neg(), x.sum(), x.max(), x.min(), x.argmin(), x.sort().values, x.clamp(0, 2), x.maximum(y), x.mul(y), x.sub(y),
    x.cumsum(0), t.where(x.gt(0), x, y), x.flip(0), x.sign(),
  ],
  intPowAndDiv: (x, y) => [x.pow(2), x.pow(y), x.div(y), t.remainder(x, y), x.div(y, { roundingMode: 'floor' })],
  boolOps: (a, b) => [a.logicalAnd(b), a.logicalOr(b), a.logicalNot(), a.sum(), a.mul(b), a.maximum(b), a.int().cumsum(0), t.where(a, 1.5, 2.5)],
  meanVarAxesTuple: (x) => [x.mean([0, 2]), x.var([1, 2]), x.std([0, 1], { keepdim: true }), x.logsumexp([0, 2])],
  matmulShapes: (a, b, v) => [a.matmul(v), v.matmul(b), v.matmul(v), a.unsqueeze(0).expand([3, 2, 4]).matmul(b)],
  softplusThreshold: (x) => t.softplus(x, 0.5, 3),
  geluEdges: (x) => [t.gelu(x), t.gelu(x, 'tanh'), t.silu(x), t.leakyRelu(x, 0.2)],
  normStdZeroGrad: (z, c) => [z.norm(), z.norm(3), c.std(), c.sub(c.detach()).norm(2, 0)],
  softplusAtZero: (x) => [t.softplus(x), t.softplus(x, 3)],
  clampPromotes: (i) => [i.clamp(0.5), i.clamp(undefined, 2), i.clamp(-1, 2.5)],
  clampTensorBounds: (x, lo, hi) => x.clamp(lo, hi),
  signBool: (b) => b.sign(),
  emptyAxisReductions: (x) => [x.mean(1), x.var(1), x.logsumexp(1), x.cumsum(1), x.sum(1), x.prod(1), x.argmax(0), x.max(0)],
  transposeVectorErrors: (x) => x.transpose(0, 1),
  mTVectorErrors: (x) => x.mT,
  halfArith: (x, y) => [x.add(y), x.mul(y), x.div(y), x.sub(y), x.mul(2.5), x.add(1)],
  halfReduce: (x) => [x.sum(), x.mean(), x.sum(0), x.max(1)],
  halfUnary: (x) => [x.exp(), x.tanh(), x.abs().sqrt(), x.sigmoid()],
  halfPromote: (x, y) => [x.add(y), x.add(0.5)],
};

/** The randomized sweep: "fuzz:<op>:<json args>#<n>" names the op and its arguments. */
function fuzzOp(key: string): Op | undefined {
  const m = /^fuzz:(\w+):(.*)#\d+$/.exec(key);
  if (m === null) return undefined;
  const args = JSON.parse(m[2]!) as { axes?: number[]; keepdim?: boolean };
  const axes = args.axes ?? [], keepdim = args.keepdim ?? false;
  const table: Record<string, Op> = {
    add: (a, b) => a.add(b), sub: (a, b) => a.sub(b), mul: (a, b) => a.mul(b), div: (a, b) => a.div(b),
    pow: (a, b) => a.abs().add(0.5).pow(b), maximum: (a, b) => a.maximum(b), minimum: (a, b) => a.minimum(b),
    sum: (x) => x.sum(axes, keepdim), mean: (x) => x.mean(axes, keepdim), prod: (x) => x.prod(axes, keepdim),
    amax: (x) => x.max(axes, keepdim), amin: (x) => x.min(axes, keepdim), var: (x) => x.var(axes, { keepdim }),
    std: (x) => x.std(axes, { keepdim, correction: 0 }), logsumexp: (x) => x.logsumexp(axes, keepdim), matmul: (a, b) => a.matmul(b),
  };
  return table[m[1]!];
}

/** float32 cases use the normalised tolerance; float64 and exact cases 1e-10; half formats one ulp. */
function tolerance(name: string): { rtol: number; atol: number } {
  // Half formats: one unit in the last place (PyTorch may round a float32 intermediate where we
  // round the exact value, so a tie can land one ulp apart).
  if (name.endsWith('@float16')) return { rtol: 2 ** -10, atol: 2 ** -14 };
  if (name.endsWith('@bfloat16')) return { rtol: 2 ** -7, atol: 2 ** -14 };
  return name.endsWith('@float32') ? { rtol: 1e-4, atol: 1e-5 } : { rtol: 1e-10, atol: 1e-10 };
}

function compareTensor(actual: Tensor, expected: Encoded, what: string, tol: { rtol: number; atol: number }): void {
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.deepEqual([...actual.shape], expected.shape, `${what}: shape`);
  assertCloseNormalized(actual, expected.data.map(num), tol, what);
}

function runCase(c: Case): void {
  const key = c.name.split('@')[0]!;
  const op = ops[key] ?? fuzzOp(key);
  assert.ok(op !== undefined, `no tessera op registered for fixture case '${key}'`);
  const inputs = c.inputs.map((e) => decode(e, e.requiresGrad));
  if (c.error !== undefined) {
    // Raised at the op, or (an index checked by a GPU kernel, on webgpu) at the first read of its result.
    assert.throws(() => {
      const result = op(...inputs);
      for (const o of result instanceof t.Tensor ? [result] : result) o.data();
    }, (e: unknown) => e instanceof Error && e.name === 'TesseraError',
      `PyTorch raises "${c.error}"; tessera should raise a TesseraError`);
    return;
  }
  const out = op(...inputs);
  const outs = out instanceof t.Tensor ? [out] : out;
  const tol = tolerance(c.name);
  assert.equal(outs.length, c.outputs!.length, 'number of outputs');
  outs.forEach((o, k) => compareTensor(o, c.outputs![k]!, `${c.name} output ${k}`, tol));
  if (c.grads === undefined) return;
  const diffOuts = outs.filter((o) => o.requiresGrad);
  assert.equal(diffOuts.length, c.cotangents!.length, 'number of differentiable outputs');
  let loss: Tensor | undefined;
  diffOuts.forEach((o, k) => {
    const term = o.mul(decode(c.cotangents![k]!)).sum();
    loss = loss === undefined ? term : loss.add(term);
  });
  const leaves = inputs.filter((x) => x.requiresGrad);
  const grads = t.gradientsOf(loss!, leaves);
  let li = 0;
  c.grads.forEach((g, i) => {
    if (g === null) return;
    const got = grads[li++] ?? t.zerosLike(inputs[i]!);
    compareTensor(got, g, `${c.name} gradient of input ${i}`, tol);
  });
}

forEachBackend(`matches PyTorch ${fixture.torch}`, () => {
  for (const c of fixture.cases) it(c.name, () => runCase(c));
});
