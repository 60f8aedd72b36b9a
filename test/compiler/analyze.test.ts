import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import * as C from '../../src/compiler/index.js';

test('analyze: FLOPs, bytes, intensity and roofline time per node and in total', () => {
  const w = t.randn([64, 32]);
  const { graph } = t.trace((x: t.Tensor) => t.relu(t.matmul(x, w)), [t.randn([16, 64])]);
  const hw = { name: 'toy', peakFlops: 1e9, memoryBandwidth: 1e9 };
  const a = C.analyze(graph, hw);
  const mm = a.nodes.find((n) => n.op === 'matmul')!;
  assert.equal(mm.flops, 2 * 16 * 64 * 32);
  assert.equal(mm.bytes, (16 * 64 + 64 * 32 + 16 * 32) * 4);
  assert.equal(mm.intensity, mm.flops / mm.bytes);
  assert.equal(mm.bound, 'compute');
  assert.equal(mm.seconds, mm.flops / 1e9);
  const relu = a.nodes.find((n) => n.op === 'relu')!;
  assert.equal(relu.bound, 'memory');
  assert.equal(relu.seconds, relu.bytes / 1e9);
  assert.equal(a.totals.flops, a.nodes.reduce((s, n) => s + n.flops, 0));
  assert.equal(a.ridgeIntensity, 1);
  // Fusing relu into the matmul removes its memory traffic.
  const fused = C.analyze(C.runPipeline(graph).graph, hw);
  assert.ok(fused.totals.bytes < a.totals.bytes);
  assert.equal(fused.totals.flops, a.totals.flops);
  // A DeviceSpec from the planner's hardware table works too.
  const h100 = C.analyze(graph, t.plan.device('H100-SXM'));
  assert.ok(Math.abs(h100.hardware.peakFlops - 66.9e12) < 1e3);
});
