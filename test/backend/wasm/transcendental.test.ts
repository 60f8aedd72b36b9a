import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { gelu, geluGrad } from '../../../src/backend/cpu/math.js';
import { MAX_ULP, REFERENCES, ulp32, type Transcendental } from '../../helpers/transcendental-bounds.js';

// The wasm backend's float32 exp, expm1, log, log1p, tanh, sigmoid, erf and rsqrt
// (transcendental-kernel.ts) against float64 references, in ulps of the float32 result, over an
// even sweep of all float32 bit patterns (both signs, denormals, huge values), plus the special
// values that each function must return exactly.

type Op = Transcendental;

const SPECIAL = [
  0, -0, Infinity, -Infinity, NaN, 2 ** -149, -(2 ** -149), 2 ** -126, 1.1754942e-38, 3.4028235e38, -3.4028235e38,
  1, -1, 0.5, -0.5, 88.72, 88.73, 89, -87.3, -103.9, -104, -150, 0.625, -0.625, 0.99999994, 1.0000001,
  2.5, -2.5, 3.92, 4, 9, -9, 17, -17, 1e-8, -1e-8, 1e-30, 0.34657359, -0.34657359, -0.99999994,
];

function sweep(): Float32Array {
  const step = 16381; // prime, so the sweep visits every exponent and many mantissas
  const bits = new Uint32Array(Math.ceil(2 ** 32 / step));
  for (let i = 0, b = 0; i < bits.length; i++, b += step) bits[i] = b;
  const values = new Float32Array(bits.buffer);
  const all = new Float32Array(values.length + SPECIAL.length);
  all.set(values);
  all.set(SPECIAL, values.length);
  return all;
}

test('exp, expm1, log, log1p, tanh, sigmoid, erf and rsqrt are within their ulp bounds over the float32 range', () => {
  const xs = sweep();
  const x = t.tensor(xs, { dtype: 'float32', backend: 'wasm' });
  for (const op of Object.keys(REFERENCES) as Op[]) {
    const before = wasmBackend.kernelCalls.get(op)?.wasm ?? 0;
    const got = (t[op] as (a: t.Tensor) => t.Tensor)(x).data();
    assert.equal(wasmBackend.kernelCalls.get(op)!.wasm, before + 1, `${op} ran the SIMD kernel`);
    const ref = REFERENCES[op];
    let worst = 0, worstX = 0;
    for (let i = 0; i < xs.length; i++) {
      const r = ref(xs[i]!), g = got[i]!;
      const rounded = Math.fround(r);
      if (Number.isNaN(r) || !Number.isFinite(rounded) || r === 0) {
        // NaN, ±inf (also by overflow) and ±0 are exact, signs included.
        assert.ok(Object.is(g, rounded), `${op}(${xs[i]}) = ${g}, expected ${rounded}`);
        continue;
      }
      const err = Math.abs(g - r) / ulp32(r);
      if (!(err <= worst)) { worst = err; worstX = xs[i]!; }
    }
    assert.ok(worst <= MAX_ULP[op], `${op}: ${worst.toFixed(3)} ulp at x = ${worstX} (bound ${MAX_ULP[op]})`);
  }
});

test('GELU and its derivative (one kernel each) are within 1 ulp of 12 plus 2.5e-8·|x| absolutely', () => {
  // An absolute bound: relative accuracy is lost near the zero of Φ(x) + x·φ(x) at x = −0.75, and
  // the left tail has its own test below.
  const n = 1 << 16;
  const xs = Float32Array.from({ length: n + SPECIAL.length }, (_, i) => (i < n ? Math.fround(-12 + (24 * i) / n) : SPECIAL[i - n]!));
  const x = t.tensor(xs, { dtype: 'float32', backend: 'wasm' });
  for (const [name, ref] of [['gelu', gelu], ['geluGrad', geluGrad]] as const) {
    const before = wasmBackend.kernelCalls.get(name)?.wasm ?? 0;
    const got = (name === 'gelu' ? t.gelu(x) : t.geluGrad(x)).data();
    assert.equal(wasmBackend.kernelCalls.get(name)!.wasm, before + 1, `${name} ran the SIMD kernel`);
    for (let i = 0; i < xs.length; i++) {
      const r = ref(xs[i]!);
      if (!Number.isFinite(r)) {
        assert.ok(Object.is(got[i], Math.fround(r)), `${name}(${xs[i]}) = ${got[i]}, expected ${r}`);
        continue;
      }
      const bound = ulp32(Math.max(Math.abs(r), 1)) + 2.5e-8 * Math.abs(xs[i]!);
      assert.ok(Math.abs(got[i]! - r) <= bound, `${name}(${xs[i]}) = ${got[i]}, expected ${r}`);
    }
  }
});

/** Φ(−a) for a >= 2 by the Mills ratio's continued fraction φ(a)/(a + 1/(a + 2/(a + 3/(a + …)))), to ~1e-15. */
function normalTailReference(a: number): number {
  let fraction = a;
  for (let k = 200; k >= 1; k--) fraction = a + k / fraction;
  return Math.exp(-0.5 * a * a) / Math.sqrt(2 * Math.PI) / fraction;
}

test('GELU and its derivative keep their relative accuracy in the left tail (x from −13 to −2)', () => {
  // Φ(x) is e^(−x²/2) times a polynomial there, not 1 − erf, so the results keep a relative
  // accuracy (measured at most 7.5e-6, at x ≈ −12 where rounding x²/2 costs 4e-6; at most 2e-6
  // above −5.3), where 1 − erf would have only absolute accuracy.
  const xs = Float32Array.from({ length: 4096 }, (_, i) => Math.fround(-13 + (11 * i) / 4095));
  const x = t.tensor(xs, { dtype: 'float32', backend: 'wasm' });
  const got = { gelu: t.gelu(x).data(), geluGrad: t.geluGrad(x).data() };
  for (let i = 0; i < xs.length; i++) {
    const a = -xs[i]!, tail = normalTailReference(a), density = Math.exp(-0.5 * a * a) / Math.sqrt(2 * Math.PI);
    const refs = { gelu: -a * tail, geluGrad: tail - a * density };
    for (const op of ['gelu', 'geluGrad'] as const) {
      const r = refs[op];
      assert.ok(Math.abs(got[op][i]! - r) <= 2e-5 * Math.abs(r), `${op}(${xs[i]}) = ${got[op][i]}, expected ${r}`);
    }
  }
});

test('the kernels treat every element alike: contiguous, strided and tail elements agree', () => {
  // 4·k + 3 elements: the last three run the scalar tail; the transposed view runs the strided kernel.
  const data = Float32Array.from({ length: 7 * 11 }, (_, i) => Math.fround(Math.sin(i * 1.7) * 5));
  const x = t.tensor(data, { dtype: 'float32', backend: 'wasm', shape: [7, 11] });
  for (const op of [...Object.keys(REFERENCES), 'gelu', 'geluGrad'] as (Op | 'gelu' | 'geluGrad')[]) {
    const f = (op === 'gelu' ? (a: t.Tensor) => t.gelu(a) : t[op]) as (a: t.Tensor) => t.Tensor;
    const whole = f(x).data();
    const strided = t.transpose(f(t.transpose(x)), 0, 1).contiguous().data();
    const shifted = f(t.reshape(x, [-1]).narrow(0, 1, 7 * 11 - 1)).data();
    assert.deepEqual(Array.from(strided), Array.from(whole), `${op}: strided`);
    assert.deepEqual(Array.from(shifted), Array.from(whole.subarray(1)), `${op}: shifted by one element`);
  }
});

test('float64 inputs keep the reference kernels (Math.* in float64)', () => {
  const x = t.tensor([0.1, -2.5, 3], { dtype: 'float64', backend: 'wasm' });
  assert.deepEqual(Array.from(t.exp(x).data()), [Math.exp(0.1), Math.exp(-2.5), Math.exp(3)]);
  assert.deepEqual(Array.from(t.tanh(x).data()), [Math.tanh(0.1), Math.tanh(-2.5), Math.tanh(3)]);
});
