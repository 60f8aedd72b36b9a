import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as t from '../../src/index.js';
import { Adam, SGD, StepLR, ExponentialLR, CosineAnnealingLR, LinearLR, OneCycleLR, LambdaLR, SequentialLR, warmupCosine, clipGradNorm, clipGradValue, type LRScheduler } from '../../src/optim/index.js';
import { Parameter } from '../../src/nn/module.js';

const ref = JSON.parse(readFileSync(new URL('./fixtures/optim-reference.json', import.meta.url), 'utf8')) as {
  schedulers: Record<string, { lr: number[]; momentum: number[] }>;
};

const param = () => new Parameter(t.zeros([1], { dtype: 'float64' }));
type Opt = SGD | Adam;
const cases: Record<string, [() => Opt, (o: Opt) => LRScheduler]> = {
  step: [() => new SGD([param()], { lr: 0.1, momentum: 0.9 }), (o) => new StepLR(o, 3, 0.5)],
  exponential: [() => new SGD([param()], { lr: 0.1, momentum: 0.9 }), (o) => new ExponentialLR(o, 0.9)],
  cosine: [() => new SGD([param()], { lr: 0.1, momentum: 0.9 }), (o) => new CosineAnnealingLR(o, 8, 0.001)],
  linear: [() => new SGD([param()], { lr: 0.1, momentum: 0.9 }), (o) => new LinearLR(o, 0.1, 1, 4)],
  onecycle_sgd: [() => new SGD([param()], { lr: 0.1, momentum: 0.9 }), (o) => new OneCycleLR(o, 1, { totalSteps: 20 })],
  onecycle_adam_linear: [() => new Adam([param()], { lr: 0.1 }), (o) => new OneCycleLR(o, 0.5, { totalSteps: 10, pctStart: 0.4, annealStrategy: 'linear' })],
};

for (const [name, [makeOpt, makeSched]] of Object.entries(cases)) {
  test(`${name}: learning rates (and cycled momentum) match PyTorch's`, () => {
    const opt = makeOpt();
    const sched = makeSched(opt);
    const { lr, momentum } = ref.schedulers[name]!;
    lr.forEach((expected, s) => {
      const g = opt.paramGroups[0]! as { lr: number; momentum?: number; betas?: [number, number] };
      assert.ok(Math.abs(g.lr - expected) < 1e-12, `step ${s}: lr ${g.lr} vs ${expected}`);
      const m = g.betas ? g.betas[0] : g.momentum!;
      assert.ok(Math.abs(m - momentum[s]!) < 1e-12, `step ${s}: momentum ${m} vs ${momentum[s]}`);
      sched.step();
    });
  });
}

test('a scheduler restored from its state dict continues the schedule', () => {
  const opt = new SGD([param()], { lr: 1, momentum: 0.9 });
  const s = new OneCycleLR(opt, 1, { totalSteps: 10 });
  for (let i = 0; i < 4; i++) s.step();
  const saved = s.stateDict();
  const opt2 = new SGD([param()], { lr: 1, momentum: 0.9 });
  const s2 = new OneCycleLR(opt2, 1, { totalSteps: 10 });
  s2.loadStateDict(saved);
  assert.equal(opt2.paramGroups[0]!.lr, opt.paramGroups[0]!.lr);
  s.step();
  s2.step();
  assert.equal(opt2.paramGroups[0]!.lr, opt.paramGroups[0]!.lr);
  assert.deepEqual(s2.getLastLr(), s.getLastLr());
});

test('LambdaLR with warmupCosine warms up linearly then decays; SequentialLR switches at milestones', () => {
  const opt = new SGD([param()], { lr: 1 });
  const s = new LambdaLR(opt, warmupCosine(4, 12));
  const lrs: number[] = [];
  for (let i = 0; i < 13; i++) { lrs.push(opt.paramGroups[0]!.lr); s.step(); }
  assert.deepEqual(lrs.slice(0, 4), [0.25, 0.5, 0.75, 1]);
  assert.ok(Math.abs(lrs[8]! - 0.5) < 1e-12 && lrs[12]! < 1e-12);
  const opt2 = new SGD([param()], { lr: 1 });
  const seq = new SequentialLR(opt2, [new LinearLR(opt2, 0.5, 1, 2), new ExponentialLR(opt2, 0.5)], [2]);
  const got: number[] = [];
  for (let i = 0; i < 5; i++) { got.push(opt2.paramGroups[0]!.lr); seq.step(); }
  assert.deepEqual(got, [0.5, 0.75, 1, 0.5, 0.25]);
});

test('clipGradNorm scales all gradients jointly and returns the norm before clipping; clipGradValue clamps', () => {
  const a = new Parameter(t.zeros([2], { dtype: 'float64' }));
  const b = new Parameter(t.zeros([1], { dtype: 'float64' }));
  a.grad = t.tensor([3, 0], { dtype: 'float64' });
  b.grad = t.tensor([4], { dtype: 'float64' });
  const norm = clipGradNorm([a, b], 1);
  assert.equal(norm, 5);
  const scale = 1 / (5 + 1e-6);
  assert.ok(Math.abs((a.grad!.toArray() as number[])[0]! - 3 * scale) < 1e-12 && Math.abs(b.grad!.item() - 4 * scale) < 1e-12);
  // Below the limit nothing changes.
  const before = a.grad!;
  clipGradNorm([a, b], 10);
  assert.equal(a.grad, before);
  assert.equal(clipGradNorm([a, b], 10, Infinity), (b.grad!.item()));
  a.grad = t.tensor([-3, 0.5], { dtype: 'float64' });
  clipGradValue([a], 1);
  assert.deepEqual(a.grad!.toArray(), [-1, 0.5]);
});

test('clipGradNorm with asTensor reads nothing: the same clipping as a tensor, and a jitted step with it is traced once', () => {
  const grads = [[3, 0], [4]];
  const make = (): Parameter[] => grads.map((g) => { const p = new Parameter(t.zeros([g.length])); p.grad = t.tensor(g); return p; });
  const eager = make(), lazy = make();
  const norm = clipGradNorm(eager, 1);
  const normT = clipGradNorm(lazy, 1, 2, { asTensor: true });
  assert.ok(normT instanceof t.Tensor && normT.rank === 0);
  assert.ok(Math.abs(normT.item() - norm) < 1e-6 && Math.abs(norm - 5) < 1e-6);
  lazy.forEach((p, i) => assert.deepEqual(Array.from(p.grad!.data()), Array.from(eager[i]!.grad!.data())));
  // Below the limit the gradients are multiplied by exactly 1.
  const below = make();
  clipGradNorm(below, 10, Infinity, { asTensor: true });
  assert.deepEqual(below.map((p) => Array.from(p.grad!.data())), grads);

  // A training step with clipping, eager and under jit, from the same start.
  const run = (jitted: boolean): { losses: number[]; traces: number } => {
    t.manualSeed(5);
    const model = new t.nn.Linear(6, 3);
    const opt = new Adam(model.parameters(), { lr: 0.05 });
    const x = t.randn([8, 6]), y = t.randn([8, 3]);
    const body = (): t.Tensor => {
      opt.zeroGrad();
      const loss = t.mseLoss(model.call(x), y);
      loss.backward();
      clipGradNorm(model.parameters(), 0.05, 2, { asTensor: true });
      opt.step();
      return loss;
    };
    const step = jitted ? t.jit(body) : body;
    const losses = Array.from({ length: 5 }, () => step().item());
    return { losses, traces: jitted ? (step as ReturnType<typeof t.jit>).stats().traces : 0 };
  };
  const a = run(false), b = run(true);
  b.losses.forEach((l, i) => assert.ok(Math.abs(l - a.losses[i]!) < 1e-5, `step ${i}: ${l} vs ${a.losses[i]}`));
  assert.equal(b.traces, 1);
});
