// The random primitives (randomUniform, randomNormal, randomInteger): rand/randn/randint/uniform
// and dropout draw through them, on every backend, with the stream of core/random.ts's Generator.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { Generator } from '../../src/index.js';
import { bind } from '../../src/ops/dispatch.js';
import { primitives } from '../../src/ops/primitives.js';
import { forEachBackend } from '../helpers/backends.js';

const f32 = (x: number): number => Math.fround(x);

forEachBackend('random primitives', (backend) => {
  it('rand/randn/randint/uniform take the Generator\'s stream element by element, in call order', () => {
    const ref = new Generator(11);
    t.manualSeed(11);
    const seq = (n: number, draw: () => number): number[] => Array.from({ length: n }, draw);
    assert.deepEqual(Array.from(t.rand([2, 3]).data()), seq(6, () => f32(ref.uniform())));
    // Box-Muller makes normals in pairs: the odd one out is kept for the next randn.
    assert.deepEqual(Array.from(t.randn([3], { dtype: 'float64' }).data()), seq(3, () => ref.normal()));
    assert.deepEqual(Array.from(t.randn([1], { dtype: 'float64' }).data()), seq(1, () => ref.normal()));
    assert.deepEqual(Array.from(t.randint(-4, 7, [5]).data()), seq(5, () => ref.integer(-4, 7)));
    assert.deepEqual(Array.from(t.uniform([4], -1, 3, { dtype: 'float64' }).data()), seq(4, () => -1 + 4 * ref.uniform()));
    const x = t.rand([3]);
    assert.equal(x.backend, backend);
    assert.equal(t.rand([2], { backend: 'cpu' }).backend, 'cpu');
  });

  it('an explicit generator is used and advanced instead of the default one', () => {
    const g = new Generator(5), ref = new Generator(5);
    t.manualSeed(1);
    const before = t.defaultGenerator.getState();
    assert.deepEqual(Array.from(t.rand([4], { generator: g, dtype: 'float64' }).data()), [ref.uniform(), ref.uniform(), ref.uniform(), ref.uniform()]);
    assert.deepEqual(t.defaultGenerator.getState(), before, 'the default generator did not move');
    assert.deepEqual(g.getState(), ref.getState());
  });

  it('each application is a randomUniform/randomNormal/randomInteger primitive with its generator in the attrs', () => {
    const seen: { prim: string; attrs: unknown }[] = [];
    const stop = t.addDispatchObserver({ onPrimitive: (prim, _inputs, attrs) => { seen.push({ prim, attrs }); } });
    const g = new Generator(3);
    try {
      t.rand([2]);
      t.randn([2], { generator: g });
      t.randint(0, 4, [2]);
      t.dropout(t.ones([3]), 0.5);
    } finally {
      stop();
    }
    const draws = seen.filter((e) => e.prim.startsWith('random'));
    assert.deepEqual(draws.map((e) => e.prim), ['randomUniform', 'randomNormal', 'randomInteger', 'randomUniform']);
    assert.equal((draws[1]!.attrs as { generator: Generator }).generator, g);
    assert.equal((draws[0]!.attrs as { generator: Generator }).generator, t.defaultGenerator);
    assert.deepEqual((draws[3]!.attrs as { shape: number[]; dtype: string }).shape, [3], 'dropout draws its mask through the primitive');
  });

  it('dropout keeps its seeded mask: zero where u >= 1 - p, x / (1 - p) elsewhere, u from the stream', () => {
    const ref = new Generator(9);
    t.manualSeed(9);
    const x = t.tensor([1, 2, 3, 4, 5, 6, 7, 8], { dtype: 'float64' });
    const y = t.dropout(x, 0.25).data();
    x.data().forEach((v, i) => assert.equal(y[i], ref.uniform() < 0.75 ? v / 0.75 : 0));
  });

  it('random draws carry no gradient and no tangent; requiresGrad makes a leaf', () => {
    const w = t.rand([3], { requiresGrad: true });
    assert.ok(w.requiresGrad && w.isLeaf);
    const x = t.tensor([1, 2, 3], { requiresGrad: true });
    const y = t.sum(t.mul(x, t.randn([3])));
    y.backward();
    assert.equal(x.grad!.shape.length, 1);
    const [, tangent] = t.jvp((a: t.Tensor) => t.add(a, t.rand([3])), [t.ones([3])], [t.ones([3])]);
    assert.deepEqual(tangent.toArray(), [1, 1, 1]);
  });
});

it('the random primitives check their attrs and report bytes written, none read', () => {
  const g = new Generator(1);
  assert.throws(() => bind('randomUniform', [], { shape: [2, -1], dtype: 'float32', backend: 'cpu', generator: g, low: 0, high: 1 }),
    /randomUniform: shape must be an array of non-negative integers, got \[2,-1\]/);
  assert.throws(() => bind('randomInteger', [], { shape: [2], dtype: 'int32', backend: 'cpu', generator: g, low: 0, high: Infinity }),
    /randomInteger: low and high must be finite numbers, got low=0, high=Infinity/);
  assert.throws(() => bind('randomNormal', [t.ones([1])], { shape: [2], dtype: 'float32', backend: 'cpu', generator: g }), /randomNormal: expects 0 input\(s\), got 1/);
  const c = primitives.randomNormal.cost([], { shape: [4, 5], dtype: 'float64', backend: 'cpu', generator: g }, { shape: [4, 5], dtype: 'float64' });
  assert.equal(c.bytesRead, 0);
  assert.equal(c.bytesWritten, 160);
  assert.ok(c.flops > 0);
});
