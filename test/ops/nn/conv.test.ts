import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { loadFixtures, checkCase, checkGradients, checkSecondOrder, rand64, assertClose } from './helpers.js';

const convs = { conv1d: t.conv1d, conv2d: t.conv2d, conv3d: t.conv3d, convTranspose1d: t.convTranspose1d, convTranspose2d: t.convTranspose2d, convTranspose3d: t.convTranspose3d };

for (const c of loadFixtures('conv')) {
  test(`matches PyTorch: ${c.name}`, () => {
    checkCase(c, (x, o) => {
      const f = convs[c.op as keyof typeof convs];
      assert.ok(f !== undefined, `unknown op ${c.op}`);
      return f(x.x!, x.w!, { ...o, ...(x.bias ? { bias: x.bias } : {}) });
    });
  });
}

test('conv2d: float64 gradcheck (vjp and jvp) with stride, padding, dilation, groups and bias', () => {
  checkGradients((x, w, b) => t.conv2d(x, w, { bias: b, stride: [2, 1], padding: 1, dilation: [1, 2], groups: 2 }),
    [rand64([1, 4, 4, 5], 1), rand64([2, 2, 2, 2], 2), rand64([2], 3)]);
});

test('conv1d and conv3d: float64 gradcheck', () => {
  checkGradients((x, w) => t.conv1d(x, w, { stride: 2, padding: 2, dilation: 2 }), [rand64([2, 2, 7], 4), rand64([3, 2, 3], 5)]);
  checkGradients((x, w) => t.conv3d(x, w, { padding: [0, 1, 0], stride: [1, 1, 2] }), [rand64([1, 1, 3, 3, 4], 6), rand64([2, 1, 2, 2, 2], 7)]);
});

test('convTranspose2d: float64 gradcheck with output padding and dilation', () => {
  checkGradients((x, w) => t.convTranspose2d(x, w, { stride: 2, padding: 1, outputPadding: 1, dilation: [1, 2] }), [rand64([1, 2, 3, 2], 8), rand64([2, 2, 2, 2], 9)]);
});

test('conv2d: second derivatives (grad of grad) match finite differences', () => {
  const w = rand64([2, 2, 2, 2], 10);
  // The conv is bilinear; square its output so the second derivative w.r.t. x is not zero.
  checkSecondOrder((x) => t.conv2d(x, w, { padding: 1, stride: 2 }).square(), rand64([1, 2, 3, 3], 11));
});

test('convTranspose2d is the vjp of conv2d w.r.t. its input', () => {
  const opts = { stride: [2, 3], padding: [1, 0], dilation: [2, 1], groups: 2 };
  const x = rand64([2, 4, 10, 9], 12), w = rand64([6, 2, 3, 2], 13);
  const [y, pullback] = t.vjp((a) => t.conv2d(a, w, opts), x);
  const cot = rand64([...y.shape], 14);
  // Without outputPadding the transpose gives 9x8; the input was 10x9 (stride drops a row and a column): outputPadding recovers them.
  const viaTranspose = t.convTranspose2d(cot, w, { ...opts, outputPadding: [1, 1] });
  assertClose(viaTranspose, pullback(cot)[0]!, 'convTranspose2d vs conv2d vjp');
});

test('conv2d accepts unbatched input and padding "same"', () => {
  const x = rand64([3, 5, 6], 15), w = rand64([2, 3, 3, 2], 16);
  const y = t.conv2d(x, w, { padding: 'same', dilation: 2 });
  assert.deepEqual(y.shape, [2, 5, 6]);
  assertClose(y, t.conv2d(x.unsqueeze(0), w, { padding: 'same', dilation: 2 }).squeeze(0), 'unbatched');
});

test('im2col / col2im match the convolution and are adjoint', () => {
  const x = rand64([2, 3, 5, 6], 17), w = rand64([4, 3, 2, 3], 18);
  const o = { padding: 1, stride: 2, dilation: [2, 1] };
  const cols = t.im2col(x, [2, 3], o); // [N, C·K, L]
  const viaGemm = w.reshape([4, -1]).matmul(cols).reshape([2, 4, 3, 3]);
  assertClose(viaGemm, t.conv2d(x, w, o), 'im2col GEMM');
  // <im2col(x), c> = <x, col2im(c)>.
  const c = rand64([...cols.shape], 19);
  const lhs = cols.mul(c).sum().item(), rhs = x.mul(t.col2im(c, [5, 6], [2, 3], o)).sum().item();
  assert.ok(Math.abs(lhs - rhs) < 1e-10 * Math.max(1, Math.abs(lhs)), `${lhs} vs ${rhs}`);
});

test('conv errors name the problem and the values', () => {
  const x = t.zeros([1, 4, 5, 5]);
  assert.throws(() => t.conv2d(x, t.zeros([6, 3, 3, 3]), { groups: 2 }), /conv2d: weight \[6, 3, 3, 3\] expects 6 input channels \(3 per group × 2 groups\), but the input \[1, 4, 5, 5\] has 4/);
  assert.throws(() => t.conv2d(x, t.zeros([6, 2, 3, 3]), { groups: 2, stride: 2, padding: 'same' }), /padding='same' needs stride 1/);
  assert.throws(() => t.conv2d(x, t.zeros([2, 4, 7, 7])), /smaller than the kernel's span 7/);
  assert.throws(() => t.conv2d(t.zeros([4, 5]), t.zeros([2, 4, 3, 3])), /input must be \[N, C, H, W\]/);
  assert.throws(() => t.convTranspose2d(x, t.zeros([4, 2, 3, 3]), { stride: 2, outputPadding: 2 }), /outputPadding 2/);
});

test('conv2d cost comes from its primitives: the GEMM (or the direct kernel) counts 2·N·Cout·L·Cin·K FLOPs', () => {
  let matmulFlops = 0, directFlops = 0;
  const stop = t.addDispatchObserver({
    onPrimitive(prim, inputs, attrs, out) {
      if (prim === 'matmul') matmulFlops += t.primitives.matmul.cost(inputs, attrs as Record<string, never>, out).flops;
      if (prim === 'convDirect') directFlops += t.primitives.convDirect.cost(inputs, attrs as t.PrimitiveAttrs["convDirect"], out).flops;
    },
  });
  const previous = t.setConvAlgorithm('im2col');
  try {
    t.conv2d(t.zeros([2, 3, 8, 8]), t.zeros([5, 3, 3, 3]), { padding: 1 });
    t.setConvAlgorithm('direct');
    t.conv2d(t.zeros([2, 3, 8, 8]), t.zeros([5, 3, 3, 3]), { padding: 1 });
  } finally {
    t.setConvAlgorithm(previous);
    stop();
  }
  assert.equal(matmulFlops, 2 * 2 * 5 * 64 * 3 * 9);
  assert.equal(directFlops, 2 * 2 * 5 * 64 * 3 * 9);
});
