import { test } from 'node:test';
import assert from 'node:assert/strict';

import { bfloat16Bits, bfloat16FromBits, float16Bits, float16FromBits, fromHalfBits, toHalfBits } from '../../src/io/half.js';
import { SeededRandom } from '../../src/data/random.js';

test('float16 known bit patterns', () => {
  const known: Array<[number, number]> = [
    [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [2 ** -24, 0x0001], [2 ** -14, 0x0400],
    [0, 0x0000], [-0, 0x8000], [Infinity, 0x7c00], [-Infinity, 0xfc00], [1 / 3, 0x3555],
  ];
  for (const [x, bits] of known) {
    assert.equal(float16Bits(x), bits, `${x}`);
    assert.ok(Object.is(float16FromBits(bits), x === 1 / 3 ? 0.333251953125 : x), `${bits.toString(16)}`);
  }
  assert.ok(Number.isNaN(float16FromBits(float16Bits(NaN))));
});

test('float16 rounds to nearest, ties to even, and overflows to Infinity', () => {
  assert.equal(float16Bits(1 + 2 ** -11), 0x3c00); // tie, even stays
  assert.equal(float16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie, odd rounds up
  assert.equal(float16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  assert.equal(float16Bits(65520), 0x7c00);
  assert.equal(float16Bits(65519), 0x7bff);
  assert.equal(float16Bits(2 ** -25), 0x0000); // tie with 0 → even (0)
  assert.equal(float16Bits(2 ** -25 * 1.01), 0x0001);
  assert.equal(float16Bits(3 * 2 ** -25), 0x0002); // subnormal tie → even
});

test('every float16 and bfloat16 pattern round-trips', () => {
  for (let bits = 0; bits < 65536; bits++) {
    const h = float16FromBits(bits);
    if (Number.isNaN(h)) continue;
    assert.equal(float16Bits(h), bits);
    const b = bfloat16FromBits(bits);
    if (Number.isNaN(b)) continue;
    assert.equal(bfloat16Bits(b), bits);
  }
});

test('encoding picks the nearest representable value (checked against both neighbours in float64)', () => {
  const r = new SeededRandom(11);
  for (let i = 0; i < 2000; i++) {
    // Magnitudes from 2^-26 to 2^17, both signs: subnormals, normals and overflow.
    const v = (r.next() < 0.5 ? -1 : 1) * 2 ** (r.next() * 43 - 26);
    for (const [encode, decode] of [[float16Bits, float16FromBits], [bfloat16Bits, bfloat16FromBits]] as const) {
      const bits = encode(v);
      if (!Number.isFinite(decode(bits))) {
        assert.ok(Math.abs(v) >= 65520, `${v} overflowed`); // float16's rounding threshold to Infinity
        continue;
      }
      const err = Math.abs(decode(bits) - v);
      for (const neighbour of [bits - 1, bits + 1]) {
        if ((neighbour & 0x7fff) === 0x7fff || neighbour < 0 || neighbour > 0xffff || (neighbour & 0x8000) !== (bits & 0x8000)) continue;
        const other = decode(neighbour);
        if (Number.isFinite(other)) assert.ok(err <= Math.abs(other - v), `${v}: ${bits.toString(16)} vs ${neighbour.toString(16)}`);
      }
    }
  }
});

test('array helpers convert both ways', () => {
  const x = Float32Array.from([1, -0.5, 2.75]);
  assert.deepEqual([...toHalfBits(x, 'float16')], [0x3c00, 0xb800, 0x4180]);
  assert.deepEqual([...toHalfBits(x, 'bfloat16')], [0x3f80, 0xbf00, 0x4030]);
  assert.deepEqual(fromHalfBits(toHalfBits(x, 'float16'), 'float16'), x);
  assert.deepEqual(fromHalfBits(toHalfBits(x, 'bfloat16'), 'bfloat16'), x);
});
