// An LSTM learns to continue a sine wave: sequence regression with a recurrent layer, SGD with
// momentum, a step schedule and gradient clipping.
// Run: npx tsx examples/lstm-sine.ts
import { manualSeed, nn, optim, tensor, type Tensor } from '../src/index.js';
import { mseLoss } from '../src/ops/nn/index.js';

manualSeed(0);
class Forecaster extends nn.Module {
  lstm = new nn.LSTM(1, 16, { batchFirst: true });
  head = new nn.Linear(16, 1);
  override forward(x: Tensor): Tensor {
    return this.head.call(this.lstm.call(x)[0]);
  }
}

const model = new Forecaster();
const optimizer = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
const scheduler = new optim.StepLR(optimizer, 100, 0.5);
// Batches of 8 windows of 20 steps of sin(0.3 t + phase); the target is the next value.
const window = (phase: number, shift: number) => Array.from({ length: 20 }, (_, t) => [Math.sin(0.3 * (t + shift) + phase)]);
for (let step = 1; step <= 200; step++) {
  const phases = Array.from({ length: 8 }, (_, i) => (step * 8 + i) * 0.7);
  const x = tensor(phases.map((p) => window(p, 0)));
  const y = tensor(phases.map((p) => window(p, 1)));
  optimizer.zeroGrad();
  const loss = mseLoss(model.call(x), y);
  loss.backward();
  optim.clipGradNorm(model.parameters(), 1);
  optimizer.step();
  scheduler.step();
  if (step % 50 === 0) console.log(`step ${step}: mse ${loss.item().toExponential(3)}`);
}
