import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';

// The wasm float32 softmax and logSoftmax kernels (softmax-kernel.ts) against the float64
// reference kernels: row tails, strided kept dimensions, infinities and NaN, the layouts they
// decline, and gradients.

function values(n: number, seed: number, scale = 6): Float64Array {
  let s = seed;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround((s / 2 ** 32 - 0.5) * scale);
  });
}

type Op = 'softmax' | 'logSoftmax';
const calls = (op: Op = 'softmax') => wasmBackend.kernelCalls.get(op) ?? { wasm: 0, reference: 0 };

type Make = (dtype: t.DType, backend: string) => t.Tensor;

/** Values of this shape (rounded to float32) on a backend. */
function input(data: ArrayLike<number>, shape: number[]): Make {
  return (dtype, backend) => t.tensor(Float64Array.from(data), { dtype, shape, backend });
}

/**
 * Float32 softmax on wasm vs the float64 reference: within 3 ulp plus what rounding x − max to
 * float32 costs (half an ulp of |x − max| in the exponent, and |x − max| ≤ −ln(value) + ln(row size)).
 * logSoftmax = (x − max) − log Σ: the rounding of x − max (≤ |value| + log Σ), log's 2 ulp of
 * log Σ (≤ ln(row size) for a finite max), and the final rounding.
 */
function assertMatchesReference(make: Make, axis: number, what: string, kernel: 'wasm' | 'reference', op: Op = 'softmax'): void {
  const before = calls(op)[kernel];
  const got = t[op](make('float32', 'wasm'), axis).data();
  assert.equal(calls(op)[kernel], before + 1, `${what}: ran the ${kernel} kernel`);
  const want = t[op](make('float64', 'cpu'), axis).data();
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]!) || !Number.isFinite(want[i]!)) {
      assert.ok(Object.is(got[i]!, want[i]!) || (Number.isNaN(got[i]!) && Number.isNaN(want[i]!)), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
      continue;
    }
    const bound = op === 'softmax'
      ? 2 ** -23 * (3 + (want[i]! > 0 ? -Math.log(want[i]!) + Math.log(64) : 0)) * Math.abs(want[i]!) + 1e-30
      : 2 ** -23 * (2 * Math.abs(want[i]!) + 4 * Math.log(4096) + 1);
    assert.ok(Math.abs(got[i]! - want[i]!) <= bound, `${what} ${op}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

for (const op of ['softmax', 'logSoftmax'] as const) {
  test(`float32 ${op} along the last axis matches the float64 reference (tails, strided rows)`, () => {
    assertMatchesReference(input(values(5 * 37, 1), [5, 37]), -1, '[5, 37]', 'wasm', op);
    assertMatchesReference(input(values(2 * 4 * 64 * 64, 2, 20), [2, 4, 64, 64]), 3, 'attention scores', 'wasm', op);
    assertMatchesReference(input(values(128 * 65, 9, 30), [128, 65]), 1, 'logits', 'wasm', op);
    // Kept dimensions that do not merge (a permuted view whose last axis is still contiguous).
    const base = input(values(3 * 2 * 9, 3), [3, 2, 9]);
    assertMatchesReference((dtype, backend) => t.permute(base(dtype, backend), [1, 0, 2]), -1, 'permuted rows', 'wasm', op);
    assertMatchesReference(input(values(7, 4), [7]), 0, '1-D', 'wasm', op);
  });
}

test('infinities and NaN: -inf entries get 0, an all -inf row and rows with +inf or NaN give NaN like the reference', () => {
  const rows = [
    [0.5, -Infinity, 2, -Infinity, 1],
    [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
    [1, Infinity, 0, -3, 2],
    [1, NaN, 0, -3, 2],
    [1000, 999, -1000, 0, 1000],
  ];
  assertMatchesReference(input(rows.flat(), [5, 5]), 1, 'specials', 'wasm');
  // logSoftmax: -inf entries stay -inf, an all -inf row and rows with +inf or NaN give NaN.
  assertMatchesReference(input(rows.flat(), [5, 5]), 1, 'specials', 'wasm', 'logSoftmax');
});

test('other layouts and dtypes run the reference kernel', () => {
  const x = input(values(6 * 5, 5), [6, 5]);
  assertMatchesReference(x, 0, 'axis 0', 'reference');
  assertMatchesReference((dtype, backend) => t.transpose(x(dtype, backend)), 1, 'transposed last axis', 'reference');
  assertMatchesReference(x, 0, 'axis 0', 'reference', 'logSoftmax');
  const before = calls().reference;
  const y = t.softmax(x('float64', 'wasm'), 1);
  assert.equal(y.dtype, 'float64');
  assert.equal(calls().reference, before + 1, 'float64 on wasm runs the reference');
});

test('the gradient through the wasm kernels matches the float64 one', () => {
  const x = input(values(4 * 33, 6), [4, 33]);
  const w = input(values(4 * 33, 7), [4, 33]);
  for (const op of ['softmax', 'logSoftmax'] as const) {
    const gradOf = (dtype: t.DType, backend: string) => {
      const leaf = x(dtype, backend).requiresGrad_();
      t[op](leaf, -1).mul(w(dtype, backend)).sum().backward();
      return leaf.grad!.data();
    };
    const got = gradOf('float32', 'wasm');
    const want = gradOf('float64', 'cpu');
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6, `${op} grad[${i}]: ${got[i]} vs ${want[i]}`);
  }
});
