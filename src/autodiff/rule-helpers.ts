// Pieces shared by the vjp and jvp rules.
import type { Tensor } from '../core/tensor.js';
import { bind } from '../ops/dispatch.js';
import { div, eq, where, cast, mul, sub } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { reshape } from '../ops/shape.js';

/** `shape` with the reduced axes kept as size 1. */
export function keepdimShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Sums a broadcast gradient back to the shape of the tensor that was expanded (the adjoint of expand). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  const off = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < off || (shape[i - off] === 1 && g.shape[i] !== 1)) axes.push(i);
  if (axes.length === 0) return g;
  return reshape(bind('sum', [g], { axes, keepdim: true }), shape);
}

/**
 * d prod(x) / d x_i = product of the other elements, without dividing by zero, and written so that
 * its own derivative (the second derivative of prod) is exact too:
 * - no zero in the slice: prod / x_i;
 * - one zero z: the zero gets the product of the non-zero elements P, every other element gets
 *   z·P/x_i (0 in value, but carrying the derivative with respect to z);
 * - two zeros z1, z2: each zero gets P times the other zero (0 in value, derivative P); the rest 0;
 * - three or more zeros: every first and second derivative is 0.
 */
export function prodInputGradient(x: Tensor, outKeep: Tensor, axes: readonly number[]): Tensor {
  const keep = { axes: [...axes], keepdim: true };
  const isZero = eq(x, 0);
  const zeros = bind('sum', [cast(isZero, 'int32')], keep);
  const safe = where(isZero, 1, x);
  const nonzeroProd = bind('prod', [safe], keep);
  // The sum of the zero entries: 0 in value, but its derivative with respect to each zero is 1.
  const zeroSum = bind('sum', [where(isZero, x, 0)], keep);
  const noZero = div(outKeep, safe);
  const oneZero = where(isZero, nonzeroProd, div(mul(zeroSum, nonzeroProd), safe));
  const twoZeros = where(isZero, mul(nonzeroProd, sub(zeroSum, x)), 0);
  return where(eq(zeros, 0), noZero, where(eq(zeros, 1), oneZero, where(eq(zeros, 2), twoZeros, 0)));
}

/** 1/count at the positions equal to the max/min (ties share the gradient evenly, like torch.amax). */
export function extremumMask(x: Tensor, out: Tensor, { axes, keepdim }: { axes: number[]; keepdim: boolean }): Tensor {
  const outKeep = keepdim ? out : reshape(out, keepdimShape(x.shape, axes));
  const hits = cast(eq(x, outKeep), x.dtype);
  return div(hits, sum(hits, axes, true));
}

