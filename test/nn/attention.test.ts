import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import * as nn from '../../src/nn/index.js';
import { checkAgainstReference, reference } from './reference.js';

const o64 = { dtype: 'float64' } as const;

test('MultiheadAttention with a causal mask and a key padding mask matches PyTorch (float64)', () => {
  const mha = new nn.MultiheadAttention(8, 2, o64);
  const L = 5;
  const causal = t.triu(t.full([L, L], true), 1);
  const kpm = t.tensor(reference.mha_self_causal_padding!.keyPaddingMask!);
  checkAgainstReference('mha_self_causal_padding', mha, (x) => mha.call(x, x, x, { attnMask: causal, keyPaddingMask: kpm }));
});

test('MultiheadAttention cross-attention (query length != key length) matches PyTorch', () => {
  const mha = new nn.MultiheadAttention(8, 2, o64);
  checkAgainstReference('mha_cross', mha, (q, kv) => mha.call(q, kv, kv));
});

test('isCausal equals an explicit upper-triangular mask, and a KV cache reproduces the full pass position by position', () => {
  t.manualSeed(0);
  const mha = new nn.MultiheadAttention(8, 2, o64);
  const x = t.randn([2, 4, 8], o64);
  const viaFlag = mha.call(x, x, x, { isCausal: true });
  const viaMask = mha.call(x, x, x, { attnMask: t.triu(t.full([4, 4], true), 1) });
  assert.deepEqual(viaFlag.toArray(), viaMask.toArray());
  const cache = new nn.KVCache();
  const steps = [0, 1, 2, 3].map((i) => { const xi = x.narrow(1, i, 1); return mha.call(xi, xi, xi, { isCausal: true, cache }); });
  assert.equal(cache.length, 4);
  const full = viaFlag.data();
  const incremental = t.cat(steps, 1).data();
  full.forEach((v, i) => assert.ok(Math.abs(v - incremental[i]!) < 1e-12));
});

test('GPT: causal (future tokens do not change past logits), tied head, KV-cached generation equals recomputation', () => {
  t.manualSeed(1);
  const gpt = new nn.GPT({ vocabSize: 11, blockSize: 8, embedDim: 8, numHeads: 2, numLayers: 2 }, o64);
  gpt.eval();
  assert.equal(gpt.head.weight, gpt.wte.weight);
  const names = [...gpt.namedParameters()].map(([n]) => n);
  assert.ok(!names.includes('head.weight') && names.includes('wte.weight') && names.includes('blocks.1.attn.in_proj_weight'));
  assert.ok(gpt.stateDict().has('head.weight'));
  const a = gpt.call(t.tensor([[1, 2, 3, 4]], { dtype: 'int32' }));
  const b = gpt.call(t.tensor([[1, 2, 3, 9]], { dtype: 'int32' }));
  assert.deepEqual(a.narrow(1, 0, 3).toArray(), b.narrow(1, 0, 3).toArray());
  assert.notDeepEqual(a.narrow(1, 3, 1).toArray(), b.narrow(1, 3, 1).toArray());
  // Greedy decoding with the cache (and past blockSize, with the sliding window) equals argmax of full passes.
  const prompt = t.tensor([[3, 1], [4, 1]], { dtype: 'int32' });
  const out = gpt.generate(prompt, { maxNewTokens: 9, temperature: 0 });
  assert.deepEqual(out.shape, [2, 11]);
  const rows = out.toArray() as number[][];
  for (const row of rows) {
    for (let n = 2; n < row.length; n++) {
      const ctx = row.slice(Math.max(0, n - 8), n);
      const logits = gpt.call(t.tensor([ctx], { dtype: 'int32' })).narrow(1, ctx.length - 1, 1).data();
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
      assert.equal(row[n], best, `position ${n}`);
    }
  }
  assert.throws(() => gpt.call(t.zeros([1, 9], { dtype: 'int32' })), /exceeds blockSize 8/);
});

test('sampleToken: temperature 0 is greedy, top-k restricts the support, sampling is seeded', () => {
  const logits = [0.1, 2, 1.9, -1];
  assert.equal(nn.sampleToken(logits, { temperature: 0 }), 1);
  const g = new t.Generator(5);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 400; i++) counts[nn.sampleToken(logits, { topK: 2, generator: g })]!++;
  assert.equal(counts[0]! + counts[3]!, 0);
  assert.ok(counts[1]! > 120 && counts[2]! > 120);
  assert.equal(nn.sampleToken(logits, { generator: new t.Generator(9) }), nn.sampleToken(logits, { generator: new t.Generator(9) }));
});

test('TransformerBlock is pre-norm: with zeroed projections it is the identity', () => {
  const block = new nn.TransformerBlock(4, 2, o64);
  nn.init.zeros_(block.attn.out_proj.weight);
  nn.init.zeros_(block.proj.weight);
  nn.init.zeros_(block.proj.bias!);
  const x = t.randn([1, 3, 4], o64);
  assert.deepEqual(block.call(x).toArray(), x.toArray());
});

test('summary of a GPT: token ids in, the tied head counted once, the column adds up to the total', () => {
  const gpt = new nn.GPT({ vocabSize: 65, blockSize: 16, embedDim: 16, numHeads: 2, numLayers: 1 });
  const rows = gpt.summaryRows([2, 8], { dtype: 'int32' });
  const head = rows.find((r) => r.name === 'head')!;
  assert.deepEqual([head.type, head.outputShape, head.parameters], ['Linear', [2, 8, 65], 0]);
  assert.equal(rows.reduce((a, r) => a + r.parameters, 0), gpt.parameterCount());
  assert.match(gpt.summary([2, 8], { dtype: 'int32' }), /blocks\.0\.attn\s+MultiheadAttention\s+\[2, 8, 16\]\s+816/);
  const lstm = new nn.LSTM(3, 4, { batchFirst: true });
  assert.equal(lstm.summaryRows([2, 5, 3])[0]!.outputShape, '[2, 5, 4], ([1, 2, 4], [1, 2, 4])');
});
