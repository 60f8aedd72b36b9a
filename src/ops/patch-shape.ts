// Shape rules shared by the window primitives (im2col, col2im, maxPoolIndices): how many windows
// fit along each spatial axis of an [N, C, *spatial] tensor, checked with errors that name the op.
import { check, fmtShape } from '../core/errors.js';

/** Geometry of a sweep of windows over the spatial axes (one entry per axis). */
export interface WindowSweep {
  kernel: number[];
  stride: number[];
  dilation: number[];
}

/** Number of windows along an axis of `padded` size (PyTorch's floor rule). */
export function windowsAlong(padded: number, kernel: number, stride: number, dilation: number): number {
  return Math.floor((padded - dilation * (kernel - 1) - 1) / stride) + 1;
}

/**
 * Windows per spatial axis of an [N, C, *spatial] input, checking the attributes: one positive
 * kernel/stride/dilation (and a non-negative [before, after] pad pair, when given) per spatial
 * axis, and at least one window on every axis.
 */
export function sweepWindows(op: string, shape: readonly number[], g: WindowSweep, pads?: readonly (readonly [number, number])[]): number[] {
  const dims = g.kernel.length;
  check(dims >= 1 && shape.length === dims + 2, op, () =>
    `input must be [N, C, *spatial] with ${dims} spatial axes (one per kernel size), got shape ${fmtShape(shape)}.`);
  const positive = (xs: readonly number[]) => xs.length === dims && xs.every((x) => Number.isInteger(x) && x >= 1);
  check(positive(g.kernel) && positive(g.stride) && positive(g.dilation), op, () =>
    `kernel ${JSON.stringify(g.kernel)}, stride ${JSON.stringify(g.stride)} and dilation ${JSON.stringify(g.dilation)} need ${dims} positive integers each.`);
  check(pads === undefined || (pads.length === dims && pads.every(([a, b]) => Number.isInteger(a) && Number.isInteger(b) && a >= 0 && b >= 0)), op, () =>
    `pads ${JSON.stringify(pads)} need a non-negative [before, after] pair per spatial axis (${dims}).`);
  return shape.slice(2).map((n, i) => {
    const padded = n + (pads === undefined ? 0 : pads[i]![0] + pads[i]![1]);
    const span = g.dilation[i]! * (g.kernel[i]! - 1) + 1;
    check(padded >= span, op, () =>
      `spatial axis ${i} has size ${padded} (with padding), smaller than the window's span ${span} (kernel ${g.kernel[i]}, dilation ${g.dilation[i]}).`);
    return windowsAlong(padded, g.kernel[i]!, g.stride[i]!, g.dilation[i]!);
  });
}

/** The [groups, N·L, C/groups·K] shape of the patch matrix of an input of `shape`. */
export function patchMatrixShape(op: string, shape: readonly number[], g: WindowSweep & { pads: [number, number][]; groups: number }): number[] {
  const out = sweepWindows(op, shape, g, g.pads);
  const [n, c] = [shape[0]!, shape[1]!];
  check(Number.isInteger(g.groups) && g.groups >= 1 && c % g.groups === 0, op, () =>
    `groups=${g.groups} must be a positive integer dividing the ${c} channels of ${fmtShape(shape)}.`);
  const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
  return [g.groups, n * prod(out), (c / g.groups) * prod(g.kernel)];
}
