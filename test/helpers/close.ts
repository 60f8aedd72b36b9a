// Numerical comparisons for tests, with the tolerances stated at the call site.
import assert from 'node:assert/strict';
import type { Tensor, NestedArray } from '../../src/index.js';

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

function flatten(x: NestedArray | Tensor | ArrayLike<number>): number[] {
  if (typeof x === 'number') return [x];
  if (typeof x === 'boolean') return [x ? 1 : 0];
  if (typeof (x as Tensor).data === 'function' && 'strides' in (x as object)) return Array.from((x as Tensor).data());
  if (Array.isArray(x)) return (x as NestedArray[]).flatMap((v) => flatten(v));
  return Array.from(x as ArrayLike<number>);
}

/**
 * Elementwise |a - e| <= atol + rtol * |e| (NaNs must match, infinities must be equal).
 * Defaults: rtol 1e-10, atol 1e-12 (float64 work).
 */
export function assertClose(actual: Tensor | NestedArray | ArrayLike<number>, expected: Tensor | NestedArray | ArrayLike<number>, tol: Tolerance = {}, what = 'values'): void {
  const a = flatten(actual), e = flatten(expected);
  const rtol = tol.rtol ?? 1e-10, atol = tol.atol ?? 1e-12;
  assert.equal(a.length, e.length, `${what}: ${a.length} elements, expected ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = e[i]!;
    if (Number.isNaN(y)) { assert.ok(Number.isNaN(x), `${what}[${i}]: got ${x}, expected NaN`); continue; }
    if (!Number.isFinite(y)) { assert.equal(x, y, `${what}[${i}]: got ${x}, expected ${y}`); continue; }
    assert.ok(Math.abs(x - y) <= atol + rtol * Math.abs(y), `${what}[${i}]: got ${x}, expected ${y} (rtol ${rtol}, atol ${atol})`);
  }
}

/**
 * The float32 criterion: after dividing both by the magnitude of the expected values
 * (max |e|, at least 1), elementwise |a - e| <= atol + rtol * |e|.
 */
export function assertCloseNormalized(actual: Tensor | NestedArray | ArrayLike<number>, expected: Tensor | NestedArray | ArrayLike<number>, tol: Tolerance, what = 'values'): void {
  const a = flatten(actual), e = flatten(expected);
  const scale = Math.max(1, ...e.filter(Number.isFinite).map(Math.abs));
  assertClose(a.map((v) => v / scale), e.map((v) => v / scale), tol, what);
}

/** Asserts fn throws a TesseraError whose message contains every fragment. */
export function assertThrowsWith(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
    assert.equal(e.name, 'TesseraError', `expected a TesseraError, got ${e.name}: ${e.message}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message "${e.message}" should mention "${f}"`);
    return true;
  });
}
