// `tessera train <recipe>`: trains one of the built-in recipes with a progress bar, evaluates it and
// saves a checkpoint that `tessera eval`, `tessera generate` and `--resume` use.
// Registers cpu and wasm; wasm is the default where WebAssembly SIMD runs (TESSERA_BACKEND overrides).
import { defaultBackendName } from '../backend/default.js';
import { DistributedDataParallel } from '../dist/ddp.js';
import { ZeroOptimizer } from '../dist/zero.js';
import type { Parameter } from '../nn/module.js';
import type { BaseOptions, Optimizer } from '../optim/optimizer.js';
import { readLaunchEnv } from '../dist/env.js';
import { initProcessGroup } from '../dist/init.js';
import type { ProcessGroup } from '../dist/process-group.js';
import { recipes } from '../train/recipes/index.js';
import { train, type TrainOptions } from '../train/trainer.js';
import { numberOption, parseArgs, selectBackend, UsageError } from '../train/cli-options.js';

function usage(): string {
  const lines = [
    'usage: tessera train <recipe> [--epochs N] [--batch-size N] [--lr X] [--seed N] [--backend NAME]',
    '                              [--data DIR] [--out DIR] [--resume DIR|FILE] [--json] [--limit N] [--stop-after N] [--zero 1|2] [--accumulate N]',
    '                              [--checkpoint | --offload] [--amp bf16|fp16] [--jit]',
    '',
    'recipes:',
    ...Object.values(recipes).map((r) => `  ${r.name.padEnd(12)} ${r.summary} (defaults: ${r.defaults.epochs} epochs, batch ${r.defaults.batchSize}, lr ${r.defaults.lr})`),
    '',
    'options:',
    '  --backend NAME   wasm (the default where WebAssembly SIMD runs; TESSERA_THREADS sets its threads), cpu (the reference)',
    '                   or webgpu (the GPU, through Dawn and Vulkan; docs/webgpu.md)',
    '  --out DIR        write DIR/checkpoint.safetensors (model, optimizer, schedule, data order, RNG) at the end',
    '  --resume PATH    continue a checkpoint exactly where it stopped (--epochs may extend the run)',
    '  --json           one JSON object per epoch (loss, accuracy, samplesPerSec, seconds), then a final one',
    '  --data DIR       where a recipe reads its data (fashion-cnn: the Fashion-MNIST IDX files)',
    '  --limit N        train on the first N records only (quick trials)',
    '  --stop-after N   stop after N optimisation steps and save (to try --resume)',
    '  --amp bf16|fp16  mixed precision: forward and loss under autocast in bfloat16 or float16 (matmuls in',
    '                   the half format, softmax/norms/losses in float32; float32 weights and update); fp16',
    '                   adds dynamic loss scaling (docs/mixed-precision.md)',
    '  --accumulate N   run each batch as N micro-batches and step once (gradient accumulation: the',
    '                   batch\'s update with a micro-batch\'s activation memory)',
    '  --jit            compile each training step (t.jit: forward, backward, clipping, optimizer update as one',
    '                   optimized graph, traced on the first step of each batch shape); not with --accumulate',
    '                   or data-parallel runs',
    '  --checkpoint     activation checkpointing (char-gpt): keep each transformer block\'s input only and',
    '                   recompute its activations in backward (less memory, about one more forward)',
    '  --offload        activation offloading (char-gpt): keep what each block saves for backward in host',
    '                   arrays instead of the backend\'s memory (wasm heap, GPU), copied back in backward',
    '',
    'data-parallel: run it under `tessera run --nproc-per-node N` (e.g. `npx tessera run --nproc-per-node 2',
    'bin/tessera.js train mnist-mlp` from a clone): every rank takes its share of each batch and',
    'gradients are averaged before each step, as one process training on whole batches; rank 0 reports',
    'and writes the checkpoint. Set TESSERA_THREADS so that ranks × threads fits the cores.',
    '  --zero 1|2       shard the optimizer state (and with 2 the gradients) over the ranks (ZeRO); the',
    '                   checkpoint holds the whole state, so either kind of run can resume it',
  ];
  return lines.join('\n');
}

export async function run(args: string[]): Promise<number> {
  try {
    const p = parseArgs(args, ['epochs', 'batch-size', 'lr', 'seed', 'backend', 'data', 'out', 'resume', 'limit', 'stop-after', 'zero', 'accumulate', 'amp'], ['json', 'help', 'checkpoint', 'offload', 'jit']);
    if (p.flags.has('help')) { console.log(usage()); return 0; }
    const name = p.positional[0];
    if (name === undefined) throw new UsageError('name a recipe.');
    if (p.positional.length > 1) throw new UsageError(`unexpected argument '${p.positional[1]}'.`);
    const recipe = recipes[name];
    if (recipe === undefined) throw new UsageError(`unknown recipe '${name}' (known: ${Object.keys(recipes).join(', ')}).`);
    await selectBackend(p.values.get('backend') ?? defaultBackendName());
    const v = p.values;
    const options: TrainOptions = {
      epochs: numberOption(v, 'epochs', recipe.defaults.epochs, 'integer'),
      batchSize: numberOption(v, 'batch-size', recipe.defaults.batchSize, 'integer'),
      lr: numberOption(v, 'lr', recipe.defaults.lr),
      seed: numberOption(v, 'seed', 0, 'integer'),
      json: p.flags.has('json'),
    };
    if (options.epochs < 1 || options.batchSize < 1) throw new UsageError('--epochs and --batch-size must be at least 1.');
    if (v.has('data')) options.dataDir = v.get('data')!;
    if (v.has('out')) options.outDir = v.get('out')!;
    if (v.has('resume')) options.resume = v.get('resume')!;
    if (v.has('limit')) options.trainLimit = numberOption(v, 'limit', 0, 'integer');
    if (v.has('stop-after')) options.stopAfterSteps = numberOption(v, 'stop-after', 0, 'integer');
    if (v.has('amp')) {
      const amp = v.get('amp')!;
      if (amp !== 'bf16' && amp !== 'fp16') throw new UsageError(`--amp must be bf16 or fp16, got '${amp}'.`);
      options.amp = amp;
    }
    for (const flag of ['checkpoint', 'offload'] as const) {
      if (!p.flags.has(flag)) continue;
      if (recipe.checkpointable !== true) throw new UsageError(`--${flag}: recipe '${recipe.name}' has no blocks to ${flag === 'checkpoint' ? 'recompute' : 'offload'} (supported: ${Object.values(recipes).filter((r) => r.checkpointable).map((r) => r.name).join(', ')}).`);
      if (flag === 'checkpoint') options.checkpointActivations = true;
      else options.offloadActivations = true;
    }
    if (options.checkpointActivations === true && options.offloadActivations === true) throw new UsageError('--checkpoint and --offload are two ways to keep block activations off the backend; choose one.');
    if (v.has('accumulate')) {
      options.accumulate = numberOption(v, 'accumulate', 1, 'integer');
      if (options.accumulate < 1) throw new UsageError(`--accumulate must be at least 1 (micro-batches per batch), got ${options.accumulate}.`);
    }
    if (p.flags.has('jit')) {
      if ((options.accumulate ?? 1) > 1) throw new UsageError('--jit compiles one whole step; it does not combine with --accumulate.');
      options.jit = true;
    }
    const zeroStage = v.has('zero') ? numberOption(v, 'zero', 0, 'integer') : undefined;
    if (zeroStage !== undefined && zeroStage !== 1 && zeroStage !== 2) throw new UsageError(`--zero must be 1 or 2, got ${zeroStage}.`);
    const group = (readLaunchEnv(process.env).worldSize ?? 1) > 1 ? await initProcessGroup() : undefined;
    if (zeroStage !== undefined && group === undefined) throw new UsageError('--zero shards the optimizer over data-parallel ranks: start the run with `tessera run --nproc-per-node N`.');
    if (options.jit === true && group !== undefined) throw new UsageError('--jit does not combine with data-parallel runs (tessera run): each rank would need the compiled step to include the gradient averaging.');
    if (group !== undefined) {
      options.dataParallel = async (model, optimizer) => {
        const sum = async (values: Float64Array) => { await group.allReduce(values); };
        if (zeroStage === undefined) {
          const ddp = await DistributedDataParallel.create(model, group);
          return { rank: group.rank, worldSize: group.size, syncGradients: () => ddp.syncGradients(), sum };
        }
        const zero = await ZeroOptimizer.create(model, group, (shards) => sameOptimizerOver(optimizer, shards), { stage: zeroStage });
        return {
          rank: group.rank, worldSize: group.size, sum,
          description: `ZeRO-${zeroStage}: optimizer state${zeroStage === 2 ? ' and gradients' : ''} sharded`,
          shardedStep: async ({ maxGradNorm }) => {
            // The schedule moves the task's optimizer's hyper-parameters; the shards' optimizer follows.
            const { params: _p, ...hyper } = optimizer.paramGroups[0]!;
            Object.assign(zero.optimizer.paramGroups[0]!, hyper);
            await zero.step(maxGradNorm === undefined ? {} : { maxGradNorm });
          },
          optimizerStateDict: () => zero.stateDict(),
          loadOptimizerStateDict: (sd) => zero.loadStateDict(sd),
        };
      };
      if (group.rank !== 0) options.reporter = { step: () => undefined, epoch: () => undefined, info: () => undefined };
    }
    try {
      await train(recipe, options);
    } finally {
      await destroyQuietly(group);
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`tessera train: ${e.message}\n\n${usage()}`);
      return 2;
    }
    throw e;
  }
}

/** Leaves the group at the end of a run (a peer that already left is not an error then). */
async function destroyQuietly(group: ProcessGroup | undefined): Promise<void> {
  try {
    await group?.destroy();
  } catch {
    // the run's result is what matters here
  }
}

/** A new optimizer of `optimizer`'s class and options over `params` (this rank's ZeRO shards). */
function sameOptimizerOver(optimizer: Optimizer<BaseOptions>, params: Parameter[]): Optimizer<BaseOptions> {
  if (optimizer.paramGroups.length !== 1) throw new Error(`tessera train --zero: the recipe's optimizer has ${optimizer.paramGroups.length} parameter groups; ZeRO here shards one.`);
  const { params: _p, initialLr: _i, ...options } = optimizer.paramGroups[0]!;
  const Class = optimizer.constructor as new (params: Parameter[], options: object) => Optimizer<BaseOptions>;
  return new Class(params, options);
}
