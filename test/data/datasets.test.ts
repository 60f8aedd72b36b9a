import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import {
  DEBIAN_FASHION_MNIST_DIR,
  loadFashionMnist,
  loadMnist10k,
  loadTinyShakespeare,
  readCsvTable,
  readIdxFile,
  readTextFile,
  SHIPPED_DATA_DIR,
  type ImageSet,
} from '../../src/data/datasets.js';
import { encodeIdx } from '../../src/data/idx.js';

// Per-class counts of the shipped digits (data/README.md).
const MNIST10K_CLASS_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

function classCounts(set: ImageSet): number[] {
  const counts = new Array<number>(set.classNames.length).fill(0);
  for (const l of set.labels) counts[l]!++;
  return counts;
}

test('the shipped MNIST label file is IDX 0x0801 with the documented class counts, sorted by class', async () => {
  const labels = await readIdxFile(new URL('mnist/mnist10k-labels-idx1-ubyte.gz', SHIPPED_DATA_DIR));
  assert.equal(labels.dtype, 'u8');
  assert.deepEqual(labels.shape, [10000]);
  const counts = new Array<number>(10).fill(0);
  for (const l of labels.data) counts[l]!++;
  assert.deepEqual(counts, MNIST10K_CLASS_COUNTS);
  assert.equal(labels.data[0], 0);
  assert.equal(labels.data[9999], 9);
});

test('loadMnist10k: a seeded 9,000 / 1,000 split of all 10,000 digits', async () => {
  const { train, test: held } = await loadMnist10k();
  assert.equal(train.count, 9000);
  assert.equal(held.count, 1000);
  assert.equal(train.height, 28);
  assert.equal(train.width, 28);
  assert.equal(train.images.length, 9000 * 784);
  assert.equal(held.images.length, 1000 * 784);
  // Together the two parts hold every record once: the class counts add up.
  const sum = classCounts(train).map((n, c) => n + classCounts(held)[c]!);
  assert.deepEqual(sum, MNIST10K_CLASS_COUNTS);
  // Shuffled: every class is in the test part, and the first test labels are not one class.
  assert.ok(classCounts(held).every((n) => n > 50), `test classes ${classCounts(held)}`);
  assert.ok(new Set(held.labels.subarray(0, 20)).size > 3);
  // Images are real digits: bytes 0..255, each with ink.
  for (let i = 0; i < 5; i++) {
    const img = train.images.subarray(i * 784, (i + 1) * 784);
    assert.ok(img.some((p) => p > 200) && img.filter((p) => p === 0).length > 300);
  }
});

test('loadMnist10k is reproducible for a seed and differs across seeds', async () => {
  const [a, b, c] = await Promise.all([loadMnist10k({ seed: 1 }), loadMnist10k({ seed: 1 }), loadMnist10k({ seed: 2, testSize: 500 })]);
  assert.deepEqual(a.test.labels, b.test.labels);
  assert.deepEqual(a.test.images.subarray(0, 784 * 10), b.test.images.subarray(0, 784 * 10));
  assert.equal(c.test.count, 500);
  assert.notDeepEqual(a.test.labels.subarray(0, 500), c.test.labels);
  await assert.rejects(loadMnist10k({ testSize: 10001 }), /testSize 10001 must be an integer in \[0, 10000\]/);
});

test('loadTinyShakespeare returns the 1,115,394-character corpus', async () => {
  const text = await loadTinyShakespeare();
  assert.equal(text.length, 1115394);
  assert.ok(text.startsWith('First Citizen:\nBefore we proceed any further, hear me speak.'));
  assert.equal(new Set(text).size, 65);
});

test('loadFashionMnist reads the four files from a directory, gzipped or not, and checks them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-fashion-'));
  try {
    const images = (n: number) => encodeIdx({ dtype: 'u8', shape: [n, 2, 2], data: Uint8Array.from({ length: n * 4 }, (_, i) => i % 256) });
    const labels = (n: number) => encodeIdx({ dtype: 'u8', shape: [n], data: Uint8Array.from({ length: n }, (_, i) => i % 10) });
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(images(6)));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), labels(6));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), images(3));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(labels(3)));
    const split = await loadFashionMnist(dir);
    assert.equal(split.train.count, 6);
    assert.equal(split.test.count, 3);
    assert.deepEqual([...split.train.labels], [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...split.test.images], [...images(3).subarray(16)]);
    assert.equal(split.train.classNames[9], 'Ankle boot');

    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(labels(4)));
    await assert.rejects(loadFashionMnist(dir), /3 images but 4 labels; the two files do not belong together/);
    rmSync(join(dir, 'train-images-idx3-ubyte.gz'));
    await assert.rejects(loadFashionMnist(dir), /neither train-images-idx3-ubyte.gz nor train-images-idx3-ubyte is in .*apt-get install dataset-fashion-mnist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadFashionMnist reads Debian\'s dataset-fashion-mnist (60,000 / 10,000)', { skip: !existsSync(DEBIAN_FASHION_MNIST_DIR) && `${DEBIAN_FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)` }, async () => {
  const { train, test: held } = await loadFashionMnist();
  assert.equal(train.count, 60000);
  assert.equal(held.count, 10000);
  assert.equal(train.height * train.width, 784);
  assert.deepEqual(classCounts(held), new Array(10).fill(1000));
  assert.deepEqual(classCounts(train), new Array(10).fill(6000));
});

test('readCsvTable and readTextFile read gzipped or plain files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-csv-'));
  try {
    const csv = '2,2,no,yes\n0.5,1.5,1\n2.5,3.5,0\n';
    writeFileSync(join(dir, 't.csv.gz'), gzipSync(csv));
    writeFileSync(join(dir, 't.csv'), csv);
    for (const name of ['t.csv.gz', 't.csv']) {
      const table = await readCsvTable(join(dir, name));
      assert.deepEqual(table.classNames, ['no', 'yes']);
      assert.deepEqual([...table.labels], [1, 0]);
      assert.deepEqual([...table.features], [0.5, 1.5, 2.5, 3.5]);
      assert.equal(await readTextFile(join(dir, name)), csv);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
