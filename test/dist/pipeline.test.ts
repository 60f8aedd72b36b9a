// PipelineParallel against one process training the whole model on whole batches, and its
// schedules against the planner's pipeline simulator.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as t from '../../src/index.js';
import { ParallelStack, PipelineParallel, initProcessGroup, pipelineOrder, runThreadRanks, type PipelineSchedule } from '../../src/dist/index.js';
import { rankOrder, simulatePipeline } from '../../src/plan/index.js';
import { trainWhole, type PipeArgs, type StageResult } from './fixtures/pipeline-ranks.js';
import { assertThrowsWith } from '../helpers/close.js';

const ranksModule = new URL('./fixtures/pipeline-ranks.ts', import.meta.url);

// ZB-H1's order in the simulator is a priority rule, so it depends on the times: forward 1 and
// backward 2, which zb-h1 splits into B and W of 1 each (weightGradFraction 0.5), give equal F, B
// and W times, the order pipelineOrder runs.
test('pipeline orders: the runtime runs the planner simulator\'s per-rank order for GPipe, 1F1B, interleaved 1F1B and ZB-H1', () => {
  const cases: [PipelineSchedule, number, number, number][] = [
    ['gpipe', 2, 1, 1], ['gpipe', 3, 5, 1], ['1f1b', 2, 4, 1], ['1f1b', 3, 5, 1], ['1f1b', 4, 8, 1], ['1f1b', 4, 2, 1],
    ['interleaved-1f1b', 2, 4, 2], ['interleaved-1f1b', 3, 6, 2], ['interleaved-1f1b', 2, 6, 3], ['interleaved-1f1b', 4, 8, 2],
    ['zb-h1', 1, 3, 1], ['zb-h1', 2, 1, 1], ['zb-h1', 2, 4, 1], ['zb-h1', 3, 5, 1], ['zb-h1', 4, 8, 1], ['zb-h1', 4, 2, 1], ['zb-h1', 4, 3, 1],
    ['zb-h1', 5, 3, 1], ['zb-h1', 6, 13, 1], ['zb-h1', 8, 24, 1],
  ];
  for (const [schedule, p, m, v] of cases) {
    const sim = simulatePipeline({ schedule, stages: p, microBatches: m, forward: 1, backward: 2, interleave: v > 1 ? v : undefined });
    for (let s = 0; s < p; s++) {
      const planned = sim.ops.filter((o) => o.device === s).sort((a, b) => a.start - b.start).map((o) => `${o.kind}${o.microBatch}.${o.chunk}`);
      const ran = pipelineOrder(schedule, p, s, m, v).map((o) => `${o.kind}${o.microBatch}.${o.chunk}`);
      assert.deepEqual(ran, planned, `${schedule} p=${p} m=${m} v=${v} rank ${s}`);
    }
  }
});

const cases: [PipelineSchedule, number, number, number][] = [
  ['1f1b', 2, 4, 1], ['1f1b', 3, 6, 1], ['gpipe', 4, 4, 1], ['1f1b', 5, 3, 1], ['interleaved-1f1b', 2, 4, 2], ['interleaved-1f1b', 3, 6, 2],
  ['zb-h1', 2, 4, 1], ['zb-h1', 3, 6, 1], ['zb-h1', 4, 8, 1], ['zb-h1', 4, 3, 1],
];
for (const [schedule, stages, microBatches, chunks] of cases) {
  test(`pipeline ${schedule}, ${stages} ranks${chunks > 1 ? ` × ${chunks} chunks` : ''}, ${microBatches} micro-batches: float64 = one process on whole batches`, { timeout: 120_000 }, async () => {
    const args: PipeArgs = { schedule, microBatches, steps: 6, batch: 24, chunks };
    const results = await runThreadRanks<PipeArgs, StageResult>({ worldSize: stages, module: ranksModule, exportName: 'trainStage', args });
    const whole = trainWhole(args);
    const covered = new Set<number>();
    for (const r of results) {
      for (const { index, values } of r.params) {
        const expected = whole.params[index]!;
        const diff = Math.max(...values.map((v, j) => Math.abs(v - expected[j]!)));
        assert.ok(diff < 1e-12, `parameter ${index}: difference ${diff}`);
        covered.add(index);
      }
    }
    assert.equal(covered.size, whole.params.length, 'the ranks hold every parameter');
    // Activation memory: GPipe holds every micro-batch; 1F1B and ZB-H1 at most p − s on stage s
    // between F and B. ZB-H1 holds one more between its B and W (what W needs) where it defers W,
    // as the simulator counts too.
    if (chunks === 1) {
      const sim = simulatePipeline({ schedule, stages, microBatches, forward: 1, backward: 2 });
      results.forEach((r, s) => {
        assert.equal(r.peakInFlight, schedule === 'gpipe' ? microBatches : Math.min(stages - s, microBatches), `stage ${s}`);
        assert.equal(r.peakHeld, sim.peakActivations[s], `stage ${s}: held from F to the last backward pass`);
        if (schedule === 'zb-h1') assert.ok(r.peakHeld <= r.peakInFlight + 1, `stage ${s}: at most one micro-batch awaits its W`);
      });
    }
    const last = results[results.length - 1]!;
    last.losses.forEach((l, i) => assert.ok(Math.abs(l - whole.losses[i]!) < 1e-12, `step ${i} loss ${l} vs ${whole.losses[i]}`));
  });
}

test('pipeline × data parallel: 2 pipelines of 2 stages (1F1B), stage gradients averaged over the pipelines = one process on whole batches', { timeout: 120_000 }, async () => {
  const args: PipeArgs = { schedule: '1f1b', microBatches: 3, steps: 6, batch: 24, replicas: 2 };
  const results = await runThreadRanks<PipeArgs, StageResult>({ worldSize: 4, module: ranksModule, exportName: 'trainPipelineDataParallel', args });
  const whole = trainWhole(args);
  const covered = new Set<number>();
  for (const r of results) {
    for (const { index, values } of r.params) {
      const diff = Math.max(...values.map((v, j) => Math.abs(v - whole.params[index]![j]!)));
      assert.ok(diff < 1e-12, `parameter ${index}: difference ${diff}`);
      covered.add(index);
    }
  }
  assert.equal(covered.size, whole.params.length);
});

for (const schedule of ['1f1b', 'zb-h1'] as const) test(`pipeline ${schedule} on the wasm backend in float32: 3 ranks end within float32 rounding of one process`, { timeout: 120_000 }, async () => {
  const args: PipeArgs = { schedule, microBatches: 4, steps: 6, batch: 24, backend: 'wasm' };
  const results = await runThreadRanks<PipeArgs, StageResult>({ worldSize: 3, module: ranksModule, exportName: 'trainStage', args });
  const whole = trainWhole(args);
  for (const r of results) {
    for (const { index, values } of r.params) {
      const diff = Math.max(...values.map((v, j) => Math.abs(v - whole.params[index]![j]!)));
      assert.ok(diff < 1e-4, `parameter ${index}: difference ${diff}`);
    }
  }
});

test('pipeline options: zb-h1 refuses several chunks per rank and tensor-parallel (ParallelStack) stages', async () => {
  const group = await initProcessGroup({ rank: 0, worldSize: 1 });
  try {
    const block = (): t.nn.Module => new t.nn.Linear(3, 3);
    assertThrowsWith(() => new PipelineParallel([block(), block()], group, { microBatches: 2, schedule: 'zb-h1' }), 'zb-h1', 'one chunk per rank, got 2');
    assertThrowsWith(() => new PipelineParallel(new ParallelStack([block()]), group, { microBatches: 2, schedule: 'zb-h1' }), 'zb-h1', 'ParallelStack', 'use 1f1b');
    assertThrowsWith(() => new PipelineParallel(block(), group, { microBatches: 2, schedule: 'zb-h2' as PipelineSchedule }), "'zb-h2'", 'zb-h1');
  } finally {
    await group.destroy();
  }
});

test('zb-h1 in the order a simulation with uneven times gives (rankOrder → order): another order on some rank, the same training as one float64 process', { timeout: 120_000 }, async () => {
  const timings = { forward: [1.27, 0.63, 1.33, 1.87], backward: [2.86, 4.22, 3.88, 2.61], weightGradFraction: 0.26 };
  const sim = simulatePipeline({ schedule: 'zb-h1', stages: 4, microBatches: 8, ...timings });
  const differs = [0, 1, 2, 3].some((r) => JSON.stringify(rankOrder(sim, r)) !== JSON.stringify(pipelineOrder('zb-h1', 4, r, 8)));
  assert.ok(differs, 'the uneven times move some W passes');
  const args: PipeArgs = { schedule: 'zb-h1', microBatches: 8, steps: 4, batch: 24, timings };
  const results = await runThreadRanks<PipeArgs, StageResult>({ worldSize: 4, module: ranksModule, exportName: 'trainStage', args });
  const whole = trainWhole(args);
  for (const r of results) {
    for (const { index, values } of r.params) {
      const diff = Math.max(...values.map((v, j) => Math.abs(v - whole.params[index]![j]!)));
      assert.ok(diff < 1e-12, `parameter ${index}: difference ${diff}`);
    }
  }
});

test('PipelineParallel refuses an order that misses, repeats or reorders a micro-batch\'s passes', () => {
  const group = { size: 2, rank: 0 } as never;
  const make = (order: { kind: 'F' | 'B' | 'W'; microBatch: number; chunk: number }[]) => () => new PipelineParallel(new t.nn.Linear(2, 2), group, { microBatches: 2, schedule: 'zb-h1', order });
  const F = (i: number) => ({ kind: 'F' as const, microBatch: i, chunk: 0 }), B = (i: number) => ({ kind: 'B' as const, microBatch: i, chunk: 0 }), W = (i: number) => ({ kind: 'W' as const, microBatch: i, chunk: 0 });
  assert.doesNotThrow(make([F(0), F(1), B(0), W(0), B(1), W(1)]));
  assert.throws(make([F(0), B(0), W(0), F(1), B(1)]), /order has 5 passes; 2 micro-batches × 1 chunk\(s\) × 3 \(F, B, W\) = 6 are needed/);
  assert.throws(make([F(0), W(0), B(0), F(1), B(1), W(1)]), /order\[1\] \(W of micro-batch 0, chunk 0\): comes where its B pass is due; each micro-batch runs F then B then W/);
  assert.throws(make([F(0), F(2), B(0), W(0), B(1), W(1)]), /order\[1\].*micro-batches are 0..1/);
  assert.throws(() => new PipelineParallel(new t.nn.Linear(2, 2), group, { microBatches: 1, schedule: '1f1b', order: [F(0), B(0), W(0)] }), /1f1b runs F, B passes only/);
});
