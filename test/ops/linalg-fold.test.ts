// matmul's folding of [..., M, K] @ [K, N] into one 2-D GEMM, the layout of the gradients its vjp
// returns, and the gradients it skips when an input needs none.
import { test, it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { forEachBackend } from '../helpers/backends.js';

/** The matmul primitives `fn` dispatches, as their operand shapes. */
function matmulsIn(fn: () => void): number[][][] {
  const seen: number[][][] = [];
  const stop = t.addDispatchObserver({ onPrimitive: (prim, inputs) => { if (prim === 'matmul') seen.push(inputs.map((x) => [...x.shape])); } });
  try { fn(); } finally { stop(); }
  return seen;
}

forEachBackend('matmul folding and gradient layouts', () => {
  it(`a batch of rows times one matrix is one 2-D GEMM, equal to the per-batch products`, () => {
    const x = t.randn([2, 3, 4], { dtype: 'float64' }), w = t.randn([4, 5], { dtype: 'float64' });
    let y: t.Tensor | undefined;
    assert.deepEqual(matmulsIn(() => { y = t.matmul(x, w); }), [[[6, 4], [4, 5]]]);
    assert.deepEqual(y!.shape, [2, 3, 5]);
    for (let b = 0; b < 2; b++) {
      const expected = t.matmul(x.at(b), w).toArray() as number[][];
      const got = y!.at(b).toArray() as number[][];
      got.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - expected[i]![j]!) < 1e-12)));
    }
    // A vector on the right keeps numpy's shape rules.
    assert.deepEqual(t.matmul(x, t.randn([4], { dtype: 'float64' })).shape, [2, 3]);
  });

  it(`backward computes only the gradients that are needed, each as one GEMM`, () => {
    const x = t.randn([2, 3, 4]), w = t.randn([4, 5], { requiresGrad: true });
    const onlyW = matmulsIn(() => t.matmul(x, w).sum().backward());
    assert.equal(onlyW.length, 2, 'forward + the weight gradient, not the input gradient nobody reads');
    const xg = t.randn([2, 3, 4], { requiresGrad: true });
    const both = matmulsIn(() => t.matmul(xg, w).sum().backward());
    assert.equal(both.length, 3, 'forward + both gradients');
    assert.deepEqual(xg.grad!.shape, [2, 3, 4]);
  });

  it(`the gradient of a weight used transposed (a Linear's x·Wᵀ) is contiguous`, () => {
    const w = t.randn([5, 4], { requiresGrad: true });
    const x = t.randn([6, 4]);
    t.matmul(x, w.mT).sum().backward();
    assert.deepEqual(w.grad!.strides, [4, 1]);
    // Same values as the product written out: dW = (gᵀ·x), g all ones.
    const expected = t.matmul(t.ones([5, 6]), x).toArray() as number[][];
    (w.grad!.toArray() as number[][]).forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - expected[i]![j]!) < 1e-4)));
  });
});

test('the compiler fuses a folded 3-D linear with its bias and activation (matmul-epilogue sees through the reshape)', () => {
  const w = t.randn([8, 16]), b = t.randn([16]);
  const { graph } = t.trace((x: t.Tensor) => t.relu(t.add(t.matmul(x, w), b)), [t.randn([2, 3, 8])]);
  const out = C.runPipeline(graph).graph;
  assert.equal(out.nodes.filter((n) => n.op === 'matmulEpilogue').length, 1, out.toString());
  assert.equal(out.nodes.filter((n) => n.op === 'matmul').length, 0, out.toString());
});
