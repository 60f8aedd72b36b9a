// A 784-64-10 MLP trained for 150 Adam steps on the shipped MNIST digits: the float model the
// quantization tests compare their quantized copies with (real weights, real activations).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as t from '../../src/index.js';
import { nn } from '../../src/index.js';
import { loadMnist10k } from '../../src/data/datasets.js';
import { imageTensorDataset } from '../../src/data/images.js';
import { Adam } from '../../src/optim/adam.js';

export interface TrainedMnistMlp {
  /** A new, untrained model of the same shape (load `state` into it). */
  build: () => nn.Sequential;
  /** The trained model's state dict. */
  state: Map<string, t.Tensor>;
  trainSet: ReturnType<typeof imageTensorDataset>;
  testSet: ReturnType<typeof imageTensorDataset>;
}

export async function trainedMnistMlp(): Promise<TrainedMnistMlp> {
  t.manualSeed(0);
  const { train, test: held } = await loadMnist10k({ seed: 0 });
  const trainSet = imageTensorDataset(train, { layout: 'flat' });
  const testSet = imageTensorDataset(held, { layout: 'flat' });
  const build = () => new nn.Sequential(new nn.Linear(784, 64), new nn.ReLU(), new nn.Linear(64, 10));
  const model = build();
  const opt = new Adam(model.parameters(), { lr: 3e-3 });
  for (let step = 0; step < 150; step++) {
    t.scope(() => {
      const idx = Int32Array.from({ length: 64 }, (_, i) => (step * 64 + i) % trainSet.length);
      const [x, y] = trainSet.getBatch(idx) as [t.Tensor, t.Tensor];
      opt.zeroGrad();
      t.crossEntropy(model.call(x), y).backward();
      opt.step();
    });
  }
  model.eval();
  return { build, state: model.stateDict(), trainSet, testSet };
}

/**
 * Trains a small `tessera train mnist-mlp` checkpoint (1,024 records, 2 epochs) into a temporary
 * directory and runs `body` with it while console.log is captured into `logs` (emptied before body
 * runs); restores the console and removes the directory afterwards. For the CLI tests of
 * `tessera quantize`.
 */
export async function withTrainedCliCheckpoint(prefix: string, body: (dir: string, logs: string[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const logs: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => { logs.push(a.join(' ')); };
  try {
    const { run: train } = await import('../../src/cli/train.js');
    if (await train(['mnist-mlp', '--limit', '1024', '--epochs', '2', '--batch-size', '32', '--out', dir, '--json']) !== 0) {
      throw new Error('tessera train mnist-mlp failed');
    }
    logs.length = 0;
    await body(dir, logs);
  } finally {
    console.log = log;
    rmSync(dir, { recursive: true, force: true });
  }
}
