// Image classification recipes: mnist-mlp and mnist-cnn on the 10,000 shipped MNIST digits (seeded
// 9,000/1,000 split), and fashion-cnn on Fashion-MNIST read from --data DIR.
import type { Tensor } from '../../core/tensor.js';
import { scope } from '../../core/memory.js';
import { DataLoader } from '../../data/loader.js';
import { loadFashionMnist, loadMnist10k, selectImages, type ImageSet, DEBIAN_FASHION_MNIST_DIR } from '../../data/datasets.js';
import { imageTensorDataset, type ImageTensorOptions } from '../../data/images.js';
import type { TensorDataset } from '../../data/dataset.js';
import { argmax, sum } from '../../ops/reduce.js';
import { add, cast, eq } from '../../ops/elementwise.js';
import { crossEntropy } from '../../ops/nn/index.js';
import type { AnyModule, Module } from '../../nn/module.js';
import { Sequential } from '../../nn/containers.js';
import { Flatten, Linear } from '../../nn/layers/linear.js';
import { ReLU } from '../../nn/layers/activation.js';
import { Conv2d } from '../../nn/layers/conv.js';
import { MaxPool2d } from '../../nn/layers/pool.js';
import { BatchNorm2d } from '../../nn/layers/normalization.js';
import { MoE, withAuxLoss } from '../../nn/layers/moe.js';

import { Module as ModuleClass } from '../../nn/module.js';
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

/** Number of predictions equal to the labels, as a 0-d int32 tensor (nothing read). */
export function correctCount(logits: Tensor, labels: Tensor): Tensor {
  return sum(cast(eq(argmax(logits, 1), labels), 'int32'));
}

/** Accuracy and mean loss of a classifier over a dataset, in batches, without gradients. */
export function evaluateClassifier(model: Module, data: TensorDataset, batchSize = 500): EvalResult {
  let correct = 0, lossSum = 0;
  for (let start = 0; start < data.length; start += batchSize) {
    const idx = Int32Array.from({ length: Math.min(batchSize, data.length - start) }, (_, i) => start + i);
    // One scope per batch: the activations of a large test set would not fit in a wasm heap at once.
    scope(() => {
      const [x, y] = data.getBatch(idx) as [Tensor, Tensor];
      const logits = model.call(x);
      correct += countCorrect(logits, y);
      lossSum += crossEntropy(logits, y, { reduction: 'sum' }).item();
    });
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
  /** Adds this weight × the MoE layers' load-balancing losses to the loss. */
  auxLossWeight?: number;
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
      const ce = crossEntropy(logits, y!);
      const loss = s.auxLossWeight === undefined ? ce : withAuxLoss(s.model as unknown as AnyModule, ce, s.auxLossWeight);
      return { loss, samples: y!.shape[0]!, correct: correctCount(logits, y!) };
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

/** conv(1→c1) → BN → ReLU → pool → conv(c1→c2) → BN → ReLU → pool → linear(c2·7·7 → 10). */
export function smallCnn(c1 = 8, c2 = 16): Sequential {
  return new Sequential(
    new Conv2d(1, c1, 3, { padding: 1 }), new BatchNorm2d(c1), new ReLU(), new MaxPool2d(2),
    new Conv2d(c1, c2, 3, { padding: 1 }), new BatchNorm2d(c2), new ReLU(), new MaxPool2d(2),
    new Flatten(), new Linear(c2 * 7 * 7, 10),
  );
}

export const mnistCnnRecipe: Recipe = {
  name: 'mnist-cnn',
  summary: 'small CNN (two 3x3 conv + BatchNorm + max-pool blocks) on the 10,000 shipped MNIST digits',
  kind: 'classifier',
  defaults: { epochs: 4, batchSize: 64, lr: 5e-3 },
  async build(options) {
    const { train, test } = await loadMnist10k({ seed: 0 });
    return classifierTask({ train, test, layout: 'nchw', model: smallCnn(), options, maxShift: 1,
      description: 'MNIST (shipped 10k digits, seeded split, ±1 pixel shifts)' });
  },
};

export const fashionCnnRecipe: Recipe = {
  name: 'fashion-cnn',
  summary: `CNN on Fashion-MNIST (60,000/10,000) read from --data DIR (default ${DEBIAN_FASHION_MNIST_DIR})`,
  kind: 'classifier',
  defaults: { epochs: 5, batchSize: 128, lr: 5e-3 },
  async build(options) {
    const { train, test } = await loadFashionMnist(options.dataDir ?? DEBIAN_FASHION_MNIST_DIR);
    return classifierTask({ train, test, layout: 'nchw', model: smallCnn(16, 32), options, maxShift: 0,
      description: `Fashion-MNIST from ${options.dataDir ?? DEBIAN_FASHION_MNIST_DIR}` });
  },
};

/** Linear(784→64) → ReLU → x + MoE(x) (4 experts, top-2) → Linear(64→10). */
export class MoeMlp extends ModuleClass {
  inp = new Linear(784, 64);
  moe = new MoE(64, 4, { topK: 2, hiddenDim: 64, capacityFactor: 1.25 });
  out = new Linear(64, 10);
  override forward(x: Tensor): Tensor {
    const h = this.inp.call(x).relu();
    return this.out.call(add(h, this.moe.call(h)));
  }
}

export const moeMlpRecipe: Recipe = {
  name: 'moe-mlp',
  summary: 'MLP with a mixture-of-experts layer (4 experts, top-2, load-balancing loss) on the shipped MNIST digits',
  kind: 'classifier',
  defaults: { epochs: 3, batchSize: 64, lr: 3e-3 },
  async build(options) {
    const { train, test } = await loadMnist10k({ seed: 0 });
    return classifierTask({ train, test, layout: 'flat', model: new MoeMlp(), options, auxLossWeight: 0.01,
      description: 'MNIST (shipped 10k digits, seeded split) through a 4-expert top-2 MoE layer' });
  },
};
