import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit, assign } from '../../src/index.js';
import { mlpParams, mlp, mse, gptParams, gptBlock, type GPT } from './models.js';

test('jit caches by signature and explains each retrace', () => {
  const w = t.randn([4, 3]);
  const f = jit((x: t.Tensor) => t.relu(t.matmul(x, w)));
  const x = t.randn([2, 4]);
  assert.deepEqual(f(x).toArray(), t.relu(t.matmul(x, w)).toArray());
  const x2 = t.randn([2, 4]);
  assert.deepEqual(f(x2).toArray(), t.relu(t.matmul(x2, w)).toArray());
  f(t.randn([3, 4]));
  f(t.randn([3, 4], { dtype: 'float64' }));
  const s = f.stats();
  assert.equal(s.traces, 3);
  assert.equal(s.cacheHits, 1);
  assert.deepEqual(s.traceReasons, ['first call', 'new signature: argument 0 shape changed ([2, 4] -> [3, 4])', 'new signature: argument 0 dtype changed (float32 -> float64)']);
});

test('with piecewise: false a value read inside the function becomes a guard; a different value retraces', () => {
  const f = jit((x: t.Tensor) => (t.sum(x).item() > 0 ? t.mul(x, 2) : t.neg(x)), { piecewise: false });
  assert.deepEqual(f(t.tensor([1, 2])).toArray(), [2, 4]);
  assert.deepEqual(f(t.tensor([2, 1])).toArray(), [4, 2]);
  assert.deepEqual(f(t.tensor([-5, 1])).toArray(), [5, -1]);
  const s = f.stats();
  assert.equal(s.traces, 2);
  assert.equal(s.cacheHits, 1);
  assert.match(s.traceReasons[1]!, /^guard failed: traced code read %\d+ as 3 but it is now -4/);
});

test('dynamic batch dims are bucketed to powers of two and sliced back exactly', () => {
  // No static dim may equal a bucket size (4 or 8 here), so features are 6 and outputs 3.
  const w = t.randn([6, 3]), b = t.randn([3]);
  const f = jit((x: t.Tensor) => t.sigmoid(t.add(t.matmul(x, w), b)), { dynamic: { 0: [0] } });
  for (const n of [3, 4, 5, 7, 8]) {
    const x = t.randn([n, 6]);
    const y = f(x);
    assert.deepEqual(y.shape, [n, 3]);
    const ref = t.sigmoid(t.add(t.matmul(x, w), b)).data();
    y.data().forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) < 1e-6));
  }
  assert.equal(f.stats().traces, 2, 'buckets 4 and 8 only');
  // A reduction over the batch is not exact under padding: jit falls back to exact sizes.
  const g = jit((x: t.Tensor) => t.mean(x, 0), { dynamic: { 0: [0] } });
  const x = t.randn([3, 2]);
  const r = g(x).data(), ref = t.mean(x, 0).data();
  r.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) < 1e-6));
  assert.match(g.stats().traceReasons.join('\n'), /not exact \(sum: reduces over the dynamic axis\)/);
});

function sgdStep(params: t.Tensor[], loss: () => t.Tensor, lr: number): t.Tensor {
  for (const p of params) p.grad = undefined;
  const l = loss();
  l.backward();
  t.noGrad(() => { for (const p of params) assign(p, t.sub(p, t.mul(p.grad!, lr))); });
  return l;
}

function cloneParams<T extends object>(p: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) out[k] = v instanceof t.Tensor ? t.clone(v).detach().requiresGrad_(v.requiresGrad) : v;
  return out as T;
}

test('jit of a full MLP training step gives the same losses as eager for 20 steps', (ctx) => {
  // cpu: the step is checked to be compiled (its optimized graph below), and jit compiles graphs
  // of cpu tensors only; on wasm it replays the traced graph through the interpreter.
  const previous = t.currentBackendName();
  t.setBackend('cpu');
  ctx.after(() => t.setBackend(previous));
  t.manualSeed(3);
  const pe = mlpParams(6, 12, 3);
  const pc = cloneParams(pe);
  const x = t.randn([8, 6]), y = t.randn([8, 3]);
  const list = (p: typeof pe): t.Tensor[] => [p.w1, p.b1, p.w2, p.b2];
  const eager = (a: t.Tensor, b: t.Tensor): t.Tensor => sgdStep(list(pe), () => mse(mlp(pe, a), b), 0.1);
  const compiled = jit((a: t.Tensor, b: t.Tensor) => sgdStep(list(pc), () => mse(mlp(pc, a), b), 0.1));
  for (let i = 0; i < 20; i++) {
    const le = eager(x, y).item(), lc = compiled(x, y).item();
    assert.ok(Math.abs(le - lc) <= 1e-6 * Math.max(1, Math.abs(le)), `step ${i}: eager ${le} vs compiled ${lc}`);
  }
  assert.equal(compiled.stats().traces, 1);
  assert.equal(compiled.stats().cacheHits, 19);
  // Gradients are written back too.
  pc.w1.grad!.data().forEach((v, i) => assert.ok(Math.abs(v - pe.w1.grad!.data()[i]!) < 1e-5));
  const opt = compiled.graphs()[0]!.optimized!;
  assert.ok(opt.nodes.length < compiled.graphs()[0]!.traced.nodes.length / 2, 'the optimized step has far fewer nodes');
});

test('jit of a GPT block training step gives the same losses as eager for 20 steps', () => {
  t.manualSeed(4);
  const pe = gptParams(8, 2);
  const pc = cloneParams(pe);
  const x = t.randn([2, 4, 8]), y = t.randn([2, 4, 8]);
  const list = (p: GPT): t.Tensor[] => Object.values(p).filter((v): v is t.Tensor => v instanceof t.Tensor);
  const eager = (): t.Tensor => sgdStep(list(pe), () => mse(gptBlock(pe, x), y), 0.05);
  const compiled = jit((a: t.Tensor, b: t.Tensor) => sgdStep(list(pc), () => mse(gptBlock(pc, a), b), 0.05));
  const losses: number[] = [];
  for (let i = 0; i < 20; i++) {
    const le = eager().item(), lc = compiled(x, y).item();
    losses.push(lc);
    assert.ok(Math.abs(le - lc) <= 1e-5 * Math.max(1, Math.abs(le)), `step ${i}: eager ${le} vs compiled ${lc}`);
  }
  assert.ok(losses[19]! < losses[0]!, 'the loss goes down');
  assert.equal(compiled.stats().traces, 1);
});

test('a jitted function whose output needs grad replays with the tape (differentiable)', () => {
  const w = t.randn([3, 2]).requiresGrad_();
  const f = jit((x: t.Tensor) => t.tanh(t.matmul(x, w)));
  const x = t.randn([4, 3]);
  f(x);
  const y = f(x);
  assert.ok(y.requiresGrad);
  t.sum(y).backward();
  const g1 = w.grad!.data();
  w.grad = undefined;
  t.sum(t.tanh(t.matmul(x, w))).backward();
  w.grad!.data().forEach((v, i) => assert.ok(Math.abs(v - g1[i]!) < 1e-6));
  assert.equal(f.stats().differentiableReplays, 1);
});

test('jvp of a jitted function', () => {
  const f = jit((x: t.Tensor, v: t.Tensor) => t.jvp((z: t.Tensor) => t.mul(t.exp(z), z), [x], [v])[1]);
  const x = t.randn([5]), v = t.ones([5]);
  f(x, v);
  const x2 = t.randn([5]);
  const got = f(x2, v).data();
  const ref = t.mul(t.exp(x2), t.add(x2, 1)).data();
  got.forEach((g, i) => assert.ok(Math.abs(g - ref[i]!) < 1e-5));
});

test('in-place copy_ of a computed update inside a jitted step becomes a graph write (no guard, no retrace)', () => {
  t.manualSeed(8);
  const w = t.randn([3, 2]).requiresGrad_();
  const w2 = t.clone(w).detach().requiresGrad_();
  const x = t.randn([4, 3]);
  const make = (p: t.Tensor) => (a: t.Tensor): t.Tensor => {
    p.grad = undefined;
    const l = t.sum(t.mul(t.tanh(t.matmul(a, p)), 2));
    l.backward();
    t.noGrad(() => p.copy_(t.sub(p, t.mul(p.grad!, 0.1))));
    return l;
  };
  const eager = make(w);
  const compiled = jit(make(w2));
  for (let i = 0; i < 5; i++) assert.equal(compiled(x).item(), eager(x).item());
  assert.equal(compiled.stats().traces, 1, compiled.stats().traceReasons.join('\n'));
  assert.equal(compiled.graphs()[0]!.traced.guards.length, 0);
  assert.deepEqual(Array.from(w2.data()), Array.from(w.data()));
});

test('a jitted function called inside another trace is inlined into the enclosing graph', () => {
  const inner = jit((x: t.Tensor) => t.exp(x));
  inner(t.randn([3]));
  const outer = jit((x: t.Tensor) => t.mul(inner(x), 2));
  const x = t.randn([3]);
  outer(x);
  const y = outer(x);
  y.data().forEach((v, i) => assert.ok(Math.abs(v - 2 * Math.exp(x.data()[i]!)) < 1e-5));
  assert.ok(outer.graphs()[0]!.traced.nodes.some((n) => n.op === 'exp'));
});

test('nn modules: jit of forward+backward with the optimizer step outside matches eager (Adam)', async () => {
  const nn = await import('../../src/nn/index.js');
  const { Adam } = await import('../../src/optim/index.js');
  const build = (): InstanceType<typeof nn.Sequential> => { t.manualSeed(12); return new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 2)); };
  const m1 = build(), m2 = build();
  const o1 = new Adam(m1.parameters(), { lr: 0.01 }), o2 = new Adam(m2.parameters(), { lr: 0.01 });
  const x = t.randn([5, 4]), y = t.randn([5, 2]);
  const fb = jit((a: t.Tensor, b: t.Tensor) => { o2.zeroGrad(); const l = mse(m2.forward(a), b); l.backward(); return l; });
  for (let i = 0; i < 5; i++) {
    o1.zeroGrad();
    const l1 = mse(m1.forward(x), y);
    l1.backward();
    o1.step();
    const l2 = fb(x, y);
    o2.step();
    assert.equal(l2.item(), l1.item(), `step ${i}`);
  }
  assert.equal(fb.stats().traces, 1);
});

test('setNodeTimer sees every node of a jitted replay, with its inputs and a wall time, until it is unset', () => {
  const f = t.jit((a: t.Tensor, b: t.Tensor) => t.exp(t.matmul(a, b)).sum());
  // On wasm, compiled replays run through the interpreter (the cpu backend's planned executor does not time nodes).
  const a = t.randn([3, 4], { backend: 'wasm' }), b = t.randn([4, 2], { backend: 'wasm' });
  f(a, b); // the trace runs eagerly; replays interpret the graph
  const seen: { op: string; shapes: number[][]; ms: number }[] = [];
  const previous = t.setNodeTimer((node, inputs, ms) => seen.push({ op: node.op, shapes: inputs.map((x) => [...x.shape]), ms }));
  try {
    f(a, b);
  } finally {
    t.setNodeTimer(previous);
  }
  assert.equal(previous, undefined);
  const graph = f.graphs()[0]!;
  assert.equal(seen.length, (graph.optimized ?? graph.traced).nodes.length);
  assert.ok(seen.some((s) => s.op === 'matmul' && JSON.stringify(s.shapes) === '[[3,4],[4,2]]'), JSON.stringify(seen));
  assert.ok(seen.every((s) => s.ms >= 0 && Number.isFinite(s.ms)));
  const count = seen.length;
  f(a, b);
  assert.equal(seen.length, count, 'no calls once unset');
});

test('jit of code that makes tensors inside a scope', async (c) => {
  await c.test('keeps the tensors the graph captures as constants (a scope would free them before the graph is built)', () => {
    const f = t.jit((x: t.Tensor) => t.scope(() => t.add(t.mul(x, t.tensor([2, 3])), 1)));
    for (let i = 0; i < 3; i++) assert.deepEqual(Array.from(f(t.tensor([1, 1])).data()), [3, 4]);
    assert.equal(f.stats().traces, 1);
    // Tensors that existed before the trace stay the caller's to free: a scope around the call frees them.
    const before = t.memoryStats().liveTensors;
    t.scope(() => {
      const w = t.tensor([5, 6]);
      const g = t.jit((x: t.Tensor) => t.mul(x, w));
      assert.deepEqual(Array.from(g(t.tensor([1, 2])).data()), [5, 12]);
    });
    assert.ok(t.memoryStats().liveTensors <= before + 2, 'only the compiled graph\'s own tensors outlive the scope');
  });
});

test('jit refuses tensors inside an array or object argument, saying to pass them separately', () => {
  const f = t.jit((xs: t.Tensor[]) => t.add(xs[0]!, xs[1]!));
  assert.throws(() => f([t.ones([2]), t.ones([2])]), /argument 0 is an array or object holding tensors; a jitted function takes its tensors as separate arguments/);
  const g = t.jit((o: { x: t.Tensor }) => t.neg(o.x));
  assert.throws(() => g({ x: t.ones([2]) }), /argument 0 is an array or object holding tensors/);
});

test('a jitted call compiled inside a scope keeps the constants its passes folded for later calls', () => {
  // (2 + 3) is folded into a new constant while the first call compiles inside the scope.
  const f = t.jit((x: t.Tensor) => t.mul(x, t.add(t.tensor([2, 2]), t.tensor([3, 3]))), { piecewise: false });
  t.scope(() => { assert.deepEqual(Array.from(f(t.tensor([1, 2])).data()), [5, 10]); });
  for (let i = 0; i < 2; i++) assert.deepEqual(Array.from(f(t.tensor([3, 4])).data()), [15, 20]);
  assert.equal(f.stats().traces, 1);
});
