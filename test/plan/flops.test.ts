import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countParams, flopsPerToken, megatronIterationFlops, modelPreset, utilization, withConventions, device, peakFlops, trainingFlops } from '../../src/plan/index.js';

test('matmul counting reproduces Megatron eq. 3 (full recompute) and its no-recompute form', () => {
  const conv = withConventions({ flops: 'matmul' });
  for (const name of ['megatron-1.7b', 'megatron-145.6b', 'gpt3-175b']) {
    const m = modelPreset(name);
    const f = flopsPerToken(m, conv, 'full');
    const eq3 = megatronIterationFlops(1, m.seqLen, m.layers, m.hidden, m.vocab) / m.seqLen;
    assert.ok(Math.abs(f.hardware / eq3 - 1) < 1e-3, `${name}: ${f.hardware} vs ${eq3}`);
    const l = m.layers, h = m.hidden, s = m.seqLen;
    const noRecompute = 72 * l * h * h * (1 + s / (6 * h) + m.vocab / (12 * l * h));
    assert.ok(Math.abs(f.model / noRecompute - 1) < 1e-3);
  }
});

test('PaLM 540B: 6N + 12LHQT = 3.28 TFLOP/token; MFU 46.2% at 238.3k tokens/s on 6144 TPU v4 (PaLM App. B, Table 22)', () => {
  const m = modelPreset('palm-540b');
  const conv = withConventions({ flops: 'palm-6n' });
  const f = flopsPerToken(m, conv);
  assert.ok(Math.abs(f.model / 1e12 - 3.28) < 0.005, `${f.model}`);
  const u = utilization(m, conv, 238.3e3, 6144, peakFlops(device('TPUv4'), 'bf16'));
  assert.ok(Math.abs(u.mfu - 0.462) < 0.001, `${u.mfu}`);
});

test('MT-NLG 530B: 1920×2048 tokens in 60.1 s on 2240 A100s is 30.2% MFU with attention, 29.7% without (PaLM Table 3 / App. B)', () => {
  const m = modelPreset('megatron-529.6b'); // MT-NLG: 105 layers, h 20480, 128 heads
  const conv = withConventions({ flops: 'palm-6n' });
  const tps = (1920 * 2048) / 60.1;
  const peak = peakFlops(device('A100'), 'bf16');
  const u = utilization(m, conv, tps, 2240, peak);
  assert.ok(Math.abs(u.mfu - 0.302) < 0.002, `${u.mfu}`);
  const sixN = (tps * 6 * countParams(m).total) / (2240 * peak);
  assert.ok(Math.abs(sixN - 0.297) < 0.002, `${sixN}`);
});

test('GPT-3 175B over 300B tokens: 6ND = 3.14e23 FLOPs (GPT-3 App. D); attention adds ~3%', () => {
  const m = modelPreset('gpt3-175b');
  const sixND = 6 * countParams(m).total * 300e9;
  assert.ok(Math.abs(sixND / 3.14e23 - 1) < 0.005);
  const withAttention = trainingFlops(m, withConventions({ flops: 'palm-6n' }), 300e9);
  assert.ok(withAttention > sixND && withAttention < sixND * 1.04);
});

test('recompute: full adds a forward pass, selective only the attention core; HFU ≥ MFU; causal halves attention', () => {
  const m = modelPreset('gpt3-175b');
  const conv = withConventions();
  const none = flopsPerToken(m, conv, 'none'), sel = flopsPerToken(m, conv, 'selective'), full = flopsPerToken(m, conv, 'full');
  assert.equal(none.hardware, none.model);
  // Selective recomputation reruns the attention core's forward once: QKᵀ and AV, 4·s·H·d per
  // token per layer (Korthikanti et al. §5 recompute exactly these ops).
  assert.equal(sel.hardware - none.model, 4 * m.layers * m.seqLen * m.heads * m.headDim);
  assert.ok(full.hardware / none.model > 1.3);
  const causal = flopsPerToken(m, withConventions({ attention: 'causal' }));
  assert.ok(Math.abs(none.forward - causal.forward - none.attentionForward / 2) < 1);
  const u = utilization(m, conv, 1e5, 1024, 312e12, 'full');
  assert.ok(u.hfu > u.mfu);
  assert.throws(() => utilization(m, conv, 0, 1, 1), /positive/);
});
