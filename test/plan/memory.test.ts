import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  activationBytesPerLayer, activationLayersInFlight, countParams, fsdpAsZero, memoryPerDevice, modelPreset, parallelConfig, transformer,
  withConventions, zeroModelStateBytes,
} from '../../src/plan/index.js';

test('ZeRO paper Fig. 1: Ψ = 7.5B, N_d = 64, K = 12 → 120 / 31.4 / 16.6 / 1.9 GB (Rajbhandari et al. 2019 §5)', () => {
  const gb = [0, 1, 2, 3].map((s) => zeroModelStateBytes(7.5e9, s as 0 | 1 | 2 | 3, 64) / 1e9);
  assert.deepEqual(gb.map((x) => Math.round(x * 10) / 10), [120, 31.4, 16.6, 1.9]);
});

test('memoryPerDevice model states follow the same ZeRO arithmetic for a 7.5B GPT on 64 GPUs', () => {
  const m = modelPreset('megatron-7.5b');
  const psi = countParams(m).total;
  const conv = withConventions({ bytesPerParam: 16 });
  for (const zero of [0, 1, 2, 3] as const) {
    const mem = memoryPerDevice(m, conv, parallelConfig({ dp: 64, zero, globalBatch: 64 }));
    const states = mem.weights + mem.gradients + mem.optimizer;
    assert.ok(Math.abs(states / zeroModelStateBytes(psi, zero, 64) - 1) < 1e-9, `stage ${zero}`);
  }
});

test('DeepSpeed ZeRO-3 estimator: 18·P/gpus + 4·largest layer; optimizer offload: 2·P/gpus + 4·largest', () => {
  const m = modelPreset('gpt3-1.3b');
  const P = countParams(m).total, gpus = 8;
  const largest = Math.max(countParams(m).perLayer, m.vocab * m.hidden);
  const conv = withConventions({ bytesPerParam: 18 });
  const base = { dp: gpus, zero: 3 as const, globalBatch: 8, recompute: 'full' as const };
  const mem = memoryPerDevice(m, conv, parallelConfig(base));
  const zeroTemp = 4 * largest; // the layer being recomputed adds activations, not counted here
  assert.ok(Math.abs(mem.weights + mem.gradients + mem.optimizer - (18 * P) / gpus) < 1);
  assert.ok(mem.temporary >= zeroTemp && mem.temporary < zeroTemp + 1e9);
  const off = memoryPerDevice(m, conv, parallelConfig({ ...base, offload: 'optimizer' }));
  assert.ok(Math.abs(off.weights + off.gradients + off.optimizer - (2 * P) / gpus) < 1);
  assert.ok(Math.abs(off.hostOffloaded - (16 * P) / gpus) < 1);
});

test('Korthikanti Table 2: activation bytes per layer for every parallelism/recompute combination', () => {
  const m = modelPreset('gpt3-175b');
  const conv = withConventions();
  const s = m.seqLen, b = 1, h = m.hidden, a = m.heads, t = 8;
  const sbh = s * b * h;
  const act = (cfg: { tp: number; sequenceParallel: boolean; recompute: 'none' | 'selective' | 'full' }): number => activationBytesPerLayer(m, conv, { ...cfg, microBatch: b });
  const close = (x: number, y: number): void => assert.ok(Math.abs(x / y - 1) < 1e-12, `${x} vs ${y}`);
  close(act({ tp: 1, sequenceParallel: false, recompute: 'none' }), sbh * (34 + (5 * a * s) / h));
  close(act({ tp: t, sequenceParallel: false, recompute: 'none' }), sbh * (10 + 24 / t + (5 * a * s) / (h * t)));
  close(act({ tp: t, sequenceParallel: true, recompute: 'none' }), sbh * (34 / t + (5 * a * s) / (h * t)));
  close(act({ tp: t, sequenceParallel: false, recompute: 'selective' }), sbh * (10 + 24 / t));
  close(act({ tp: t, sequenceParallel: true, recompute: 'selective' }), (34 * sbh) / t);
  close(act({ tp: 1, sequenceParallel: false, recompute: 'full' }), 2 * sbh);
  // GPT-3: 5as/h = 80 against 34, so selective recomputation saves 70% (Korthikanti §5).
  const saved = 1 - act({ tp: t, sequenceParallel: true, recompute: 'selective' }) / act({ tp: t, sequenceParallel: true, recompute: 'none' });
  assert.equal(Math.round(saved * 100), 70);
  // Flash attention never stores the s×s tensors.
  close(activationBytesPerLayer(m, withConventions({ flashAttention: true }), { tp: t, sequenceParallel: true, recompute: 'none', microBatch: b }), (34 * sbh) / t);
});

test('in-flight activations: 1F1B first stage holds L layers whatever p; interleaving ×(1 + (p−1)/(pv)); GPipe m·L/p', () => {
  const m = modelPreset('gpt3-175b');
  const L = m.layers;
  for (const pp of [2, 4, 8]) {
    assert.equal(activationLayersInFlight(m, parallelConfig({ pp, globalBatch: 64 })), L);
    const v = 2;
    const inter = activationLayersInFlight(m, parallelConfig({ pp, interleave: v, globalBatch: 64 }));
    assert.ok(Math.abs(inter - L * (1 + (pp - 1) / (pp * v))) < 1e-9);
    assert.equal(activationLayersInFlight(m, parallelConfig({ pp, schedule: 'gpipe', globalBatch: 64 })), (64 * L) / pp);
  }
});

test('memory breakdown: stage split, TP divides states, full recompute shrinks activations', () => {
  const m = modelPreset('gpt3-175b');
  const conv = withConventions();
  const a = memoryPerDevice(m, conv, parallelConfig({ tp: 8, pp: 8, dp: 16, globalBatch: 1536, recompute: 'none', sequenceParallel: true }));
  const b = memoryPerDevice(m, conv, parallelConfig({ tp: 8, pp: 8, dp: 16, globalBatch: 1536, recompute: 'full', sequenceParallel: true }));
  assert.ok(b.activations < a.activations / 5);
  assert.equal(a.total, a.weights + a.gradients + a.optimizer + a.activations + a.temporary);
  // one stage of 12 layers over 8-way TP plus the 50257×12288 embedding
  const perLayer = countParams(m).perLayer;
  assert.ok(a.paramsPerDevice > (12 * perLayer) / 8 && a.paramsPerDevice < (12 * perLayer + 2 * m.vocab * m.hidden) / 8);
});

test('FSDP strategies map onto ZeRO stages; HYBRID_SHARD shards within a node only', () => {
  assert.deepEqual(fsdpAsZero('FULL_SHARD', 8), { zero: 3 });
  assert.deepEqual(fsdpAsZero('SHARD_GRAD_OP', 8), { zero: 2 });
  assert.deepEqual(fsdpAsZero('NO_SHARD', 8), { zero: 0 });
  const m = transformer({ name: 't', layers: 4, hidden: 256, heads: 4, vocab: 1000, seqLen: 128 });
  const conv = withConventions();
  const full = memoryPerDevice(m, conv, parallelConfig({ dp: 64, globalBatch: 64, ...fsdpAsZero('FULL_SHARD', 8) }));
  const hybrid = memoryPerDevice(m, conv, parallelConfig({ dp: 64, globalBatch: 64, ...fsdpAsZero('HYBRID_SHARD', 8) }));
  assert.ok(Math.abs(hybrid.optimizer / full.optimizer - 8) < 1e-9);
});

test("DeepSpeed's ZeRO-3 estimator output for T0_3B on 1 GPU (DeepSpeed memory docs: 2783M params, 65M largest layer)", async () => {
  const { deepspeedZero3Estimate } = await import('../../src/plan/index.js');
  const GiB = 2 ** 30;
  const rows: [boolean, boolean, boolean, number, number][] = [
    // offload_param, offload_optimizer, zero_init, per CPU GB (GiB), per GPU GB (GiB) as printed
    [true, true, true, 70.0, 0.25], [false, true, true, 62.23, 5.43], [false, false, true, 0.37, 46.91], [false, false, false, 15.56, 46.91],
  ];
  for (const [params, optimizer, zeroInit, cpu, gpu] of rows) {
    const e = deepspeedZero3Estimate(2783e6, 65e6, 1, 1, { params, optimizer }, zeroInit);
    // 2783M and 65M are the printed (rounded) counts, hence 0.05 GiB of slack
    assert.ok(Math.abs(e.cpu / GiB - cpu) < 0.05, `cpu ${e.cpu / GiB} vs ${cpu}`);
    assert.ok(Math.abs(e.gpu / GiB - gpu) < 0.05, `gpu ${e.gpu / GiB} vs ${gpu}`);
  }
  // our memory model agrees with the estimator on the GPU side for a transformer (ZeRO-3, 18 B/param)
  const m = modelPreset('gpt3-2.7b');
  const P = countParams(m).total;
  const largest = Math.max(countParams(m).perLayer, m.vocab * m.hidden);
  const mem = memoryPerDevice(m, withConventions({ bytesPerParam: 18 }), parallelConfig({ dp: 8, zero: 3, globalBatch: 8 }));
  assert.ok(Math.abs(mem.weights + mem.gradients + mem.optimizer + mem.temporary - deepspeedZero3Estimate(P, largest, 8, 1, { params: false, optimizer: false }).gpu) < 1);
});
