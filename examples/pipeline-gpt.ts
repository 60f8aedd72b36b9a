// tessera's GPT, whose output head is tied to its token embedding, trained as a 2-stage pipeline
// on 2 worker threads next to one process training it whole: `gpt.pipelineStage` cuts the GPT into
// stages (the embeddings on the first, ln_f and the tied head on the last) and lists the tie, and
// PipelineParallel's `tiedParameters` keeps the two ranks' copies of the embedding one parameter
// (equal at the start, their gradients summed after each step, as Megatron-LM's embedding group).
// Character-level, on a few lines of text held here; float64, so the two runs agree to ~1e-12.
// Run: npx tsx examples/pipeline-gpt.ts [zb-h1|1f1b|gpipe]
import { isMainThread } from 'node:worker_threads';
import * as t from '../src/index.js';
import { dist, nn, optim, type Tensor } from '../src/index.js';

const TEXT = `First Citizen:
Before we proceed any further, hear me speak.
All:
Speak, speak.
First Citizen:
You are all resolved rather to die than to famish?
All:
Resolved. resolved.
`;
const CHARS = [...new Set(TEXT)].sort();
const BLOCK = 16, BATCH = 8, MICRO = 4, STEPS = 30;

function makeGpt(): nn.GPT {
  t.setBackend('cpu');
  t.manualSeed(7);
  return new nn.GPT({ vocabSize: CHARS.length, blockSize: BLOCK, embedDim: 32, numHeads: 4, numLayers: 4 }, { dtype: 'float64' });
}

/** Step `step`'s sequences: BATCH windows of the text and the next character of each position. */
function batch(step: number): { x: Tensor; y: Tensor } {
  const ids = [...TEXT].map((c) => CHARS.indexOf(c));
  const starts = Array.from({ length: BATCH }, (_, b) => (step * 37 + b * 13) % (ids.length - BLOCK - 1));
  const x = t.tensor(starts.map((s) => ids.slice(s, s + BLOCK)), { dtype: 'int32' });
  const y = t.tensor(starts.map((s) => ids.slice(s + 1, s + BLOCK + 1)), { dtype: 'int32' });
  return { x, y };
}
const lossOf = (logits: Tensor, y: Tensor): Tensor => t.crossEntropy(nn.flattenLogits(logits), y.reshape([-1]));
const rows = (v: Tensor, i: number): Tensor => t.narrow(v, 0, i * (BATCH / MICRO), BATCH / MICRO).contiguous();

/** Each rank, in its worker thread: its stage of the same GPT; returns the loss of each step (last stage). */
export async function rank({ rank: r, worldSize, args }: dist.ThreadRankContext<{ schedule: dist.PipelineSchedule }>): Promise<{ losses: number[]; embedding: number[] }> {
  const pg = await dist.initProcessGroup();
  const gpt = makeGpt();
  const { module, tied } = gpt.pipelineStage(r, worldSize);
  const pipe = new dist.PipelineParallel(module, pg, { microBatches: MICRO, schedule: args.schedule, tiedParameters: tied });
  const opt = new optim.AdamW(module.parameters(), { lr: 3e-3 });
  const losses: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const { x, y } = batch(s);
    opt.zeroGrad();
    const loss = await pipe.step({
      inputs: pipe.isFirst ? Array.from({ length: MICRO }, (_, i) => rows(x, i)) : undefined,
      loss: pipe.isLast ? (out, i) => lossOf(out, rows(y, i)) : undefined,
    });
    opt.step();
    if (loss !== undefined) losses.push(loss);
  }
  const embedding = Array.from(tied[0]!.parameter.data());
  await pg.destroy();
  return { losses, embedding };
}

if (isMainThread) {
  const schedule = (process.argv[2] ?? 'zb-h1') as dist.PipelineSchedule;
  const gpt = makeGpt();
  const opt = new optim.AdamW(gpt.parameters(), { lr: 3e-3 });
  const reference: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const { x, y } = batch(s);
    opt.zeroGrad();
    const loss = lossOf(gpt.forward(x), y);
    loss.backward();
    opt.step();
    reference.push(loss.item());
  }
  const [first, last] = await dist.runThreadRanks<{ schedule: dist.PipelineSchedule }, { losses: number[]; embedding: number[] }>({
    worldSize: 2, module: new URL(import.meta.url), exportName: 'rank', args: { schedule },
  });
  const worst = Math.max(...last!.losses.map((l, i) => Math.abs(l - reference[i]!)));
  const drift = Math.max(...first!.embedding.map((v, i) => Math.abs(v - last!.embedding[i]!)));
  const whole = Array.from(gpt.wte.weight.data());
  const off = Math.max(...first!.embedding.map((v, i) => Math.abs(v - whole[i]!)));
  console.log(`one process:         loss ${reference[0]!.toFixed(4)} -> ${reference[STEPS - 1]!.toFixed(4)}`);
  console.log(`2-stage ${schedule.padEnd(6)} pipeline: loss ${last!.losses[0]!.toFixed(4)} -> ${last!.losses[STEPS - 1]!.toFixed(4)}, `
    + `largest loss difference ${worst.toExponential(1)}`);
  console.log(`the embedding's two copies differ by ${drift.toExponential(1)}, and from one process's by ${off.toExponential(1)}`);
}
