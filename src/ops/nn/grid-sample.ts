// Sampling an image at arbitrary points (torch.nn.functional.grid_sample) and the grids of affine
// maps (affine_grid): the two halves of a spatial transformer (Jaderberg et al. 2015), also used
// to warp images by optical flow.
//
// gridSample(x [N, C, H, W], grid [N, Ho, Wo, 2]) reads x at the points grid[n, i, j] = (x, y) in
// [−1, 1] (−1 the left/top edge, 1 the right/bottom; with alignCorners the centres of the corner
// pixels, else their outer edges), as PyTorch's grid_sampler_2d:
//   ix = ((x + 1)/2)(W − 1) (alignCorners) or ((x + 1)W − 1)/2, likewise iy;
//   padding 'border' clamps ix into [0, W − 1]; 'reflection' reflects it about the edges (the
//   pixel centres with alignCorners, the outer edges without) and then clamps;
//   bilinear: the four pixels around (ix, iy), weighted by the opposite rectangles' areas;
//   nearest: the pixel at (round-half-even ix, iy);
//   a pixel outside the image reads 0 (every padding mode: with border and reflection only a
//   weight-0 neighbour can fall outside).
// A composite: the pixels are a gather over the flattened H·W axis, the weights elementwise
// functions of the grid, so x's gradient is a scatter-add and the grid's flows through the
// weights with the corner indices held fixed, as in PyTorch's backward.
import type { Tensor } from '../../core/tensor.js';
import { check, fmtShape } from '../../core/errors.js';
import { isFloating } from '../../core/dtype.js';
import { linspace, ones } from '../creation.js';
import { abs, add, cast, clamp, div, floor, ge, le, logicalAnd, mul, remainder, round, sub, where, eq } from '../elementwise.js';
import { detach, expand, narrow, reshape, transpose } from '../shape.js';
import { gather } from '../indexing.js';
import { stack } from '../combine.js';
import { matmul } from '../linalg.js';

export type GridSampleMode = 'bilinear' | 'nearest';
export type GridSamplePadding = 'zeros' | 'border' | 'reflection';

export interface GridSampleOptions {
  /** Default 'bilinear'. */
  mode?: GridSampleMode;
  /** What a point outside the image reads (default 'zeros'). */
  paddingMode?: GridSamplePadding;
  /** −1 and 1 are the corner pixels' centres (true) or their outer edges (false, the default). */
  alignCorners?: boolean;
}

/** Samples x [N, C, H, W] at grid [N, Ho, Wo, 2] → [N, C, Ho, Wo] (torch.nn.functional.grid_sample). */
export function gridSample(x: Tensor, grid: Tensor, options: GridSampleOptions = {}): Tensor {
  const mode = options.mode ?? 'bilinear', padding = options.paddingMode ?? 'zeros', align = options.alignCorners ?? false;
  const op = 'gridSample';
  check(x.rank === 4, op, () => `expects an input of shape [N, C, H, W], got ${fmtShape(x.shape)} (only 2-D sampling is implemented).`);
  check(grid.rank === 4 && grid.shape[3] === 2 && grid.shape[0] === x.shape[0], op, () =>
    `expects a grid of shape [N, Ho, Wo, 2] with N = ${x.shape[0]} (the input's), got ${fmtShape(grid.shape)}.`);
  check(isFloating(x.dtype) && grid.dtype === x.dtype, op, () => `input and grid must have one floating dtype, got ${x.dtype} and ${grid.dtype}.`);
  check(mode === 'bilinear' || mode === 'nearest', op, () => `mode must be 'bilinear' or 'nearest', got '${String(mode)}'.`);
  check(padding === 'zeros' || padding === 'border' || padding === 'reflection', op, () =>
    `paddingMode must be 'zeros', 'border' or 'reflection', got '${String(padding)}'.`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [, Ho, Wo] = grid.shape as [number, number, number, number];
  const coordinate = (axis: number, size: number): Tensor => {
    const g = reshape(narrow(grid, 3, axis, 1), [N, Ho * Wo]);
    return sourceCoordinate(unnormalize(g, size, align), size, padding, align);
  };
  const ix = coordinate(0, W), iy = coordinate(1, H);
  const flat = reshape(x, [N, C, H * W]);
  /** x at integral positions (px, py) [N, Ho·Wo] (float), 0 outside the image, times `weight`. */
  const tap = (px: Tensor, py: Tensor, weight: Tensor | undefined): Tensor => {
    const inside = logicalAnd(logicalAnd(ge(px, 0), le(px, W - 1)), logicalAnd(ge(py, 0), le(py, H - 1)));
    const index = cast(add(mul(clamp(py, 0, H - 1), W), clamp(px, 0, W - 1)), 'int32');
    const values = gather(flat, 2, expand(reshape(index, [N, 1, Ho * Wo]), [N, C, Ho * Wo]));
    const w = weight === undefined ? cast(inside, x.dtype) : where(inside, weight, 0);
    return mul(values, reshape(w, [N, 1, Ho * Wo]));
  };
  let out: Tensor;
  if (mode === 'nearest') {
    out = tap(detach(round(ix)), detach(round(iy)), undefined);
  } else {
    const x0 = detach(floor(ix)), y0 = detach(floor(iy));
    const x1 = add(x0, 1), y1 = add(y0, 1);
    const east = sub(ix, x0), west = sub(x1, ix), south = sub(iy, y0), north = sub(y1, iy);
    out = add(add(tap(x0, y0, mul(west, north)), tap(x1, y0, mul(east, north))),
      add(tap(x0, y1, mul(west, south)), tap(x1, y1, mul(east, south))));
  }
  return reshape(out, [N, C, Ho, Wo]);
}

/** Grid coordinate in [−1, 1] → pixel coordinate (grid_sampler_unnormalize). */
function unnormalize(g: Tensor, size: number, alignCorners: boolean): Tensor {
  return alignCorners ? mul(div(add(g, 1), 2), size - 1) : div(sub(mul(add(g, 1), size), 1), 2);
}

/** The padding mode's pixel coordinate (grid_sampler_compute_source_index). */
function sourceCoordinate(c: Tensor, size: number, padding: GridSamplePadding, alignCorners: boolean): Tensor {
  if (padding === 'zeros') return c;
  if (padding === 'reflection') {
    c = alignCorners ? reflect(c, 0, 2 * (size - 1)) : reflect(c, -1, 2 * size - 1);
  }
  return clamp(c, 0, size - 1);
}

/** Reflects c about twiceLow/2 and twiceHigh/2 until it lies between them (reflect_coordinates). */
function reflect(c: Tensor, twiceLow: number, twiceHigh: number): Tensor {
  if (twiceLow === twiceHigh) return mul(c, 0);
  const low = twiceLow / 2, span = (twiceHigh - twiceLow) / 2;
  const d = abs(sub(c, low));
  // extra = fmod(d, span) with the whole spans held fixed: its derivative is d's.
  const flips = detach(floor(div(d, span)));
  const extra = sub(d, mul(flips, span));
  const even = eq(remainder(flips, 2), 0);
  return where(even, add(extra, low), sub(span + low, extra));
}

/**
 * The sampling grid [N, H, W, 2] of the affine maps theta [N, 2, 3] for an output of `size`
 * [N, C, H, W] (torch.nn.functional.affine_grid): each output pixel's normalized (x, y, 1) times θᵀ.
 */
export function affineGrid(theta: Tensor, size: readonly number[], options: { alignCorners?: boolean } = {}): Tensor {
  const op = 'affineGrid';
  check(size.length === 4, op, () => `size must be [N, C, H, W] (only 2-D grids are implemented), got [${size.join(', ')}].`);
  const [N, , H, W] = size as [number, number, number, number];
  check(theta.rank === 3 && theta.shape[0] === N && theta.shape[1] === 2 && theta.shape[2] === 3, op, () =>
    `expects theta of shape [N, 2, 3] with N = ${N}, got ${fmtShape(theta.shape)}.`);
  check(isFloating(theta.dtype), op, () => `theta must be floating point, got ${theta.dtype}.`);
  const align = options.alignCorners ?? false;
  const opts = { dtype: theta.dtype, backend: theta.backend };
  const steps = (n: number): Tensor => {
    if (n <= 1) return mul(ones([n], opts), 0);
    const range = linspace(-1, 1, n, opts);
    return align ? range : div(mul(range, n - 1), n);
  };
  const xs = expand(reshape(steps(W), [1, W]), [H, W]), ys = expand(reshape(steps(H), [H, 1]), [H, W]);
  const base = reshape(stack([xs, ys, ones([H, W], opts)], -1), [1, H * W, 3]);
  return reshape(matmul(base, transpose(theta, 1, 2)), [N, H, W, 2]);
}
