import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestCollective, busBandwidthFactor, collectiveTime, collectives, collectiveAlgorithms, ncclBandwidths, link, alphaBetaOf } from '../../src/plan/index.js';

const ab = { alpha: 5e-6, beta: 1 / 20e9, gamma: 0 };

test('ring all-reduce = 2(p−1)α + 2(p−1)/p·nβ (Chan et al. 2007; Thakur et al. 2005)', () => {
  const n = 1e9, p = 8;
  const t = collectiveTime('all-reduce', 'ring', n, p, ab)!;
  assert.ok(Math.abs(t - (2 * (p - 1) * ab.alpha + (2 * (p - 1) / p) * n * ab.beta)) < 1e-12);
  assert.ok(Math.abs(collectiveTime('all-gather', 'ring', n, p, ab)! - ((p - 1) * ab.alpha + ((p - 1) / p) * n * ab.beta)) < 1e-12);
  assert.ok(Math.abs(collectiveTime('broadcast', 'binomial-tree', n, p, ab)! - 3 * (ab.alpha + n * ab.beta)) < 1e-12);
});

test('every algorithm respects the all-reduce lower bound ⌈log p⌉α + 2(p−1)/p·nβ', () => {
  for (const p of [2, 3, 8, 12, 64]) {
    for (const n of [1e3, 1e6, 1e9]) {
      const bound = Math.ceil(Math.log2(p)) * ab.alpha + ((2 * (p - 1)) / p) * n * ab.beta;
      for (const alg of collectiveAlgorithms) {
        const t = collectiveTime('all-reduce', alg, n, p, ab);
        if (t !== undefined) assert.ok(t >= bound * (1 - 1e-12), `${alg} p=${p} n=${n}: ${t} < ${bound}`);
      }
    }
  }
});

test('best algorithm: latency-bound small messages avoid the ring, bandwidth-bound large ones avoid the binomial tree', () => {
  const small = bestCollective('all-reduce', 1e3, 64, ab);
  assert.notEqual(small.algorithm, 'ring');
  const large = bestCollective('all-reduce', 1e10, 64, ab);
  assert.notEqual(large.algorithm, 'binomial-tree');
  assert.ok(large.candidates.length === 4 && bestCollective('scatter', 1e6, 8, ab).candidates.length === 2);
  assert.equal(collectiveTime('all-reduce', 'ring', 1e9, 1, ab), 0);
  for (const op of collectives) assert.ok(bestCollective(op, 1e6, 16, ab).seconds > 0, op);
  assert.throws(() => collectiveTime('all-reduce', 'ring', 1, 0, ab), /positive integer/);
});

test('NCCL bus bandwidth factors (nccl-tests doc/PERFORMANCE.md)', () => {
  assert.equal(busBandwidthFactor('all-reduce', 8), 14 / 8);
  assert.equal(busBandwidthFactor('all-gather', 8), 7 / 8);
  assert.equal(busBandwidthFactor('reduce-scatter', 4), 3 / 4);
  assert.equal(busBandwidthFactor('broadcast', 8), 1);
  // A ring all-reduce's busbw is the link's effective bandwidth once latency is negligible.
  const l = link('nvlink3');
  const t = collectiveTime('all-reduce', 'ring', 1e10, 8, alphaBetaOf(l))!;
  const { busbw } = ncclBandwidths('all-reduce', 1e10, t, 8);
  assert.ok(Math.abs(busbw / (l.bandwidth * l.efficiency) - 1) < 0.01);
});

test('per-step volumes: TP 8bsh(t−1)/t elements per layer per micro-batch (Megatron §3.2); ZeRO-3 = 1.5× DP (ZeRO §7)', async () => {
  const { communicationVolumes, modelPreset, parallelConfig, withConventions } = await import('../../src/plan/index.js');
  const m = modelPreset('gpt3-175b');
  const conv = withConventions();
  const t = 8, b = 1;
  const v = communicationVolumes(m, conv, parallelConfig({ tp: t, pp: 1, dp: 128, microBatch: b, globalBatch: 128 }));
  const perLayerElements = (8 * b * m.seqLen * m.hidden * (t - 1)) / t;
  assert.ok(Math.abs(v.tensorParallel - 2 * perLayerElements * m.layers) < 1);
  const z0 = communicationVolumes(m, conv, parallelConfig({ tp: 8, pp: 8, dp: 16, globalBatch: 1536 }));
  const z3 = communicationVolumes(m, conv, parallelConfig({ tp: 8, pp: 8, dp: 16, globalBatch: 1536, zero: 3 }));
  assert.ok(Math.abs((z3.dataParallel + z3.zero3) / z0.dataParallel - 1.5) < 1e-9);
  assert.ok(z0.pipelineParallel > 0 && z0.total === z0.tensorParallel + z0.pipelineParallel + z0.dataParallel);
});
