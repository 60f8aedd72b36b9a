// Shared test helpers for the NN ops: PyTorch fixture loading/comparison and float64 finite-difference
// checks of reverse mode (vjp), forward mode (jvp) and second derivatives.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as t from '../../../src/index.js';

export interface EncodedTensor { shape: number[]; dtype: 'float64' | 'float32' | 'int32' | 'bool'; data: (number | boolean)[] }
export interface FixtureCase {
  name: string;
  op: string;
  options: Record<string, unknown>;
  inputs: Record<string, EncodedTensor>;
  output: EncodedTensor;
  cotangent: EncodedTensor;
  grads: Record<string, EncodedTensor>;
  after?: Record<string, EncodedTensor>;
}

export function loadFixtures(family: string): FixtureCase[] {
  const path = fileURLToPath(new URL(`../../fixtures/torch-nn/${family}.json`, import.meta.url));
  return (JSON.parse(readFileSync(path, 'utf8')) as { cases: FixtureCase[] }).cases;
}

export function decode(e: EncodedTensor): t.Tensor {
  const values = e.dtype === 'float64' ? Float64Array.from(e.data as number[])
    : e.dtype === 'float32' ? Float32Array.from(e.data as number[])
    : e.dtype === 'int32' ? Int32Array.from(e.data as number[])
    : Uint8Array.from(e.data as boolean[], (b) => (b ? 1 : 0));
  return t.tensor(values, { dtype: e.dtype, shape: e.shape });
}

/** Options with JSON nulls (Python None) dropped. */
export function opts(c: FixtureCase): Record<string, unknown> {
  return Object.fromEntries(Object.entries(c.options).filter(([, v]) => v !== null));
}

/** max |actual − expected| within atol + rtol·max|expected| (float64: 1e-10 relative; float32: 1e-4 / 1e-5). */
export function assertClose(actual: t.Tensor, expected: EncodedTensor | t.Tensor, what: string, tol?: { rtol: number; atol: number }): void {
  const exp = expected instanceof t.Tensor ? expected : decode(expected);
  assert.deepEqual([...actual.shape], [...exp.shape], `${what}: shape`);
  const a = actual.data(), b = exp.data();
  const dtype = expected instanceof t.Tensor ? expected.dtype : expected.dtype;
  const { rtol, atol } = tol ?? (dtype === 'float32' || actual.dtype === 'float32' ? { rtol: 1e-4, atol: 1e-5 } : { rtol: 1e-10, atol: 1e-10 });
  let scale = 0, err = 0;
  for (let i = 0; i < b.length; i++) {
    const x = Number(a[i]), y = Number(b[i]);
    if (Number.isNaN(y)) { assert.ok(Number.isNaN(x), `${what}: element ${i} is ${x}, expected NaN`); continue; }
    scale = Math.max(scale, Math.abs(y));
    err = Math.max(err, Math.abs(x - y));
  }
  assert.ok(err <= atol + rtol * scale, `${what}: max abs error ${err} exceeds ${atol} + ${rtol}·${scale}`);
}

/**
 * Runs a fixture case: builds the inputs (floating ones listed in `grads` require grad), applies
 * `run`, compares the output, back-propagates the stored cotangent and compares every gradient.
 */
export function checkCase(c: FixtureCase, run: (x: Record<string, t.Tensor>, o: Record<string, unknown>) => t.Tensor): Record<string, t.Tensor> {
  const inputs: Record<string, t.Tensor> = {};
  for (const [k, e] of Object.entries(c.inputs)) {
    inputs[k] = decode(e);
    if (k in c.grads) inputs[k]!.requiresGrad = true;
  }
  const out = run(inputs, opts(c));
  assertClose(out, c.output, `${c.name}: output`);
  out.backward(decode(c.cotangent));
  for (const [k, g] of Object.entries(c.grads)) {
    assert.ok(inputs[k]!.grad !== undefined, `${c.name}: no gradient reached ${k}`);
    assertClose(inputs[k]!.grad!, g, `${c.name}: gradient of ${k}`);
  }
  return inputs;
}

/** A seeded float64 tensor with values in (-1, 1) (or standard normal). */
export function rand64(shape: number[], seed: number, normal = false): t.Tensor {
  const g = new t.Generator(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return t.tensor(Float64Array.from({ length: n }, () => (normal ? g.normal() : 2 * g.uniform() - 1)), { dtype: 'float64', shape });
}

function perturbed(xs: readonly t.Tensor[], which: number, delta: Float64Array): t.Tensor[] {
  return xs.map((x, i) => {
    if (i !== which) return x;
    const d = x.data() as Float64Array;
    return t.tensor(Float64Array.from(d, (v, j) => v + delta[j]!), { dtype: 'float64', shape: [...x.shape] });
  });
}

function dotAll(a: t.Tensor, b: t.Tensor): number {
  const x = a.data(), y = b.data();
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Number(x[i]) * Number(y[i]);
  return s;
}

/**
 * Float64 finite-difference checks of f at xs: reverse mode (every input element's gradient of
 * <u, f> for a random cotangent u) and forward mode (t.jvp along a random tangent per input).
 * Returns the largest relative error so callers can assert on it.
 */
export function checkGradients(f: (...xs: t.Tensor[]) => t.Tensor, xs: t.Tensor[], opts: { h?: number; tol?: number; seed?: number } = {}): void {
  const h = opts.h ?? 1e-6, tol = opts.tol ?? 1e-6;
  const y0 = t.noGrad(() => f(...xs));
  const u = rand64([...y0.shape], opts.seed ?? 7, true);
  const phi = (...zs: t.Tensor[]): number => t.noGrad(() => dotAll(f(...zs), u));
  // Reverse mode against central differences, element by element.
  const [, pullback] = t.vjp(f, ...xs);
  const grads = pullback(u);
  xs.forEach((x, i) => {
    const analytic = grads[i]!.data();
    let scale = 1, err = 0;
    for (let j = 0; j < x.size; j++) {
      const e = new Float64Array(x.size); e[j] = h;
      const plus = phi(...perturbed(xs, i, e));
      e[j] = -h;
      const numeric = (plus - phi(...perturbed(xs, i, e))) / (2 * h);
      scale = Math.max(scale, Math.abs(numeric));
      err = Math.max(err, Math.abs(numeric - Number(analytic[j])));
    }
    assert.ok(err <= tol * scale, `vjp of input ${i}: finite-difference error ${err} (scale ${scale})`);
  });
  // Forward mode: J·v for random tangents v against (f(x + h v) − f(x − h v)) / 2h.
  const vs = xs.map((x, i) => rand64([...x.shape], 100 + i, true));
  const [, tangent] = t.jvp(f, xs, vs);
  const step = (s: number): t.Tensor[] => xs.map((x, i) => t.tensor(Float64Array.from(x.data() as Float64Array, (v, j) => v + s * Number(vs[i]!.data()[j])), { dtype: 'float64', shape: [...x.shape] }));
  const fp = t.noGrad(() => f(...step(h)).data()), fm = t.noGrad(() => f(...step(-h)).data());
  const td = tangent.data();
  let scale = 1, err = 0;
  for (let j = 0; j < fp.length; j++) {
    const numeric = (Number(fp[j]) - Number(fm[j])) / (2 * h);
    scale = Math.max(scale, Math.abs(numeric));
    err = Math.max(err, Math.abs(numeric - Number(td[j])));
  }
  assert.ok(err <= tol * scale, `jvp: finite-difference error ${err} (scale ${scale})`);
}

/**
 * Second order: the gradient of x ↦ <∇_x <u, f(x)>, w> (grad of grad, reverse over reverse)
 * against central differences of the analytical first gradient.
 */
export function checkSecondOrder(f: (x: t.Tensor) => t.Tensor, x: t.Tensor, opts: { h?: number; tol?: number } = {}): void {
  const h = opts.h ?? 1e-5, tol = opts.tol ?? 1e-6;
  const u = rand64([...t.noGrad(() => f(x)).shape], 11, true);
  const w = rand64([...x.shape], 12, true);
  const firstGrad = (z: t.Tensor): t.Tensor => t.grad((a: t.Tensor) => f(a).mul(u).sum())(z) as t.Tensor;
  const scalarOfGrad = (z: t.Tensor): t.Tensor => firstGrad(z).mul(w).sum();
  const analytic = (t.grad(scalarOfGrad)(x) as t.Tensor).data();
  let scale = 1, err = 0;
  for (let j = 0; j < x.size; j++) {
    const e = new Float64Array(x.size); e[j] = h;
    const plus = scalarOfGrad(perturbed([x], 0, e)[0]!).item();
    e[j] = -h;
    const numeric = (plus - scalarOfGrad(perturbed([x], 0, e)[0]!).item()) / (2 * h);
    scale = Math.max(scale, Math.abs(numeric));
    err = Math.max(err, Math.abs(numeric - Number(analytic[j])));
  }
  assert.ok(err <= tol * scale, `second derivative: finite-difference error ${err} (scale ${scale})`);
}
