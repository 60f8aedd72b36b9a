// Tensor-parallel, expert-parallel and pipeline communication overlapped with compute
// (ParallelConfig.overlapTensorParallelComm, overlapExpertParallelComm, overlapPipelineComm):
// each closed form against an event-by-event simulation, then the step-time model's use of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  advise, alphaBetaOf, bestCollective, describeParallelConfig, exposedBesideCompute, exposedChunkedAllToAll, exposedInterleavedP2p, exposedPipelinedCollectives,
  exposedRingExchange, interleavedP2pClosedFormHolds, modelPreset, parallelConfig, parseCluster, searchParallelConfigs, simulatePipeline,
  stepTime, validateParallelConfig, withConventions, type ParallelConfig, type StepTime,
} from '../../src/plan/index.js';
import { SeededRandom } from '../../src/data/random.js';

const near = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
const sumOfParts = (st: StepTime): number => Object.values(st.parts).reduce((x, y) => x + y, 0);
const commSeconds = (st: StepTime, kind: string): number => st.comms.filter((x) => x.kind === kind).reduce((t, x) => t + x.seconds, 0);

/**
 * Two in-order streams, as CUDA streams run kernels: each task starts when its stream has finished
 * the task before it and every task it waits on has finished. Returns the makespan.
 */
interface Task { stream: 'compute' | 'comm'; seconds: number; after: number[] }
function simulateStreams(tasks: readonly Task[]): number {
  const end = new Array<number>(tasks.length).fill(NaN);
  const queues = { compute: [] as number[], comm: [] as number[] };
  tasks.forEach((t, i) => queues[t.stream].push(i));
  const free = { compute: 0, comm: 0 };
  let done = 0;
  while (done < tasks.length) {
    let progressed = false;
    for (const stream of ['compute', 'comm'] as const) {
      const i = queues[stream][0];
      if (i === undefined || tasks[i]!.after.some((j) => Number.isNaN(end[j]!))) continue;
      const start = Math.max(free[stream], ...tasks[i]!.after.map((j) => end[j]!));
      end[i] = start + tasks[i]!.seconds;
      free[stream] = end[i]!;
      queues[stream].shift();
      done++;
      progressed = true;
    }
    if (!progressed) throw new Error('simulateStreams: the task order deadlocks');
  }
  return Math.max(0, ...end);
}

test('ring-exchange all-gather → GEMM (TE ring_exchange): closed form = two-stream simulation, and its mirror GEMM → reduce-scatter too', () => {
  const random = new SeededRandom(21);
  for (let i = 0; i < 500; i++) {
    const steps = random.nextInt(15), c = random.next() * 0.01, g = random.next() * 0.01;
    // Gather: chunk 0 is the rank's own shard; chunk j waits for ring step j (steps run back to back).
    const gather: Task[] = [];
    for (let j = 1; j <= steps; j++) gather.push({ stream: 'comm', seconds: c, after: [] });
    for (let j = 0; j <= steps; j++) gather.push({ stream: 'compute', seconds: g, after: j === 0 ? [] : [j - 1] });
    near(exposedRingExchange(steps, c, g), simulateStreams(gather) - (steps + 1) * g);
    // Scatter: ring step j sends what chunk j − 1 produced; the last chunk is the rank's own.
    const scatter: Task[] = [];
    for (let j = 0; j <= steps; j++) scatter.push({ stream: 'compute', seconds: g, after: [] });
    for (let j = 1; j <= steps; j++) scatter.push({ stream: 'comm', seconds: c, after: [j - 1] });
    near(exposedRingExchange(steps, c, g), simulateStreams(scatter) - (steps + 1) * g);
  }
  assert.equal(exposedRingExchange(7, 1, 2), 0); // each step shorter than a chunk: all hidden
  assert.equal(exposedRingExchange(7, 3, 1), 14);
});

test('pipelined GEMM → reduce-scatter (TE pipeline, 4 splits) and collectives beside independent compute (TE bulk): closed forms = simulation', () => {
  const random = new SeededRandom(22);
  for (let i = 0; i < 500; i++) {
    const k = 1 + random.nextInt(8), c = random.next() * 0.01, g = random.next() * 0.01;
    const tasks: Task[] = [];
    for (let j = 0; j < k; j++) tasks.push({ stream: 'compute', seconds: g, after: [] });
    for (let j = 0; j < k; j++) tasks.push({ stream: 'comm', seconds: c, after: [j] });
    near(exposedPipelinedCollectives(k, c, g), simulateStreams(tasks) - k * g);
    const bulk: Task[] = [{ stream: 'compute', seconds: g, after: [] }, { stream: 'comm', seconds: c, after: [] }];
    near(exposedBesideCompute(c, g), simulateStreams(bulk) - g);
  }
  assert.equal(exposedPipelinedCollectives(4, 1, 2), 1); // only the last split's collective shows
  assert.equal(exposedPipelinedCollectives(4, 2, 1), 2 + 3 * 1);
});

test('chunked expert all-to-all (Tutel order: every dispatch, then each combine after its experts): closed form = simulation', () => {
  const random = new SeededRandom(23);
  for (let i = 0; i < 1000; i++) {
    const chunks = 1 + random.nextInt(8), d = random.next(), e = random.next() * 2, k = random.next();
    const tasks: Task[] = [];
    for (let j = 0; j < chunks; j++) tasks.push({ stream: 'comm', seconds: d, after: [] }); // dispatch j: task j
    for (let j = 0; j < chunks; j++) tasks.push({ stream: 'compute', seconds: e, after: [j] }); // experts j: chunks + j
    for (let j = 0; j < chunks; j++) tasks.push({ stream: 'comm', seconds: k, after: [chunks + j] }); // combine j
    near(exposedChunkedAllToAll(chunks, d, e, k), simulateStreams(tasks) - chunks * e, 1e-12);
  }
  assert.equal(exposedChunkedAllToAll(1, 2, 10, 2), 4); // one chunk: both all-to-alls exposed
  assert.equal(exposedChunkedAllToAll(2, 1, 5, 1), 2); // two: only the first dispatch and the last combine
});

test('interleaved 1F1B with transfers beside compute: 2(pv − 1)δ exposed = the pipeline simulator, whenever δ ≤ min(forward, backward) of a chunk', () => {
  const random = new SeededRandom(24);
  for (let i = 0; i < 300; i++) {
    const p = 3 + random.nextInt(6), v = 2 + random.nextInt(3), m = p * (1 + random.nextInt(4));
    const fc = 0.1 + random.next(), bc = 0.1 + 2 * random.next(), delta = random.next() * Math.min(fc, bc);
    assert.ok(interleavedP2pClosedFormHolds(delta, fc, bc));
    // The simulator charges each cross-device dependency δ of latency without occupying either device.
    const sim = simulatePipeline({ schedule: 'interleaved-1f1b', stages: p, microBatches: m, interleave: v, forward: fc * v, backward: bc * v, p2p: delta });
    near((m * v + p - 1) * (fc + bc) + exposedInterleavedP2p(p, v, delta), sim.stepTime, 1e-9);
    // Blocking transfers (the model without overlap) pay 2δ in every one of the m·v + p − 1 chunk slots.
    assert.ok(exposedInterleavedP2p(p, v, delta) <= 2 * (m * v + p - 1) * delta);
  }
  // Beyond the range the closed form undercounts: a transfer longer than a chunk stalls the steady state.
  const long = simulatePipeline({ schedule: 'interleaved-1f1b', stages: 4, microBatches: 8, interleave: 2, forward: 2, backward: 4, p2p: 2 });
  assert.ok(!interleavedP2pClosedFormHolds(2, 1, 2));
  assert.ok(long.stepTime > (8 * 2 + 3) * 3 + exposedInterleavedP2p(4, 2, 2) + 1);
});

// GPT-3 175B on 128 DGX A100 nodes, the layout `tessera plan` ranks first (docs/planner.md §1).
const gpt3 = modelPreset('gpt3-175b'), conv = withConventions(), a100s = parseCluster('128x8xA100');
const megatron = parallelConfig({ dp: 16, tp: 8, pp: 8, interleave: 4, microBatch: 1, globalBatch: 1536, zero: 2, sequenceParallel: true });

function checkAccounting(st: StepTime): void {
  near(sumOfParts(st), st.seconds, 1e-12);
  near(st.parts.tensorParallelComm + st.hiddenCommByKind.tensorParallel, commSeconds(st, 'tp'), 1e-12);
  near(st.parts.expertParallelComm + st.hiddenCommByKind.expertParallel, commSeconds(st, 'ep'), 1e-12);
  near(st.parts.pipelineComm + st.hiddenCommByKind.pipeline, commSeconds(st, 'pp'), 1e-12);
  near(Object.values(st.hiddenCommByKind).reduce((x, y) => x + y, 0), st.hiddenCommSeconds, 1e-12);
  for (const v of Object.values(st.hiddenCommByKind)) assert.ok(v >= 0);
}

test('TP overlap with sequence parallelism: collectives hide under the GEMMs, parts still add up, the slowdown is σ × the overlapped GEMMs', () => {
  const plain = stepTime(gpt3, conv, a100s, megatron);
  const over = stepTime(gpt3, conv, a100s, { ...megatron, overlapTensorParallelComm: true });
  checkAccounting(plain); checkAccounting(over);
  assert.equal(plain.hiddenCommSeconds, 0);
  assert.ok(over.parts.tensorParallelComm < 0.2 * plain.parts.tensorParallelComm, `${over.parts.tensorParallelComm} vs ${plain.parts.tensorParallelComm}`);
  // On NVLink the ring steps (~30 µs) are shorter than the GEMM chunks (> 100 µs) and the split
  // reduce-scatters shorter than the split GEMMs: what shows is the last of each forward
  // reduce-scatter's 4 splits, 2 per layer, and nothing backward.
  const perLayer = over.parts.tensorParallelComm / (plain.microBatches * gpt3.layers / megatron.pp);
  const tpBytes = 2 * megatron.microBatch * gpt3.seqLen * gpt3.hidden;
  near(perLayer, 2 * bestCollective('reduce-scatter', tpBytes / 4, megatron.tp, alphaBetaOf(a100s.intraLink)).seconds, 1e-9);
  near(over.parts.compute, plain.parts.compute, 1e-12); // σ = 0: the GEMMs take as long as before
  // σ slows the GEMMs that run beside communication: all four linear GEMMs forward, the row
  // layers' dgrad and the column layers' wgrad backward, 2 × 12h² weights' worth per layer.
  const sigma = 0.05;
  const slow = stepTime(gpt3, conv, a100s, { ...megatron, overlapTensorParallelComm: true, overlapComputeSlowdown: sigma });
  checkAccounting(slow);
  const linearGemm = (2 * megatron.microBatch * gpt3.seqLen * 12 * gpt3.hidden ** 2) / megatron.tp / (312e12 * a100s.device.matmulEfficiency);
  near(slow.overlapSlowdownSeconds, sigma * 2 * linearGemm * plain.microBatches * gpt3.layers / megatron.pp, 1e-9);
  near(slow.parts.compute - over.parts.compute, slow.overlapSlowdownSeconds, 1e-9);
  assert.ok(slow.seconds > over.seconds && slow.seconds < plain.seconds);
});

test('TP overlap without sequence parallelism: only the backward all-reduce hides (beside the wgrad GEMM); the forward one stays', () => {
  const noSp: ParallelConfig = { ...megatron, sequenceParallel: false };
  const plain = stepTime(gpt3, conv, a100s, noSp), over = stepTime(gpt3, conv, a100s, { ...noSp, overlapTensorParallelComm: true });
  checkAccounting(over);
  // Plain: 2 all-reduces forward + 2 backward; overlapped: the 2 forward ones remain.
  near(over.parts.tensorParallelComm, plain.parts.tensorParallelComm / 2, 1e-9);
  near(over.hiddenCommByKind.tensorParallel, plain.parts.tensorParallelComm / 2, 1e-9);
  // Without TP the flag changes nothing.
  const dpOnly = parallelConfig({ dp: 32, microBatch: 4, globalBatch: 512 }), small = modelPreset('gpt3-1.3b'), c32 = parseCluster('4x8xA100');
  assert.equal(stepTime(small, conv, c32, { ...dpOnly, overlapTensorParallelComm: true }).seconds, stepTime(small, conv, c32, dpOnly).seconds);
});

test('EP overlap: the all-to-alls pipeline with the experts over token chunks; one chunk hides nothing; the volume is unchanged', () => {
  const m = modelPreset('mixtral-8x7b'), c = parseCluster('8x8xH100');
  const cfg = parallelConfig({ dp: 16, tp: 2, pp: 2, ep: 4, microBatch: 1, globalBatch: 1024, zero: 2, sequenceParallel: true });
  const plain = stepTime(m, conv, c, cfg);
  const one = stepTime(m, conv, c, { ...cfg, overlapExpertParallelComm: true, expertOverlapChunks: 1 });
  assert.equal(one.seconds, plain.seconds);
  const two = stepTime(m, conv, c, { ...cfg, overlapExpertParallelComm: true });
  const four = stepTime(m, conv, c, { ...cfg, overlapExpertParallelComm: true, expertOverlapChunks: 4 });
  for (const st of [plain, two, four]) checkAccounting(st);
  assert.ok(four.parts.expertParallelComm < two.parts.expertParallelComm && two.parts.expertParallelComm < plain.parts.expertParallelComm);
  const volume = (st: StepTime): number => st.comms.filter((x) => x.kind === 'ep').reduce((t, x) => t + x.bytes * x.calls, 0);
  near(volume(four), volume(plain), 1e-12);
  assert.equal(four.comms.find((x) => x.kind === 'ep')!.calls, 4 * plain.comms.find((x) => x.kind === 'ep')!.calls);
  // MoE layers keep their MLP's TP collectives exposed under TP overlap (TE overlaps dense linears only).
  const tpOver = stepTime(m, conv, c, { ...cfg, overlapTensorParallelComm: true });
  assert.ok(tpOver.parts.tensorParallelComm > 0.4 * plain.parts.tensorParallelComm);
  // On a dense model the flag changes nothing.
  assert.equal(stepTime(gpt3, conv, a100s, { ...megatron, overlapExpertParallelComm: true }).seconds, stepTime(gpt3, conv, a100s, megatron).seconds);
});

test('PP overlap: interleaved transfers leave 2(pv − 1)δ exposed; the whole pipeline equals the simulator; plain 1F1B is unchanged (as in Megatron)', () => {
  const plain = stepTime(gpt3, conv, a100s, megatron);
  const over = stepTime(gpt3, conv, a100s, { ...megatron, overlapPipelineComm: true });
  checkAccounting(over);
  const pp = over.comms.find((x) => x.kind === 'pp')!;
  const delta = pp.seconds / pp.calls;
  near(over.parts.pipelineComm, 2 * (megatron.pp * megatron.interleave - 1) * delta, 1e-12);
  near(over.hiddenCommByKind.pipeline, plain.parts.pipelineComm - over.parts.pipelineComm, 1e-9);
  // End to end: the step's pipeline part is what the event simulator gives for the same passes.
  const sim = simulatePipeline({
    schedule: 'interleaved-1f1b', stages: megatron.pp, microBatches: over.microBatches, interleave: megatron.interleave,
    forward: over.forwardPerMicroBatch, backward: over.backwardPerMicroBatch, p2p: delta,
  });
  near(over.seconds - over.parts.dataParallelComm - over.parts.optimizer, sim.stepTime, 1e-9);
  assert.ok(over.seconds < plain.seconds);
  const oneChunk: ParallelConfig = { ...megatron, interleave: 1 };
  assert.equal(stepTime(gpt3, conv, a100s, { ...oneChunk, overlapPipelineComm: true }).seconds, stepTime(gpt3, conv, a100s, oneChunk).seconds);
  // A transfer longer than a chunk's pass (tiny micro-batches' compute on slow links): the model
  // falls back to simulating the schedule, and still never exceeds the blocking transfers' cost.
  const base = parseCluster('32x8xA100');
  const slowLink = { ...base, interLink: { ...base.interLink, bandwidth: 0.05e9 } };
  const small = modelPreset('gpt3-1.3b');
  const cfg = parallelConfig({ dp: 8, tp: 8, pp: 4, interleave: 2, microBatch: 1, globalBatch: 64 });
  const blocking = stepTime(small, conv, slowLink, cfg), fallback = stepTime(small, conv, slowLink, { ...cfg, overlapPipelineComm: true });
  const d = fallback.comms.find((x) => x.kind === 'pp')!;
  assert.ok(!interleavedP2pClosedFormHolds(d.seconds / d.calls, fallback.forwardPerMicroBatch / 2, fallback.backwardPerMicroBatch / 2));
  const sim2 = simulatePipeline({ schedule: 'interleaved-1f1b', stages: 4, microBatches: fallback.microBatches, interleave: 2, forward: fallback.forwardPerMicroBatch, backward: fallback.backwardPerMicroBatch, p2p: d.seconds / d.calls });
  near(fallback.seconds - fallback.parts.dataParallelComm - fallback.parts.optimizer, sim2.stepTime, 1e-9);
  near(sumOfParts(fallback), fallback.seconds, 1e-12);
  assert.ok(fallback.seconds <= blocking.seconds);
});

test('GPT-3 175B on 1024 A100s: Megatron-style overlaps (TP + PP + gradient reduction) cut the predicted step by a plausible 5-15%', () => {
  const plain = stepTime(gpt3, conv, a100s, megatron);
  const overlaps = { overlapTensorParallelComm: true, overlapPipelineComm: true, overlapGradReduce: true };
  const free = stepTime(gpt3, conv, a100s, { ...megatron, ...overlaps });
  const taxed = stepTime(gpt3, conv, a100s, { ...megatron, ...overlaps, overlapComputeSlowdown: 0.05 });
  for (const st of [free, taxed]) checkAccounting(st);
  const gain = (st: StepTime): number => 1 - st.seconds / plain.seconds;
  // The numbers printed in docs/planner.md ("Overlapped communication").
  console.log(`gpt3-175b 128x8xA100 ${describeParallelConfig(megatron)}: ${plain.seconds.toFixed(2)} s (MFU ${(plain.mfu * 100).toFixed(1)}%) → `
    + `${free.seconds.toFixed(2)} s (MFU ${(free.mfu * 100).toFixed(1)}%, σ = 0) / ${taxed.seconds.toFixed(2)} s (MFU ${(taxed.mfu * 100).toFixed(1)}%, σ = 0.05); `
    + `hidden ${JSON.stringify(Object.fromEntries(Object.entries(free.hiddenCommByKind).map(([k, v]) => [k, +v.toFixed(3)])))}`);
  assert.ok(gain(free) > 0.05 && gain(free) < 0.15, `σ = 0: ${(gain(free) * 100).toFixed(1)}%`);
  assert.ok(gain(taxed) > 0.02 && gain(taxed) < gain(free), `σ = 0.05: ${(gain(taxed) * 100).toFixed(1)}%`);
});

test('the search applies the overlaps it is given to every candidate; invalid overlap settings are rejected with the reason', () => {
  const small = modelPreset('gpt3-2.7b'), c = parseCluster('2x8xA100');
  const opts = { globalBatch: 256, top: 3, zeroStages: [1] as const, recompute: ['selective'] as const };
  const plain = searchParallelConfigs(small, conv, c, opts);
  const over = searchParallelConfigs(small, conv, c, { ...opts, overlapTensorParallelComm: true, overlapPipelineComm: true, overlapComputeSlowdown: 0 });
  assert.ok(over.ranked.every((r) => r.config.overlapTensorParallelComm && r.config.overlapPipelineComm && !r.config.overlapExpertParallelComm));
  assert.ok(over.ranked[0]!.step.seconds <= plain.ranked[0]!.step.seconds);
  const m = modelPreset('mixtral-8x7b'), h100 = parseCluster('8x8xH100');
  const base = parallelConfig({ dp: 16, tp: 2, pp: 2, ep: 4, globalBatch: 1024, sequenceParallel: true });
  assert.match(validateParallelConfig(m, h100, { ...base, expertOverlapChunks: 0 }) ?? '', /^overlap: expert overlap chunks must be a positive integer, got 0/);
  assert.match(validateParallelConfig(m, h100, { ...base, overlapComputeSlowdown: 1.5 }) ?? '', /^overlap: .*got 1.5/);
  assert.equal(validateParallelConfig(m, h100, { ...base, expertOverlapChunks: 4, overlapComputeSlowdown: 0.1 }), undefined);
});

test('with a compute slowdown, the search keeps each candidate\'s TP and EP overlaps only where they pay', () => {
  const m = modelPreset('mixtral-8x7b'), c = parseCluster('8x8xH100');
  const opts = { globalBatch: 1024, top: 5, zeroStages: [1] as const, recompute: ['selective'] as const, overlapTensorParallelComm: true, overlapExpertParallelComm: true };
  for (const overlapComputeSlowdown of [0.05, 0.5]) {
    const r = searchParallelConfigs(m, conv, c, { ...opts, overlapComputeSlowdown });
    for (const { config, step } of r.ranked) {
      // The step is the fastest of the four on/off variants of the config.
      const variants = [true, false].flatMap((tp) => [true, false].map((ep) => stepTime(m, conv, c, { ...config, overlapTensorParallelComm: tp, overlapExpertParallelComm: ep }).seconds));
      near(step.seconds, Math.min(...variants));
    }
    if (overlapComputeSlowdown === 0.5) {
      // GEMMs half again as slow: no overlap hides that much here, so the winners run without them.
      assert.ok(r.ranked.some((x) => !x.config.overlapTensorParallelComm || !x.config.overlapExpertParallelComm));
    }
  }
  // Without a slowdown the overlaps asked for stay on in every candidate.
  const free = searchParallelConfigs(m, conv, c, { ...opts, overlapComputeSlowdown: 0 });
  assert.ok(free.ranked.every((x) => x.config.overlapTensorParallelComm && x.config.overlapExpertParallelComm));
});

test('describe and advise say which overlaps the prediction assumes', () => {
  const text = describeParallelConfig({ ...megatron, overlapTensorParallelComm: true, overlapPipelineComm: true, overlapComputeSlowdown: 0.05 });
  assert.match(text, /TP communication overlapped with GEMMs/);
  assert.match(text, /PP transfers overlapped/);
  assert.match(text, /overlapped GEMMs 5% slower/);
  assert.match(describeParallelConfig({ ...megatron, sequenceParallel: false, overlapTensorParallelComm: true }), /TP backward all-reduce overlapped/);
  assert.match(describeParallelConfig(parallelConfig({ dp: 8, ep: 4, overlapExpertParallelComm: true, expertOverlapChunks: 4 })), /EP all-to-all overlapped \(4 chunks\)/);
  // Flags that cannot apply are not named: no interleaving, no PP overlap.
  assert.doesNotMatch(describeParallelConfig({ ...megatron, interleave: 1, overlapPipelineComm: true }), /PP transfers/);
  const a = advise(gpt3, conv, a100s, { overlaps: { overlapTensorParallelComm: true, overlapPipelineComm: true } });
  const last = a.steps[a.steps.length - 1]!;
  assert.ok(a.recommendation?.overlapTensorParallelComm);
  assert.match(last.numbers['communication hidden under compute'] ?? '', /^\d+\.\d\d s$/);
});
