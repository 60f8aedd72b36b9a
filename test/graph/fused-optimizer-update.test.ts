// A jitted training step's optimizer.step() as one fused `optimizerUpdate` node per parameter on the
// wasm backend (src/graph/optimizer-update-op.ts, traced-optimizers.ts): the same kernel the eager
// step runs (Backend.optimizerUpdate) on the same values, so the jitted losses and parameters equal
// eager's BIT FOR BIT, as long as the jitted forward/backward gives eager's gradients bit for bit
// (it does on these MLP steps: fusion keeps the wasm backend's bits, docs/compiler.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit } from '../../src/index.js';
import { SGD, Adam, AdamW, RMSprop, Adagrad, StepLR, type Optimizer, type BaseOptions } from '../../src/optim/index.js';
import { optimizerUpdateCounts } from '../../src/graph/optimizer-update-op.js';
import { mlp, mlpParams, mse, type MLP } from './models.js';

const tensorsOf = (p: MLP): t.Tensor[] => [p.w1, p.b1, p.w2, p.b2];
function cloneParams(p: MLP): MLP {
  const c = (x: t.Tensor): t.Tensor => t.clone(x).detach().requiresGrad_();
  return { w1: c(p.w1), b1: c(p.b1), w2: c(p.w2), b2: c(p.b2) };
}
type MakeOpt = (params: t.Tensor[]) => Optimizer<BaseOptions>;
const as = (o: unknown): Optimizer<BaseOptions> => o as Optimizer<BaseOptions>;

const cases: [string, MakeOpt][] = [
  ['Adam', (ps) => as(new Adam(ps, { lr: 0.01 }))],
  ['Adam amsgrad + weight decay', (ps) => as(new Adam(ps, { lr: 0.01, amsgrad: true, weightDecay: 0.01 }))],
  ['AdamW', (ps) => as(new AdamW(ps, { lr: 0.01, weightDecay: 0.05 }))],
  ['SGD momentum + nesterov + weight decay', (ps) => as(new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }))],
  ['SGD momentum + dampening', (ps) => as(new SGD(ps, { lr: 0.05, momentum: 0.8, dampening: 0.1 }))],
  ['SGD plain, maximize', (ps) => as(new SGD(ps, { lr: 0.05, maximize: true }))],
  ['RMSprop momentum + centered + weight decay', (ps) => as(new RMSprop(ps, { lr: 0.005, momentum: 0.5, centered: true, weightDecay: 1e-3 }))],
  ['RMSprop', (ps) => as(new RMSprop(ps, { lr: 0.005 }))],
  ['Adagrad lrDecay + initial accumulator', (ps) => as(new Adagrad(ps, { lr: 0.05, lrDecay: 0.01, initialAccumulatorValue: 0.1, weightDecay: 1e-3 }))],
];

const stepOf = (o: Optimizer<BaseOptions>, p: MLP) => (x: t.Tensor, y: t.Tensor): t.Tensor => {
  o.zeroGrad();
  const l = mse(mlp(p, x), y);
  l.backward();
  o.step();
  return l;
};

const STEPS = 6;

function onBackend(name: string, ctx: { after(fn: () => void): void }): void {
  const previous = t.currentBackendName();
  t.setBackend(name);
  ctx.after(() => t.setBackend(previous));
}

for (const [name, make] of cases) {
  test(`wasm: jitted ${name} step = eager step bit for bit over ${STEPS} steps, one fused update per parameter run in place`, (ctx) => {
    onBackend('wasm', ctx);
    t.manualSeed(11);
    const pe = mlpParams(6, 12, 3), pc = cloneParams(pe);
    const x = t.randn([8, 6]), y = t.randn([8, 3]);
    const eager = stepOf(make(tensorsOf(pe)), pe), compiled = jit(stepOf(make(tensorsOf(pc)), pc));
    const inPlaceBefore = optimizerUpdateCounts.inPlace;
    for (let i = 0; i < STEPS; i++) {
      const le = eager(x, y).item(), lc = compiled(x, y).item();
      assert.equal(lc, le, `step ${i}: loss`);
      tensorsOf(pc).forEach((p, k) => assert.deepEqual(p.data(), tensorsOf(pe)[k]!.data(), `step ${i}: parameter ${k}`));
    }
    const s = compiled.stats();
    assert.equal(s.traces, 1, s.traceReasons.join('; '));
    const { traced, optimized } = compiled.graphs()[0]!;
    const updates = (g: t.Graph): number => g.nodes.filter((n) => n.op === 'optimizerUpdate').length;
    assert.equal(updates(traced), 4, 'one optimizerUpdate node per parameter');
    assert.equal(updates(optimized!), 4, 'the passes keep every update');
    // Replays (all calls but the trace) ran each parameter's update in place, once.
    assert.equal(optimizerUpdateCounts.inPlace - inPlaceBefore, 4 * (STEPS - 1));
  });
}

test('wasm: a scheduler (and a direct lr change) between jitted steps is honoured, without retracing', (ctx) => {
  onBackend('wasm', ctx);
  t.manualSeed(12);
  const pe = mlpParams(6, 12, 3), pc = cloneParams(pe);
  const x = t.randn([8, 6]), y = t.randn([8, 3]);
  const oe = new Adam(tensorsOf(pe), { lr: 0.02 }), oc = new Adam(tensorsOf(pc), { lr: 0.02 });
  const se = new StepLR(oe, 2, 0.5), sc = new StepLR(oc, 2, 0.5);
  const eager = stepOf(as(oe), pe), compiled = jit(stepOf(as(oc), pc));
  for (let i = 0; i < 6; i++) {
    assert.equal(compiled(x, y).item(), eager(x, y).item(), `step ${i}`);
    se.step();
    sc.step();
    if (i === 3) oe.paramGroups[0]!.lr = oc.paramGroups[0]!.lr = 0.1;
  }
  tensorsOf(pc).forEach((p, k) => assert.deepEqual(p.data(), tensorsOf(pe)[k]!.data(), `parameter ${k}`));
  assert.equal(compiled.stats().traces, 1);
  // The lr did change, and made a difference: a run that ignored it would end elsewhere.
  assert.notEqual(oc.paramGroups[0]!.lr, 0.02);
});

test('wasm: eager and jitted steps of one optimizer alternate on the same state (fused updates both ways)', (ctx) => {
  onBackend('wasm', ctx);
  t.manualSeed(13);
  for (const [, make] of [cases[0]!, cases[3]!, cases[8]!]) {
    const pe = mlpParams(4, 6, 2), pc = cloneParams(pe);
    const x = t.randn([5, 4]), y = t.randn([5, 2]);
    const oc = make(tensorsOf(pc));
    const reference = stepOf(make(tensorsOf(pe)), pe), plain = stepOf(oc, pc), compiled = jit(stepOf(oc, pc));
    [plain, compiled, compiled, plain, compiled, plain, plain, compiled].forEach((f, i) => {
      assert.equal(f(x, y).item(), reference(x, y).item(), `step ${i}`);
    });
    tensorsOf(pc).forEach((p, k) => assert.deepEqual(p.data(), tensorsOf(pe)[k]!.data(), `parameter ${k}`));
  }
});

test('wasm: a parameter read after step() in the same jitted function sees the updated value', (ctx) => {
  onBackend('wasm', ctx);
  t.manualSeed(14);
  const pe = mlpParams(4, 6, 2), pc = cloneParams(pe);
  const x = t.randn([5, 4]), y = t.randn([5, 2]);
  const oe = new Adam(tensorsOf(pe), { lr: 0.05 }), oc = new Adam(tensorsOf(pc), { lr: 0.05 });
  const run = (o: Adam, p: MLP) => (a: t.Tensor, b: t.Tensor): t.Tensor[] => {
    const l = stepOf(as(o), p)(a, b);
    return [l, t.mul(p.w2, 2), mse(mlp(p, a), b)]; // reads of w2 and of every parameter after the update
  };
  const eager = run(oe, pe), compiled = jit(run(oc, pc));
  for (let i = 0; i < 4; i++) {
    const re = eager(x, y), rc = compiled(x, y);
    re.forEach((v, k) => assert.deepEqual(rc[k]!.data(), v.data(), `step ${i}, result ${k}`));
  }
});

test('cpu: nothing changes (no optimizerUpdate node; the op-by-op traced update as before)', (ctx) => {
  onBackend('cpu', ctx);
  t.manualSeed(15);
  const pe = mlpParams(6, 12, 3), pc = cloneParams(pe);
  const x = t.randn([8, 6]), y = t.randn([8, 3]);
  const before = { ...optimizerUpdateCounts };
  const eager = stepOf(cases[0]![1](tensorsOf(pe)), pe), compiled = jit(stepOf(cases[0]![1](tensorsOf(pc)), pc));
  for (let i = 0; i < 4; i++) {
    const le = eager(x, y).item(), lc = compiled(x, y).item();
    assert.ok(Math.abs(le - lc) <= 1e-5 * Math.max(1, Math.abs(le)), `step ${i}: ${le} vs ${lc}`);
  }
  const { traced } = compiled.graphs()[0]!;
  assert.equal(traced.nodes.filter((n) => n.op === 'optimizerUpdate').length, 0);
  assert.ok(traced.nodes.some((n) => n.op === 'sqrt'), 'the Adam update is written with ops');
  assert.deepEqual({ ...optimizerUpdateCounts }, before);
});
