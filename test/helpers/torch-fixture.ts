// Runs a case recorded by scripts/fixtures/torch_cases.py (a PyTorch op applied to fixed inputs:
// its outputs, and the gradients of sum_k <output_k, cotangent_k>) against the tessera op of the
// same name, on the current backend. Where PyTorch raised, tessera must raise a TesseraError.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as t from '../../src/index.js';
import type { Tensor, DType } from '../../src/index.js';
import { assertCloseNormalized } from './close.js';
import { runsFloat64Checks } from './backends.js';

export type Num = number | 'nan' | 'inf' | '-inf';
export interface Encoded { dtype: DType; shape: number[]; data: Num[] }
export interface Case {
  name: string;
  inputs: (Encoded & { requiresGrad: boolean })[];
  outputs?: Encoded[];
  cotangents?: Encoded[];
  grads?: (Encoded | null)[];
  error?: string;
}


export interface Fixture { torch: string; generator: string; cases: Case[] }

/**
 * The cases to run on `backend`: all of them, but the float64 ones only where runsFloat64Checks
 * (webgpu computes float64 on the cpu kernels, which the cpu backend's run already checks; the
 * core suite test/ops/torch-reference.test.ts still runs them there, for that fallback's sake).
 */
export function casesFor(fixture: Fixture, backend: string): Case[] {
  return runsFloat64Checks(backend) ? fixture.cases : fixture.cases.filter((c) => !c.name.endsWith('@float64'));
}

/** A fixture file under test/fixtures/torch/. */
export function readTorchFixture(name: string): Fixture {
  return JSON.parse(readFileSync(new URL(`../fixtures/torch/${name}`, import.meta.url), 'utf8')) as Fixture;
}

const num = (v: Num): number => (v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v);
export function decode(e: Encoded, requiresGrad = false): Tensor {
  const x = t.tensor(Float64Array.from(e.data, num), { dtype: e.dtype, shape: e.shape });
  return requiresGrad ? x.requiresGrad_() : x;
}


/** The tessera side of a case: inputs in, one tensor or a list out. */
export type Op = (...xs: Tensor[]) => Tensor | Tensor[];

/** float32 cases use the normalised tolerance; float64 and exact cases 1e-10; half formats one ulp. */
function tolerance(name: string): { rtol: number; atol: number } {
  // Half formats: one unit in the last place (PyTorch may round a float32 intermediate where we
  // round the exact value, so a tie can land one ulp apart).
  if (name.endsWith('@float16')) return { rtol: 2 ** -10, atol: 2 ** -14 };
  if (name.endsWith('@bfloat16')) return { rtol: 2 ** -7, atol: 2 ** -14 };
  return name.endsWith('@float32') ? { rtol: 1e-4, atol: 1e-5 } : { rtol: 1e-10, atol: 1e-10 };
}

function compareTensor(actual: Tensor, expected: Encoded, what: string, tol: { rtol: number; atol: number }): void {
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.deepEqual([...actual.shape], expected.shape, `${what}: shape`);
  assertCloseNormalized(actual, expected.data.map(num), tol, what);
}

/** Runs case `c` with `opOf(name)` (the name before '@dtype'). */
export function runCase(c: Case, opOf: (key: string) => Op | undefined): void {
  const key = c.name.split('@')[0]!;
  const op = opOf(key);
  assert.ok(op !== undefined, `no tessera op registered for fixture case '${key}'`);
  const inputs = c.inputs.map((e) => decode(e, e.requiresGrad));
  if (c.error !== undefined) {
    // Raised at the op, or (an index checked by a GPU kernel, on webgpu) at the first read of its result.
    assert.throws(() => {
      const result = op(...inputs);
      for (const o of result instanceof t.Tensor ? [result] : result) o.data();
    }, (e: unknown) => e instanceof Error && e.name === 'TesseraError',
      `PyTorch raises "${c.error}"; tessera should raise a TesseraError`);
    return;
  }
  const out = op(...inputs);
  const outs = out instanceof t.Tensor ? [out] : out;
  const tol = tolerance(c.name);
  assert.equal(outs.length, c.outputs!.length, 'number of outputs');
  outs.forEach((o, k) => compareTensor(o, c.outputs![k]!, `${c.name} output ${k}`, tol));
  if (c.grads === undefined) return;
  const diffOuts = outs.filter((o) => o.requiresGrad);
  assert.equal(diffOuts.length, c.cotangents!.length, 'number of differentiable outputs');
  let loss: Tensor | undefined;
  diffOuts.forEach((o, k) => {
    const term = o.mul(decode(c.cotangents![k]!)).sum();
    loss = loss === undefined ? term : loss.add(term);
  });
  const leaves = inputs.filter((x) => x.requiresGrad);
  const grads = t.gradientsOf(loss!, leaves);
  let li = 0;
  c.grads.forEach((g, i) => {
    if (g === null) return;
    const got = grads[li++] ?? t.zerosLike(inputs[i]!);
    compareTensor(got, g, `${c.name} gradient of input ${i}`, tol);
  });
}

