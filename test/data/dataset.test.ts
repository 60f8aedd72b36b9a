import { test } from 'node:test';
import assert from 'node:assert/strict';

import { tensor } from '../../src/ops/creation.js';
import { ArrayDataset, randomSplit, Subset, TensorDataset } from '../../src/data/dataset.js';
import { defaultCollate, stackTensors } from '../../src/data/collate.js';
import { DataLoader } from '../../src/data/loader.js';
import { imageTensorDataset } from '../../src/data/images.js';
import type { ImageSet } from '../../src/data/datasets.js';
import type { Tensor } from '../../src/core/tensor.js';

const xy = () =>
  new TensorDataset([
    tensor([[0, 1], [10, 11], [20, 21], [30, 31], [40, 41]], { dtype: 'float32' }),
    tensor([0, 1, 2, 3, 4], { dtype: 'int32' }),
  ]);

test('TensorDataset: records are rows; getBatch gathers rows in the given order', () => {
  const ds = xy();
  assert.equal(ds.length, 5);
  const [x, y] = ds.get(2);
  assert.deepEqual(x!.shape, [2]);
  assert.deepEqual(x!.toArray(), [20, 21]);
  assert.deepEqual(y!.shape, []);
  assert.equal(y!.item(), 2);
  const [bx, by] = ds.getBatch(Int32Array.from([4, 0, 4]));
  assert.equal(bx!.dtype, 'float32');
  assert.equal(by!.dtype, 'int32');
  assert.deepEqual(bx!.toArray(), [[40, 41], [0, 1], [40, 41]]);
  assert.deepEqual(by!.toArray(), [4, 0, 4]);
  assert.throws(() => ds.get(5), /index 5 is outside \[0, 5\)/);
  assert.throws(() => new TensorDataset([tensor([1, 2]), tensor([1, 2, 3])]), /tensor 1 has shape \[3\] but tensor 0 has 2 rows/);
});

test('a DataLoader over a TensorDataset yields stacked batches that cover every record once', async () => {
  const loader = new DataLoader(xy(), { batchSize: 2, shuffle: true, seed: 3 });
  const labels: number[] = [];
  for await (const batch of loader) {
    const [bx, by] = batch;
    assert.equal(bx!.shape[1], 2);
    const ys = by!.toArray() as number[];
    // Features stay with their label.
    (bx!.toArray() as number[][]).forEach((row, i) => assert.deepEqual(row, [ys[i]! * 10, ys[i]! * 10 + 1]));
    labels.push(...ys);
  }
  assert.deepEqual(labels.sort(), [0, 1, 2, 3, 4]);
});

test('randomSplit: disjoint subsets covering the dataset, by counts or fractions, seeded', () => {
  const ds = new ArrayDataset(Array.from({ length: 10 }, (_, i) => i * 100));
  const [a, b] = randomSplit(ds, [7, 3], 1);
  assert.equal(a!.length, 7);
  assert.equal(b!.length, 3);
  const all = [...Array.from({ length: 7 }, (_, i) => a!.get(i)), ...Array.from({ length: 3 }, (_, i) => b!.get(i))];
  assert.deepEqual([...all].sort((x, y) => x - y), ds.records);
  const [a2] = randomSplit(ds, [7, 3], 1);
  assert.deepEqual([...a2!.indices], [...a!.indices]);
  assert.notDeepEqual([...randomSplit(ds, [7, 3], 2)[0]!.indices], [...a!.indices]);
  const parts = randomSplit(ds, [0.5, 0.25, 0.25]);
  // floor(5, 2.5, 2.5) = 5, 2, 2; the one left over goes to the first subset, as in torch.utils.data.random_split.
  assert.deepEqual(parts.map((p) => p.length), [6, 2, 2]);
  assert.throws(() => randomSplit(ds, [5, 4]), /adding up to the dataset's 10 records/);
});

test('Subset keeps the parent\'s fast getBatch, mapped through its indices', () => {
  const sub = new Subset(xy(), Int32Array.from([3, 1]));
  const [bx] = sub.getBatch!(Int32Array.from([1, 0])) as Tensor[];
  assert.deepEqual(bx!.toArray(), [[10, 11], [30, 31]]);
  assert.deepEqual(sub.get(0)[1]!.item(), 3);
  assert.throws(() => new Subset(xy(), Int32Array.from([9])), /index 9 is outside \[0, 5\)/);
});

test('defaultCollate stacks tensors, numbers, tuples and objects', () => {
  const batch = defaultCollate([
    { x: tensor([1, 2], { dtype: 'float32' }), y: 0, w: 0.5 },
    { x: tensor([3, 4], { dtype: 'float32' }), y: 1, w: 1.5 },
  ]);
  assert.deepEqual(batch.x.toArray(), [[1, 2], [3, 4]]);
  assert.equal(batch.y.dtype, 'int32');
  assert.equal(batch.w.dtype, 'float32');
  assert.deepEqual(batch.w.toArray(), [0.5, 1.5]);
  const tuple = defaultCollate([[tensor([1]), 7], [tensor([2]), 8]] as Array<[Tensor, number]>);
  assert.deepEqual(tuple[0].toArray(), [[1], [2]]);
  assert.deepEqual(tuple[1].toArray(), [7, 8]);
  assert.throws(() => stackTensors([tensor([1, 2], { dtype: 'int32' }), tensor([1, 2, 3], { dtype: 'int32' })]), /record 1 is a int32 tensor of shape \[3\] but record 0 is int32 \[2\]/);
});

test('imageTensorDataset scales bytes and lays images out as NCHW or flat', () => {
  const set: ImageSet = { images: Uint8Array.from([0, 255, 51, 102, 255, 0, 0, 0]), labels: Uint8Array.from([3, 7]), count: 2, height: 2, width: 2, classNames: [] };
  const nchw = imageTensorDataset(set);
  const [x, y] = nchw.getBatch(Int32Array.from([0, 1]));
  assert.deepEqual(x!.shape, [2, 1, 2, 2]);
  assert.deepEqual((x!.toArray() as number[][][][])[0], [[[0, 1], [0.20000000298023224, 0.4000000059604645]]]);
  assert.deepEqual(y!.toArray(), [3, 7]);
  const flat = imageTensorDataset(set, { layout: 'flat', mean: 0.5, std: 0.5 });
  const [fx] = flat.getBatch(Int32Array.from([1]));
  assert.deepEqual(fx!.shape, [1, 4]);
  assert.deepEqual(fx!.toArray(), [[1, -1, -1, -1]]);
});
