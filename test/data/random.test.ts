import { test } from 'node:test';
import assert from 'node:assert/strict';

import { mixSeed, randomPermutation, SeededRandom } from '../../src/data/random.js';

test('the same seed gives the same stream; different seeds differ', () => {
  const a = new SeededRandom(42);
  const b = new SeededRandom(42);
  const c = new SeededRandom(43);
  const sa = Array.from({ length: 10 }, () => a.next());
  assert.deepEqual(sa, Array.from({ length: 10 }, () => b.next()));
  assert.notDeepEqual(sa, Array.from({ length: 10 }, () => c.next()));
  for (const x of sa) assert.ok(x >= 0 && x < 1);
});

test('saving and restoring the state continues the stream exactly', () => {
  const r = new SeededRandom(7);
  for (let i = 0; i < 5; i++) r.next();
  const copy = SeededRandom.fromState(r.state);
  assert.deepEqual(Array.from({ length: 5 }, () => copy.next()), Array.from({ length: 5 }, () => r.next()));
  assert.throws(() => SeededRandom.fromState(-1), /not a uint32/);
});

test('mixSeed separates nearby and large seeds', () => {
  assert.notEqual(mixSeed(0, 1), mixSeed(1, 0));
  assert.notEqual(mixSeed(2 ** 32), mixSeed(0));
  assert.equal(mixSeed(5, 9), mixSeed(5, 9));
});

test('randomPermutation is a permutation, and all 6 orders of 3 items are about equally likely', () => {
  const p = randomPermutation(100, new SeededRandom(1));
  assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  const r = new SeededRandom(3);
  const counts = new Map<string, number>();
  const trials = 6000;
  for (let i = 0; i < trials; i++) {
    const key = randomPermutation(3, r).join('');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  assert.equal(counts.size, 6);
  // Expected 1000 each; the standard deviation is about 29, so 150 is a > 5-sigma band.
  for (const [key, n] of counts) assert.ok(Math.abs(n - 1000) < 150, `${key}: ${n}`);
});
