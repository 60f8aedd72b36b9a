// Pooling over sliding windows (see window.ts): maxPool (gradient to the first maximum of each
// window, as PyTorch does), avgPool (with count_include_pad either way) and adaptiveAvgPool.
// ceil_mode is not supported: output sizes are floor((L + 2p − dilation·(k−1) − 1)/stride) + 1.
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { bind } from '../dispatch.js';
import { fromValues, ones } from '../creation.js';
import { div } from '../elementwise.js';
import { argmax, mean, sum } from '../reduce.js';
import { matmul } from '../linalg.js';
import { reshape, unsqueeze, squeeze, transpose } from '../shape.js';
import { outputSpatialShape, slidingWindows, spatialTuple, type SpatialArg, type WindowGeometry } from './window.js';

export interface MaxPoolOptions {
  /** Defaults to the kernel size. */
  stride?: SpatialArg;
  /** Implicit -infinity padding on both sides; at most half the kernel (as in PyTorch). */
  padding?: SpatialArg;
  dilation?: SpatialArg;
}

export interface AvgPoolOptions {
  /** Defaults to the kernel size. */
  stride?: SpatialArg;
  /** Implicit zero padding on both sides; at most half the kernel (as in PyTorch). */
  padding?: SpatialArg;
  /** Count padded zeros in the divisor (default true, like PyTorch). */
  countIncludePad?: boolean;
}

/** [N, C, *spatial] or unbatched [C, *spatial] → the batched tensor and whether to squeeze afterwards. */
function batchedInput(op: string, x: Tensor, dims: number): [Tensor, boolean] {
  check(x.rank === dims + 2 || x.rank === dims + 1, op, () =>
    `input must be [N, C, ${['L', 'H, W', 'D, H, W'][dims - 1]}] or unbatched [C, ...] with ${dims} spatial axes, got shape ${fmtShape(x.shape)}.`);
  check(isFloating(x.dtype), op, () => `needs a floating input, got ${x.dtype}; cast it with .float().`);
  return x.rank === dims + 1 ? [unsqueeze(x, 0), true] : [x, false];
}

function poolGeometry(op: string, dims: number, kernelSize: SpatialArg, stride: SpatialArg | undefined, padding: SpatialArg, dilation: SpatialArg): WindowGeometry {
  const kernel = spatialTuple(op, 'kernelSize', kernelSize, dims, 1);
  const pad = spatialTuple(op, 'padding', padding, dims, 0);
  pad.forEach((p, i) => check(2 * p <= kernel[i]!, op, () => `padding ${p} on spatial axis ${i} must be at most half the kernel size ${kernel[i]}.`));
  return {
    kernel,
    stride: spatialTuple(op, 'stride', stride ?? kernel, dims, 1),
    dilation: spatialTuple(op, 'dilation', dilation, dims, 1),
    pads: pad.map((p) => [p, p]),
  };
}

/**
 * Max pooling over N spatial axes. The gradient goes to the first maximal element of each window
 * (argmax over the flattened window, then gather), matching PyTorch rather than splitting ties.
 */
export function maxPoolNd(op: string, dims: number, input: Tensor, kernelSize: SpatialArg, opts: MaxPoolOptions = {}): Tensor {
  const [x, squeezeBatch] = batchedInput(op, input, dims);
  const g = poolGeometry(op, dims, kernelSize, opts.stride, opts.padding ?? 0, opts.dilation ?? 1);
  const outSpatial = outputSpatialShape(op, x.shape.slice(2), g);
  const windowSize = g.kernel.reduce((a, b) => a * b, 1);
  // [N, C, *out, *k] → [N, C, *out, K]; the argmax index is data-independent of autodiff, the gather carries the gradient.
  const flat = reshape(slidingWindows(x, g, -Infinity), [...x.shape.slice(0, 2), ...outSpatial, windowSize]);
  const index = argmax(flat, -1, true);
  const out = squeeze(bind('gather', [flat, index], { axis: flat.rank - 1 }), -1);
  return squeezeBatch ? squeeze(out, 0) : out;
}

/** Average pooling over N spatial axes (ceil_mode=false). */
export function avgPoolNd(op: string, dims: number, input: Tensor, kernelSize: SpatialArg, opts: AvgPoolOptions = {}): Tensor {
  const [x, squeezeBatch] = batchedInput(op, input, dims);
  const g = poolGeometry(op, dims, kernelSize, opts.stride, opts.padding ?? 0, 1);
  outputSpatialShape(op, x.shape.slice(2), g);
  const windowAxes = g.kernel.map((_, i) => x.rank + i);
  let out: Tensor;
  if (opts.countIncludePad ?? true) {
    out = mean(slidingWindows(x, g, 0), windowAxes);
  } else {
    // Divide by the number of real (unpadded) elements in each window: the window sums of a ones tensor.
    const unit = ones([1, 1, ...x.shape.slice(2)], { dtype: x.dtype, backend: x.backend });
    const counts = sum(slidingWindows(unit, g, 0), windowAxes);
    out = div(sum(slidingWindows(x, g, 0), windowAxes), counts);
  }
  return squeezeBatch ? squeeze(out, 0) : out;
}

export const maxPool1d = (x: Tensor, kernelSize: SpatialArg, opts: MaxPoolOptions = {}): Tensor => maxPoolNd('maxPool1d', 1, x, kernelSize, opts);
export const maxPool2d = (x: Tensor, kernelSize: SpatialArg, opts: MaxPoolOptions = {}): Tensor => maxPoolNd('maxPool2d', 2, x, kernelSize, opts);
export const maxPool3d = (x: Tensor, kernelSize: SpatialArg, opts: MaxPoolOptions = {}): Tensor => maxPoolNd('maxPool3d', 3, x, kernelSize, opts);
export const avgPool1d = (x: Tensor, kernelSize: SpatialArg, opts: AvgPoolOptions = {}): Tensor => avgPoolNd('avgPool1d', 1, x, kernelSize, opts);
export const avgPool2d = (x: Tensor, kernelSize: SpatialArg, opts: AvgPoolOptions = {}): Tensor => avgPoolNd('avgPool2d', 2, x, kernelSize, opts);
export const avgPool3d = (x: Tensor, kernelSize: SpatialArg, opts: AvgPoolOptions = {}): Tensor => avgPoolNd('avgPool3d', 3, x, kernelSize, opts);

/**
 * The [outSize, inSize] matrix that averages PyTorch's adaptive windows:
 * output i covers [floor(i·in/out), ceil((i+1)·in/out)).
 */
function adaptiveAveragingMatrix(inSize: number, outSize: number, x: Tensor): Tensor {
  const values = new Float64Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const start = Math.floor((i * inSize) / outSize);
    const end = Math.ceil(((i + 1) * inSize) / outSize);
    for (let j = start; j < end; j++) values[i * inSize + j] = 1 / (end - start);
  }
  const m = fromValues(values, [outSize, inSize], 'float64', { backend: x.backend });
  return x.dtype === 'float64' ? m : bind('cast', [m], { dtype: x.dtype });
}

/**
 * Adaptive average pooling to a fixed output size per spatial axis (null keeps an axis). Windows may
 * overlap and differ in size, so each axis is reduced by a product with a constant averaging matrix.
 */
export function adaptiveAvgPoolNd(op: string, dims: number, input: Tensor, outputSize: number | readonly (number | null)[]): Tensor {
  const [x, squeezeBatch] = batchedInput(op, input, dims);
  const spatial = x.shape.slice(2);
  const sizes = typeof outputSize === 'number' ? new Array<number>(dims).fill(outputSize) : outputSize.map((s, i) => s ?? spatial[i]!);
  check(sizes.length === dims && sizes.every((s) => Number.isInteger(s) && s >= 1), op, () =>
    `outputSize needs ${dims} positive integer(s) (or null to keep an axis), got ${JSON.stringify(outputSize)}.`);
  let out = x;
  for (let i = 0; i < dims; i++) {
    if (sizes[i] === spatial[i]) continue;
    check(spatial[i]! >= 1, op, () => `spatial axis ${i} of the input ${fmtShape(x.shape)} is empty.`);
    // Move axis i last, multiply by the averaging matrix's transpose, move it back.
    const axis = 2 + i;
    const moved = transpose(out, axis, -1);
    const pooled = matmul(moved, transpose(adaptiveAveragingMatrix(spatial[i]!, sizes[i]!, x), 0, 1));
    out = transpose(pooled, axis, -1);
  }
  return squeezeBatch ? squeeze(out, 0) : out;
}

export const adaptiveAvgPool1d = (x: Tensor, outputSize: number | readonly (number | null)[]): Tensor => adaptiveAvgPoolNd('adaptiveAvgPool1d', 1, x, outputSize);
export const adaptiveAvgPool2d = (x: Tensor, outputSize: number | readonly (number | null)[]): Tensor => adaptiveAvgPoolNd('adaptiveAvgPool2d', 2, x, outputSize);
export const adaptiveAvgPool3d = (x: Tensor, outputSize: number | readonly (number | null)[]): Tensor => adaptiveAvgPoolNd('adaptiveAvgPool3d', 3, x, outputSize);
