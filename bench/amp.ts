// Mixed precision (quant.autocast, GradScaler) against float32: step time and the memory the tape
// holds for backward, for the mnist-mlp and char-gpt recipes trained eagerly as `tessera train` does
// (forward + loss under autocast, backward, [unscale, clip,] step).
//
//   node --import tsx bench/amp.ts [--backend=wasm|cpu] [--steps=N] [--out=bench/results]
//
// "tape" is the bytes of the distinct storages reachable from the loss's tape (what backward keeps
// alive: saved activations, the casts of the weights, the parameters themselves), counted two ways:
// "accounted" with each dtype's itemsize (2 bytes per float16/bfloat16 element, what memoryStats()
// reports) and "physical" as the backend stores them (Backend.storageBytes: the wasm backend packs
// float16/bfloat16 into 2 bytes per element; the cpu backend keeps them in 4-byte float32 words). Step
// time is the median of timed steps after two warm-up steps, on the backend named (default wasm). On a
// noisy machine, compare two versions with bench/amp-paired.ts instead of two runs of this.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { recipes } from '../src/train/recipes/index.js';
import { buildTask } from '../src/train/trainer.js';
import { selectBackend } from '../src/train/cli-options.js';
import { GradScaler, autocast } from '../src/quant/index.js';
import { clipGradNorm } from '../src/optim/clip.js';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
const backend = args.get('backend') ?? 'wasm';
const steps = Number(args.get('steps') ?? 8);
const outDir = args.get('out') ?? 'bench/results';

function tapeBytes(root: Tensor): { accounted: number; physical: number } {
  const m = t.savedTensorMemory(root);
  return { accounted: m.bytes, physical: m.storedBytes };
}

interface Row { recipe: string; mode: string; msPerStep: number; loss: number; tapeAccounted: number; tapePhysical: number }

async function measure(recipeName: string, mode: 'fp32' | 'bf16' | 'fp16', options: { batchSize: number; trainLimit?: number }): Promise<Row> {
  const recipe = recipes[recipeName]!;
  const task = await buildTask(recipe, { epochs: 1, batchSize: options.batchSize, lr: recipe.defaults.lr, seed: 0, ...(options.trainLimit ? { trainLimit: options.trainLimit } : {}) });
  const dtype = mode === 'bf16' ? 'bfloat16' : 'float16';
  const scaler = new GradScaler({ enabled: mode === 'fp16' });
  const params = task.model.parameters();
  const times: number[] = [];
  let tape = { accounted: 0, physical: 0 };
  let loss = NaN;
  let i = 0;
  task.model.train();
  for await (const batch of task.loader) {
    if (i >= steps + 2) break;
    const started = performance.now();
    t.scope(() => {
      for (const p of params) { p.grad?.dispose(); p.grad = undefined; }
      const r = mode === 'fp32' ? task.lossOf(batch) : autocast({ dtype }, () => task.lossOf(batch));
      if (i === 0) tape = tapeBytes(r.loss);
      t.backward(scaler.scale(r.loss));
      for (const p of params) if (p.grad !== undefined) t.keep(p.grad);
      if (task.clipGradNorm !== undefined) { scaler.unscale_(task.optimizer); clipGradNorm(params, task.clipGradNorm); }
      scaler.step(task.optimizer);
      scaler.update();
      loss = r.loss.item();
    });
    for (const x of batch) x.dispose();
    if (i >= 2) times.push(performance.now() - started);
    i++;
  }
  times.sort((a, b) => a - b);
  return { recipe: recipeName, mode, msPerStep: times[Math.floor(times.length / 2)]!, loss, tapeAccounted: tape.accounted, tapePhysical: tape.physical };
}

await selectBackend(backend);
const rows: Row[] = [];
for (const [name, opts] of [['mnist-mlp', { batchSize: 64, trainLimit: 64 * (steps + 2) }], ['char-gpt', { batchSize: 32 }]] as const) {
  for (const mode of ['fp32', 'bf16', 'fp16'] as const) {
    const row = await measure(name, mode, opts);
    rows.push(row);
    console.log(`${row.recipe.padEnd(10)} ${row.mode}  ${row.msPerStep.toFixed(1).padStart(7)} ms/step  tape ${(row.tapeAccounted / 1024).toFixed(0).padStart(6)} KiB accounted, ${(row.tapePhysical / 1024).toFixed(0).padStart(6)} KiB physical  loss ${row.loss.toFixed(4)}`);
  }
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'amp.json'), JSON.stringify({ backend, threads: process.env.TESSERA_THREADS ?? 'default', steps, rows }, null, 1) + '\n');
const md = [`| recipe | mode | ms/step | tape, accounted (KiB) | tape, physical on ${backend} (KiB) |`, '| --- | --- | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.recipe} | ${r.mode} | ${r.msPerStep.toFixed(1)} | ${(r.tapeAccounted / 1024).toFixed(0)} | ${(r.tapePhysical / 1024).toFixed(0)} |`)];
writeFileSync(join(outDir, 'amp.md'), `Backend ${backend}; \`node --import tsx bench/amp.ts --backend=${backend} --steps=${steps}\`\n\n${md.join('\n')}\n`);
