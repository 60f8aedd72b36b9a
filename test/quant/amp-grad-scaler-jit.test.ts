// GradScaler inside jit: a float16 training step with dynamic loss scaling (scale, unscale_, a
// step skipped on the device when a gradient overflowed, update) traced once and replayed without
// a value read, equal bit for bit to the same loop run eagerly (losses, parameters, optimizer state
// and step counts, scales, skipped steps), across overflow steps, growth and backoff, eager and
// compiled iterations alternating, a checkpoint and resume, and float32 master weights.
//
// Run on cpu and wasm only: those are the backends whose compiled step the claim covers (the masked
// update runs the optimizer's own kernel there); webgpu is not checked here.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit } from '../../src/index.js';
import { GradScaler, MasterWeightOptimizer, autocast, type GradScalerOptions } from '../../src/quant/index.js';
import { Adam, AdamW } from '../../src/optim/adam.js';
import { SGD } from '../../src/optim/sgd.js';
import type { BaseOptions, Optimizer } from '../../src/optim/optimizer.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { ReLU } from '../../src/nn/layers/activation.js';
import { Sequential } from '../../src/nn/containers.js';
import { mseLoss } from '../../src/ops/nn/index.js';
import { backendsUnderTest } from '../helpers/backends.js';

type Opt = Optimizer<BaseOptions>;
interface Run { model: Sequential; opt: Opt; scaler: GradScaler }

const bits = (x: t.Tensor): number[] => Array.from(x.data());

/** The same model (seeded), optimizer and scaler every time. */
function makeRun(makeOpt: (params: t.Tensor[]) => Opt, scalerOpts: GradScalerOptions): Run {
  t.manualSeed(11);
  const model = new Sequential(new Linear(8, 16), new ReLU(), new Linear(16, 4));
  return { model, opt: makeOpt(model.parameters()), scaler: new GradScaler(scalerOpts) };
}

/** One float16 iteration; `mult` multiplies the loss (a huge one forces the gradients to overflow). */
function iteration({ model, opt, scaler }: Run, unscaleFirst = false) {
  return (x: t.Tensor, y: t.Tensor, mult: t.Tensor): t.Tensor => {
    opt.zeroGrad();
    const loss = autocast({ dtype: 'float16' }, () => t.mul(mseLoss(model.call(x), y), mult));
    scaler.scale(loss).backward();
    if (unscaleFirst) scaler.unscale_(opt);
    scaler.step(opt);
    scaler.update();
    return loss;
  };
}

/** Everything a run's future depends on, as plain numbers (tensors by their values). */
function snapshot({ model, opt, scaler }: Run): unknown {
  const sd = opt.stateDict();
  const state = Object.fromEntries(Object.entries(sd.state).map(([k, st]) =>
    [k, Object.fromEntries(Object.entries(st).map(([n, v]) => [n, v instanceof t.Tensor ? bits(v) : v]))]));
  return { params: model.parameters().map(bits), state, scaler: scaler.stateDict(), skipped: scaler.skippedSteps };
}

const overflowAt = new Set([5, 9]);
const multOf = (i: number): t.Tensor => t.scalar(overflowAt.has(i) ? 2 ** 16 : 1, 'float32');

for (const backend of backendsUnderTest().filter((b) => b === 'cpu' || b === 'wasm')) {
  describe(`GradScaler inside jit [${backend}]`, () => {
    let previous = 'cpu';
    before(() => {
      previous = t.currentBackendName();
      t.setBackend(backend);
    });
    after(() => t.setBackend(previous));

    const data = () => {
      t.manualSeed(12);
      return { x: t.randn([6, 8]), y: t.randn([6, 4]) };
    };

    const optimizers: [string, (ps: t.Tensor[]) => Opt, boolean][] = [
      ['Adam', (ps) => new Adam(ps, { lr: 1e-2 }) as unknown as Opt, false],
      ['SGD with momentum and dampening, unscale_ first', (ps) => new SGD(ps, { lr: 1e-2, momentum: 0.9, dampening: 0.1 }) as unknown as Opt, true],
    ];
    for (const [name, makeOpt, unscaleFirst] of optimizers) {
      it(`${name}: 12 float16 steps with overflows (initial scale 2^20, forced at steps 5 and 9) equal the eager loop bit for bit, traced once`, () => {
        const { x, y } = data();
        const opts: GradScalerOptions = { initScale: 2 ** 20, growthInterval: 2 };
        const eagerRun = makeRun(makeOpt, opts), jitRun = makeRun(makeOpt, opts);
        const eager = iteration(eagerRun, unscaleFirst), compiled = jit(iteration(jitRun, unscaleFirst));
        const scales: number[] = [];
        for (let i = 0; i < 12; i++) {
          const le = eager(x, y, multOf(i)).item(), lc = compiled(x, y, multOf(i)).item();
          assert.ok(Object.is(le, lc), `step ${i}: loss eager ${le} vs compiled ${lc}`);
          // Reading the scale after a compiled step reads the device value (and hands it back to the next one).
          assert.equal(jitRun.scaler.getScale(), eagerRun.scaler.getScale(), `step ${i}: scale`);
          assert.equal(jitRun.scaler.getGrowthTracker(), eagerRun.scaler.getGrowthTracker(), `step ${i}: growth tracker`);
          scales.push(eagerRun.scaler.getScale());
        }
        assert.deepEqual(snapshot(jitRun), snapshot(eagerRun));
        // The run covers what it claims: skipped steps at the start and at 5 and 9, backoff and growth.
        assert.ok(eagerRun.scaler.skippedSteps >= 4, `skipped ${eagerRun.scaler.skippedSteps}`);
        assert.ok(scales.some((s, i) => i > 0 && s > scales[i - 1]!), `the scale grows somewhere: ${scales}`);
        assert.ok(scales[5]! < scales[4]! && scales[9]! < scales[8]!, `the forced overflows back off: ${scales}`);
        const s = compiled.stats();
        assert.equal(s.traces, 1, s.traceReasons.join('; '));
        assert.equal(s.cacheHits, 11);
      });
    }

    it('the compiled step has no value read: no guard, no graph break, one masked update per parameter; 12 steps unread equal eager', () => {
      const { x, y } = data();
      const makeOpt = (ps: t.Tensor[]) => new Adam(ps, { lr: 1e-2 }) as unknown as Opt;
      const opts: GradScalerOptions = { initScale: 2 ** 20, growthInterval: 2 };
      const eagerRun = makeRun(makeOpt, opts), jitRun = makeRun(makeOpt, opts);
      const eager = iteration(eagerRun), compiled = jit(iteration(jitRun));
      for (let i = 0; i < 12; i++) {
        eager(x, y, multOf(i));
        compiled(x, y, multOf(i)); // nothing read between compiled steps
      }
      const s = compiled.stats();
      assert.equal(s.traces, 1, s.traceReasons.join('; '));
      assert.equal(s.graphBreaks, 0);
      const { traced } = compiled.graphs()[0]!;
      assert.equal(traced.guards.length, 0, 'no value guard');
      assert.equal(traced.nodes.filter((n) => n.op === 'optimizerParamStep').length, jitRun.model.parameters().length);
      assert.ok(traced.nodes.some((n) => n.op === 'where') && traced.nodes.some((n) => n.op === 'isnan'), 'skip and found-inf are graph values');
      // Adam's step counts did not advance on the skipped steps, on the device as eagerly.
      const steps = (r: Run) => r.model.parameters().map((p) => r.opt.state.get(p)!.step);
      assert.deepEqual(steps(jitRun), steps(eagerRun));
      assert.equal(steps(eagerRun)[0], 12 - eagerRun.scaler.skippedSteps);
      assert.deepEqual(snapshot(jitRun), snapshot(eagerRun));
    });

    it('eager and compiled iterations alternate, and a checkpoint resumes into a new jitted step bit for bit (backoff 0.3, growth 3)', () => {
      const { x, y } = data();
      const makeOpt = (ps: t.Tensor[]) => new AdamW(ps, { lr: 1e-2 }) as unknown as Opt;
      const opts: GradScalerOptions = { initScale: 2 ** 18, growthInterval: 2, backoffFactor: 0.3, growthFactor: 3 };
      const reference = makeRun(makeOpt, opts);
      const ref = iteration(reference);
      const refLosses = Array.from({ length: 12 }, (_, i) => ref(x, y, multOf(i)).item());
      const run = makeRun(makeOpt, opts);
      const plain = iteration(run), compiled = jit(iteration(run));
      const losses: number[] = [];
      // compiled 0-3, eager 4-5, compiled 6-8 (on the same model, optimizer and scaler)
      for (let i = 0; i < 9; i++) losses.push((i === 4 || i === 5 ? plain : compiled)(x, y, multOf(i)).item());
      const saved = { model: run.model.stateDict(), opt: run.opt.stateDict(), scaler: run.scaler.stateDict() };
      const resumed = makeRun(makeOpt, {});
      resumed.model.loadStateDict(saved.model);
      resumed.opt.loadStateDict(saved.opt);
      resumed.scaler.loadStateDict(saved.scaler as Record<string, unknown>);
      const again = jit(iteration(resumed));
      for (let i = 9; i < 12; i++) losses.push(again(x, y, multOf(i)).item());
      losses.forEach((l, i) => assert.ok(Object.is(l, refLosses[i]), `step ${i}: ${l} vs ${refLosses[i]}`));
      const { skipped: _a, ...got } = snapshot(resumed) as Record<string, unknown>;
      const { skipped: _b, ...want } = snapshot(reference) as Record<string, unknown>;
      assert.deepEqual(got, want);
      assert.equal(run.scaler.skippedSteps + resumed.scaler.skippedSteps, reference.scaler.skippedSteps);
      assert.ok(reference.scaler.skippedSteps >= 2);
      assert.equal(compiled.stats().traces, 1);
      assert.equal(again.stats().traces, 1);
    });

    it('only scale(loss).backward() jitted, unscale_/step/update eager: the eager loop bit for bit', () => {
      const { x, y } = data();
      const makeOpt = (ps: t.Tensor[]) => new Adam(ps, { lr: 1e-2 }) as unknown as Opt;
      const opts: GradScalerOptions = { initScale: 2 ** 20, growthInterval: 2 };
      const eagerRun = makeRun(makeOpt, opts), jitRun = makeRun(makeOpt, opts);
      const eager = iteration(eagerRun);
      const backward = jit((a: t.Tensor, b: t.Tensor, mult: t.Tensor) => {
        jitRun.opt.zeroGrad();
        const loss = autocast({ dtype: 'float16' }, () => t.mul(mseLoss(jitRun.model.call(a), b), mult));
        jitRun.scaler.scale(loss).backward();
        return loss;
      });
      for (let i = 0; i < 8; i++) {
        const le = eager(x, y, multOf(i)).item(), lc = backward(x, y, multOf(i)).item();
        jitRun.scaler.step(jitRun.opt);
        jitRun.scaler.update();
        assert.ok(Object.is(le, lc), `step ${i}: ${le} vs ${lc}`);
      }
      assert.deepEqual(snapshot(jitRun), snapshot(eagerRun));
      assert.equal(backward.stats().traces, 1);
    });

    it('float16 model with float32 master weights (MasterWeightOptimizer over Adam) inside jit equals eager bit for bit', () => {
      const { x, y } = data();
      const make = (): Run => {
        t.manualSeed(13);
        const model = new Sequential(new Linear(8, 16), new ReLU(), new Linear(16, 4)).to('float16');
        const opt = new MasterWeightOptimizer(model.parameters(), (m) => new Adam(m, { lr: 1e-2 })) as unknown as Opt;
        return { model, opt, scaler: new GradScaler({ initScale: 2 ** 18, growthInterval: 2 }) };
      };
      const step = ({ model, opt, scaler }: Run) => (a: t.Tensor, b: t.Tensor, mult: t.Tensor): t.Tensor => {
        opt.zeroGrad();
        const loss = t.mul(mseLoss(t.cast(model.call(a), 'float32'), b), mult);
        scaler.scale(loss).backward();
        scaler.step(opt);
        scaler.update();
        return loss;
      };
      const xh = t.cast(x, 'float16');
      const eagerRun = make(), jitRun = make();
      const eager = step(eagerRun), compiled = jit(step(jitRun));
      for (let i = 0; i < 8; i++) {
        const le = eager(xh, y, multOf(i)).item(), lc = compiled(xh, y, multOf(i)).item();
        assert.ok(Object.is(le, lc), `step ${i}: ${le} vs ${lc}`);
      }
      assert.deepEqual(snapshot(jitRun), snapshot(eagerRun));
      const masters = (r: Run) => (r.opt as unknown as MasterWeightOptimizer).masters.map(bits);
      assert.deepEqual(masters(jitRun), masters(eagerRun));
      assert.ok(eagerRun.scaler.skippedSteps >= 2, `skipped ${eagerRun.scaler.skippedSteps}`);
      assert.equal(jitRun.model.parameters()[0]!.dtype, 'float16');
      assert.equal(compiled.stats().traces, 1);
      assert.equal(compiled.graphs()[0]!.traced.guards.length, 0);
    });

    it('float32 (no autocast) near the top of float32: a growth to inf is not taken, an overflow skips; equal to eager bit for bit', () => {
      const { x, y } = data();
      const makeOpt = (ps: t.Tensor[]) => new Adam(ps, { lr: 1e-2 }) as unknown as Opt;
      const opts: GradScalerOptions = { initScale: 2 ** 100, growthInterval: 2, growthFactor: 2 ** 10 };
      const step = ({ model, opt, scaler }: Run) => (a: t.Tensor, b: t.Tensor, mult: t.Tensor): t.Tensor => {
        opt.zeroGrad();
        const loss = t.mul(mseLoss(model.call(a), b), mult);
        scaler.scale(loss).backward();
        scaler.step(opt);
        scaler.update();
        return loss;
      };
      const eagerRun = makeRun(makeOpt, opts), jitRun = makeRun(makeOpt, opts);
      const eager = step(eagerRun), compiled = jit(step(jitRun));
      const scales: number[] = [];
      for (let i = 0; i < 8; i++) {
        const mult = t.scalar(i === 6 ? 2 ** 60 : 1, 'float32');
        const le = eager(x, y, mult).item(), lc = compiled(x, y, mult).item();
        assert.ok(Object.is(le, lc), `step ${i}: ${le} vs ${lc}`);
        scales.push(eagerRun.scaler.getScale());
      }
      // 2^100 → 2^110 → 2^120, then 2^130 would be inf in float32: kept; the forced overflow halves it.
      assert.deepEqual(scales.map(Math.log2), [100, 110, 110, 120, 120, 120, 119, 119]);
      assert.deepEqual(snapshot(jitRun), snapshot(eagerRun));
      assert.equal(compiled.stats().traces, 1);
    });

    it('bfloat16 with a disabled scaler inside jit: one trace, the eager losses (bit for bit on wasm)', () => {
      const { x, y } = data();
      const makeOpt = (ps: t.Tensor[]) => new Adam(ps, { lr: 1e-2 }) as unknown as Opt;
      const step = ({ model, opt, scaler }: Run) => (a: t.Tensor, b: t.Tensor): t.Tensor => {
        opt.zeroGrad();
        const loss = autocast({ dtype: 'bfloat16' }, () => mseLoss(model.call(a), b));
        scaler.scale(loss).backward();
        scaler.step(opt);
        scaler.update();
        return loss;
      };
      const eagerRun = makeRun(makeOpt, { enabled: false }), jitRun = makeRun(makeOpt, { enabled: false });
      const eager = step(eagerRun), compiled = jit(step(jitRun));
      // The unmasked traced Adam on cpu is op by op in float32 (not the eager float64 loop): close, not equal.
      const tol = backend === 'wasm' ? 0 : 1e-5;
      for (let i = 0; i < 6; i++) {
        const le = eager(x, y).item(), lc = compiled(x, y).item();
        assert.ok(Math.abs(le - lc) <= tol, `step ${i}: ${le} vs ${lc}`);
      }
      assert.equal(compiled.stats().traces, 1);
      assert.equal(jitRun.scaler.getScale(), 1);
    });

    it('refuses update(newScale) inside jit, and an iteration split between jit and eager code', () => {
      const { x, y } = data();
      const makeOpt = (ps: t.Tensor[]) => new SGD(ps, { lr: 1e-2 }) as unknown as Opt;
      const r = makeRun(makeOpt, {});
      const withNewScale = jit((a: t.Tensor, b: t.Tensor) => {
        r.opt.zeroGrad();
        r.scaler.scale(mseLoss(r.model.call(a), b)).backward();
        r.scaler.step(r.opt);
        r.scaler.update(1024);
      });
      assert.throws(() => withNewScale(x, y), /update\(newScale\) inside a traced \(jit\) function/);
      const r2 = makeRun(makeOpt, {});
      const stepOnly = jit((a: t.Tensor, b: t.Tensor) => {
        r2.opt.zeroGrad();
        r2.scaler.scale(mseLoss(r2.model.call(a), b)).backward();
        r2.scaler.step(r2.opt);
      });
      stepOnly(x, y);
      assert.throws(() => r2.scaler.update(), /step ran inside a traced \(jit\) function and update\(\) outside it/);
      // Traced with float32 factors (2, 0.5): another float32 factor is followed, a float64-only one refused.
      const r3 = makeRun(makeOpt, { initScale: 2 ** 40 });
      const full = jit(iteration(r3));
      full(x, y, multOf(0));
      r3.scaler.setBackoffFactor(0.25);
      full(x, y, multOf(0));
      assert.equal(r3.scaler.getScale(), 2 ** 37, 'overflows: 2^40 · 0.5, then · 0.25');
      r3.scaler.setBackoffFactor(0.3);
      assert.throws(() => full(x, y, multOf(0)), /backoff factor 0.3 is not a float32 number/);
      // Masters offloaded to another backend: refused under the scaler inside jit.
      const other = backend === 'cpu' ? 'wasm' : 'cpu';
      const r4 = makeRun((ps) => new MasterWeightOptimizer(ps, (m) => new Adam(m), { masterBackend: other }) as unknown as Opt, {});
      assert.throws(() => jit(iteration(r4))(x, y, multOf(0)), /a MasterWeightOptimizer with a masterBackend is not supported inside jit/);
    });
  });
}
