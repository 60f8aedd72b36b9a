// im2col and col2im as user-facing ops (torch.nn.functional.unfold / fold), generic over the number
// of spatial axes: the patch matrix [N, C·K, L] that convolution multiplies, and its adjoint. Both
// are views around the im2col/col2im primitives, whose matrix is [N·L, C·K] (rows per window).
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { bind } from '../dispatch.js';
import { reshape, permute } from '../shape.js';
import { outputSpatialShape, spatialTuple, type SpatialArg, type WindowGeometry } from './window.js';

export interface PatchOptions {
  dilation?: SpatialArg;
  padding?: SpatialArg;
  stride?: SpatialArg;
}

function geometry(op: string, dims: number, kernelSize: SpatialArg, opts: PatchOptions): WindowGeometry {
  return {
    kernel: spatialTuple(op, 'kernelSize', kernelSize, dims, 1),
    stride: spatialTuple(op, 'stride', opts.stride ?? 1, dims, 1),
    dilation: spatialTuple(op, 'dilation', opts.dilation ?? 1, dims, 1),
    pads: spatialTuple(op, 'padding', opts.padding ?? 0, dims, 0).map((p): [number, number] => [p, p]),
  };
}

/**
 * Extracts sliding patches: x [N, C, *spatial] → [N, C·prod(kernel), L] with L the number of
 * windows, channel-major then kernel positions (torch.nn.functional.unfold, any number of spatial axes).
 */
export function im2col(x: Tensor, kernelSize: SpatialArg, opts: PatchOptions = {}): Tensor {
  check(x.rank >= 3, 'im2col', () => `input must be [N, C, *spatial] with at least one spatial axis, got shape ${fmtShape(x.shape)}.`);
  const dims = x.rank - 2;
  const g = geometry('im2col', dims, kernelSize, opts);
  const out = outputSpatialShape('im2col', x.shape.slice(2), g);
  // The im2col primitive's [1, N·L, C·K] patch matrix, viewed as [N, C·K, L].
  const cols = bind('im2col', [x], { ...g, groups: 1 });
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const windows = out.reduce((a, b) => a * b, 1);
  return permute(reshape(cols, [n, windows, c * g.kernel.reduce((a, b) => a * b, 1)]), [0, 2, 1]);
}

/**
 * Sums patches [N, C·prod(kernel), L] back into [N, C, *outputSize] (torch.nn.functional.fold),
 * the adjoint of im2col with the same options.
 */
export function col2im(cols: Tensor, outputSize: SpatialArg, kernelSize: SpatialArg, opts: PatchOptions = {}): Tensor {
  check(cols.rank === 3, 'col2im', () => `input must be [N, C·prod(kernel), L], got shape ${fmtShape(cols.shape)}.`);
  const dims = typeof outputSize === 'number' ? (typeof kernelSize === 'number' ? 2 : kernelSize.length) : outputSize.length;
  const g = geometry('col2im', dims, kernelSize, opts);
  const size = spatialTuple('col2im', 'outputSize', outputSize, dims, 1);
  const out = outputSpatialShape('col2im', size, g);
  const kProd = g.kernel.reduce((a, b) => a * b, 1);
  const [n, ck, l] = [cols.shape[0]!, cols.shape[1]!, cols.shape[2]!];
  check(ck % kProd === 0, 'col2im', () => `dim 1 (${ck}) must be divisible by the kernel's size ${kProd} (kernel ${JSON.stringify(g.kernel)}).`);
  check(l === out.reduce((a, b) => a * b, 1), 'col2im', () =>
    `dim 2 (${l}) must equal the number of windows ${out.join('×')} = ${out.reduce((a, b) => a * b, 1)} for outputSize ${JSON.stringify(size)} and these options.`);
  const c = ck / kProd;
  // [N, C·K, L] → the col2im primitive's [1, N·L, C·K] patch matrix.
  const patches = reshape(permute(cols, [0, 2, 1]), [1, n * l, ck]);
  return bind('col2im', [patches], { ...g, groups: 1, inputShape: [n, c, ...size] });
}
