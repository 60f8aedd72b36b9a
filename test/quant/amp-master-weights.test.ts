// float32 master weights (MasterWeightOptimizer) for bfloat16/float16 models: why they exist (a
// half-precision weight loses every update smaller than half its spacing), that they track a float32
// run, their state dict, and their use with GradScaler; Module.to(dtype).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { GradScaler, MasterWeightOptimizer, autocast } from '../../src/quant/index.js';
import { Adam } from '../../src/optim/adam.js';
import { SGD } from '../../src/optim/sgd.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { Sequential } from '../../src/nn/containers.js';
import { Embedding } from '../../src/nn/layers/dropout.js';
import { BatchNorm1d } from '../../src/nn/layers/normalization.js';
import { mseLoss } from '../../src/ops/nn/index.js';
import { forEachBackend } from '../helpers/backends.js';

const values = (x: t.Tensor): number[] => Array.from(x.data());

forEachBackend('master weights', () => {
  it('without master weights a bfloat16 weight loses every small Adam update; with them the updates add up', () => {
    const run = (master: boolean): number[] => {
      const w = t.tensor([1, 1, 1], { dtype: 'bfloat16' }).requiresGrad_(true);
      const opt = master ? new MasterWeightOptimizer([w], (m) => new Adam(m, { lr: 1e-3 })) : new Adam([w], { lr: 1e-3 });
      for (let i = 0; i < 10; i++) {
        opt.zeroGrad();
        t.sum(t.mul(w, t.tensor([1, 2, 3], { dtype: 'bfloat16' }))).backward();
        opt.step();
      }
      return values(w);
    };
    // Adam moves each weight by ~lr = 1e-3 per step; bfloat16's spacing at 1.0 is 2^-7 (below 1: 2^-8),
    // so 1 − 1e-3 rounds back to 1 every time.
    assert.deepEqual(run(false), [1, 1, 1]);
    // With float32 masters the ten steps move the master to ~0.990, whose nearest bfloat16 is 0.98828125.
    assert.deepEqual(run(true), [0.98828125, 0.98828125, 0.98828125]);
  });

  it('a bfloat16 model trained by Adam with master weights tracks the float32 run; without them it drifts', () => {
    const g = new t.Generator(7);
    const x = t.randn([32, 8], { generator: g });
    const trueW = t.randn([8, 1], { generator: g });
    const y = t.add(t.matmul(x, trueW), 0.1);
    const init = () => { t.manualSeed(4); return new Linear(8, 1); };
    const train = (kind: 'float32' | 'master' | 'plain'): { weights: number[]; loss: number } => {
      const model = init();
      if (kind !== 'float32') model.to('bfloat16');
      else { model.to('bfloat16'); model.to('float32'); } // the same (rounded) starting point
      const opt = kind === 'master' ? new MasterWeightOptimizer(model.parameters(), (m) => new Adam(m, { lr: 2e-3 })) : new Adam(model.parameters(), { lr: 2e-3 });
      let loss = 0;
      for (let i = 0; i < 150; i++) {
        opt.zeroGrad();
        // The forward runs in the parameters' dtype; the loss in float32 (as autocast would).
        const l = mseLoss(t.cast(model.call(t.cast(x, model.weight.dtype)), 'float32'), y);
        l.backward();
        opt.step();
        loss = l.item();
      }
      return { weights: [...values(model.weight), ...values(model.bias!)], loss };
    };
    const f32 = train('float32'), master = train('master'), plain = train('plain');
    const dev = (r: { weights: number[] }) => Math.max(...r.weights.map((v, i) => Math.abs(v - f32.weights[i]!)));
    // Within a few bfloat16 spacings (weights are O(1): spacing ≤ 2^-7) of the float32 run.
    assert.ok(dev(master) < 0.03, `master weights deviate by ${dev(master)}`);
    assert.ok(dev(plain) > 3 * dev(master), `plain bfloat16 deviates by ${dev(plain)}, master by ${dev(master)}`);
    assert.ok(Math.abs(master.loss - f32.loss) < 0.1 * f32.loss + 0.01, `final loss: master ${master.loss}, float32 ${f32.loss}`);
  });

  it('keeps float32 optimizer state, writes back in place, and round-trips its state dict (masters included)', () => {
    t.manualSeed(1);
    const model = new Sequential(new Linear(4, 3), new Linear(3, 2)).to('bfloat16');
    const weight0 = model.parameters()[0]!;
    const opt = new MasterWeightOptimizer(model.parameters(), (m) => new Adam(m, { lr: 1e-2 }));
    const x = t.randn([5, 4], { dtype: 'bfloat16' });
    const step = () => { opt.zeroGrad(); t.sum(t.cast(model.call(x), 'float32')).backward(); opt.step(); };
    step();
    assert.equal(model.parameters()[0], weight0, 'the model keeps its parameter tensors');
    assert.equal(weight0.dtype, 'bfloat16');
    for (const [, st] of opt.inner.state) for (const v of Object.values(st)) if (v instanceof t.Tensor) assert.equal(v.dtype, 'float32');
    opt.masters.forEach((m, i) => assert.deepEqual(values(t.cast(m, 'bfloat16')), values(model.parameters()[i]!)));
    const sd = opt.stateDict();
    assert.ok(sd.state['0']!.master instanceof t.Tensor);
    const masters = opt.masters.map(values);
    // A fresh optimizer over the same model, loaded: the same masters (not the rounded weights) and the same next step.
    const again = new MasterWeightOptimizer(model.parameters(), (m) => new Adam(m, { lr: 1e-2 }));
    again.loadStateDict(sd);
    assert.deepEqual(again.masters.map(values), masters);
    assert.deepEqual(values(again.inner.state.get(again.masters[0]!)!.expAvg as t.Tensor), values(opt.inner.state.get(opt.masters[0]!)!.expAvg as t.Tensor));
    // A scheduler-style change of lr on the wrapper reaches the inner optimizer.
    opt.paramGroups[0]!.lr = 0.5;
    assert.equal(opt.inner.paramGroups[0]!.lr, 0.5);
    assert.throws(() => new MasterWeightOptimizer(model.parameters(), (m) => new Adam(m.slice(1))), /left out the master of parameter 0/);
  });

  it('with GradScaler: float16 weights, gradients unscaled in float32 on the masters, overflow skips the step', () => {
    const w = t.tensor([0.5, -0.25], { dtype: 'float16' }).requiresGrad_(true);
    const opt = new MasterWeightOptimizer([w], (m) => new SGD(m, { lr: 1 }));
    const scaler = new GradScaler({ initScale: 1024 });
    scaler.scale(t.sum(t.mul(t.cast(w, 'float32'), t.tensor([1e-6, 2e-6])))).backward();
    scaler.unscale_(opt);
    const g = values(opt.masters[0]!.grad!);
    assert.equal(opt.masters[0]!.grad!.dtype, 'float32');
    [1e-6, 2e-6].forEach((v, i) => assert.ok(Math.abs(g[i]! - v) <= 2e-3 * v, `master grad ${g[i]} vs ${v}`));
    scaler.step(opt);
    scaler.update();
    assert.deepEqual(values(w), [0.5, -0.25], 'a 1e-6 step is below float16 spacing: the weight stays, the master moves');
    assert.ok(values(opt.masters[0]!)[0]! < 0.5);
    opt.zeroGrad();
    scaler.scale(t.sum(t.mul(t.cast(w, 'float32'), t.tensor([Infinity, 0])))).backward();
    const before = values(opt.masters[0]!);
    scaler.step(opt);
    scaler.update();
    assert.deepEqual(values(opt.masters[0]!), before);
    assert.equal(scaler.getScale(), 512);
  });
});

it('Module.to(dtype) casts floating parameters and buffers, keeps integer buffers and ties, and back', () => {
  t.manualSeed(2);
  const emb = new Embedding(10, 4);
  const head = new Linear(4, 10, { bias: false });
  head.weight = emb.weight; // tied
  const bn = new BatchNorm1d(4);
  const model = new Sequential(emb, head, bn);
  const before = values(emb.weight);
  model.to('bfloat16');
  assert.equal(emb.weight.dtype, 'bfloat16');
  assert.equal(head.weight, emb.weight, 'tied parameters stay tied');
  assert.ok(emb.weight instanceof t.Tensor && emb.weight.requiresGrad);
  const buffers = Object.fromEntries(model.namedBuffers());
  for (const [name, b] of Object.entries(buffers)) assert.equal(b.dtype, name.endsWith('num_batches_tracked') ? 'int32' : 'bfloat16', name);
  values(emb.weight).forEach((v, i) => assert.ok(Math.abs(v - before[i]!) <= 2 ** -8 * Math.abs(before[i]!)));
  model.to('float32');
  assert.equal(emb.weight.dtype, 'float32');
  assert.throws(() => model.to('int32'), /floating dtype/);
  // AUTOCAST with a bfloat16 model: products in bfloat16, loss in float32.
  const out = autocast({ dtype: 'bfloat16' }, () => mseLoss(model.to('bfloat16').get(1).call(t.randn([2, 4])), t.zeros([2, 10])));
  assert.equal(out.dtype, 'float32');
});

forEachBackend('optimizer-state offload (masterBackend)', (backend) => {
  it('keeps masters and Adam\'s state on the master backend and trains as plain Adam does', () => {
    const host = backend === 'cpu' ? 'wasm' : 'cpu';
    const g = new t.Generator(11);
    const x = t.randn([16, 6], { generator: g }), y = t.randn([16, 3], { generator: g });
    const run = (offload: boolean): { params: number[][]; losses: number[]; opt: Adam | MasterWeightOptimizer } => {
      t.manualSeed(5);
      const model = new Sequential(new Linear(6, 12), new Linear(12, 3));
      const opt = offload
        ? new MasterWeightOptimizer(model.parameters(), (m) => new Adam(m, { lr: 1e-2 }), { masterBackend: host })
        : new Adam(model.parameters(), { lr: 1e-2 });
      const losses: number[] = [];
      for (let i = 0; i < 5; i++) {
        opt.zeroGrad();
        const loss = mseLoss(model.call(x), y);
        loss.backward();
        opt.step();
        losses.push(loss.item());
      }
      model.parameters().forEach((p) => assert.equal(p.backend, backend, 'the model stays on its backend'));
      return { params: model.parameters().map(values), losses, opt };
    };
    const plain = run(false), moved = run(true);
    const inner = (moved.opt as MasterWeightOptimizer).inner;
    for (const m of (moved.opt as MasterWeightOptimizer).masters) {
      assert.equal(m.backend, host);
      for (const v of Object.values(inner.state.get(m)!)) if (typeof v !== 'number') assert.equal(v.backend, host, 'Adam\'s moments live on the master backend');
    }
    // float32 Adam on one backend and the other's update kernel round differently in the last bits.
    moved.losses.forEach((l, i) => assert.ok(Math.abs(l - plain.losses[i]!) <= 1e-5 * Math.abs(plain.losses[i]!), `step ${i}: ${l} vs ${plain.losses[i]}`));
    moved.params.flat().forEach((v, i) => assert.ok(Math.abs(v - plain.params.flat()[i]!) <= 1e-5, `parameter value ${i}`));
    assert.throws(() => new MasterWeightOptimizer(run(false).opt.paramGroups[0]!.params, (m) => new Adam(m), { masterBackend: 'nope' }), /nope/);
  });
});
