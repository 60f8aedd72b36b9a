import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { trace, interpret, validateGraph, assign, Graph } from '../../src/graph/index.js';
import { mlpParams, mlp, gptParams, gptBlock, lstmParams, lstmCell } from './models.js';

const close = (a: t.Tensor, b: t.Tensor, tol = 1e-6): void => {
  const x = a.data(), y = b.data();
  assert.equal(x.length, y.length);
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - y[i]!) <= tol * (1 + Math.abs(y[i]!)), `element ${i}: ${x[i]} vs ${y[i]}`);
};

test('trace records one node per primitive and prints like a jaxpr', () => {
  const w = t.randn([4, 3]);
  const { graph } = trace((x: t.Tensor) => t.relu(t.matmul(x, w)), [t.randn([2, 4])]);
  const text = graph.toString();
  assert.match(text, /%\d+ = matmul %0 %\d+ : \[2, 3\] float32/);
  assert.match(text, /= relu %\d+ : \[2, 3\] float32/);
  assert.equal(graph.constants.size, 1, 'w (no grad) is a constant');
  assert.equal(graph.parameters.size, 0);
  assert.match(graph.toDot(), /digraph/);
  assert.match(graph.toDot(), /-> n\d+/);
  validateGraph(graph);
});

test('validation rejects a use before definition and a wrong recorded type', () => {
  const g = new Graph();
  const x = g.addInput([2], 'float32');
  const [y] = g.addNode('exp', [x], {}, [{ shape: [2], dtype: 'float32' }]);
  g.outputs = [y!];
  validateGraph(g);
  const bad = g.clone();
  bad.nodes[0]!.inputs = [99];
  assert.throws(() => validateGraph(bad), /uses %99 before/);
  const bad2 = new Graph();
  const a = bad2.addInput([2], 'float32');
  bad2.addNode('exp', [a], {}, [{ shape: [3], dtype: 'float32' }]);
  assert.throws(() => validateGraph(bad2), /recorded as \[3\] float32 but the op gives \[2\] float32/);
});

test('interpreting traced real models reproduces eager outputs (MLP, GPT block, LSTM cell)', () => {
  t.manualSeed(1);
  const p = mlpParams(8, 16, 4);
  const x = t.randn([5, 8]);
  const { graph: g1, result: r1 } = trace((a: t.Tensor) => mlp(p, a), [x]);
  assert.equal(g1.parameters.size, 4, 'weights that require grad are parameters');
  close(interpret(g1, [x])[0]!, r1 as t.Tensor);
  const gp = gptParams(8, 2);
  const xs = t.randn([2, 4, 8]);
  const { graph: g2, result: r2 } = trace((a: t.Tensor) => gptBlock(gp, a), [xs]);
  close(interpret(g2, [xs])[0]!, r2 as t.Tensor);
  const lp = lstmParams(3, 4);
  const ins = [t.randn([2, 3]), t.randn([2, 4]), t.randn([2, 4])];
  const { graph: g3, result: r3 } = trace((a: t.Tensor, h: t.Tensor, c: t.Tensor) => lstmCell(lp, a, h, c), ins);
  const outs = interpret(g3, ins);
  close(outs[0]!, (r3 as t.Tensor[])[0]!);
  close(outs[1]!, (r3 as t.Tensor[])[1]!);
  // A new input gives the same result as eager code on it.
  const x2 = t.randn([5, 8]);
  close(interpret(g1, [x2])[0]!, mlp(p, x2));
});

test('parameters are read live: the graph sees updated weights', () => {
  const w = t.ones([2, 2]).requiresGrad_();
  const { graph } = trace((x: t.Tensor) => t.matmul(x, w), [t.ones([1, 2])]);
  assign(w, t.full([2, 2], 3));
  assert.deepEqual(interpret(graph, [t.ones([1, 2])])[0]!.toArray(), [[6, 6]]);
});

test('backward inside the traced function yields the backward graph and .grad writes', () => {
  t.manualSeed(2);
  const w = t.randn([3, 2]).requiresGrad_();
  const x = t.randn([4, 3]);
  const step = (a: t.Tensor): t.Tensor => {
    w.grad = undefined;
    const loss = t.sum(t.tanh(t.matmul(a, w)));
    loss.backward();
    return loss;
  };
  const { graph } = trace(step, [x]);
  const gradEager = w.grad!;
  assert.ok(graph.writes.some((wr) => wr.kind === 'grad' && wr.target === w));
  assert.ok(graph.nodes.filter((n) => n.op === 'matmul').length >= 2, 'the backward matmul is in the graph');
  w.grad = undefined;
  interpret(graph, [x]);
  close(w.grad!, gradEager);
});

test('jvp of a traced function is traced too', () => {
  const x = t.randn([3]);
  const f = (a: t.Tensor): t.Tensor => t.jvp((z: t.Tensor) => t.mul(t.sin(z), z), [a], [t.onesLike(a)])[1];
  const { graph } = trace(f, [x]);
  const x2 = t.randn([3]);
  // d/dz sin(z) z = cos(z) z + sin(z)
  close(interpret(graph, [x2])[0]!, t.add(t.mul(t.cos(x2), x2), t.sin(x2)));
});

test('reading a traced value records a guard that the interpreter checks', () => {
  const f = (a: t.Tensor): t.Tensor => (t.sum(a).item() > 0 ? t.mul(a, 2) : t.neg(a));
  const { graph } = trace(f, [t.tensor([1, 2])]);
  assert.equal(graph.guards.length, 1);
  assert.deepEqual(interpret(graph, [t.tensor([2, 1])])[0]!.toArray(), [4, 2], 'same value read: the guard passes');
  assert.throws(() => interpret(graph, [t.tensor([-3, 1])]), /guard failed: traced code read %\d+ as 3 but it is now -2/);
  assert.throws(() => trace(f, [t.tensor([1, 2])], { onRead: 'error' }), /read the values of a traced tensor/);
});

test('a traced backward that accumulates into an existing .grad is refused with advice', () => {
  const w = t.randn([2]).requiresGrad_();
  t.sum(t.mul(w, 2)).backward();
  assert.throws(() => trace((x: t.Tensor) => { const l = t.sum(t.mul(w, x)); l.backward(); return l; }, [t.randn([2])]),
    /added to the existing \.grad of a parameter \(shape \[2\]\).*Clear gradients inside the function/);
});
