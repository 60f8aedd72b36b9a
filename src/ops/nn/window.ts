// Sliding windows over the spatial axes of an [N, C, *spatial] tensor: the shared core of
// convolution, pooling and im2col. Windows are zero-copy `unfold` views of the padded input, so the
// backward pass is col2im (the `unfoldBackward` primitive) without any hand-written rule.
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { bind } from '../dispatch.js';
import { unfold, at, type SliceSpec } from '../shape.js';

/** A per-spatial-axis integer option: one number for every axis, or one per axis. */
export type SpatialArg = number | readonly number[];

/** Expands a SpatialArg to one value per spatial axis, checking it. */
export function spatialTuple(op: string, name: string, v: SpatialArg, dims: number, min: number): number[] {
  const out = typeof v === 'number' ? new Array<number>(dims).fill(v) : [...v];
  check(out.length === dims, op, () => `${name} needs ${dims} value(s) (one per spatial axis), got ${JSON.stringify(v)}.`);
  check(out.every((x) => Number.isInteger(x) && x >= min), op, () => `${name} must be integer(s) >= ${min}, got ${JSON.stringify(v)}.`);
  return out;
}

/** Geometry of a window sweep along each spatial axis. */
export interface WindowGeometry {
  kernel: number[];
  stride: number[];
  dilation: number[];
  /** Padding before and after each spatial axis. */
  pads: [number, number][];
}

/** Number of windows along an axis of `size` (after padding), as PyTorch computes it (floor mode). */
export function windowCount(size: number, kernel: number, stride: number, dilation: number): number {
  return Math.floor((size - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** The output spatial size of a window sweep, checking that at least one window fits. */
export function outputSpatialShape(op: string, spatial: readonly number[], g: WindowGeometry): number[] {
  return spatial.map((n, i) => {
    const padded = n + g.pads[i]![0] + g.pads[i]![1];
    const span = g.dilation[i]! * (g.kernel[i]! - 1) + 1;
    check(padded >= span, op, () =>
      `spatial axis ${i} has size ${n} (${padded} after padding), smaller than the kernel's span ${span} (kernel ${g.kernel[i]}, dilation ${g.dilation[i]}); use a smaller kernel or more padding.`);
    return windowCount(padded, g.kernel[i]!, g.stride[i]!, g.dilation[i]!);
  });
}

/** Constant padding of the spatial axes only (N and C untouched). */
export function padSpatial(x: Tensor, pads: readonly [number, number][], value: number): Tensor {
  if (pads.every(([a, b]) => a === 0 && b === 0)) return x;
  const lead = x.rank - pads.length;
  const all: [number, number][] = [...Array.from({ length: lead }, (): [number, number] => [0, 0]), ...pads.map(([a, b]): [number, number] => [a, b])];
  return bind('pad', [x], { pads: all, value });
}

/**
 * [N, C, *spatial] → [N, C, *out, *kernel]: every window (with stride and dilation) of the padded
 * input, as a view. The last `dims` axes index the position inside the window.
 */
export function slidingWindows(x: Tensor, g: WindowGeometry, padValue = 0): Tensor {
  const dims = g.kernel.length;
  const lead = x.rank - dims;
  let w = padSpatial(x, g.pads, padValue);
  for (let i = 0; i < dims; i++) {
    const span = g.dilation[i]! * (g.kernel[i]! - 1) + 1;
    w = unfold(w, lead + i, span, g.stride[i]!);
    if (g.dilation[i]! > 1) {
      // A dilated window is every dilation-th element of a dense window of the full span.
      const specs: SliceSpec[] = w.shape.map(() => null);
      specs[w.rank - 1] = [null, null, g.dilation[i]!];
      w = at(w, ...specs);
    }
  }
  return w;
}

/**
 * The adjoint of slidingWindows without padding: [N, C, *out, *kernel] windows summed back into
 * [N, C, *spatial] (col2im). `spatial` is the padded size each axis had; returns the padded tensor.
 */
export function foldWindows(cols: Tensor, spatial: readonly number[], g: WindowGeometry): Tensor {
  const dims = g.kernel.length;
  const lead = cols.rank - 2 * dims;
  check(lead >= 0, 'foldWindows', () => `windows of shape ${fmtShape(cols.shape)} do not have ${dims} spatial and ${dims} kernel axes.`);
  let w = cols;
  // Dilation: put the kernel taps back at every dilation-th position of the full span.
  if (g.dilation.some((d) => d > 1)) {
    const inputShape = [...w.shape];
    for (let i = 0; i < dims; i++) inputShape[lead + dims + i] = g.dilation[i]! * (g.kernel[i]! - 1) + 1;
    w = bind('sliceBackward', [w], { inputShape, starts: inputShape.map(() => 0), steps: [...w.shape.map(() => 1).slice(0, lead + dims), ...g.dilation] });
  }
  // Undo the unfolds in reverse order: the last unfold's window axis is the last axis.
  for (let i = dims - 1; i >= 0; i--) {
    const span = g.dilation[i]! * (g.kernel[i]! - 1) + 1;
    const inputShape = w.shape.slice(0, -1);
    inputShape[lead + i] = spatial[i]!;
    w = bind('unfoldBackward', [w], { inputShape, axis: lead + i, size: span, step: g.stride[i]! });
  }
  return w;
}
