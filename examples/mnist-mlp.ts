// Train an MLP on the 10,000 MNIST digits shipped with tessera, PyTorch style.
// Run: npx tsx examples/mnist-mlp.ts   (about a minute on two cores with the reference backend)
import { manualSeed, noGrad, nn, optim, data, type Tensor } from '../src/index.js';
import { TensorDataset } from '../src/data/dataset.js';
import { DataLoader } from '../src/data/loader.js';
import { imageTensorDataset } from '../src/data/images.js';
import { crossEntropy } from '../src/ops/nn/index.js';

manualSeed(0);
const { train, test } = await data.loadMnist10k({ seed: 0 });
const trainSet = imageTensorDataset(train, { layout: 'flat' });
const testSet = imageTensorDataset(test, { layout: 'flat' });
const loader = new DataLoader<Tensor[], Tensor[]>(trainSet, { batchSize: 64, shuffle: true, seed: 0 });

const model = new nn.Sequential(new nn.Linear(784, 128), new nn.ReLU(), new nn.Linear(128, 10));
console.log(model.summary([1, 784]));
const epochs = 6;
const optimizer = new optim.Adam(model.parameters(), { lr: 3e-3 });
const scheduler = new optim.OneCycleLR(optimizer, 3e-3, { totalSteps: epochs * loader.length });

function accuracy(set: TensorDataset): number {
  model.eval();
  const [x, y] = set.getBatch(Int32Array.from({ length: set.length }, (_, i) => i));
  const predicted = noGrad(() => model.call(x!).argmax(1)).data();
  const labels = y!.data();
  model.train();
  return predicted.filter((p, i) => p === labels[i]).length / set.length;
}

for (let epoch = 1; epoch <= epochs; epoch++) {
  let total = 0;
  for await (const [x, y] of loader) {
    optimizer.zeroGrad();
    const loss = crossEntropy(model.call(x!), y!);
    loss.backward();
    optimizer.step();
    scheduler.step();
    total += loss.item();
  }
  console.log(`epoch ${epoch}: loss ${(total / loader.length).toFixed(4)}, test accuracy ${(100 * accuracy(testSet)).toFixed(2)}%`);
}
