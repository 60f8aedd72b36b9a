import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { loadFixtures, checkCase, checkGradients, checkSecondOrder, rand64, assertClose } from './helpers.js';

for (const c of loadFixtures('loss')) {
  test(`matches PyTorch: ${c.name}`, () => {
    checkCase(c, (x, o) => {
      switch (c.op) {
        case 'crossEntropy': return t.crossEntropy(x.logits!, x.target!, { ...o, weight: x.weight });
        case 'nllLoss': return t.nllLoss(x.input!, x.target!, { ...o, weight: x.weight });
        case 'mseLoss': return t.mseLoss(x.input!, x.target!, o);
        case 'binaryCrossEntropyWithLogits': return t.binaryCrossEntropyWithLogits(x.logits!, x.target!, { ...o, weight: x.weight, posWeight: x.posWeight });
        default: throw new Error(`unknown op ${c.op}`);
      }
    });
  });
}

test('crossEntropy with labelSmoothing + ignoreIndex + weight: float64 gradcheck and second derivatives', () => {
  const target = t.tensor([2, -1, 0, 2], { dtype: 'int32' });
  const weight = t.tensor([0.5, 1, 2], { dtype: 'float64' });
  const f = (x: t.Tensor): t.Tensor => t.crossEntropy(x, target, { ignoreIndex: -1, labelSmoothing: 0.15, weight });
  checkGradients(f, [rand64([4, 3], 1, true)]);
  checkSecondOrder(f, rand64([4, 3], 2, true));
  // The ignored row gets exactly zero gradient.
  const x = rand64([4, 3], 3, true).requiresGrad_();
  f(x).backward();
  assert.deepEqual(x.grad!.at(1).toArray(), [0, 0, 0]);
});

test('binaryCrossEntropyWithLogits: finite for huge logits, exact gradient sigmoid(x) − y even at x = 0', () => {
  const x = t.tensor([-1000, 0, 1000, 0], { dtype: 'float64', requiresGrad: true });
  const y = t.tensor([1, 0, 0, 1], { dtype: 'float64' });
  const loss = t.binaryCrossEntropyWithLogits(x, y, { reduction: 'sum' });
  assert.ok(Math.abs(loss.item() - (1000 + Math.LN2 + 1000 + Math.LN2)) < 1e-9, `loss ${loss.item()}`);
  loss.backward();
  assertClose(x.grad!, t.tensor([-1, 0.5, 1, -0.5], { dtype: 'float64' }), 'd loss / d x');
  checkGradients((z) => t.binaryCrossEntropyWithLogits(z, y, { posWeight: t.tensor([2], { dtype: 'float64' }) }), [t.tensor([-3, 0.2, 4, -0.5], { dtype: 'float64' })]);
  checkSecondOrder((z) => t.binaryCrossEntropyWithLogits(z, y, { reduction: 'none' }), t.tensor([-3, 0.2, 4, -0.5], { dtype: 'float64' }));
});

test('logSigmoid is finite and smooth', () => {
  const x = t.tensor([-800, -1, 0, 1, 800], { dtype: 'float64' });
  const y = t.logSigmoid(x).data();
  assert.deepEqual([y[0], y[4]], [-800, 0]);
  assert.ok(Math.abs(y[2]! + Math.LN2) < 1e-15);
  checkGradients((z) => t.logSigmoid(z), [t.tensor([-2, -0.1, 0.3, 5], { dtype: 'float64' })]);
});

test('nllLoss, mseLoss: float64 gradcheck', () => {
  const target = t.tensor([[1, 0], [2, 1]], { dtype: 'int32' });
  checkGradients((x) => t.nllLoss(x, target, { reduction: 'sum' }), [rand64([2, 3, 2], 4)]);
  checkGradients((a, b) => t.mseLoss(a, b), [rand64([2, 3], 5), rand64([2, 3], 6)]);
});

test('loss errors name the problem', () => {
  const logits = t.zeros([3, 4]);
  assert.throws(() => t.crossEntropy(logits, t.tensor([0, 4, 1], { dtype: 'int32' })), /crossEntropy: targets must be in \[0, 4\) or equal ignoreIndex -100; gather: index 4 is out of bounds/);
  assert.throws(() => t.crossEntropy(logits, t.tensor([0, 1], { dtype: 'int32' })), /needs a target of shape \[3\], got \[2\]/);
  assert.throws(() => t.crossEntropy(logits, t.tensor([0, 1, 2], { dtype: 'int32' }), { labelSmoothing: 2 }), /labelSmoothing must be in \[0, 1\], got 2/);
  assert.throws(() => t.mseLoss(logits, t.zeros([4, 3])), /mseLoss: input \[3, 4\] and target \[4, 3\] must have one shape/);
  assert.throws(() => t.mseLoss(logits, logits, { reduction: 'avg' as t.Reduction }), /reduction must be 'mean', 'sum' or 'none'/);
});

test('crossEntropy on an unbatched [C] input with a 0-d target', () => {
  const logits = t.tensor([1, 2, 3], { dtype: 'float64' });
  const expected = -t.logSoftmax(logits, 0).at(2).item();
  assert.ok(Math.abs(t.crossEntropy(logits, t.tensor(2, { dtype: 'int32' })).item() - expected) < 1e-12);
});
