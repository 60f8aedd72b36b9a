// Character-level language-model recipes on tiny Shakespeare (shipped in data/): char-gpt (a small
// GPT) and char-lstm (an LSTM). An "epoch" is a fixed number of batches of windows at random offsets
// of the training text; the offset of record i in epoch e comes from a generator seeded with
// (seed, e, i), so resumed runs read the same windows. The last 10% of the text is held out.
import type { Tensor } from '../../core/tensor.js';
import { Generator } from '../../core/random.js';
import { DataLoader } from '../../data/loader.js';
import type { Dataset } from '../../data/dataset.js';
import { loadTinyShakespeare, readTextFile } from '../../data/datasets.js';
import { mixSeed, SeededRandom } from '../../data/random.js';
import { CharVocab } from '../../data/text.js';
import { fromValues } from '../../ops/creation.js';
import { narrow, reshape } from '../../ops/shape.js';
import { crossEntropy } from '../../ops/nn/index.js';
import { Module, type AnyModule } from '../../nn/module.js';
import { Embedding } from '../../nn/layers/dropout.js';
import { Linear } from '../../nn/layers/linear.js';
import { LSTM } from '../../nn/layers/recurrent.js';
import { GPT, sampleToken } from '../../nn/layers/transformer.js';
import { AdamW } from '../../optim/adam.js';
import { LambdaLR, warmupCosine } from '../../optim/scheduler.js';
import type { BaseOptions, Optimizer } from '../../optim/optimizer.js';
import type { GenerateOptions, Recipe, RecipeOptions, TrainTask } from '../recipe.js';

/** Windows of seqLen + 1 characters at seeded random offsets: [input ids, next-character ids]. */
export class TextWindows implements Dataset<Tensor[], Tensor[]> {
  constructor(
    readonly ids: Int32Array,
    readonly length: number,
    readonly seqLen: number,
    readonly seed: number,
    readonly epochOf: () => number,
  ) {
    if (ids.length < seqLen + 2) throw new Error(`TextWindows: the text has ${ids.length} characters, fewer than a window of ${seqLen + 1}.`);
  }

  /** One record: [input ids [seqLen], next ids [seqLen]]. */
  get(index: number): Tensor[] {
    return this.getBatch(Int32Array.of(index)).map((t) => reshape(t, t.shape.slice(1)));
  }

  getBatch(indices: Int32Array): Tensor[] {
    const T = this.seqLen;
    const x = new Int32Array(indices.length * T), y = new Int32Array(indices.length * T);
    const epoch = this.epochOf();
    for (let b = 0; b < indices.length; b++) {
      const start = new SeededRandom(mixSeed(this.seed, epoch, indices[b]!)).nextInt(this.ids.length - T - 1);
      x.set(this.ids.subarray(start, start + T), b * T);
      y.set(this.ids.subarray(start + 1, start + T + 1), b * T);
    }
    return [fromValues(x, [indices.length, T], 'int32'), fromValues(y, [indices.length, T], 'int32')];
  }
}

/** A character model: ids [B, T] → logits [B, T, V], and sampling. */
interface CharModel {
  module: Module<[Tensor], Tensor>;
  sample(prompt: Int32Array, options: GenerateOptions & { generator: Generator }): Int32Array;
}

interface LmSetup {
  options: RecipeOptions;
  seqLen: number;
  stepsPerEpoch: number;
  makeModel(vocabSize: number): CharModel;
  weightDecay: number;
}

async function loadText(options: RecipeOptions): Promise<{ text: string; source: string }> {
  if (options.dataDir !== undefined) return { text: await readTextFile(options.dataDir), source: options.dataDir };
  return { text: await loadTinyShakespeare(), source: 'tiny Shakespeare (shipped)' };
}

async function languageModelTask(s: LmSetup): Promise<TrainTask> {
  const { text, source } = await loadText(s.options);
  const vocab = CharVocab.fromText(text);
  const ids = vocab.encode(text);
  const split = Math.floor(ids.length * 0.9);
  const train = ids.subarray(0, s.options.trainLimit !== undefined ? Math.min(split, Math.max(s.seqLen + 2, s.options.trainLimit)) : split);
  const val = ids.subarray(split);
  const model = s.makeModel(vocab.size);
  let loader: DataLoader<Tensor[], Tensor[]> | undefined = undefined;
  const windows = new TextWindows(train, s.stepsPerEpoch * s.options.batchSize, s.seqLen, s.options.seed, () => loader?.epoch ?? 0);
  loader = new DataLoader<Tensor[], Tensor[]>(windows, { batchSize: s.options.batchSize, shuffle: false, seed: s.options.seed });
  const optimizer = new AdamW(model.module.parameters(), { lr: s.options.lr, betas: [0.9, 0.99], weightDecay: s.weightDecay }) as unknown as Optimizer<BaseOptions>;
  const totalSteps = s.options.epochs * s.stepsPerEpoch;
  const scheduler = new LambdaLR(optimizer, warmupCosine(Math.min(50, Math.floor(totalSteps / 10)), totalSteps, 0.1));
  const lossOf = (x: Tensor, y: Tensor): Tensor => {
    const logits = model.module.call(x);
    return crossEntropy(reshape(logits, [-1, vocab.size]), reshape(y, [-1]));
  };
  const generate = (g: GenerateOptions): string => {
    const prompt = vocab.encode(g.prompt.length > 0 ? g.prompt : '\n');
    const out = model.sample(prompt, { ...g, generator: new Generator(s.options.seed) });
    return g.prompt + vocab.decode(out);
  };
  // Validation: 16 evenly spaced windows of the held-out text.
  const valWindows = 16;
  const valStarts = Array.from({ length: valWindows }, (_, i) => Math.floor((i * (val.length - s.seqLen - 1)) / valWindows));
  return {
    model: model.module as unknown as AnyModule,
    optimizer,
    scheduler,
    loader,
    clipGradNorm: 1,
    description: `${source}: ${train.length.toLocaleString('en-US')} training / ${val.length.toLocaleString('en-US')} validation characters, ` +
      `vocabulary ${vocab.size}, windows of ${s.seqLen}, ${s.stepsPerEpoch} steps per epoch`,
    lossOf([x, y]) {
      return { loss: lossOf(x!, y!), samples: x!.shape[0]! };
    },
    evaluate() {
      const x = new Int32Array(valWindows * s.seqLen), y = new Int32Array(valWindows * s.seqLen);
      valStarts.forEach((start, b) => {
        x.set(val.subarray(start, start + s.seqLen), b * s.seqLen);
        y.set(val.subarray(start + 1, start + s.seqLen + 1), b * s.seqLen);
      });
      const valLoss = lossOf(fromValues(x, [valWindows, s.seqLen], 'int32'), fromValues(y, [valWindows, s.seqLen], 'int32')).item();
      return { valLoss, sample: generate({ prompt: '\n', maxNewTokens: 200, temperature: 0.8 }) };
    },
    generate,
  };
}

/** The GPT of char-gpt: 2 layers, 4 heads, width 64, context 64. */
function charGpt(vocabSize: number, seqLen: number, activations: { checkpoint: boolean; offload: boolean }): CharModel {
  const gpt = new GPT({ vocabSize, blockSize: seqLen, embedDim: 64, numHeads: 4, numLayers: 2, dropout: 0, ...activations });
  return {
    module: gpt as unknown as Module<[Tensor], Tensor>,
    sample(prompt, o) {
      const idx = fromValues(prompt, [1, prompt.length], 'int32');
      const out = gpt.generate(idx, { maxNewTokens: o.maxNewTokens, temperature: o.temperature, generator: o.generator, ...(o.topK !== undefined ? { topK: o.topK } : {}) });
      return narrow(out, 1, prompt.length, o.maxNewTokens).data() as Int32Array;
    },
  };
}

/** Embedding → LSTM → linear head, run step by step (with its state) when sampling. */
export class CharLstm extends Module {
  embed: Embedding;
  lstm: LSTM;
  head: Linear;
  constructor(readonly vocabSize: number, embedDim = 32, hidden = 128) {
    super();
    this.embed = new Embedding(vocabSize, embedDim);
    this.lstm = new LSTM(embedDim, hidden, { batchFirst: true });
    this.head = new Linear(hidden, vocabSize);
  }
  override forward(ids: Tensor): Tensor {
    return this.head.call(this.lstm.call(this.embed.call(ids))[0]);
  }
  sample(prompt: Int32Array, o: GenerateOptions & { generator: Generator }): Int32Array {
    const out = new Int32Array(o.maxNewTokens);
    let [y, state] = this.lstm.call(this.embed.call(fromValues(prompt, [1, prompt.length], 'int32')));
    for (let n = 0; n < o.maxNewTokens; n++) {
      const logits = this.head.call(narrow(y, 1, y.shape[1]! - 1, 1)).data();
      out[n] = sampleToken(logits, { temperature: o.temperature, generator: o.generator, ...(o.topK !== undefined ? { topK: o.topK } : {}) });
      [y, state] = this.lstm.call(this.embed.call(fromValues(Int32Array.of(out[n]!), [1, 1], 'int32')), state);
    }
    return out;
  }
}

export const charGptRecipe: Recipe = {
  name: 'char-gpt',
  summary: 'character-level GPT (2 layers, 4 heads, width 64, context 64) on tiny Shakespeare (or --data FILE)',
  kind: 'language-model',
  // Tuned for validation loss < 1.9 nats/char within 10 minutes on 2 cores: 1500 steps of 32
  // windows (3.1M characters). Measured on the shared (loaded) machine with a 1000-step schedule
  // (--epochs 4, same lr and batch): val 2.02 at step 500, 1.86 at 750, 1.82 at 1000, in 269 s;
  // at 400 steps lr 1e-2 reached 2.09 where 4e-3 reached 2.17 (warmup and clipping keep it stable).
  defaults: { epochs: 6, batchSize: 32, lr: 1e-2 },
  build: (options) => languageModelTask({ options, seqLen: 64, stepsPerEpoch: 250, weightDecay: 0.01, makeModel: (v) => charGpt(v, 64, { checkpoint: options.checkpointActivations === true, offload: options.offloadActivations === true }) }),
  checkpointable: true,
};

export const charLstmRecipe: Recipe = {
  name: 'char-lstm',
  summary: 'character-level LSTM (embedding 32, hidden 128) on tiny Shakespeare (or --data FILE)',
  kind: 'language-model',
  defaults: { epochs: 4, batchSize: 16, lr: 5e-3 },
  build: (options) => languageModelTask({
    options, seqLen: 48, stepsPerEpoch: 50, weightDecay: 0,
    makeModel: (v) => {
      const m = new CharLstm(v);
      return { module: m, sample: (p, o) => m.sample(p, o) };
    },
  }),
};
