import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';

import { decodeIdx, encodeIdx, parseIdx, IdxError, type IdxArray } from '../../src/data/idx.js';

test('parses a hand-built u8 file: magic 00 00 08 rank, big-endian dims', () => {
  const bytes = Uint8Array.from([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 251, 252]);
  const a = parseIdx(bytes);
  assert.equal(a.dtype, 'u8');
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual([...a.data], [1, 2, 3, 250, 251, 252]);
});

test('multi-byte elements are big-endian', () => {
  // i16 0x0102 = 258 and 0xfffe = -2; i32 0x00010000 = 65536
  const i16 = parseIdx(Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe]));
  assert.deepEqual([...i16.data], [258, -2]);
  const i32 = parseIdx(Uint8Array.from([0, 0, 0x0c, 1, 0, 0, 0, 1, 0, 1, 0, 0]));
  assert.deepEqual([...i32.data], [65536]);
  // f32 1.0 = 3f 80 00 00
  const f32 = parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0x80, 0, 0]));
  assert.deepEqual([...f32.data], [1]);
});

test('every element type round-trips through encodeIdx', () => {
  const arrays: IdxArray[] = [
    { dtype: 'u8', shape: [2, 2], data: Uint8Array.from([0, 1, 128, 255]) },
    { dtype: 'i8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
    { dtype: 'i16', shape: [2], data: Int16Array.from([-32768, 32767]) },
    { dtype: 'i32', shape: [1, 2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) },
    { dtype: 'f32', shape: [2], data: Float32Array.from([0.5, -1e-20]) },
    { dtype: 'f64', shape: [1, 1, 2], data: Float64Array.from([Math.PI, -Math.E]) },
    { dtype: 'u8', shape: [], data: Uint8Array.from([7]) },
  ];
  for (const a of arrays) {
    const back = parseIdx(encodeIdx(a));
    assert.equal(back.dtype, a.dtype);
    assert.deepEqual(back.shape, a.shape);
    assert.deepEqual([...back.data], [...a.data]);
  }
});

test('decodeIdx detects and inflates gzip; uncompressed input passes through', async () => {
  const a: IdxArray = { dtype: 'u8', shape: [4, 5], data: Uint8Array.from({ length: 20 }, (_, i) => i * 7) };
  const raw = encodeIdx(a);
  for (const bytes of [raw, new Uint8Array(gzipSync(raw))]) {
    const back = await decodeIdx(bytes);
    assert.deepEqual(back.shape, [4, 5]);
    assert.deepEqual([...back.data], [...a.data]);
  }
});

test('rejects bad magic, truncation, extra bytes and unexpected gzip with a clear error', async () => {
  const good = encodeIdx({ dtype: 'u8', shape: [2, 2], data: new Uint8Array(4) });
  const expectError = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof IdxError && pattern.test(e.message));
  expectError(() => parseIdx(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0]), 'x.zip'), /idx \(x\.zip\): bad magic number 50 4b 03 04/);
  expectError(() => parseIdx(Uint8Array.from([0, 0, 0x0a, 1, 0, 0, 0, 0])), /bad magic number 00 00 0a 01/);
  expectError(() => parseIdx(Uint8Array.from([0, 0])), /too short for the 4-byte magic number/);
  expectError(() => parseIdx(Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1])), /declares 3 dimensions \(16 header bytes\) but the file has only 8 bytes/);
  expectError(() => parseIdx(good.subarray(0, good.length - 1)), /shape \[2,2\] of u8 needs 4 data bytes \(file size 16\), but the file is 15 bytes; it is truncated/);
  const longer = new Uint8Array(good.length + 2);
  longer.set(good);
  expectError(() => parseIdx(longer), /followed by extra bytes/);
  expectError(() => parseIdx(new Uint8Array(gzipSync(good))), /gzip-compressed; use decodeIdx/);
  const gz = new Uint8Array(gzipSync(good));
  await assert.rejects(decodeIdx(gz.subarray(0, gz.length - 6), 'cut.gz'), /idx \(cut\.gz\): gunzip: .*truncated or corrupt/);
});
