// Inputs and a tolerance check shared by the tests that compare a wasm kernel with the cpu
// reference kernel of the same primitive on the same random float32 values.
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';

/** A seeded stream of uniform values in [-amplitude, amplitude) (a 32-bit LCG: the same stream on every run). */
export function seededUniform(seed: number, amplitude = 1): (n: number) => Float64Array {
  let state = seed;
  return (n) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      out[i] = ((state / 2 ** 32) * 2 - 1) * amplitude;
    }
    return out;
  };
}

/** The same float32 values, drawn from `values`, on the cpu and on the wasm backend. */
export function cpuWasmPair(values: (n: number) => Float64Array): (shape: number[]) => [t.Tensor, t.Tensor] {
  return (shape) => {
    const data = values(shape.reduce((a, b) => a * b, 1));
    return [t.tensor(data, { shape, dtype: 'float32', backend: 'cpu' }), t.tensor(data, { shape, dtype: 'float32', backend: 'wasm' })];
  };
}

/**
 * A wasm result against the cpu reference: on the wasm backend, same shape, every element finite
 * and within 1e-5 · max(|reference|, 1e-3) (float32 sums in another order than the reference's).
 */
export function assertNearReference(actual: t.Tensor, expected: t.Tensor, what: string): void {
  assert.equal(actual.backend, 'wasm', `${what}: result left the wasm backend`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = actual.data(), b = expected.data();
  let scale = 1e-3, err = 0;
  for (let i = 0; i < b.length; i++) {
    assert.ok(Number.isFinite(Number(a[i])), `${what}[${i}] is ${a[i]}`);
    scale = Math.max(scale, Math.abs(Number(b[i])));
    err = Math.max(err, Math.abs(Number(a[i]) - Number(b[i])));
  }
  assert.ok(err <= 1e-5 * scale, `${what}: max error ${err} > 1e-5 · ${scale}`);
}
