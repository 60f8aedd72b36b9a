// The wasm int8 × int8 → int32 GEMM: its int32 sums equal the exact integer products (raw mode)
// on random shapes with every kind of tail, on 1 and 2 threads (the same bits either way); the cpu
// backend's reference gives the same outputs as the wasm kernels. (MNIST accuracy with dynamic int8
// and `tessera quantize --dynamic` are checked in quantize-model.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { nn, quant } from '../../src/index.js';
import { wasmBackend } from '../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../src/backend/wasm/node.js';
import { wasmDynamicInt8 } from '../../src/backend/wasm/quant-dynamic-int8.js';
import { backendsUnderTest } from '../helpers/backends.js';
import { SHAPES, layerFor } from './dynamic-int8-helpers.js';

const wasm = backendsUnderTest().includes('wasm');

/** The kernel's int32 sums (raw mode) for x against the layer's codes. */
function rawSums(layer: quant.QuantizedLinear, x: t.Tensor): Int32Array {
  const m = x.size / layer.inFeatures;
  const storage = wasmDynamicInt8(wasmBackend).run(x.asKernelInput('test'), m, {
    n: layer.outFeatures, k: layer.inFeatures, codes: layer.weight_q.asKernelInput('test'), scales: layer.weight_scale.asKernelInput('test'), perTensor: false,
  }, undefined, true);
  assert.ok(storage !== undefined);
  return Int32Array.from(t.Tensor.fromStorage(storage, [m, layer.outFeatures], 'int32').data());
}

test('wasm int8 GEMM: exact int32 sums and identical outputs on 1 and 2 threads', { skip: !wasm && 'wasm not under test' }, () => {
  const previous = t.currentBackendName();
  t.setBackend('wasm');
  wasmBackend.setThreads(1);
  try {
    t.manualSeed(21);
    // Large and extreme inputs too: codes of ±127 in every position (the largest sums).
    const cases = [...SHAPES, [13, 1000, 37] as [number, number, number], [70, 520, 48] as [number, number, number]].map(([m, k, n]) => {
      const layer = layerFor(k, n);
      const x = t.randn([m, k]);
      return { m, k, n, layer, x };
    });
    const big = { m: 5, k: 4096, n: 3, layer: quant.QuantizedLinear.fromLinear({ inFeatures: 4096, outFeatures: 3, weight: t.ones([3, 4096]).mul(t.tensor([[1], [-1], [0.5]])), bias: undefined }, { bits: 8, activations: 'dynamic-int8' }), x: t.ones([5, 4096]).mul(t.tensor([[1], [-2], [3], [0], [1e-30]])) };
    cases.push(big);
    const single = cases.map(({ m, k, n, layer, x }) => {
      const got = rawSums(layer, x);
      const { codes } = quant.quantizeRowsInt8(Float32Array.from(x.data()), m, k);
      const want = quant.int8MatmulInt32(codes, m, quant.codesOf(layer.weight), n, k);
      assert.deepEqual(got, want, `m ${m} k ${k} n ${n}: int32 sums`);
      return Float32Array.from(t.noGrad(() => layer.call(x)).data());
    });
    // The extreme case: codes ±127 everywhere (each weight row is constant, so it quantizes to ±127).
    assert.deepEqual(Array.from(rawSums(big.layer, big.x).slice(0, 6)), [4096 * 127 * 127, -4096 * 127 * 127, 4096 * 127 * 127, -4096 * 127 * 127, 4096 * 127 * 127, -4096 * 127 * 127]);
    assert.equal(enableWasmThreads(2), 2);
    const pool = wasmBackend.pool;
    assert.equal(pool.waitUntilReady(), 1, 'the worker started');
    let splits = 0;
    const run = pool.run.bind(pool);
    pool.run = (...args: Parameters<typeof pool.run>) => {
      if (args[2] > 1) splits++;
      run(...args);
    };
    cases.forEach(({ m, k, n, layer, x }, i) => {
      const got = Float32Array.from(t.noGrad(() => layer.call(x)).data());
      assert.deepEqual(got, single[i], `m ${m} k ${k} n ${n}: 2 threads differ from 1`);
      const { codes } = quant.quantizeRowsInt8(Float32Array.from(x.data()), m, k);
      assert.deepEqual(rawSums(layer, x), quant.int8MatmulInt32(codes, m, quant.codesOf(layer.weight), n, k));
    });
    assert.ok(splits > 0, 'the larger cases were split over the pool');
  } finally {
    wasmBackend.stopThreads();
    t.setBackend(previous);
  }
});

test('the cpu reference and the wasm kernels give the same bits', { skip: !wasm && 'wasm not under test' }, () => {
  t.manualSeed(22);
  for (const [m, k, n] of [[1, 300, 17], [6, 33, 12], [37, 129, 65]] as const) {
    const linear = new nn.Linear(k, n, { backend: 'cpu' });
    const x = t.randn([m, k], { backend: 'cpu' }).mul(2);
    const onCpu = quant.QuantizedLinear.fromLinear(linear, { bits: 8, activations: 'dynamic-int8' });
    const yCpu = t.noGrad(() => onCpu.call(x)).data();
    const onWasm = onCpu.to('wasm') as quant.QuantizedLinear;
    assert.equal(onWasm.weight_q.backend, 'wasm');
    assert.equal(onWasm.activations, 'dynamic-int8');
    const xWasm = t.tensor(Array.from(x.data()), { backend: 'wasm' }).reshape([m, k]);
    const yWasm = t.noGrad(() => onWasm.call(xWasm)).data();
    assert.deepEqual(Array.from(yWasm), Array.from(yCpu), `m ${m} k ${k} n ${n}`);
  }
});


