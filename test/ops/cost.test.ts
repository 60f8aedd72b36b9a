// measureCost: the FLOPs and bytes of composite ops are the sums of their primitives' declared costs.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

forEachBackend('measureCost', () => {
  it('matmul: 2mnk FLOPs, operands read once, output written once (float32)', () => {
    const a = t.ones([4, 5]), b = t.ones([5, 3]);
    const { result, cost } = t.measureCost(() => a.matmul(b));
    assert.deepEqual(result.shape, [4, 3]);
    assert.equal(cost.flops, 2 * 4 * 3 * 5);
    assert.equal(cost.bytesRead, (20 + 15) * 4);
    assert.equal(cost.bytesWritten, 12 * 4);
    assert.equal(cost.primitives, 1);
  });

  it('the attention contraction costs one batched matmul (views are free)', () => {
    const q = t.ones([2, 3, 4, 5], { dtype: 'float64' }), k = t.ones([2, 3, 6, 5], { dtype: 'float64' });
    const { cost } = t.measureCost(() => t.einsum('bhqd,bhkd->bhqk', q, k));
    assert.equal(cost.flops, 2 * 2 * 3 * 4 * 6 * 5);
    assert.equal(cost.byPrimitive.matmul!.count, 1);
    assert.equal(cost.byPrimitive.permute!.flops, 0);
  });

  it('a backward pass inside the measured function is counted (matmul forward + two vjp matmuls)', () => {
    const w = t.ones([3, 3], { requiresGrad: true });
    const { cost } = t.measureCost(() => w.matmul(w).sum().backward());
    assert.equal(cost.byPrimitive.matmul!.count, 3);
    assert.equal(cost.byPrimitive.matmul!.flops, 3 * 2 * 27);
  });

  it('elementwise composites: gelu costs a handful of FLOPs per element', () => {
    const x = t.ones([100]);
    const { cost } = t.measureCost(() => t.gelu(x));
    assert.ok(cost.flops >= 100 * 4 && cost.flops <= 100 * 40, `gelu FLOPs ${cost.flops}`);
    assert.ok(cost.byPrimitive.gelu !== undefined);
  });
});
