// PipelineParallel frees what it made for each micro-batch when its last backward pass is done
// (fixtures/pipeline-memory-ranks.ts): from the second step on, a first or middle stage's wasm heap
// stays level instead of growing by the step's activations and gradients until the garbage
// collector runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runThreadRanks } from '../../src/dist/index.js';
import type { PipeMemoryArgs } from './fixtures/pipeline-memory-ranks.js';

const ranksModule = new URL('./fixtures/pipeline-memory-ranks.ts', import.meta.url);

for (const schedule of ['1f1b', 'gpipe', 'zb-h1'] as const) {
  test(`${schedule}: the first and middle stages' heap bytes stay level from step to step`, { timeout: 120_000 }, async () => {
    const bytes = await runThreadRanks<PipeMemoryArgs, number[]>({ worldSize: 3, module: ranksModule, exportName: 'stepBytes', args: { schedule, steps: 5 } });
    // Each micro-batch's activation, output and gradients are 32 × 256 floats = 32 KB apiece.
    for (const rank of [0, 1]) {
      const b = bytes[rank]!;
      const growth = b[b.length - 1]! - b[1]!;
      assert.equal(growth, 0, `${schedule}, rank ${rank}: the heap grew by ${growth} bytes over ${b.length - 2} steps (${b.join(', ')})`);
    }
  });
}
