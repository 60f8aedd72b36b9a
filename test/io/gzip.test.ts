import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';

import { gunzip, isGzip, maybeGunzip } from '../../src/io/gzip.js';

test('gunzip (DecompressionStream) inflates what node:zlib compressed', async () => {
  const data = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31) % 256);
  const gz = new Uint8Array(gzipSync(data));
  assert.ok(isGzip(gz));
  assert.ok(!isGzip(data));
  assert.deepEqual(await gunzip(gz), data);
  assert.deepEqual(await maybeGunzip(gz), data);
  assert.equal(await maybeGunzip(data), data);
});

test('truncated gzip is an error that says so', async () => {
  const gz = new Uint8Array(gzipSync(new Uint8Array(1000).fill(7)));
  await assert.rejects(gunzip(gz.subarray(0, gz.length - 5)), /not a complete gzip stream .*truncated or corrupt/);
});
