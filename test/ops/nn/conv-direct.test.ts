import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { forEachBackend, runsFloat64Checks } from '../../helpers/backends.js';
import { checkGradients, checkSecondOrder, rand64, assertClose } from './helpers.js';
import { primitivesIn } from '../../helpers/primitives.js';

// The direct convolution (the convDirect and convWeightGrad primitives) against a float64
// reference computed by the other algorithm (im2col + GEMM on the cpu backend): the forward, the
// input, weight and bias gradients for many geometries, and float64 gradchecks through both forced
// paths. On wasm, float32 with 1-2 spatial axes runs the generated kernels (backend/wasm/conv-direct.ts).

interface Case {
  name: string;
  x: number[];
  w: number[];
  o: Omit<t.ConvOptions, 'bias'>;
  bias?: boolean;
}

const cases: Case[] = [
  { name: 'the CNN conv1 shape, small: 1→8 3x3 pad 1, bias', x: [3, 1, 9, 11], w: [8, 1, 3, 3], o: { padding: 1 }, bias: true },
  { name: 'batch 1, 3→5 channels (blocks of one output channel), odd sizes', x: [1, 3, 7, 13], w: [5, 3, 3, 3], o: { padding: 1 } },
  { name: 'stride 2 (two column phases), no padding', x: [2, 2, 11, 10], w: [6, 2, 3, 3], o: { stride: 2 }, bias: true },
  { name: 'stride [1, 3], dilation 2, uneven padding, groups 2', x: [2, 4, 10, 13], w: [4, 2, 3, 2], o: { padding: [2, 1], stride: [1, 3], dilation: [2, 2], groups: 2 }, bias: true },
  { name: "depthwise 5x5 with padding 'same'", x: [2, 6, 9, 8], w: [6, 1, 5, 5], o: { padding: 'same', groups: 6 } },
  { name: "even kernel with padding 'same' (pads differ per side)", x: [2, 3, 6, 7], w: [4, 3, 2, 4], o: { padding: 'same' }, bias: true },
  { name: '1x1 kernel, 5→8 channels', x: [2, 5, 4, 6], w: [8, 5, 1, 1], o: {} },
  { name: 'a kernel row of 14 taps (two weight-gradient passes)', x: [2, 2, 5, 20], w: [4, 2, 2, 7], o: { padding: [0, 3] } },
  { name: 'output narrower than one vector', x: [2, 3, 5, 3], w: [4, 3, 3, 3], o: { padding: [1, 0] } },
  { name: 'many output columns (full blocks and a tail), stride 2 dilation 3', x: [2, 2, 7, 45], w: [4, 2, 2, 3], o: { stride: 2, dilation: [1, 3], padding: [0, 2] }, bias: true },
  { name: '1-D stride 3, padding 2, groups 2', x: [3, 4, 17], w: [6, 2, 5], o: { stride: 3, padding: 2, groups: 2 }, bias: true },
  { name: '1-D dilation 3, batch 1', x: [1, 2, 23], w: [3, 2, 4], o: { dilation: 3 } },
];

/** A copy of v on `backend` in `dtype`. */
const on = (v: t.Tensor, backend: string, dtype: t.DType = v.dtype): t.Tensor => t.tensor(v.data(), { shape: [...v.shape], dtype, backend });

const convOf = (x: t.Tensor, w: t.Tensor, o: t.ConvOptions): t.Tensor => (x.rank === 3 ? t.conv1d(x, w, o) : x.rank === 4 ? t.conv2d(x, w, o) : t.conv3d(x, w, o));

/** Runs `f` with the algorithm forced, restoring the previous setting. */
function forced<T>(algorithm: 'direct' | 'im2col', f: () => T): T {
  const previous = t.setConvAlgorithm(algorithm);
  try {
    return f();
  } finally {
    t.setConvAlgorithm(previous);
  }
}


interface Result { y: t.Tensor; dx: t.Tensor; dw: t.Tensor; db?: t.Tensor }

/** Output and gradients (for the output cotangent g) of conv(x, w, bias) with the algorithm forced. */
function run(algorithm: 'direct' | 'im2col', c: Case, x0: t.Tensor, w0: t.Tensor, b0: t.Tensor | undefined, g: t.Tensor): Result {
  return forced(algorithm, () => {
    const [x, w] = [x0.detach().requiresGrad_(true), w0.detach().requiresGrad_(true)];
    const b = b0?.detach().requiresGrad_(true);
    const y = convOf(x, w, { ...c.o, ...(b ? { bias: b } : {}) });
    y.backward(g);
    return { y: y.detach(), dx: x.grad!, dw: w.grad!, ...(b ? { db: b.grad! } : {}) };
  });
}

forEachBackend('direct convolution', (backend) => {
  for (const [i, c] of cases.entries()) {
    test(`float32 forward and gradients match the float64 im2col reference: ${c.name}`, () => {
      const x64 = rand64(c.x, 10 + i), w64 = rand64(c.w, 40 + i), b64 = c.bias ? rand64([c.w[0]!], 70 + i) : undefined;
      const yShape = t.noGrad(() => forced('im2col', () => convOf(x64, w64, c.o))).shape;
      const g64 = rand64([...yShape], 90 + i);
      const cpu = (v: t.Tensor) => on(v, 'cpu');
      const ref = run('im2col', c, cpu(x64), cpu(w64), b64 && cpu(b64), cpu(g64));
      const f32 = (v: t.Tensor) => on(v, backend, 'float32');
      let got: Result | undefined;
      const seen = primitivesIn(() => { got = run('direct', c, f32(x64), f32(w64), b64 && f32(b64), f32(g64)); });
      assert.ok(seen.has('convDirect') && seen.has('convWeightGrad') && !seen.has('im2col'), `the direct path ran (saw ${[...seen].join(', ')})`);
      assert.equal(got!.y.backend, backend);
      assertClose(got!.y, ref.y, `${c.name}: output`);
      assertClose(got!.dx, ref.dx, `${c.name}: input gradient`);
      assertClose(got!.dw, ref.dw, `${c.name}: weight gradient`);
      if (b64) assertClose(got!.db!, ref.db!, `${c.name}: bias gradient`);
    });
  }

  test('strided and transposed operands: a sliced input and a permuted weight give the same result', () => {
    const xBig = rand64([2, 3, 9, 12], 5).float(), wT = rand64([3, 4, 3, 3], 6).float().permute([1, 0, 2, 3]);
    const x = xBig.at(null, null, [1, 8], [0, 12, 2]); // [2, 3, 7, 6], strided
    const expected = forced('im2col', () => t.conv2d(x.contiguous(), wT.contiguous(), { padding: 1 }));
    assertClose(forced('direct', () => t.conv2d(x, wT, { padding: 1 })), expected, 'strided operands');
  });

  test('unbatched input and empty batch', () => {
    const x = rand64([3, 8, 7], 3).float(), w = rand64([5, 3, 3, 3], 4).float();
    const y = forced('direct', () => t.conv2d(x, w, { padding: 1 }));
    assert.deepEqual(y.shape, [5, 8, 7]);
    assertClose(y, forced('im2col', () => t.conv2d(x, w, { padding: 1 })), 'unbatched');
    const empty = t.zeros([0, 3, 8, 7]).requiresGrad_(true), we = w.detach().requiresGrad_(true);
    const ye = forced('direct', () => t.conv2d(empty, we, { padding: 1 }));
    assert.deepEqual(ye.shape, [0, 5, 8, 7]);
    forced('direct', () => ye.sum().backward());
    assert.deepEqual(Array.from(we.grad!.data()), new Array(5 * 3 * 9).fill(0));
  });

  // float64 only: see runsFloat64Checks (helpers/backends.ts).
  if (runsFloat64Checks(backend)) test('float64 gradcheck (vjp and jvp) through the forced direct path: stride, dilation, groups, bias', () => {
    forced('direct', () => {
      checkGradients((x, w, b) => t.conv2d(x, w, { bias: b, stride: [2, 1], padding: 1, dilation: [1, 2], groups: 2 }),
        [rand64([2, 4, 4, 5], 1), rand64([2, 2, 2, 2], 2), rand64([2], 3)]);
      checkGradients((x, w) => t.conv1d(x, w, { stride: 2, padding: [1] }), [rand64([2, 2, 7], 4), rand64([3, 2, 3], 5)]);
    });
  });

  // float64 only: see runsFloat64Checks (helpers/backends.ts).
  if (runsFloat64Checks(backend)) test('float64 gradcheck through the forced im2col path (the same functions)', () => {
    forced('im2col', () => {
      checkGradients((x, w, b) => t.conv2d(x, w, { bias: b, stride: [2, 1], padding: 1, dilation: [1, 2], groups: 2 }),
        [rand64([2, 4, 4, 5], 1), rand64([2, 2, 2, 2], 2), rand64([2], 3)]);
    });
  });

  // float64 only: see runsFloat64Checks (helpers/backends.ts).
  if (runsFloat64Checks(backend)) test('second order through the direct path (the vjp of convWeightGrad)', () => {
    const w = rand64([3, 2, 2, 2], 8);
    forced('direct', () => {
      checkSecondOrder((x) => t.conv2d(x, w, { padding: 1 }).tanh(), rand64([1, 2, 3, 4], 9));
      // Through the weight: its gradient is a convWeightGrad, whose own gradient reaches x and the cotangent.
      checkSecondOrder((wv) => t.conv2d(rand64([2, 2, 4, 3], 10), wv, { stride: 2 }).tanh(), w);
    });
  });

  test('3-D runs the direct primitive through the reference kernel when forced', () => {
    const x = rand64([2, 2, 4, 5, 3], 11), w = rand64([3, 2, 2, 3, 2], 12), b = rand64([3], 13);
    const o = { bias: b, padding: [1, 0, 1], stride: [1, 2, 1] };
    const ref = forced('im2col', () => t.conv3d(x, w, o));
    let y: t.Tensor | undefined;
    const seen = primitivesIn(() => { y = forced('direct', () => t.conv3d(x, w, o)); });
    assert.ok(seen.has('convDirect'));
    assertClose(y!, ref, '3-D forward');
    forced('direct', () => checkGradients((xv, wv) => t.conv3d(xv, wv, { padding: 1 }), [rand64([1, 1, 3, 3, 2], 14), rand64([2, 1, 2, 2, 2], 15)]));
  });

  test('convDirect and convWeightGrad reject mismatched operands with the shapes', () => {
    const x = t.zeros([2, 4, 6, 6]);
    const attrs = { kernel: [3, 3], stride: [1, 1], dilation: [1, 1], pads: [[0, 0], [0, 0]] as [number, number][], groups: 2 };
    assert.throws(() => t.bind('convDirect', [x, t.zeros([4, 4, 3, 3])], attrs), /weight \[4, 4, 3, 3\] with groups=2 does not fit an input of 4 channels/);
    assert.throws(() => t.bind('convDirect', [x, t.zeros([4, 2, 3, 3]), t.zeros([3])], attrs), /bias must be \[4\]/);
    assert.throws(() => t.bind('convWeightGrad', [x, t.zeros([2, 4, 5, 4])], attrs), /cotangent \[2, 4, 5, 4\] should be \[2, C_out, 4, 4\]/);
  });
});
