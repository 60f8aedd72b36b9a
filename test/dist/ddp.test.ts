// DistributedDataParallel against single-process training on whole batches: replicas built with
// different seeds, trained on their shares of each batch (with and without gradient
// accumulation, several bucket sizes), must end where one process training on the whole batch
// ends, and agree with each other.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runThreadRanks } from '../../src/dist/index.js';
import { makeModel, type DdpArgs, type GradientOwnershipResult, type ReplicaResult } from './fixtures/ddp-ranks.js';
import { base, maxDifference, ranksModule, trainReference } from './data-parallel-reference.js';

async function runDdp(worldSize: number, args: DdpArgs): Promise<ReplicaResult[]> {
  return runThreadRanks<DdpArgs, ReplicaResult>({ worldSize, module: ranksModule, exportName: 'trainReplica', args });
}


const cases = [[2, 1, undefined, 'sgd'], [3, 2, undefined, 'sgd'], [4, 1, 256, 'sgd'], [2, 2, undefined, 'adam']] as const;
for (const [worldSize, accumulate, bucketBytes, optimizer] of cases) {
  test(`DDP, ${worldSize} ranks, ${accumulate} micro-batch(es) per step${bucketBytes ? `, ${bucketBytes}-byte buckets` : ''}, ${optimizer}: float64 replicas = one process on whole batches`, { timeout: 120_000 }, async () => {
    const args = { ...base, accumulate, bucketBytes, optimizer };
    const replicas = await runDdp(worldSize, args);
    const reference = trainReference(args);
    for (const r of replicas) {
      assert.equal(r.divergence, 0, 'replicas agree exactly');
      const diff = maxDifference(r.params, reference);
      assert.ok(diff < 1e-12, `largest difference from single-process training: ${diff}`);
    }
    // The replicas started from different seeds: without the initial broadcast they could not agree.
    assert.ok(maxDifference(makeModel(args, 100).parameters().map((p) => Array.from(p.data())), makeModel(args, 101).parameters().map((p) => Array.from(p.data()))) > 0.01);
  });
}

test('DDP on the wasm backend in float32: replicas agree and match one process within float32 rounding', { timeout: 120_000 }, async () => {
  const args: DdpArgs = { ...base, backend: 'wasm', dtype: 'float32' };
  const replicas = await runDdp(2, args);
  const reference = trainReference(args);
  for (const r of replicas) {
    assert.equal(r.divergence, 0);
    const diff = maxDifference(r.params, reference);
    assert.ok(diff < 1e-4, `largest difference from single-process training: ${diff}`);
  }
});

test('DDP broadcasts the root\'s buffers: BatchNorm running statistics are equal on every rank after a step', { timeout: 120_000 }, async () => {
  const replicas = await runDdp(2, { ...base, batchNorm: true, steps: 3 });
  assert.ok(replicas[0]!.buffers.length >= 2);
  assert.deepEqual(replicas[1]!.buffers, replicas[0]!.buffers);
  assert.equal(replicas[1]!.divergence, 0);
});


for (const stage of [undefined, 1] as const) {
  test(`${stage === undefined ? 'DDP' : 'ZeRO-1'} leaves the gradients to the optimizer: zeroGrad disposes the averaged gradients at once, and keeps one the caller read`, { timeout: 120_000 }, async () => {
    const results = await runThreadRanks<DdpArgs, GradientOwnershipResult>({
      worldSize: 2, module: ranksModule, exportName: 'checkGradientOwnership', args: { ...base, backend: 'wasm', dtype: 'float32', steps: 3, stage },
    });
    for (const r of results) {
      assert.deepEqual(r.droppedDisposed, [true, true, true]);
      assert.ok(r.readKeptAlive);
    }
  });
}
