// Shared by the layer tests: loads the PyTorch reference cases (fixtures/layers-reference.json) and
// checks a layer's output and gradients against one.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as t from '../../src/index.js';
import type { AnyModule } from '../../src/nn/module.js';

type Nested = number | boolean | Nested[];
export interface ReferenceCase {
  state: Record<string, Nested>;
  inputs: Nested[];
  inputShapes: number[][];
  output: Nested;
  probe: Nested;
  inputGrads: (Nested | null)[];
  paramGrads: Record<string, Nested>;
  stateAfter: Record<string, Nested>;
  keyPaddingMask?: boolean[][];
}

export const reference = JSON.parse(readFileSync(new URL('./fixtures/layers-reference.json', import.meta.url), 'utf8')) as Record<string, ReferenceCase>;

export function f64(x: Nested): t.Tensor {
  return t.tensor(x as t.NestedArray, { dtype: 'float64' });
}

export function assertClose(actual: t.Tensor, expected: Nested, what: string, tol = 1e-10): void {
  const e = f64(expected);
  assert.deepEqual(actual.shape, e.shape, `${what}: shape`);
  const a = actual.data(), b = e.data();
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol * (1 + Math.abs(b[i]!)), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

/** Loads the case's state into the layer, runs `forward` on its inputs, compares output and gradients. */
export function checkAgainstReference(name: string, layer: AnyModule, forward: (...xs: t.Tensor[]) => t.Tensor, tol = 1e-10): void {
  const c = reference[name]!;
  const sd = new Map<string, t.Tensor>();
  for (const [k, v] of Object.entries(c.state)) sd.set(k, k.endsWith('num_batches_tracked') ? t.tensor(v as number, { dtype: 'int32' }) : f64(v));
  layer.loadStateDict(sd);
  const xs = c.inputs.map((x) => f64(x).requiresGrad_());
  const out = forward(...xs);
  assertClose(out, c.output, `${name} output`, tol);
  out.mul(f64(c.probe)).sum().backward();
  xs.forEach((x, i) => { if (c.inputGrads[i] !== null) assertClose(x.grad!, c.inputGrads[i]!, `${name} input ${i} grad`, tol); });
  const params = new Map(layer.namedParameters());
  assert.deepEqual([...params.keys()].sort(), Object.keys(c.paramGrads).sort(), `${name}: parameter names`);
  for (const [k, g] of Object.entries(c.paramGrads)) assertClose(params.get(k)!.grad!, g, `${name} grad of ${k}`, tol);
  const after = layer.stateDict();
  for (const [k, v] of Object.entries(c.stateAfter)) {
    if (k.endsWith('num_batches_tracked')) assert.equal(after.get(k)!.item(), v, `${name} ${k}`);
    else assertClose(after.get(k)!, v, `${name} state ${k} after`, tol);
  }
}
