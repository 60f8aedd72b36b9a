import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { cond, whileLoop, trace, interpret, jit } from '../../src/index.js';

test('cond runs the taken branch eagerly and is differentiable', () => {
  const x = t.tensor([1, 2, 3], { requiresGrad: true });
  const y = cond(t.tensor(true), (a: t.Tensor) => t.mul(a, a), (a: t.Tensor) => t.neg(a), [x]);
  t.sum(y).backward();
  assert.deepEqual(x.grad!.toArray(), [2, 4, 6]);
  x.grad = undefined;
  t.sum(cond(t.tensor(false), (a: t.Tensor) => t.mul(a, a), (a: t.Tensor) => t.neg(a), [x])).backward();
  assert.deepEqual(x.grad!.toArray(), [-1, -1, -1]);
});

test('traced cond is one node with both branch graphs; only the taken branch runs', () => {
  const w = t.tensor([10, 20, 30]);
  const f = (p: t.Tensor, x: t.Tensor): t.Tensor => cond(t.gt(p, 0), (a: t.Tensor) => t.add(t.exp(a), w), (a: t.Tensor) => t.mul(a, 2), [x]);
  const { graph } = trace(f, [t.tensor(1), t.tensor([0, 1, 2])]);
  const node = graph.nodes.find((n) => n.op === 'cond')!;
  assert.ok(node, graph.toString());
  assert.equal(graph.guards.length, 0, 'no guard: the predicate is a graph value');
  assert.doesNotMatch(graph.toString(), /= exp/, 'branch ops live inside the cond node');
  const x = t.tensor([0, 1, 2]);
  assert.deepEqual(interpret(graph, [t.tensor(-1), x])[0]!.toArray(), [0, 2, 4]);
  const yes = interpret(graph, [t.tensor(1), x])[0]!.data();
  [1 + 10, Math.E + 20, Math.E ** 2 + 30].forEach((v, i) => assert.ok(Math.abs(yes[i]! - v) < 1e-4));
  // The untaken branch is dead: count primitive applications while running the graph.
  let exps = 0;
  const stop = t.addDispatchObserver({ onPrimitive: (p) => { if (p === 'exp') exps++; } });
  interpret(graph, [t.tensor(-1), x]);
  stop();
  assert.equal(exps, 0);
});

test('jit of a function with cond does not retrace when the predicate flips', () => {
  const f = jit((p: t.Tensor, x: t.Tensor) => cond(t.gt(t.sum(p), 0), (a: t.Tensor) => t.mul(a, 3), (a: t.Tensor) => t.sub(a, 1), [x]));
  const x = t.tensor([1, 2]);
  assert.deepEqual(f(t.tensor([1]), x).toArray(), [3, 6]);
  assert.deepEqual(f(t.tensor([-1]), x).toArray(), [0, 1]);
  assert.deepEqual(f(t.tensor([2]), x).toArray(), [3, 6]);
  assert.equal(f.stats().traces, 1);
});

test('whileLoop eagerly and traced (body graph iterated by the executor)', () => {
  const collatzSteps = (n: t.Tensor): t.Tensor[] => whileLoop(
    (x: t.Tensor, _k: t.Tensor) => t.gt(x, 1),
    (x: t.Tensor, k: t.Tensor) => [t.where(t.eq(t.remainder(x, 2), 0), t.floorDivide(x, 2), t.add(t.mul(x, 3), 1)), t.add(k, 1)],
    [n, t.tensor(0, { dtype: 'int32' })],
  );
  assert.equal(collatzSteps(t.tensor(6, { dtype: 'int32' }))[1]!.item(), 8);
  const { graph } = trace((n: t.Tensor) => collatzSteps(n)[1]!, [t.tensor(6, { dtype: 'int32' })]);
  assert.ok(graph.nodes.some((n) => n.op === 'whileLoop'));
  assert.equal(interpret(graph, [t.tensor(27, { dtype: 'int32' })])[0]!.item(), 111);
  assert.throws(() => whileLoop((x: t.Tensor) => t.gt(x, 0), (x: t.Tensor) => [x], [t.tensor(1)], { maxIterations: 5 }), /still running after 5 iterations/);
});

test('cond branches of different types are rejected with both types named', () => {
  assert.throws(() => trace((x: t.Tensor) => cond(t.tensor(true), (a: t.Tensor) => a, (a: t.Tensor) => t.sum(a), [x]), [t.ones([2])]),
    /cond: the branches' results differ: \(\[2\] float32\) vs \(\[\] float32\)/);
});

test('traced cond is differentiable as a cond: one trace serves both predicate values, gradients equal eager', () => {
  const w = t.tensor([0.5, -1, 2], { requiresGrad: true });
  const v = t.tensor([1.5, 0.5, -0.5], { requiresGrad: true });
  const step = (p: t.Tensor, x: t.Tensor): t.Tensor => {
    w.grad = undefined;
    v.grad = undefined;
    const h = t.mul(x, v); // an operand that requires grad: its gradient flows on to v
    const y = cond(t.gt(t.sum(p), 0), (a: t.Tensor) => t.mul(t.exp(a), w), (a: t.Tensor) => t.mul(t.mul(a, a), t.sin(w)), [h]);
    const loss = t.sum(t.mul(y, y));
    loss.backward();
    return loss;
  };
  const f = jit(step);
  const x = t.tensor([0.1, 0.2, 0.3]);
  for (const pv of [1, -1, 2, -3]) {
    const lossJ = f(t.tensor([pv]), x).item();
    const gw = w.grad!.toArray() as number[], gv = v.grad!.toArray() as number[];
    const lossE = step(t.tensor([pv]), x).item();
    assert.ok(Math.abs(lossJ - lossE) < 1e-5, `loss for p=${pv}: ${lossJ} vs ${lossE}`);
    (w.grad!.toArray() as number[]).forEach((e, i) => assert.ok(Math.abs(e - gw[i]!) < 1e-5, `dw for p=${pv}: ${gw} vs ${w.grad!.toArray()}`));
    (v.grad!.toArray() as number[]).forEach((e, i) => assert.ok(Math.abs(e - gv[i]!) < 1e-5, `dv for p=${pv}: ${gv} vs ${v.grad!.toArray()}`));
  }
  const s = f.stats();
  assert.equal(s.traces, 1, s.traceReasons.join('; '));
  assert.equal(s.cacheHits, 3);
  const g = f.graphs()[0]!.traced;
  assert.equal(g.nodes.filter((n) => n.op === 'cond').length, 2, 'a forward cond and a backward cond');
  assert.equal(g.guards.length, 0, 'no guard on the predicate');
});

test('custom tape nodes: backward through a traced cond outside the trace, retainGraph and freeing', () => {
  const x = t.tensor([1, 2], { requiresGrad: true });
  const { result } = trace((a: t.Tensor) => cond(t.tensor(true), (u: t.Tensor) => t.mul(u, u), (u: t.Tensor) => t.neg(u), [a]), [x]);
  assert.match(String(result.gradNode?.opName), /cond/);
  const loss = t.sum(result);
  loss.backward(undefined, { retainGraph: true });
  assert.deepEqual(x.grad!.toArray(), [2, 4]);
  loss.backward();
  assert.deepEqual(x.grad!.toArray(), [4, 8]);
  assert.throws(() => loss.backward(), /second time \(op 'sum'\)|second time \(op 'cond'\)/);
});

test('createGraph through a custom cond node gives second derivatives', () => {
  const x = t.tensor([1, 2], { dtype: 'float64', requiresGrad: true });
  const { result } = trace((a: t.Tensor) => cond(t.tensor(true), (u: t.Tensor) => t.mul(t.mul(u, u), u), (u: t.Tensor) => t.neg(u), [a]), [x]);
  const [g] = t.gradientsOf(t.sum(result), [x], undefined, { createGraph: true });
  assert.deepEqual(g!.toArray(), [3, 12]);
  const [h] = t.gradientsOf(t.sum(g!), [x]);
  assert.deepEqual(h!.toArray(), [6, 12]);
});
