// Train a small MLP on the shipped MNIST digits, then quantize its Linear layers three ways and
// compare accuracy, size and inference time: int8 weights, int4 weights in groups of 32, and
// dynamic int8 (int8 weights and activations, int32 sums). docs/quantization.md explains each.
// Run: npx tsx examples/quantize-mlp.ts   (under a minute on two cores)
import { manualSeed, noGrad, nn, optim, data, quant, type Tensor } from '../src/index.js';
import { DataLoader } from '../src/data/loader.js';
import { imageTensorDataset } from '../src/data/images.js';
import { crossEntropy } from '../src/ops/nn/index.js';

manualSeed(0);
const { train, test } = await data.loadMnist10k({ seed: 0 });
const trainSet = imageTensorDataset(train, { layout: 'flat' });
const [testX, testY] = imageTensorDataset(test, { layout: 'flat' }).getBatch(Int32Array.from({ length: test.count }, (_, i) => i));
const loader = new DataLoader<Tensor[], Tensor[]>(trainSet, { batchSize: 64, shuffle: true, seed: 0 });

const makeModel = () => new nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(256, 10));
const model = makeModel();
const optimizer = new optim.Adam(model.parameters(), { lr: 2e-3 });
for (let epoch = 1; epoch <= 3; epoch++) {
  for await (const [x, y] of loader) {
    optimizer.zeroGrad();
    crossEntropy(model.call(x!), y!).backward();
    optimizer.step();
  }
}
model.eval();

/** Test accuracy and the median time of a forward pass over the 1,000 test images. */
function evaluate(m: nn.Module): { accuracy: number; ms: number } {
  const times: number[] = [];
  let predicted: ArrayLike<number> = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    predicted = noGrad(() => (m.call(testX!) as Tensor).argmax(1)).data();
    times.push(performance.now() - t0);
  }
  const labels = testY!.data();
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) right++;
  return { accuracy: right / labels.length, ms: times.sort((a, b) => a - b)[3]! };
}

const variants: [string, quant.QuantizeModelOptions | undefined][] = [
  ['float32', undefined],
  ['int8 weights (per channel)', { bits: 8 }],
  ['int4 weights (groups of 32)', { bits: 4, scheme: 'group', groupSize: 32 }],
  ['dynamic int8 (weights and activations)', { bits: 8, activations: 'dynamic-int8' }],
];
console.log('variant                                   bytes   test accuracy   forward (1,000 images)');
for (const [name, options] of variants) {
  let m: nn.Module = model;
  if (options !== undefined) {
    // quantizeModel swaps the Linear layers of a copy (it changes the model it is given).
    m = makeModel();
    m.loadStateDict(model.stateDict());
    m.eval();
    m = quant.quantizeModel(m, options).model;
  }
  const { accuracy, ms } = evaluate(m);
  console.log(`${name.padEnd(40)} ${String(quant.modelBytes(m)).padStart(7)}   ${(100 * accuracy).toFixed(2).padStart(12)}%   ${ms.toFixed(2).padStart(8)} ms`);
}
