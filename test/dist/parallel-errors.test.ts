// Misusing the parallel training layers gets an error that says what is wrong, on every rank,
// rather than a hang or a wrong result.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runThreadRanks } from '../../src/dist/index.js';

test('parallel training layers: clear errors for bad options and inputs', { timeout: 60_000 }, async () => {
  const [first, second] = await runThreadRanks<unknown, Record<string, string>>({ worldSize: 2, module: new URL('./fixtures/error-ranks.ts', import.meta.url), exportName: 'misuse' });
  for (const m of [first!, second!]) {
    assert.match(m.ddpRoot!, /root 5 is not a rank of this group of 2/);
    assert.match(m.zeroStage!, /stage must be 1 or 2, got 3; for stage 3 \(sharded parameters\) use FullyShardedDataParallel/);
    assert.match(m.zeroOptimizer!, /makeOptimizer must build the optimizer over the parameters it is given/);
    assert.match(m.fsdpAliased!, /'weight' \(unit 0\) and 'weight' \(unit 1\) are different Parameter objects over the same memory; .*holding one Parameter in both places/);
    assert.match(m.pipelineInterleave!, /interleaved-1f1b needs micro-batches \(3\) to be a multiple of the ranks \(2\); use 4/);
    assert.match(m.tensorParallelWidth!, /the MLP's hidden width \(5\) is not divisible by the group's 2 ranks/);
    assert.match(m.expertCount!, /3 experts do not split over 2 ranks/);
    assert.match(m.crossEntropyTargets!, /5 targets for 4 rows of logits/);
    assert.match(m.stackBackward!, /call forward first/);
  }
  assert.match(first!.pipelineInputs!, /the first stage must pass 2 input micro-batches, got 1/);
  // The last stage, waiting for an activation that never comes, is told when the first stage leaves.
  assert.match(second!.pipelineInputs!, /rank 0 was lost/);
});
