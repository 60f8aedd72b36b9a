// ONNX image operators: AffineGrid (opset 20) and Col2Im (opset 18), over tessera's matmul and
// col2im.

import type { Tensor } from '../../core/tensor.js';
import { isFloating } from '../../core/dtype.js';
import * as ops from '../../ops/index.js';
import { registerOnnxOp } from '../registry.js';

const shapeText = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/**
 * AffineGrid: the sampling grid [N, D?, H, W, k] of the affine maps theta [N, k, k+1] (k = 2 or 3)
 * for an output of `size` [N, C, (D,) H, W]: each output position's normalized coordinates
 * (x, y(, z), 1), x along W, times θᵀ. Coordinates run over [−1, 1]: through the corner pixels'
 * centers with align_corners=1, through their outer edges otherwise ((2i + 1)/n − 1).
 */
registerOnnxOp('AffineGrid', (ctx) => {
  const theta = ctx.tensor(0);
  const size = ctx.ints(1);
  const k = size.length - 2;
  if (k !== 2 && k !== 3) ctx.fail(`size must be [N, C, H, W] or [N, C, D, H, W], got ${JSON.stringify(size)}`);
  if (!isFloating(theta.dtype)) ctx.fail(`theta must be floating, got ${ctx.typeName(ctx.typeOf(0))}`);
  const n = size[0]!;
  if (theta.rank !== 3 || theta.shape[0] !== n || theta.shape[1] !== k || theta.shape[2] !== k + 1) {
    ctx.fail(`theta must have shape [${n}, ${k}, ${k + 1}] for size ${JSON.stringify(size)}, got ${shapeText(theta)}`);
  }
  const spatial = size.slice(2);
  if (spatial.some((d) => !Number.isInteger(d) || d <= 0)) ctx.fail(`the spatial sizes ${JSON.stringify(spatial)} must be positive`);
  const align = ctx.int('align_corners', 0) !== 0;
  const opts = { dtype: theta.dtype, backend: theta.backend };
  /** The normalized coordinates along an axis of length m, shaped to broadcast along spatial axis `axis`. */
  const coords = (axis: number): Tensor => {
    const m = spatial[axis]!;
    let c = m === 1 ? ops.zeros([1], opts) : ops.linspace(-1, 1, m, opts);
    if (!align && m > 1) c = ops.div(ops.mul(c, m - 1), m);
    return ops.expand(ops.reshape(c, spatial.map((d, i) => (i === axis ? d : 1))), spatial);
  };
  // (x, y(, z), 1): component i runs along spatial axis k − 1 − i.
  const components = Array.from({ length: k }, (_, i) => coords(k - 1 - i));
  components.push(ops.ones(spatial, opts));
  const points = spatial.reduce((a, b) => a * b, 1);
  const base = ops.reshape(ops.stack(components, -1), [1, points, k + 1]);
  return [ops.reshape(ops.matmul(base, ops.transpose(theta, 1, 2)), [n, ...spatial, k])];
});

/**
 * Col2Im: sums the blocks of input [N, C·prod(block_shape), L] back into an image [N, C,
 * *image_shape] (the adjoint of im2col), with strides, dilations and pads ([begin..., end...],
 * default 0) per spatial axis. tessera's col2im pads symmetrically, so the padded image is built
 * and then cropped by the pads.
 */
registerOnnxOp('Col2Im', (ctx) => {
  const x = ctx.tensor(0);
  const image = ctx.ints(1);
  const block = ctx.ints(2);
  const dims = image.length;
  if (x.rank !== 3) ctx.fail(`input must be [N, C·prod(block_shape), L], got ${shapeText(x)}`);
  if (block.length !== dims || dims === 0) ctx.fail(`image_shape ${JSON.stringify(image)} and block_shape ${JSON.stringify(block)} must have one entry per spatial axis`);
  const ones = new Array<number>(dims).fill(1);
  const strides = ctx.intList('strides', ones);
  const dilations = ctx.intList('dilations', ones);
  const pads = ctx.intList('pads', new Array<number>(2 * dims).fill(0));
  if (strides.length !== dims || dilations.length !== dims || pads.length !== 2 * dims) {
    ctx.fail(`strides, dilations (${dims} values each) and pads (${2 * dims}) must match the ${dims} spatial axes`);
  }
  if (pads.some((p) => p < 0)) ctx.fail(`pads ${JSON.stringify(pads)} must be non-negative`);
  const padded = image.map((d, i) => d + pads[i]! + pads[i + dims]!);
  let y = ops.col2im(x, padded, block, { stride: strides, dilation: dilations });
  image.forEach((d, i) => { if (pads[i] !== 0 || pads[i + dims] !== 0) y = ops.narrow(y, 2 + i, pads[i]!, d); });
  return [y];
});
