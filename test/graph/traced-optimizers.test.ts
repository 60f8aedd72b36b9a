import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit } from '../../src/index.js';
import { SGD, Adam, AdamW, RMSprop, type Optimizer, type BaseOptions } from '../../src/optim/index.js';
import { gptBlock, gptParams, mlp, mlpParams, mse, type GPT, type MLP } from './models.js';

function cloneParams<T extends object>(p: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) out[k] = v instanceof t.Tensor ? t.clone(v).detach().requiresGrad_(v.requiresGrad) : v;
  return out as T;
}
const tensorsOf = (p: object): t.Tensor[] => Object.values(p).filter((v): v is t.Tensor => v instanceof t.Tensor);

type MakeOpt = (params: t.Tensor[]) => Optimizer<BaseOptions>;

/** 20 steps of `loss` with optimizer.step() inside a jitted function vs eagerly; returns the losses. */
function compare(make: MakeOpt, pe: object, pc: object, loss: (p: object, x: t.Tensor, y: t.Tensor) => t.Tensor, x: t.Tensor, y: t.Tensor, tol: number) {
  const oe = make(tensorsOf(pe)), oc = make(tensorsOf(pc));
  const step = (o: Optimizer<BaseOptions>, p: object) => (a: t.Tensor, b: t.Tensor): t.Tensor => {
    o.zeroGrad();
    const l = loss(p, a, b);
    l.backward();
    o.step();
    return l;
  };
  const eager = step(oe, pe);
  const compiled = jit(step(oc, pc));
  const losses: number[] = [];
  for (let i = 0; i < 20; i++) {
    const le = eager(x, y).item(), lc = compiled(x, y).item();
    losses.push(lc);
    assert.ok(Math.abs(le - lc) <= tol * Math.max(1, Math.abs(le)), `step ${i}: eager ${le} vs compiled ${lc}`);
  }
  const s = compiled.stats();
  assert.equal(s.traces, 1, s.traceReasons.join('; '));
  assert.equal(s.cacheHits, 19);
  // The whole step (forward, backward and the update) is one graph that writes the parameters.
  const g = compiled.graphs()[0]!.traced;
  const written = new Set(g.writes.filter((w) => w.kind === 'data').map((w) => w.target));
  for (const p of tensorsOf(pc)) assert.ok(written.has(p), 'every parameter is updated by the graph');
  tensorsOf(pc).forEach((p, k) => {
    const q = tensorsOf(pe)[k]!.data();
    p.data().forEach((v, i) => assert.ok(Math.abs(v - q[i]!) <= tol * 10, `parameter ${k}[${i}]: ${v} vs ${q[i]}`));
  });
  return { losses, compiled };
}

const mlpLoss = (p: object, x: t.Tensor, y: t.Tensor): t.Tensor => mse(mlp(p as MLP, x), y);
const gptLoss = (p: object, x: t.Tensor, y: t.Tensor): t.Tensor => mse(gptBlock(p as GPT, x), y);
const optimizers: [string, MakeOpt][] = [
  ['SGD momentum+nesterov+wd', (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }) as unknown as Optimizer<BaseOptions>],
  ['Adam', (ps) => new Adam(ps, { lr: 0.01 }) as unknown as Optimizer<BaseOptions>],
  ['AdamW amsgrad', (ps) => new AdamW(ps, { lr: 0.01, amsgrad: true }) as unknown as Optimizer<BaseOptions>],
];

for (const [name, make] of optimizers) {
  test(`optimizer.step() inside jit: MLP training step, ${name}, 20 steps equal eager`, () => {
    t.manualSeed(3);
    const pe = mlpParams(6, 12, 3), pc = cloneParams(pe);
    const { losses } = compare(make, pe, pc, mlpLoss, t.randn([8, 6]), t.randn([8, 3]), 1e-5);
    assert.ok(losses[19]! < losses[0]!, 'the loss goes down');
  });
}

for (const [name, make] of optimizers.slice(0, 2)) {
  test(`optimizer.step() inside jit: GPT block training step, ${name}, 20 steps equal eager`, () => {
    t.manualSeed(4);
    const pe = gptParams(8, 2), pc = cloneParams(pe);
    const { losses } = compare(make, pe, pc, gptLoss, t.randn([2, 4, 8]), t.randn([2, 4, 8]), 1e-4);
    assert.ok(losses[19]! < losses[0]!, 'the loss goes down');
  });
}

test('a compiled step follows lr and beta changes (schedulers; OneCycleLR cycles beta1) and refuses changed baked hyper-parameters', () => {
  t.manualSeed(5);
  const pe = mlpParams(4, 6, 2), pc = cloneParams(pe);
  const oe = new Adam(tensorsOf(pe), { lr: 0.02 }), oc = new Adam(tensorsOf(pc), { lr: 0.02 });
  const x = t.randn([5, 4]), y = t.randn([5, 2]);
  const run = (o: Adam, p: MLP) => (a: t.Tensor, b: t.Tensor): t.Tensor => { o.zeroGrad(); const l = mse(mlp(p, a), b); l.backward(); o.step(); return l; };
  const eager = run(oe, pe), compiled = jit(run(oc, pc));
  for (let i = 0; i < 6; i++) {
    oe.paramGroups[0]!.lr = oc.paramGroups[0]!.lr = 0.02 / (i + 1);
    // As OneCycleLR with cycleMomentum does: beta1 moves every step (and beta2 once).
    oe.paramGroups[0]!.betas = oc.paramGroups[0]!.betas = [0.95 - 0.02 * i, i < 3 ? 0.999 : 0.99];
    const le = eager(x, y).item(), lc = compiled(x, y).item();
    assert.ok(Math.abs(le - lc) <= 1e-5, `step ${i}: ${le} vs ${lc}`);
  }
  assert.equal(oc.state.get(pc.w1)!.step, 6, 'the JS step counter advances on replays');
  assert.equal(compiled.stats().traces, 1);
  for (const [a, b] of [[pe.w1, pc.w1], [pe.w2, pc.w2]] as const) {
    a.data().forEach((v, k) => assert.ok(Math.abs(v - b.data()[k]!) <= 1e-5, 'the compiled updates followed the betas'));
  }
  oc.paramGroups[0]!.eps = 1e-6;
  assert.throws(() => compiled(x, y), /'eps' changed from 1e-8 to 0.000001/);
});

test('an optimizer without a traceable update says so inside jit (RMSprop on cpu: no fused update kernel there)', (ctx) => {
  const previous = t.currentBackendName();
  t.setBackend('cpu');
  ctx.after(() => t.setBackend(previous));
  const w = t.randn([3]).requiresGrad_();
  const o = new RMSprop([w], { lr: 0.01 });
  const f = jit((x: t.Tensor) => { o.zeroGrad(); const l = t.sum(t.mul(w, x)); l.backward(); o.step(); return l; });
  assert.throws(() => f(t.ones([3])), /RMSprop.step inside a traced \(jit\) function: a float32 parameter of shape \[3\] on backend 'cpu' has no fused update kernel/);
});

test('on cpu the whole Adam training step (forward, backward, update) is compiled and optimized as one graph', (ctx) => {
  const previous = t.currentBackendName();
  t.setBackend('cpu');
  ctx.after(() => t.setBackend(previous));
  t.manualSeed(6);
  const pe = mlpParams(6, 12, 3), pc = cloneParams(pe);
  const { compiled } = compare(optimizers[1]![1], pe, pc, mlpLoss, t.randn([8, 6]), t.randn([8, 3]), 1e-5);
  const { traced, optimized } = compiled.graphs()[0]!;
  assert.ok(optimized !== undefined, 'compiled by the graph compiler');
  assert.ok(optimized.nodes.length < traced.nodes.length, `optimized ${optimized.nodes.length} nodes vs traced ${traced.nodes.length}`);
  // The optimizer state is read live (parameters of the graph), never folded into constants.
  const live = new Set(traced.parameters.values());
  const oc = [...traced.writes].map((w) => w.target).filter((x) => !tensorsOf(pc).includes(x));
  assert.ok(oc.length >= 2, 'moment buffers are written');
  for (const s of oc) assert.ok(live.has(s), 'a written state tensor is a live parameter of the graph');
});

test('eager and compiled steps of the same optimizer can alternate (shared state tensors and JS counters)', () => {
  for (const make of [optimizers[0]![1], optimizers[1]![1]]) {
    t.manualSeed(7);
    const pe = mlpParams(4, 6, 2), pc = cloneParams(pe);
    const oe = make(tensorsOf(pe)), oc = make(tensorsOf(pc));
    const x = t.randn([5, 4]), y = t.randn([5, 2]);
    const run = (o: Optimizer<BaseOptions>, p: object) => (a: t.Tensor, b: t.Tensor): t.Tensor => { o.zeroGrad(); const l = mlpLoss(p, a, b); l.backward(); o.step(); return l; };
    const reference = run(oe, pe), plain = run(oc, pc), compiled = jit(run(oc, pc));
    // eager, eager, compiled (trace), compiled, eager, compiled, ...
    const schedule = [plain, plain, compiled, compiled, plain, compiled, plain, plain, compiled, compiled];
    schedule.forEach((f, i) => {
      const le = reference(x, y).item(), lc = f(x, y).item();
      assert.ok(Math.abs(le - lc) <= 1e-5 * Math.max(1, Math.abs(le)), `step ${i}: ${le} vs ${lc}`);
    });
    assert.equal(compiled.stats().traces, 1);
  }
});

test('a replay abandoned by a failed guard does not advance the optimizer twice', () => {
  t.manualSeed(8);
  const pe = mlpParams(4, 6, 2), pc = cloneParams(pe);
  const oe = new Adam(tensorsOf(pe), { lr: 0.02 }), oc = new Adam(tensorsOf(pc), { lr: 0.02 });
  const run = (o: Adam, p: MLP) => (a: t.Tensor, b: t.Tensor): t.Tensor => {
    o.zeroGrad();
    const scale = t.sum(a).item() > 0 ? 1 : 2; // a value read: a guard inside the graph
    const l = t.mul(mse(mlp(p, a), b), scale);
    l.backward();
    o.step();
    return l;
  };
  const eager = run(oe, pe), compiled = jit(run(oc, pc));
  const y = t.randn([5, 2]);
  for (let i = 0; i < 4; i++) {
    const x = t.randn([5, 4]); // a new value each call: the guard fails, the step is traced again
    const le = eager(x, y).item(), lc = compiled(x, y).item();
    assert.ok(Math.abs(le - lc) <= 1e-5, `step ${i}: ${le} vs ${lc}`);
  }
  assert.ok(compiled.stats().traceReasons.some((r) => r.startsWith('guard failed')), compiled.stats().traceReasons.join('; '));
  assert.equal(oc.state.get(pc.w1)!.step, 4);
});

test('SGD\'s momentum may change between replays (OneCycleLR cycles it), on the fused (wasm) and op-by-op (cpu) paths; zero ↔ non-zero is refused', (ctx) => {
  const previous = t.currentBackendName();
  ctx.after(() => t.setBackend(previous));
  for (const backend of ['wasm', 'cpu']) {
    t.setBackend(backend);
    t.manualSeed(6);
    const pe = mlpParams(4, 6, 2), pc = cloneParams(pe);
    const oe = new SGD(tensorsOf(pe), { lr: 0.05, momentum: 0.9 }), oc = new SGD(tensorsOf(pc), { lr: 0.05, momentum: 0.9 });
    const x = t.randn([5, 4]), y = t.randn([5, 2]);
    const run = (o: SGD, p: MLP) => (a: t.Tensor, b: t.Tensor): t.Tensor => { o.zeroGrad(); const l = mse(mlp(p, a), b); l.backward(); o.step(); return l; };
    const eager = run(oe, pe), compiled = jit(run(oc, pc));
    for (let i = 0; i < 5; i++) {
      oe.paramGroups[0]!.momentum = oc.paramGroups[0]!.momentum = 0.95 - 0.05 * i;
      const le = eager(x, y).item(), lc = compiled(x, y).item();
      assert.ok(Math.abs(le - lc) <= 1e-5, `${backend} step ${i}: ${le} vs ${lc}`);
    }
    assert.equal(compiled.stats().traces, 1);
    oc.paramGroups[0]!.momentum = 0;
    assert.throws(() => compiled(x, y), /momentum changed between zero and non-zero \(0\)/);
  }
});
