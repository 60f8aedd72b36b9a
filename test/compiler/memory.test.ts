import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { trace, interpret, jit, assign } from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { mlpParams, mlp, mse, gptParams, gptBlock, lstmParams, lstmCell } from '../graph/models.js';
import { pinBackend } from '../helpers/backends.js';

// cpu, whatever the default backend: the planned executor (its arena, buffer reuse and allocation stats) runs cpu tensors only; with wasm inputs a compiled graph replays through the interpreter, which has no arena to measure.
pinBackend('cpu');

function measuredPeak(g: t.Graph, inputs: t.Tensor[]): number {
  const before = t.memoryStats().liveBytes;
  t.resetPeakMemory();
  const outs = interpret(g, inputs, { disposeDead: true, applyWrites: false });
  const peak = t.memoryStats().peakBytes - before;
  outs.forEach((o) => o.dispose());
  return peak;
}

// Graphs without a reshape that must copy: dispatch's copying reshape keeps its temporary tensor
// alive until GC (reported to the core owner), which the measurement would count.
test('planned peak equals the peak measured when the graph runs with frees at last use (MLP, LSTM)', () => {
  t.manualSeed(5);
  const mp = mlpParams(6, 10, 4);
  const { graph: g2 } = trace((a: t.Tensor) => mlp(mp, a), [t.randn([5, 6])]);
  assert.equal(measuredPeak(g2, [t.randn([5, 6])]), C.memoryPlan(g2, { inPlace: false }).peakLiveBytes);
  const lp = lstmParams(3, 5);
  const ins = [t.randn([2, 3]), t.randn([2, 5]), t.randn([2, 5])];
  const { graph: g3 } = trace((x: t.Tensor, h: t.Tensor, c: t.Tensor) => lstmCell(lp, x, h, c), ins);
  const plan = C.memoryPlan(g3, { inPlace: false });
  assert.ok(plan.peakLiveBytes > 0);
  assert.equal(measuredPeak(g3, ins), plan.peakLiveBytes);
});

test('the arena reuses dead buffers: far smaller than the sum of all intermediates', () => {
  const gp = gptParams(8, 2);
  const { graph } = trace((a: t.Tensor) => gptBlock(gp, a), [t.randn([2, 4, 8])]);
  const plan = C.memoryPlan(graph);
  const total = plan.buffers.reduce((s, b) => s + b.bytes, 0);
  assert.ok(plan.arenaBytes < total / 3, `arena ${plan.arenaBytes} vs sum ${total}`);
  assert.ok(plan.arenaBytes >= plan.peakLiveBytes);
  // No two buffers that are live at the same time overlap in the arena.
  for (const a of plan.buffers) for (const b of plan.buffers) {
    if (a === b || a.inPlaceOf === b.value || b.inPlaceOf === a.value) continue;
    const timeOverlap = a.start <= b.end && b.start <= a.end;
    const spaceOverlap = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
    assert.ok(!(timeOverlap && spaceOverlap) || sameGroup(plan, a, b), `%${a.value} and %${b.value} overlap`);
  }
  assert.equal(plan.timeline.length, graph.nodes.length);
});

function sameGroup(plan: C.MemoryPlan, a: C.PlannedBuffer, b: C.PlannedBuffer): boolean {
  const root = (x: C.PlannedBuffer): number => {
    let v = x;
    while (v.inPlaceOf !== undefined) v = plan.buffers.find((y) => y.value === v.inPlaceOf)!;
    return v.value;
  };
  return root(a) === root(b);
}

test('elementwise kernels write in place over a dying input', () => {
  const { graph } = trace((x: t.Tensor) => t.exp(t.mul(t.sin(t.matmul(x, x)), 2)), [t.randn([4, 4])]);
  // Without fusion each elementwise op could reuse its input; after fusion exp(sin*2) reads the matmul result once.
  const fused = C.runPipeline(graph, [C.fuseElementwise]).graph;
  const plan = C.memoryPlan(fused);
  assert.ok(plan.buffers.some((b) => b.inPlaceOf !== undefined), JSON.stringify(plan.buffers));
  const x = t.randn([4, 4]);
  const ex = new C.PlannedExecutor(fused, { reuseOutputs: false });
  const ref = interpret(graph, [x])[0]!.data();
  ex.run([x])[0]!.data().forEach((v, i) => assert.equal(v, ref[i]));
});

test('a compiled training step allocates no buffers per call after warm-up', () => {
  t.manualSeed(6);
  const p = mlpParams(6, 8, 3);
  const ps = [p.w1, p.b1, p.w2, p.b2];
  const step = jit((x: t.Tensor, y: t.Tensor) => {
    for (const q of ps) q.grad = undefined;
    const l = mse(mlp(p, x), y);
    l.backward();
    t.noGrad(() => { for (const q of ps) assign(q, t.sub(q, t.mul(q.grad!, 0.05))); });
    return l;
  }, { reuseOutputs: true });
  const x = t.randn([4, 6]), y = t.randn([4, 3]);
  step(x, y); // trace
  step(x, y); // first replay allocates the reused outputs and grads
  const stats0 = t.memoryStats();
  const before = t.memoryStats();
  let last = 0;
  for (let i = 0; i < 5; i++) last = step(x, y).item();
  const after = t.memoryStats();
  assert.equal(after.liveStorages, before.liveStorages, 'no new storages');
  assert.equal(after.liveBytes, before.liveBytes, 'no new bytes');
  assert.ok(Number.isFinite(last));
  assert.ok(stats0.liveStorages > 0);
});

test('executor stats: zero allocations per call with reused outputs', () => {
  const mp = mlpParams(6, 10, 4);
  const { graph } = trace((a: t.Tensor) => mlp(mp, a), [t.randn([5, 6])]);
  const c = C.compile(graph, { reuseOutputs: true });
  const x = t.randn([5, 6]);
  c.run([x]);
  const a0 = c.executor!.stats.allocations;
  for (let i = 0; i < 3; i++) c.run([x]);
  assert.equal(c.executor!.stats.allocations, a0);
  assert.equal(c.executor!.stats.fallbackAllocations, 0);
  assert.equal(c.executor!.stats.arenaBytes, C.memoryPlan(c.graph).arenaBytes);
});

test('softmax and logSoftmax along any axis of a strided input run as generated steps, bit for bit as interpreted', () => {
  t.manualSeed(12);
  for (const dtype of ['float32', 'float64'] as const) {
    const { graph } = trace((x: t.Tensor) => {
      const v = t.permute(x, [2, 0, 1]);
      return [t.softmax(v, 0), t.logSoftmax(v, 1), t.logSoftmax(x, -1), t.softmax(t.mul(x, 3), 1)];
    }, [t.randn([3, 4, 5], { dtype, backend: 'cpu' })]);
    const c = C.compile(graph, { reuseOutputs: true });
    assert.deepEqual(c.executor!.stats.fallbackOps, []);
    const x = t.tensor(Array.from({ length: 60 }, (_, i) => (i === 7 ? -Infinity : i === 30 ? NaN : Math.sin(i) * 20)), { shape: [3, 4, 5], dtype, backend: 'cpu' });
    const ref = interpret(graph, [x], { applyWrites: false });
    c.run([x]).forEach((got, k) => assert.deepEqual(Array.from(got.data()), Array.from(ref[k]!.data()), `${dtype} output ${k}`));
  }
});

test('cross-entropy with gather/scatterAdd and argmax runs on generated steps (no fallback), same results', () => {
  t.manualSeed(11);
  const w = t.randn([6, 3]).requiresGrad_();
  const labels = t.tensor([0, 1, 2, 1, 0], { dtype: 'int32' });
  const { graph } = trace((x: t.Tensor, y: t.Tensor) => {
    w.grad = undefined;
    const logits = t.matmul(x, w);
    const loss = t.crossEntropy(logits, y);
    loss.backward();
    return [loss, t.argmax(logits, -1), w.grad!];
  }, [t.randn([5, 6]), labels]);
  const c = C.compile(graph, { reuseOutputs: true });
  assert.ok(graph.nodes.some((n) => n.op === 'gather') && graph.nodes.some((n) => n.op === 'scatterAdd'), 'the loss uses gather/scatterAdd');
  assert.deepEqual(c.executor!.stats.fallbackOps, []);
  const x = t.randn([5, 6]);
  const ref = interpret(graph, [x, labels], { applyWrites: false });
  const got = c.run([x, labels]);
  ref.forEach((r, k) => assert.deepEqual(Array.from(got[k]!.data()), Array.from(r.data()), `output ${k}`));
  assert.throws(() => c.run([x, t.tensor([0, 1, 7, 1, 0], { dtype: 'int32' })]), /gather: index 7 is out of range for axis 1 of size 3/);
});
