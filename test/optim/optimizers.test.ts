import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as t from '../../src/index.js';
import { Adagrad, Adam, AdamW, RMSprop, SGD, type Optimizer, type BaseOptions } from '../../src/optim/index.js';
import { Parameter } from '../../src/nn/module.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { crossEntropy } from '../../src/ops/nn/index.js';

// Trajectories from PyTorch 1.13 (test/optim/fixtures/generate.py), float64.
const ref = JSON.parse(readFileSync(new URL('./fixtures/optim-reference.json', import.meta.url), 'utf8')) as {
  p0: number[];
  grads: number[][];
  optimizers: Record<string, { options: { kind: string } & Record<string, unknown>; params: number[][] }>;
};

function build(kind: string, params: t.Tensor[], options: Record<string, unknown>): Optimizer<BaseOptions> {
  const o = options as never;
  switch (kind) {
    case 'SGD': return new SGD(params, o) as unknown as Optimizer<BaseOptions>;
    case 'Adam': return new Adam(params, o) as unknown as Optimizer<BaseOptions>;
    case 'AdamW': return new AdamW(params, o) as unknown as Optimizer<BaseOptions>;
    case 'RMSprop': return new RMSprop(params, o) as unknown as Optimizer<BaseOptions>;
    case 'Adagrad': return new Adagrad(params, o) as unknown as Optimizer<BaseOptions>;
  }
  throw new Error(kind);
}

function runSteps(opt: Optimizer<BaseOptions>, p: t.Tensor, from: number, to: number): number[][] {
  const out: number[][] = [];
  for (let s = from; s < to; s++) {
    p.grad = t.tensor(ref.grads[s]!, { dtype: 'float64' }).add(p.detach().mul(0.5));
    opt.step();
    out.push(p.toArray() as number[]);
  }
  return out;
}

for (const [name, { options, params: expected }] of Object.entries(ref.optimizers)) {
  test(`${name}: the parameter trajectory matches PyTorch's to 1e-12`, () => {
    const { kind, ...opts } = options;
    const p = new Parameter(t.tensor(ref.p0, { dtype: 'float64' }));
    const opt = build(kind, [p], opts);
    const got = runSteps(opt, p, 0, expected.length);
    got.forEach((row, s) => row.forEach((v, i) => assert.ok(Math.abs(v - expected[s]![i]!) < 1e-12, `${name} step ${s} [${i}]: ${v} vs ${expected[s]![i]}`)));
  });

  test(`${name}: stopping after 2 steps and restoring the state dict into a new optimizer continues identically`, () => {
    const { kind, ...opts } = options;
    const p = new Parameter(t.tensor(ref.p0, { dtype: 'float64' }));
    const first = build(kind, [p], opts);
    runSteps(first, p, 0, 2);
    const saved = first.stateDict();
    const p2 = new Parameter(p.detach().clone());
    const second = build(kind, [p2], opts);
    second.loadStateDict(saved);
    const resumed = runSteps(second, p2, 2, 5);
    assert.deepEqual(resumed, expected.slice(2).map((r, s) => resumed[s]!.map((v, i) => (Math.abs(v - r[i]!) < 1e-12 ? v : r[i]!))));
    // The original optimizer keeps going to the very same numbers.
    assert.deepEqual(runSteps(first, p, 2, 5), resumed);
  });
}

test('float32 parameters are updated in their own storage and stay float32', () => {
  const p = new Parameter(t.tensor([1, 2, 3], { dtype: 'float32' }));
  const storage = p.storage;
  const opt = new Adam([p], { lr: 0.1 });
  p.grad = t.tensor([1, -1, 0.5]);
  opt.step();
  assert.equal(p.storage, storage);
  assert.equal(p.dtype, 'float32');
  // First Adam step moves each element by lr in the gradient's sign direction.
  const v = p.toArray() as number[];
  assert.ok(Math.abs(v[0]! - 0.9) < 1e-6 && Math.abs(v[1]! - 2.1) < 1e-6 && Math.abs(v[2]! - 2.9) < 1e-6);
});

test('parameter groups take their own options; parameters without gradients are skipped', () => {
  const a = new Parameter(t.tensor([1], { dtype: 'float64' }));
  const b = new Parameter(t.tensor([1], { dtype: 'float64' }));
  const c = new Parameter(t.tensor([1], { dtype: 'float64' }));
  const opt = new SGD([{ params: [a] }, { params: [b, c], lr: 0.5 }], { lr: 0.1 });
  a.grad = t.tensor([1], { dtype: 'float64' });
  b.grad = t.tensor([1], { dtype: 'float64' });
  opt.step();
  assert.deepEqual([a.item(), b.item(), c.item()], [0.9, 0.5, 1]);
  assert.equal(opt.paramGroups[1]!.lr, 0.5);
  assert.throws(() => new SGD([{ params: [a] }, { params: [a] }], { lr: 1 }), /more than one group/);
  assert.throws(() => new SGD([a], { lr: 0.1, nesterov: true }), /Nesterov momentum needs momentum > 0/);
  assert.throws(() => new Adam([a], { betas: [1.2, 0.9] }), /betas must lie in \[0, 1\)/);
  assert.throws(() => new SGD([], { lr: 0.1 }), /empty parameter list/);
});

test('gradient accumulation over micro-batches gives the same update as the full batch', () => {
  t.manualSeed(3);
  const x = t.randn([8, 5], { dtype: 'float64' });
  const y = t.tensor([0, 1, 2, 0, 1, 2, 0, 1], { dtype: 'int32' });
  const make = () => { t.manualSeed(7); return new Linear(5, 3, { dtype: 'float64' }); };
  const full = make();
  const fullOpt = new SGD(full.parameters(), { lr: 0.1, momentum: 0.9 });
  crossEntropy(full.call(x), y).backward();
  fullOpt.step();

  const micro = make();
  const microOpt = new SGD(micro.parameters(), { lr: 0.1, momentum: 0.9 });
  for (let k = 0; k < 4; k++) {
    const xs = x.narrow(0, 2 * k, 2), ys = y.narrow(0, 2 * k, 2);
    // Each micro-batch's mean loss is a quarter of the full batch's mean.
    crossEntropy(micro.call(xs), ys).div(4).backward();
  }
  microOpt.step();
  const a = full.parameters().flatMap((p) => [...p.data()]);
  const b = micro.parameters().flatMap((p) => [...p.data()]);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-13, `element ${i}: ${v} vs ${b[i]}`));
  assert.ok(a.some((v, i) => v !== make().parameters().flatMap((p) => [...p.data()])[i]), 'the step changed the parameters');
});
