// DistributedDataParallel and ZeroOptimizer against single-process training on whole batches: replicas built with
// different seeds, trained on their shares of each batch (with and without gradient
// accumulation, several bucket sizes), must end where one process training on the whole batch
// ends, and agree with each other.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as t from '../../src/index.js';
import { runThreadRanks } from '../../src/dist/index.js';
import { batchOf, makeModel, makeOptimizer, type DdpArgs, type ReplicaResult, type ZeroResult } from './fixtures/ddp-ranks.js';

const ranksModule = new URL('./fixtures/ddp-ranks.ts', import.meta.url);

/** One process, whole batches: what every replica must match. */
function trainReference(args: DdpArgs): number[][] {
  const previous = t.currentBackendName();
  t.setBackend(args.backend);
  try {
    const model = makeModel(args, 100); // rank 0's seed: the replicas start from rank 0's parameters
    const optimizer = makeOptimizer(args, model.parameters());
    for (let step = 0; step < args.steps; step++) {
      const { x, y } = batchOf(args, step);
      optimizer.zeroGrad();
      t.mseLoss(model.call(t.tensor(x, { dtype: args.dtype })), t.tensor(y, { dtype: args.dtype })).backward();
      if (args.maxGradNorm !== undefined) t.optim.clipGradNorm(model.parameters(), args.maxGradNorm);
      optimizer.step();
    }
    return model.parameters().map((p) => Array.from(p.data()));
  } finally {
    t.setBackend(previous);
  }
}

function maxDifference(a: number[][], b: number[][]): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  a.forEach((row, i) => {
    assert.equal(row.length, b[i]!.length);
    row.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - b[i]![j]!)); });
  });
  return worst;
}

async function runDdp(worldSize: number, args: DdpArgs): Promise<ReplicaResult[]> {
  return runThreadRanks<DdpArgs, ReplicaResult>({ worldSize, module: ranksModule, exportName: 'trainReplica', args });
}

const base: DdpArgs = { backend: 'cpu', dtype: 'float64', steps: 8, accumulate: 1, batch: 24, optimizer: 'sgd' };

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

const parameterCount = (args: DdpArgs): number => makeModel(args, 0).parameters().reduce((n, p) => n + p.size, 0);

for (const [stage, worldSize, optimizer, maxGradNorm] of [[1, 2, 'sgd', undefined], [2, 4, 'sgd', undefined], [2, 3, 'adam', undefined], [2, 2, 'sgd', 0.05]] as const) {
  test(`ZeRO-${stage}, ${worldSize} ranks, ${optimizer}${maxGradNorm ? ', gradient norm clipped' : ''}: float64 = one process on whole batches; optimizer state split over the ranks`, { timeout: 120_000 }, async () => {
    const args: DdpArgs = { ...base, optimizer, stage, maxGradNorm };
    const replicas = await runThreadRanks<DdpArgs, ZeroResult>({ worldSize, module: ranksModule, exportName: 'trainZeroReplica', args });
    const reference = trainReference(args);
    const n = parameterCount(args);
    const statePerElement = optimizer === 'adam' ? 2 : 1; // Adam: m and v; SGD with momentum: the buffer
    assert.equal(replicas.reduce((k, r) => k + r.ownedElements, 0), n);
    for (const r of replicas) {
      const diff = maxDifference(r.params, reference);
      assert.ok(diff < 1e-12, `largest difference from single-process training: ${diff}`);
      assert.ok(Math.abs(r.ownedElements - n / worldSize) <= 1, `owns ${r.ownedElements} of ${n}`);
      assert.equal(r.stateElements, statePerElement * r.ownedElements);
      assert.equal(r.gradsLeft, stage === 1, stage === 1 ? 'stage 1 keeps the averaged gradients' : 'stage 2 releases the full gradients');
    }
  });
}
