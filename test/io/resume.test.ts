// End-to-end resume: model + optimizer + scheduler + data order saved mid-run with saveState, restored
// into fresh objects, and the continued run ends with exactly the parameters of an uninterrupted run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Generator } from '../../src/core/random.js';
import type { Tensor } from '../../src/core/tensor.js';
import { tensor } from '../../src/ops/creation.js';
import { mean, mul, sub } from '../../src/ops/index.js';
import { backward } from '../../src/autodiff/index.js';
import { Linear, ReLU, Sequential, type StateDict } from '../../src/nn/index.js';
import { Adam, StepLR, type OptimizerStateDict, type SchedulerStateDict, type AdamOptions } from '../../src/optim/index.js';
import { TensorDataset } from '../../src/data/dataset.js';
import { DataLoader, type DataLoaderState } from '../../src/data/loader.js';
import { loadState, saveState } from '../../src/io/checkpoint.js';

function setup() {
  const generator = new Generator(0);
  const model = new Sequential(new Linear(3, 8, { generator }), new ReLU(), new Linear(8, 1, { generator }));
  const optimizer = new Adam(model.parameters(), { lr: 0.01 });
  const scheduler = new StepLR(optimizer, 5, 0.5);
  return { model, optimizer, scheduler };
}

const n = 30;
const x = tensor(Array.from({ length: n }, (_, i) => [Math.sin(i), Math.cos(2 * i), (i % 7) / 7]), { dtype: 'float32' });
const y = tensor(Array.from({ length: n }, (_, i) => [Math.sin(i) * Math.cos(2 * i)]), { dtype: 'float32' });
const loaderOptions = { batchSize: 8, shuffle: true, seed: 4 } as const; // 4 batches per epoch

function trainStep(s: ReturnType<typeof setup>, [bx, by]: Tensor[]): void {
  s.optimizer.zeroGrad();
  const diff = sub(s.model.call(bx!), by!);
  backward(mean(mul(diff, diff)));
  s.optimizer.step();
  s.scheduler.step();
}

async function run(s: ReturnType<typeof setup>, loader: DataLoader<Tensor[], Tensor[]>, from: number, to: number): Promise<void> {
  for (let step = from; step < to; ) {
    for await (const batch of loader) {
      trainStep(s, batch);
      if (++step === to) break;
    }
  }
}

const bits = (t: Tensor) => [...new Uint8Array(t.data().buffer)];

test('a run resumed from saveState ends bit-identical to an uninterrupted one', async () => {
  const dataset = new TensorDataset([x, y]);
  const total = 14; // crosses epoch boundaries and two learning-rate steps
  const stopAt = 6;

  const straight = setup();
  await run(straight, new DataLoader(dataset, loaderOptions), 0, total);

  const first = setup();
  const firstLoader = new DataLoader(dataset, loaderOptions);
  await run(first, firstLoader, 0, stopAt);
  const dir = mkdtempSync(join(tmpdir(), 'tessera-resume-'));
  try {
    const path = join(dir, 'ckpt.safetensors');
    await saveState(path, {
      model: first.model.stateDict(),
      optimizer: first.optimizer.stateDict(),
      scheduler: first.scheduler.stateDict(),
      loader: firstLoader.stateDict(),
      step: stopAt,
    });

    const saved = (await loadState(path)) as unknown as {
      model: StateDict;
      optimizer: OptimizerStateDict<AdamOptions>;
      scheduler: SchedulerStateDict;
      loader: DataLoaderState;
      step: number;
    };
    // Fresh objects with a different initialisation: everything must come from the checkpoint.
    const resumed = setup();
    resumed.model.loadStateDict(saved.model);
    resumed.optimizer.loadStateDict(saved.optimizer);
    resumed.scheduler.loadStateDict(saved.scheduler);
    const loader = new DataLoader(dataset, loaderOptions);
    loader.loadStateDict(saved.loader);
    await run(resumed, loader, saved.step, total);

    const want = straight.model.stateDict();
    const got = resumed.model.stateDict();
    assert.deepEqual([...got.keys()], [...want.keys()]);
    for (const [name, t] of want) assert.deepEqual(bits(got.get(name)!), bits(t), name);
    assert.deepEqual(resumed.scheduler.getLastLr(), straight.scheduler.getLastLr());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
