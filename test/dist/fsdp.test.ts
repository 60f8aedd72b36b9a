// FullyShardedDataParallel (ZeRO stage 3) against single-process training on whole batches, and
// the share of the parameters each rank keeps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runThreadRanks } from '../../src/dist/index.js';
import { makeModel, type DdpArgs, type FsdpResult, type ZeroCheckpoint } from './fixtures/ddp-ranks.js';
import { base, checkCheckpoint, maxDifference, ranksModule, trainReference } from './data-parallel-reference.js';

const cases = [[2, 1, 'sgd'], [3, 2, 'adam'], [4, 1, 'sgd']] as const;
for (const [worldSize, accumulate, optimizer] of cases) {
  test(`FSDP (ZeRO-3), ${worldSize} ranks, ${accumulate} micro-batch(es), ${optimizer}: float64 = one process on whole batches; each rank keeps 1/${worldSize} of the parameters`, { timeout: 120_000 }, async () => {
    const args: DdpArgs = { ...base, accumulate, optimizer };
    const results = await runThreadRanks<DdpArgs, FsdpResult>({ worldSize, module: ranksModule, exportName: 'trainShardedReplica', args });
    const reference = trainReference(args);
    const n = makeModel(args, 0).parameters().reduce((k, p) => k + p.size, 0);
    assert.equal(results.reduce((k, r) => k + r.shardElements, 0), n);
    for (const r of results) {
      const diff = maxDifference(r.params, reference);
      assert.ok(diff < 1e-12, `largest difference from single-process training: ${diff}`);
      assert.ok(Math.abs(r.shardElements - n / worldSize) <= 2, `keeps ${r.shardElements} of ${n}`);
      assert.ok(r.freed, 'the model\'s own parameter tensors are freed between steps');
    }
  });
}

for (const prefetch of [true, false]) {
  test(`FSDP with dropout and BatchNorm, prefetch ${prefetch}: the recomputation replays the masks and updates the statistics once (= DDP on the same rows, 2 ranks, float64)`, { timeout: 120_000 }, async () => {
    const args = { ...base, optimizer: 'adam' as const, batchNorm: true, dropout: 0.3, prefetch };
    const results = await runThreadRanks<typeof args, Awaited<ReturnType<typeof import('./fixtures/ddp-ranks.js')['trainShardedAgainstDdp']>>>({ worldSize: 2, module: ranksModule, exportName: 'trainShardedAgainstDdp', args });
    for (const r of results) {
      const diff = maxDifference(r.fsdp, r.ddp);
      assert.ok(diff < 1e-12, `parameters differ from DDP's by ${diff}`);
      assert.equal(r.fsdpBuffers.length, 3); // running mean, variance and the batch count
      const buffers = maxDifference(r.fsdpBuffers, r.ddpBuffers);
      assert.ok(buffers < 1e-12, `BatchNorm statistics differ from DDP's by ${buffers}`);
    }
    // Each rank draws its own masks and sees its own rows: the ranks' statistics differ.
    assert.ok(maxDifference(results[0]!.fsdpBuffers.slice(0, 2), results[1]!.fsdpBuffers.slice(0, 2)) > 1e-6);
  });
}

test('FSDP checkpoint: the consolidated optimizer state equals one process\'s, and training resumes from it on another number of ranks', { timeout: 120_000 }, async () => {
  const args: DdpArgs = { ...base, optimizer: 'adam', steps: 4 };
  type Args = DdpArgs & { firstStep: number; resume?: ZeroCheckpoint };
  const [saved] = await runThreadRanks<Args, ZeroCheckpoint>({ worldSize: 3, module: ranksModule, exportName: 'trainShardedCheckpointed', args: { ...args, firstStep: 0 } });
  const [resumed] = await runThreadRanks<Args, ZeroCheckpoint>({ worldSize: 2, module: ranksModule, exportName: 'trainShardedCheckpointed', args: { ...args, firstStep: 4, resume: saved! } });
  checkCheckpoint(args, saved!, resumed!, 'resumed on 2 ranks from a 3-rank checkpoint');
});
