// Mixed-precision step times of two source trees of tessera, measured in one process with their steps
// alternating (A, B, B, A, ...), so that both see the same load: on a shared, noisy machine two
// separate runs of bench/amp.ts differ by more than the change being measured. Reports each tree's
// median ms/step and the median of the per-step ratios B/A.
//
//   ROOTS=/path/to/before,/path/to/after node --import tsx bench/amp-paired.ts [--steps=N] [--recipes=a,b] [--modes=fp32,bf16,fp16]
//
// Each tree is imported from its own src/ (its own module instances and wasm heap, TESSERA_THREADS
// threads each; the idle tree's workers sleep). The step is bench/amp.ts's: forward and loss under
// autocast (not for fp32), backward, [unscale, clip,] step, one number read.
import type * as Tessera from '../src/index.js';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
const roots = (process.env.ROOTS ?? '').split(',').filter(Boolean);
if (roots.length !== 2) throw new Error('bench/amp-paired.ts: set ROOTS to two tessera checkouts, comma separated (before,after)');
const steps = Number(args.get('steps') ?? 20);
const recipeNames = (args.get('recipes') ?? 'mnist-mlp,char-gpt').split(',');
const modes = (args.get('modes') ?? 'fp32,bf16,fp16').split(',') as ('fp32' | 'bf16' | 'fp16')[];

interface Tree {
  t: typeof Tessera;
  recipes: typeof import('../src/train/recipes/index.js').recipes;
  buildTask: typeof import('../src/train/trainer.js').buildTask;
  quant: typeof import('../src/quant/index.js');
  clipGradNorm: typeof import('../src/optim/clip.js').clipGradNorm;
}

const trees: Tree[] = [];
for (const root of roots) {
  const t = await import(`${root}/src/index.ts`) as typeof Tessera;
  const { selectBackend } = await import(`${root}/src/train/cli-options.ts`) as typeof import('../src/train/cli-options.js');
  await selectBackend('wasm');
  trees.push({
    t,
    recipes: (await import(`${root}/src/train/recipes/index.ts`)).recipes,
    buildTask: (await import(`${root}/src/train/trainer.ts`)).buildTask,
    quant: await import(`${root}/src/quant/index.ts`),
    clipGradNorm: (await import(`${root}/src/optim/clip.ts`)).clipGradNorm,
  });
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function stepper(tr: Tree, recipeName: string, mode: 'fp32' | 'bf16' | 'fp16'): Promise<() => Promise<number>> {
  const recipe = tr.recipes[recipeName]!;
  const batchSize = recipeName === 'char-gpt' ? 32 : 64;
  const task = await tr.buildTask(recipe, { epochs: 1, batchSize, lr: recipe.defaults.lr, seed: 0, trainLimit: batchSize * (steps + 3) });
  const batches = task.loader[Symbol.asyncIterator]();
  const dtype = mode === 'bf16' ? 'bfloat16' : 'float16';
  const scaler = new tr.quant.GradScaler({ enabled: mode === 'fp16' });
  const params = task.model.parameters();
  task.model.train();
  return async () => {
    const { value: batch } = await batches.next() as { value: Tessera.Tensor[] };
    const started = performance.now();
    tr.t.scope(() => {
      for (const p of params) { p.grad?.dispose(); p.grad = undefined; }
      const r = mode === 'fp32' ? task.lossOf(batch) : tr.quant.autocast({ dtype }, () => task.lossOf(batch));
      tr.t.backward(scaler.scale(r.loss));
      for (const p of params) if (p.grad !== undefined) tr.t.keep(p.grad);
      if (task.clipGradNorm !== undefined) { scaler.unscale_(task.optimizer); tr.clipGradNorm(params, task.clipGradNorm); }
      scaler.step(task.optimizer);
      scaler.update();
      r.loss.item();
    });
    const ms = performance.now() - started;
    for (const x of batch) x.dispose();
    return ms;
  };
}

for (const name of recipeNames) {
  for (const mode of modes) {
    const runs = await Promise.all(trees.map(async (tr) => ({ step: await stepper(tr, name, mode), times: [] as number[] })));
    for (let i = 0; i < steps + 2; i++) {
      for (const r of i % 2 === 0 ? runs : [...runs].reverse()) {
        const ms = await r.step();
        if (i >= 2) r.times.push(ms);
      }
    }
    const ratio = median(runs[1]!.times.map((x, i) => x / runs[0]!.times[i]!));
    console.log(`${name.padEnd(10)} ${mode}  A ${median(runs[0]!.times).toFixed(1).padStart(7)}  B ${median(runs[1]!.times).toFixed(1).padStart(7)} ms/step  B/A ${ratio.toFixed(3)}`);
  }
}
process.exit(0);
