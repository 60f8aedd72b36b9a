// The alpha-beta model: formulas at known points, the choice it makes at the two extremes, and
// the least-squares fit used to calibrate it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ALGORITHMS, chooseAlgorithm, fitAlphaBeta, predictSeconds } from '../../src/dist/index.js';
import type { Collective } from '../../src/dist/index.js';

const m = { alpha: 10e-6, beta: 1e-9, gamma: 0.5e-9 };

test('formulas reproduce the textbook costs for p = 8', () => {
  const n = 8e6;
  // Ring all-reduce: 2(p-1)α + 2(p-1)/p nβ + (p-1)/p nγ.
  assert.equal(predictSeconds('allReduce', 'ring', 8, n, m), 14 * 10e-6 + (14 / 8) * n * 1e-9 + (7 / 8) * n * 0.5e-9);
  // Binomial broadcast: log p (α + nβ).
  assert.equal(predictSeconds('broadcast', 'tree', 8, n, m), 3 * (10e-6 + n * 1e-9));
  // Rabenseifner for a power of two: 2 log p α + 2(p-1)/p nβ + (p-1)/p nγ.
  assert.equal(predictSeconds('allReduce', 'rabenseifner', 8, n, m), 6 * 10e-6 + (14 / 8) * n * 1e-9 + (7 / 8) * n * 0.5e-9);
  // A non-power of two pays for the pairing step.
  assert.ok(predictSeconds('allReduce', 'rabenseifner', 6, n, m) > predictSeconds('allReduce', 'rabenseifner', 8, n, m) * 0.99);
  assert.equal(predictSeconds('allReduce', 'ring', 1, n, m), 0);
});

test('every collective has a formula for each of its algorithms', () => {
  for (const [collective, algorithms] of Object.entries(ALGORITHMS) as [Collective, readonly string[]][]) {
    for (const alg of algorithms) {
      const t = predictSeconds(collective, alg as never, 5, 1e5, m);
      assert.ok(Number.isFinite(t) && t > 0, `${collective}/${alg}: ${t}`);
    }
  }
});

test('latency-bound calls pick log-p algorithms, bandwidth-bound calls pick bandwidth-optimal ones', () => {
  assert.equal(chooseAlgorithm('allReduce', 8, 64, m), 'recursive-doubling');
  assert.equal(chooseAlgorithm('allReduce', 8, 256e6, m), 'rabenseifner');
  assert.equal(chooseAlgorithm('allReduce', 6, 256e6, m), 'ring');
  assert.equal(chooseAlgorithm('broadcast', 8, 64, m), 'tree');
  assert.equal(chooseAlgorithm('broadcast', 8, 256e6, m), 'ring');
  assert.equal(chooseAlgorithm('allGather', 8, 64, m), 'recursive-doubling');
  assert.equal(chooseAlgorithm('barrier', 8, 0, m), 'dissemination');
});

test('fitAlphaBeta recovers a line exactly and clamps to positive values', () => {
  const samples = [8, 1 << 10, 1 << 20, 1 << 24].map((bytes) => ({ bytes, seconds: 20e-6 + bytes * 2.5e-10 }));
  const fit = fitAlphaBeta(samples);
  assert.ok(Math.abs(fit.alpha - 20e-6) < 1e-12, `alpha ${fit.alpha}`);
  assert.ok(Math.abs(fit.beta - 2.5e-10) < 1e-18, `beta ${fit.beta}`);
  assert.throws(() => fitAlphaBeta([{ bytes: 1, seconds: 1 }]), /at least 2 samples/);
});
