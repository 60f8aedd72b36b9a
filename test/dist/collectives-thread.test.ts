// Every collective x algorithm x dtype x reduction on the thread transport, against a
// sequential reference: sub-groups of sizes 1-8 carved out of an 8-thread world (which also
// exercises newGroup with non-contiguous, reordered ranks), plus whole worlds of other sizes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runThreadRanks } from '../../src/dist/index.js';
import type { MatrixResult } from './fixtures/collective-matrix.js';
import type { MatrixArgs } from './fixtures/thread-ranks.js';

const ranksModule = new URL('./fixtures/thread-ranks.ts', import.meta.url);

function assertClean(results: MatrixResult[], minCasesPerRank: number): void {
  const failures = results.flatMap((r) => r.failures);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} mismatches`);
  for (const r of results) assert.ok(r.cases >= minCasesPerRank, `only ${r.cases} cases ran on a rank`);
}

test('thread: all collectives on sub-groups of size 1..8 of an 8-rank world', { timeout: 240_000 }, async () => {
  const results = await runThreadRanks<MatrixArgs, MatrixResult>({
    worldSize: 8,
    module: ranksModule,
    exportName: 'matrixOnSubgroups',
    args: { groupSizes: [1, 2, 3, 4, 5, 6, 7, 8], lengths: [1, 13] },
  });
  // Every rank belongs to at least the size-8 group: 460 cases per group at two lengths.
  assertClean(results, 460);
});

for (const worldSize of [1, 2, 3]) {
  test(`thread: all collectives on a world of ${worldSize}`, { timeout: 120_000 }, async () => {
    const results = await runThreadRanks<MatrixArgs, MatrixResult>({
      worldSize,
      module: ranksModule,
      exportName: 'matrixOnWorld',
      args: { groupSizes: [], lengths: [7] },
    });
    assert.equal(results.length, worldSize);
    assertClean(results, 200);
  });
}

test('thread: large arrays through the zero-copy and multi-chunk paths', { timeout: 120_000 }, async () => {
  const problems = await runThreadRanks<unknown, string[]>({ worldSize: 3, module: ranksModule, exportName: 'largeArrays' });
  assert.deepEqual(problems.flat(), []);
});

test('thread: 2-rank all-reduce as an exchange of halves, shared (written back in place) and plain arrays in every mix', { timeout: 120_000 }, async () => {
  const problems = await runThreadRanks<unknown, string[]>({ worldSize: 2, module: ranksModule, exportName: 'pairAllReduceCases' });
  assert.deepEqual(problems.flat(), []);
});

test('thread: a zero-copy send completes even when the receiver leaves right after reading it', { timeout: 120_000 }, async () => {
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await runThreadRanks<unknown, boolean>({ worldSize: 2, module: ranksModule, exportName: 'sendThenLeave' }), [true, true]);
  }
});

test('thread: row and column groups of a 2x2 mesh and the world group with calls in flight at once', { timeout: 120_000 }, async () => {
  const problems = await runThreadRanks<unknown, string[]>({ worldSize: 4, module: ranksModule, exportName: 'meshConcurrency' });
  assert.deepEqual(problems.flat(), []);
});

test('thread: calls on destroyed groups fail with advice', { timeout: 60_000 }, async () => {
  const messages = (await runThreadRanks<unknown, string[]>({ worldSize: 2, module: ranksModule, exportName: 'afterDestroy' })).flat();
  assert.equal(messages.length, 4);
  assert.equal(messages.filter((m) => /barrier: this sub-group was destroyed; make a new one with newGroup/.test(m)).length, 2);
  assert.equal(messages.filter((m) => /allReduce: the process group was destroyed; create a new one with initProcessGroup/.test(m)).length, 2);
});

test('thread: a new shared array per message works past the per-peer registration cap', { timeout: 60_000 }, async () => {
  assert.deepEqual(await runThreadRanks<unknown, number>({ worldSize: 2, module: ranksModule, exportName: 'manySharedArrays' }), [0, 0]);
});
