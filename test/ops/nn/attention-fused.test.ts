// The fused attention primitives behind scaledDotProductAttention (attention / attentionGrad):
// which calls take them, their values and gradients against the composite and a float64
// reference on every backend, their derivative rules (finite differences, second order, forward
// over reverse, hessians equal to the composite's) on the cpu reference in float64, t.jit, and
// that nn.GPT reaches them.
import { it, test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import type { Tensor } from '../../../src/index.js';
import { bind } from '../../../src/ops/dispatch.js';
import { forEachBackend } from '../../helpers/backends.js';
import { primitivesIn } from '../../helpers/primitives.js';
import { assertClose } from '../../helpers/close.js';
import { checkGradients, checkSecondOrder, rand64 } from './helpers.js';

type Attn = (q: Tensor, k: Tensor, v: Tensor) => Tensor;

/** f with the fused primitives allowed (true) or forced off (false). */
function withFused<T>(fused: boolean, f: () => T): T {
  const previous = t.setFusedAttention(fused);
  try {
    return f();
  } finally {
    t.setFusedAttention(previous);
  }
}

/** Output and the gradients of <u, output> (u fixed, random) for q, k and v. */
function outputAndGrads(f: Attn, q: Tensor, k: Tensor, v: Tensor): Tensor[] {
  const leaves = [q, k, v].map((x) => x.detach().requiresGrad_());
  const y = f(leaves[0]!, leaves[1]!, leaves[2]!);
  const u = t.randn([...y.shape], { dtype: y.dtype, generator: new t.Generator(99) });
  y.mul(u).sum().backward();
  return [y.detach(), ...leaves.map((x) => x.grad!)];
}

interface Case { name: string; q: number[]; k: number[]; v: number[]; causal: boolean; layout?: (x: Tensor) => Tensor }
/** The same values with the last two axes stored transposed (feature stride ≠ 1). */
const transposed = (x: Tensor) => t.transpose(t.contiguous(t.transpose(x, -2, -1)), -2, -1);
const cases: Case[] = [
  { name: 'no batch dims, L = S', q: [5, 8], k: [5, 8], v: [5, 8], causal: true },
  { name: 'one batch dim, L < S, E ≠ Ev', q: [3, 4, 8], k: [3, 6, 8], v: [3, 6, 12], causal: true },
  { name: 'two batch dims, L > S, non-causal', q: [2, 3, 7, 4], k: [2, 3, 5, 4], v: [2, 3, 5, 8], causal: false },
  { name: 'two batch dims, L > S, causal', q: [2, 3, 7, 4], k: [2, 3, 5, 4], v: [2, 3, 5, 8], causal: true },
  { name: 'odd feature sizes (E 3, Ev 5)', q: [2, 4, 3], k: [2, 6, 3], v: [2, 6, 5], causal: false },
  { name: 'broadcast batch: k and v shared by the heads', q: [2, 3, 4, 8], k: [2, 1, 6, 8], v: [6, 4], causal: true },
  { name: 'transposed (strided) inputs', q: [2, 6, 8], k: [2, 6, 8], v: [2, 6, 4], causal: true, layout: transposed },
];

function inputs(c: Case, dtype: t.DType, seed: number): [Tensor, Tensor, Tensor] {
  const g = new t.Generator(seed);
  const make = (shape: number[]) => {
    const x = t.randn(shape, { dtype, generator: g });
    return c.layout === undefined ? x : c.layout(x);
  };
  return [make(c.q), make(c.k), make(c.v)];
}

forEachBackend('fused attention', () => {
  it('binds attention/attentionGrad for the common case and the composite for masks and dropout', () => {
    const q = t.randn([2, 5, 4]).requiresGrad_();
    for (const isCausal of [false, true]) {
      const fused = primitivesIn(() => t.scaledDotProductAttention(q, q, q, { isCausal }).sum().backward());
      assert.ok(fused.has('attention') && fused.has('attentionGrad'), `isCausal ${isCausal}: ${[...fused].join(', ')}`);
      assert.ok(!fused.has('softmax') && !fused.has('matmul'), `isCausal ${isCausal}: the composite ran too (${[...fused].join(', ')})`);
    }
    const masked = primitivesIn(() => t.scaledDotProductAttention(q, q, q, { attnMask: t.ones([5, 5]).bool() }));
    const dropped = primitivesIn(() => t.scaledDotProductAttention(q, q, q, { dropoutP: 0.5, generator: new t.Generator(1) }));
    const forced = withFused(false, () => primitivesIn(() => t.scaledDotProductAttention(q, q, q)));
    const h = t.cast(q.detach(), 'float16');
    const half = primitivesIn(() => t.scaledDotProductAttention(h, h, h));
    for (const [what, seen] of [['attnMask', masked], ['dropout', dropped], ['setFusedAttention(false)', forced], ['float16', half]] as const) {
      assert.ok(!seen.has('attention') && seen.has('softmax'), `${what}: ${[...seen].join(', ')}`);
    }
  });

  for (const c of cases) {
    it(`${c.name}: output and gradients equal the composite's (float32 and float64) and a float64 reference`, () => {
      for (const dtype of ['float32', 'float64'] as const) {
        const [q, k, v] = inputs(c, dtype, 3);
        const attn: Attn = (a, b, d) => t.scaledDotProductAttention(a, b, d, { isCausal: c.causal });
        const fused = outputAndGrads(attn, q, k, v);
        const composite = withFused(false, () => outputAndGrads(attn, q, k, v));
        const tol = dtype === 'float32' ? { rtol: 1e-4, atol: 1e-5 } : { rtol: 1e-10, atol: 1e-12 };
        ['output', 'dq', 'dk', 'dv'].forEach((what, i) => {
          assert.deepEqual(fused[i]!.shape, composite[i]!.shape, `${dtype} ${what}: shape`);
          assertClose(fused[i]!, composite[i]!, tol, `${dtype} ${what} vs the composite`);
        });
        if (dtype === 'float32') {
          // The float64 composite of the same (float32-representable) values is the reference.
          const reference = withFused(false, () => outputAndGrads(attn, q.double(), k.double(), v.double()));
          ['output', 'dq', 'dk', 'dv'].forEach((what, i) => assertClose(fused[i]!, reference[i]!, { rtol: 1e-4, atol: 1e-5 }, `float32 ${what} vs float64`));
        }
      }
    });
  }

  it('the first causal query attends to the first key only; scale is applied', () => {
    const [q, k, v] = inputs(cases[1]!, 'float64', 5);
    assertClose(t.scaledDotProductAttention(q, k, v, { isCausal: true }).at(null, 0), v.at(null, 0), { rtol: 1e-12, atol: 1e-12 }, 'first query');
    const scaled = t.scaledDotProductAttention(q, k, v, { scale: 0.1 });
    const reference = withFused(false, () => t.scaledDotProductAttention(q, k, v, { scale: 0.1 }));
    assertClose(scaled, reference, { rtol: 1e-12, atol: 1e-12 }, 'scale 0.1');
  });

  it('t.jit of attention and its gradient equals eager', () => {
    const w = t.randn([2, 3, 5, 8], { generator: new t.Generator(8) });
    const f = (q: Tensor, k: Tensor, v: Tensor): Tensor[] => {
      const attn = (a: Tensor) => t.scaledDotProductAttention(a, k, v, { isCausal: true });
      return [attn(q), t.grad((a: Tensor) => attn(a).mul(w).sum())(q) as Tensor];
    };
    const jitted = t.jit(f);
    const g = new t.Generator(9);
    for (let run = 0; run < 2; run++) {
      const [q, k, v] = [t.randn([2, 3, 5, 4], { generator: g }), t.randn([2, 3, 6, 4], { generator: g }), t.randn([2, 3, 6, 8], { generator: g })];
      const compiled = jitted(q, k, v), eager = f(q, k, v);
      compiled.forEach((x, i) => assertClose(x, eager[i]!, { rtol: 1e-5, atol: 1e-6 }, `jit output ${i}, run ${run}`));
    }
    assert.equal(jitted.stats().traces, 1);
  });

  it('nn.GPT and nn.MultiheadAttention (causal, no dropout) run the fused kernels forward and backward', () => {
    const gpt = new t.nn.GPT({ vocabSize: 11, blockSize: 8, embedDim: 8, numHeads: 2, numLayers: 1 });
    const x = t.randint(0, 11, [2, 8]);
    const seen = primitivesIn(() => t.crossEntropy(gpt.call(x).reshape([16, 11]), x.reshape([16])).backward());
    assert.ok(seen.has('attention') && seen.has('attentionGrad') && !seen.has('softmax'), [...seen].join(', '));
  });
});

test('attention primitive errors name the shapes', () => {
  const q = t.zeros([2, 3, 4]);
  assert.throws(() => bind('attention', [q, t.zeros([3, 5, 4]), t.zeros([3, 5, 4])], { scale: 1, causal: false }), /attention: batch dimensions differ/);
  assert.throws(() => bind('attention', [q, t.zeros([2, 0, 4]), t.zeros([2, 0, 4])], { scale: 1, causal: false }), /needs at least one key/);
  assert.throws(() => bind('attentionGrad', [q, q, q, t.zeros([2, 3, 5])], { scale: 1, causal: true }), /attentionGrad: the output cotangent must be \[2, 3, 4\]/);
  // No keys at all: the user-facing op runs the composite (an empty softmax gives zeros).
  assert.deepEqual(t.scaledDotProductAttention(q, t.zeros([2, 0, 4]), t.zeros([2, 0, 6])).toArray(), t.zeros([2, 3, 6]).toArray());
});

// Derivative rules in float64 on the cpu reference (finite differences are exact enough there).
test('attention: float64 vjp and jvp against finite differences (causal and not, L ≠ S, E ≠ Ev)', () => {
  for (const isCausal of [false, true]) {
    checkGradients((q, k, v) => t.scaledDotProductAttention(q, k, v, { isCausal }), [rand64([2, 4, 3], 1), rand64([2, 5, 3], 2), rand64([2, 5, 2], 3)]);
  }
});

test('attentionGrad: second derivatives (reverse over reverse) of each input against finite differences', () => {
  const [q, k, v] = [rand64([1, 3, 2], 4), rand64([1, 4, 2], 5), rand64([1, 4, 3], 6)];
  checkSecondOrder((a) => t.scaledDotProductAttention(a, k, v, { isCausal: true }), q);
  checkSecondOrder((a) => t.scaledDotProductAttention(q, a, v, { isCausal: true }), k);
  checkSecondOrder((a) => t.scaledDotProductAttention(q, k, a), v);
  // q, k and v from one input (the mixed terms), and a sine after the attention so that the
  // cotangent reaching attentionGrad depends on the input too (its fourth input's gradient).
  const extra = rand64([1, 1, 3], 7);
  checkSecondOrder((a) => {
    const x = a.reshape([1, 3, 2]);
    const keys = t.cat([x.mul(0.5).add(0.1), x.at(null, [0, 1])], 1);
    const values = t.cat([x.matmul(t.ones([1, 2, 3], { dtype: 'float64' })), extra], 1);
    return t.scaledDotProductAttention(x, keys, values, { isCausal: true }).sin();
  }, rand64([6], 8));
});

test('attentionGrad: forward over reverse (jvp of the gradient) and the hessian equal the composite\'s', () => {
  const [q, k, v] = [rand64([2, 3, 2], 9), rand64([2, 4, 2], 10), rand64([2, 4, 3], 11)];
  const w = rand64([2, 3, 3], 12);
  const loss = (a: Tensor, b: Tensor, c: Tensor) => t.scaledDotProductAttention(a, b, c, { isCausal: true }).mul(w).sum();
  // jvp of (q, k, v) ↦ ∇_q loss along random tangents: the jvp rule of attentionGrad.
  const gradQ = (a: Tensor, b: Tensor, c: Tensor) => t.grad((x: Tensor) => loss(x, b, c))(a) as Tensor;
  const tangents = [rand64([2, 3, 2], 13), rand64([2, 4, 2], 14), rand64([2, 4, 3], 15)];
  const [, fused] = t.jvp(gradQ, [q, k, v], tangents);
  const [, composite] = withFused(false, () => t.jvp(gradQ, [q, k, v], tangents));
  assertClose(fused, composite, { rtol: 1e-9, atol: 1e-11 }, 'jvp of the gradient');
  const h = 1e-6;
  const shifted = (s: number) => gradQ(...([q, k, v].map((x, i) => x.add(tangents[i]!.mul(s))) as [Tensor, Tensor, Tensor]));
  assertClose(fused, shifted(h).sub(shifted(-h)).div(2 * h), { rtol: 1e-6, atol: 1e-7 }, 'jvp of the gradient vs finite differences');
  const hess = (x: Tensor) => t.hessian((a: Tensor) => loss(a.reshape([2, 3, 2]), k, v.mul(a.sum())))(x) as Tensor;
  const x0 = rand64([12], 16);
  assertClose(hess(x0), withFused(false, () => hess(x0)), { rtol: 1e-8, atol: 1e-10 }, 'hessian');
});
