// A tiny character-level GPT on a few paragraphs of tiny Shakespeare, with a KV-cached sample at the end.
// Run: npx tsx examples/char-gpt.ts
import { manualSeed, nn, optim, data, tensor } from '../src/index.js';
import { crossEntropy } from '../src/ops/nn/index.js';

manualSeed(0);
const text = (await data.loadTinyShakespeare()).slice(0, 20_000);
const vocab = data.CharVocab.fromText(text);
const ids = vocab.encode(text);
const blockSize = 32, batchSize = 8;

const gpt = new nn.GPT({ vocabSize: vocab.size, blockSize, embedDim: 32, numHeads: 2, numLayers: 2 });
const optimizer = new optim.AdamW(gpt.parameters(), { lr: 3e-3 });
const random = new data.SeededRandom(1);

for (let step = 1; step <= 60; step++) {
  const x: number[][] = [], y: number[][] = [];
  for (let b = 0; b < batchSize; b++) {
    const start = random.nextInt(ids.length - blockSize - 1);
    x.push(Array.from(ids.subarray(start, start + blockSize)));
    y.push(Array.from(ids.subarray(start + 1, start + blockSize + 1)));
  }
  optimizer.zeroGrad();
  const logits = gpt.call(tensor(x, { dtype: 'int32' }));
  const loss = crossEntropy(nn.flattenLogits(logits), tensor(y, { dtype: 'int32' }).reshape([-1]));
  loss.backward();
  optim.clipGradNorm(gpt.parameters(), 1);
  optimizer.step();
  if (step % 10 === 0) console.log(`step ${step}: loss ${loss.item().toFixed(3)}`);
}

const prompt = tensor([Array.from(vocab.encode('ROMEO:'))], { dtype: 'int32' });
const out = gpt.generate(prompt, { maxNewTokens: 100, temperature: 0.8, topK: 10 });
console.log(vocab.decode(out.data()));
