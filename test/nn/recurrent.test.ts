import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import * as nn from '../../src/nn/index.js';
import { checkAgainstReference } from './reference.js';

const o64 = { dtype: 'float64' } as const;
const outputOf = (m: nn.RNN | nn.LSTM | nn.GRU) => (x: t.Tensor) => m.call(x)[0];

const cases: Array<[string, () => nn.RNN | nn.LSTM | nn.GRU, ((m: nn.LSTM) => (x: t.Tensor) => t.Tensor)?]> = [
  ['lstm', () => new nn.LSTM(3, 4, { numLayers: 2, ...o64 })],
  ['lstm_bi_batchfirst', () => new nn.LSTM(3, 2, { batchFirst: true, bidirectional: true, ...o64 })],
  ['lstm_hidden', () => new nn.LSTM(2, 3, { numLayers: 2, bidirectional: true, ...o64 }), (m) => (x) => {
    const [, state] = m.call(x);
    const [h, c] = state as [t.Tensor, t.Tensor];
    return t.cat([h, c], 0);
  }],
  ['gru', () => new nn.GRU(3, 4, { numLayers: 2, ...o64 })],
  ['gru_bi_batchfirst', () => new nn.GRU(3, 2, { batchFirst: true, bidirectional: true, ...o64 })],
  ['rnn_tanh', () => new nn.RNN(3, 4, { numLayers: 2, ...o64 })],
  ['rnn_relu_bi', () => new nn.RNN(3, 2, { nonlinearity: 'relu', bidirectional: true, batchFirst: true, ...o64 })],
];

for (const [name, make, fwd] of cases) {
  test(`${name}: outputs and gradients match PyTorch (gate order, parameter names, directions)`, () => {
    const m = make();
    checkAgainstReference(name, m, fwd ? fwd(m as nn.LSTM) : outputOf(m));
  });
}

test('recurrent layers: PyTorch parameter names, init bound 1/sqrt(hidden), initial state shape checks', () => {
  t.manualSeed(0);
  const lstm = new nn.LSTM(3, 5, { numLayers: 2, bidirectional: true });
  assert.deepEqual([...lstm.namedParameters()].map(([n]) => n).slice(0, 8), [
    'weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0',
    'weight_ih_l0_reverse', 'weight_hh_l0_reverse', 'bias_ih_l0_reverse', 'bias_hh_l0_reverse',
  ]);
  assert.ok(lstm.parameters().every((p) => p.data().every((v) => Math.abs(v) <= 1 / Math.sqrt(5))));
  const x = t.randn([4, 2, 3]);
  const [out, state] = lstm.call(x);
  assert.deepEqual(out.shape, [4, 2, 10]);
  assert.deepEqual((state as t.Tensor[])[0]!.shape, [4, 2, 5]);
  assert.throws(() => lstm.call(x, [t.zeros([1, 2, 5]), t.zeros([4, 2, 5])]), /h0 must be \[4, 2, 5\], got \[1, 2, 5\]/);
  assert.throws(() => lstm.call(t.zeros([4, 2, 7])), /input must be \[seq, batch, 3\], got \[4, 2, 7\]/);
});
