import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { loadFixtures, checkCase, checkGradients, rand64, assertClose } from './helpers.js';

for (const c of loadFixtures('attention')) {
  test(`matches PyTorch: ${c.name}`, () => {
    checkCase(c, (x, o) => t.scaledDotProductAttention(x.q!, x.k!, x.v!, { ...o, attnMask: x.attnMask }));
  });
}

test('attention: float64 gradcheck with a causal mask and with a boolean padding mask', () => {
  checkGradients((q, k, v) => t.scaledDotProductAttention(q, k, v, { isCausal: true }), [rand64([1, 3, 2], 1), rand64([1, 4, 2], 2), rand64([1, 4, 2], 3)]);
  const mask = t.tensor([[true, false, true], [false, false, false]]);
  checkGradients((q, k, v) => t.scaledDotProductAttention(q, k, v, { attnMask: mask }), [rand64([2, 2], 4), rand64([3, 2], 5), rand64([3, 3], 6)]);
});

test('attention: the causal mask equals an explicit lower-triangular boolean mask and an additive −inf mask', () => {
  const q = rand64([2, 4, 3], 7), k = rand64([2, 4, 3], 8), v = rand64([2, 4, 5], 9);
  const causal = t.scaledDotProductAttention(q, k, v, { isCausal: true });
  const lower = t.tril(t.ones([4, 4])).bool();
  assertClose(causal, t.scaledDotProductAttention(q, k, v, { attnMask: lower }), 'bool mask');
  const additive = t.where(lower, 0, -Infinity).double();
  assertClose(causal, t.scaledDotProductAttention(q, k, v, { attnMask: additive }), 'additive mask');
  // The first query sees only the first key, so its output is v's first row.
  assertClose(causal.at(null, 0), v.at(null, 0), 'first query');
});

test('attention: a fully masked row gives zeros and a finite gradient', () => {
  const q = rand64([2, 2], 10).requiresGrad_(), k = rand64([3, 2], 11), v = rand64([3, 2], 12);
  const out = t.scaledDotProductAttention(q, k, v, { attnMask: t.tensor([[true, true, false], [false, false, false]]) });
  assert.deepEqual(out.at(1).toArray(), [0, 0]);
  out.sum().backward();
  assert.ok(Array.from(q.grad!.data()).every(Number.isFinite));
});

test('attention: dropout is seeded and identity at p = 0', () => {
  const q = rand64([3, 2], 13), k = rand64([3, 2], 14), v = rand64([3, 2], 15);
  const a = t.scaledDotProductAttention(q, k, v, { dropoutP: 0.5, generator: new t.Generator(1) });
  const b = t.scaledDotProductAttention(q, k, v, { dropoutP: 0.5, generator: new t.Generator(1) });
  assert.deepEqual(a.data(), b.data());
  assert.notDeepEqual(a.data(), t.scaledDotProductAttention(q, k, v).data());
  assertClose(t.scaledDotProductAttention(q, k, v, { dropoutP: 0 }), t.scaledDotProductAttention(q, k, v), 'p = 0');
});

test('attention errors', () => {
  const q = t.zeros([2, 3, 4]);
  assert.throws(() => t.scaledDotProductAttention(q, t.zeros([2, 5, 3]), t.zeros([2, 5, 4])), /q's last dim \(4\) must equal k's \(3\)/);
  assert.throws(() => t.scaledDotProductAttention(q, q, t.zeros([2, 2, 4])), /k and v must have the same number of keys/);
  assert.throws(() => t.scaledDotProductAttention(q, q, q, { isCausal: true, attnMask: t.ones([3, 3]).bool() }), /either isCausal or attnMask/);
});
