import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';

// The wasm float32 softmax kernel (softmax-kernel.ts) against the float64 reference kernel: row
// tails, strided kept dimensions, infinities and NaN, the layouts it declines, and gradients.

function values(n: number, seed: number, scale = 6): Float64Array {
  let s = seed;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround((s / 2 ** 32 - 0.5) * scale);
  });
}

const calls = () => wasmBackend.kernelCalls.get('softmax') ?? { wasm: 0, reference: 0 };

type Make = (dtype: t.DType, backend: string) => t.Tensor;

/** Values of this shape (rounded to float32) on a backend. */
function input(data: ArrayLike<number>, shape: number[]): Make {
  return (dtype, backend) => t.tensor(Float64Array.from(data), { dtype, shape, backend });
}

/**
 * Float32 softmax on wasm vs the float64 reference: within 3 ulp plus what rounding x − max to
 * float32 costs (half an ulp of |x − max| in the exponent, and |x − max| ≤ −ln(value) + ln(row size)).
 */
function assertMatchesReference(make: Make, axis: number, what: string, kernel: 'wasm' | 'reference'): void {
  const before = calls()[kernel];
  const got = t.softmax(make('float32', 'wasm'), axis).data();
  assert.equal(calls()[kernel], before + 1, `${what}: ran the ${kernel} kernel`);
  const want = t.softmax(make('float64', 'cpu'), axis).data();
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]!)) {
      assert.ok(Number.isNaN(got[i]!), `${what}[${i}]: ${got[i]} vs NaN`);
      continue;
    }
    const spread = want[i]! > 0 ? -Math.log(want[i]!) + Math.log(64) : 0;
    assert.ok(Math.abs(got[i]! - want[i]!) <= 2 ** -23 * (3 + spread) * Math.abs(want[i]!) + 1e-30, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

test('float32 softmax along the last axis matches the float64 reference (tails, strided rows)', () => {
  assertMatchesReference(input(values(5 * 37, 1), [5, 37]), -1, '[5, 37]', 'wasm');
  assertMatchesReference(input(values(2 * 4 * 64 * 64, 2, 20), [2, 4, 64, 64]), 3, 'attention scores', 'wasm');
  // Kept dimensions that do not merge (a permuted view whose last axis is still contiguous).
  const base = input(values(3 * 2 * 9, 3), [3, 2, 9]);
  assertMatchesReference((dtype, backend) => t.permute(base(dtype, backend), [1, 0, 2]), -1, 'permuted rows', 'wasm');
  assertMatchesReference(input(values(7, 4), [7]), 0, '1-D', 'wasm');
});

test('infinities and NaN: -inf entries get 0, an all -inf row and rows with +inf or NaN give NaN like the reference', () => {
  const rows = [
    [0.5, -Infinity, 2, -Infinity, 1],
    [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
    [1, Infinity, 0, -3, 2],
    [1, NaN, 0, -3, 2],
    [1000, 999, -1000, 0, 1000],
  ];
  assertMatchesReference(input(rows.flat(), [5, 5]), 1, 'specials', 'wasm');
});

test('other layouts and dtypes run the reference kernel', () => {
  const x = input(values(6 * 5, 5), [6, 5]);
  assertMatchesReference(x, 0, 'axis 0', 'reference');
  assertMatchesReference((dtype, backend) => t.transpose(x(dtype, backend)), 1, 'transposed last axis', 'reference');
  const before = calls().reference;
  const y = t.softmax(x('float64', 'wasm'), 1);
  assert.equal(y.dtype, 'float64');
  assert.equal(calls().reference, before + 1, 'float64 on wasm runs the reference');
});

test('the gradient through the wasm kernel matches the float64 one', () => {
  const x = input(values(4 * 33, 6), [4, 33]);
  const w = input(values(4 * 33, 7), [4, 33]);
  const gradOf = (dtype: t.DType, backend: string) => {
    const leaf = x(dtype, backend).requiresGrad_();
    t.softmax(leaf, -1).mul(w(dtype, backend)).sum().backward();
    return leaf.grad!.data();
  };
  const got = gradOf('float32', 'wasm');
  const want = gradOf('float64', 'cpu');
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6, `grad[${i}]: ${got[i]} vs ${want[i]}`);
});
