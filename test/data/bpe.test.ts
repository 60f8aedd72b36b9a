import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BpeTokenizer, bytesToUnicode, parseMerges } from '../../src/data/bpe.js';
import { loadGpt2Tokenizer, loadTinyShakespeare } from '../../src/data/datasets.js';

const reference = JSON.parse(readFileSync(new URL('../fixtures/gpt2/reference-ids.json', import.meta.url), 'utf8')) as {
  cases: Array<{ text: string; ids: number[] }>;
};

const gpt2 = loadGpt2Tokenizer();

test('the GPT-2 files load: 50,257 tokens, <|endoftext|> = 50256', async () => {
  const tok = await gpt2;
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.endOfText, 50256);
  assert.equal(tok.tokenOf(995), 'Ġworld');
});

test('"Hello world" encodes to [15496, 995]', async () => {
  assert.deepEqual((await gpt2).encode('Hello world'), [15496, 995]);
});

test('matches the ids of an independent tokenizer (js-tiktoken, fixture) and decodes back', async () => {
  const tok = await gpt2;
  assert.ok(reference.cases.length >= 10);
  for (const { text, ids } of reference.cases) {
    assert.deepEqual(tok.encode(text), ids, JSON.stringify(text));
    assert.equal(tok.decode(ids), text);
  }
});

test('tiny Shakespeare split 90/10 gives the token counts nanoGPT publishes (301,966 / 36,059)', async () => {
  const [tok, text] = await Promise.all([gpt2, loadTinyShakespeare()]);
  const cut = Math.floor(text.length * 0.9);
  const val = text.slice(cut);
  assert.equal(tok.encode(text.slice(0, cut)).length, 301966);
  const valIds = tok.encode(val);
  assert.equal(valIds.length, 36059);
  assert.equal(tok.decode(valIds), val);
});

test('round-trips arbitrary text, including lone surrogates-free unicode and control bytes', async () => {
  const tok = await gpt2;
  const samples = ['', ' ', '\u0000\u0001\u007f', 'x'.repeat(300), 'A\u00a0B\u2028C', '1234567890 0.5e-3', 'ÆØÅ 😀😀😀 𝕏'];
  for (const s of samples) assert.equal(tok.decode(tok.encode(s)), s);
});

test('byte-to-unicode table: printable Latin-1 maps to itself, the rest to 256+ in byte order', () => {
  const table = bytesToUnicode();
  assert.equal(new Set(table).size, 256);
  assert.equal(table[0x41], 'A');
  assert.equal(table[0xa1], '¡');
  assert.equal(table[0], String.fromCodePoint(256)); // Ā
  assert.equal(table[0x0a], 'Ċ'); // U+010A: newline is the 11th non-printable byte
  assert.equal(table[0x20], 'Ġ'); // U+0120: space is the 33rd
  assert.equal(table[0xad], String.fromCodePoint(256 + 67)); // soft hyphen, the last one
});

/** A tiny byte-level vocabulary: the 256 byte tokens plus the given merges' results. */
function tinyTokenizer(merges: Array<[string, string]>): BpeTokenizer {
  const encoder: Record<string, number> = {};
  bytesToUnicode().forEach((ch, i) => (encoder[ch] = i));
  merges.forEach(([a, b], i) => (encoder[a + b] = 256 + i));
  return new BpeTokenizer(encoder, merges);
}

test('merges apply by rank, not by position', () => {
  // "abc": with a+b ranked first we get [ab, c]; with b+c first, [a, bc].
  const abFirst = tinyTokenizer([['a', 'b'], ['b', 'c']]);
  assert.deepEqual(abFirst.encode('abc'), [256, 'c'.charCodeAt(0)]);
  const bcFirst = tinyTokenizer([['b', 'c'], ['a', 'b']]);
  assert.deepEqual(bcFirst.encode('abc'), ['a'.charCodeAt(0), 256]);
  // Merges chain: a+b, then ab+c.
  const chain = tinyTokenizer([['a', 'b'], ['ab', 'c']]);
  assert.deepEqual(chain.encode('abcab'), [257, 256]);
  // A leading space is the byte-level 'Ġ' and merges with the word when a rule says so.
  const space = tinyTokenizer([['Ġ', 'a']]);
  assert.deepEqual(space.encode('a a'), ['a'.charCodeAt(0), 256]);
});

test('pre-tokenization splits contractions, letters, digits and whitespace like GPT-2', async () => {
  const tok = await gpt2;
  const pieces = (s: string) => tok.encode(s).map((id) => tok.tokenOf(id));
  assert.deepEqual(pieces("it's"), ['it', "'s"]);
  assert.deepEqual(pieces('a  b'), ['a', 'Ġ', 'Ġb']);
});

test('bad inputs are clear errors', () => {
  assert.throws(() => parseMerges('#version: 0.2\na b\nc\n'), /line 3 of vocab.bpe is "c"/);
  assert.throws(() => BpeTokenizer.fromFiles('{', ''), /encoder.json is not valid JSON/);
  assert.throws(() => new BpeTokenizer({ a: 0 }, []), /lacks the single-byte token/);
  const tok = tinyTokenizer([]);
  assert.throws(() => tok.decode([999]), /id 999 at position 0 is not in the vocabulary of 256 tokens/);
});
