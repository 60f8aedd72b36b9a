import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { loadFile, loadMaybeGzippedFile, saveFile } from '../../src/io/file.js';

function withTempDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-io-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('saveFile writes the bytes, replaces an existing file and leaves no temporary file behind', withTempDir(async (dir) => {
  const path = join(dir, 'model.safetensors');
  await saveFile(path, Uint8Array.from([1, 2, 3]));
  assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
  const big = Uint8Array.from({ length: 300_000 }, (_, i) => i % 251);
  await saveFile(path, big);
  assert.deepEqual(new Uint8Array(readFileSync(path)), big);
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  assert.deepEqual(await loadFile(path), big);
}));

test('saveFile into a missing directory fails with advice and leaves nothing', withTempDir(async (dir) => {
  await assert.rejects(saveFile(join(dir, 'missing', 'x.bin'), new Uint8Array(1)), /directory .*missing does not exist; create it first/);
  assert.deepEqual(readdirSync(dir), []);
}));

test('a failed save keeps the previous file intact (write goes to a temp file first)', withTempDir(async (dir) => {
  const path = join(dir, 'ckpt');
  writeFileSync(path, 'old');
  // A target that is a non-empty directory cannot be replaced by rename: the old content must survive.
  const target = join(dir, 'adir');
  mkdirSync(target);
  writeFileSync(join(target, 'inner'), 'y');
  await assert.rejects(saveFile(target, Uint8Array.from([9])), /saveFile: cannot write/);
  assert.equal(readFileSync(join(target, 'inner'), 'utf8'), 'y');
  assert.equal(readFileSync(path, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir).sort(), ['adir', 'ckpt']);
}));

test('loadFile errors say which path and what to do', withTempDir(async (dir) => {
  await assert.rejects(loadFile(join(dir, 'nope.bin')), /loadFile: ".*nope\.bin" does not exist; check the path/);
  await assert.rejects(loadFile(dir), /is a directory; give the path of a file/);
}));

test('loadMaybeGzippedFile inflates gzip files and passes others through', withTempDir(async (dir) => {
  const text = new TextEncoder().encode('hello '.repeat(1000));
  writeFileSync(join(dir, 'a.gz'), gzipSync(text));
  writeFileSync(join(dir, 'a.txt'), text);
  assert.deepEqual(await loadMaybeGzippedFile(join(dir, 'a.gz')), text);
  assert.deepEqual(await loadMaybeGzippedFile(join(dir, 'a.txt')), text);
  const gz = gzipSync(text);
  writeFileSync(join(dir, 'cut.gz'), gz.subarray(0, gz.length - 10));
  await assert.rejects(loadMaybeGzippedFile(join(dir, 'cut.gz')), /starts like a gzip file but does not inflate .*truncated or corrupt/);
}));
