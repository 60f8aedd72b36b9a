// ZeroOptimizer (ZeRO stages 1 and 2) against single-process training on whole batches, and the
// share of optimizer state each rank keeps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runThreadRanks } from '../../src/dist/index.js';
import { batchOf, makeModel, makeOptimizer, type DdpArgs, type ZeroCheckpoint, type ZeroResult } from './fixtures/ddp-ranks.js';
import { base, checkCheckpoint, maxDifference, ranksModule, trainReference } from './data-parallel-reference.js';

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


test('ZeRO-2 checkpoint: the consolidated optimizer state equals one process\'s, and training resumes from it on another number of ranks', { timeout: 120_000 }, async () => {
  const args: DdpArgs = { ...base, optimizer: 'adam', steps: 4 };
  type Args = DdpArgs & { firstStep: number; resume?: ZeroCheckpoint };
  const [saved] = await runThreadRanks<Args, ZeroCheckpoint>({ worldSize: 2, module: ranksModule, exportName: 'trainZeroCheckpointed', args: { ...args, firstStep: 0 } });
  const [resumed] = await runThreadRanks<Args, ZeroCheckpoint>({ worldSize: 3, module: ranksModule, exportName: 'trainZeroCheckpointed', args: { ...args, firstStep: 4, resume: saved! } });
  checkCheckpoint(args, saved!, resumed!, 'resumed on 3 ranks from a 2-rank checkpoint');
});
