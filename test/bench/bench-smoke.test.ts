// Keeps the peer benchmark's code working: tessera's training steps (bench/workloads) run and
// learn, and the timing loop and FLOP counts follow their rules. No timings are asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_WARMUP_RUNS, defaultSpec, trainStepFlops, type BenchRecord, type BenchSpec } from '../../bench/spec.js';
import { referenceBlasWarning } from '../../bench/report.js';
import { median, timeRuns } from '../../bench/harness.js';
import { tesseraGptStep, tesseraMlpStep } from '../../bench/workloads/tessera-models.js';

/** The benchmark's spec with models shrunk so that a few steps take well under a second. */
function smallSpec(): BenchSpec {
  const spec = defaultSpec(true);
  spec.mlp = { batch: 16, sizes: [784, 32, 32, 10] };
  spec.gpt = { batch: 2, vocab: 65, context: 8, d: 16, heads: 2, layers: 1 };
  spec.lr = 1e-2;
  return spec;
}

test('the MLP training step starts near ln(10) and lowers the loss on its fixed batch', () => {
  const step = tesseraMlpStep(smallSpec());
  const first = step();
  assert.ok(first > 1.5 && first < 3.5, `first loss ${first} should be near ln(10) = 2.30`);
  let last = first;
  for (let i = 0; i < 4; i++) last = step();
  assert.ok(last < first, `loss should fall with Adam on one batch: ${first} -> ${last}`);
});

test('the GPT training step gives a loss near ln(vocab) and keeps finite after an update', () => {
  const step = tesseraGptStep(smallSpec());
  const first = step();
  assert.ok(Math.abs(first - Math.log(65)) < 0.5, `first loss ${first} should be near ln(65) = 4.17`);
  assert.ok(Number.isFinite(step()));
});

test('the jitted steps (the tessera-jit rows) train like the eager ones: same losses from the same seed', () => {
  for (const build of [tesseraMlpStep, tesseraGptStep]) {
    const eager = build(smallSpec());
    const eagerLosses = [eager(), eager(), eager()];
    const jitted = build(smallSpec(), { jit: true });
    const jitLosses = [jitted(), jitted(), jitted()];
    for (let i = 0; i < 3; i++) {
      assert.ok(Math.abs(jitLosses[i]! - eagerLosses[i]!) <= 1e-5 * Math.abs(eagerLosses[i]!),
        `${build.name} step ${i}: jit ${jitLosses[i]} vs eager ${eagerLosses[i]}`);
    }
    assert.ok(jitLosses[2]! < jitLosses[0]!, `${build.name}: the jitted step should learn: ${jitLosses.join(', ')}`);
  }
});

test('timeRuns runs the warm-ups, then stops at maxRuns', async () => {
  let calls = 0;
  const t = await timeRuns(() => { calls++; }, { warmup: 2, warmupMs: 0, minRuns: 1, maxRuns: 4, budgetMs: 1e9, caseLimitMs: 1e9 });
  assert.equal(calls, 6);
  assert.equal(t.runs, 4);
  assert.equal(t.samplesMs.length, 4);
  assert.ok(t.minMs <= t.medianMs);
});

const busyFor = (ms: number): void => { const end = performance.now() + ms; while (performance.now() < end); };

test('timeRuns times one run after a warm-up slower than the case limit (warm-up not reported)', async () => {
  let calls = 0;
  const t = await timeRuns(() => { calls++; busyFor(3); }, { warmup: 2, warmupMs: 0, minRuns: 3, maxRuns: 10, budgetMs: 1e9, caseLimitMs: 1 });
  assert.equal(calls, 2);
  assert.equal(t.runs, 1);
});

test('timeRuns stops warming up after one warm-up longer than the budget', async () => {
  let calls = 0;
  const t = await timeRuns(() => { calls++; busyFor(3); }, { warmup: 5, warmupMs: 0, minRuns: 2, maxRuns: 2, budgetMs: 1, caseLimitMs: 1e9 });
  assert.equal(calls, t.runs + 1, `${calls} calls for ${t.runs} timed runs: expected exactly one warm-up`);
});

test('timeRuns keeps warming up until warmupMs was spent, at most MAX_WARMUP_RUNS times', async () => {
  // A simulated clock that each run advances by 2 ms: the count does not depend on the machine's load.
  let calls = 0;
  let clock = 0;
  const timed = await timeRuns(() => { calls++; clock += 2; }, { warmup: 1, warmupMs: 30, minRuns: 1, maxRuns: 1, budgetMs: 1e9, caseLimitMs: 1e9 }, () => clock);
  assert.equal(calls - timed.runs, 15, `${calls - timed.runs} warm-ups of 2 ms for a 30 ms warm-up budget`);
  calls = 0;
  const capped = await timeRuns(() => { calls++; }, { warmup: 1, warmupMs: 1e9, minRuns: 1, maxRuns: 1, budgetMs: 1e9, caseLimitMs: 1e9 });
  assert.equal(calls - capped.runs, MAX_WARMUP_RUNS);
});

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('training FLOPs are 3x the forward products (MLP by hand)', () => {
  const spec = defaultSpec(false);
  assert.equal(trainStepFlops(spec, 'mlp'), 3 * 2 * 128 * (784 * 512 + 512 * 512 + 512 * 10));
  // CNN: conv1 + conv2 + the two linear layers.
  const cnnForward = 2 * 64 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 3136 * 128 + 128 * 10);
  assert.equal(trainStepFlops(spec, 'cnn'), 3 * cnnForward);
});

test('the report warns when PyTorch ran on the reference BLAS (not a fair peer), and only then', () => {
  const rec = (backend: string) => ({ library: 'pytorch', backend }) as unknown as BenchRecord;
  assert.match(referenceBlasWarning({ records: [rec('cpu, torch 1.13.0a0, reference BLAS')] }), /reference BLAS .* not a fair peer\. Install libopenblas0-pthread/);
  assert.equal(referenceBlasWarning({ records: [rec('cpu, torch 1.13.0a0, OpenBLAS')] }), '');
  assert.equal(referenceBlasWarning({ records: [] }), '');
});
