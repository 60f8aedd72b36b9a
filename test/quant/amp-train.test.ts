// `tessera train --amp bf16|fp16`: the trainer runs forward and loss under autocast (and fp16 with
// dynamic loss scaling), the parameters stay float32, and bad values are usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as t from '../../src/index.js';
import { train, type Recipe, type Reporter, type TrainTask } from '../../src/train/index.js';
import { DataLoader } from '../../src/data/loader.js';
import { TensorDataset } from '../../src/data/dataset.js';
import { Sequential } from '../../src/nn/containers.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { ReLU } from '../../src/nn/layers/activation.js';
import { Adam } from '../../src/optim/adam.js';
import type { BaseOptions, Optimizer } from '../../src/optim/optimizer.js';
import { crossEntropy } from '../../src/ops/nn/index.js';
import { isAutocastEnabled, autocastDType } from '../../src/quant/index.js';

const silent: Reporter = { step: () => undefined, epoch: () => undefined, info: () => undefined };

function tinyRecipe(seen: { dtypes: Set<string>; logits: Set<string> }): Recipe {
  return {
    name: 'tiny-amp', summary: 'test', kind: 'classifier',
    defaults: { epochs: 2, batchSize: 8, lr: 0.02 },
    async build(o) {
      const g = new t.Generator(5);
      const x = t.randn([64, 6], { generator: g });
      const y = t.randint(0, 3, [64], { generator: g });
      const model = new Sequential(new Linear(6, 16), new ReLU(), new Linear(16, 3));
      const optimizer = new Adam(model.parameters(), { lr: o.lr }) as unknown as Optimizer<BaseOptions>;
      const loader = new DataLoader<t.Tensor[], t.Tensor[]>(new TensorDataset([x, y]), { batchSize: o.batchSize, shuffle: true, seed: o.seed });
      const task: TrainTask = {
        model, optimizer, loader, description: 'tiny', clipGradNorm: 1,
        lossOf: ([xb, yb]) => {
          seen.dtypes.add(isAutocastEnabled() ? autocastDType()! : 'off');
          const logits = model.call(xb!);
          seen.logits.add(logits.dtype);
          return { loss: crossEntropy(logits, yb!), samples: yb!.shape[0]! };
        },
        evaluate: () => ({ testAccuracy: 0 }),
      };
      return task;
    },
  };
}

test('train({ amp }) runs the forward under autocast, keeps float32 parameters and lands near the float32 run', async () => {
  const results: Record<string, { loss: number; params: number[][] }> = {};
  for (const amp of [undefined, 'bf16', 'fp16'] as const) {
    const seen = { dtypes: new Set<string>(), logits: new Set<string>() };
    const r = await train(tinyRecipe(seen), { epochs: 2, batchSize: 8, lr: 0.02, seed: 1, reporter: silent, evalEachEpoch: false, ...(amp ? { amp } : {}) });
    assert.equal(r.steps, 16);
    assert.deepEqual([...seen.dtypes], [amp === undefined ? 'off' : amp === 'bf16' ? 'bfloat16' : 'float16']);
    assert.deepEqual([...seen.logits], [amp === undefined ? 'float32' : amp === 'bf16' ? 'bfloat16' : 'float16']);
    for (const p of r.task.model.parameters()) assert.equal(p.dtype, 'float32');
    assert.equal(isAutocastEnabled(), false, 'the region is left after each step');
    results[amp ?? 'fp32'] = { loss: r.epochs[1]!.loss, params: r.task.model.parameters().map((p) => Array.from(p.data())) };
  }
  for (const amp of ['bf16', 'fp16']) {
    assert.ok(Math.abs(results[amp]!.loss - results.fp32!.loss) < 0.05, `${amp} loss ${results[amp]!.loss} vs float32 ${results.fp32!.loss}`);
  }
  // fp16 (11 significant bits) stays closer to float32 than bf16 (8).
  const dev = (k: string) => Math.max(...results[k]!.params.flat().map((v, i) => Math.abs(v - results.fp32!.params.flat()[i]!)));
  assert.ok(dev('fp16') < dev('bf16'), `max parameter deviation: fp16 ${dev('fp16')}, bf16 ${dev('bf16')}`);
});

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
  const code = `import(${JSON.stringify(main)}).then((m) => m.main(${JSON.stringify(args)})).then((c) => process.exit(c))`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('tessera train mnist-mlp --amp bf16 / fp16 trains a few steps and reports the mixed precision', () => {
  const bf16 = cli(['train', 'mnist-mlp', '--limit', '128', '--epochs', '1', '--batch-size', '32', '--json', '--amp', 'bf16']);
  assert.equal(bf16.status, 0, bf16.stderr);
  const records = bf16.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const final = records.find((r) => r.event === 'final') as { steps: number; testAccuracy: number; amp: { dtype: string } };
  assert.equal(final.steps, 4);
  assert.equal(final.amp.dtype, 'bfloat16');
  assert.equal(typeof final.testAccuracy, 'number');
  const fp16 = cli(['train', 'mnist-mlp', '--limit', '128', '--stop-after', '2', '--batch-size', '32', '--amp', 'fp16']);
  assert.equal(fp16.status, 0, fp16.stderr);
  assert.match(fp16.stdout, /mixed precision: autocast float16, dynamic loss scaling/);
  assert.match(fp16.stdout, /loss scale \d+ \(\d+ steps skipped for inf\/NaN gradients\)/);
});

test('tessera train --amp with a bad value is a usage error (exit 2)', async () => {
  const { run } = await import('../../src/cli/train.js');
  const errors: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => void errors.push(a.join(' '));
  try {
    assert.equal(await run(['mnist-mlp', '--amp', 'fp8']), 2);
    assert.match(errors.join('\n'), /--amp must be bf16 or fp16, got 'fp8'/);
    assert.match(errors.join('\n'), /--amp bf16\|fp16/);
  } finally {
    console.error = original;
  }
});
