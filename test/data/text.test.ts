import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CharVocab } from '../../src/data/text.js';

test('the vocabulary is the sorted distinct characters; encode/decode round-trip', () => {
  const text = 'hello, world\n';
  const v = CharVocab.fromText(text);
  assert.deepEqual(v.chars, ['\n', ' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
  assert.equal(v.size, 10);
  const ids = v.encode(text);
  assert.deepEqual([...ids], [5, 4, 6, 6, 7, 2, 1, 9, 7, 8, 6, 3, 0]);
  assert.equal(v.decode(ids), text);
});

test('characters outside the BMP are single characters', () => {
  const text = 'a🙂b🙂';
  const v = CharVocab.fromText(text);
  assert.deepEqual(v.chars, ['a', 'b', '🙂']);
  assert.deepEqual([...v.encode(text)], [0, 2, 1, 2]);
  assert.equal(v.decode(v.encode(text)), text);
});

test('unknown characters and ids are errors that say which', () => {
  const v = CharVocab.fromText('abc');
  assert.throws(() => v.encode('abz'), /character "z" \(U\+007A\) at position 2 is not in the 3-character vocabulary/);
  assert.throws(() => v.decode([0, 3]), /id 3 at position 1 is outside \[0, 3\)/);
  assert.throws(() => new CharVocab(['a', 'a']), /listed twice/);
  assert.throws(() => new CharVocab(['ab']), /not a single character/);
});

test('toJSON/fromJSON restores the same ids', () => {
  const v = CharVocab.fromText('The quick brown fox 🦊');
  const back = CharVocab.fromJSON(JSON.parse(JSON.stringify(v)) as { chars: string });
  assert.deepEqual(back.chars, v.chars);
  assert.deepEqual([...back.encode('fox 🦊')], [...v.encode('fox 🦊')]);
});
