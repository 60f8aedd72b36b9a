import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { bind } from '../../../src/ops/dispatch.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { forEachBackend, runsFloat64Checks } from '../../helpers/backends.js';

// layerNorm runs as a primitive layerNormCore (x − mean)·rsqrt(var + eps) along the last axis, its
// vjp layerNormCoreGrad, and layerNormRstd rsqrt(var + eps) per row (for higher derivatives). All against a float64
// reference written here, on contiguous rows (with and without a SIMD tail), rows that do not merge,
// a transposed input and rows of one element; then first and second derivatives in float64.

const gen = new t.Generator(99);

function values(n: number, scale: number, shift: number): number[] {
  return Array.from({ length: n }, () => shift + scale * (2 * gen.uniform() - 1));
}

/** Per row of the last axis: [mean, rstd] in float64 (two passes, biased variance). */
function rowStats(x: t.Tensor, eps: number): { y: number[]; rstd: number[] } {
  const v = Array.from(x.contiguous().data());
  const len = x.shape[x.rank - 1]!;
  const y: number[] = [], rstd: number[] = [];
  for (let base = 0; base < v.length; base += len) {
    const row = v.slice(base, base + len);
    const mean = row.reduce((a, b) => a + b, 0) / len;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / len;
    const r = 1 / Math.sqrt(variance + eps);
    rstd.push(r);
    for (const xi of row) y.push((xi - mean) * r);
  }
  return { y, rstd };
}

function assertClose(actual: t.Tensor, want: number[], what: string): void {
  const got = Array.from(actual.data());
  assert.equal(got.length, want.length, `${what}: length`);
  // float32: the result is rounded once from float64 sums (a few ulps at most); float64: summation order.
  // The webgpu kernels sum in float32 (GPUs have no float64 in WGSL): up to 32 ulps there.
  const ulp = actual.dtype === 'float32' ? 2 ** -23 : 2 ** -50;
  const ulps = actual.dtype === 'float32' && actual.backend === 'webgpu' ? 32 : 4;
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i]! - want[i]!) <= ulps * ulp * Math.max(1, Math.abs(want[i]!)), `${what}[${i}]: got ${got[i]}, expected ${want[i]}`);
  }
}

const core = (x: t.Tensor, eps: number): t.Tensor => bind('layerNormCore', [x], { eps });
const rstd = (x: t.Tensor, eps: number): t.Tensor => bind('layerNormRstd', [x], { eps });
const coreGrad = (x: t.Tensor, g: t.Tensor, eps: number): t.Tensor => bind('layerNormCoreGrad', [x, g], { eps });

/** rstd·(g − mean(g) − y·mean(g·y)) per row in float64. */
function coreGradReference(x: t.Tensor, g: t.Tensor, eps: number): number[] {
  const { y, rstd: r } = rowStats(x, eps);
  const gv = Array.from(g.contiguous().data());
  const len = x.shape[x.rank - 1]!;
  const out: number[] = [];
  for (let row = 0; row * len < gv.length; row++) {
    const base = row * len;
    let total = 0, dot = 0;
    for (let j = 0; j < len; j++) { total += gv[base + j]!; dot += gv[base + j]! * y[base + j]!; }
    for (let j = 0; j < len; j++) out.push(r[row]! * (gv[base + j]! - total / len - y[base + j]! * (dot / len)));
  }
  return out;
}

forEachBackend('layerNorm primitives', (backend) => {
  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: layerNormCore and layerNormRstd match the float64 reference over every layout`, () => {
      const inputs: [string, t.Tensor][] = [];
      const make = (shape: number[], scale = 3, shift = 5) =>
        t.tensor(values(shape.reduce((a, b) => a * b, 1), scale, shift), { dtype, shape });
      inputs.push(['rows of 7 (SIMD tail)', make([5, 7])]);
      inputs.push(['rows of 64', make([3, 2, 64])]);
      inputs.push(['rows of 1', make([4, 1])]);
      inputs.push(['a single row', make([10])]);
      inputs.push(['rows that do not merge', make([4, 3, 12]).permute([1, 0, 2])]);
      inputs.push(['a transposed input (last stride 9)', make([9, 6]).T]);
      inputs.push(['a narrowed row (offset, row stride > length)', make([6, 11]).narrow(1, 2, 8)]);
      inputs.push(['tiny variance (eps matters)', make([3, 8], 1e-4, 1)]);
      for (const [what, x] of inputs) {
        for (const eps of [1e-5, 0.5]) {
          const want = rowStats(x, eps);
          const y = core(x, eps), r = rstd(x, eps);
          assert.deepEqual(y.shape, x.shape, `${what}: core shape`);
          assert.deepEqual(r.shape, [...x.shape.slice(0, -1), 1], `${what}: rstd shape`);
          assert.equal(y.dtype, dtype);
          assertClose(y, want.y, `${what} core eps ${eps}`);
          assertClose(r, want.rstd, `${what} rstd eps ${eps}`);
          const g = t.tensor(values(x.size, 1, 0.2), { dtype, shape: [...x.shape] });
          for (const [gWhat, gi] of [['contiguous g', g], ['g laid out like x', x.mul(0).add(g)], ['broadcast g', t.expand(g.narrow(-1, 0, 1), [...x.shape])]] as const) {
            assertClose(coreGrad(x, gi, eps), coreGradReference(x, gi, eps), `${what} coreGrad (${gWhat}) eps ${eps}`);
          }
        }
      }
    });
  }

  // A wasm-only check, declared only in the wasm pass (so the cpu pass reports no skipped test).
  if (backend === 'wasm') it('float32 contiguous rows run the wasm kernel', () => {
    const before = wasmBackend.kernelCalls.get('layerNormCore')?.wasm ?? 0;
    const beforeGrad = wasmBackend.kernelCalls.get('layerNormCoreGrad')?.wasm ?? 0;
    const x = t.tensor(values(40, 1, 0), { dtype: 'float32', shape: [4, 10], requiresGrad: true });
    t.layerNorm(x, [10]).mul(t.arange(40, undefined, 1, { dtype: 'float32' }).reshape([4, 10])).sum().backward();
    assert.equal(wasmBackend.kernelCalls.get('layerNormCore')!.wasm, before + 1);
    assert.equal(wasmBackend.kernelCalls.get('layerNormCoreGrad')!.wasm, beforeGrad + 1);
  });

  it('the primitives refuse an empty last axis and non-floating input, saying what to do', () => {
    assert.throws(() => core(t.zeros([2, 0]), 1e-5), /layerNormCore.*non-empty last axis/);
    assert.throws(() => rstd(t.zeros([3], { dtype: 'int32' }), 1e-5), /layerNormRstd.*floating/);
    // layerNorm itself keeps the composite for empty rows.
    assert.deepEqual(t.layerNorm(t.zeros([2, 0]), [0]).shape, [2, 0]);
  });

  // float64 only: see runsFloat64Checks (helpers/backends.ts).
  if (runsFloat64Checks(backend)) it('first and second derivatives (float64, vjp and jvp)', () => {
    const x = () => t.tensor(values(12, 1, 0.3), { dtype: 'float64', shape: [3, 4] });
    for (const [name, f] of [['layerNormCore', (a: t.Tensor) => core(a, 0.1)], ['layerNormRstd', (a: t.Tensor) => rstd(a, 0.1)]] as const) {
      assert.ok(t.gradcheck(f, [x()], { name, atol: 1e-6, rtol: 1e-5 }).ok, name);
      assert.ok(t.gradgradcheck(f, [x()], { name, atol: 1e-5, rtol: 1e-4 }).ok, name);
    }
    const f = (a: t.Tensor, g: t.Tensor): t.Tensor => coreGrad(a, g, 0.1);
    assert.ok(t.gradcheck(f, [x(), x()], { name: 'layerNormCoreGrad', atol: 1e-6, rtol: 1e-5 }).ok);
    assert.ok(t.gradgradcheck(f, [x(), x()], { name: 'layerNormCoreGrad', atol: 1e-5, rtol: 1e-4 }).ok);
    const affine = (a: t.Tensor, w: t.Tensor, b: t.Tensor): t.Tensor => t.layerNorm(a, [2, 2], { weight: w, bias: b, eps: 1e-3 });
    const inputs = () => [x().reshape([3, 2, 2]), t.tensor([[0.5, -1], [2, 1.5]], { dtype: 'float64' }), t.tensor([[0.1, 0.2], [0.3, 0.4]], { dtype: 'float64' })];
    assert.ok(t.gradcheck(affine, inputs(), { atol: 1e-6, rtol: 1e-5 }).ok);
    assert.ok(t.gradgradcheck(affine, inputs(), { atol: 1e-5, rtol: 1e-4 }).ok);
  });

  it('float32 gradients agree with the float64 composite', () => {
    const data = values(3 * 33, 2, 1);
    const w = t.tensor(values(33, 1, 1), { dtype: 'float64' });
    const g = t.tensor(values(3 * 33, 1, 0), { dtype: 'float64', shape: [3, 33] });
    const x32 = t.tensor(data, { dtype: 'float32', shape: [3, 33], requiresGrad: true });
    t.layerNorm(x32, [33], { weight: w.float() }).backward(g.float());
    const x64 = t.tensor(data, { dtype: 'float64', shape: [3, 33], requiresGrad: true });
    const centered = x64.sub(x64.mean(-1, true));
    centered.mul(centered.square().mean(-1, true).add(1e-5).rsqrt()).mul(w).backward(g);
    assertClose(x32.grad!, Array.from(x64.grad!.data()).map((v) => v), 'dx');
  });
});
