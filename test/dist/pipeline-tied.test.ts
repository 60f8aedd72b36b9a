// Pipeline parallelism of a GPT whose head is tied to its token embedding (gpt.pipelineStage +
// PipelineParallel's tiedParameters): the first and last stages each hold a copy of the embedding,
// made equal at the first step and given the sum of both stages' gradients after each step, so
// training equals one process training the whole GPT (float64, within 1e-12). Without the tie the
// copies drift apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as t from '../../src/index.js';
import { runThreadRanks } from '../../src/dist/index.js';
import type { TiedPipeArgs, TiedStageResult } from './fixtures/pipeline-gpt-ranks.js';
import { gptBatch, gptBatchOf, gptLoss, makeGpt, makeGptOptimizer } from './fixtures/fsdp-gpt-ranks.js';

const ranksModule = new URL('./fixtures/pipeline-gpt-ranks.ts', import.meta.url);

async function runStages(worldSize: number, args: TiedPipeArgs): Promise<TiedStageResult[]> {
  return runThreadRanks<TiedPipeArgs, TiedStageResult>({ worldSize, module: ranksModule, exportName: 'trainTiedStage', args });
}

/** The whole GPT in one process on whole batches: its parameters by name, and the losses. */
function trainWhole(args: TiedPipeArgs): { params: Map<string, number[]>; losses: number[] } {
  t.setBackend('cpu');
  const gpt = makeGpt(5);
  const optimizer = makeGptOptimizer(args.optimizer, gpt.parameters());
  const losses: number[] = [];
  const batches = args.accumulateSteps === true ? 2 : 1;
  for (let step = 0; step < args.steps; step++) {
    optimizer.zeroGrad();
    for (let k = 0; k < batches; k++) {
      const { x, y } = gptBatchOf(batches * step + k, 0, gptBatch);
      const loss = gptLoss(gpt.forward(x), y);
      loss.backward();
      losses.push(loss.item());
    }
    optimizer.step();
  }
  return { params: new Map([...gpt.namedParameters()].map(([name, p]) => [name, Array.from(p.data())])), losses };
}

function maxDiff(a: readonly number[], b: readonly number[]): number {
  assert.equal(a.length, b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

function assertMatchesWhole(stages: TiedStageResult[], whole: ReturnType<typeof trainWhole>, what: string): void {
  const seen = new Set<string>();
  for (const [rank, r] of stages.entries()) {
    for (const [name, values] of r.params) {
      const d = maxDiff(values, whole.params.get(name)!);
      assert.ok(d < 1e-12, `${what}: rank ${rank}'s ${name} differs from one process by ${d}`);
      seen.add(name);
    }
  }
  assert.deepEqual([...seen].sort(), [...whole.params.keys()].sort(), `${what}: the stages hold every parameter`);
  const last = stages[stages.length - 1]!;
  const d = maxDiff(last.losses, whole.losses);
  assert.ok(d < 1e-12, `${what}: losses differ by ${d}`);
  assert.deepEqual(stages[0]!.embedding, last.embedding, `${what}: the two copies of the embedding are equal`);
}

const cases: [number, TiedPipeArgs][] = [
  [2, { schedule: '1f1b', optimizer: 'adam', steps: 3, microBatches: 3, tie: true }],
  [3, { schedule: '1f1b', optimizer: 'sgd', steps: 3, microBatches: 2, tie: true, seedRank: 2 }],
  [2, { schedule: 'zb-h1', optimizer: 'adam', steps: 3, microBatches: 3, tie: true }],
  [2, { schedule: 'gpipe', optimizer: 'sgd', steps: 2, microBatches: 2, tie: true, accumulateSteps: true }],
];
for (const [ranks, args] of cases) {
  const what = `${ranks} stages, ${args.schedule}, ${args.optimizer}${args.seedRank !== undefined ? ', last stage built from another seed' : ''}${args.accumulateSteps ? ', two pipeline steps per optimizer step' : ''}`;
  test(`a tied GPT pipelined over ${what} = one process`, { timeout: 120_000 }, async () => {
    const stages = await runStages(ranks, args);
    assertMatchesWhole(stages, trainWhole(args), what);
    assert.deepEqual(stages[0]!.holders, [0, ranks - 1]);
    assert.deepEqual(stages[ranks - 1]!.holders, [0, ranks - 1]);
  });
}

test('without tiedParameters the embedding\'s two copies drift apart (each stage trains its own)', { timeout: 120_000 }, async () => {
  const stages = await runStages(2, { schedule: '1f1b', optimizer: 'sgd', steps: 2, microBatches: 2, tie: false });
  assert.ok(maxDiff(stages[0]!.embedding!, stages[1]!.embedding!) > 1e-4);
});

test('GPT.pipelineStage splits the parts evenly and lists the tie on the first and last stage only; bad stages are refused', () => {
  t.setBackend('cpu');
  t.manualSeed(1);
  const gpt = new t.nn.GPT({ vocabSize: 11, blockSize: 4, embedDim: 8, numHeads: 2, numLayers: 5 });
  // 7 parts: [embeddings, block 0, block 1], [block 2, block 3], [block 4, ln_f + head].
  const stages = [0, 1, 2].map((s) => gpt.pipelineStage(s, 3));
  assert.deepEqual(stages.map((s) => s.module.parameters().length), [2 + 2 * 12, 2 * 12, 12 + 3]);
  assert.deepEqual(stages.map((s) => s.tied.map((x) => x.name)), [['gpt.wte.weight'], [], ['gpt.wte.weight']]);
  assert.equal(stages[2]!.tied[0]!.parameter, gpt.wte.weight);
  assert.throws(() => gpt.pipelineStage(3, 3), /stage must be an integer in \[0, 3\)/);
  assert.throws(() => gpt.pipelineStage(0, 8), /stages must be an integer from 1 to 7/);
  // One stage: the whole GPT, its tie inside it.
  assert.equal(gpt.pipelineStage(0, 1).module.parameters().length, gpt.parameters().length);
});
