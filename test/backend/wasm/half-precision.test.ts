// float16/bfloat16 on the wasm backend: their values sit in float32 words, so the float32 SIMD
// kernels (elementwise, casts to a half format, fused attention and its gradient) run on them and
// round the result to the format once. Each is checked against the cpu reference, which computes in
// float64 and rounds: the two may differ by one unit in the format's last place (a float32 result
// that lands next to a rounding boundary), never more; and the wasm path must actually be taken.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { seededUniform } from '../../helpers/cpu-wasm-pair.js';

const HALF = ['bfloat16', 'float16'] as const;
/** Spacing of the format around |x| (its unit in the last place). */
const ulp = (x: number, dtype: 'bfloat16' | 'float16'): number => {
  const bits = dtype === 'bfloat16' ? 8 : 11;
  const e = Math.floor(Math.log2(Math.max(Math.abs(x), dtype === 'bfloat16' ? 2 ** -126 : 2 ** -14)));
  return 2 ** (e - bits + 1);
};

function assertWithinOneUlp(actual: t.Tensor, expected: t.Tensor, dtype: 'bfloat16' | 'float16', what: string): void {
  assert.equal(actual.dtype, dtype, `${what}: dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = actual.data(), b = expected.data();
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(Number(a[i]) - Number(b[i]));
    assert.ok(d <= ulp(Number(b[i]), dtype), `${what}[${i}]: wasm ${a[i]}, reference ${b[i]}`);
  }
}

/** Runs f on the same half-format values on cpu and on wasm; returns both results and the wasm kernel calls of `prim`. */
function onBoth(dtype: 'bfloat16' | 'float16', shapes: number[][], seed: number, f: (...xs: t.Tensor[]) => t.Tensor, prim: string): [t.Tensor, t.Tensor, number] {
  const draw = seededUniform(seed, 2);
  const data = shapes.map((s) => draw(s.reduce((x, y) => x * y, 1)));
  const make = (backend: string) => data.map((d, i) => t.tensor(d, { shape: shapes[i]!, dtype: 'float32', backend }).cast(dtype));
  const ref = f(...make('cpu'));
  const before = t.wasmBackend.kernelCalls.get(prim as never)?.wasm ?? 0;
  const got = f(...make('wasm'));
  return [got, ref, (t.wasmBackend.kernelCalls.get(prim as never)?.wasm ?? 0) - before];
}

for (const dtype of HALF) {
  it(`${dtype}: elementwise ops run the float32 SIMD kernels and round once (within one unit of the reference)`, () => {
    const cases: [string, number, (...xs: t.Tensor[]) => t.Tensor][] = [
      ['add', 2, (a, b) => t.add(a, b)],
      ['mul', 2, (a, b) => t.mul(a, b)],
      ['sub', 2, (a, b) => t.sub(a, b.mT.mT)],
      ['exp', 1, (a) => t.exp(a)],
      ['tanh', 1, (a) => t.tanh(a)],
      ['relu', 1, (a) => t.relu(a)],
    ];
    for (const [prim, arity, f] of cases) {
      const [got, ref, calls] = onBoth(dtype, Array.from({ length: arity }, () => [7, 33]), 3, f, prim);
      assert.ok(calls > 0, `${prim} on ${dtype} ran the wasm kernel`);
      assertWithinOneUlp(got, ref, dtype, prim);
    }
  });

  it(`${dtype}: sum/max/min run the float32 SIMD reductions, accumulate in float32 and round once (within one unit of the reference)`, () => {
    const cases: [string, (a: t.Tensor) => t.Tensor][] = [
      ['sum', (a) => t.sum(a, 1)],
      ['sum', (a) => t.sum(a, 0)],
      ['sum', (a) => a.sum()],
      ['max', (a) => t.max(a, 1)],
      ['min', (a) => t.min(a.mT, 0)],
    ];
    for (const [prim, f] of cases) {
      const [got, ref, calls] = onBoth(dtype, [[7, 33]], 4, f, prim);
      assert.ok(calls > 0, `${prim} on ${dtype} ran the wasm kernel`);
      assertWithinOneUlp(got, ref, dtype, prim);
    }
  });

  it(`${dtype}: softmax, logSoftmax and layerNorm (and its gradient) run the float32 row kernels and round once (within one unit of the reference)`, () => {
    const cases: [string, number, (...xs: t.Tensor[]) => t.Tensor][] = [
      ['softmax', 1, (a) => t.softmax(a, -1)],
      ['logSoftmax', 1, (a) => t.logSoftmax(a, -1)],
      ['layerNormCore', 1, (a) => t.layerNorm(a, [33])],
    ];
    for (const [prim, arity, f] of cases) {
      const [got, ref, calls] = onBoth(dtype, Array.from({ length: arity }, () => [7, 33]), 6, f, prim);
      assert.ok(calls > 0, `${prim} on ${dtype} ran the wasm kernel`);
      assertWithinOneUlp(got, ref, dtype, prim);
    }
    // The gradient through layerNorm's core: both inputs in the format.
    const draw = seededUniform(8, 2);
    const [xs, gs] = [draw(7 * 33), draw(7 * 33)];
    const grad = (backend: string): [t.Tensor, number] => {
      const x = t.tensor(xs, { shape: [7, 33], dtype: 'float32', backend }).cast(dtype).requiresGrad_();
      const before = t.wasmBackend.kernelCalls.get('layerNormCoreGrad')?.wasm ?? 0;
      t.layerNorm(x, [33]).backward(t.tensor(gs, { shape: [7, 33], dtype: 'float32', backend }).cast(dtype));
      return [x.grad!, (t.wasmBackend.kernelCalls.get('layerNormCoreGrad')?.wasm ?? 0) - before];
    };
    const [refGrad] = grad('cpu');
    const [gotGrad, calls] = grad('wasm');
    assert.ok(calls > 0, `layerNormCoreGrad on ${dtype} ran the wasm kernel`);
    // The gradient is a difference of rounded terms: compare within two units, scaled by the row's largest value.
    const a = gotGrad.data(), b = refGrad.data();
    const scale = Math.max(...Array.from(b, (v) => Math.abs(Number(v))));
    for (let i = 0; i < b.length; i++) assert.ok(Math.abs(Number(a[i]) - Number(b[i])) <= 4 * ulp(scale, dtype), `layerNorm grad[${i}]: wasm ${a[i]}, reference ${b[i]}`);
  });

  it(`${dtype}: casts from float32 round on the wasm backend as the reference does; float64 sources keep the reference's single rounding`, () => {
    const draw = seededUniform(5, 3);
    const values = draw(999);
    const fromF32 = (backend: string) => t.tensor(values, { shape: [999], dtype: 'float32', backend }).cast(dtype).data();
    assert.deepEqual(Array.from(fromF32('wasm')), Array.from(fromF32('cpu')));
    const fromF64 = (backend: string) => t.tensor(values, { shape: [999], dtype: 'float64', backend }).cast(dtype).data();
    assert.deepEqual(Array.from(fromF64('wasm')), Array.from(fromF64('cpu')));
  });

  it(`${dtype}: fused attention and its gradient run the float32 kernels (within one unit of the reference)`, () => {
    // The fused primitive takes float32/float64 inputs; autocast then casts them to the format at bind.
    const sdpa = (q: t.Tensor, k: t.Tensor, v: t.Tensor): t.Tensor =>
      t.quant.autocast({ dtype }, () => t.scaledDotProductAttention(q.float(), k.float(), v.float(), { isCausal: true }));
    const shapes = [[2, 3, 8, 16], [2, 3, 8, 16], [2, 3, 8, 16]];
    const [got, ref, calls] = onBoth(dtype, shapes, 7, (q, k, v) => sdpa(q!, k!, v!), 'attention');
    assert.ok(calls > 0, 'attention ran the wasm kernel');
    assertWithinOneUlp(got, ref, dtype, 'attention');
    const grads = (backend: string) => {
      const draw = seededUniform(9, 1);
      const [q, k, v] = shapes.map((s) => t.tensor(draw(s.reduce((x, y) => x * y, 1)), { shape: s, dtype: 'float32', backend }).cast(dtype).float().requiresGrad_());
      sdpa(q!, k!, v!).float().sum().backward();
      return [q!.grad!, k!.grad!, v!.grad!];
    };
    const before = t.wasmBackend.kernelCalls.get('attentionGrad')?.wasm ?? 0;
    const [gw, gc] = [grads('wasm'), grads('cpu')];
    assert.ok((t.wasmBackend.kernelCalls.get('attentionGrad')?.wasm ?? 0) > before, 'attentionGrad ran the wasm kernel');
    // Gradients go through several roundings (the cotangent cast, the kernel's outputs): allow 2 units.
    gw.forEach((g, i) => {
      const a = g.data(), b = gc[i]!.data();
      for (let j = 0; j < b.length; j++) {
        assert.ok(Math.abs(Number(a[j]) - Number(b[j])) <= 2 * ulp(Number(b[j]), dtype) + 1e-6, `gradient ${i}[${j}]: wasm ${a[j]}, reference ${b[j]}`);
      }
    });
  });
}
