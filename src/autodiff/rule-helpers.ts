// Pieces shared by the vjp and jvp rules.
import type { Tensor } from '../core/tensor.js';
import { bind } from '../ops/dispatch.js';
import { div, eq, where, cast } from '../ops/elementwise.js';
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
 * d prod(x) / d x_i = product of the other elements, computed without dividing by zero: with no
 * zero in the slice it is prod/x_i; with exactly one zero only that element gets the product of the
 * others; with two or more zeros every derivative is 0.
 */
export function prodInputGradient(x: Tensor, outKeep: Tensor, axes: readonly number[]): Tensor {
  const isZero = eq(x, 0);
  const zeros = bind('sum', [cast(isZero, 'int32')], { axes: [...axes], keepdim: true });
  const nonzeroProd = bind('prod', [where(isZero, 1, x)], { axes: [...axes], keepdim: true });
  const noZero = div(outKeep, where(isZero, 1, x));
  const oneZero = where(isZero, nonzeroProd, 0);
  return where(eq(zeros, 0), noZero, where(eq(zeros, 1), oneZero, 0));
}

/** 1/count at the positions equal to the max/min (ties share the gradient evenly, like torch.amax). */
export function extremumMask(x: Tensor, out: Tensor, { axes, keepdim }: { axes: number[]; keepdim: boolean }): Tensor {
  const outKeep = keepdim ? out : reshape(out, keepdimShape(x.shape, axes));
  const hits = cast(eq(x, outKeep), x.dtype);
  return div(hits, sum(hits, axes, true));
}

