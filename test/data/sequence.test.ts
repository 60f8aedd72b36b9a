import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SequenceDataset, splitTokens } from '../../src/data/sequence.js';
import { DataLoader } from '../../src/data/loader.js';
import { CharVocab } from '../../src/data/text.js';

const tokens = Int32Array.from({ length: 11 }, (_, i) => i); // 0..10

test('windows of blockSize with targets shifted by one', () => {
  const ds = new SequenceDataset(tokens, 4);
  // Starts 0 and 4 fit (4+4 < 11); start 8 would need tokens up to 12.
  assert.equal(ds.length, 2);
  const [x, y] = ds.get(1);
  assert.deepEqual(x!.toArray(), [4, 5, 6, 7]);
  assert.deepEqual(y!.toArray(), [5, 6, 7, 8]);
  const [bx, by] = ds.getBatch(Int32Array.from([1, 0]));
  assert.deepEqual(bx!.shape, [2, 4]);
  assert.equal(bx!.dtype, 'int32');
  assert.deepEqual(bx!.toArray(), [[4, 5, 6, 7], [0, 1, 2, 3]]);
  assert.deepEqual(by!.toArray(), [[5, 6, 7, 8], [1, 2, 3, 4]]);
});

test('stride 1 gives every window; the last one ends at the last token', () => {
  const ds = new SequenceDataset(tokens, 4, { stride: 1 });
  assert.equal(ds.length, 7);
  const [x, y] = ds.get(6);
  assert.deepEqual(x!.toArray(), [6, 7, 8, 9]);
  assert.deepEqual(y!.toArray(), [7, 8, 9, 10]);
  assert.throws(() => ds.get(7), /index 7 is outside \[0, 7\)/);
  assert.throws(() => new SequenceDataset(tokens, 11), /11 tokens cannot fill one window of 11 inputs/);
});

test('character LM pipeline: text → vocab ids → windows → shuffled batches', async () => {
  const text = 'to be or not to be, that is the question';
  const vocab = CharVocab.fromText(text);
  const { train, validation } = splitTokens(vocab.encode(text), 0.25);
  assert.equal(train.length + validation.length, text.length);
  assert.equal(vocab.decode(validation), text.slice(train.length));
  const loader = new DataLoader(new SequenceDataset(train, 8, { stride: 2 }), { batchSize: 3, shuffle: true, seed: 1 });
  for await (const [x, y] of loader) {
    const xs = x!.toArray() as number[][];
    const ys = y!.toArray() as number[][];
    xs.forEach((row, i) => {
      // Each window is a substring of the text and its target is the next-character shift.
      const s = vocab.decode(row);
      assert.ok(text.includes(s + vocab.decode([ys[i]!.at(-1)!])));
      assert.deepEqual(ys[i]!.slice(0, -1), row.slice(1));
    });
  }
  assert.throws(() => splitTokens(train, 1), /validationFraction 1 must be in \[0, 1\)/);
});
