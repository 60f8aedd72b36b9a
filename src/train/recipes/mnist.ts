// Image classification recipes: mnist-mlp and mnist-cnn on the 10,000 shipped MNIST digits (seeded
// 9,000/1,000 split), and fashion-cnn on Fashion-MNIST read from --data DIR.
import type { Tensor } from '../../core/tensor.js';
import { DataLoader } from '../../data/loader.js';
import { loadFashionMnist, loadMnist10k, selectImages, type ImageSet, DEBIAN_FASHION_MNIST_DIR } from '../../data/datasets.js';
import { imageTensorDataset, type ImageTensorOptions } from '../../data/images.js';
import type { TensorDataset } from '../../data/dataset.js';
import { argmax } from '../../ops/reduce.js';
import { crossEntropy } from '../../ops/nn/index.js';
import type { AnyModule, Module } from '../../nn/module.js';
import { Sequential } from '../../nn/containers.js';
import { Flatten, Linear } from '../../nn/layers/linear.js';
import { ReLU } from '../../nn/layers/activation.js';
import { Adam } from '../../optim/adam.js';
import { OneCycleLR } from '../../optim/scheduler.js';
import type { BaseOptions, Optimizer } from '../../optim/optimizer.js';
import { ShiftedImages } from './augment.js';
import type { EvalResult, Recipe, RecipeOptions, StepResult, TrainTask } from '../recipe.js';

/** Number of predictions equal to the labels. */
export function countCorrect(logits: Tensor, labels: Tensor): number {
  const pred = argmax(logits, 1).data();
  const y = labels.data();
  let n = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) n++;
  return n;
}

/** Accuracy and mean loss of a classifier over a dataset, in batches, without gradients. */
export function evaluateClassifier(model: Module, data: TensorDataset, batchSize = 500): EvalResult {
  let correct = 0, lossSum = 0;
  for (let start = 0; start < data.length; start += batchSize) {
    const idx = Int32Array.from({ length: Math.min(batchSize, data.length - start) }, (_, i) => start + i);
    const [x, y] = data.getBatch(idx) as [Tensor, Tensor];
    const logits = model.call(x);
    correct += countCorrect(logits, y);
    lossSum += crossEntropy(logits, y, { reduction: 'sum' }).item();
  }
  return { testAccuracy: correct / data.length, testLoss: lossSum / data.length };
}

interface ClassifierSetup {
  train: ImageSet;
  test: ImageSet;
  layout: ImageTensorOptions['layout'];
  model: Module;
  options: RecipeOptions;
  description: string;
  /** OneCycle schedule peaking at lr (default) or a constant lr. */
  schedule?: 'onecycle' | 'constant';
  weightDecay?: number;
  /** Random translations of up to this many pixels (default 0: none). */
  maxShift?: number;
}

function classifierTask(s: ClassifierSetup): TrainTask {
  const train = s.options.trainLimit !== undefined ? selectImages(s.train, Int32Array.from({ length: Math.min(s.options.trainLimit, s.train.count) }, (_, i) => i)) : s.train;
  const pixels = { layout: s.layout, mean: 0, std: 1 } as const;
  const testSet = imageTensorDataset(s.test, pixels);
  let loader: DataLoader<Tensor[], Tensor[]> | undefined = undefined;
  const trainSet = new ShiftedImages(train, s.layout ?? 'nchw', s.maxShift ?? 0, s.options.seed, () => loader?.epoch ?? 0);
  loader = new DataLoader<Tensor[], Tensor[]>(trainSet, { batchSize: s.options.batchSize, shuffle: true, seed: s.options.seed, prefetch: 1 });
  const optimizer = new Adam(s.model.parameters(), { lr: s.options.lr, weightDecay: s.weightDecay ?? 0 }) as unknown as Optimizer<BaseOptions>;
  const task: TrainTask = {
    model: s.model as unknown as AnyModule,
    optimizer,
    loader,
    description: `${s.description}: ${train.count} training / ${s.test.count} test images`,
    lossOf([x, y]: Tensor[]): StepResult {
      const logits = s.model.call(x!);
      return { loss: crossEntropy(logits, y!), samples: y!.shape[0]!, correct: countCorrect(logits, y!) };
    },
    evaluate: () => evaluateClassifier(s.model, testSet),
  };
  if ((s.schedule ?? 'onecycle') === 'onecycle') {
    task.scheduler = new OneCycleLR(optimizer, s.options.lr, { totalSteps: s.options.epochs * loader.length, pctStart: 0.25 });
  }
  return task;
}

/** 784 → 128 → 10 with ReLU: small enough for the reference backend to train in about a minute. */
export function mnistMlp(hidden = 128): Sequential {
  return new Sequential(new Flatten(), new Linear(784, hidden), new ReLU(), new Linear(hidden, 10));
}

export const mnistMlpRecipe: Recipe = {
  name: 'mnist-mlp',
  summary: 'MLP 784-128-10 on the 10,000 shipped MNIST digits (9,000 train / 1,000 test)',
  kind: 'classifier',
  defaults: { epochs: 10, batchSize: 64, lr: 3e-3 },
  async build(options) {
    const { train, test } = await loadMnist10k({ seed: 0 });
    return classifierTask({ train, test, layout: 'flat', model: mnistMlp(), options, maxShift: 1,
      description: 'MNIST (shipped 10k digits, seeded split, ±1 pixel shifts)' });
  },
};
