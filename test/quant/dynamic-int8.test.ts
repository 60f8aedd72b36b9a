// Dynamic int8 QuantizedLinear (activations quantized per row on the fly, int8 × int8 → int32):
// the output equals the reference formula bit for bit on every backend (wasm kernels, cpu
// reference), the error against the float Linear stays within the quantization bound, bad inputs
// are refused, non-finite rows, gradients, and the checkpoint round trip.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { quant } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { SHAPES, layerFor, referenceOf } from './dynamic-int8-helpers.js';

forEachBackend('dynamic int8 QuantizedLinear', (backend) => {
  it('equals the reference formula bit for bit (odd M, K, N; bias or not; per channel or per tensor; batch dims)', () => {
    t.manualSeed(11);
    for (const [m, k, n] of SHAPES) {
      for (const [bias, perTensor] of [[true, false], [false, false], [true, true]] as const) {
        const layer = layerFor(k, n, { bias, perTensor });
        assert.equal(layer.activations, 'dynamic-int8');
        assert.equal(layer.weight_q.backend, backend);
        const x = t.randn([m, k]).mul(3);
        const y = t.noGrad(() => layer.call(x));
        assert.deepEqual(y.shape, [m, n]);
        assert.equal(y.dtype, 'float32');
        assert.deepEqual(Float32Array.from(y.data()), referenceOf(layer, x), `m ${m} k ${k} n ${n} bias ${bias} perTensor ${perTensor}`);
      }
    }
    const layer = layerFor(24, 10);
    const x3 = t.randn([2, 3, 24]);
    const y3 = t.noGrad(() => layer.call(x3));
    assert.deepEqual(y3.shape, [2, 3, 10]);
    assert.deepEqual(Float32Array.from(y3.data()), referenceOf(layer, x3));
    // A non-contiguous input (a transposed view) gives the same as its contiguous copy.
    const xt = t.randn([24, 5]).mT;
    assert.deepEqual(Array.from(t.noGrad(() => layer.call(xt)).data()), Array.from(t.noGrad(() => layer.call(xt.contiguous())).data()));
  });

  it('stays within the quantization error bound of the float Linear', () => {
    t.manualSeed(12);
    for (const [m, k, n] of [[5, 64, 33], [16, 300, 20], [3, 784, 64]] as const) {
      const linear = new t.nn.Linear(k, n);
      const layer = quant.QuantizedLinear.fromLinear(linear, { bits: 8, activations: 'dynamic-int8' });
      const x = t.randn([m, k]);
      const y = t.noGrad(() => layer.call(x)).data();
      const yf = t.noGrad(() => linear.call(x)).data();
      const xs = x.data(), w = linear.weight.data(), sw = layer.weight_scale.data();
      const { scales: sx } = quant.quantizeRowsInt8(Float32Array.from(xs), m, k);
      let sumErr = 0, sumMag = 0;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          // |x̂ŵ − xw| ≤ Σ |ex||w| + |x||ew| + |ex||ew| with |ex| ≤ sx/2, |ew| ≤ sw/2.
          let bound = 1e-5;
          for (let p = 0; p < k; p++) bound += (sx[i]! / 2) * Math.abs(w[j * k + p]!) + Math.abs(xs[i * k + p]!) * (sw[j]! / 2) + (sx[i]! * sw[j]!) / 4;
          const err = Math.abs(y[i * n + j]! - yf[i * n + j]!);
          assert.ok(err <= bound * 1.001, `m ${m} k ${k} n ${n} [${i}, ${j}]: |Δ| ${err} > ${bound}`);
          sumErr += err;
          sumMag += Math.abs(yf[i * n + j]!);
        }
      }
      // Typical error: well under 1% of the output's magnitude (random rounding errors cancel).
      assert.ok(sumErr / sumMag < 0.01, `k ${k}: mean relative error ${sumErr / sumMag}`);
    }
  });

  it('an all-zero row gives the bias; a row with NaN or Inf gives NaN, other rows unaffected', () => {
    t.manualSeed(13);
    const layer = layerFor(20, 6);
    const rows = [new Array(20).fill(0), Array.from({ length: 20 }, (_, i) => (i === 7 ? NaN : 1)), Array.from({ length: 20 }, (_, i) => (i === 3 ? -Infinity : i / 10)), Array.from({ length: 20 }, (_, i) => i / 7 - 1)];
    const x = t.tensor(rows);
    const y = t.noGrad(() => layer.call(x)).data();
    const bias = layer.bias!.data();
    for (let j = 0; j < 6; j++) {
      assert.equal(y[j], bias[j]);
      assert.ok(Number.isNaN(y[6 + j]!) && Number.isNaN(y[12 + j]!));
      assert.ok(Number.isFinite(y[18 + j]!));
    }
    assert.deepEqual(Array.from(y.slice(18)), Array.from(referenceOf(layer, x).slice(18)));
  });

  it('refuses weights it cannot take, unknown modes and bad inputs', () => {
    const linear = new t.nn.Linear(32, 4);
    assert.throws(() => quant.QuantizedLinear.fromLinear(linear, { bits: 4, activations: 'dynamic-int8' }),
      /activations 'dynamic-int8' needs an 8-bit symmetric weight, per output channel \(axis 0\) or per tensor; this one is 4-bit symmetric per-channel/);
    assert.throws(() => quant.QuantizedLinear.fromLinear(linear, { bits: 8, symmetric: false, activations: 'dynamic-int8' }), /this one is 8-bit affine per-channel/);
    assert.throws(() => quant.QuantizedLinear.fromLinear(linear, { bits: 8, scheme: 'group', groupSize: 16, activations: 'dynamic-int8' }), /this one is 8-bit symmetric group \(groups of 16\)/);
    assert.throws(() => quant.QuantizedLinear.fromLinear(linear, { bits: 8, activations: 'int4' as never }), /activations must be 'none' or 'dynamic-int8', got "int4"/);
    const weightOnly = quant.QuantizedLinear.fromLinear(linear, { bits: 4 });
    assert.throws(() => quant.quantizedLinear(t.randn([1, 32]), weightOnly.weight, undefined, { activations: 'dynamic-int8' }), /quantizedLinear: activations 'dynamic-int8' needs an 8-bit/);
    const layer = quant.QuantizedLinear.fromLinear(linear, { bits: 8, activations: 'dynamic-int8' });
    assert.throws(() => layer.call(t.randn([2, 31])), /input of shape \[2, 31\] has 31 features/);
    assert.throws(() => layer.call(t.ones([2, 32], { dtype: 'int32' })), /is int32; pass floating-point activations/);
    // K · 127² must fit in int32.
    const k = quant.DYNAMIC_INT8_MAX_K + 1;
    assert.equal(quant.DYNAMIC_INT8_MAX_K, 133144);
    assert.throws(() => quant.QuantizedLinear.fromLinear(new t.nn.Linear(k, 1, { bias: false }), { bits: 8, activations: 'dynamic-int8' }), /K must be at most 133144; this layer has 133145 input features/);
    assert.throws(() => quant.quantizeModel(new t.nn.Sequential(new t.nn.Linear(8, 2)), { bits: 4, activations: 'dynamic-int8' }), /quantizeModel: layer '0' \(Linear 8 → 2\): QuantizedLinear: activations 'dynamic-int8' needs/);
  });

  it('float64 input: computed in float32 the same way, returned as float64', () => {
    t.manualSeed(14);
    const layer = layerFor(40, 9);
    const x = t.randn([3, 40]);
    const y64 = t.noGrad(() => layer.call(x.double()));
    assert.equal(y64.dtype, 'float64');
    assert.deepEqual(Array.from(y64.data()), Array.from(t.noGrad(() => layer.call(x)).data()));
  });

  it('with a gradient to take, forward stays dynamic int8 and backward is the weight-only product (straight-through)', () => {
    t.manualSeed(15);
    const layer = layerFor(16, 5);
    const x = t.randn([3, 16], { requiresGrad: true });
    const y = layer.call(x);
    assert.deepEqual(Array.from(y.data()), Array.from(t.noGrad(() => layer.call(x.detach())).data()));
    y.sum().backward();
    // dL/dx = ones · Ŵ: rounding the input has no gradient, so the dequantized weight's product stands in.
    const expected = t.ones([3, 5]).matmul(quant.dequantize(layer.weight)).data();
    x.grad!.data().forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `${i}: ${v} vs ${expected[i]}`));
  });

  it('quantizeModel and the safetensors round trip keep the activation mode', () => {
    t.manualSeed(16);
    const net = new t.nn.Sequential(new t.nn.Linear(20, 12), new t.nn.ReLU(), new t.nn.Linear(12, 3));
    const { report } = quant.quantizeModel(net, { bits: 8, activations: 'dynamic-int8' });
    assert.equal(report.layers.length, 2);
    assert.equal((net.get(0) as quant.QuantizedLinear).activations, 'dynamic-int8');
    const config = quant.quantizationConfig(net);
    assert.equal(config.layers['0']!.activations, 'dynamic-int8');
    const fresh = new t.nn.Sequential(new t.nn.Linear(20, 12), new t.nn.ReLU(), new t.nn.Linear(12, 3));
    quant.parseQuantizedInto(fresh, quant.serializeQuantized(net));
    assert.equal((fresh.get(2) as quant.QuantizedLinear).activations, 'dynamic-int8');
    const x = t.randn([4, 20]);
    assert.deepEqual(Array.from(t.noGrad(() => fresh.call(x)).data()), Array.from(t.noGrad(() => net.call(x)).data()));
    // Weight-only layers keep configs without the field (files written before it load the same).
    const plain = new t.nn.Sequential(new t.nn.Linear(20, 3));
    quant.quantizeModel(plain, { bits: 8 });
    assert.equal('activations' in quant.quantizationConfig(plain).layers['0']!, false);
  });
});
