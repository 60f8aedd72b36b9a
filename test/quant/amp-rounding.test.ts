// The cpu/wasm backends round every stored float16/bfloat16 value with roundToFormat, which works on
// the float32 bits (mixed precision rounds every activation); it must equal roundFloat16/roundBFloat16.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roundToFormat } from '../../src/backend/cpu/backend.js';
import { roundFloat16, roundBFloat16 } from '../../src/core/dtype.js';

test('roundToFormat on float32 bits equals roundFloat16 / roundBFloat16 element by element', () => {
  const specials = [0, -0, 65504, 65519.99, 65520, -65520, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14 - 2 ** -30,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, Infinity, -Infinity, NaN, 3.4e38, -1e-30, 5.96e-8];
  const src = new Float32Array(60000);
  const bits = new Uint32Array(src.buffer);
  let seed = 12345;
  const next = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
  for (let i = 0; i < 30000; i++) bits[i] = next();
  for (let i = 30000; i < src.length; i++) src[i] = ((next() / 2 ** 32) - 0.5) * 2 ** ((next() % 50) - 30);
  specials.forEach((v, i) => { src[i] = v; });
  for (const [dtype, round] of [['float16', roundFloat16], ['bfloat16', roundBFloat16]] as const) {
    const fast = Float32Array.from(src);
    roundToFormat(dtype, fast);
    for (let i = 0; i < src.length; i++) {
      const want = Math.fround(round(src[i]!));
      const ok = Object.is(fast[i], want) || (Number.isNaN(fast[i]!) && Number.isNaN(want));
      if (!ok) assert.fail(`${dtype}: ${src[i]} rounds to ${fast[i]}, expected ${want}`);
    }
  }
});
