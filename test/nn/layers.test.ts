import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import * as nn from '../../src/nn/index.js';
import { checkAgainstReference, reference, f64, assertClose } from './reference.js';

const o64 = { dtype: 'float64' } as const;
const cases: Record<string, () => nn.AnyModule> = {
  conv2d: () => new nn.Conv2d(2, 3, 3, { stride: 2, padding: 1, ...o64 }),
  conv2d_groups_dilation: () => new nn.Conv2d(4, 2, [2, 3], { dilation: [2, 1], groups: 2, bias: false, ...o64 }),
  conv1d: () => new nn.Conv1d(2, 3, 3, { padding: 1, ...o64 }),
  conv3d: () => new nn.Conv3d(1, 2, 2, o64),
  conv_transpose2d: () => new nn.ConvTranspose2d(2, 3, 3, { stride: 2, padding: 1, outputPadding: 1, ...o64 }),
  batchnorm2d_train: () => new nn.BatchNorm2d(3, o64),
  batchnorm2d_eval: () => new nn.BatchNorm2d(3, o64).eval(),
  batchnorm1d_train: () => new nn.BatchNorm1d(4, { momentum: 0.3, ...o64 }),
  layernorm: () => new nn.LayerNorm([3, 4], o64),
  maxpool2d: () => new nn.MaxPool2d(2, { stride: 1, padding: 1 }),
  avgpool2d: () => new nn.AvgPool2d(3, { stride: 2, padding: 1 }),
  adaptive_avgpool2d: () => new nn.AdaptiveAvgPool2d([2, 3]),
};

for (const [name, make] of Object.entries(cases)) {
  test(`${name} matches PyTorch (float64) forward, backward and state updates`, () => {
    const layer = make();
    checkAgainstReference(name, layer, (x) => (layer as nn.Module).call(x));
  });
}

test('BatchNorm counts batches in training only and uses running statistics in eval', () => {
  const bn = new nn.BatchNorm1d(2, o64);
  const x = f64([[1, 2], [3, 6]]);
  bn.call(x);
  bn.call(x);
  assert.equal(bn.num_batches_tracked!.item(), 2);
  assertClose(bn.running_mean!, [0.19 * 2, 0.19 * 4], 'running mean after two batches');
  bn.eval();
  const y = bn.call(x);
  assert.equal(bn.num_batches_tracked!.item(), 2);
  // (x - running_mean) / sqrt(running_var + eps)
  const rm = bn.running_mean!.data(), rv = bn.running_var!.data();
  assertClose(y, [[(1 - rm[0]!) / Math.sqrt(rv[0]! + 1e-5), (2 - rm[1]!) / Math.sqrt(rv[1]! + 1e-5)], [(3 - rm[0]!) / Math.sqrt(rv[0]! + 1e-5), (6 - rm[1]!) / Math.sqrt(rv[1]! + 1e-5)]], 'eval output');
  assert.deepEqual([...bn.stateDict().keys()], ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
  assert.throws(() => bn.call(f64([[1, 2, 3]])), /BatchNorm1d: expects input of rank 2 or 3 with 2 channels in dim 1, got shape \[1, 3\]/);
});

test('RMSNorm: x / sqrt(mean(x^2) + eps) * weight, with gradients matching finite differences', () => {
  const layer = new nn.RMSNorm(3, { eps: 1e-6, ...o64 });
  nn.init.normal_(layer.weight!, 1, 0.5, new t.Generator(1));
  const x = f64([[1, -2, 3], [0.5, 0.25, -1]]).requiresGrad_();
  const y = layer.call(x);
  const w = layer.weight!.data();
  const X = [[1, -2, 3], [0.5, 0.25, -1]];
  const expected = X.map((r) => { const s = Math.sqrt(r.reduce((a, v) => a + v * v, 0) / 3 + 1e-6); return r.map((v, i) => (v / s) * w[i]!); });
  assertClose(y, expected, 'RMSNorm');
  // Gradient check by central differences of sum(y * probe).
  const probe = f64([[0.3, -1, 2], [1, 0.5, -0.7]]);
  y.mul(probe).sum().backward();
  const g = x.grad!.data();
  const h = 1e-6;
  X.flat().forEach((_, k) => {
    const plus = X.flat().map((v, j) => (j === k ? v + h : v)), minus = X.flat().map((v, j) => (j === k ? v - h : v));
    const fp = layer.call(f64(plus).reshape([2, 3])).mul(probe).sum().item();
    const fm = layer.call(f64(minus).reshape([2, 3])).mul(probe).sum().item();
    assert.ok(Math.abs((fp - fm) / (2 * h) - g[k]!) < 1e-6, `dx[${k}]`);
  });
});

test('Dropout is the identity in eval mode and zeroes about p of the elements in training', () => {
  const d = new nn.Dropout(0.25, new t.Generator(3));
  const x = t.ones([4000], o64);
  const y = d.call(x).data();
  const zeros = y.filter((v) => v === 0).length;
  assert.ok(zeros > 850 && zeros < 1150, `${zeros} zeros`);
  assert.ok(y.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-12));
  d.eval();
  assert.equal(d.call(x), x);
});

test('Embedding looks up rows, keeps the padding row at zero without gradient, and rejects float indices', () => {
  const e = new nn.Embedding(5, 3, { paddingIdx: 0, ...o64, generator: new t.Generator(0) });
  assert.deepEqual(e.weight.at(0).toArray(), [0, 0, 0]);
  const idx = t.tensor([[1, 0], [4, 1]], { dtype: 'int32' });
  const y = e.call(idx);
  assert.deepEqual(y.shape, [2, 2, 3]);
  assert.deepEqual(y.at(1, 0).toArray(), e.weight.at(4).toArray());
  y.sum().backward();
  assert.deepEqual(e.weight.grad!.toArray(), [[0, 0, 0], [2, 2, 2], [0, 0, 0], [0, 0, 0], [1, 1, 1]]);
  assert.throws(() => e.call(t.tensor([1.5])), /integer tensor/);
});

test('activation modules match their formulas', () => {
  const x = f64([-2, -0.5, 0, 1.5]);
  const X = [-2, -0.5, 0, 1.5];
  assertClose(new nn.ReLU().call(x), X.map((v) => Math.max(0, v)), 'relu');
  assertClose(new nn.LeakyReLU(0.1).call(x), X.map((v) => (v > 0 ? v : 0.1 * v)), 'leaky');
  assertClose(new nn.Tanh().call(x), X.map(Math.tanh), 'tanh');
  assertClose(new nn.Sigmoid().call(x), X.map((v) => 1 / (1 + Math.exp(-v))), 'sigmoid');
  assertClose(new nn.SiLU().call(x), X.map((v) => v / (1 + Math.exp(-v))), 'silu');
  assertClose(new nn.GELU('tanh').call(x), X.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))), 'gelu tanh');
  const s = X.map(Math.exp), z = s.reduce((a, b) => a + b, 0);
  assertClose(new nn.Softmax().call(x), s.map((v) => v / z), 'softmax');
  assertClose(new nn.LogSoftmax().call(x), s.map((v) => Math.log(v / z)), 'log softmax');
});

test('conv and linear default initialisation follows PyTorch bounds (1/sqrt(fan_in))', () => {
  t.manualSeed(0);
  const c = new nn.Conv2d(3, 4, 5);
  const bound = 1 / Math.sqrt(3 * 25);
  const w = c.weight.data();
  assert.ok(w.every((v) => Math.abs(v) <= bound) && Math.max(...w.map(Math.abs)) > 0.9 * bound);
  assert.ok(c.bias!.data().every((v) => Math.abs(v) <= bound));
  assert.equal(Object.keys(reference).length > 0, true);
});
