// What the browser test runs, written once and run in two places: inside Chromium (the page and
// its worker, bundled by esbuild) and in Node (the test process), so that any difference between
// the two results comes from the platform, not from the code. Platform-neutral: no Node imports.
import * as t from '../../src/index.js';

/** Sizes chosen so that the forward and weight-gradient matmuls pass the SGEMM's threshold for splitting over threads. */
export const MLP = { batch: 128, inputs: 64, hidden: 256, classes: 10, steps: 8, lr: 1e-2, seed: 1234 } as const;

/** Deterministic float32 values in [-scale, scale) from a 32-bit LCG (no Math.random, no platform math). */
function lcgValues(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

/** The losses of `MLP.steps` Adam steps of a seeded two-layer MLP on fixed data, on the current backend. */
export function trainSmallMlp(): number[] {
  const { batch, inputs, hidden, classes, steps, lr, seed } = MLP;
  t.manualSeed(seed);
  const x = t.tensor(lcgValues(batch * inputs, seed, 1), { shape: [batch, inputs], dtype: 'float32' });
  const labels = Int32Array.from(lcgValues(batch, seed + 1, 1), (v) => Math.floor((v + 1) / 2 * classes) % classes);
  const y = t.tensor(labels, { shape: [batch], dtype: 'int32' });
  const model = new t.nn.Sequential(new t.nn.Linear(inputs, hidden), new t.nn.ReLU(), new t.nn.Linear(hidden, classes));
  const optimizer = new t.optim.Adam(model.parameters(), { lr });
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    optimizer.zeroGrad();
    const loss = t.crossEntropy(model.call(x), y);
    loss.backward();
    optimizer.step();
    losses.push(loss.item());
  }
  return losses;
}

function withConvAlgorithm(algorithm: 'im2col' | 'direct', f: () => t.Tensor): t.Tensor {
  const previous = t.setConvAlgorithm(algorithm);
  try {
    return f();
  } finally {
    t.setConvAlgorithm(previous);
  }
}

/** A few op results (odd sizes, so SIMD tails and block edges are crossed), flattened. */
export function opResults(): Record<string, number[]> {
  const values = (shape: number[], seed: number) =>
    t.tensor(lcgValues(shape.reduce((a, b) => a * b, 1), seed, 1), { shape, dtype: 'float32' });
  const flat = (x: t.Tensor) => Array.from(x.data(), Number);
  return {
    matmul: flat(values([33, 47], 1).matmul(values([47, 29], 2))),
    softmax: flat(t.softmax(values([7, 50], 3).mul(4), -1)),
    // Each convolution path forced: the automatic choice is timed, so the page and Node could
    // pick different paths, whose float32 sums are ordered differently.
    conv2dIm2col: flat(withConvAlgorithm('im2col', () => t.conv2d(values([2, 3, 9, 9], 4), values([4, 3, 3, 3], 5), { padding: 1, stride: 2 }))),
    conv2dDirect: flat(withConvAlgorithm('direct', () => t.conv2d(values([2, 3, 9, 9], 4), values([4, 3, 3, 3], 5), { padding: 1, stride: 2 }))),
    tanhSum: flat(values([5, 37], 6).mul(3).tanh().sum(1)),
  };
}

/** Largest |a - b| / max(1, |b|) over two equally long lists (Infinity when the lengths differ). */
export function maxRelativeDifference(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!));
    worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  return worst;
}
