import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelPreset, parseCluster, parallelConfig, searchParallelConfigs, validateParallelConfig, withConventions } from '../../src/plan/index.js';

test('GPT-3 175B on 1024 A100s: a Megatron-like configuration (TP 8 within a node, PP across nodes) ranks in the top 3', () => {
  const m = modelPreset('gpt3-175b');
  const c = parseCluster('1024xA100');
  const r = searchParallelConfigs(m, withConventions(), c);
  assert.ok(r.ranked.length >= 3);
  const megatronLike = r.ranked.slice(0, 3).filter((x) => x.config.tp === 8 && x.config.pp > 1 && x.config.dp * x.config.tp * x.config.pp === 1024);
  assert.ok(megatronLike.length >= 1, r.ranked.slice(0, 3).map((x) => JSON.stringify(x.config)).join('\n'));
  // everything returned fits and is sorted by step time
  for (let i = 1; i < r.ranked.length; i++) assert.ok(r.ranked[i]!.step.seconds >= r.ranked[i - 1]!.step.seconds);
  for (const x of r.ranked) assert.ok(x.memory.total <= c.device.memory * 0.9);
  // plain data parallelism cannot hold 175B parameters
  assert.ok((r.rejectedByReason['memory'] ?? 0) > 0);
  assert.ok(r.evaluated > 10000);
});

test('invalid configurations are rejected with the reason', () => {
  const m = modelPreset('gpt3-175b');
  const c = parseCluster('16x8xA100');
  const cases: [Parameters<typeof parallelConfig>[0], RegExp][] = [
    [{ dp: 2, tp: 8, pp: 4, globalBatch: 64 }, /not the 128 devices/],
    [{ dp: 2, tp: 64, pp: 1, globalBatch: 64 }, /96 attention heads are not divisible by TP 64/],
    [{ dp: 16, tp: 8, pp: 1, globalBatch: 24 }, /not divisible by micro-batch 1 × DP 16/],
    [{ dp: 4, tp: 8, pp: 4, interleave: 2, globalBatch: 24 }, /micro-batches \(6\) divisible by PP 4/],
    [{ dp: 8, tp: 8, pp: 2, interleave: 2, globalBatch: 64 }, /PP > 2/],
    [{ dp: 128, tp: 1, pp: 1, sequenceParallel: true, globalBatch: 128 }, /needs TP > 1/],
    [{ dp: 2, tp: 1, pp: 64, globalBatch: 128 }, /96 layers do not split into PP 64/],
  ];
  for (const [cfg, re] of cases) assert.match(validateParallelConfig(m, c, parallelConfig(cfg)) ?? 'valid', re);
  assert.equal(validateParallelConfig(m, c, parallelConfig({ dp: 2, tp: 8, pp: 8, globalBatch: 64 })), undefined);
});

test('a small model on one node prefers pure data parallelism', () => {
  const r = searchParallelConfigs(modelPreset('gpt3-350m'), withConventions(), parseCluster('1x8xA100'), { globalBatch: 64 });
  assert.equal(r.ranked[0]!.config.dp, 8);
});
