// tessera's side of the peer benchmark: the three training steps (forward, backward, Adam) and the
// matmul case, built on the public API and the nn / optim modules. Kept free of timing and
// process concerns so that test/bench/bench-smoke.test.ts can run one step of each in-process.

import * as t from '../../src/index.js';
import { Conv2d, Flatten, GPT, Linear, MaxPool2d, ReLU, Sequential, flattenLogits, type Module } from '../../src/nn/index.js';
import { Adam } from '../../src/optim/index.js';
import type { BenchSpec, MatmulCase } from '../spec.js';

type Model = Module<[t.Tensor], t.Tensor>;

/** One optimizer step on a fixed batch; returns the loss computed in that step. */
export type TesseraStep = () => number;

/** How a step runs: op by op (eager), or traced once and replayed as a compiled graph (`t.jit`). */
export interface StepOptions {
  jit?: boolean;
}

function stepOf(model: Model, x: t.Tensor, y: t.Tensor, lr: number, flatten: boolean, options: StepOptions): TesseraStep {
  const params = model.parameters();
  const optimizer = new Adam(params, { lr });
  const lossOf = (): t.Tensor => {
    const logits = model.call(x);
    return flatten ? t.crossEntropy(flattenLogits(logits), y.reshape([-1])) : t.crossEntropy(logits, y);
  };
  if (options.jit === true) {
    // The whole step (forward, backward, Adam) as one graph: on the wasm backend its fused
    // elementwise kernels, matmul epilogues and one fused optimizer update per parameter.
    const compiled = t.jit(() => {
      optimizer.zeroGrad();
      const loss = lossOf();
      loss.backward();
      optimizer.step();
      return loss;
    });
    return () => {
      // The graph writes fresh gradients on each call; free the previous ones as the eager step does.
      for (const p of params) {
        p.grad?.dispose();
        p.grad = undefined;
      }
      const loss = compiled();
      const value = loss.item();
      loss.dispose();
      return value;
    };
  }
  // As src/train's trainStep: everything the step creates is disposed at its end (the wasm backend
  // would otherwise keep every activation until the garbage collector runs, growing its memory by
  // the step's whole footprint each step), except the gradients, kept until the next step.
  return () => {
    for (const p of params) p.grad?.dispose();
    optimizer.zeroGrad();
    return t.scope(() => {
      const loss = lossOf();
      loss.backward();
      for (const p of params) if (p.grad !== undefined) t.keep(p.grad);
      optimizer.step();
      return loss.item();
    });
  };
}

/** MLP sizes[0]→…→sizes[last] with ReLU between the Linear layers, on a random batch. */
export function tesseraMlpStep(spec: BenchSpec, options: StepOptions = {}): TesseraStep {
  t.manualSeed(spec.seed);
  const { batch, sizes } = spec.mlp;
  const layers: Model[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    if (i > 0) layers.push(new ReLU());
    layers.push(new Linear(sizes[i]!, sizes[i + 1]!));
  }
  const x = t.randn([batch, sizes[0]!]);
  const y = t.randint(0, sizes[sizes.length - 1]!, [batch]);
  return stepOf(new Sequential(...layers), x, y, spec.lr, false, options);
}

/** The two-convolution CNN of bench/spec.ts (NCHW, padding 1 so that 28 → 14 → 7). */
export function tesseraCnnStep(spec: BenchSpec, options: StepOptions = {}): TesseraStep {
  t.manualSeed(spec.seed);
  const c = spec.cnn;
  const flat = c.c2 * (c.hw / 4) ** 2;
  const model = new Sequential(
    new Conv2d(1, c.c1, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2),
    new Conv2d(c.c1, c.c2, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2),
    new Flatten(), new Linear(flat, c.hidden), new ReLU(), new Linear(c.hidden, c.classes),
  );
  const x = t.randn([c.batch, 1, c.hw, c.hw]);
  const y = t.randint(0, c.classes, [c.batch]);
  return stepOf(model, x, y, spec.lr, false, options);
}

/** nn.GPT (pre-norm, GELU, causal attention, tied head) on random next-token data. */
export function tesseraGptStep(spec: BenchSpec, options: StepOptions = {}): TesseraStep {
  t.manualSeed(spec.seed);
  const g = spec.gpt;
  const model = new GPT({ vocabSize: g.vocab, blockSize: g.context, embedDim: g.d, numHeads: g.heads, numLayers: g.layers });
  const x = t.randint(0, g.vocab, [g.batch, g.context]);
  const y = t.randint(0, g.vocab, [g.batch, g.context]);
  return stepOf(model, x, y, spec.lr, true, options);
}

/** A float32 product of random [m, k] and [k, n] matrices; `run` computes and frees one result. */
export function tesseraMatmul(c: MatmulCase): { run: () => void; dispose: () => void } {
  const a = t.randn([c.m, c.k]);
  const b = t.randn([c.k, c.n]);
  return {
    run: () => t.matmul(a, b).dispose(),
    dispose: () => { a.dispose(); b.dispose(); },
  };
}
