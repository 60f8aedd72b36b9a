import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countParams, megatronParamCount, modelPreset, transformer } from '../../src/plan/index.js';

test('GPT-3 175B: 174.6B parameters from its config (Brown et al. 2020 Table 2.1; Megatron §5.1 quotes 174.6B)', () => {
  const p = countParams(modelPreset('gpt3-175b'));
  assert.ok(Math.abs(p.total / 1e9 - 174.6) < 0.05, `got ${p.total}`);
});

test('GPT-3 family: every size in Table 2.1 within 3% of its nominal count', () => {
  const nominal: Record<string, number> = { 'gpt3-125m': 0.125, 'gpt3-350m': 0.35, 'gpt3-760m': 0.76, 'gpt3-1.3b': 1.3, 'gpt3-2.7b': 2.7, 'gpt3-6.7b': 6.7, 'gpt3-13b': 13, 'gpt3-175b': 175 };
  for (const [name, b] of Object.entries(nominal)) {
    const got = countParams(modelPreset(name)).total / 1e9;
    assert.ok(Math.abs(got / b - 1) < 0.03, `${name}: ${got} vs ${b}`);
  }
});

test('Megatron-LM Table 1 parameter counts (Narayanan et al. 2021, arXiv:2104.04473), to the printed 0.1B', () => {
  const table: [string, number][] = [['megatron-1.7b', 1.7], ['megatron-3.6b', 3.6], ['megatron-7.5b', 7.5], ['megatron-18.4b', 18.4], ['megatron-39.1b', 39.1],
    ['megatron-76.1b', 76.1], ['megatron-145.6b', 145.6], ['megatron-310.1b', 310.1], ['megatron-529.6b', 529.6], ['megatron-1008b', 1008.0]];
  for (const [name, billions] of table) {
    const m = modelPreset(name);
    const ours = countParams(m).total / 1e9;
    assert.ok(Math.abs(ours - billions) <= 0.051, `${name}: ${ours} vs ${billions}`);
    // eq. 2 is our count minus the final LayerNorm (2h) that eq. 2 leaves out
    assert.ok(Math.abs(megatronParamCount(m.layers, m.hidden, m.vocab, m.seqLen) - (countParams(m).total - 2 * m.hidden)) < 1);
  }
});

test('Llama 2 and Llama 3 checkpoint parameter counts (model cards / config.json: exact)', () => {
  const exact: [string, number][] = [
    ['llama2-7b', 6_738_415_616], ['llama2-13b', 13_015_864_320], ['llama2-70b', 68_976_648_192],
    ['llama3-8b', 8_030_261_248], ['llama3-70b', 70_553_706_496], ['llama3-405b', 405_853_388_800],
  ];
  for (const [name, n] of exact) assert.equal(countParams(modelPreset(name)).total, n, name);
});

test('PaLM Table 1: 8.63B, 62.50B, 540.35B (MQA, head width 256 ≠ d_model/heads, parallel block)', () => {
  for (const [name, b] of [['palm-8b', 8.63], ['palm-62b', 62.50], ['palm-540b', 540.35]] as const) {
    assert.ok(Math.abs(countParams(modelPreset(name)).total / 1e9 - b) < 0.01, name);
  }
});

test('Mixtral 8x7B: 46.7B total, 12.9B active (Jiang et al. 2024)', () => {
  const p = countParams(modelPreset('mixtral-8x7b'));
  assert.ok(Math.abs(p.total / 1e9 - 46.7) < 0.05);
  assert.ok(Math.abs(p.active / 1e9 - 12.9) < 0.05);
  assert.ok(p.active < p.total);
});

test('GQA shrinks K/V projections; tied embeddings drop the LM head', () => {
  const base = { name: 'x', layers: 2, hidden: 64, heads: 8, vocab: 100, seqLen: 16 };
  const mha = countParams(transformer(base)), gqa = countParams(transformer({ ...base, kvHeads: 2 }));
  assert.equal(mha.attentionPerLayer - gqa.attentionPerLayer, 2 * 64 * (64 - 16) + 2 * (64 - 16));
  assert.equal(countParams(transformer({ ...base, tiedEmbeddings: false })).total - mha.total, 100 * 64);
  assert.throws(() => transformer({ ...base, kvHeads: 3 }), /multiple of kvHeads/);
});
