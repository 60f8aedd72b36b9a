// FullyShardedDataParallel with a parameter shared by two units: a GPT whose head is tied to its
// token embedding, cut into [embeddings, block 0, block 1, ln_f + head]. Against one float64
// process on whole batches and against DDP on the same rows; the shared weight sharded once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as t from '../../src/index.js';
import { runThreadRanks } from '../../src/dist/index.js';
import { maxDifference } from './data-parallel-reference.js';
import {
  gptBatchOf, gptConfig, gptLoss, makeGpt, makeGptOptimizer, type GptOptimizer, type GptRun, type GptRunSpec, type PlainModelState,
} from './fixtures/fsdp-gpt-ranks.js';
import type { PlainState } from './fixtures/ddp-ranks.js';

const ranksModule = new URL('./fixtures/fsdp-gpt-ranks.ts', import.meta.url);
const steps = 4;
const tolerance = 1e-12;

interface Reference {
  /** The whole batch's loss at every step. */
  losses: number[];
  /** After `steps` steps: parameters, the model's state dict, the optimizer's; after 2·steps: parameters. */
  params: number[][];
  model: PlainModelState;
  optimizer: PlainState;
  finalParams: number[][];
}

const references = new Map<GptOptimizer, Reference>();
/** One process, whole batches, 2·steps steps of the plain GPT. */
function reference(kind: GptOptimizer): Reference {
  const known = references.get(kind);
  if (known !== undefined) return known;
  const previous = t.currentBackendName();
  t.setBackend('cpu');
  try {
    const gpt = makeGpt(100);
    const optimizer = makeGptOptimizer(kind, gpt.parameters());
    const losses: number[] = [];
    let midway: Omit<Reference, 'losses' | 'finalParams'> | undefined;
    for (let step = 0; step < 2 * steps; step++) {
      const { x, y } = gptBatchOf(step);
      optimizer.zeroGrad();
      const loss = gptLoss(gpt.call(x), y);
      losses.push(loss.item());
      loss.backward();
      optimizer.step();
      if (step === steps - 1) {
        midway = {
          params: gpt.parameters().map((p) => Array.from(p.data())),
          model: [...gpt.stateDict()].map(([k, v]) => [k, Array.from(v.data())]),
          optimizer: Object.fromEntries(Object.entries(optimizer.stateDict().state).map(([i, st]) =>
            [i, Object.fromEntries(Object.entries(st).map(([k, v]) => [k, typeof v === 'number' ? v : Array.from(v.data())]))])),
        };
      }
    }
    const result = { ...midway!, losses, finalParams: gpt.parameters().map((p) => Array.from(p.data())) };
    references.set(kind, result);
    return result;
  } finally {
    t.setBackend(previous);
  }
}

/** The ranks' mean loss per step (equal shares: the whole batch's loss). */
function meanLosses(runs: GptRun[], key: 'losses' | 'ddpLosses'): number[] {
  return runs[0]![key].map((_, j) => runs.reduce((s, r) => s + r[key][j]!, 0) / runs.length);
}

function checkOptimizerState(got: PlainState, want: PlainState, what: string): void {
  assert.deepEqual(Object.keys(got), Object.keys(want), `${what}: parameter indices`);
  for (const [i, st] of Object.entries(want)) {
    assert.deepEqual(Object.keys(got[i]!).sort(), Object.keys(st).sort(), `${what}: state ${i}`);
    for (const [key, v] of Object.entries(st)) {
      if (typeof v === 'number') assert.equal(got[i]![key], v, `${what}: state ${i}.${key}`);
      else assert.ok(maxDifference([got[i]![key] as number[]], [v]) < tolerance, `${what}: state ${i}.${key}`);
    }
  }
}

/** Runs from step 0 (rank-major: runs[rank][run]) against one process and DDP, and the shared weight's shards. */
function checkFromScratch(perRank: GptRun[][], run: number, worldSize: number): void {
  const runs = perRank.map((r) => r[run]!);
  const { optimizer, units } = runs[0]!.spec;
  const what = `${worldSize} ranks, ${optimizer}, ${units}`;
  const ref = reference(optimizer);
  const n = makeGpt(0).parameterCount();
  assert.ok(maxDifference([meanLosses(runs, 'losses')], [ref.losses.slice(0, steps)]) < tolerance, `${what}: losses`);
  assert.ok(maxDifference([meanLosses(runs, 'ddpLosses')], [ref.losses.slice(0, steps)]) < tolerance, `${what}: DDP's losses`);
  assert.equal(runs.reduce((s, r) => s + r.shardElements, 0), n, `${what}: the shards add up to the model (the tied weight once)`);
  for (const r of runs) {
    assert.equal(r.params.length, ref.params.length);
    const diff = maxDifference(r.params, ref.params);
    assert.ok(diff < tolerance, `${what}: parameters differ from one process's by ${diff}`);
    assert.ok(maxDifference(r.params, r.ddpParams) < tolerance, `${what}: parameters differ from DDP's`);
    // The model's own state dict after gatherParameters(): the plain model's keys, tied ones included.
    assert.deepEqual(r.checkpoint.model.map(([k]) => k), ref.model.map(([k]) => k), `${what}: state-dict keys`);
    assert.ok(r.checkpoint.model.some(([k]) => k === 'head.weight'));
    assert.ok(maxDifference(r.checkpoint.model.map(([, v]) => v), ref.model.map(([, v]) => v)) < tolerance, `${what}: state-dict values`);
    checkOptimizerState(r.checkpoint.optimizer, ref.optimizer, what);
    assert.ok(r.freed, `${what}: the GPT's own parameter tensors (head included) are freed between steps`);
    assert.ok(Math.abs(r.shardElements - n / worldSize) <= 5, `${what}: keeps ${r.shardElements} of ${n}`);
  }
  if (units === 'parts') {
    const elements = gptConfig.vocabSize * gptConfig.embedDim;
    for (const r of runs) {
      const shared = r.shared!;
      assert.deepEqual([shared.users, shared.names, shared.elements], [[0, 3], ['wte.weight'], elements]);
      assert.ok(Math.abs(shared.shardElements - elements / worldSize) <= 1, `${what}: shared shard of ${shared.shardElements} of ${elements}`);
      assert.equal(shared.stateElements, (optimizer === 'adam' ? 2 : 1) * shared.shardElements, `${what}: optimizer state of the shared shard`);
    }
    assert.equal(runs.reduce((s, r) => s + r.shared!.shardElements, 0), elements);
  }
}

const scratch = (optimizer: GptOptimizer, units: 'parts' | 'whole' = 'parts'): GptRunSpec => ({ optimizer, units, firstStep: 0, steps });

// The 3-rank runs are shared by both tests: the second resumes the Adam run's checkpoint on 2 ranks.
let threeRanks: Promise<GptRun[][]> | undefined;
const onThreeRanks = (): Promise<GptRun[][]> => (threeRanks ??= runThreadRanks<{ runs: GptRunSpec[] }, GptRun[]>({
  worldSize: 3, module: ranksModule, exportName: 'trainGptRuns', args: { runs: [scratch('sgd'), scratch('adam')] },
}));

test('FSDP, tied GPT head shared by the first and last unit, 3 ranks, SGD and Adam: float64 = one process and DDP; the tied weight sharded once, 1/3 per rank with its optimizer state; consolidated model and optimizer state = one process\'s', { timeout: 180_000 }, async () => {
  const perRank = await onThreeRanks();
  checkFromScratch(perRank, 0, 3);
  checkFromScratch(perRank, 1, 3);
});

test('FSDP, tied GPT, 2 ranks: SGD, Adam and the GPT as one unit = one process; a 3-rank checkpoint resumed on 2 ranks = one process; with dropout = DDP on the same masks', { timeout: 180_000 }, async () => {
  const saved = (await onThreeRanks())[0]![1]!.checkpoint;
  const runs: GptRunSpec[] = [
    scratch('sgd'), scratch('adam'), scratch('adam', 'whole'),
    { optimizer: 'adam', units: 'parts', firstStep: steps, steps, resume: saved },
    { ...scratch('adam'), dropout: 0.2 },
  ];
  const perRank = await runThreadRanks<{ runs: GptRunSpec[] }, GptRun[]>({ worldSize: 2, module: ranksModule, exportName: 'trainGptRuns', args: { runs } });
  checkFromScratch(perRank, 0, 2);
  checkFromScratch(perRank, 1, 2);
  checkFromScratch(perRank, 2, 2);
  const ref = reference('adam');
  const resumed = perRank.map((r) => r[3]!);
  assert.ok(maxDifference([meanLosses(resumed, 'losses')], [ref.losses.slice(steps)]) < tolerance, 'resumed: losses');
  for (const r of resumed) {
    const diff = maxDifference(r.params, ref.finalParams);
    assert.ok(diff < tolerance, `resumed on 2 ranks from a 3-rank checkpoint: parameters differ from one process's by ${diff}`);
  }
  // Dropout: each unit's recomputation replays the masks its forward drew (= DDP seeded alike).
  for (const r of perRank.map((rr) => rr[4]!)) {
    assert.ok(maxDifference([r.losses], [r.ddpLosses]) < tolerance, 'dropout: losses differ from DDP\'s');
    const diff = maxDifference(r.params, r.ddpParams);
    assert.ok(diff < tolerance, `dropout: parameters differ from DDP's by ${diff}`);
  }
  // The masks matter: without them the run would be plain Adam's.
  assert.ok(maxDifference(perRank[0]![4]!.params, ref.params) > 1e-6);
});

test('GPT.parts() composes to the GPT\'s forward and holds its layers (head tied to wte across the first and last part)', () => {
  const gpt = makeGpt(5);
  const parts = gpt.parts();
  assert.equal(parts.length, gptConfig.numLayers + 2);
  const { x } = gptBatchOf(0);
  let h = x;
  for (const part of parts) h = part.call(h);
  assert.deepEqual(h.toArray(), gpt.call(x).toArray());
  const first = new Set(parts[0]!.parameters());
  assert.ok(parts[parts.length - 1]!.parameters().some((p) => first.has(p)), 'the head\'s weight is the embedding\'s');
  assert.equal(parts.reduce((n, p) => n + p.parameterCount(), 0), gpt.parameterCount() + gptConfig.vocabSize * gptConfig.embedDim);
  assert.throws(() => parts[0]!.call(t.zeros([1, 5], { dtype: 'int32' })), /exceeds blockSize 4/);
});
