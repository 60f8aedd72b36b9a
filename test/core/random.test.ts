// core/random.ts: generator identity (labels used by graph printouts and jit signatures) and the
// snapshots that let tracing undo speculative draws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { Generator } from '../../src/index.js';
import { snapshotGenerators } from '../../src/core/random.js';

test('every generator has its own label; the default one is "default"; JSON shows the label', () => {
  const a = new Generator(1), b = new Generator(1);
  assert.notEqual(a.label, b.label);
  assert.match(a.label, /^generator#\d+$/);
  assert.equal(t.defaultGenerator.label, 'default');
  assert.equal(JSON.stringify({ generator: a }), `{"generator":"${a.label}"}`);
});

test('snapshotGenerators puts every live generator back, the spare normal included', () => {
  const g = new Generator(3);
  t.manualSeed(4);
  g.normal(); // leaves the pair's second value as the spare
  const snap = snapshotGenerators();
  const next = [g.normal(), g.uniform(), t.defaultGenerator.uniform()];
  const fresh = new Generator(5);
  const freshState = fresh.getState();
  fresh.uniform();
  snap.restore();
  assert.deepEqual([g.normal(), g.uniform(), t.defaultGenerator.uniform()], next);
  assert.notDeepEqual(fresh.getState(), freshState, 'a generator made after the snapshot is left alone');
});

test('Generator.fillUniform draws the values (and leaves the state) of one uniform() call per element', () => {
  for (const [low, high] of [[0, 1], [-2, 3.5]] as const) {
    const bulk = new t.Generator(17), single = new t.Generator(17);
    const f64 = new Float64Array(1001), f32 = new Float32Array(999);
    bulk.fillUniform(f64, low, high);
    bulk.fillUniform(f32, low, high);
    f64.forEach((v, i) => assert.equal(v, low + (high - low) * single.uniform(), `float64 element ${i}`));
    f32.forEach((v, i) => assert.equal(v, Math.fround(low + (high - low) * single.uniform()), `float32 element ${i}`));
    assert.deepEqual(bulk.getState(), single.getState());
  }
});
