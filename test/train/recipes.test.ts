import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShiftedImages } from '../../src/train/recipes/augment.js';
import { TextWindows } from '../../src/train/recipes/text.js';
import { recipes } from '../../src/train/recipes/index.js';
import type { ImageSet } from '../../src/data/datasets.js';

// A 5x5 image with one bright pixel in the middle, and a second with it in the corner.
const images = new Uint8Array(50);
images[12] = 255;
images[25] = 255;
const set: ImageSet = { images, labels: Uint8Array.of(3, 7), count: 2, height: 5, width: 5, classNames: ['a'] };

test('ShiftedImages: shifts of at most maxShift pixels, fixed by (seed, epoch, record), different across epochs', () => {
  let epoch = 0;
  const ds = new ShiftedImages(set, 'nchw', 1, 9, () => epoch);
  const [x, y] = ds.getBatch(Int32Array.of(0, 1));
  assert.deepEqual(x!.shape, [2, 1, 5, 5]);
  assert.deepEqual(Array.from(y!.data()), [3, 7]);
  const bright = Array.from(x!.data()).slice(0, 25).findIndex((v) => v === 1);
  const [r, c] = [Math.floor(bright / 5), bright % 5];
  assert.ok(Math.abs(r - 2) <= 1 && Math.abs(c - 2) <= 1, `moved to ${r},${c}`);
  // The same record in the same epoch gives the same image, whatever batch it is in.
  assert.deepEqual(Array.from(ds.getBatch(Int32Array.of(1, 0))[0]!.data()).slice(25), Array.from(x!.data()).slice(0, 25));
  const perEpoch = new Set<string>();
  for (epoch = 0; epoch < 12; epoch++) perEpoch.add(Array.from(ds.get(0)[0]!.data()).join());
  assert.ok(perEpoch.size > 1, 'shifts vary between epochs');
  const none = new ShiftedImages(set, 'flat', 0, 9, () => 0);
  assert.deepEqual(Array.from(none.get(0)[0]!.data()), Array.from(images.subarray(0, 25), (v) => v / 255));
});

test('TextWindows: next-character targets at seeded offsets, reproducible per (seed, epoch, record)', () => {
  const ids = Int32Array.from({ length: 100 }, (_, i) => i);
  const ds = new TextWindows(ids, 10, 8, 3, () => 0);
  const [x, y] = ds.getBatch(Int32Array.of(4, 5));
  const xs = Array.from(x!.data()), ys = Array.from(y!.data());
  xs.forEach((v, i) => assert.equal(ys[i], v + 1));
  assert.equal(xs[1]! - xs[0]!, 1);
  assert.deepEqual(Array.from(ds.get(4)[0]!.data()), xs.slice(0, 8));
  assert.throws(() => new TextWindows(ids.subarray(0, 5), 1, 8, 0, () => 0), /fewer than a window of 9/);
});

test('every recipe is registered under its own name with sane defaults', () => {
  assert.deepEqual(Object.keys(recipes).sort(), ['char-gpt', 'char-lstm', 'fashion-cnn', 'mnist-cnn', 'mnist-mlp', 'moe-mlp']);
  for (const [name, r] of Object.entries(recipes)) {
    assert.equal(r.name, name);
    assert.ok(r.defaults.epochs >= 1 && r.defaults.batchSize >= 1 && r.defaults.lr > 0);
  }
});
