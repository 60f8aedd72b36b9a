// GradScaler: PyTorch's behaviour on a scripted sequence (fixtures/grad-scaler-reference.json, from
// fixtures/generate-grad-scaler.py), skipping and backoff on inf/NaN, growth after the interval,
// unscale_ giving the true gradients, state round trips, and the misuse errors.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as t from '../../src/index.js';
import { GradScaler, autocast } from '../../src/quant/index.js';
import { SGD } from '../../src/optim/sgd.js';
import { Adam } from '../../src/optim/adam.js';
import { forEachBackend } from '../helpers/backends.js';

type Num = number | 'inf' | '-inf' | 'nan';
interface Fixture {
  options: { initScale: number; growthFactor: number; backoffFactor: number; growthInterval: number; lr: number };
  w0: number[];
  steps: { c: Num[]; unscale: boolean; newScale: number | null | undefined; scaledGrad: Num[]; unscaledGrad: Num[]; stepped: boolean; w: number[]; scaleAfter: number; growthTrackerAfter: number }[];
  stateDict: Record<string, number>;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/grad-scaler-reference.json', import.meta.url), 'utf8')) as Fixture;
const num = (v: Num): number => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === 'nan' ? NaN : v);

forEachBackend('GradScaler', () => {
  it('matches torch GradScaler step by step on a scripted sequence (inf, NaN, growth, unscale_, update(newScale))', () => {
    const o = fixture.options;
    const w = t.tensor(fixture.w0).requiresGrad_(true);
    const opt = new SGD([w], { lr: o.lr });
    const scaler = new GradScaler({ initScale: o.initScale, growthFactor: o.growthFactor, backoffFactor: o.backoffFactor, growthInterval: o.growthInterval });
    fixture.steps.forEach((s, i) => {
      opt.zeroGrad();
      const c = t.tensor(s.c.map(num));
      const loss = t.sum(t.mul(w, c));
      scaler.scale(loss).backward();
      assert.deepEqual(Array.from(w.grad!.data()), s.scaledGrad.map(num), `step ${i}: scaled gradient`);
      if (s.unscale) scaler.unscale_(opt);
      const before = Array.from(w.data());
      scaler.step(opt);
      assert.deepEqual(Array.from(w.grad!.data()), s.unscaledGrad.map(num), `step ${i}: unscaled gradient`);
      const after = Array.from(w.data());
      assert.equal(after.some((v, k) => v !== before[k]), s.stepped, `step ${i}: stepped`);
      if (s.newScale !== null && s.newScale !== undefined) scaler.update(s.newScale);
      else scaler.update();
      // SGD's p − lr·g is rounded once here (float64 arithmetic), in two steps by torch: within an ulp or two.
      after.forEach((v, k) => assert.ok(Math.abs(v - s.w[k]!) <= 2 ** -22 * Math.abs(s.w[k]!), `step ${i}: w[${k}] ${v} vs ${s.w[k]}`));
      assert.equal(scaler.getScale(), s.scaleAfter, `step ${i}: scale`);
      assert.equal(scaler.getGrowthTracker(), s.growthTrackerAfter, `step ${i}: growth tracker`);
    });
    assert.equal(scaler.skippedSteps, fixture.steps.filter((s) => !s.stepped).length);
    const sd = scaler.stateDict();
    assert.deepEqual(sd, {
      scale: fixture.stateDict.scale, growthFactor: fixture.stateDict.growth_factor, backoffFactor: fixture.stateDict.backoff_factor,
      growthInterval: fixture.stateDict.growth_interval, growthTracker: fixture.stateDict._growth_tracker,
    });
    // PyTorch's own state dict (snake_case) loads too.
    const fromTorch = new GradScaler();
    fromTorch.loadStateDict(fixture.stateDict);
    assert.deepEqual(fromTorch.stateDict(), sd);
  });

  it('an inf gradient skips the step and halves the scale; 2000 clean steps (the default) double it', () => {
    const w = t.tensor([1, 2]).requiresGrad_(true);
    const opt = new SGD([w], { lr: 0.5 });
    const scaler = new GradScaler();
    assert.equal(scaler.getScale(), 65536);
    const stepWith = (c: number[]): void => {
      opt.zeroGrad();
      scaler.scale(t.sum(t.mul(w, t.tensor(c)))).backward();
      scaler.step(opt);
      scaler.update();
    };
    stepWith([Infinity, 1]);
    assert.deepEqual(Array.from(w.data()), [1, 2]);
    assert.equal(scaler.getScale(), 32768);
    assert.equal(scaler.skippedSteps, 1);
    for (let i = 0; i < 1999; i++) stepWith([0, 0]);
    assert.equal(scaler.getScale(), 32768);
    assert.equal(scaler.getGrowthTracker(), 1999);
    stepWith([0, 0]);
    assert.equal(scaler.getScale(), 65536);
    assert.equal(scaler.getGrowthTracker(), 0);
  });

  it('unscale_ gives the true gradients (a float16 forward whose gradients would underflow unscaled)', () => {
    // d/dw of sum(w · x) · 1e-6 under float16 autocast: without scaling, the float16 products underflow.
    const w = t.tensor([[0.5], [0.25]]).requiresGrad_(true);
    const x = t.tensor([[3e-4, 2e-4]]);
    const loss = () => autocast({ dtype: 'float16' }, () => t.sum(t.mul(t.matmul(x, w), 1e-3)));
    // 2^10: the default 2^16 would overflow float16 in this backward (65536 > 65504, the largest
    // float16), which is why real runs skip their first few steps while the scale backs off.
    const scaler = new GradScaler({ initScale: 1024 });
    const opt = new SGD([w], { lr: 1 });
    scaler.scale(loss()).backward();
    scaler.unscale_(opt);
    const scaled = Array.from(w.grad!.data());
    opt.zeroGrad();
    loss().backward();
    const plain = Array.from(w.grad!.data());
    // True gradient: x · 1e-3 = [3e-7, 2e-7], below float16's smallest subnormal spacing around there.
    const truth = [3e-7, 2e-7];
    scaled.forEach((v, i) => assert.ok(Math.abs(v - truth[i]!) <= 2e-3 * truth[i]!, `scaled ${v} vs ${truth[i]}`));
    assert.ok(plain.some((v, i) => Math.abs(v - truth[i]!) > 0.05 * truth[i]!), `unscaled float16 gradients should lose precision: ${plain}`);
  });

  it('misuse is an error; a disabled scaler passes through; the state survives a round trip', () => {
    const w = t.tensor([1, 2]).requiresGrad_(true);
    const opt = new Adam([w], { lr: 0.1 });
    const scaler = new GradScaler({ growthInterval: 5 });
    assert.throws(() => scaler.unscale_(opt), /scale\(\) was never called/);
    scaler.scale(t.sum(w)).backward();
    scaler.unscale_(opt);
    assert.throws(() => scaler.unscale_(opt), /already called on this optimizer since the last update/);
    scaler.step(opt);
    assert.throws(() => scaler.step(opt), /already called/);
    scaler.update();
    assert.throws(() => scaler.update(), /no inf checks were recorded/);
    const h = t.tensor([1], { dtype: 'float16' }).requiresGrad_(true);
    const optH = new SGD([h], { lr: 0.1 });
    scaler.scale(t.sum(h)).backward();
    assert.throws(() => scaler.unscale_(optH), /float16 gradients/);

    const copy = new GradScaler();
    copy.loadStateDict(scaler.stateDict() as Record<string, number>);
    assert.deepEqual(copy.stateDict(), { scale: 65536, growthFactor: 2, backoffFactor: 0.5, growthInterval: 5, growthTracker: 1 });
    assert.throws(() => copy.loadStateDict({}), /empty/);

    const off = new GradScaler({ enabled: false });
    const l = t.sum(w);
    assert.equal(off.scale(l), l);
    assert.equal(off.getScale(), 1);
    assert.deepEqual(off.stateDict(), {});
    opt.zeroGrad();
    off.scale(t.sum(w)).backward();
    const before = Array.from(w.data());
    off.step(opt);
    off.update();
    assert.notDeepEqual(Array.from(w.data()), before);
    assert.throws(() => off.loadStateDict({ scale: 1 }), /disabled/);
    assert.throws(() => new GradScaler({ growthFactor: 1 }), /growthFactor must be > 1/);
  });
});
