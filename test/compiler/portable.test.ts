import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit } from '../../src/index.js';
import '../../src/compiler/index.js';

test('jit on the wasm backend runs the graph optimized by the backend-independent passes', () => {
  const w = t.randn([4, 4], { backend: 'wasm' });
  // exp(x @ w) computed twice (CSE), a multiply by one (simplify) and an unused value (DCE).
  const fn = (x: t.Tensor): t.Tensor => {
    const a = t.exp(t.matmul(x, w)), b = t.exp(t.matmul(x, w));
    void t.tanh(x);
    return t.mul(t.add(a, b), 1);
  };
  const f = jit(fn);
  const x = t.randn([3, 4], { backend: 'wasm' });
  f(x);
  const x2 = t.randn([3, 4], { backend: 'wasm' });
  const got = f(x2);
  assert.equal(got.backend, 'wasm');
  const ref = fn(x2).data();
  got.data().forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) <= 1e-6 * Math.max(1, Math.abs(ref[i]!)), `${v} vs ${ref[i]}`));
  const { traced, optimized } = f.graphs()[0]!;
  assert.ok(optimized !== undefined, 'the wasm graph is optimized too');
  const count = (g: t.Graph, op: string): number => g.nodes.filter((n) => n.op === op).length;
  assert.equal(count(traced, 'matmul'), 2);
  assert.equal(count(optimized, 'matmul'), 1, optimized.toString());
  assert.equal(count(optimized, 'tanh'), 0);
  assert.ok(!optimized.nodes.some((n) => n.op === 'fused' || n.op === 'matmulEpilogue'), 'no cpu-only fused kernels on wasm');
  // Count the wasm backend's matmul kernels in a replay: one, not two.
  const wasm = t.getBackend('wasm');
  const orig = wasm.kernel;
  const lookup = orig as (this: t.Backend, prim: string) => ((...a: unknown[]) => unknown) | undefined;
  let matmuls = 0;
  wasm.kernel = function (this: t.Backend, prim: string) {
    const k = lookup.call(this, prim);
    return k === undefined || prim !== 'matmul' ? k : (...a: unknown[]) => { matmuls++; return k(...a); };
  } as unknown as typeof orig;
  try {
    f(x2);
  } finally {
    wasm.kernel = orig;
  }
  assert.equal(matmuls, 1);
});
