// dtypes: PyTorch's promotion table (tensor-tensor, 0-d tensors, JS numbers as weak scalars),
// C-style casts, float16/bfloat16 rounding.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { DType } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

forEachBackend('dtype promotion', () => {
  it('promoteTypes follows PyTorch (int8+uint8 widens to int32, our smallest type holding both)', () => {
    const table: [DType, DType, DType][] = [
      ['bool', 'bool', 'bool'], ['bool', 'int32', 'int32'], ['bool', 'float32', 'float32'], ['uint8', 'bool', 'uint8'],
      ['int8', 'int32', 'int32'], ['int8', 'uint8', 'int32'], ['int32', 'float32', 'float32'], ['int32', 'float64', 'float64'],
      ['float32', 'float64', 'float64'], ['float16', 'float32', 'float32'], ['float16', 'bfloat16', 'float32'],
      ['bfloat16', 'float64', 'float64'], ['float16', 'int32', 'float16'], ['bfloat16', 'bool', 'bfloat16'],
    ];
    for (const [a, b, want] of table) {
      assert.equal(t.promoteTypes(a, b), want, `${a} + ${b}`);
      assert.equal(t.promoteTypes(b, a), want, `${b} + ${a} (symmetric)`);
    }
  });

  it('ops promote like PyTorch: numbers are weak, 0-d tensors only raise the kind', () => {
    const i = t.tensor([1, 2], { dtype: 'int32' });
    const f = t.tensor([1, 2], { dtype: 'float32' });
    const h = t.tensor([1, 2], { dtype: 'float16' });
    const cases: [t.Tensor, DType][] = [
      [i.add(2.5), 'float32'], [i.add(3), 'int32'], [i.mul(true), 'int32'], [f.add(2), 'float32'],
      [h.mul(2.5), 'float16'], [f.add(t.tensor(1, { dtype: 'float64' })), 'float32'], [i.add(t.tensor(0.5, { dtype: 'float64' })), 'float64'],
      [t.tensor([true]).add(t.tensor([2], { dtype: 'int32' })), 'int32'], [t.tensor([true]).mul(2), 'int32'],
      [i.div(i), 'float32'], [i.div(2, { roundingMode: 'floor' }), 'int32'], [f.add(t.tensor([1], { dtype: 'float64' })), 'float64'],
      [i.lt(f), 'bool'], [i.exp(), 'float32'], [t.tensor([true, false]).sum(), 'int32'], [i.cumsum(0), 'int32'],
    ];
    cases.forEach(([x, want], k) => assert.equal(x.dtype, want, `case ${k}`));
  });

  it('setDefaultFloatDType changes what integer ops and creation produce', () => {
    t.setDefaultFloatDType('float64');
    try {
      assert.equal(t.tensor([1, 2], { dtype: 'int32' }).div(2).dtype, 'float64');
      assert.equal(t.zeros([1]).dtype, 'float64');
    } finally {
      t.setDefaultFloatDType('float32');
    }
    assert.throws(() => t.setDefaultFloatDType('int32'), /not a floating dtype/);
  });

  it('casts truncate toward zero into integers, bool is "non-zero", half formats round to nearest even', () => {
    assert.deepEqual(t.tensor([2.7, -2.7, 0.2]).int().toArray(), [2, -2, 0]);
    assert.deepEqual(t.tensor([0, 0.1, -3]).bool().toArray(), [false, true, true]);
    assert.deepEqual(t.tensor([300, -1]).cast('uint8').toArray(), [44, 255]);
    assert.equal(t.tensor([0.1], { dtype: 'float16' }).item(), 0.0999755859375);
    assert.equal(t.tensor([0.1], { dtype: 'bfloat16' }).item(), 0.10009765625);
    assert.equal(t.tensor([70000], { dtype: 'float16' }).item(), Infinity);
    // Arithmetic in a half format rounds every result: 2048 + 1 is not representable in float16.
    assert.equal(t.tensor([2048], { dtype: 'float16' }).add(1).item(), 2048);
    assert.equal(t.itemsize('bfloat16'), 2);
  });
});
