import { test } from 'node:test';
import assert from 'node:assert/strict';
import { partitionLayers } from '../../src/plan/index.js';

function bruteForce(times: number[], stages: number, mem: number[], budget: number): number {
  let best = Infinity;
  const rec = (start: number, left: number, worst: number): void => {
    if (left === 1) {
      const t = times.slice(start).reduce((a, b) => a + b, 0);
      const mm = mem.slice(start).reduce((a, b) => a + b, 0);
      if (mm <= budget) best = Math.min(best, Math.max(worst, t));
      return;
    }
    for (let end = start + 1; end <= times.length - left + 1; end++) {
      const t = times.slice(start, end).reduce((a, b) => a + b, 0);
      const mm = mem.slice(start, end).reduce((a, b) => a + b, 0);
      if (mm <= budget) rec(end, left - 1, Math.max(worst, t));
    }
  };
  rec(0, stages, 0);
  return best;
}

test('the DP finds the same minimal bottleneck as brute force, with and without a memory budget', () => {
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let trial = 0; trial < 30; trial++) {
    const n = 4 + Math.floor(rand() * 6), stages = 1 + Math.floor(rand() * Math.min(4, n));
    const times = Array.from({ length: n }, () => Math.round(rand() * 10) + 1);
    const mem = Array.from({ length: n }, () => Math.round(rand() * 5) + 1);
    const budget = rand() < 0.5 ? Infinity : 8 + Math.floor(rand() * 8);
    const expected = bruteForce(times, stages, mem, budget);
    if (expected === Infinity) {
      assert.throws(() => partitionLayers(times.map((t, i) => ({ time: t, memory: mem[i]! })), stages, budget), /fits/);
      continue;
    }
    const p = partitionLayers(times.map((t, i) => ({ time: t, memory: mem[i]! })), stages, budget);
    assert.equal(p.bottleneck, expected);
    assert.equal(p.starts.length, stages);
    assert.ok(p.stageMemory.every((x) => x <= budget));
  }
});

test('a transformer with a heavy LM head gets fewer layers on the last stage', () => {
  const layers = [...Array.from({ length: 24 }, () => ({ time: 1 })), { time: 4 }];
  const p = partitionLayers(layers, 4);
  assert.equal(p.bottleneck, 7);
  assert.deepEqual(p.starts, [0, 7, 14, 21]); // 7 + 7 + 7 + (3 layers + head)
  assert.throws(() => partitionLayers(layers, 30), /cannot split/);
});
