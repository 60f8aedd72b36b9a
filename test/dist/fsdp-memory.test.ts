// FullyShardedDataParallel's communication arrays: a few slots reused every step, sized to the
// largest flat space, instead of one set per space (which held (2 + 2/W)× the model on every rank).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runThreadRanks } from '../../src/dist/index.js';
import { maxDifference } from './data-parallel-reference.js';
import type { SlotsArgs, SlotsResult } from './fixtures/fsdp-slots-ranks.js';

const ranksModule = new URL('./fixtures/fsdp-slots-ranks.ts', import.meta.url);
const float64 = 8;

for (const worldSize of [2, 3]) {
  test(`FSDP, 5 units of different sizes, ${worldSize} ranks, prefetch on and off: the communication arrays are one gather's (and, with prefetch, one overlapping reduce-scatter's) at the largest space's size, allocated in the first step and reused; training = DDP within 1e-12`, { timeout: 120_000 }, async () => {
    const steps = 6;
    const results = await runThreadRanks<SlotsArgs, SlotsResult>({ worldSize, module: ranksModule, exportName: 'trainSlots', args: { steps, rows: 4 } });
    for (const [rank, r] of results.entries()) {
      assert.deepEqual(r.spaces.map((s) => s.elements), [2112, 6240, 6208, 4160, 520]);
      const largest = r.spaces[1]!;
      const total = r.spaces.reduce((n, s) => n + s.elements, 0);
      for (const run of r.runs) {
        const what = `rank ${rank}, prefetch ${run.prefetch}`;
        // Slots in use at once: the gather's, and with prefetch a reduce-scatter's beside the next gather.
        const slots = run.prefetch ? 2 : 1;
        const first = run.memory[0]!;
        assert.equal(first.wholeBufferBytes, slots * largest.elements * float64, `${what}: whole-size arrays`);
        assert.equal(first.bufferBytes, slots * (largest.elements + largest.shardElements) * float64, `${what}: all arrays`);
        assert.equal(first.bufferAllocations, 2 * slots, `${what}: arrays allocated in the first step`);
        // One set per space would be (2 + 2/W)× the model: 3.1× (prefetch) to 6.2× more here.
        assert.ok(first.bufferBytes * 2.5 < (2 + 2 / worldSize) * total * float64, `${what}: ${first.bufferBytes} B of arrays`);
        for (const [step, m] of run.memory.entries()) {
          assert.deepEqual([m.bufferBytes, m.wholeBufferBytes, m.bufferAllocations], [first.bufferBytes, first.wholeBufferBytes, first.bufferAllocations], `${what}: step ${step} kept other arrays`);
        }
        assert.equal(run.sharedBuffersAllocatedWarm, 0, `${what}: SharedArrayBuffers allocated by steps 3-${steps}`);
        // The reduce-scatter reduces in FSDP's own slot (overwriteInput): no copy into the group's scratch.
        assert.deepEqual(run.groupScratchGrowth, run.groupScratchGrowth.map(() => 0), `${what}: the group's scratch grew`);
        const diff = maxDifference(run.params, run.ddpParams);
        assert.ok(diff < 1e-12, `${what}: parameters differ from DDP's by ${diff}`);
      }
    }
  });
}
