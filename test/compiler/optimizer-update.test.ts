// The compiler passes on graphs with fused optimizer updates (src/graph/optimizer-update-op.ts, the
// node a traced optimizer.step() becomes on the wasm backend): the node is impure, so no pass folds,
// merges, drops or reorders it, and the compiled wasm replay runs it in place only where nothing
// reads the old parameter or state after it (else on copies, still right).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit, trace, type Graph } from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { Adam, SGD } from '../../src/optim/index.js';
import { optimizerUpdateCounts, optimizerUpdateInPlaceSafe } from '../../src/graph/optimizer-update-op.js';
import { gptBlock, gptParams, mlp, mlpParams, mse, type MLP } from '../graph/models.js';

function onWasm(ctx: { after(fn: () => void): void }): void {
  const previous = t.currentBackendName();
  t.setBackend('wasm');
  ctx.after(() => t.setBackend(previous));
}

const updatesOf = (g: Graph): number[] => g.nodes.flatMap((n, i) => (n.op === 'optimizerUpdate' ? [i] : []));
const mlpTensors = (p: MLP): t.Tensor[] => [p.w1, p.b1, p.w2, p.b2];

/** The traced graph of one MLP training step with Adam (the step runs once while tracing). */
function tracedMlpStep(): { graph: Graph; p: MLP } {
  t.manualSeed(21);
  const p = mlpParams(6, 12, 3);
  const o = new Adam(mlpTensors(p), { lr: 0.01 });
  const x = t.randn([8, 6]), y = t.randn([8, 3]);
  const { graph } = trace((a: t.Tensor, b: t.Tensor) => { o.zeroGrad(); const l = mse(mlp(p, a), b); l.backward(); o.step(); return l; }, [x, y]);
  return { graph, p };
}

test('CSE never merges two optimizer updates with the same inputs and attrs', (ctx) => {
  onWasm(ctx);
  const { graph } = tracedMlpStep();
  const g = graph.clone();
  const first = g.nodes[updatesOf(g)[0]!]!;
  // A second node identical to the first (same op, inputs and attrs object): a pure node would be merged.
  const outs = g.addNode(first.op, first.inputs, first.attrs, first.outputs.map((o) => g.value(o)));
  g.outputs.push(...outs);
  const { graph: after, changes } = C.cse.run(g);
  assert.equal(updatesOf(after).length, updatesOf(g).length, changes.join('\n'));
  assert.equal(updatesOf(g).length, 5);
});

test('DCE keeps an optimizer update whose outputs nothing reads', (ctx) => {
  onWasm(ctx);
  const { graph } = tracedMlpStep();
  const g = graph.clone();
  g.writes = g.writes.filter((w) => w.kind === 'grad'); // the new values are not written back any more
  const { graph: after } = C.dce.run(g);
  assert.equal(updatesOf(after).length, 4);
});

test('constant folding never evaluates an optimizer update, even over constant inputs', (ctx) => {
  onWasm(ctx);
  const { graph } = tracedMlpStep();
  const node = graph.nodes[updatesOf(graph)[0]!]!;
  const g = new t.Graph();
  const ins = node.inputs.map((v) => g.addConstant(t.zeros([...graph.value(v).shape])));
  g.outputs = g.addNode(node.op, ins, node.attrs, node.outputs.map((o) => graph.value(o)));
  const { graph: after } = C.constantFold.run(g);
  assert.equal(updatesOf(after).length, 1);
});

test('the default pipeline (incl. merge-matmuls\' re-sort and fusion) keeps every update, in order, after every read of the old values', (ctx) => {
  onWasm(ctx);
  t.manualSeed(22);
  const p = gptParams(8, 2);
  const params = Object.values(p).filter((v): v is t.Tensor => v instanceof t.Tensor);
  const o = new Adam(params, { lr: 0.01 });
  const { graph } = trace((x: t.Tensor, y: t.Tensor) => { o.zeroGrad(); const l = mse(gptBlock(p, x), y); l.backward(); o.step(); return l; }, [t.randn([2, 4, 8]), t.randn([2, 4, 8])]);
  const { graph: optimized, reports } = C.runPipeline(graph, C.defaultPasses());
  assert.ok(reports.some((r) => r.pass === 'merge-matmuls' && r.changes.length > 0), 'QKV merged: the graph was re-sorted');
  const targetOf = (g: Graph, i: number): t.Tensor => g.parameters.get(g.nodes[i]!.inputs[0]!)!;
  assert.equal(updatesOf(optimized).length, params.length);
  assert.deepEqual(updatesOf(optimized).map((i) => targetOf(optimized, i)), updatesOf(graph).map((i) => targetOf(graph, i)), 'same order');
  for (const i of updatesOf(optimized)) assert.ok(optimizerUpdateInPlaceSafe(optimized, i), `update %${optimized.nodes[i]!.outputs[0]} runs after every read of its inputs`);
});

test('an update followed by a read of the old parameter runs on copies (the read sees the old value)', (ctx) => {
  onWasm(ctx);
  const { graph, p } = tracedMlpStep();
  const g = graph.clone();
  const w1 = [...g.parameters].find(([, tensor]) => tensor === p.w1)![0];
  const k = updatesOf(g)[0]!;
  assert.equal(g.nodes[k]!.inputs[0], w1);
  assert.ok(optimizerUpdateInPlaceSafe(g, k));
  g.outputs.push(...g.addNode('neg', [w1], {}, [g.value(w1)])); // after the update: reads the OLD w1
  assert.equal(optimizerUpdateInPlaceSafe(g, k), false);
  const compiled = C.compile(g, { passes: [], planned: false });
  const before = Float32Array.from(p.w1.data() as Float32Array);
  const counts = { ...optimizerUpdateCounts };
  const outs = compiled.run([t.randn([8, 6]), t.randn([8, 3])]);
  assert.deepEqual(outs[1]!.data(), before.map((v) => -v), 'neg read the value before the update');
  assert.notDeepEqual(p.w1.data(), before, 'the update was applied');
  assert.equal(optimizerUpdateCounts.onCopies - counts.onCopies, 1);
  assert.equal(optimizerUpdateCounts.inPlace - counts.inPlace, 3);
});

test('two steps in one jitted function: both updates kept, run on copies, equal to two eager steps', (ctx) => {
  onWasm(ctx);
  t.manualSeed(23);
  const pe = mlpParams(4, 6, 2);
  const clone = (x: t.Tensor): t.Tensor => t.clone(x).detach().requiresGrad_();
  const pc: MLP = { w1: clone(pe.w1), b1: clone(pe.b1), w2: clone(pe.w2), b2: clone(pe.b2) };
  const x = t.randn([5, 4]), y = t.randn([5, 2]);
  const twice = (o: SGD, p: MLP) => (a: t.Tensor, b: t.Tensor): t.Tensor => {
    o.zeroGrad();
    const l = mse(mlp(p, a), b);
    l.backward();
    o.step();
    o.step(); // same gradient, applied twice
    return l;
  };
  const make = (p: MLP): SGD => new SGD(mlpTensors(p), { lr: 0.05, momentum: 0.9 });
  const eager = twice(make(pe), pe), compiled = jit(twice(make(pc), pc));
  const counts = { ...optimizerUpdateCounts };
  for (let i = 0; i < 4; i++) assert.equal(compiled(x, y).item(), eager(x, y).item(), `call ${i}`);
  mlpTensors(pc).forEach((q, k) => assert.deepEqual(q.data(), mlpTensors(pe)[k]!.data(), `parameter ${k}`));
  assert.equal(updatesOf(compiled.graphs()[0]!.optimized!).length, 8);
  assert.equal(optimizerUpdateCounts.inPlace - counts.inPlace, 0, 'a first update whose value is updated again is not the last write');
  assert.ok(optimizerUpdateCounts.onCopies - counts.onCopies >= 8 * 3, 'every replayed update ran on copies');
});
