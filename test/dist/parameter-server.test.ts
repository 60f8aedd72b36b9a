// The parameter server: bsp against single-process training on whole batches; ssp's staleness
// bound and asp's lack of one with a slow worker; every pushed gradient applied.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as t from '../../src/index.js';
import { runThreadRanks } from '../../src/dist/index.js';
import { batchOf, makeModel, type DdpArgs } from './fixtures/ddp-ranks.js';
import type { PsArgs, PsResult } from './fixtures/ps-ranks.js';
import { base, maxDifference, trainReference } from './data-parallel-reference.js';

const psModule = new URL('./fixtures/ps-ranks.ts', import.meta.url);

/** Mean squared error of the model with these parameters on a batch none of the runs trained on. */
function heldOutLoss(args: DdpArgs, params: number[][]): number {
  const previous = t.currentBackendName();
  t.setBackend(args.backend);
  try {
    const model = makeModel(args, 0);
    model.parameters().forEach((p, i) => t.nn.assignValues(p, params[i]!));
    const { x, y } = batchOf({ ...args, batch: 200 }, 999);
    return t.mseLoss(model.call(t.tensor(x, { dtype: args.dtype })), t.tensor(y, { dtype: args.dtype })).item();
  } finally {
    t.setBackend(previous);
  }
}

test('parameter server, bsp: 3 workers take the steps of one process on whole batches', { timeout: 120_000 }, async () => {
  const args: PsArgs = { ...base, mode: 'bsp', slowWorkerMs: 5 };
  const [server, ...workers] = await runThreadRanks<PsArgs, PsResult>({ worldSize: 4, module: psModule, exportName: 'runParameterServer', args });
  assert.equal(server!.updates, args.steps);
  const reference = trainReference(args);
  for (const r of [server!, ...workers]) assert.ok(maxDifference(r.params, reference) < 1e-12);
  for (const w of workers) w.pulls.forEach((p) => assert.equal(p.clock, p.slowestClock, 'bsp: lock step'));
});

for (const [mode, staleness] of [['ssp', 0], ['ssp', 2], ['asp', undefined]] as const) {
  test(`parameter server, ${mode}${staleness !== undefined ? ` s=${staleness}` : ''}: every gradient applied; staleness ${staleness ?? 'unbounded'}; the model learns`, { timeout: 120_000 }, async () => {
    const args: PsArgs = { ...base, steps: 24, mode, staleness, slowWorkerMs: 15 };
    const [server, ...workers] = await runThreadRanks<PsArgs, PsResult>({ worldSize: 3, module: psModule, exportName: 'runParameterServer', args });
    assert.equal(server!.updates, workers.length * args.steps, 'one update per pushed gradient');
    const ahead = Math.max(...workers.flatMap((w) => w.pulls.map((p) => p.clock - p.slowestClock)));
    if (staleness !== undefined) assert.ok(ahead <= staleness, `a worker ran ${ahead} steps ahead of the slowest (bound ${staleness})`);
    else assert.ok(ahead > 2, `with a slow worker, asp lets the fast one run ahead (it ran ${ahead} ahead)`);
    if (staleness === 2) assert.equal(ahead, 2, 'the fast worker uses the slack it is given');
    const before = heldOutLoss(args, makeModel(args, 100).parameters().map((p) => Array.from(p.data())));
    const after = heldOutLoss(args, server!.params);
    assert.ok(after < 0.8 * before, `held-out loss ${before} -> ${after}`);
  });
}
