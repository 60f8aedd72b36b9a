// ONNX text operators on integer token ids: TfIdfVectorizer.
//
// tessera has no string tensors, so only integer token ids (pool_int64s) are supported; a model
// with a string pool (pool_strings) fails with a message saying so. The counting runs on the host:
// it is a lookup of token n-grams in a fixed pool, with nothing to differentiate.

import { isFloating } from '../../core/dtype.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';

/** The pool of n-grams: each n-gram (its ids joined by ',') → the output slot it counts into. */
function ngramPool(ctx: NodeContext, minGram: number, maxGram: number): Map<string, number> {
  const pool = ctx.intList('pool_int64s') ?? ctx.fail('needs the pool_int64s attribute (the n-grams to count)');
  const counts = ctx.intList('ngram_counts') ?? ctx.fail('needs the ngram_counts attribute (where each n-gram length starts in the pool)');
  const indexes = ctx.intList('ngram_indexes') ?? ctx.fail('needs the ngram_indexes attribute (the output slot of each n-gram)');
  const slots = new Map<string, number>();
  let id = 0;
  // counts[n - 1] is where the n-grams start in the pool; they run to the next start (or the end).
  counts.forEach((start, level) => {
    const n = level + 1;
    const end = level + 1 < counts.length ? counts[level + 1]! : pool.length;
    if (start < 0 || end < start || end > pool.length || (end - start) % n !== 0) {
      ctx.fail(`ngram_counts ${JSON.stringify(counts)} do not cut pool_int64s (${pool.length} ids) into whole ${n}-grams`);
    }
    for (let i = start; i < end; i += n, id++) {
      if (n < minGram || n > maxGram) continue;
      const slot = indexes[id];
      if (slot === undefined || slot < 0) ctx.fail(`ngram_indexes must give a non-negative output slot for each of the pool's n-grams; n-gram ${id} has ${slot ?? 'none'}`);
      slots.set(pool.slice(i, i + n).join(','), slot);
    }
  });
  return slots;
}

// TfIdfVectorizer (opset 9): for each row of X ([C] or [N, C] integer token ids), counts the
// occurrences of the pool's n-grams of length min_gram_length..max_gram_length, an n-gram being
// n ids taken every (skip + 1) positions for each skip 0..max_skip_count (1-grams are counted
// once, whatever the skip). Output [max(ngram_indexes) + 1] or [N, that], FLOAT: the counts
// (mode TF), weights[slot] where the count is non-zero (IDF), or count·weights[slot] (TFIDF);
// weights default to 1. Weights are indexed by output slot, as ONNX Runtime does.
registerOnnxOp('TfIdfVectorizer', (ctx) => {
  if (ctx.hasAttr('pool_strings')) ctx.fail('pool_strings is not supported: tessera has no string tensors; only integer token ids (pool_int64s) are');
  const x = ctx.tensor(0);
  if (isFloating(x.dtype) || x.dtype === 'bool') ctx.fail(`X must hold integer token ids, got ${x.dtype}`);
  if (x.rank > 2) ctx.fail(`X must have shape [C] or [N, C], got [${x.shape.join(', ')}]`);
  const mode = ctx.string('mode') ?? ctx.fail(`the required attribute 'mode' is missing ('TF', 'IDF' or 'TFIDF')`);
  if (mode !== 'TF' && mode !== 'IDF' && mode !== 'TFIDF') ctx.fail(`mode must be 'TF', 'IDF' or 'TFIDF', got '${mode}'`);
  const minGram = ctx.int('min_gram_length') ?? ctx.fail(`the required attribute 'min_gram_length' is missing`);
  const maxGram = ctx.int('max_gram_length') ?? ctx.fail(`the required attribute 'max_gram_length' is missing`);
  const maxSkip = ctx.int('max_skip_count') ?? ctx.fail(`the required attribute 'max_skip_count' is missing`);
  if (minGram < 1 || maxGram < minGram || maxSkip < 0) {
    ctx.fail(`needs 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0, got ${minGram}, ${maxGram} and ${maxSkip}`);
  }
  const slots = ngramPool(ctx, minGram, maxGram);
  const size = Math.max(-1, ...(ctx.intList('ngram_indexes') ?? [])) + 1;
  const weights = ctx.floatList('weights');
  if (weights !== undefined && weights.length < size) ctx.fail(`weights has ${weights.length} values, fewer than the ${size} output slots`);

  const ids = Array.from(x.data(), Number);
  const rows = x.rank === 2 ? x.shape[0]! : 1;
  const length = x.rank === 0 ? 1 : x.shape[x.rank - 1]!;
  const out = new Float32Array(rows * size);
  for (let row = 0; row < rows; row++) {
    const counts = out.subarray(row * size, (row + 1) * size);
    const tokens = ids.slice(row * length, (row + 1) * length);
    const count = (key: string): void => {
      const slot = slots.get(key);
      if (slot !== undefined) counts[slot]! += 1;
    };
    for (let n = minGram; n <= maxGram; n++) {
      // A 1-gram is the same for every skip: count it once.
      const skips = n === 1 ? 0 : maxSkip;
      for (let skip = 0; skip <= skips; skip++) {
        const stride = skip + 1;
        for (let start = 0; start + (n - 1) * stride < length; start++) {
          count(Array.from({ length: n }, (_, k) => tokens[start + k * stride]).join(','));
        }
      }
    }
    for (let slot = 0; slot < size; slot++) {
      const weight = weights?.[slot] ?? 1;
      if (mode === 'IDF') counts[slot] = counts[slot]! > 0 ? weight : 0;
      else if (mode === 'TFIDF') counts[slot] = counts[slot]! * weight;
    }
  }
  const shape = x.rank === 2 ? [rows, size] : [size];
  return [ctx.output(ops.tensor(out, { shape, backend: x.backend }), ElemType.FLOAT)];
});
