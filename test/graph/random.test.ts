// Randomness under jit: random draws are graph nodes that take fresh numbers from the generator on
// every call, in the order (and with the generator advanced exactly as) the eager code would.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit, cond, whileLoop, Generator } from '../../src/index.js';
import { nn, optim } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

type Fn = (...xs: t.Tensor[]) => t.Tensor | t.Tensor[];

/** Values of `calls` calls of fn eagerly and jitted, each run from `seed`, and the generator state after each. */
function eagerAndJit(fn: Fn, args: (call: number) => t.Tensor[], calls: number, seed = 5, opts: t.JitOptions = {}) {
  const run = (f: Fn) => {
    t.manualSeed(seed);
    const values: number[][][] = [];
    const states: number[][] = [];
    for (let i = 0; i < calls; i++) {
      const out = f(...args(i));
      values.push((Array.isArray(out) ? out : [out]).map((y) => Array.from(y.data())));
      states.push(t.defaultGenerator.getState());
    }
    return { values, states };
  };
  const jf = jit(fn, opts);
  return { eager: run(fn), jitted: run(jf), jf };
}

function assertSameRuns(r: ReturnType<typeof eagerAndJit>, what: string): void {
  r.eager.values.forEach((v, i) => assert.deepEqual(r.jitted.values[i], v, `${what}: call ${i} values`));
  r.eager.states.forEach((s, i) => assert.deepEqual(r.jitted.states[i], s, `${what}: generator state after call ${i}`));
}

forEachBackend('random draws under jit', () => {
  it('a jitted function with dropout draws a new mask on every call (one trace)', () => {
    const f = jit((x: t.Tensor) => t.dropout(x, 0.5));
    const x = t.ones([64]);
    t.manualSeed(1);
    const masks = [0, 1, 2].map(() => Array.from(f(x).data(), (v) => (v === 0 ? 0 : 1)).join(''));
    assert.equal(new Set(masks).size, 3, `masks: ${masks.join(' / ')}`);
    assert.equal(f.stats().traces, 1);
    assert.equal(f.stats().cacheHits, 2);
  });

  it('eager and jit give the same numbers on calls 1..4 under manualSeed, and leave the generator in the same state', () => {
    const fn = (x: t.Tensor): t.Tensor[] => [
      t.add(x, t.rand([2, 3], { dtype: 'float64' })),
      // An odd count of normals leaves the second of a Box-Muller pair for the next draw.
      t.randn([3], { dtype: 'float64' }),
      t.randint(0, 100, [5]),
      t.mul(t.uniform([2, 3], -2, 2, { dtype: 'float64' }), x),
      t.dropout(t.exp(x), 0.3),
      t.scaledDotProductAttention(t.reshape(x, [1, 2, 3]), t.reshape(x, [1, 2, 3]), t.reshape(x, [1, 2, 3]), { dropoutP: 0.5 }),
    ];
    const x = t.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], { dtype: 'float64' });
    const r = eagerAndJit(fn, () => [x], 4);
    assertSameRuns(r, 'mixed draws');
    assert.equal(r.jf.stats().traces, 1);
    const draws = r.jf.graphs()[0]!.traced.nodes.filter((n) => n.op.startsWith('random')).map((n) => n.op);
    assert.deepEqual(draws, ['randomUniform', 'randomNormal', 'randomInteger', 'randomUniform', 'randomUniform', 'randomUniform']);
  });

  it('two identical rand calls stay two different tensors after compilation', () => {
    const r = eagerAndJit(() => [t.rand([8], { dtype: 'float64' }), t.rand([8], { dtype: 'float64' })], () => [], 2);
    assertSameRuns(r, 'two rands');
    const [a, b] = r.jitted.values[1]!;
    assert.notDeepEqual(a, b);
  });

  it('an unused draw still advances the generator, as it does eagerly', () => {
    const fn = (x: t.Tensor): t.Tensor => {
      t.randn([7]);
      return t.add(x, t.rand([2], { dtype: 'float64' }));
    };
    assertSameRuns(eagerAndJit(fn, () => [t.zeros([2], { dtype: 'float64' })], 3), 'unused draw');
  });

  it('an explicit generator is drawn from at every call; the default one is left alone', () => {
    const g = new Generator(42);
    const fn = (x: t.Tensor): t.Tensor => t.add(t.dropout(x, 0.5, { generator: g }), t.rand([4], { generator: g }));
    const jf = jit(fn);
    const x = t.ones([4]);
    const ref = new Generator(42);
    const before = t.defaultGenerator.getState();
    for (let i = 0; i < 3; i++) {
      const got = Array.from(jf(x).data());
      const mask = [0, 1, 2, 3].map(() => ref.uniform() < 0.5);
      const u = [0, 1, 2, 3].map(() => Math.fround(ref.uniform()));
      assert.deepEqual(got, mask.map((keep, k) => Math.fround((keep ? 2 : 0) + u[k]!)), `call ${i}`);
    }
    assert.deepEqual(t.defaultGenerator.getState(), before);
    assert.deepEqual(g.getState(), ref.getState());
  });

  it('a generator passed as an argument is part of the signature: another generator traces again', () => {
    const jf = jit((x: t.Tensor, gen: Generator) => t.add(x, t.rand([3], { generator: gen, dtype: 'float64' })));
    const x = t.zeros([3], { dtype: 'float64' });
    const g1 = new Generator(1), g2 = new Generator(1), r1 = new Generator(1);
    const expect = (): number[] => [r1.uniform(), r1.uniform(), r1.uniform()];
    assert.deepEqual(Array.from(jf(x, g1).data()), expect());
    assert.deepEqual(Array.from(jf(x, g1).data()), expect());
    const r2 = new Generator(1);
    assert.deepEqual(Array.from(jf(x, g2).data()), [r2.uniform(), r2.uniform(), r2.uniform()]);
    const s = jf.stats();
    assert.equal(s.traces, 2);
    assert.match(s.traceReasons[1]!, /argument 1 value changed \("generator#\d+" -> "generator#\d+"\)/);
  });
});

forEachBackend('random draws in control flow and retraces under jit', () => {
  it('cond: only the taken branch draws, at trace time and at every replay, with the predicate flipping', () => {
    const fn = (p: t.Tensor, x: t.Tensor): t.Tensor => cond(t.gt(t.sum(p), 0),
      (a: t.Tensor) => t.add(a, t.rand([3], { dtype: 'float64' })),
      (a: t.Tensor) => t.sub(a, t.mul(t.randn([5], { dtype: 'float64' }).at([0, 3]), 1)), [x]);
    const preds = [1, -1, -1, 1, -1, 1];
    const r = eagerAndJit(fn, (i) => [t.tensor([preds[i]!]), t.zeros([3], { dtype: 'float64' })], preds.length);
    assertSameRuns(r, 'cond');
    assert.equal(r.jf.stats().traces, 1, 'the cond is one node; a flip does not retrace');
  });

  it('whileLoop: the body draws once per iteration (a data-dependent count), as eagerly', () => {
    const fn = (x: t.Tensor): t.Tensor => whileLoop(
      (s: t.Tensor) => t.lt(t.sum(s), 3),
      (s: t.Tensor) => [t.add(s, t.rand([2], { dtype: 'float64' }))],
      [x])[0]!;
    const r = eagerAndJit(fn, () => [t.zeros([2], { dtype: 'float64' })], 4);
    assertSameRuns(r, 'whileLoop');
    assert.equal(r.jf.stats().traces, 1);
  });

  it('a differentiable cond whose branch draws is inlined (its backward would draw again); gradients match eager', () => {
    const w = t.tensor([0.5, -1, 2, 3], { dtype: 'float64', requiresGrad: true });
    const fn = (p: t.Tensor, x: t.Tensor): t.Tensor[] => {
      w.grad = undefined;
      const y = cond(t.gt(t.sum(p), 0), (a: t.Tensor) => t.dropout(t.mul(a, w), 0.5), (a: t.Tensor) => t.mul(a, w), [x]);
      t.sum(t.mul(y, y)).backward();
      return [y, w.grad!];
    };
    const preds = [1, 1, -1, 1];
    const r = eagerAndJit(fn, (i) => [t.tensor([preds[i]!]), t.tensor([1, 2, 3, 4], { dtype: 'float64' })], preds.length);
    assertSameRuns(r, 'differentiable cond');
    // The inlined branch is guarded on the predicate: the flip traces again (with the stream kept).
    assert.equal(r.jf.stats().traces, 3);
  });

  it('a replay abandoned at a failed guard puts the generator back before tracing again', () => {
    // The draw comes before the read, so the replay has drawn when the guard fails.
    const fn = (x: t.Tensor): t.Tensor => {
      const u = t.rand([4], { dtype: 'float64' });
      return t.sum(x).item() > 0 ? t.add(u, x) : t.sub(u, x);
    };
    const xs = [1, 1, -1, -1, 1];
    const r = eagerAndJit(fn, (i) => [t.full([4], xs[i]!, { dtype: 'float64' })], xs.length, 5, { piecewise: false });
    assertSameRuns(r, 'guard failure');
    assert.equal(r.jf.stats().traces, 3, r.jf.stats().traceReasons.join('; '));
  });

  it('piecewise compilation is not used for a function that draws: its value reads become guards', () => {
    const fn = (x: t.Tensor): t.Tensor => {
      const y = t.dropout(x, 0.5);
      return t.sum(x).item() > 0 ? t.mul(y, 2) : y;
    };
    const r = eagerAndJit(fn, () => [t.ones([6], { dtype: 'float64' })], 3);
    assertSameRuns(r, 'piecewise');
    assert.match(r.jf.stats().traceReasons.join('\n'), /piecewise compilation not used: it draws random numbers \('randomUniform'\)/);
    assert.equal(r.jf.stats().graphBreaks, 0);
  });

  it('dynamic dims: a draw over the padded axis falls back to exact sizes without taking numbers twice', () => {
    const fn = (x: t.Tensor): t.Tensor => t.dropout(x, 0.5);
    const sizes = [3, 3, 5];
    const r = eagerAndJit(fn, (i) => [t.ones([sizes[i]!, 2], { dtype: 'float64' })], sizes.length, 5, { dynamic: { 0: [0] } });
    assertSameRuns(r, 'dynamic');
    assert.match(r.jf.stats().traceReasons.join('\n'), /not exact \(randomUniform: draws random numbers over a dimension of the bucket size 4\)/);
  });
});

forEachBackend('a jitted training step with dropout', (backend) => {
  it('gives the losses of the eager step for the same seed (MLP with dropout, SGD with momentum, 6 steps)', () => {
    const build = (): InstanceType<typeof nn.Sequential> => {
      t.manualSeed(21);
      return new nn.Sequential(new nn.Linear(5, 16, { dtype: 'float64' }), new nn.ReLU(), new nn.Dropout(0.3),
        new nn.Linear(16, 16, { dtype: 'float64' }), new nn.GELU(), new nn.Dropout(0.5), new nn.Linear(16, 2, { dtype: 'float64' }));
    };
    const x = t.randn([8, 5], { dtype: 'float64' }), y = t.randn([8, 2], { dtype: 'float64' });
    const losses = (jitted: boolean): number[] => {
      const model = build();
      const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const step = (a: t.Tensor, b: t.Tensor): t.Tensor => {
        opt.zeroGrad();
        const l = t.mean(t.square(t.sub(model.forward(a), b)));
        l.backward();
        opt.step();
        return l;
      };
      const run = jitted ? jit(step) : step;
      t.manualSeed(99);
      const out = [0, 1, 2, 3, 4, 5].map(() => run(x, y).item());
      if (jitted) assert.equal((run as ReturnType<typeof jit>).stats().traces, 1);
      return out;
    };
    const eager = losses(false), compiled = losses(true);
    eager.forEach((l, i) => assert.ok(Math.abs(l - compiled[i]!) <= 1e-12 * Math.max(1, Math.abs(l)), `${backend} step ${i}: eager ${l} vs jit ${compiled[i]}`));
    assert.ok(new Set(eager).size === eager.length, 'the losses change from step to step');
  });
});
