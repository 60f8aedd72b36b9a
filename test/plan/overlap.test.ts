// Gradient reduction overlapped with the backward pass (ParallelConfig.overlapGradReduce).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  exposedBucketedReduction, exposedPrefetchedGathers, gradientBucketBytes, modelPreset, parallelConfig, parseCluster, stepTime, withConventions,
} from '../../src/plan/index.js';
import { SeededRandom } from '../../src/data/random.js';

/** Event-by-event: bucket j is ready at j/n of the backward pass; buckets are reduced in order. */
function simulate(buckets: number, bucketSeconds: number, backward: number): number {
  let free = 0;
  for (let j = 1; j <= buckets; j++) free = Math.max(free, (j * backward) / buckets) + bucketSeconds;
  return Math.max(0, free - backward);
}

test('exposed time of a bucketed reduction: the closed form equals an event-by-event simulation', () => {
  const random = new SeededRandom(7);
  const rand = (): number => random.next();
  for (let i = 0; i < 500; i++) {
    const n = 1 + Math.floor(rand() * 40), a = rand() * 0.1, bwd = rand() * 2;
    const got = exposedBucketedReduction(n, a, bwd), want = simulate(n, a, bwd);
    assert.ok(Math.abs(got - want) < 1e-12, `n=${n} a=${a} bwd=${bwd}: ${got} vs ${want}`);
  }
  assert.equal(exposedBucketedReduction(4, 1, 10), 1); // keeps up: only the last bucket is left
  assert.equal(exposedBucketedReduction(4, 1, 2), 2.5); // bandwidth-bound: 4 − 2·3/4
  assert.equal(exposedBucketedReduction(0, 1, 2), 0);
});

test('step time with overlapGradReduce: 25 MB buckets, the hidden part leaves the step, parts still add up', () => {
  const m = modelPreset('gpt3-1.3b'), conv = withConventions(), c = parseCluster('4x8xA100');
  const base = parallelConfig({ dp: 32, microBatch: 4, globalBatch: 512 });
  const plain = stepTime(m, conv, c, base);
  const over = stepTime(m, conv, c, { ...base, overlapGradReduce: true });
  const dp = over.comms.find((x) => x.kind === 'dp')!;
  const grads = plain.comms.find((x) => x.kind === 'dp')!.bytes;
  assert.equal(dp.calls, Math.ceil(grads / gradientBucketBytes));
  assert.ok(Math.abs(dp.bytes * dp.calls - grads) < 1);
  assert.ok(over.seconds < plain.seconds);
  assert.equal(plain.hiddenCommSeconds, 0);
  const sum = (x: typeof over): number => Object.values(x.parts).reduce((p, q) => p + q, 0);
  assert.ok(Math.abs(sum(over) - over.seconds) < 1e-12);
  // What is exposed plus what is hidden is the bucketed reduction's whole time.
  assert.ok(Math.abs(over.parts.dataParallelComm + over.hiddenCommSeconds - dp.seconds) < 1e-12);
  assert.ok(Math.abs(over.parts.dataParallelComm - exposedBucketedReduction(dp.calls, dp.seconds / dp.calls, over.backwardPerMicroBatch)) < 1e-12);
});

test('under ZeRO-1/2 only the reduce-scatter is hidden; the weights are all-gathered after the optimizer step', () => {
  const m = modelPreset('gpt3-1.3b'), conv = withConventions(), c = parseCluster('4x8xA100');
  const cfg = parallelConfig({ dp: 32, microBatch: 4, globalBatch: 512, zero: 2, overlapGradReduce: true });
  const st = stepTime(m, conv, c, cfg);
  const dp = st.comms.filter((x) => x.kind === 'dp');
  assert.deepEqual(dp.map((x) => x.collective), ['reduce-scatter', 'all-gather']);
  const gather = dp[1]!;
  assert.equal(gather.calls, 1);
  assert.ok(st.parts.dataParallelComm >= gather.seconds);
});

/**
 * Event-by-event prefetch, one layer ahead: gather i + 1 is issued when layer i starts computing
 * (and after gather i, on one stream); layer i computes once its gather is done and layer i − 1 is.
 */
function simulatePrefetch(units: number, gather: number, compute: number): number {
  let gatherEnd = 0, computeEnd = 0, computeStart = 0;
  for (let i = 0; i < units; i++) {
    const issue = i === 0 ? 0 : computeStart; // issued when the layer before starts
    gatherEnd = Math.max(gatherEnd, issue) + gather;
    computeStart = Math.max(computeEnd, gatherEnd);
    computeEnd = computeStart + compute;
  }
  return computeEnd - units * compute;
}

test('exposed time of prefetched ZeRO-3 gathers: the closed form equals an event-by-event simulation', () => {
  const random = new SeededRandom(11);
  for (let i = 0; i < 500; i++) {
    const n = 1 + Math.floor(random.next() * 48), a = random.next() * 0.05, c = random.next() * 0.05;
    const got = exposedPrefetchedGathers(n, a, c), want = simulatePrefetch(n, a, c);
    assert.ok(Math.abs(got - want) < 1e-12, `n=${n} a=${a} c=${c}: ${got} vs ${want}`);
  }
  assert.equal(exposedPrefetchedGathers(10, 1, 5), 1); // compute-bound: only the first gather shows
  assert.equal(exposedPrefetchedGathers(10, 3, 1), 3 + 9 * 2); // gather-bound
  assert.equal(exposedPrefetchedGathers(0, 1, 1), 0);
});

test('step time with overlapParamGather under ZeRO-3: one gather per layer and pass, the hidden part leaves the step, parts add up', () => {
  const m = modelPreset('gpt3-1.3b'), conv = withConventions(), c = parseCluster('4x8xA100');
  const base = parallelConfig({ dp: 32, microBatch: 4, globalBatch: 512, zero: 3 });
  const plain = stepTime(m, conv, c, base);
  const pre = stepTime(m, conv, c, { ...base, overlapParamGather: true });
  const gathers = (x: typeof plain) => x.comms.find((k) => k.kind === 'zero3-gather')!;
  assert.equal(gathers(plain).calls, 2);
  assert.equal(gathers(pre).calls, 2 * m.layers);
  assert.ok(Math.abs(gathers(pre).bytes * gathers(pre).calls - gathers(plain).bytes * gathers(plain).calls) < 1, 'the same volume in smaller calls');
  assert.ok(pre.seconds < plain.seconds, `${pre.seconds} vs ${plain.seconds}`);
  assert.ok(pre.hiddenCommSeconds > 0 && plain.hiddenCommSeconds === 0);
  const sum = (x: typeof pre): number => Object.values(x.parts).reduce((p, q) => p + q, 0);
  assert.ok(Math.abs(sum(pre) - pre.seconds) < 1e-12);
  // Exposed plus hidden is the gathers' whole time (no gradient overlap in this config).
  const reduce = pre.comms.filter((k) => k.kind === 'dp').reduce((t, k) => t + k.seconds, 0);
  assert.ok(Math.abs(pre.parts.dataParallelComm + pre.hiddenCommSeconds - (gathers(pre).seconds + reduce)) < 1e-9);
  // Without ZeRO-3 the flag changes nothing.
  const z1 = parallelConfig({ dp: 32, microBatch: 4, globalBatch: 512, zero: 1 });
  assert.equal(stepTime(m, conv, c, { ...z1, overlapParamGather: true }).seconds, stepTime(m, conv, c, z1).seconds);
});
