import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advise, modelPreset, parseCluster, withConventions } from '../../src/plan/index.js';

test('a small model that fits and trains quickly stays on one device', () => {
  const a = advise(modelPreset('gpt3-125m'), withConventions(), parseCluster('1x8xA100'));
  assert.equal(a.steps[0]!.answer, 'yes');
  assert.equal(a.recommendation!.dp, 1);
});

test('a model that fits but is too slow goes data parallel', () => {
  const a = advise(modelPreset('gpt3-1.3b'), withConventions(), parseCluster('4x8xA100'), { maxDays: 2 });
  assert.equal(a.recommendation!.dp, 32);
  assert.match(a.steps[1]!.answer, /data parallelism/);
});

test('Llama 2 7B on 8 H100s: does not fit one device; a memory technique (ZeRO) makes it fit', () => {
  const a = advise(modelPreset('llama2-7b'), withConventions(), parseCluster('1x8xH100'));
  assert.equal(a.steps[0]!.answer, 'no');
  assert.ok(a.recommendation!.zero > 0 || a.recommendation!.recompute !== 'none');
  assert.equal(a.recommendation!.tp, 1);
});

test('GPT-3 175B needs tensor and pipeline parallelism, and each step explains itself with numbers', () => {
  const a = advise(modelPreset('gpt3-175b'), withConventions(), parseCluster('128x8xA100'), { tokens: 300e9 });
  const last = a.steps[a.steps.length - 1]!;
  assert.match(last.question, /tensor and pipeline/);
  assert.equal(a.recommendation!.tp, 8);
  assert.ok(a.recommendation!.pp > 1);
  for (const s of a.steps) assert.ok(Object.keys(s.numbers).length > 0);
  assert.ok(a.days! > 5 && a.days! < 60, `${a.days}`);
});
