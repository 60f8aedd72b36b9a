import { test } from 'node:test';
import assert from 'node:assert/strict';
import { megatronIterationFlops, modelPreset, parallelConfig, parseCluster, stepTime, withConventions } from '../../src/plan/index.js';

// Narayanan et al. 2021 (arXiv:2104.04473) Table 1: model, TP, PP, GPUs, batch, achieved TFLOP/s per GPU
// (eq. 3 FLOPs, i.e. counting full recomputation, on A100 80GB in DGX nodes with 8 HDR NICs).
const table1: [string, number, number, number, number, number][] = [
  ['megatron-1.7b', 1, 1, 32, 512, 137], ['megatron-3.6b', 2, 1, 64, 512, 138], ['megatron-7.5b', 4, 1, 128, 512, 142],
  ['megatron-18.4b', 8, 1, 256, 1024, 135], ['megatron-39.1b', 8, 2, 512, 1536, 138], ['megatron-76.1b', 8, 4, 1024, 1792, 140],
  ['megatron-145.6b', 8, 8, 1536, 2304, 148], ['megatron-310.1b', 8, 16, 1920, 2160, 155], ['megatron-529.6b', 8, 35, 2520, 2520, 163],
  ['megatron-1008b', 8, 64, 3072, 3072, 163],
];

test('the step-time model reproduces Megatron-LM Table 1 per-GPU throughput within 10% on every row', () => {
  const conv = withConventions({ bytesPerParam: 18 }); // Megatron keeps fp32 gradients
  for (const [name, tp, pp, gpus, batch, published] of table1) {
    const m = modelPreset(name);
    const c = parseCluster(`${gpus / 8}x8xA100`);
    const cfg = parallelConfig({ tp, pp, dp: gpus / (tp * pp), globalBatch: batch, microBatch: 1, recompute: 'full' });
    const st = stepTime(m, conv, c, cfg);
    const achieved = megatronIterationFlops(batch, m.seqLen, m.layers, m.hidden, m.vocab) / st.seconds / gpus / 1e12;
    assert.ok(Math.abs(achieved / published - 1) < 0.1, `${name}: predicted ${achieved.toFixed(1)} vs published ${published} TFLOP/s`);
    // eq. 3 FLOPs are the model's hardware FLOPs with full recomputation
    assert.ok(Math.abs(st.hardwareFlopsPerDevice / (achieved * 1e12) - 1) < 0.01);
  }
});

test('step-time parts add up, and more pipeline stages with few micro-batches cost bubble', () => {
  const m = modelPreset('gpt3-175b');
  const c = parseCluster('128x8xA100');
  const conv = withConventions();
  const st = stepTime(m, conv, c, parallelConfig({ tp: 8, pp: 8, dp: 16, globalBatch: 1536, recompute: 'selective', sequenceParallel: true }));
  const sum = Object.values(st.parts).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - st.seconds) < 1e-9 * st.seconds);
  const small = stepTime(m, conv, c, parallelConfig({ tp: 8, pp: 8, dp: 16, globalBatch: 128, recompute: 'selective', sequenceParallel: true }));
  assert.ok(small.parts.bubble / small.seconds > st.parts.bubble / st.seconds);
  assert.ok(st.mfu > 0.3 && st.mfu < 0.7);
  assert.ok(st.comms.some((x) => x.kind === 'tp' && x.link === 'nvlink3'));
  assert.ok(st.comms.some((x) => x.kind === 'pp' && x.link === 'ib-hdr'));
});
