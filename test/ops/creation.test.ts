import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';

test('tensor(nested array, { shape }) reads the values in that shape, like a typed array', () => {
  const x = t.tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3] });
  assert.deepEqual(x.shape, [2, 3]);
  assert.deepEqual(x.toArray(), [[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(t.tensor([[1, 2], [3, 4]], { shape: [4] }).toArray(), [1, 2, 3, 4]);
  assert.throws(() => t.tensor([1, 2, 3], { shape: [2, 2] }), /3 values do not fill shape \[2, 2\]/);
});
