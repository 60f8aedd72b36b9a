import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as t from '../../src/index.js';
import { DataLoader } from '../../src/data/loader.js';
import { TensorDataset } from '../../src/data/dataset.js';
import { dropout, crossEntropy } from '../../src/ops/nn/index.js';
import { Sequential } from '../../src/nn/containers.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { ReLU } from '../../src/nn/layers/activation.js';
import { Adam } from '../../src/optim/adam.js';
import { CosineAnnealingLR } from '../../src/optim/scheduler.js';
import type { BaseOptions, Optimizer } from '../../src/optim/optimizer.js';
import { train, readCheckpoint, loadTrainedTask, recipes, type Recipe, type Reporter, type TrainTask } from '../../src/train/index.js';
import { createReporter } from '../../src/train/progress.js';
import { spawnSync } from 'node:child_process';

const silent: Reporter = { step: () => undefined, epoch: () => undefined, info: () => undefined };

// A tiny classification task with dropout (so the random generator's state matters) and a schedule.
const tiny: Recipe = {
  name: 'tiny',
  summary: 'test',
  kind: 'classifier',
  defaults: { epochs: 2, batchSize: 8, lr: 0.05 },
  async build(o) {
    const g = new t.Generator(123);
    const x = t.randn([60, 4], { generator: g });
    const y = t.randint(0, 3, [60], { generator: g });
    const model = new Sequential(new Linear(4, 16), new ReLU(), new Linear(16, 3));
    const optimizer = new Adam(model.parameters(), { lr: o.lr }) as unknown as Optimizer<BaseOptions>;
    const loader = new DataLoader<t.Tensor[], t.Tensor[]>(new TensorDataset([x, y]), { batchSize: o.batchSize, shuffle: true, seed: o.seed });
    const task: TrainTask = {
      model, optimizer, loader, description: 'tiny',
      scheduler: new CosineAnnealingLR(optimizer, o.epochs * loader.length),
      lossOf: ([xb, yb]) => {
        const h = dropout(model.get(1).call(model.get(0).call(xb!)), 0.3);
        return { loss: crossEntropy(model.get(2).call(h), yb!), samples: yb!.shape[0]! };
      },
      evaluate: () => ({ testAccuracy: 0.5 }),
    };
    return task;
  },
};

const paramsOf = (task: TrainTask) => task.model.parameters().map((p) => Array.from(p.data()));

test('a run stopped mid-epoch and resumed from its checkpoint ends with bit-identical parameters', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-train-'));
  try {
    const options = { ...tiny.defaults, epochs: 3, seed: 4, reporter: silent };
    const straight = await train(tiny, { ...options, outDir: join(dir, 'a') });
    assert.equal(straight.steps, 3 * 8);
    assert.equal(straight.epochs.length, 3);

    const first = await train(tiny, { ...options, outDir: join(dir, 'b'), stopAfterSteps: 11 });
    assert.ok(first.stopped);
    assert.equal(first.steps, 11);
    const saved = await readCheckpoint(join(dir, 'b'));
    assert.equal(saved.recipe, 'tiny');
    assert.equal(saved.step, 11);
    const resumed = await train(tiny, { ...options, resume: join(dir, 'b'), outDir: join(dir, 'b') });
    assert.equal(resumed.steps, 24);
    assert.deepEqual(paramsOf(resumed.task), paramsOf(straight.task));
    // And the optimizer state and schedule agree too.
    assert.equal(resumed.task.optimizer.paramGroups[0]!.lr, straight.task.optimizer.paramGroups[0]!.lr);

    // A different seed gives a different run (the comparison above can fail).
    const other = await train(tiny, { ...options, seed: 5 });
    assert.notDeepEqual(paramsOf(other.task), paramsOf(straight.task));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resuming from a missing path or a checkpoint of another recipe fails clearly', async () => {
  await assert.rejects(train(tiny, { ...tiny.defaults, seed: 0, reporter: silent, resume: '/nonexistent/run' }), /no checkpoint at \/nonexistent\/run/);
  const dir = mkdtempSync(join(tmpdir(), 'tessera-other-'));
  try {
    await train(tiny, { ...tiny.defaults, seed: 0, reporter: silent, outDir: dir, stopAfterSteps: 2 });
    await assert.rejects(train({ ...tiny, name: 'other' }, { ...tiny.defaults, seed: 0, reporter: silent, resume: dir }),
      /the checkpoint is from recipe 'tiny', not 'other'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reporters: plain lines with epoch summaries, one JSON object per epoch', () => {
  const chunks: string[] = [];
  const out = { write: (s: string) => chunks.push(s), isTTY: false };
  const plain = createReporter(2, { out });
  for (let b = 1; b <= 10; b++) plain.step({ epoch: 1, epochs: 2, batch: b, batches: 10, loss: 1, samplesPerSec: 100, etaSeconds: 10 - b });
  plain.epoch({ epoch: 1, loss: 0.5, accuracy: 0.9, samplesPerSec: 100, seconds: 2, lr: 0.1 });
  const text = chunks.join('');
  assert.match(text, /epoch 1\/2  step 1\/10  loss 1\.0000  100 samples\/s  ETA 9s/);
  assert.match(text, /epoch 1\/2  loss 0\.5000  train acc 90\.00%  100 samples\/s  2\.0s/);
  chunks.length = 0;
  const json = createReporter(2, { out, json: true });
  json.step({ epoch: 1, epochs: 2, batch: 1, batches: 10, loss: 1, samplesPerSec: 100, etaSeconds: 9 });
  json.epoch({ epoch: 1, loss: 0.5, samplesPerSec: 100, seconds: 2, lr: 0.1 });
  assert.deepEqual(chunks.map((c) => JSON.parse(c)), [{ epoch: 1, loss: 0.5, samplesPerSec: 100, seconds: 2, lr: 0.1 }]);
  chunks.length = 0;
  const bar = createReporter(2, { out: { ...out, isTTY: true, columns: 200 } });
  bar.step({ epoch: 1, epochs: 2, batch: 5, batches: 10, loss: 1, samplesPerSec: 100, etaSeconds: 5 });
  assert.match(chunks.join(''), /^\repoch 1\/2 █+░+ 5\/10  loss 1\.0000  100 samples\/s  ETA 5s/);
});

// The CLI runs in a child process (the test runner itself talks over this process's stdout).
function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
  const code = `import(${JSON.stringify(main)}).then((m) => m.main(${JSON.stringify(args)})).then((c) => process.exit(c))`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `tessera export` in this process (a child process costs seconds of start-up): its exit code and printed lines. */
async function exportCli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const { run } = await import('../../src/cli/export.js');
  const out: string[] = [], err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const status = await run(args.slice(1));
    return { status, stdout: out.join('\n') + '\n', stderr: err.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

test('tessera train mnist-mlp (on 128 records) writes a checkpoint that tessera eval reads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
  try {
    const trained = cli(['train', 'mnist-mlp', '--limit', '128', '--epochs', '1', '--batch-size', '32', '--out', dir, '--json']);
    assert.equal(trained.status, 0, trained.stderr);
    assert.ok(existsSync(join(dir, 'checkpoint.safetensors')));
    const records = trained.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const epochs = records.filter((r) => r.epoch === 1);
    assert.equal(epochs.length, 1);
    for (const key of ['loss', 'accuracy', 'samplesPerSec', 'seconds']) assert.equal(typeof epochs[0]![key], 'number', key);
    const final = records.find((r) => r.event === 'final') as { testAccuracy: number };
    assert.equal(typeof final.testAccuracy, 'number');
    const evaluated = cli(['eval', dir, '--json']);
    assert.equal(evaluated.status, 0, evaluated.stderr);
    const e = JSON.parse(evaluated.stdout.trim()) as { recipe: string; testAccuracy: number };
    assert.equal(e.recipe, 'mnist-mlp');
    assert.equal(e.testAccuracy, final.testAccuracy);
    // tessera export: the model as ONNX with a dynamic batch, checked by tessera's importer.
    const exported = await exportCli(['export', dir, '--json']);
    assert.equal(exported.status, 0, exported.stderr);
    const x = JSON.parse(exported.stdout.trim()) as { file: string; input: string; output: string; maxAbsDiff: number };
    assert.deepEqual([x.file, x.input, x.output], [join(dir, 'model.onnx'), '[batch, 784]', '[batch, 10]']);
    assert.ok(existsSync(x.file) && x.maxAbsDiff < 1e-4, `${x.maxAbsDiff}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('training steps release their tensors: the live tensor count does not grow from epoch to epoch', async () => {
  const live: number[] = [];
  const counting: Reporter = { step: () => undefined, info: () => undefined, epoch: () => void live.push(t.memoryStats().liveTensors) };
  await train(tiny, { ...tiny.defaults, epochs: 4, seed: 1, reporter: counting });
  assert.equal(live.length, 4);
  // Each epoch runs 8 steps of ~40 ops; without disposal the count would grow by hundreds per epoch.
  assert.ok(live[3]! <= live[1]! + 5, `live tensors per epoch: ${live.join(', ')}`);
});

test('tessera generate samples from a char-lstm checkpoint; eval rejects a non-checkpoint path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-gen-'));
  try {
    const trained = cli(['train', 'char-lstm', '--stop-after', '1', '--batch-size', '2', '--out', dir]);
    assert.equal(trained.status, 0, trained.stderr);
    assert.match(trained.stdout, /stopped after 1 steps/);
    const gen = cli(['generate', dir, '--prompt', 'KING:', '--tokens', '12', '--seed', '3']);
    assert.equal(gen.status, 0, gen.stderr);
    const text = gen.stdout.replace(/\n$/, '');
    assert.ok(text.startsWith('KING:'));
    assert.equal([...text].length, 'KING:'.length + 12);
    // Seeded: the same checkpoint, prompt and seed give the same text in this process too.
    const { task } = await loadTrainedTask(recipes, dir);
    t.manualSeed(3);
    assert.equal(task.generate!({ prompt: 'KING:', maxNewTokens: 12, temperature: 0.8 }), text);
    // An LSTM unrolls one step per time step: export keeps the sequence length static, and says so.
    const exported = await exportCli(['export', dir, '--out', join(dir, 'lstm.onnx')]);
    assert.equal(exported.status, 0, exported.stderr);
    assert.match(exported.stdout, /input {2}int32 \[batch, 48\]/);
    assert.match(exported.stdout, /note: the sequence length stays static/);
    await assert.rejects(exportCli(['export', join(dir, 'nope')]), /no checkpoint at .*nope/);
    await assert.rejects(readCheckpoint(join(dir, 'nope')), /no checkpoint at .*nope/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tessera train: an unknown recipe or a malformed number is a usage error (exit 2) that says what was wrong', async () => {
  const { run } = await import('../../src/cli/train.js');
  const errors: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => void errors.push(a.join(' '));
  try {
    assert.equal(await run(['no-such-recipe']), 2);
    assert.match(errors.join('\n'), /unknown recipe 'no-such-recipe' \(known: mnist-mlp, mnist-cnn/);
    assert.equal(await run(['mnist-mlp', '--epochs', 'x']), 2);
    assert.match(errors.join('\n'), /--epochs must be an integer, got 'x'/);
    assert.equal(await run(['mnist-mlp', '--bogus', '1']), 2);
    assert.match(errors.join('\n'), /unknown option --bogus/);
    assert.equal(await run(['mnist-mlp', '--accumulate', '0']), 2);
    assert.match(errors.join('\n'), /--accumulate must be at least 1 \(micro-batches per batch\), got 0/);
  } finally {
    console.error = original;
  }
});

test('the progress bar narrows to fit the terminal so the ETA is never cut off', () => {
  const chunks: string[] = [];
  const bar = createReporter(3, { out: { write: (s: string) => chunks.push(s), isTTY: true, columns: 80 } });
  bar.step({ epoch: 2, epochs: 3, batch: 70, batches: 141, loss: 0.25, samplesPerSec: 1234, etaSeconds: 65 });
  const line = chunks.join('').replace('\r', '').replace('\x1b[K', '');
  assert.ok(line.length <= 79, `${line.length} columns`);
  assert.match(line, /^epoch 2\/3 [█░]+ 70\/141  loss 0\.2500  1234 samples\/s  ETA 1m05s$/);
});

// The same task in float64 without dropout, so that micro-batches can be compared to whole batches
// at float64 precision (a scaling error would be ~1e-2, rounding differences ~1e-15).
const tiny64: Recipe = {
  ...tiny,
  name: 'tiny64',
  async build(o) {
    const g = new t.Generator(321);
    const x = t.randn([60, 4], { generator: g, dtype: 'float64' });
    const y = t.randint(0, 3, [60], { generator: g });
    t.manualSeed(9);
    const f64 = new Sequential(new Linear(4, 16, { dtype: 'float64' }), new ReLU(), new Linear(16, 3, { dtype: 'float64' }));
    const optimizer = new Adam(f64.parameters(), { lr: o.lr }) as unknown as Optimizer<BaseOptions>;
    const loader = new DataLoader<t.Tensor[], t.Tensor[]>(new TensorDataset([x, y]), { batchSize: o.batchSize, shuffle: true, seed: o.seed });
    return {
      model: f64, optimizer, loader, description: 'tiny64',
      lossOf: ([xb, yb]) => ({ loss: crossEntropy(f64.call(xb!), yb!), samples: yb!.shape[0]! }),
      evaluate: () => ({ testAccuracy: 0.5 }),
    };
  },
};

test('gradient accumulation: micro-batches (even, uneven, one row each) give the whole-batch run within float64 rounding', async () => {
  const options = { ...tiny64.defaults, epochs: 2, seed: 4, reporter: silent, evalEachEpoch: false };
  const whole = await train(tiny64, options);
  for (const accumulate of [2, 3, 5, 20]) {
    const split = await train(tiny64, { ...options, accumulate });
    assert.equal(split.steps, whole.steps, `accumulate ${accumulate}: one optimizer step per batch`);
    const a = paramsOf(split.task).flat(), b = paramsOf(whole.task).flat();
    const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    assert.ok(worst < 1e-12, `accumulate ${accumulate}: parameters differ by ${worst}`);
    assert.ok(Math.abs(split.epochs[1]!.loss - whole.epochs[1]!.loss) < 1e-12, `accumulate ${accumulate}: reported loss`);
  }
  await assert.rejects(train(tiny64, { ...options, accumulate: 0 }), /accumulate must be a positive integer/);
});

test('activation checkpointing and offloading (--checkpoint, --offload): char-gpt trains to the same parameters; recipes without blocks refuse them', async () => {
  const options = { ...recipes['char-gpt']!.defaults, batchSize: 4, epochs: 1, seed: 5, stopAfterSteps: 3, reporter: silent, evalEachEpoch: false };
  const plain = await train(recipes['char-gpt']!, options);
  for (const activations of [{ checkpointActivations: true }, { offloadActivations: true }]) {
    const other = await train(recipes['char-gpt']!, { ...options, ...activations });
    assert.equal(other.steps, 3);
    const a = paramsOf(other.task).flat(), b = paramsOf(plain.task).flat();
    const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    assert.ok(worst < 1e-6, `${JSON.stringify(activations)}: parameters differ by ${worst}`);
  }

  const { run } = await import('../../src/cli/train.js');
  const errors: string[] = [];
  const original = console.error;
  console.error = (...m: unknown[]) => void errors.push(m.join(' '));
  try {
    assert.equal(await run(['mnist-mlp', '--checkpoint']), 2);
    assert.match(errors.join('\n'), /--checkpoint: recipe 'mnist-mlp' has no blocks to recompute \(supported: char-gpt\)/);
    assert.equal(await run(['char-gpt', '--checkpoint', '--offload']), 2);
    assert.match(errors.join('\n'), /--checkpoint and --offload are two ways to keep block activations off the backend; choose one/);
  } finally {
    console.error = original;
  }
});

test('an fp16 mixed-precision run resumes bit for bit: the mode and the loss scaler are in the checkpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-amp-resume-'));
  try {
    const options = { ...tiny.defaults, epochs: 2, seed: 6, reporter: silent, amp: 'fp16' as const, evalEachEpoch: false };
    const straight = await train(tiny, options);
    await train(tiny, { ...options, outDir: dir, stopAfterSteps: 5 });
    const saved = await readCheckpoint(dir) as unknown as { amp?: { mode: string; scaler: { scale: number } } };
    assert.equal(saved.amp?.mode, 'fp16');
    assert.equal(typeof saved.amp?.scaler.scale, 'number');
    // Without --amp the resumed run continues in the saved mode; a different mode is refused.
    const { amp: _amp, ...withoutAmp } = options;
    const resumed = await train(tiny, { ...withoutAmp, resume: dir });
    assert.deepEqual(paramsOf(resumed.task), paramsOf(straight.task));
    await assert.rejects(train(tiny, { ...options, amp: 'bf16', resume: dir }), /--resume: the checkpoint was trained with --amp fp16; resume it with --amp fp16 or without --amp/);
    assert.deepEqual(resumed.amp, straight.amp);
    // The scale comes from the checkpoint: one saved at 2^10 resumes at 2^10 (no overflow here, and
    // growth waits 2000 steps), not at the initial 2^16.
    const tree = await readCheckpoint(dir) as unknown as { amp: { scaler: { scale: number } } };
    tree.amp.scaler.scale = 1024;
    await t.io.saveState(join(dir, 'checkpoint.safetensors'), tree as never, { recipe: 'tiny' });
    const rescaled = await train(tiny, { ...withoutAmp, resume: dir });
    assert.equal(rescaled.amp?.lossScale, 1024);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('train with jit: each step one compiled graph (lr and momentum from OneCycleLR live), the same losses and accuracy as eager steps', async () => {
  const recipe = recipes['mnist-mlp']!;
  const options = { ...recipe.defaults, epochs: 1, batchSize: 64, seed: 4, trainLimit: 640, evalEachEpoch: false, reporter: silent };
  const eager = await train(recipe, options);
  const compiled = await train(recipe, { ...options, jit: true });
  assert.equal(compiled.epochs[0]!.accuracy, eager.epochs[0]!.accuracy);
  assert.ok(Math.abs(compiled.epochs[0]!.loss - eager.epochs[0]!.loss) < 1e-5, `${compiled.epochs[0]!.loss} vs ${eager.epochs[0]!.loss}`);
  await assert.rejects(train(recipe, { ...options, jit: true, accumulate: 2 }), /jit compiles one whole step; it does not combine with gradient accumulation/);
});
