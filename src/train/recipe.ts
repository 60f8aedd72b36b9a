// A recipe: everything `tessera train <name>` needs to build one training task (data, model,
// optimizer, schedule, loss and evaluation) from a few options.
import type { Tensor } from '../core/tensor.js';
import type { DataLoader } from '../data/loader.js';
import type { AnyModule } from '../nn/module.js';
import type { BaseOptions, Optimizer } from '../optim/optimizer.js';
import type { LRScheduler } from '../optim/scheduler.js';

/** Options every recipe accepts (the CLI's flags). */
export interface RecipeOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Directory of data the recipe reads (fashion-cnn: the IDX files). */
  dataDir?: string;
  /** Use only the first n training records (quick trials and tests). */
  trainLimit?: number;
  /** Activation checkpointing: recompute each block's activations in backward (recipes with `checkpointable`). */
  checkpointActivations?: boolean;
  /** Activation offloading: keep what each block saves for backward in host memory (recipes with `checkpointable`). */
  offloadActivations?: boolean;
}

/** What one optimisation step produced. */
export interface StepResult {
  loss: Tensor;
  /** Records in the batch (for throughput and means). */
  samples: number;
  /** Correctly classified records (classifiers): a number, or a 0-d tensor (read after the step, so a jitted step reads nothing). */
  correct?: number | Tensor;
}

/** Held-out metrics (classifiers: testAccuracy and testLoss; language models: valLoss and a sample). */
export interface EvalResult {
  testAccuracy?: number;
  testLoss?: number;
  valLoss?: number;
  sample?: string;
}

export interface GenerateOptions {
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
}

export interface TrainTask {
  model: AnyModule;
  optimizer: Optimizer<BaseOptions>;
  /** Stepped once per optimisation step. */
  scheduler?: LRScheduler;
  /** Batches of [input, target] tensors. */
  loader: DataLoader<unknown, Tensor[]>;
  /** Forward pass and loss of one batch (the loop runs backward and the optimizer). */
  lossOf(batch: Tensor[]): StepResult;
  /** Metrics on the held-out data (the model is put in eval mode by the caller). */
  evaluate(): EvalResult;
  /** Text generation (language models). */
  generate?(options: GenerateOptions): string;
  /** Clip the gradients' joint norm to this before each step. */
  clipGradNorm?: number;
  /** A line describing the data (shown before training). */
  description: string;
}

export interface Recipe {
  name: string;
  summary: string;
  kind: 'classifier' | 'language-model';
  defaults: Omit<RecipeOptions, 'seed' | 'dataDir' | 'trainLimit' | 'checkpointActivations' | 'offloadActivations'>;
  /** Whether the model has blocks that `--checkpoint` can recompute (and `--offload` move to the host) in backward. */
  checkpointable?: boolean;
  /** Builds the task; the caller seeds the global generator with options.seed first. */
  build(options: RecipeOptions): Promise<TrainTask>;
}
