// Bad input raises a TesseraError that names the op and the shapes/dtypes/values involved (and the
// fix), never a wrong answer or a crash deep inside a kernel.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { assertThrowsWith } from '../helpers/close.js';
import { forEachBackend } from '../helpers/backends.js';

const i32 = (a: t.NestedArray): t.Tensor => t.tensor(a, { dtype: 'int32' });

forEachBackend('errors name the op and the shapes/dtypes', (backend) => {
  it('shape mismatch', () => {
    assertThrowsWith(() => t.ones([2, 3]).add(t.ones([2])), 'add', '[2, 3]', '[2]', 'broadcast');
    assertThrowsWith(() => t.ones([2, 3]).matmul(t.ones([2, 3])), 'matmul', '[2, 3]', '(3 vs 2)');
    assertThrowsWith(() => t.where(t.tensor([true, false]), t.ones([2]), t.ones([3])), 'where', '[3]');
    assertThrowsWith(() => t.ones([2, 3]).reshape([4, 2]), 'reshape', '[2, 3]', '[4, 2]');
    assertThrowsWith(() => t.ones([2, 3]).expand([3, 3]), 'expand', '[2, 3]', '[3, 3]');
    assertThrowsWith(() => t.cat([t.ones([2, 3]), t.ones([3, 2])]), 'cat', '[2, 3]', '[3, 2]');
    assertThrowsWith(() => t.stack([t.ones([2]), t.ones([3])]), 'stack', '[2]', '[3]');
    assertThrowsWith(() => t.ones([5]).split([2, 2]), 'split', '[2,2]', '[5]');
    assertThrowsWith(() => t.einsum('ij,jk->ik', t.ones([2, 2]), t.ones([3, 2])), 'einsum', "'j'", '[3, 2]');
    assertThrowsWith(() => t.ones([2, 3]).gather(1, i32([[0], [0], [0]])), 'gather', '[3, 1]', '[2, 3]');
    assertThrowsWith(() => t.zeros([2, 3]).copy_(t.ones([3, 3])), 'copy_', '[3, 3]', '[2, 3]');
  });

  it('bad axis or index', () => {
    assertThrowsWith(() => t.ones([2, 3]).sum(3), 'sum', 'axis 3', 'rank 2', '-2..1');
    assertThrowsWith(() => t.ones([2, 3]).sum([1, -1]), 'sum', 'more than once');
    assertThrowsWith(() => t.ones([2, 3]).argmax(-3), 'argmax', 'axis -3');
    assertThrowsWith(() => t.ones([2, 3]).transpose(0, 2), 'transpose', 'axis 2');
    assertThrowsWith(() => t.ones([2, 3]).permute([0, 0]), 'permute', '[0,0]', '[2, 3]');
    assertThrowsWith(() => t.ones([2, 3]).at(5), 'at', 'index 5', 'size 2');
    assertThrowsWith(() => t.cat([t.ones([2]), t.ones([2])], 1), 'cat', 'axis 1');
    assertThrowsWith(() => t.ones([3]).topk(4), 'topk', 'k = 4', 'size 3');
    // An index is checked where the kernel runs: on the cpu and wasm backends at the call, on webgpu
    // by the GPU, which reports it at the next read (as CUDA's device-side asserts): hence data().
    // indexSelect is a gather: the GPU's report names the kernel that found the index.
    assertThrowsWith(() => t.ones([2, 3]).indexSelect(1, i32([3])).data(), backend === 'webgpu' ? 'gather' : 'indexSelect', 'index 3', 'size 3');
    assertThrowsWith(() => t.oneHot(i32([0, -1]), 4), 'oneHot', 'class index -1', 'numClasses 4');
    assertThrowsWith(() => t.ones([2]).gather(0, i32([2])).data(), 'gather', 'index 2', 'out of bounds');
    assertThrowsWith(() => t.oneHot(i32([0, 5]), 3), 'oneHot', 'class index 5', 'numClasses 3');
    assertThrowsWith(() => t.pad(t.ones([1, 2]), [2, 0], 'reflect'), 'pad', 'reflect', 'size 2');
  });

  it('dtype mismatch', () => {
    assertThrowsWith(() => t.zeros([3]).scatterAdd(0, i32([0]), t.zeros([1], { dtype: 'float64' })), 'scatterAdd', 'float32', 'float64');
    assertThrowsWith(() => t.zeros([3]).gather(0, t.tensor([0])), 'gather', 'integer', 'float32');
    assertThrowsWith(() => t.ones([3], { dtype: 'int32' }).mean(), 'mean', 'int32');
    assertThrowsWith(() => t.ones([2]).maskedFill(t.ones([2]), 0), 'maskedFill', 'bool', 'float32');
    assertThrowsWith(() => t.tensor([true]).sub(t.tensor([false])), 'sub', 'bool');
    assertThrowsWith(() => i32([2]).pow(i32([-1])), 'pow', 'negative');
    assertThrowsWith(() => i32([1]).div(i32([0]), { roundingMode: 'floor' }), 'div', 'by zero');
  });

  it('non-differentiable input', () => {
    assertThrowsWith(() => t.ones([2], { dtype: 'int32' }).requiresGrad_(), 'requiresGrad', 'int32', 'float');
    assertThrowsWith(() => t.grad((x) => x.sum())(t.ones([2], { dtype: 'int32' })), 'grad', 'argument 0', 'int32');
    assertThrowsWith(() => t.vjp((x) => x.sum(), t.ones([2], { dtype: 'bool' })), 'vjp', 'bool');
    assertThrowsWith(() => t.jvp((x) => x, [t.ones([2], { dtype: 'int32' })], [t.ones([2], { dtype: 'int32' })]), 'jvp', 'int32');
    assertThrowsWith(() => t.ones([2]).sum().backward(), 'backward', 'does not require grad', 'noGrad');
    assertThrowsWith(() => t.ones([2], { requiresGrad: true }).mul(2).backward(), 'backward', 'shape [2]', 'out.sum()');
    assertThrowsWith(() => t.grad((x) => x.mul(2))(t.ones([2])), 'grad', 'one-element', 'shape [2]');
    const y = t.ones([2], { requiresGrad: true }).mul(2);
    assertThrowsWith(() => { y.requiresGrad = false; }, 'requiresGrad', 'non-leaf', 'detach()');
  });

  it('use of a disposed tensor', () => {
    const x = t.ones([2, 4], { dtype: 'float64' });
    x.dispose();
    assertThrowsWith(() => x.mul(2), 'mul', 'disposed', '[2, 4]', 'float64');
    assertThrowsWith(() => t.cat([t.ones([2, 4], { dtype: 'float64' }), x]), 'cat', 'disposed');
  });

  it('backward through a freed graph, and gradient shape errors', () => {
    const x = t.ones([2], { requiresGrad: true });
    const y = x.mul(x).sum();
    y.backward();
    assertThrowsWith(() => y.backward(), 'backward', "'sum'", 'second time', 'retainGraph');
    const z = x.exp();
    assertThrowsWith(() => z.backward(t.ones([3])), 'backward', '[3]', '[2]');
    const w = t.ones([2], { requiresGrad: true });
    w.registerHook(() => t.ones([3]));
    assertThrowsWith(() => w.mul(2).sum().backward(), 'backward', 'hook', '[3]', '[2]');
    assertThrowsWith(() => t.jvp((a) => a, [t.ones([2])], [t.ones([3])]), 'jvp', '[3]', '[2]');
  });

  it('backward through a value that was overwritten in place (a version check, as in PyTorch)', () => {
    const w = t.tensor([1, 2], { requiresGrad: true });
    const x = t.tensor([[3, 4], [5, 6]]);
    const y = w.mul(x.at(0)).sum();
    x.at(1).fill_(0); // any write to the storage counts, like PyTorch's shared version counter
    assertThrowsWith(() => y.backward(), 'backward', "input 1 of 'mul'", '[2]', 'modified in place', 'clone()');
    const z = t.tensor([3, 4]);
    const ok = w.mul(z.clone()).sum();
    z.fill_(0);
    ok.backward();
    assert.deepEqual(w.grad!.toArray(), [3, 4]);
  });

  it('creation and reading', () => {
    assertThrowsWith(() => t.tensor([[1, 2], [3]]), 'tensor', 'ragged');
    assertThrowsWith(() => t.zeros([2, -1]), 'full', 'non-negative');
    assertThrowsWith(() => t.ones([2]).item(), 'item', 'shape [2]');
    assertThrowsWith(() => t.arange(0, 5, 0), 'arange', 'step');
    assertThrowsWith(() => t.randint(3, 3, [2]), 'randint', 'low=3');
  });
});
