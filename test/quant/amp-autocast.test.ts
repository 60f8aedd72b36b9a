// autocast: which ops run in which dtype, the values they compute (against a float64 reference on
// the rounded inputs), regions (nesting, enabled: false, exit), gradients through the casts, the
// weight cache, and jit under autocast.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { autocast, enterAutocast, isAutocastEnabled, autocastDType, autocastCacheSize, AUTOCAST_RULES } from '../../src/quant/index.js';
import { castScalar, type DType } from '../../src/core/dtype.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { crossEntropy, mseLoss, softmax, logSoftmax, layerNorm, scaledDotProductAttention, conv2d } from '../../src/ops/nn/index.js';
import { gradcheck } from '../../src/autodiff/gradcheck.js';
import { jit } from '../../src/graph/jit.js';
import { forEachBackend } from '../helpers/backends.js';

const HALF: readonly ('bfloat16' | 'float16')[] = ['bfloat16', 'float16'];
/** Unit roundoff of each format: relative error of one rounding to nearest. */
const UNIT: Record<string, number> = { bfloat16: 2 ** -8, float16: 2 ** -11, float32: 2 ** -24 };

const values = (x: t.Tensor): number[] => Array.from(x.data());

/** Row-major float64 product of a [m, k] and b [k, n] given as arrays. */
function matmul64(a: number[], b: number[], m: number, k: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += a[i * k + q]! * b[q * n + j]!;
      out.push(s);
    }
  }
  return out;
}

function assertRepresentable(xs: number[], dtype: DType, what: string): void {
  for (const v of xs) assert.equal(castScalar(v, dtype), v, `${what}: ${v} is not a ${dtype} value`);
}

forEachBackend('autocast', () => {
  for (const dtype of HALF) {
    it(`${dtype}: matmul runs in ${dtype} and equals the float64 product of the rounded inputs, rounded once`, () => {
      const g = new t.Generator(1);
      const a = t.randn([5, 7], { generator: g }), b = t.randn([7, 3], { generator: g });
      const out = autocast({ dtype }, () => t.matmul(a, b));
      assert.equal(out.dtype, dtype);
      const ra = values(a).map((v) => castScalar(v, dtype)), rb = values(b).map((v) => castScalar(v, dtype));
      const ref = matmul64(ra, rb, 5, 7, 3);
      const got = values(out);
      assertRepresentable(got, dtype, 'matmul output');
      // One rounding to the format (plus float32 accumulation, far below it).
      got.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) <= UNIT[dtype]! * Math.abs(ref[i]!) + 7 * 2 ** -24 * 8, `element ${i}: ${v} vs ${ref[i]}`));
      // Outside the region the same product is float32 (autocast changed nothing for good).
      assert.equal(t.matmul(a, b).dtype, 'float32');
    });

    it(`${dtype}: softmax, logSoftmax, sum, exp, layerNorm and losses run in float32 on ${dtype} inputs`, () => {
      const g = new t.Generator(2);
      const x = t.randn([4, 6], { generator: g });
      const xh = t.cast(x, dtype);
      const target = t.tensor([0, 5, 2, 3], { dtype: 'int32' });
      const outs = autocast({ dtype }, () => ({
        softmax: softmax(xh, -1), logSoftmax: logSoftmax(xh, -1), sum: t.sum(xh), exp: t.exp(xh), mean: t.mean(xh),
        layerNorm: layerNorm(xh, [6]), crossEntropy: crossEntropy(xh, target), mse: mseLoss(xh, t.zeros([4, 6])),
      }));
      for (const [name, v] of Object.entries(outs)) assert.equal(v.dtype, 'float32', name);
      // Values: the float64 softmax of the (already rounded) inputs, within float32 rounding.
      const xs = values(xh);
      const ref: number[] = [];
      for (let r = 0; r < 4; r++) {
        const row = xs.slice(r * 6, r * 6 + 6), m = Math.max(...row);
        const e = row.map((v) => Math.exp(v - m)), s = e.reduce((p, q) => p + q, 0);
        ref.push(...e.map((v) => v / s));
      }
      values(outs.softmax).forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) <= 4 * UNIT.float32! * Math.abs(ref[i]!) + 1e-9, `softmax ${i}`));
      const sum64 = xs.reduce((p, q) => p + q, 0);
      assert.ok(Math.abs(outs.sum.item() - sum64) <= 24 * UNIT.float32! * xs.reduce((p, q) => p + Math.abs(q), 0));
    });

    it(`${dtype}: a linear layer's output (bias included) is ${dtype}; its parameter gradients are float32 and equal explicit casts`, () => {
      t.manualSeed(3);
      const lin = new Linear(6, 4);
      const x = t.randn([5, 6]);
      const target = t.tensor([0, 3, 1, 2, 3], { dtype: 'int32' });
      const loss = autocast({ dtype }, () => {
        const y = lin.call(x);
        assert.equal(y.dtype, dtype);
        return crossEntropy(y, target);
      });
      assert.equal(loss.dtype, 'float32');
      loss.backward();
      const gw = lin.weight.grad!, gb = lin.bias!.grad!;
      assert.equal(gw.dtype, 'float32');
      assert.equal(gb.dtype, 'float32');
      // The same computation written with explicit casts, without autocast.
      const w2 = t.clone(lin.weight).detach().requiresGrad_(true), b2 = t.clone(lin.bias!).detach().requiresGrad_(true);
      const y2 = t.add(t.matmul(t.cast(x, dtype), t.cast(w2, dtype).mT), t.cast(b2, dtype));
      const loss2 = crossEntropy(t.cast(y2, 'float32'), target);
      loss2.backward();
      assert.equal(loss.item(), loss2.item());
      assert.deepEqual(values(gw), values(w2.grad!));
      assert.deepEqual(values(gb), values(b2.grad!));
    });
  }

  it('regions nest; enabled: false is a float32 island; exit restores the state outside', () => {
    const a = t.randn([3, 3]);
    assert.equal(isAutocastEnabled(), false);
    autocast({ dtype: 'float16' }, () => {
      assert.equal(autocastDType(), 'float16');
      assert.equal(t.matmul(a, a).dtype, 'float16');
      autocast({ dtype: 'bfloat16' }, () => assert.equal(t.matmul(a, a).dtype, 'bfloat16'));
      autocast({ enabled: false }, () => {
        assert.equal(isAutocastEnabled(), false);
        assert.equal(t.matmul(a, a).dtype, 'float32');
      });
      assert.equal(t.matmul(a, a).dtype, 'float16');
    });
    assert.equal(isAutocastEnabled(), false);
    assert.equal(t.matmul(a, a).dtype, 'float32');
    // A region left by an exception is exited too.
    assert.throws(() => autocast({ dtype: 'bfloat16' }, () => { throw new Error('boom'); }), /boom/);
    assert.equal(isAutocastEnabled(), false);
    // The scoped form, and its error for out-of-order exits.
    const outer = enterAutocast({ dtype: 'bfloat16' });
    const inner = enterAutocast({ dtype: 'float16' });
    assert.throws(() => outer.exit(), /innermost first/);
    inner.exit();
    outer.exit();
    assert.equal(isAutocastEnabled(), false);
    {
      using _region = enterAutocast({ dtype: 'bfloat16' });
      assert.equal(t.matmul(a, a).dtype, 'bfloat16');
    }
    assert.equal(t.matmul(a, a).dtype, 'float32');
    assert.throws(() => autocast({ dtype: 'float32' as never }, () => 0), /dtype must be 'float16' or 'bfloat16'/);
  });

  it('float64 ops are not eligible (as in PyTorch), so float64 gradcheck passes through a region', () => {
    const x = t.randn([3, 4], { dtype: 'float64' }).requiresGrad_(true);
    const w = t.randn([4, 2], { dtype: 'float64' }).requiresGrad_(true);
    const f = (a: t.Tensor, b: t.Tensor) => autocast({ dtype: 'bfloat16' }, () => t.sum(softmax(t.matmul(a, b), -1).mul(t.tensor([1, 2], { dtype: 'float64' }))));
    assert.equal(autocast({ dtype: 'bfloat16' }, () => t.matmul(x, w)).dtype, 'float64');
    assert.ok(gradcheck(f, [x, w]));
  });

  it('gradients under autocast match the float64 gradients within the format\'s precision', () => {
    const g = new t.Generator(5);
    const x = t.randn([8, 5], { generator: g }), w = t.randn([5, 3], { generator: g }).requiresGrad_(true);
    const target = t.tensor([0, 1, 2, 0, 1, 2, 0, 1], { dtype: 'int32' });
    autocast({ dtype: 'bfloat16' }, () => crossEntropy(t.matmul(x, w), target)).backward();
    const w64 = t.cast(w, 'float64').detach().requiresGrad_(true);
    crossEntropy(t.matmul(t.cast(x, 'float64'), w64), target).backward();
    const got = values(w.grad!), ref = values(w64.grad!);
    const scale = Math.max(...ref.map(Math.abs));
    got.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) <= 0.05 * scale, `w.grad[${i}] ${v} vs ${ref[i]}`));
  });

  it('a parameter is cast once per region (the weight cache), and the cache is dropped at exit', () => {
    const w = t.randn([4, 4]).requiresGrad_(true);
    const x = t.randn([2, 4]);
    let casts = 0;
    const stop = t.addDispatchObserver({ onPrimitive: (p) => { if (p === 'cast') casts++; } });
    try {
      const l = autocast({ dtype: 'bfloat16' }, () => {
        const h = t.matmul(t.matmul(x, w), w); // w used twice; x is not a leaf param: cast each use
        assert.equal(autocastCacheSize(), 1);
        return t.sum(h);
      });
      assert.equal(autocastCacheSize(), 0);
      // x once, w once (cached), the first product is bf16 already; the sum upcasts once.
      assert.equal(casts, 3);
      l.backward();
      assert.equal(w.grad!.dtype, 'float32');
    } finally {
      stop();
    }
    // Under noGrad a cached cast would carry no tape: a grad-mode use in the same region casts again.
    const l2 = autocast({ dtype: 'bfloat16' }, () => {
      t.noGrad(() => t.matmul(x, w));
      return t.sum(t.matmul(x, w));
    });
    w.grad = undefined;
    l2.backward();
    assert.ok(w.grad !== undefined);
  });

  it('attention, conv and einsum run their products in the region dtype', () => {
    const q = t.randn([1, 2, 4, 8]), k = t.randn([1, 2, 4, 8]), v = t.randn([1, 2, 4, 8]);
    const w = t.randn([3, 2, 3, 3]).requiresGrad_(true), bias = t.randn([3]).requiresGrad_(true);
    const img = t.randn([1, 2, 5, 5]);
    autocast({ dtype: 'bfloat16' }, () => {
      assert.equal(scaledDotProductAttention(q, k, v, { isCausal: true }).dtype, 'bfloat16');
      assert.equal(scaledDotProductAttention(q, k, v, { attnMask: t.ones([4, 4], { dtype: 'bool' }) }).dtype, 'bfloat16');
      assert.equal(conv2d(img, w, { bias, padding: 1 }).dtype, 'bfloat16');
      assert.equal(t.einsum('ij,jk->ik', t.randn([2, 3]), t.randn([3, 4])).dtype, 'bfloat16');
    });
    const l = autocast({ dtype: 'bfloat16' }, () => t.sum(conv2d(img, w, { bias })));
    l.backward();
    assert.equal(w.grad!.dtype, 'float32');
    assert.equal(bias.grad!.dtype, 'float32');
  });

  it('a jitted step (forward under autocast, backward) equals the eager one, and a change of autocast state retraces', () => {
    const build = () => { t.manualSeed(11); return [new Linear(6, 8), new Linear(8, 3)] as const; };
    const [a1, b1] = build(), [a2, b2] = build();
    const x = t.randn([5, 6]);
    const y = t.tensor([0, 1, 2, 1, 0], { dtype: 'int32' });
    const step = (a: Linear, b: Linear) => (xb: t.Tensor, yb: t.Tensor): t.Tensor => {
      for (const p of [...a.parameters(), ...b.parameters()]) p.grad = undefined;
      const l = autocast({ dtype: 'bfloat16' }, () => crossEntropy(b.call(t.relu(a.call(xb))), yb));
      l.backward();
      return l;
    };
    const eager = step(a1, b1);
    const compiled = jit(step(a2, b2));
    for (let i = 0; i < 3; i++) {
      const l1 = eager(x, y), l2 = compiled(x, y);
      assert.equal(l2.item(), l1.item(), `step ${i}`);
      const g1 = [...a1.parameters(), ...b1.parameters()].map((p) => values(p.grad!));
      const g2 = [...a2.parameters(), ...b2.parameters()].map((p) => values(p.grad!));
      assert.deepEqual(g2, g1);
    }
    assert.equal(compiled.stats().traces, 1);
    assert.ok(compiled.graphs()[0]!.traced.nodes.some((n) => n.op === 'cast'), 'the casts are graph nodes');

    // A function without its own region: jit keys on the autocast state around the call.
    const fwd = jit((xb: t.Tensor) => a2.call(xb));
    assert.equal(fwd(x).dtype, 'float32');
    const inRegion = autocast({ dtype: 'bfloat16' }, () => fwd(x));
    assert.equal(inRegion.dtype, 'bfloat16');
    assert.deepEqual(values(inRegion), values(autocast({ dtype: 'bfloat16' }, () => a2.call(x))));
    assert.equal(fwd.stats().traces, 2);
    assert.match(fwd.stats().traceReasons[1]!, /autocast/);
    assert.equal(autocast({ dtype: 'bfloat16' }, () => fwd(x)).dtype, 'bfloat16');
    assert.equal(fwd.stats().traces, 2);
  });
});

it('the policy table names every op with a policy and a note', () => {
  for (const [op, rule] of Object.entries(AUTOCAST_RULES)) {
    assert.ok(rule.policy === 'lower' || rule.policy === 'float32', op);
    assert.ok(rule.note.length > 0, op);
  }
  assert.equal(AUTOCAST_RULES.matmul!.policy, 'lower');
  assert.equal(AUTOCAST_RULES.softmax!.policy, 'float32');
});
