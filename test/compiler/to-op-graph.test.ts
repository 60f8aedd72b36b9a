import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { formatSpec, solveSharding, validateOpGraph, type DeviceMesh } from '../../src/plan/index.js';

test('a traced MLP block adapted to the planner\'s op graph: the sharding ILP finds Megatron\'s split', async () => {
  const h = 512, f = 2048;
  const w1 = t.randn([h, f]).requiresGrad_(), w2 = t.randn([f, h]).requiresGrad_();
  const block = (x: t.Tensor): t.Tensor => t.add(t.matmul(t.gelu(t.matmul(x, w1)), w2), x);
  const { graph } = t.trace(block, [t.randn([2, 8, h])]);
  // After the default pipeline: gelu is one fused kernel, fused with fc1 as its epilogue.
  const og = C.toOpGraph(C.runPipeline(graph).graph, { names: new Map([[w1, 'w1'], [w2, 'w2']]), bytesPerElement: 2, tokens: 2048 });
  validateOpGraph(og);
  assert.deepEqual(og.ops.map((o) => o.kind), ['matmul', 'elementwise', 'matmul', 'elementwise']);
  assert.equal(C.toOpGraph(graph).ops.filter((o) => o.kind === 'matmul').length, 2, 'the unoptimized graph adapts too');
  assert.deepEqual(og.tensors.find((x) => x.name === "input0")!.shape, [2048, h], 'planned at 2048 tokens (traced with 16)');
  const mesh: DeviceMesh = { shape: [8], axes: [{ alpha: 2e-6, beta: 1 / 230e9 }], flopsPerSecond: 218e12 };
  const plan = await solveSharding(og, mesh);
  const byNode = new Map(plan.choices.map((c) => [c.node, c.strategy]));
  assert.equal(formatSpec(byNode.get('input:w1')!.output), 'RS0');
  assert.equal(formatSpec(byNode.get('input:w2')!.output), 'S0R');
  // Reductions cannot be expressed and are refused by name.
  const { graph: g2 } = t.trace((x: t.Tensor) => t.sum(t.matmul(x, w1), -1), [t.randn([4, h])]);
  assert.throws(() => C.toOpGraph(g2), /toOpGraph: sum is not a matmul/);
});
