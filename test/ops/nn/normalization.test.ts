// softmax/logSoftmax, layerNorm, rmsNorm, batchNorm and embedding (the 'norm' fixture family), dropout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { loadFixtures, checkCase, checkGradients, checkSecondOrder, rand64, assertClose } from './helpers.js';

for (const c of loadFixtures('norm')) {
  test(`matches PyTorch: ${c.name}`, () => {
    let running: Record<string, t.Tensor> = {};
    const inputs = checkCase(c, (x, o) => {
      switch (c.op) {
        case 'softmax': return t.softmax(x.x!, o.axis as number);
        case 'logSoftmax': return t.logSoftmax(x.x!, o.axis as number);
        case 'layerNorm': return t.layerNorm(x.x!, o.normalizedShape as number[], { weight: x.weight, bias: x.bias, eps: o.eps as number });
        case 'rmsNorm': return t.rmsNorm(x.x!, o.normalizedShape as number[], { weight: x.weight, eps: o.eps as number });
        case 'batchNorm':
          running = { runningMean: x.runningMean!, runningVar: x.runningVar! };
          return t.batchNorm(x.x!, x.runningMean, x.runningVar, { weight: x.weight, bias: x.bias, training: o.training as boolean, momentum: o.momentum as number | undefined, eps: o.eps as number });
        case 'embedding': return t.embedding(x.indices!, x.weight!, { paddingIdx: o.paddingIdx as number | undefined });
        default: throw new Error(`unknown op ${c.op}`);
      }
    });
    // batchNorm's running statistics after the call (updated in place when training, untouched in eval).
    for (const [k, v] of Object.entries(c.after ?? {})) assertClose(inputs[k] ?? running[k]!, v, `${c.name}: ${k} after the call`);
  });
}

test('softmax / logSoftmax: stable for huge logits, Tensor methods, rank 0, int input', () => {
  const x = t.tensor([[1000, 0, -1000], [-Infinity, 0, 0]], { dtype: 'float64' });
  assertClose(x.softmax(-1), t.tensor([[1, 0, 0], [0, 0.5, 0.5]], { dtype: 'float64' }), 'softmax');
  assertClose(x.logSoftmax(1).at(0), t.tensor([0, -1000, -2000], { dtype: 'float64' }), 'logSoftmax');
  assert.equal(t.softmax(t.scalar(3, 'float64'), 0).item(), 1);
  assert.equal(t.softmax(t.tensor([1, 2, 3], { dtype: 'int32' }), 0).dtype, 'float32');
});

test('softmax, logSoftmax and layerNorm: float64 gradcheck (vjp and jvp)', () => {
  checkGradients((x) => t.softmax(x, 1), [rand64([2, 4, 3], 1, true)]);
  checkGradients((x) => t.logSoftmax(x, -1), [rand64([3, 5], 2, true)]);
  checkGradients((x, w, b) => t.layerNorm(x, [2, 3], { weight: w, bias: b }), [rand64([2, 2, 3], 3, true), rand64([2, 3], 4), rand64([2, 3], 5)]);
  checkGradients((x, w) => t.rmsNorm(x, [4], { weight: w, eps: 1e-6 }), [rand64([3, 4], 6, true), rand64([4], 7)]);
});

test('softmax and layerNorm: second derivatives match finite differences', () => {
  checkSecondOrder((x) => t.softmax(x, -1), rand64([2, 4], 8, true));
  checkSecondOrder((x) => t.logSoftmax(x, 0), rand64([3, 2], 9, true));
  const w = rand64([5], 10), b = rand64([5], 11);
  checkSecondOrder((x) => t.layerNorm(x, [5], { weight: w, bias: b }), rand64([2, 5], 12, true));
});

test('batchNorm: float64 gradcheck in training mode (batch statistics) and eval mode', () => {
  checkGradients((x, w, b) => t.batchNorm(x, undefined, undefined, { weight: w, bias: b, training: true }), [rand64([3, 2, 2], 13, true), rand64([2], 14), rand64([2], 15)]);
  const rm = rand64([2], 16), rv = t.tensor([0.7, 1.3], { dtype: 'float64' });
  checkGradients((x) => t.batchNorm(x, rm, rv, { training: false }), [rand64([2, 2, 3], 17, true)]);
});

test('batchNorm: training updates running stats in place (unbiased variance), eval leaves them', () => {
  const x = t.tensor([[1, 2], [3, 6]], { dtype: 'float64' }); // channel 0: {1, 3}, channel 1: {2, 6}
  const rm = t.zeros([2], { dtype: 'float64' }), rv = t.ones([2], { dtype: 'float64' });
  const y = t.batchNorm(x, rm, rv, { training: true, momentum: 0.5, eps: 0 });
  assertClose(y, t.tensor([[-1, -1], [1, 1]], { dtype: 'float64' }), 'normalized with biased variance');
  assertClose(rm, t.tensor([1, 2], { dtype: 'float64' }), 'running mean');
  assertClose(rv, t.tensor([0.5 + 0.5 * 2, 0.5 + 0.5 * 8], { dtype: 'float64' }), 'running var (unbiased)');
  t.batchNorm(x, rm, rv, { training: false });
  assertClose(rm, t.tensor([1, 2], { dtype: 'float64' }), 'eval leaves running mean');
  assert.throws(() => t.batchNorm(x, undefined, undefined), /eval mode \(training: false\) needs runningMean and runningVar/);
  assert.throws(() => t.batchNorm(t.zeros([1, 2]), undefined, undefined, { training: true }), /more than one value per channel/);
});

test('layerNorm and embedding errors', () => {
  assert.throws(() => t.layerNorm(t.zeros([2, 3]), [4]), /layerNorm: normalizedShape \[4\] must equal the last 1 dim\(s\) of the input, whose shape is \[2, 3\]/);
  assert.throws(() => t.embedding(t.tensor([0, 5], { dtype: 'int32' }), t.zeros([5, 2])), /embedding: indices must be in \[0, 5\); gather: index 5 is out of bounds/);
  assert.throws(() => t.embedding(t.tensor([0.5]), t.zeros([5, 2])), /indices must be an integer tensor/);
});

test('embedding: float64 gradcheck w.r.t. the table, padding row gets no gradient', () => {
  const idx = t.tensor([[0, 2], [2, 1]], { dtype: 'int32' });
  checkGradients((w) => t.embedding(idx, w), [rand64([3, 2], 18)]);
  const w = rand64([3, 2], 19).requiresGrad_();
  t.embedding(idx, w, { paddingIdx: -1 }).sum().backward(); // -1 is row 2
  assert.deepEqual(w.grad!.toArray(), [[1, 1], [1, 1], [0, 0]]);
});

test('dropout: identity in eval or p=0; zeros or scales by 1/(1-p); seeded; rate close to p', () => {
  const x = t.ones([20000], { dtype: 'float64' });
  assert.equal(t.dropout(x, 0.3, { training: false }), x);
  assert.equal(t.dropout(x, 0), x);
  const y = t.dropout(x, 0.25, { generator: new t.Generator(5) });
  const values = y.data();
  let kept = 0;
  for (const v of values) {
    assert.ok(v === 0 || Math.abs(v - 4 / 3) < 1e-12, `value ${v}`);
    if (v !== 0) kept++;
  }
  // Binomial(20000, 0.75): standard deviation ≈ 61, so ±400 fails only if the mask is wrong.
  assert.ok(Math.abs(kept - 15000) < 400, `kept ${kept}`);
  assert.deepEqual(t.dropout(x, 0.25, { generator: new t.Generator(5) }).data(), values);
  assert.deepEqual(t.dropout(x, 1).data(), new Float64Array(20000));
  assert.throws(() => t.dropout(x, 1.5), /dropout: probability p must be in \[0, 1\], got 1.5/);
  // The gradient flows only through kept elements, scaled like them.
  const z = t.ones([8], { dtype: 'float64', requiresGrad: true });
  const d = t.dropout(z, 0.5, { generator: new t.Generator(3) });
  d.sum().backward();
  assert.deepEqual(z.grad!.toArray(), Array.from(d.data()));
});

test("PyTorch's positional forms of layerNorm, rmsNorm and batchNorm equal the options forms", () => {
  const x = rand64([4, 3, 2], 20, true), w = rand64([3, 2], 21), b = rand64([3, 2], 22);
  assertClose(t.layerNorm(x, [3, 2], w, b, 1e-3), t.layerNorm(x, [3, 2], { weight: w, bias: b, eps: 1e-3 }), 'layerNorm');
  assertClose(t.layerNorm(x, [2], undefined, undefined, 0.5), t.layerNorm(x, [2], { eps: 0.5 }), 'layerNorm without affine');
  assertClose(t.rmsNorm(x, [3, 2], w, 1e-4), t.rmsNorm(x, [3, 2], { weight: w, eps: 1e-4 }), 'rmsNorm');
  const wc = rand64([3], 23), bc = rand64([3], 24);
  const rm1 = t.zeros([3], { dtype: 'float64' }), rv1 = t.ones([3], { dtype: 'float64' });
  const rm2 = t.zeros([3], { dtype: 'float64' }), rv2 = t.ones([3], { dtype: 'float64' });
  assertClose(t.batchNorm(x, rm1, rv1, wc, bc, true, 0.3, 1e-4), t.batchNorm(x, rm2, rv2, { weight: wc, bias: bc, training: true, momentum: 0.3, eps: 1e-4 }), 'batchNorm');
  assertClose(rm1, rm2, 'running mean');
  assertClose(t.batchNorm(x, rm1, rv1, undefined, undefined, false), t.batchNorm(x, rm1, rv1, { training: false }), 'batchNorm eval');
});
