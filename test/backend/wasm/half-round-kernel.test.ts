// The wasm rounding of float32 words to bfloat16/float16 (half-round-kernel.ts) against the cpu
// reference's roundToFormat, bit for bit: random bit patterns of every kind (normals, subnormals,
// both halves' boundaries, ties, inf, NaN, both signs), every tail length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildHalfRoundModule, ROUND_BF16_EXPORT, ROUND_F16_EXPORT } from '../../../src/backend/wasm/half-round-kernel.js';
import { roundToFormat } from '../../../src/backend/cpu/backend.js';

test('roundBf16 and roundF16 give roundToFormat\'s bits for every kind of float32', () => {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 4 });
  const bytes = buildHalfRoundModule({ module: 'env', name: 'memory', minPages: 1, maxPages: 4, shared: false });
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
  let seed = 99;
  const next = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
  const words = new Uint32Array(4099);
  const interesting = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x477fe000, 0x477ff000, 0x477fefff, 0x47800000,
    0x38800000, 0x387fffff, 0x33800000, 0x33000000, 0x33000001, 0x3f808000, 0x3f818000, 0x3f800fff, 0x3f801000, 0x3f803000, 0x00000001, 0x7f7fffff];
  for (let i = 0; i < words.length; i++) {
    const r = next();
    // A mix: fully random bits, values near 1, near the half subnormal range, and the list above.
    words[i] = i < interesting.length * 2 ? (interesting[i % interesting.length]! ^ (i >= interesting.length ? 0x80000000 : 0)) >>> 0
      : i % 3 === 0 ? r : i % 3 === 1 ? ((r & 0x80ffffff) | 0x3f000000) >>> 0 : ((r & 0x80ffffff) | 0x33000000) >>> 0;
  }
  for (const [name, dtype] of [[ROUND_BF16_EXPORT, 'bfloat16'], [ROUND_F16_EXPORT, 'float16']] as const) {
    for (const n of [words.length, 1, 2, 3, 5, 7]) {
      const heap = new Uint32Array(memory.buffer, 64, n);
      heap.set(words.subarray(0, n));
      (exports[name] as (ptr: number, n: number) => void)(64, n);
      const want = new Float32Array(words.slice(0, n).buffer);
      roundToFormat(dtype, want);
      const wantBits = new Uint32Array(want.buffer);
      for (let i = 0; i < n; i++) {
        // NaN payloads may differ only if the reference changed them; it keeps them, and so must the kernel.
        assert.equal(heap[i], wantBits[i], `${dtype} n=${n} #${i}: 0x${words[i]!.toString(16)} -> 0x${heap[i]!.toString(16)}, reference 0x${wantBits[i]!.toString(16)}`);
      }
    }
  }
});
