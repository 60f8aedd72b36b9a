// One small transformer block trained four ways on 2 worker threads, each compared with one
// process training it on whole batches: data parallelism (DistributedDataParallel), ZeRO-2
// (ZeroOptimizer), a 2-stage 1F1B pipeline (PipelineParallel) and Megatron tensor parallelism
// (TensorParallelAttention + TensorParallelMLP in a ParallelStack).
// Run: npx tsx examples/parallel-training.ts
import { isMainThread } from 'node:worker_threads';
import * as t from '../src/index.js';
import { dist, nn, optim, type Tensor } from '../src/index.js';

const E = 16, HEADS = 4, B = 8, T = 6, STEPS = 10, LR = 0.05;

/** x + attention(LN(x)), then + MLP(LN(·)), then a linear head to one number per position. */
class Block extends nn.Module {
  ln1 = new nn.LayerNorm([E], { dtype: 'float64' });
  attn = new nn.MultiheadAttention(E, HEADS, { dtype: 'float64' });
  ln2 = new nn.LayerNorm([E], { dtype: 'float64' });
  fc1 = new nn.Linear(E, 4 * E, { dtype: 'float64' });
  fc2 = new nn.Linear(4 * E, E, { dtype: 'float64' });
  head = new nn.Linear(E, 1, { dtype: 'float64' });
  attention(x: Tensor): Tensor {
    return x.add(this.attn.call(this.ln1.call(x), undefined, undefined, { isCausal: true }));
  }
  mlpAndHead(h: Tensor): Tensor {
    return this.head.call(h.add(this.fc2.call(t.gelu(this.fc1.call(this.ln2.call(h))))));
  }
  override forward(x: Tensor): Tensor {
    return this.mlpAndHead(this.attention(x));
  }
}

/** The same model on every rank: same backend, same seed. */
function makeBlock(): Block {
  t.setBackend('cpu');
  t.manualSeed(1);
  return new Block();
}

/** Pipeline stages as modules over the block's layers. */
class FirstHalf extends nn.Module {
  constructor(readonly block: Block) { super(); }
  override forward(x: Tensor): Tensor { return this.block.attention(x); }
}
class SecondHalf extends nn.Module {
  constructor(readonly block: Block) { super(); }
  override forward(h: Tensor): Tensor { return this.block.mlpAndHead(h); }
}

/** Step `step`'s batch (rows [from, from + count) of it): random sequences; the target is the running mean of their first feature. */
function batch(step: number, from = 0, count = B): { x: Tensor; y: Tensor } {
  const x = t.randn([B, T, E], { generator: new t.Generator(100 + step), dtype: 'float64' });
  const y = t.div(t.cumsum(t.narrow(x, 2, 0, 1), 1), t.reshape(t.arange(1, T + 1, 1, { dtype: 'float64' }), [1, T, 1]));
  return { x: t.narrow(x, 0, from, count).contiguous(), y: t.narrow(y, 0, from, count).contiguous() };
}
const rows = (v: Tensor, from: number, count: number) => t.narrow(v, 0, from, count).contiguous();

/** What every rank runs, in its worker thread; returns the loss of each step as this rank sees it. */
export async function rank({ rank: r, args }: dist.ThreadRankContext<{ mode: string }>): Promise<number[]> {
  const pg = await dist.initProcessGroup();
  const block = makeBlock();
  const losses: number[] = [];
  const half = B / 2;
  if (args.mode === 'data parallel') {
    // Each rank: its half of every batch; gradients averaged before each step.
    const ddp = await dist.DistributedDataParallel.create(block, pg);
    const opt = new optim.SGD(ddp.parameters(), { lr: LR });
    for (let s = 0; s < STEPS; s++) {
      const { x, y } = batch(s, r * half, half);
      opt.zeroGrad();
      const loss = t.mseLoss(ddp.call(x), y);
      loss.backward();
      await ddp.syncGradients();
      opt.step();
      losses.push(loss.item());
    }
  } else if (args.mode === 'ZeRO-2') {
    // The same, with each rank keeping the optimizer state and gradients of half the parameters.
    const zero = await dist.ZeroOptimizer.create(block, pg, (shards) => new optim.SGD(shards, { lr: LR }), { stage: 2 });
    for (let s = 0; s < STEPS; s++) {
      const { x, y } = batch(s, r * half, half);
      zero.zeroGrad();
      const loss = t.mseLoss(block.call(x), y);
      loss.backward();
      await zero.step();
      losses.push(loss.item());
    }
  } else if (args.mode === 'pipeline') {
    // Rank 0 runs the attention half, rank 1 the MLP and the head; 4 micro-batches of 2 sequences.
    const stage = r === 0 ? new FirstHalf(block) : new SecondHalf(block);
    const opt = new optim.SGD(r === 0 ? [...block.ln1.parameters(), ...block.attn.parameters()]
      : [block.ln2, block.fc1, block.fc2, block.head].flatMap((m) => m.parameters()), { lr: LR });
    const pipe = new dist.PipelineParallel(stage, pg, { microBatches: 4 });
    for (let s = 0; s < STEPS; s++) {
      const { x, y } = batch(s);
      opt.zeroGrad();
      const loss = await pipe.step({
        inputs: pipe.isFirst ? [0, 1, 2, 3].map((i) => rows(x, 2 * i, 2)) : undefined,
        loss: pipe.isLast ? (out, i) => t.mseLoss(out, rows(y, 2 * i, 2)) : undefined,
      });
      opt.step();
      if (loss !== undefined) losses.push(loss);
    }
  } else {
    // Each rank: half the heads and half the MLP's hidden units; whole batches.
    const stack = new dist.ParallelStack([
      dist.TensorParallelAttention.fromModules(block.ln1, block.attn, pg, { causal: true }),
      dist.TensorParallelMLP.fromModules(block.ln2, block.fc1, block.fc2, pg),
      block.head,
    ]);
    const opt = new optim.SGD(stack.parameters(), { lr: LR });
    for (let s = 0; s < STEPS; s++) {
      const { x, y } = batch(s);
      opt.zeroGrad();
      const loss = t.mseLoss(await stack.forward(x), y);
      await stack.backward(loss);
      opt.step();
      losses.push(loss.item());
    }
  }
  await pg.destroy();
  return losses;
}

if (isMainThread) {
  const block = makeBlock();
  const opt = new optim.SGD(block.parameters(), { lr: LR });
  const reference: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const { x, y } = batch(s);
    opt.zeroGrad();
    const loss = t.mseLoss(block.call(x), y);
    loss.backward();
    opt.step();
    reference.push(loss.item());
  }
  console.log(`one process, whole batches: loss ${reference[0]!.toFixed(4)} -> ${reference[STEPS - 1]!.toFixed(4)}`);
  for (const mode of ['data parallel', 'ZeRO-2', 'pipeline', 'tensor parallel']) {
    const [a, b] = await dist.runThreadRanks<{ mode: string }, number[]>({ worldSize: 2, module: new URL(import.meta.url), exportName: 'rank', args: { mode } });
    // Data-parallel ranks each see half of every batch: the mean of their losses is the batch's.
    const losses = mode === 'data parallel' || mode === 'ZeRO-2' ? a!.map((l, i) => (l + b![i]!) / 2) : mode === 'pipeline' ? b! : a!;
    const worst = Math.max(...losses.map((l, i) => Math.abs(l - reference[i]!)));
    console.log(`${mode.padEnd(15)} on 2 threads: loss ${losses[0]!.toFixed(4)} -> ${losses[STEPS - 1]!.toFixed(4)}; largest difference from one process ${worst.toExponential(1)}`);
  }
}
