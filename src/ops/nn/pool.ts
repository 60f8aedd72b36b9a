// Pooling over sliding windows (see window.ts): maxPool (gradient to the first maximum of each
// window, as PyTorch does), avgPool (count_include_pad either way) and adaptiveAvgPool.
// Output sizes are floor((L + 2p − dilation·(k−1) − 1)/stride) + 1, or with ceilMode the ceiling,
// dropping a last window that would start in the right padding (PyTorch's rule); the extra windows
// read an implicit extra padding on the right that never counts in an average.
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { bind } from '../dispatch.js';
import { fromValues, ones } from '../creation.js';
import { div } from '../elementwise.js';
import { mean, sum } from '../reduce.js';
import { matmul } from '../linalg.js';
import { convNd } from './conv.js';
import { reshape, unsqueeze, squeeze, transpose } from '../shape.js';
import { outputSpatialShape, padSpatial, slidingWindows, spatialTuple, type SpatialArg, type WindowGeometry } from './window.js';

export interface MaxPoolOptions {
  /** Defaults to the kernel size. */
  stride?: SpatialArg;
  /** Implicit -infinity padding on both sides; at most half the kernel (as in PyTorch). */
  padding?: SpatialArg;
  dilation?: SpatialArg;
  /** Round the output size up (default false). */
  ceilMode?: boolean;
}

export interface AvgPoolOptions {
  /** Defaults to the kernel size. */
  stride?: SpatialArg;
  /** Implicit zero padding on both sides; at most half the kernel (as in PyTorch). */
  padding?: SpatialArg;
  /** Count padded zeros in the divisor (default true, like PyTorch). */
  countIncludePad?: boolean;
  /** Round the output size up (default false). */
  ceilMode?: boolean;
}

/** [N, C, *spatial] or unbatched [C, *spatial] → the batched tensor and whether to squeeze afterwards. */
function batchedInput(op: string, x: Tensor, dims: number): [Tensor, boolean] {
  check(x.rank === dims + 2 || x.rank === dims + 1, op, () =>
    `input must be [N, C, ${['L', 'H, W', 'D, H, W'][dims - 1]}] or unbatched [C, ...] with ${dims} spatial axes, got shape ${fmtShape(x.shape)}.`);
  check(isFloating(x.dtype), op, () => `needs a floating input, got ${x.dtype}; cast it with .float().`);
  return x.rank === dims + 1 ? [unsqueeze(x, 0), true] : [x, false];
}

/**
 * The window geometry of a pooling op: `pads` holds the user's padding, and with ceilMode an extra
 * right padding so that the ceil-mode windows exist; `padding` is the user's padding alone.
 */
function poolGeometry(
  op: string, dims: number, spatial: readonly number[], kernelSize: SpatialArg, stride: SpatialArg | undefined,
  padding: SpatialArg, dilation: SpatialArg, ceilMode: boolean,
): WindowGeometry & { padding: number[] } {
  const kernel = spatialTuple(op, 'kernelSize', kernelSize, dims, 1);
  const pad = spatialTuple(op, 'padding', padding, dims, 0);
  pad.forEach((p, i) => check(2 * p <= kernel[i]!, op, () => `padding ${p} on spatial axis ${i} must be at most half the kernel size ${kernel[i]}.`));
  const g = {
    kernel,
    stride: spatialTuple(op, 'stride', stride ?? kernel, dims, 1),
    dilation: spatialTuple(op, 'dilation', dilation, dims, 1),
    pads: pad.map((p): [number, number] => [p, p]),
    padding: pad,
  };
  const floorSizes = outputSpatialShape(op, spatial, g);
  if (!ceilMode) return g;
  g.pads = spatial.map((n, i) => {
    const [p, s, span] = [pad[i]!, g.stride[i]!, g.dilation[i]! * (kernel[i]! - 1) + 1];
    let out = Math.ceil((n + 2 * p - span) / s) + 1;
    if ((out - 1) * s >= n + p) out--; // the last window must start inside the input or the left padding
    out = Math.max(out, floorSizes[i]!);
    return [p, p + Math.max(0, (out - 1) * s + span - (n + 2 * p))];
  });
  return g;
}

/**
 * Max pooling over N spatial axes. The gradient goes to the first maximal element of each window,
 * matching PyTorch rather than splitting ties: `maxPoolIndices` finds each window's first maximum
 * (one pass over the input) as a flat spatial index, and a gather along the flattened spatial axis
 * picks the values and carries the gradient (a scatter-add into the input's shape).
 */
export function maxPoolNd(op: string, dims: number, input: Tensor, kernelSize: SpatialArg, opts: MaxPoolOptions = {}): Tensor {
  const [x, squeezeBatch] = batchedInput(op, input, dims);
  const g = poolGeometry(op, dims, x.shape.slice(2), kernelSize, opts.stride, opts.padding ?? 0, opts.dilation ?? 1, opts.ceilMode ?? false);
  const outSpatial = outputSpatialShape(op, x.shape.slice(2), g);
  // -inf padding (the user's and ceil mode's) is never a window's maximum unless the window holds nothing else.
  const padded = padSpatial(x, g.pads, -Infinity);
  const index = bind('maxPoolIndices', [padded], { kernel: g.kernel, stride: g.stride, dilation: g.dilation });
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const flat = reshape(padded, [n, c, -1]);
  const picked = bind('gather', [flat, reshape(index, [n, c, -1])], { axis: 2 });
  const out = reshape(picked, [n, c, ...outSpatial]);
  return squeezeBatch ? squeeze(out, 0) : out;
}

/**
 * The sum of each pooling window of a floating x [N, C, *spatial] (`g.pads` read as zeros): a
 * convolution of every channel with a kernel of ones. The conv kernels are tiled and threaded,
 * where a reduction over the strided windows view ran ~100× slower on wasm (572 ms against 5.9 ms
 * for avgPool2d of [8, 64, 56, 56], 3×3, stride 2).
 */
export function windowSums(x: Tensor, g: WindowGeometry): Tensor {
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const padded = padSpatial(x, g.pads, 0);
  const channels = reshape(padded, [n * c, 1, ...padded.shape.slice(2)]);
  const kernel = ones([1, 1, ...g.kernel], { dtype: x.dtype, backend: x.backend });
  const sums = convNd('avgPool', g.kernel.length, channels, kernel, { stride: g.stride, dilation: g.dilation });
  return reshape(sums, [n, c, ...sums.shape.slice(2)]);
}

/**
 * The average of each pooling window of a floating x [N, C, *spatial]. `g.pads` are the zeros the
 * windows read ([before, after] per axis, ceil mode's extra included); `countedPads`, within them,
 * are those that count in the divisor (count_include_pad: the user's padding; else none). Where
 * every window counts its whole kernel the divisor is the kernel size; elsewhere it is the window
 * sums of a mask that is one over the input and the counted pads.
 */
export function windowAverage(x: Tensor, g: WindowGeometry, countedPads: readonly [number, number][]): Tensor {
  const sums = windowSums(x, g);
  if (countedPads.every(([before, after], i) => before === g.pads[i]![0] && after === g.pads[i]![1])) {
    return div(sums, g.kernel.reduce((a, k) => a * k, 1));
  }
  const unit = ones([1, 1, ...x.shape.slice(2)], { dtype: x.dtype, backend: x.backend });
  const rest = g.pads.map(([before, after], i): [number, number] => [before - countedPads[i]![0], after - countedPads[i]![1]]);
  const mask = padSpatial(padSpatial(unit, countedPads, 1), rest, 0);
  return div(sums, windowSums(mask, { ...g, pads: g.pads.map((): [number, number] => [0, 0]) }));
}

/** Average pooling over N spatial axes. */
export function avgPoolNd(op: string, dims: number, input: Tensor, kernelSize: SpatialArg, opts: AvgPoolOptions = {}): Tensor {
  const [x, squeezeBatch] = batchedInput(op, input, dims);
  const spatial = x.shape.slice(2);
  const g = poolGeometry(op, dims, spatial, kernelSize, opts.stride, opts.padding ?? 0, 1, opts.ceilMode ?? false);
  const windowAxes = g.kernel.map((_, i) => x.rank + i);
  const includePad = opts.countIncludePad ?? true;
  const ceilExtra = g.pads.some(([before, after]) => after !== before);
  let out: Tensor;
  if (isFloating(x.dtype)) {
    out = windowAverage(x, g, g.padding.map((p): [number, number] => (includePad ? [p, p] : [0, 0])));
  } else if (includePad && !ceilExtra) {
    out = mean(slidingWindows(x, g, 0), windowAxes);
  } else {
    // Divide each window's sum by how many of its elements count: the window sums of a mask that is
    // one over the input (and over the user's padding when it counts) and zero elsewhere.
    const unit = ones([1, 1, ...spatial], { dtype: x.dtype, backend: x.backend });
    const counted = padSpatial(unit, g.padding.map((p): [number, number] => [p, p]), includePad ? 1 : 0);
    const extra = g.pads.map(([before, after]): [number, number] => [0, after - before]);
    const mask = padSpatial(counted, extra, 0);
    const counts = sum(slidingWindows(mask, { ...g, pads: g.pads.map((): [number, number] => [0, 0]) }, 0), windowAxes);
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
