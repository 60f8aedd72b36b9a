import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activationLayersInFlight, closedFormBubble, modelPreset, parallelConfig, rankOrder, scheduleNames, simulatePipeline } from '../../src/plan/index.js';

const near = (a: number, b: number, tol = 1e-9): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('GPipe and 1F1B with equal stages: bubble = (p−1)/(m+p−1) of total, (p−1)/m of ideal (Huang et al. §2.3; Narayanan et al. §2.2.1)', () => {
  for (const schedule of ['gpipe', '1f1b'] as const) {
    for (const [p, m] of [[2, 4], [4, 8], [4, 16], [8, 32], [3, 7]] as const) {
      const r = simulatePipeline({ schedule, stages: p, microBatches: m, forward: 1, backward: 2 });
      const cf = closedFormBubble(schedule, p, m);
      near(r.bubbleOfTotal, (p - 1) / (m + p - 1));
      near(r.bubbleOfTotal, cf.ofTotal);
      near(r.bubbleOfIdeal, cf.ofIdeal);
      near(r.stepTime, (m + p - 1) * 3);
    }
  }
});

test('interleaved 1F1B: bubble = (1/v)(p−1)/m of ideal (Narayanan et al. §2.2.2)', () => {
  for (const [p, m, v] of [[4, 8, 2], [4, 16, 4], [8, 16, 2], [8, 32, 3]] as const) {
    const r = simulatePipeline({ schedule: 'interleaved-1f1b', stages: p, microBatches: m, interleave: v, forward: 1, backward: 2 });
    near(r.bubbleOfIdeal, closedFormBubble('interleaved-1f1b', p, m, v).ofIdeal);
  }
  assert.throws(() => simulatePipeline({ schedule: 'interleaved-1f1b', stages: 4, microBatches: 6, forward: 1, backward: 2 }), /multiple of stages/);
});

test('peak in-flight activations: 1F1B stage d holds p−d micro-batches, GPipe all m, interleaved p + (p−1)/v (= the memory model)', () => {
  const p = 4, m = 8;
  assert.deepEqual(simulatePipeline({ schedule: '1f1b', stages: p, microBatches: m, forward: 1, backward: 2 }).peakActivations, [4, 3, 2, 1]);
  assert.deepEqual(simulatePipeline({ schedule: 'gpipe', stages: p, microBatches: m, forward: 1, backward: 2 }).peakActivations, [8, 8, 8, 8]);
  const v = 2;
  const inter = simulatePipeline({ schedule: 'interleaved-1f1b', stages: p, microBatches: m, interleave: v, forward: 1, backward: 2 });
  near(inter.peakActivations[0]!, p + (p - 1) / v);
  // the memory model's closed form counts the same thing in layers
  const model = modelPreset('gpt3-175b');
  const layers = activationLayersInFlight(model, parallelConfig({ pp: p, interleave: v, globalBatch: m }));
  near(layers / (model.layers / p), inter.peakActivations[0]!);
});

test('uneven stages: the slowest stage sets the pace and the simulated step exceeds the equal-stage closed form', () => {
  const p = 4, m = 16;
  const even = simulatePipeline({ schedule: '1f1b', stages: p, microBatches: m, forward: 1, backward: 2 });
  const uneven = simulatePipeline({ schedule: '1f1b', stages: p, microBatches: m, forward: [1, 1, 1.5, 0.5], backward: [2, 2, 3, 1] });
  // same total work, but the 1.5× stage dominates: at least m × its (F+B)
  assert.ok(uneven.stepTime >= m * 4.5);
  assert.ok(uneven.stepTime > even.stepTime);
  // relative to the busiest device the bubble is still the fill/drain, but of total time it grows
  assert.ok(uneven.bubbleOfTotal > even.bubbleOfTotal);
  // p2p cost lengthens the step
  const withComm = simulatePipeline({ schedule: '1f1b', stages: p, microBatches: m, forward: 1, backward: 2, p2p: 0.1 });
  assert.ok(withComm.stepTime > even.stepTime);
});

test('asynchronous schedules: no flush bubble in steady state; PipeDream stashes p−d versions, 2BW at most 2, AMPNet 1', () => {
  const p = 4, m = 8;
  for (const schedule of ['pipedream', 'pipedream-2bw', 'ampnet'] as const) {
    const r = simulatePipeline({ schedule, stages: p, microBatches: m, forward: 1, backward: 2 });
    near(r.stepTime, m * 3);
    near(r.bubbleOfTotal, 0);
  }
  assert.deepEqual(simulatePipeline({ schedule: 'pipedream', stages: p, microBatches: m, forward: 1, backward: 2 }).weightVersions, [4, 3, 2, 1]);
  const twoBw = simulatePipeline({ schedule: 'pipedream-2bw', stages: p, microBatches: m, forward: 1, backward: 2 }).weightVersions;
  assert.ok(twoBw.every((v) => v <= 2) && twoBw[0] === 2);
  assert.deepEqual(simulatePipeline({ schedule: 'ampnet', stages: p, microBatches: m, forward: 1, backward: 2 }).weightVersions, [1, 1, 1, 1]);
});

test('TeraPipe: k token slices shrink the bubble to (p−1)/(mk+p−1); Chimera and ZB-H1 beat 1F1B', () => {
  const p = 4, m = 4, k = 4;
  const tera = simulatePipeline({ schedule: 'terapipe', stages: p, microBatches: m, slices: k, forward: 1, backward: 2 });
  near(tera.bubbleOfTotal, (p - 1) / (m * k + p - 1));
  const one = simulatePipeline({ schedule: '1f1b', stages: p, microBatches: 8, forward: 1, backward: 2 });
  const chimera = simulatePipeline({ schedule: 'chimera', stages: p, microBatches: 8, forward: 1, backward: 2 });
  const zb = simulatePipeline({ schedule: 'zb-h1', stages: p, microBatches: 8, forward: 1, backward: 2 });
  assert.ok(chimera.bubbleOfTotal < one.bubbleOfTotal);
  assert.ok(zb.stepTime < one.stepTime);
  assert.deepEqual(chimera.weightVersions, [2, 2, 2, 2]);
  // ZB-H1 keeps memory near 1F1B's: at most one extra micro-batch per stage
  zb.peakActivations.forEach((a, d) => assert.ok(a <= p - d + 1));
});

test('every schedule runs every op exactly once and respects dependencies', () => {
  for (const schedule of scheduleNames) {
    const m = 8, p = 4;
    const r = simulatePipeline({ schedule, stages: p, microBatches: m, forward: [1, 1.2, 0.8, 1], backward: [2, 2.2, 1.9, 2], p2p: 0.05 });
    for (let d = 0; d < p; d++) {
      const mine = r.ops.filter((o) => o.device === d).sort((a, b) => a.start - b.start);
      for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.start >= mine[i - 1]!.end - 1e-9, `${schedule}: overlap on device ${d}`);
    }
    assert.ok(r.bubbleOfTotal >= -1e-9 && r.bubbleOfTotal < 1, schedule);
  }
  assert.throws(() => simulatePipeline({ schedule: '1f1b', stages: 4, microBatches: 8, forward: [1, 2], backward: 2 }), /2 entries but there are 4 stages/);
});

test('ZB-H1 with a W share per stage, and given orders: a simulation replayed as its own fixed order gives the same times; a crossed order is a deadlock', () => {
  const p = 3, m = 5;
  const base = { stages: p, microBatches: m, forward: [1, 0.7, 0.9], backward: [2, 1.6, 1.8], p2p: 0.1 };
  const zb = simulatePipeline({ schedule: 'zb-h1', ...base, weightGradFraction: [0.9, 0.4, 0.5] });
  for (const o of zb.ops) {
    const share = [0.9, 0.4, 0.5][o.device]!, bwd = base.backward[o.device]!;
    if (o.kind === 'W') near(o.end - o.start, bwd * share);
    if (o.kind === 'B') near(o.end - o.start, bwd * (1 - share));
  }
  const orders = Array.from({ length: p }, (_, d) => rankOrder(zb, d));
  const replay = simulatePipeline({ schedule: 'zb-h1', ...base, weightGradFraction: [0.9, 0.4, 0.5], order: orders });
  assert.equal(replay.stepTime, zb.stepTime);
  assert.deepEqual(replay.ops.map((o) => [o.start, o.end]), zb.ops.map((o) => [o.start, o.end]));
  // Another fixed order under the same times: 1F1B's order timed as given equals the 1f1b schedule.
  const oneF = simulatePipeline({ schedule: '1f1b', ...base });
  const asGiven = simulatePipeline({ schedule: '1f1b', ...base, order: Array.from({ length: p }, (_, d) => rankOrder(oneF, d)) });
  assert.equal(asGiven.stepTime, oneF.stepTime);
  // Device 1 first runs micro-batch 0's B, which waits (through device 2) for its own F, listed later.
  const crossed = orders.map((o) => [...o]);
  crossed[1] = [{ kind: 'B', microBatch: 0, chunk: 0 }, ...crossed[1]!.filter((x) => !(x.kind === 'B' && x.microBatch === 0))];
  assert.throws(() => simulatePipeline({ schedule: 'zb-h1', ...base, order: crossed }), /the given order deadlocks/);
  assert.throws(() => simulatePipeline({ schedule: 'zb-h1', ...base, order: orders.slice(1) }), /order has 2 device lists but there are 3 stages/);
  assert.throws(() => simulatePipeline({ schedule: 'zb-h1', ...base, order: [orders[0]!, [...orders[1]!, orders[1]![0]!], orders[2]!] }), /order\[1\]\[15\] \(F of micro-batch 0, chunk 0\) is repeated on device 1/);
  assert.throws(() => simulatePipeline({ schedule: '1f1b', ...base, order: orders }), /order\[0\]\[\d+\] \(W of micro-batch \d, chunk 0\) is not a pass of device 0/);
  assert.throws(() => simulatePipeline({ schedule: 'chimera', stages: 2, microBatches: 2, forward: 1, backward: 2, order: [[], []] }), /a given order runs only with gpipe, 1f1b, interleaved-1f1b or zb-h1/);
  assert.throws(() => simulatePipeline({ schedule: 'zb-h1', ...base, weightGradFraction: [0.5, 1] }), /weightGradFraction has 2 entries but there are 3 stages/);
  assert.throws(() => simulatePipeline({ schedule: 'zb-h1', ...base, weightGradFraction: [0.5, 0, 0.5] }), /must be in \(0, 1\), got 0.5, 0, 0.5/);
});
