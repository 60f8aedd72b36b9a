// The collectives' elementwise reductions: the WebAssembly SIMD path (simd-reduce.ts, taken by
// reduceInto for long arrays) must give bit-identical results to the JS loops, for every dtype
// and op, with lengths that leave a tail, across block boundaries, and with NaN, signed zeros
// and int32 overflow.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { reduceInto, reduceIntoBoth, reduceIntoBothLoop, reduceIntoLoop, SIMD_REDUCE_MIN_ELEMENTS } from '../../src/dist/reduce-kernels.js';
import { SimdReducer, simdReducePrefix } from '../../src/dist/simd-reduce.js';
import type { CommArray, ReduceOp } from '../../src/dist/types.js';

const OPS: ReduceOp[] = ['sum', 'avg', 'prod', 'min', 'max'];
const CTORS = [Float32Array, Float64Array, Int32Array] as const;

/** Deterministic pseudo-random values, with special values sprinkled in for the float types. */
function fill(array: CommArray, seed: number): void {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const special = [NaN, -0, 0, Infinity, -Infinity, 1e-40];
  for (let i = 0; i < array.length; i++) {
    if (array instanceof Int32Array) array[i] = Math.floor((next() - 0.5) * 2 ** 32);
    else array[i] = next() < 0.02 ? special[Math.floor(next() * special.length)]! : (next() - 0.5) * 1e3;
  }
}

function sameBits(actual: CommArray, expected: CommArray, what: string): void {
  const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      const el = Math.floor(i / actual.BYTES_PER_ELEMENT);
      assert.fail(`${what}: element ${el} differs: ${actual[el]} vs ${expected[el]}`);
    }
  }
}

describe('reduceInto (WebAssembly SIMD for long arrays)', () => {
  it('takes the SIMD path for long arrays (so the comparisons below test it)', () => {
    const dst = new Float32Array(1000);
    assert.equal(simdReducePrefix(dst, new Float32Array(1000), 'sum'), 992); // 3968 bytes = 62 × 64
  });

  for (const Ctor of CTORS) {
    for (const op of OPS) {
      it(`${Ctor.name} ${op}: bit-identical to the JS loop`, () => {
        // A tail after the 64-byte prefix, several 64 KiB blocks, and an offset view.
        for (const length of [SIMD_REDUCE_MIN_ELEMENTS + 3, 40_007, 70_001]) {
          const dst = new Ctor(length + 5).subarray(5);
          const src = new Ctor(length);
          fill(dst, length);
          fill(src, length * 7 + 1);
          if (!(dst instanceof Int32Array)) {
            // The order-sensitive cases of min/max: NaN on either side, and -0 against +0.
            dst[0] = NaN; src[1] = NaN; dst[2] = -0; src[2] = 0; dst[3] = 0; src[3] = -0;
          }
          const expected = dst.slice();
          reduceIntoLoop(expected, src, op);
          reduceInto(dst, src, op);
          sameBits(dst, expected, `${Ctor.name} ${op} length ${length}`);
        }
      });
    }
  }

  it('reduces from a reducer\'s staging area in place (the TCP reads land there), at any 4-byte offset', () => {
    const reducer = SimdReducer.create(64 * 1024 + 8)!;
    assert.ok(reducer !== null);
    for (const offset of [0, 4, 8, 12]) {
      const length = 16_001;
      const src = new Float32Array(reducer.staging.buffer, reducer.staging.byteOffset + offset, length);
      fill(src, 3 + offset);
      const dst = new Float32Array(length);
      fill(dst, 5 + offset);
      const expected = dst.slice();
      reduceIntoLoop(expected, src.slice(), 'sum');
      reduceInto(dst, src, 'sum');
      sameBits(dst, expected, `staging offset ${offset}`);
    }
  });

  for (const Ctor of CTORS) {
    for (const op of OPS) {
      it(`reduceIntoBoth ${Ctor.name} ${op}: both arrays hold the JS loop's result, bit for bit`, () => {
        for (const length of [SIMD_REDUCE_MIN_ELEMENTS + 1, 70_001]) {
          const dst = new Ctor(length);
          const src = new Ctor(length + 3).subarray(3);
          fill(dst, length + 11);
          fill(src, length + 13);
          const expectedDst = dst.slice();
          const expectedSrc = src.slice();
          reduceIntoBothLoop(expectedDst, expectedSrc, op);
          reduceIntoBoth(dst, src, op);
          sameBits(dst, expectedDst, `${Ctor.name} ${op} length ${length} (dst)`);
          sameBits(src, expectedSrc, `${Ctor.name} ${op} length ${length} (src)`);
        }
      });
    }
  }

  it('wraps int32 sums and products like the JS loop', () => {
    const dst = new Int32Array(SIMD_REDUCE_MIN_ELEMENTS).fill(2 ** 31 - 1);
    const src = new Int32Array(SIMD_REDUCE_MIN_ELEMENTS).fill(2);
    reduceInto(dst, src, 'sum');
    assert.equal(dst[0], -(2 ** 31) + 1);
    reduceInto(dst, src, 'prod');
    assert.equal(dst[7], 2);
  });

  it('rejects arrays of different lengths', () => {
    assert.throws(() => reduceInto(new Float32Array(600), new Float32Array(599), 'sum'), /lengths differ \(600 vs 599\)/);
  });
});
