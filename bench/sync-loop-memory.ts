// How much wasm memory a synchronous training loop that never disposes anything keeps per step
// (docs/tensors.md, "Memory"). No finalizer can run inside the loop, so what it keeps is what was
// neither disposed by tessera nor by the caller: the MLP's forward activations, and before
// backward() and the optimizers freed their own gradients, those too.
//   node --import tsx bench/sync-loop-memory.ts [--steps=50]
import * as t from '../src/index.js';

const steps = Number(process.argv.find((a) => a.startsWith('--steps='))?.slice(8) ?? 50);
t.setBackend('wasm');
t.manualSeed(0);
const model = new t.nn.Sequential(new t.nn.Linear(784, 512), new t.nn.ReLU(), new t.nn.Linear(512, 512), new t.nn.ReLU(), new t.nn.Linear(512, 10));
const opt = new t.optim.Adam(model.parameters(), { lr: 1e-3 });
const x = t.randn([128, 784]);
const y = t.randint(0, 10, [128]);
const step = (): void => {
  t.crossEntropy(model.forward(x), y).backward();
  opt.step();
  opt.zeroGrad();
};
step(); // the optimizer's state
const start = t.memoryStats().byBackend.wasm!.liveBytes;
for (let i = 0; i < steps; i++) step();
const perStep = (t.memoryStats().byBackend.wasm!.liveBytes - start) / steps;
const activations = 4 * (128 * 512 * 6 + 128 * 10 * 3); // matmul, bias add and ReLU per hidden layer; the logits, their bias add and log-probabilities
console.log(`MLP 784-512-512-10, batch 128, Adam, ${steps} synchronous steps on wasm: ${(perStep / 2 ** 20).toFixed(2)} MiB kept per step ` +
  `(its forward activations: ${(activations / 2 ** 20).toFixed(2)} MiB)`);
