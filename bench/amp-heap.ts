// The wasm heap bytes that mixed precision takes, read from the heap's allocator (not from
// memoryStats' itemsize accounting): the parameters' blocks, and one training step's peak above what
// was in use when the step began, for the mnist-mlp and char-gpt recipes on the wasm backend.
//
//   node --import tsx bench/amp-heap.ts [--out=bench/results]
//
// Modes: fp32 (float32 model, plain step); autocast-bf16 (float32 model, forward and loss under
// autocast, as `tessera train --amp bf16`); bf16-model (Module.to('bfloat16'), float32 master
// weights and Adam state in quant.MasterWeightOptimizer, inputs cast to bfloat16). The step measured
// is the third (the optimizer state exists by then);
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { recipes } from '../src/train/recipes/index.js';
import { buildTask } from '../src/train/trainer.js';
import { selectBackend } from '../src/train/cli-options.js';
import { autocast, MasterWeightOptimizer } from '../src/quant/index.js';
import { Adam } from '../src/optim/index.js';
import { isFloating } from '../src/core/dtype.js';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
const outDir = args.get('out') ?? 'bench/results';

await selectBackend('wasm');
const heap = t.wasmBackend.heap;

/** Bytes of the heap blocks holding the parameters (each storage once). */
function parameterHeapBytes(params: readonly Tensor[]): number {
  const storages = new Set(params.map((p) => p.storage));
  let bytes = 0;
  for (const s of storages) bytes += heap.blockSize(t.wasmBackend.addressOf(s));
  return bytes;
}

interface Row { recipe: string; mode: string; paramBytes: number; stepPeakBytes: number; loss: number }

async function measure(recipeName: string, mode: 'fp32' | 'autocast-bf16' | 'bf16-model', options: { batchSize: number; trainLimit?: number }): Promise<Row> {
  const recipe = recipes[recipeName]!;
  const task = await buildTask(recipe, { epochs: 1, batchSize: options.batchSize, lr: recipe.defaults.lr, seed: 0, ...(options.trainLimit ? { trainLimit: options.trainLimit } : {}) });
  let optimizer: { zeroGrad(): void; step(): void } = task.optimizer;
  if (mode === 'bf16-model') {
    task.model.to('bfloat16');
    optimizer = new MasterWeightOptimizer(task.model.parameters(), (masters) => new Adam(masters, { lr: recipe.defaults.lr }));
  }
  const params = task.model.parameters();
  const paramBytes = parameterHeapBytes(params);
  let stepPeakBytes = 0, loss = NaN;
  let i = 0;
  task.model.train();
  for await (const raw of task.loader) {
    if (i >= 3) break;
    const batch = mode === 'bf16-model' ? raw.map((x) => (isFloating(x.dtype) ? x.cast('bfloat16') : x)) : raw;
    const start = heap.stats().bytesInUse;
    heap.resetPeak();
    t.scope(() => {
      optimizer.zeroGrad();
      const r = mode === 'autocast-bf16' ? autocast({ dtype: 'bfloat16' }, () => task.lossOf(batch)) : task.lossOf(batch);
      t.backward(r.loss);
      for (const p of params) if (p.grad !== undefined) t.keep(p.grad);
      optimizer.step();
      loss = r.loss.item();
    });
    stepPeakBytes = heap.stats().peakBytesInUse - start;
    for (const x of new Set([...raw, ...batch])) x.dispose();
    i++;
  }
  return { recipe: recipeName, mode, paramBytes, stepPeakBytes, loss };
}

const rows: Row[] = [];
const MiB = (b: number) => (b / 2 ** 20).toFixed(2);
for (const [name, opts] of [['mnist-mlp', { batchSize: 64, trainLimit: 64 * 4 }], ['char-gpt', { batchSize: 32 }]] as const) {
  for (const mode of ['fp32', 'autocast-bf16', 'bf16-model'] as const) {
    const row = await measure(name, mode, opts);
    rows.push(row);
    console.log(`${row.recipe.padEnd(10)} ${row.mode.padEnd(14)} params ${MiB(row.paramBytes).padStart(7)} MiB  step peak ${MiB(row.stepPeakBytes).padStart(7)} MiB  loss ${row.loss.toFixed(4)}`);
  }
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'amp-heap.json'), JSON.stringify({ rows }, null, 1) + '\n');
