import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit } from '../../src/index.js';
import '../../src/compiler/index.js';
import { wasmBackend } from '../../src/backend/wasm/backend.js';

test('jit on the wasm backend runs the graph optimized by the full pipeline (CSE, DCE, simplify, fusion) on wasm kernels', () => {
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
  assert.equal(count(optimized, 'tanh'), 0);
  // exp(x @ w) fused into the product's epilogue, the rest into one elementwise kernel
  // (src/compiler/wasm-kernels.ts runs both on the wasm heap).
  assert.equal(count(optimized, 'matmul') + count(optimized, 'matmulEpilogue'), 1, optimized.toString());
  assert.ok(count(optimized, 'fusedElementwise') + count(optimized, 'matmulEpilogue') >= 1, optimized.toString());
  // Count the wasm backend's SGEMM calls in a replay: one, not two.
  const sgemm = wasmBackend.matmul;
  const run = sgemm.run;
  let matmuls = 0;
  sgemm.run = function (this: typeof sgemm, ...a: Parameters<typeof run>) { matmuls++; return run.apply(this, a); };
  try {
    f(x2);
  } finally {
    sgemm.run = run;
  }
  assert.equal(matmuls, 1);
});
