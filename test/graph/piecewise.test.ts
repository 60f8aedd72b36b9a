import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit } from '../../src/index.js';

// A function whose plain code between two compiled parts logs and branches on a value read.
function makeFn(log: string[], backend?: string) {
  const w = t.tensor([[1, -2], [0.5, 3]], { backend });
  return (x: t.Tensor): t.Tensor => {
    const h = t.tanh(t.matmul(x, w)); // part 1
    const s = t.sum(h).item(); // graph break
    log.push(`s=${s.toFixed(4)}`);
    if (s > 0) return t.mul(t.exp(h), 2); // part 2, one path
    return t.sub(t.mul(h, h), 1); // part 2, the other path
  };
}

test('piecewise jit: plain code between the parts runs on every call; the parts are compiled; a new path retraces', () => {
  const eagerLog: string[] = [], jitLog: string[] = [];
  const eager = makeFn(eagerLog);
  const f = jit(makeFn(jitLog)); // piecewise is the default
  const pos = t.tensor([[1, 1], [0.5, 0.2]]), neg = t.tensor([[-1, -1], [-0.5, -0.2]]);
  const inputs = [pos, pos, t.tensor([[2, 1], [0.1, 0.3]]), neg, neg, t.tensor([[-2, -1], [-0.1, -0.3]]), pos];
  for (const x of inputs) {
    const a = eager(x).toArray() as number[][], b = f(x).toArray() as number[][];
    a.flat().forEach((v, i) => assert.ok(Math.abs(v - b.flat()[i]!) < 1e-5, `${a} vs ${b}`));
  }
  assert.deepEqual(jitLog, eagerLog, 'the log line between the parts ran exactly once per call');
  const s = f.stats();
  // Traces: first call; the first negative call diverges (finishes eagerly) and the next one
  // retraces; the final positive call diverges again (one cached path per signature).
  assert.equal(s.traces, 2, s.traceReasons.join('; '));
  assert.match(s.traceReasons[1]!, /control path changed after a value read/);
  assert.equal(s.cacheHits, 3);
  assert.ok(s.graphBreaks >= 1);
});

test('piecewise replay serves the compiled parts: the user-level ops run no kernel of their own', () => {
  const log: string[] = [];
  const f = jit(makeFn(log, 'cpu'), { piecewise: true });
  const x = t.tensor([[1, 1], [0.5, 0.2]], { backend: 'cpu' });
  const first = f(x).toArray();
  // Count kernel executions per primitive on the cpu backend during a replay.
  const cpu = t.getBackend('cpu');
  const orig = cpu.kernel;
  const lookup = orig as (this: t.Backend, prim: string) => ((...a: unknown[]) => unknown) | undefined;
  const runs = new Map<string, number>();
  cpu.kernel = function (this: t.Backend, prim: string) {
    const k = lookup.call(this, prim);
    return k === undefined ? undefined : (...a: unknown[]) => { runs.set(prim, (runs.get(prim) ?? 0) + 1); return k(...a); };
  } as unknown as typeof orig;
  let second: unknown;
  try {
    second = f(x).toArray();
  } finally {
    cpu.kernel = orig;
  }
  assert.deepEqual(second, first);
  assert.equal(f.stats().cacheHits, 1);
  assert.equal(log.length, 2);
  // Eagerly this function runs a matmul, tanh, sum, exp and mul kernel each. In a replay the
  // user's calls are served from the compiled parts, and the planned cpu executor runs its own
  // generated kernels, so no backend kernel runs at all.
  assert.deepEqual(Object.fromEntries(runs), {});
});

test('with piecewise: false a read stays a guard inside one graph (the log is baked into the trace)', () => {
  const log: string[] = [];
  const f = jit(makeFn(log), { piecewise: false });
  const x = t.tensor([[1, 1], [0.5, 0.2]]);
  f(x);
  f(x);
  assert.equal(log.length, 1);
  assert.equal(f.stats().graphBreaks, 0);
});

test('a replay gives eager results when the function disposes a value after its last (view) use, as eager code may', () => {
  const f = t.jit((x: t.Tensor) => {
    const a = t.exp(x);
    const s = t.sum(a).item(); // graph break
    const v = t.reshape(a, [-1]); // a view: no kernel runs here during a replay
    a.dispose(); // eager code may free a once it has its view; the next segment still reads a's storage
    return t.mul(v, s);
  });
  const x = t.tensor([[0, 1], [2, 3]]);
  const want = Array.from(t.exp(x).data());
  const total = want.reduce((p, q) => p + q, 0);
  for (let i = 0; i < 3; i++) {
    const got = Array.from(f(x).data());
    got.forEach((g, k) => assert.ok(Math.abs(g - want[k]! * total) < 1e-3 * Math.abs(want[k]! * total), `call ${i}: ${got} vs ${want.map((w) => w * total)}`));
  }
  assert.equal(f.stats().traces, 1);
});

test('a reshape that must copy (a transposed input) is served in a replay, not a divergence', () => {
  const fn = (x: t.Tensor): t.Tensor => {
    const flat = t.reshape(t.transpose(t.exp(x)), [-1]); // copies: the transpose cannot be viewed flat
    const s = t.sum(flat).item(); // graph break
    const back = t.reshape(t.transpose(t.mul(flat.reshape([3, 2]), 2)), [6]); // copies again, after the break
    return s > 0 ? t.add(back, flat) : t.sub(back, flat);
  };
  const f = t.jit(fn);
  for (let i = 0; i < 4; i++) {
    const x = t.tensor([[0.1 * i, 1, -1], [2, 0.5, -0.3]]);
    const want = Array.from(fn(x).data()), got = Array.from(f(x).data());
    got.forEach((g, k) => assert.ok(Math.abs(g - want[k]!) <= 1e-5 * Math.max(1, Math.abs(want[k]!)), `call ${i}: ${got} vs ${want}`));
  }
  const s = f.stats();
  assert.equal(s.traces, 1, s.traceReasons.join('; '));
  assert.equal(s.cacheHits, 3);
  // A reshape that copied in the trace but is a view now (a contiguous argument) leaves the plan safely.
  const g = t.jit((x: t.Tensor) => { const r = t.reshape(x, [-1]); const s2 = t.sum(r).item(); return t.mul(r, s2); });
  const a = t.transpose(t.tensor([[1, 2, 3], [4, 5, 6]]));
  assert.deepEqual(Array.from(g(a).data()), [21, 84, 42, 105, 63, 126]);
  const c = t.tensor([[1, 4], [2, 5], [3, 6]]);
  assert.deepEqual(Array.from(g(c).data()), [21, 84, 42, 105, 63, 126]);
});

test('a constant made from a value read (mul(x, s), s = y.item()) is checked in a replay, never baked into the compiled part', () => {
  const fn = (x: t.Tensor): t.Tensor => {
    const e = t.exp(x);
    const s = t.sum(e).item(); // graph break
    return t.mul(e, s); // s becomes a scalar constant of the second part
  };
  const f = t.jit(fn);
  for (let i = 0; i < 6; i++) {
    const x = t.tensor([i, 1]);
    const want = Array.from(fn(x).data()), got = Array.from(f(x).data());
    got.forEach((g, k) => assert.ok(Math.abs(g - want[k]!) <= 1e-5 * Math.abs(want[k]!), `call ${i}: ${got} vs ${want}`));
  }
  // The second call diverged there; the next plan takes that scalar as an input of its segment,
  // so later calls with new values are served.
  assert.match(f.stats().traceReasons[1]!, /reads a different constant \(input 0\) than in the trace, made after a value read/);
  assert.equal(f.stats().traces, 2);
  assert.equal(f.stats().cacheHits, 3);
  // The same values again: the replay matches the trace and is served.
  const g = t.jit(fn);
  const x = t.tensor([0.5, 1]);
  for (let i = 0; i < 3; i++) g(x);
  assert.equal(g.stats().traces, 1);
  assert.equal(g.stats().cacheHits, 2);
  // Several scalars from two reads, one used in two segments: the call that diverges on the first
  // goes on checking the rest eagerly, so one retrace takes them all as inputs.
  const two = (x: t.Tensor): t.Tensor => {
    const e = t.exp(x);
    const s1 = t.sum(e).item();
    const a = t.mul(e, s1);
    const s2 = t.max(a).item();
    return t.add(t.sub(a, s2), s1);
  };
  const h2 = t.jit(two);
  for (let i = 0; i < 8; i++) {
    const x = t.tensor([0.1 * i, -0.5, 0.25]);
    const want = Array.from(two(x).data()), got = Array.from(h2(x).data());
    got.forEach((v, k) => assert.ok(Math.abs(v - want[k]!) <= 1e-4 * Math.max(1, Math.abs(want[k]!)), `call ${i}: ${got} vs ${want}`));
  }
  assert.equal(h2.stats().traces, 2, h2.stats().traceReasons.join('; '));
  assert.equal(h2.stats().cacheHits, 5);
  // A captured tensor chosen by a value read is checked by identity.
  const wa = t.tensor([1, 2]), wb = t.tensor([10, 20]);
  const h = t.jit((y: t.Tensor) => { const e = t.exp(y); return t.mul(e, t.sum(y).item() > 0 ? wa : wb); });
  const pos = t.tensor([1, 1]), neg = t.tensor([-1, -1]);
  for (const y of [pos, pos, neg, neg, pos]) {
    const want = Array.from(t.mul(t.exp(y), t.sum(y).item() > 0 ? wa : wb).data());
    const got = Array.from(h(y).data());
    got.forEach((v, k) => assert.ok(Math.abs(v - want[k]!) <= 1e-5 * Math.abs(want[k]!), `${got} vs ${want}`));
  }
});
