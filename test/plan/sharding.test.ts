import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  enumerateSpecs, formatSpec, modelPreset, parseSpec, propagateShardings, reshardSeconds, solveSharding, transformerMlpGraph,
  type DeviceMesh, type OpGraph, type ShardingSpec,
} from '../../src/plan/index.js';

const nvlink = { alpha: 2e-6, beta: 1 / 230e9 };
const mesh8: DeviceMesh = { shape: [8], axes: [nvlink], flopsPerSecond: 218e12 };

test('the ILP rediscovers Megatron tensor parallelism for a GPT-3 MLP on 8 GPUs: fc1 column-split, fc2 row-split + all-reduce', async () => {
  const plan = await solveSharding(transformerMlpGraph(modelPreset('gpt3-175b')), mesh8);
  const byNode = new Map(plan.choices.map((c) => [c.node, c.strategy]));
  assert.equal(formatSpec(byNode.get('input:w1')!.output), 'RS0');
  assert.equal(formatSpec(byNode.get('input:w2')!.output), 'S0R');
  assert.equal(byNode.get('fc1')!.label, 'RS0 = RR x RS0');
  assert.equal(byNode.get('fc2')!.label, 'RR = RS0 x S0R');
  assert.ok(byNode.get('fc2')!.commSeconds > 0 && byNode.get('fc1')!.commSeconds === 0);
  assert.equal(plan.status, 'Optimal');
});

test('the ILP optimum equals brute force over all strategy combinations of a small graph', async () => {
  const g: OpGraph = {
    tensors: [{ name: 'x', shape: [64, 32] }, { name: 'w', shape: [32, 16], parameter: true }, { name: 'y', shape: [64, 16] }, { name: 'z', shape: [64, 16] }],
    ops: [{ kind: 'matmul', name: 'mm', inputs: ['x', 'w'], output: 'y' }, { kind: 'elementwise', name: 'relu', inputs: ['y'], output: 'z' }],
  };
  const mesh: DeviceMesh = { shape: [2, 2], axes: [{ alpha: 1e-6, beta: 1e-9 }, { alpha: 1e-6, beta: 1e-10 }], flopsPerSecond: 1e9 };
  const plan = await solveSharding(g, mesh);
  // brute force with the same cost terms
  const specs2 = enumerateSpecs(2, 2);
  const training = 3, commX = 2;
  let best = Infinity;
  const local = (t: [number, number], s: ShardingSpec): number => (t[0] * t[1] * 2) / s.reduce<number>((n, a) => n * (a === null ? 1 : 2), 1);
  for (const sx of specs2) for (const sw of specs2) for (const [m, k, n] of enumerateSpecs(3, 2) as [number | null, number | null, number | null][]) {
    for (const sz of specs2) {
      const parts = [m, k, n].reduce<number>((acc, a) => acc * (a === null ? 1 : 2), 1);
      let cost = (training * 2 * 64 * 32 * 16) / parts / 1e9;
      const yLocal = local([64, 16], [m, n]);
      if (k !== null) cost += commX * (2 * mesh.axes[k]!.alpha + yLocal * mesh.axes[k]!.beta); // ring all-reduce, p = 2
      // weight gradient all-reduce over axes w is replicated on
      for (const a of [0, 1]) if (!sw.includes(a)) cost += 2 * mesh.axes[a]!.alpha + local([32, 16], sw) * mesh.axes[a]!.beta;
      cost += (training * 64 * 16) / sz.reduce<number>((acc, a) => acc * (a === null ? 1 : 2), 1) / 1e9;
      cost += commX * reshardSeconds({ name: 'x', shape: [64, 32] }, sx, [m, k], mesh);
      cost += commX * reshardSeconds({ name: 'w', shape: [32, 16] }, sw, [k, n], mesh);
      cost += commX * reshardSeconds({ name: 'y', shape: [64, 16] }, [m, n], sz, mesh);
      best = Math.min(best, cost);
    }
  }
  assert.ok(Math.abs(plan.objectiveSeconds - best) / best < 1e-4, `${plan.objectiveSeconds} vs ${best}`);
});

test('annotations constrain the ILP (GSPMD-style): forcing w1 replicated makes it pay resharding or replicated compute', async () => {
  const g = transformerMlpGraph(modelPreset('gpt3-1.3b'));
  const free = await solveSharding(g, mesh8);
  const forced = await solveSharding(g, mesh8, { annotations: new Map([['w1', parseSpec('RR', 2)]]) });
  assert.equal(formatSpec(forced.tensorSpecs.get('w1')!), 'RR');
  assert.ok(forced.objectiveSeconds >= free.objectiveSeconds);
  await assert.rejects(solveSharding(g, mesh8, { annotations: new Map([['nope', [null, null]]]) }), /not in the graph/);
});

test('propagation: a column-split W1 makes fc1 output and the activation column-split, W2 row-split, and fc2 output replicated', () => {
  const g = transformerMlpGraph(modelPreset('gpt3-125m'));
  const r = propagateShardings(g, new Map([['w1', parseSpec('RS0', 2)]]));
  const s = (n: string): string => formatSpec(r.specs.get(n)!);
  assert.equal(s('a'), 'RS0');
  assert.equal(s('g'), 'RS0');
  assert.equal(s('w2'), 'S0R');
  assert.equal(s('y'), 'RR');
  assert.deepEqual(r.conflicts, []);
  assert.throws(() => parseSpec('S0S0', 2), /at most one dimension/);
  assert.throws(() => parseSpec('S0', 2), /one R or S<axis> per dimension/);
});

test('resharding: gathering a split axis costs an all-gather, slicing is free', () => {
  const t = { name: 't', shape: [1024, 1024] };
  assert.equal(reshardSeconds(t, [null, null], [0, null], mesh8), 0);
  assert.ok(reshardSeconds(t, [0, null], [null, null], mesh8) > 0);
  assert.ok(reshardSeconds(t, [0, null], [null, 0], mesh8) > 0);
});
