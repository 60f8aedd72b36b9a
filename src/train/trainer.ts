// The training loop behind `tessera train`: epochs of optimisation steps with progress reporting,
// evaluation, and checkpoints from which a run resumes exactly where it stopped.
//
// Exact resumption. A checkpoint holds the model, the optimizer (state and hyper-parameters), the
// schedule, the data loader's position (epoch, batches done; the order of an epoch is a function of the
// seed and the epoch) and the global random generator (dropout, sampling). Restoring all of them makes
// the rest of the run compute the very same numbers as a run that never stopped.
//
// Data parallelism. With `dataParallel`, every rank builds the same task (same seed, same loader
// order), takes its share of the rows of every batch, and averages gradients with the others
// before each step (dist.DistributedDataParallel, wired up by `tessera train` under `tessera
// run`): the steps are those of one process training on whole batches. Rank 0 reports,
// evaluates and writes the checkpoint.
import { defaultGenerator, manualSeed } from '../core/random.js';
import { keep, scope } from '../core/memory.js';
import type { Tensor } from '../core/tensor.js';
import { backward } from '../autodiff/backward.js';
import { narrow } from '../ops/shape.js';
import { scalar } from '../ops/creation.js';
import { jit } from '../graph/jit.js';
import '../compiler/index.js'; // registers the optimizing graph compiler that jit uses
import type { AnyModule } from '../nn/module.js';
import { noGrad } from '../autodiff/mode.js';
import type { DataLoaderState } from '../data/loader.js';
import { loadState, saveState, type StateTree } from '../io/checkpoint.js';
import { clipGradNorm } from '../optim/clip.js';
import type { Optimizer, OptimizerStateDict, BaseOptions } from '../optim/optimizer.js';
import type { SchedulerStateDict } from '../optim/scheduler.js';
import { createReporter, type EpochRecord, type Reporter } from './progress.js';
import { enterAutocast } from '../quant/autocast.js';
import { GradScaler } from '../quant/grad-scaler.js';
import type { EvalResult, Recipe, RecipeOptions, TrainTask } from './recipe.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

export interface TrainOptions extends RecipeOptions {
  /** Directory for the checkpoint (default: no checkpoint). */
  outDir?: string;
  /** A checkpoint (file, or directory holding checkpoint.safetensors) to continue from. */
  resume?: string;
  /** Stop after this many optimisation steps in total (and save), as if interrupted. */
  stopAfterSteps?: number;
  /** Evaluate on held-out data after every epoch (default true). */
  evalEachEpoch?: boolean;
  /**
   * Gradient accumulation: each batch runs as this many micro-batches of its rows (default 1), each
   * one's loss scaled by its share of the rows and its activations freed before the next, then one
   * optimizer step: the batch's update with the memory of a micro-batch. Equal to the whole batch up
   * to float rounding, except where a layer looks across rows (BatchNorm statistics), as in PyTorch.
   */
  accumulate?: number;
  json?: boolean;
  reporter?: Reporter;
  /**
   * Mixed precision: the forward pass and loss run under quant.autocast in bfloat16 or float16
   * (parameters, gradients and the update stay float32); float16 adds dynamic loss scaling
   * (quant.GradScaler: steps with inf/NaN gradients are skipped). See docs/mixed-precision.md.
   */
  amp?: 'bf16' | 'fp16';
  /**
   * Run each training step as one compiled graph (t.jit: forward, backward, clipping and the
   * optimizer update; the scheduler steps outside, its learning rate a live input). The first step
   * of each batch shape traces; the rest replay. Not with accumulate > 1 or data-parallel training.
   */
  jit?: boolean;
  /**
   * Train data-parallel: called once with the task's model and optimizer (after a resume has
   * loaded them), it returns the rank's handle on the group. The dist layer provides it (see
   * cli/train.ts).
   */
  dataParallel?: (model: AnyModule, optimizer: Optimizer<BaseOptions>) => Promise<DataParallel>;
}

/** What data-parallel training needs from the process group (implemented by dist.DistributedDataParallel). */
export interface DataParallel {
  readonly rank: number;
  readonly worldSize: number;
  /** How the ranks share the work, for the opening line (e.g. the ZeRO stage). */
  readonly description?: string;
  /** Averages every parameter's gradient over the ranks, in place (and makes the buffers the root's); the task's optimizer then steps. */
  syncGradients?(): Promise<void>;
  /** Sums `values` over the ranks, in place (for the reported loss and accuracy). */
  sum(values: Float64Array): Promise<void>;
  /**
   * With the optimizer's state sharded over the ranks (ZeRO): averages the gradients, clips their
   * joint norm to `maxGradNorm` and updates the parameters, in place of syncGradients() and the
   * task's optimizer (whose hyper-parameters, moved by the schedule, it follows).
   */
  shardedStep?(options: { maxGradNorm?: number }): Promise<void>;
  /** The optimizer's whole state for a checkpoint, gathered from the ranks (a collective). */
  optimizerStateDict?(): Promise<OptimizerStateDict<BaseOptions>>;
  /** Restores a whole optimizer state (from any checkpoint of the recipe), each rank its share. */
  loadOptimizerStateDict?(sd: OptimizerStateDict<BaseOptions>): Promise<void>;
}

export interface TrainResult {
  epochs: EpochRecord[];
  final: EvalResult;
  steps: number;
  seconds: number;
  checkpoint?: string;
  task: TrainTask;
  /** True when the run stopped early because of stopAfterSteps. */
  stopped: boolean;
  /** Mixed precision: the autocast dtype and, for float16, the loss scale at the end and the steps skipped. */
  amp?: { dtype: 'bfloat16' | 'float16'; lossScale?: number; skippedSteps?: number };
}

/** The options a checkpoint records, so eval/generate/resume can rebuild the same task. */
interface SavedRun {
  recipe: string;
  options: RecipeOptions;
  step: number;
  model: Map<string, Tensor>;
  optimizer: StateTree;
  scheduler: StateTree | null;
  loader: StateTree;
  rng: number[];
  /** Mixed precision of the run that wrote it (absent: float32), with the float16 loss scaler's state. */
  amp?: { mode: 'bf16' | 'fp16'; scaler: StateTree };
}

function recipeOptionsOf(o: RecipeOptions): RecipeOptions {
  const out: RecipeOptions = { epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, seed: o.seed };
  if (o.dataDir !== undefined) out.dataDir = o.dataDir;
  if (o.trainLimit !== undefined) out.trainLimit = o.trainLimit;
  return out;
}

/** Seeds the global generator and builds the recipe's task (the same way for training, eval and resume). */
export async function buildTask(recipe: Recipe, options: RecipeOptions): Promise<TrainTask> {
  manualSeed(options.seed);
  return recipe.build(options);
}

export async function checkpointPath(pathOrDir: string): Promise<string> {
  const { stat } = await import('node:fs/promises');
  const { join } = await import('node:path');
  try {
    if ((await stat(pathOrDir)).isDirectory()) return join(pathOrDir, CHECKPOINT_FILE);
  } catch {
    throw new Error(`no checkpoint at ${pathOrDir}: the path does not exist. Give the --out directory of a finished or stopped run, or its ${CHECKPOINT_FILE}.`);
  }
  return pathOrDir;
}

/** Reads a checkpoint written by train(). */
export async function readCheckpoint(pathOrDir: string): Promise<SavedRun> {
  const path = await checkpointPath(pathOrDir);
  const state = (await loadState(path)) as unknown as SavedRun;
  if (typeof state !== 'object' || state === null || typeof state.recipe !== 'string' || !(state.model instanceof Map)) {
    throw new Error(`${path} is a safetensors file but not a tessera training checkpoint (no recipe/model entries); it was not written by 'tessera train'.`);
  }
  return state;
}

/** Restores a task's model from a checkpoint (for eval and generate). */
export async function loadTrainedTask(recipes: Record<string, Recipe>, pathOrDir: string): Promise<{ task: TrainTask; saved: SavedRun; recipe: Recipe }> {
  const saved = await readCheckpoint(pathOrDir);
  const recipe = recipes[saved.recipe];
  if (recipe === undefined) throw new Error(`the checkpoint was written by recipe '${saved.recipe}', which this version does not know (known: ${Object.keys(recipes).join(', ')}).`);
  const task = await buildTask(recipe, saved.options);
  task.model.loadStateDict(saved.model);
  task.model.eval();
  return { task, saved, recipe };
}

async function writeCheckpoint(dir: string, recipe: Recipe, options: RecipeOptions, task: TrainTask, step: number, optimizerState: OptimizerStateDict<BaseOptions>, amp: Amp | undefined): Promise<string> {
  const { mkdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  await mkdir(dir, { recursive: true });
  const path = join(dir, CHECKPOINT_FILE);
  const state = {
    recipe: recipe.name,
    options: recipeOptionsOf(options),
    step,
    model: task.model.stateDict(),
    optimizer: optimizerState as unknown as StateTree,
    scheduler: (task.scheduler?.stateDict() ?? null) as unknown as StateTree,
    loader: task.loader.stateDict() as unknown as StateTree,
    rng: defaultGenerator.getState(),
    // A resumed mixed-precision run continues in the same mode and, for float16, at the same loss
    // scale (restarting at 2^16 would skip steps the uninterrupted run takes).
    ...(amp === undefined ? {} : { amp: { mode: amp.dtype === 'bfloat16' ? 'bf16' : 'fp16', scaler: amp.scaler.stateDict() as unknown as StateTree } }),
  };
  await saveState(path, state, { recipe: recipe.name });
  return path;
}

/** The mean loss over the epoch and the accuracy, from running sums. */
class EpochMeter {
  lossSum = 0;
  samples = 0;
  correct = 0;
  hasAccuracy = false;
  readonly started = performance.now();
  add(loss: number, samples: number, correct: number | undefined): void {
    this.lossSum += loss * samples;
    this.samples += samples;
    if (correct !== undefined) { this.correct += correct; this.hasAccuracy = true; }
  }
  get loss(): number { return this.samples ? this.lossSum / this.samples : NaN; }
  get seconds(): number { return (performance.now() - this.started) / 1000; }
}

/** Mixed precision of a run: the autocast dtype and, for float16, the loss scaler. */
interface Amp {
  dtype: 'bfloat16' | 'float16';
  scaler: GradScaler;
}

/** The optimizer step (clipping first), through the loss scaler under float16 autocast. */
function optimizerStep(task: TrainTask, params: Tensor[], amp: Amp | undefined): void {
  if (amp === undefined) {
    if (task.clipGradNorm !== undefined) clipGradNorm(params, task.clipGradNorm);
    task.optimizer.step();
    return;
  }
  // Clipping sees the true gradients: unscale first (a no-op without scaling).
  if (task.clipGradNorm !== undefined) {
    amp.scaler.unscale_(task.optimizer);
    clipGradNorm(params, task.clipGradNorm);
  }
  amp.scaler.step(task.optimizer);
  amp.scaler.update();
}

/**
 * One optimisation step. Everything the step creates is disposed at its end (backends with their own
 * memory, such as wasm, would otherwise fill up before the garbage collector runs), except what must
 * outlive it: the gradients (kept until the next step's zeroGrad) and the optimizer's state.
 */
function trainStep(task: TrainTask, batch: Tensor[], microBatches: number, amp?: Amp): { loss: number; samples: number; correct: number | undefined } {
  const params = task.model.parameters();
  for (const p of params) p.grad?.dispose();
  task.optimizer.zeroGrad();
  const rows = batch[0]!.shape[0]!;
  const result = accumulateGradients(task, batch, 0, rows, rows, 1, microBatches, amp);
  scope(() => {
    optimizerStep(task, params, amp);
    task.scheduler?.step();
  });
  for (const t of batch) t.dispose();
  return result;
}

/** The task's forward pass and loss, under autocast with amp (backward runs after the region: its rules need none). */
function lossOf(task: TrainTask, inputs: Tensor[], amp: Amp | undefined): ReturnType<TrainTask['lossOf']> {
  if (amp === undefined) return task.lossOf(inputs);
  const region = enterAutocast({ dtype: amp.dtype });
  try {
    return task.lossOf(inputs);
  } finally {
    region.exit();
  }
}

/**
 * trainStep as one jitted graph: zeroGrad, the loss (under autocast with amp), backward, clipping
 * (clipGradNorm with asTensor: no value read), the optimizer step (through the loss scaler with
 * fp16). The loss and correct count come back as tensors and are read after the replay; the
 * scheduler steps outside. The graph writes new gradients each call: the previous ones are freed.
 */
function compiledStep(task: TrainTask, amp: Amp | undefined): (batch: Tensor[]) => { loss: number; samples: number; correct: number | undefined } {
  const params = task.model.parameters();
  const step = jit((...batch: Tensor[]) => {
    task.optimizer.zeroGrad();
    const r = lossOf(task, batch, amp);
    backward(amp === undefined ? r.loss : amp.scaler.scale(r.loss));
    if (task.clipGradNorm !== undefined) {
      amp?.scaler.unscale_(task.optimizer);
      clipGradNorm(params, task.clipGradNorm, 2, { asTensor: true });
    }
    if (amp === undefined) task.optimizer.step();
    else {
      amp.scaler.step(task.optimizer);
      amp.scaler.update();
    }
    const correct = r.correct === undefined ? undefined : typeof r.correct === 'number' ? scalar(r.correct, 'int32') : r.correct;
    return correct === undefined ? { loss: r.loss } : { loss: r.loss, correct };
  });
  return (batch) => {
    for (const p of params) {
      p.grad?.dispose();
      p.grad = undefined;
    }
    const out = step(...batch) as { loss: Tensor; correct?: Tensor };
    const result = { loss: out.loss.item(), samples: batch[0]!.shape[0]!, correct: out.correct?.item() };
    out.loss.dispose();
    out.correct?.dispose();
    for (const p of params) if (p.grad !== undefined) keep(p.grad);
    scope(() => task.scheduler?.step());
    for (const t of batch) t.dispose();
    return result;
  };
}

/**
 * Backward passes over rows [start, end) of a batch of `rows` rows, as `parts` micro-batches (fewer
 * when there are fewer rows), each loss scaled by weight · its rows / rows; gradients add up in .grad.
 * Everything a micro-batch creates is freed before the next, but the gradients (kept; the ones they
 * replace are disposed). Returns the loss (per sample), samples and correct count over those rows.
 */
function accumulateGradients(task: TrainTask, batch: Tensor[], start: number, end: number, rows: number, weight: number, parts: number, amp?: Amp):
  { loss: number; samples: number; correct: number | undefined } {
  const params = task.model.parameters();
  const count = Math.max(1, Math.min(parts, end - start));
  let lossSum = 0, samples = 0;
  let correct: number | undefined;
  for (let i = 0; i < count; i++) {
    const a = start + Math.floor((i * (end - start)) / count), b = start + Math.floor(((i + 1) * (end - start)) / count);
    const whole = a === 0 && b === rows;
    scope(() => {
      const inputs = whole ? batch : batch.map((t) => narrow(t, 0, a, b - a));
      const r = lossOf(task, inputs, amp);
      const before = params.map((p) => p.grad);
      const share = (weight * (b - a)) / rows;
      const loss = share === 1 ? r.loss : r.loss.mul(share);
      backward(amp === undefined ? loss : amp.scaler.scale(loss));
      params.forEach((p, k) => {
        // Accumulation made a new sum: the gradient it replaces is freed now, not by the collector.
        if (before[k] !== undefined && before[k] !== p.grad) before[k]!.dispose();
        if (p.grad !== undefined) keep(p.grad);
      });
      lossSum += r.loss.item() * r.samples;
      samples += r.samples;
      if (r.correct !== undefined) correct = (correct ?? 0) + (typeof r.correct === 'number' ? r.correct : r.correct.item());
    });
  }
  return { loss: samples > 0 ? lossSum / samples : 0, samples, correct };
}

/**
 * One data-parallel step: this rank's rows of the batch, its gradient scaled by its share of the
 * batch's rows (so that the average over ranks is the whole batch's mean gradient even when the
 * rows do not split evenly), the gradients averaged, then the same update on every rank. The
 * loss and accuracy returned are the whole batch's.
 */
async function trainStepDataParallel(task: TrainTask, batch: Tensor[], dp: DataParallel, microBatches: number, amp?: Amp): Promise<{ loss: number; samples: number; correct: number | undefined }> {
  const params = task.model.parameters();
  for (const p of params) p.grad?.dispose();
  task.optimizer.zeroGrad();
  const rows = batch[0]!.shape[0]!;
  const start = Math.floor((dp.rank * rows) / dp.worldSize), end = Math.floor(((dp.rank + 1) * rows) / dp.worldSize);
  // Each rank's gradient is scaled by worldSize · its rows / rows: the average over ranks is then the batch's.
  const local = end > start
    ? accumulateGradients(task, batch, start, end, rows, dp.worldSize, microBatches, amp)
    : { loss: 0, samples: 0, correct: undefined };
  // The batch's loss and accuracy over all ranks travel while the gradients do and the step runs.
  const totals = Float64Array.of(local.loss * local.samples, local.samples, local.correct ?? 0, local.correct === undefined ? 0 : 1);
  const summed = dp.sum(totals);
  if (dp.shardedStep !== undefined) {
    await dp.shardedStep(task.clipGradNorm === undefined ? {} : { maxGradNorm: task.clipGradNorm });
    task.scheduler?.step();
  } else {
    if (dp.syncGradients === undefined) throw new Error('train: a data-parallel handle needs syncGradients or shardedStep.');
    await dp.syncGradients();
    scope(() => {
      optimizerStep(task, params, amp);
      task.scheduler?.step();
    });
  }
  for (const t of batch) t.dispose();
  await summed;
  return { loss: totals[0]! / totals[1]!, samples: totals[1]!, correct: totals[3]! > 0 ? totals[2]! : undefined };
}

/** "32", or "16-17" when the batch's rows do not split evenly. */
function rowsPerRank(batch: number, ranks: number): string {
  const low = Math.floor(batch / ranks), high = Math.ceil(batch / ranks);
  return low === high ? String(low) : `${low}-${high}`;
}

/** Trains a recipe (or continues a checkpoint with `resume`), evaluates, and saves a checkpoint. */
export async function train(recipe: Recipe, opts: TrainOptions): Promise<TrainResult> {
  let options: RecipeOptions = recipeOptionsOf(opts);
  let saved: SavedRun | undefined;
  if (opts.resume !== undefined) {
    saved = await readCheckpoint(opts.resume);
    if (saved.recipe !== recipe.name) throw new Error(`--resume: the checkpoint is from recipe '${saved.recipe}', not '${recipe.name}'.`);
    if ((saved as { quantization?: unknown }).quantization !== undefined) {
      throw new Error(`--resume: ${opts.resume} is a quantized inference checkpoint (from tessera quantize): its weights are integer codes and it has ` +
        'no optimizer or data-loader state. Resume from the float checkpoint it was made from.');
    }
    // The run continues with the saved configuration; only the number of epochs may grow.
    options = { ...saved.options, epochs: opts.epochs };
  }
  const microBatches = opts.accumulate ?? 1;
  if (!Number.isInteger(microBatches) || microBatches < 1) throw new Error(`train: accumulate must be a positive integer (micro-batches per batch), got ${microBatches}.`);
  if (opts.jit === true && (microBatches > 1 || opts.dataParallel !== undefined)) {
    throw new Error('train: jit compiles one whole step; it does not combine with gradient accumulation (accumulate > 1) or data-parallel training.');
  }
  const task = await buildTask(recipe, options);
  const reporter = opts.reporter ?? createReporter(options.epochs, { json: opts.json ?? false });
  let step = 0;
  if (saved !== undefined) {
    task.model.loadStateDict(saved.model);
    task.optimizer.loadStateDict(saved.optimizer as unknown as OptimizerStateDict<BaseOptions>);
    if (task.scheduler !== undefined && saved.scheduler !== null) task.scheduler.loadStateDict(saved.scheduler as unknown as SchedulerStateDict);
    task.loader.loadStateDict(saved.loader as unknown as DataLoaderState);
    defaultGenerator.setState(saved.rng);
    step = saved.step;
    reporter.info(`resuming ${recipe.name} at epoch ${task.loader.epoch + 1}, step ${step}`, { event: 'resume', epoch: task.loader.epoch + 1, step });
  }
  const dp = opts.dataParallel === undefined ? undefined : await opts.dataParallel(task.model, task.optimizer);
  if (opts.amp !== undefined && opts.amp !== 'bf16' && opts.amp !== 'fp16') throw new Error(`train: amp must be 'bf16' or 'fp16', got ${JSON.stringify(opts.amp)}.`);
  // Resuming continues the saved run's mode; asking for another one is an error.
  const savedAmp = saved?.amp;
  if (saved !== undefined && opts.amp !== undefined && opts.amp !== savedAmp?.mode) {
    throw new Error(`--resume: the checkpoint was trained ${savedAmp === undefined ? 'in float32' : `with --amp ${savedAmp.mode}`}; resume it ${savedAmp === undefined ? 'without --amp' : `with --amp ${savedAmp.mode} or without --amp`}.`);
  }
  const ampMode = opts.amp ?? savedAmp?.mode;
  if (ampMode === 'fp16' && dp?.shardedStep !== undefined) throw new Error('train: fp16 loss scaling is not wired into the sharded (ZeRO) step; use amp bf16 (no scaling) with ZeRO.');
  const amp: Amp | undefined = ampMode === undefined ? undefined
    : { dtype: ampMode === 'bf16' ? 'bfloat16' : 'float16', scaler: new GradScaler({ enabled: ampMode === 'fp16' }) };
  if (amp !== undefined && amp.scaler.isEnabled() && savedAmp !== undefined) amp.scaler.loadStateDict(savedAmp.scaler as unknown as Parameters<GradScaler['loadStateDict']>[0]);
  if (saved !== undefined && dp?.loadOptimizerStateDict !== undefined) await dp.loadOptimizerStateDict(saved.optimizer as unknown as OptimizerStateDict<BaseOptions>);
  const lead = dp === undefined || dp.rank === 0;
  reporter.info(`${recipe.name}: ${task.description}; ${task.model.parameterCount().toLocaleString('en-US')} parameters; ` +
    `epochs ${options.epochs}, batch size ${options.batchSize}${microBatches > 1 ? ` in ${microBatches} micro-batches` : ''}, lr ${options.lr}, seed ${options.seed}` +
    (amp === undefined ? '' : `; mixed precision: autocast ${amp.dtype}${amp.scaler.isEnabled() ? ', dynamic loss scaling' : ''}`) +
    (dp === undefined ? '' : `; data-parallel over ${dp.worldSize} ranks (${rowsPerRank(options.batchSize, dp.worldSize)} rows each per batch${dp.description ? `; ${dp.description}` : ''})`));

  const jitStep = opts.jit === true ? compiledStep(task, amp) : undefined;
  const records: EpochRecord[] = [];
  const started = performance.now();
  let stopped = false;
  const batches = task.loader.length;
  while (task.loader.epoch < options.epochs && !stopped) {
    const epoch = task.loader.epoch;
    const meter = new EpochMeter();
    const firstBatch = task.loader.stateDict().batchesDone;
    task.model.train();
    let done = firstBatch;
    for await (const batch of task.loader) {
      const r = jitStep !== undefined ? jitStep(batch) : dp === undefined ? trainStep(task, batch, microBatches, amp) : await trainStepDataParallel(task, batch, dp, microBatches, amp);
      step++;
      done++;
      meter.add(r.loss, r.samples, r.correct);
      const rate = meter.samples / Math.max(1e-9, meter.seconds);
      reporter.step({
        epoch: epoch + 1, epochs: options.epochs, batch: done, batches, loss: meter.loss,
        samplesPerSec: rate, etaSeconds: ((batches - done) * (meter.samples / (done - firstBatch))) / rate,
      });
      if (opts.stopAfterSteps !== undefined && step >= opts.stopAfterSteps) {
        stopped = true;
        break;
      }
    }
    if (stopped && task.loader.epoch === epoch) break;
    const record: EpochRecord = {
      epoch: epoch + 1,
      loss: meter.loss,
      samplesPerSec: meter.samples / Math.max(1e-9, meter.seconds),
      seconds: meter.seconds,
      lr: task.optimizer.paramGroups[0]!.lr,
    };
    if (meter.hasAccuracy) record.accuracy = meter.correct / meter.samples;
    if ((opts.evalEachEpoch ?? true) && lead) {
      task.model.eval();
      const e = scope(() => noGrad(() => task.evaluate()));
      if (e.testAccuracy !== undefined) record.testAccuracy = e.testAccuracy;
      if (e.valLoss !== undefined) record.valLoss = e.valLoss;
    }
    records.push(record);
    reporter.epoch(record);
  }

  let checkpoint: string | undefined;
  if (opts.outDir !== undefined) {
    // A sharded optimizer's state is gathered by every rank (a collective); rank 0 writes.
    const optimizerState = dp?.optimizerStateDict !== undefined ? await dp.optimizerStateDict() : task.optimizer.stateDict();
    if (lead) checkpoint = await writeCheckpoint(opts.outDir, recipe, options, task, step, optimizerState, amp);
  }
  task.model.eval();
  const final = stopped || !lead ? {} : scope(() => noGrad(() => task.evaluate()));
  const seconds = (performance.now() - started) / 1000;
  const summary: Record<string, unknown> = { event: 'final', recipe: recipe.name, steps: step, seconds, ...final };
  if (amp !== undefined) summary.amp = { dtype: amp.dtype, ...(amp.scaler.isEnabled() ? { lossScale: amp.scaler.getScale(), skippedSteps: amp.scaler.skippedSteps } : {}) };
  if (checkpoint !== undefined) summary.checkpoint = checkpoint;
  const lines: string[] = [];
  if (stopped) lines.push(`stopped after ${step} steps`);
  if (amp?.scaler.isEnabled()) lines.push(`loss scale ${amp.scaler.getScale()} (${amp.scaler.skippedSteps} steps skipped for inf/NaN gradients)`);
  if (final.testAccuracy !== undefined) lines.push(`test accuracy ${(100 * final.testAccuracy).toFixed(2)}%` + (final.testLoss !== undefined ? ` (test loss ${final.testLoss.toFixed(4)})` : ''));
  if (final.valLoss !== undefined) lines.push(`validation loss ${final.valLoss.toFixed(4)} nats/token`);
  lines.push(`trained ${step} steps in ${seconds.toFixed(1)}s`);
  if (checkpoint !== undefined) lines.push(`checkpoint: ${checkpoint}`);
  if (final.sample !== undefined) lines.push(`sample:\n${final.sample}`);
  reporter.info(lines.join('\n'), summary);
  const result: TrainResult = { epochs: records, final, steps: step, seconds, task, stopped };
  if (amp !== undefined) result.amp = summary.amp as TrainResult['amp'];
  if (checkpoint !== undefined) result.checkpoint = checkpoint;
  return result;
}
