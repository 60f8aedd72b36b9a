// QuantizedLinear and quantizedLinear against a float64 reference x · dequant(W)ᵀ + b, on each
// backend (on wasm: the fused small-batch kernel, the decoded-panel + SGEMM path, and the reference
// for layouts the kernels do not take), and its gradient rule.
import { it, test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { quant } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

/** float64 x · Ŵᵀ + b from plain arrays. */
function reference(x: ArrayLike<number>, m: number, k: number, w: ArrayLike<number>, n: number, bias: ArrayLike<number> | undefined): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias === undefined ? 0 : bias[j]!;
      for (let p = 0; p < k; p++) s += x[i * k + p]! * w[j * k + p]!;
      y[i * n + j] = s;
    }
  }
  return y;
}

/** max |a − b| / (Σ|x||w| scale): float32 accumulation error relative to the terms' magnitude. */
function assertClose(got: ArrayLike<number>, want: Float64Array, tol: number, what: string): void {
  assert.equal(got.length, want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  assert.ok(worst <= tol, `${what}: max |Δ| ${worst} > ${tol}`);
}

forEachBackend('QuantizedLinear', (backend) => {
  const shapes: Array<[number, number]> = [[40, 24], [64, 17], [96, 33]];
  const schemes: quant.QuantizeOptions[] = [];
  for (const bits of [8, 4] as const) {
    for (const symmetric of [true, false]) {
      schemes.push({ bits, symmetric, scheme: 'per-channel' });
      schemes.push({ bits, symmetric, scheme: 'per-tensor' });
      schemes.push({ bits, symmetric, scheme: 'group', groupSize: 32 }); // the kernels' groups (int8: 16 | gs, int4: 32 | gs)
      schemes.push({ bits, symmetric, scheme: 'group', groupSize: 8 }); // the reference path on wasm
    }
  }
  for (const opts of schemes) {
    it(`${opts.bits}-bit ${opts.symmetric ? 'symmetric' : 'affine'} ${opts.scheme}${opts.groupSize ? ` ${opts.groupSize}` : ''}: = x·dequant(W)ᵀ + b in float64, batch 1..33`, () => {
      t.manualSeed(3);
      for (const [k, n] of shapes) {
        const linear = new t.nn.Linear(k, n, { bias: n !== 17 });
        const layer = quant.QuantizedLinear.fromLinear(linear, opts);
        assert.equal(layer.weight_q.backend, backend);
        const w64 = quant.dequantize(layer.weight, { dtype: 'float64' }).data();
        const bias = layer.bias?.data();
        for (const m of [1, 2, 3, 4, 7, 9, 33]) {
          const x = t.randn([m, k]);
          const y = t.noGrad(() => layer.call(x));
          assert.deepEqual(y.shape, [m, n]);
          assert.equal(y.dtype, 'float32');
          // Terms are |x|·|w| ≲ 3·0.2; float32 sums of k of them stay well inside 1e-5.
          assertClose(y.data(), reference(x.data(), m, k, w64, n, bias), 2e-5, `k ${k} n ${n} m ${m}`);
        }
        // Batch dimensions are flattened like Linear's; float64 inputs compute in float64.
        const x3 = t.randn([2, 3, k]);
        assertClose(t.noGrad(() => layer.call(x3)).data(), reference(x3.data(), 6, k, w64, n, bias), 2e-5, 'rank 3');
        const x64 = t.randn([3, k], { dtype: 'float64' });
        assertClose(layer.call(x64).data(), reference(x64.data(), 3, k, w64, n, bias), 1e-12, 'float64');
      }
    });
  }

  it('equals the float Linear on the dequantized weights; the input gradient flows, the codes get none', () => {
    t.manualSeed(5);
    const linear = new t.nn.Linear(64, 12);
    const layer = quant.QuantizedLinear.fromLinear(linear, { bits: 4, scheme: 'group', groupSize: 32 });
    const dense = new t.nn.Linear(64, 12);
    t.noGrad(() => {
      dense.weight.copy_(quant.dequantize(layer.weight));
      dense.bias!.copy_(layer.bias!);
    });
    const x = t.randn([5, 64]);
    assertClose(t.noGrad(() => layer.call(x)).data(), Float64Array.from(t.noGrad(() => dense.call(x)).data()), 1e-5, 'forward');
    const xa = x.detach().requiresGrad_(), xb = x.detach().requiresGrad_();
    layer.call(xa).square().sum().backward();
    dense.call(xb).square().sum().backward();
    assertClose(xa.grad!.data(), Float64Array.from(xb.grad!.data()), 1e-5, 'input gradient');
    assert.equal(layer.parameters().length, 0);
    assert.equal(layer.weight_q.grad, undefined);
  });
});

test('QuantizedLinear: state dict keys, bytes, to(), and clear errors', () => {
  t.manualSeed(1);
  const linear = new t.nn.Linear(64, 8, { backend: 'cpu' });
  const layer = quant.QuantizedLinear.fromLinear(linear, { bits: 4, scheme: 'group', groupSize: 32, symmetric: false });
  assert.deepEqual([...layer.stateDict().keys()], ['weight_q', 'weight_scale', 'weight_zero_point', 'bias']);
  assert.equal(layer.nbytes, 8 * 32 + 8 * 2 * 4 + 8 * 2 * 4 + 8 * 4);
  const x = t.randn([2, 64], { backend: 'cpu' });
  const want = t.noGrad(() => layer.call(x)).data();
  layer.to('wasm');
  assert.equal(layer.weight.data.backend, 'wasm');
  assertClose(t.noGrad(() => layer.call(t.tensor(x.data(), { backend: 'wasm' }).reshape([2, 64]))).data(), Float64Array.from(want), 1e-5, 'after to(wasm)');
  assert.throws(() => layer.call(t.randn([2, 63], { backend: 'wasm' })), /QuantizedLinear: input of shape \[2, 63\] has 63 features in its last dimension; this layer expects 64/);
  assert.throws(() => quant.quantizedLinear(x, layer.weight), /input lives on 'cpu' but the quantized weight on 'wasm'; move the layer with .to\('cpu'\)/);
  assert.throws(() => new quant.QuantizedLinear(10, 8, layer.weight), /a layer 10 → 8 needs \[8, 10\]/);
});

forEachBackend('quantizedMatmul under jit and autodiff', () => {
  it('a jitted QuantizedLinear keeps the packed codes in its graph (no float32 weight) and equals the eager call', () => {
    t.manualSeed(31);
    const lin = new t.nn.Linear(48, 24);
    for (const [options, activations] of [[{ bits: 4, scheme: 'group', groupSize: 16 }, 'none'], [{ bits: 8, scheme: 'per-channel' }, 'dynamic-int8']] as const) {
      const q = quant.QuantizedLinear.fromLinear(lin, { ...options, activations });
      const f = t.jit((x: t.Tensor) => q.call(x));
      const x = t.randn([5, 48]);
      assert.deepEqual(Array.from(f(x).data()), Array.from(t.noGrad(() => q.call(x)).data()), `${activations}: jit = eager`);
      assert.deepEqual(Array.from(f(x.mul(2)).data()), Array.from(t.noGrad(() => q.call(x.mul(2))).data()), `${activations}: a replay = eager`);
      const { graph } = t.trace((v: t.Tensor) => q.call(v), [x]);
      assert.ok(graph.nodes.some((n) => n.op === 'quantizedMatmul'), `${activations}: one quantizedMatmul node`);
      const floatWeights = [...graph.constants.values()].filter((c) => c.dtype === 'float32' && c.size >= 48 * 24);
      assert.equal(floatWeights.length, 0, `${activations}: no dequantized float32 weight among the graph's constants`);
    }
  });
});

forEachBackend('quantizedMatmul gradients', () => {
  it('is differentiable in x (both orientations) by finite differences, in float64', () => {
    t.manualSeed(32);
    const lin = new t.nn.Linear(7, 5, { dtype: 'float64' });
    for (const options of [{ bits: 8, scheme: 'per-channel' }, { bits: 4, scheme: 'group', groupSize: 4, symmetric: false }] as const) {
      const q = quant.QuantizedLinear.fromLinear(lin, options);
      const report = t.gradgradcheck((x: t.Tensor) => q.call(x).tanh(), [t.randn([3, 7], { dtype: 'float64' })]);
      assert.equal(report.ok, true, JSON.stringify(report.worst));
      // A bias that requires grad (the functional form) gets the output gradient summed over rows; forward mode too.
      const withBias = t.gradcheck((x: t.Tensor, b: t.Tensor) => quant.quantizedLinear(x, q.weight, b).sin(), [t.randn([2, 3, 7], { dtype: 'float64' }), t.randn([5], { dtype: 'float64' })]);
      assert.equal(withBias.ok, true, JSON.stringify(withBias.worst));
    }
  });
}, { float64Only: true });
