// ONNX resampling operators: Resize (opset 10-19: nearest / linear / cubic, every coordinate
// transformation mode, antialias), Upsample (opset 7-9), GridSample (2-D and 3-D, bilinear /
// nearest / bicubic) and RoiAlign, over tessera's indexSelect, matmul and gridSample ops with
// interpolation weights computed on the host.

import type { Tensor } from '../../core/tensor.js';
import type { DType } from '../../core/dtype.js';
import { isFloating } from '../../core/dtype.js';
import { TesseraError } from '../../core/errors.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { registerOnnxOp } from '../registry.js';
import { constant, floatInput, toIntegerDType } from './nn.js';

// ---- resampling ------------------------------------------------------------------------------

interface ResizeMode {
  mode: 'nearest' | 'linear' | 'cubic';
  /** coordinate_transformation_mode. */
  coordinates: string;
  /** nearest_mode, or 'simple' (opset 10 and Upsample: floor when upsampling, ceil when downsampling). */
  nearest: string;
  cubicA: number;
  /** antialias (opset 18): linear and cubic widen their filter by 1/scale when downsampling. */
  antialias: boolean;
  excludeOutside: boolean;
  extrapolation: number;
}

/**
 * One axis's resampling: per tap, the input index of every output position and its weight
 * (weights undefined: one tap of weight 1); `outside` marks the positions that read the
 * extrapolation value (tf_crop_and_resize).
 */
interface AxisTaps {
  indices: Int32Array[];
  weights?: Float64Array[];
  outside?: Int32Array;
}

/** Keys' cubic convolution kernel with parameter a at distance d. */
function keys(d: number, a: number): number {
  const v = Math.abs(d);
  if (v <= 1) return ((a + 2) * v - (a + 3)) * v * v + 1;
  if (v < 2) return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a;
  return 0;
}

/**
 * The weights of the neighbours before + start, ..., before + start + n − 1 of a coordinate r in
 * (0, 1] past `before` (start = 1 − n/2): linear's 2 (1 − r, r) and cubic's 4 (Keys' kernel). With
 * antialias and scale < 1 the kernel is stretched by 1/scale over more neighbours and the weights
 * are normalized to sum to 1 (ONNX's reference filters).
 */
function filterWeights(r: number, scale: number, m: ResizeMode): number[] {
  const s = m.antialias ? Math.min(scale, 1) : 1;
  const support = m.mode === 'linear' ? 1 : 2;
  const start = Math.floor(-support / s) + 1;
  const weights = Array.from({ length: 2 - 2 * start }, (_, k) => {
    const d = (start + k - r) * s;
    return m.mode === 'linear' ? Math.max(0, 1 - Math.abs(d)) : keys(d, m.cubicA);
  });
  if (!m.antialias) return weights;
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / total);
}

/** The input coordinate of output position o along one axis (coordinate_transformation_mode). */
function sourceCoordinate(o: number, inLen: number, outLen: number, scale: number, outWidth: number, m: ResizeMode, roi: [number, number]): number {
  switch (m.coordinates) {
    case 'half_pixel': return (o + 0.5) / scale - 0.5;
    case 'half_pixel_symmetric': {
      // Centred: the output's extent maps onto the input's middle (opset 19).
      const adjustment = outLen / outWidth;
      return (inLen / 2) * (1 - adjustment) + (o + 0.5) / scale - 0.5;
    }
    // The spec's and onnxruntime's 0 for a single output (ONNX's Python reference uses −0.5).
    case 'pytorch_half_pixel': return outLen > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case 'align_corners': return outWidth === 1 ? 0 : (o * (inLen - 1)) / (outWidth - 1);
    case 'asymmetric': return o / scale;
    case 'tf_half_pixel_for_nn': return (o + 0.5) / scale;
    case 'tf_crop_and_resize': {
      const [start, end] = roi;
      return outWidth === 1 ? ((end - start) * (inLen - 1)) / 2 + start * (inLen - 1) : (o * (end - start) * (inLen - 1)) / (outWidth - 1) + start * (inLen - 1);
    }
    default: throw new TesseraError(`onnx Resize: coordinate_transformation_mode '${m.coordinates}' is not supported`);
  }
}

/** The nearest input index of coordinate c (nearest_mode), clamped into the input. */
function nearestIndex(c: number, inLen: number, m: ResizeMode, downsampling: boolean): number {
  let i: number;
  const frac = c - Math.floor(c);
  switch (m.nearest) {
    case 'round_prefer_floor': i = frac === 0.5 ? Math.floor(c) : Math.round(c); break;
    case 'round_prefer_ceil': i = frac === 0.5 ? Math.ceil(c) : Math.round(c); break;
    case 'floor': i = Math.floor(c); break;
    case 'ceil': i = Math.ceil(c); break;
    default: i = downsampling ? Math.ceil(c) : Math.trunc(c); // 'simple'
  }
  return Math.min(Math.max(i, 0), inLen - 1);
}

/**
 * The taps of one axis, as ONNX's reference computes them: for linear (2 taps) and cubic (4) the
 * neighbours of coordinate c are the taps nearest to it with the left one preferred (so the offset
 * r past the neighbour before c is in (0, 1]), taken from the input edge-padded by 1 or 2;
 * exclude_outside zeroes the weights of neighbours outside the input and renormalizes.
 */
function axisTaps(inLen: number, outLen: number, scale: number, outWidth: number, m: ResizeMode, roi: [number, number]): AxisTaps {
  const crop = m.coordinates === 'tf_crop_and_resize';
  const outside = crop ? new Int32Array(outLen) : undefined;
  if (m.mode === 'nearest') {
    const idx = new Int32Array(outLen);
    for (let o = 0; o < outLen; o++) {
      const c = sourceCoordinate(o, inLen, outLen, scale, outWidth, m, roi);
      if (outside !== undefined && (c < 0 || c > inLen - 1)) outside[o] = 1;
      idx[o] = nearestIndex(c, inLen, m, scale < 1);
    }
    return { indices: [idx], outside };
  }
  const n = filterWeights(1, scale, m).length; // the tap count depends on the scale alone
  const pad = n / 2;
  const indices = Array.from({ length: n }, () => new Int32Array(outLen));
  const weights = Array.from({ length: n }, () => new Float64Array(outLen));
  for (let o = 0; o < outLen; o++) {
    const c = sourceCoordinate(o, inLen, outLen, scale, outWidth, m, roi);
    if (outside !== undefined && (c < 0 || c > inLen - 1)) outside[o] = 1;
    const before = Number.isInteger(c) ? c - 1 : Math.floor(c);
    const coeffs = filterWeights(c - before, scale, m);
    // The first neighbour, kept inside the edge-padded input [−pad, inLen − 1 + pad].
    const first = Math.min(Math.max(before + 1 - pad, -pad), inLen - 1 + pad - (n - 1));
    if (m.excludeOutside) {
      coeffs.forEach((_, k) => { if (first + k < 0 || first + k >= inLen) coeffs[k] = 0; });
      const total = coeffs.reduce((a, b) => a + b, 0);
      if (total !== 0) coeffs.forEach((v, k) => { coeffs[k] = v / total; });
    }
    for (let k = 0; k < n; k++) {
      indices[k]![o] = Math.min(Math.max(first + k, 0), inLen - 1);
      weights[k]![o] = coeffs[k]!;
    }
  }
  return { indices, weights, outside };
}

/** Resamples x along `axis`: Σ over the taps of indexSelect(x, axis, idx) · weight, then the extrapolation value where marked. */
function resampleAxis(x: Tensor, axis: number, taps: AxisTaps, extrapolation: number): Tensor {
  const along = (values: Float64Array | Int32Array, dtype: DType): Tensor => constant(values, x.shape.map((d, i) => (i === axis ? values.length : 1)), dtype, x);
  let out: Tensor | undefined;
  taps.indices.forEach((idx, k) => {
    const picked = ops.indexSelect(x, axis, constant(idx, [idx.length], 'int32', x));
    const term = taps.weights === undefined ? picked : ops.mul(picked, along(taps.weights[k]!, x.dtype));
    out = out === undefined ? term : ops.add(out, term);
  });
  if (taps.outside !== undefined && taps.outside.some((v) => v === 1)) out = ops.where(along(taps.outside, 'int32'), extrapolation, out!);
  return out!;
}

/**
 * Resizes x to `sizes` with per-axis `scales` (ONNX Resize / Upsample): separable, one axis at a
 * time from the last; axes whose size and scale stay are skipped (their resampling is the identity).
 * `outWidths` are the reference's output lengths scale·in (fractional when scales are given), which
 * align_corners and tf_crop_and_resize divide by. Integer inputs are interpolated in float32 and
 * truncated back (nearest reads them as they are).
 */
function resize(ctx: NodeContext, x: Tensor, sizes: readonly number[], scales: readonly number[], outWidths: readonly number[], m: ResizeMode, roi: readonly number[] | undefined): Tensor {
  const integer = !isFloating(x.dtype);
  if (integer && m.mode !== 'nearest' && x.dtype === 'bool') ctx.fail(`${m.mode} resizing of BOOL tensors is not supported`);
  let y = integer && m.mode !== 'nearest' ? ops.cast(x, 'float32') : x;
  for (let axis = x.rank - 1; axis >= 0; axis--) {
    const inLen = x.shape[axis]!, outLen = sizes[axis]!;
    const axisRoi: [number, number] = roi === undefined ? [0, 1] : [roi[axis]!, roi[x.rank + axis]!];
    if (outLen === inLen && scales[axis] === 1 && m.coordinates !== 'tf_crop_and_resize') continue;
    if (inLen === 0) ctx.fail(`cannot resize the empty axis ${axis} of shape [${x.shape.join(', ')}]`);
    y = resampleAxis(y, axis, axisTaps(inLen, outLen, scales[axis]!, outWidths[axis]!, m, axisRoi), m.extrapolation);
  }
  return integer && m.mode !== 'nearest' ? toIntegerDType(y, x.dtype) : y;
}

const COORDINATE_MODES = ['half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn', 'tf_crop_and_resize'];
const NEAREST_MODES = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

/** The mode attribute: nearest, linear or cubic (opset 10 and Upsample: nearest or linear, 'bilinear' accepted). */
function resizeMode(ctx: NodeContext, cubic: boolean): ResizeMode['mode'] {
  const mode = ctx.string('mode', 'nearest');
  if (mode === 'nearest' || mode === 'linear' || (cubic && mode === 'cubic')) return mode;
  if (!cubic && mode === 'bilinear') return 'linear';
  return ctx.fail(`mode '${mode}' is not supported; use nearest, linear${cubic ? ' or cubic' : ''}`);
}

/**
 * Output sizes floor(in · scale) from per-axis scales (Upsample, Resize with scales), the product
 * taken in float32 as onnxruntime does (10 · 0.7f is 7, not 6); outWidths keep the exact product.
 */
function sizesFromScales(ctx: NodeContext, x: Tensor, scales: readonly number[]): { sizes: number[]; outWidths: number[] } {
  if (scales.length !== x.rank) ctx.fail(`scales needs ${x.rank} values (one per axis of X [${x.shape.join(', ')}]), got [${scales.join(', ')}]`);
  if (scales.some((s) => !(s > 0) || !Number.isFinite(s))) ctx.fail(`scales must be positive, got [${scales.join(', ')}]`);
  const outWidths = x.shape.map((n, i) => scales[i]! * n);
  return { sizes: outWidths.map((w) => Math.floor(Math.fround(w))), outWidths };
}

// Upsample (opset 7-9, deprecated for Resize): nearest or linear with asymmetric coordinates
// (as onnxruntime runs it); scales is an attribute in opset 7 and an input from opset 9.
registerOnnxOp('Upsample', {
  minOpset: 7,
  maxOpset: 9,
  run: (ctx: NodeContext) => {
    const x = ctx.tensor(0);
    const scales = ctx.opset >= 9 ? ctx.ints(1) : ctx.floatList('scales');
    if (scales === undefined) ctx.fail("the required attribute 'scales' is missing");
    const m: ResizeMode = { mode: resizeMode(ctx, false), coordinates: 'asymmetric', nearest: 'simple', cubicA: -0.75, antialias: false, excludeOutside: false, extrapolation: 0 };
    const { sizes, outWidths } = sizesFromScales(ctx, x, scales);
    return [resize(ctx, x, sizes, scales, outWidths, m, undefined)];
  },
});

// Resize (opset 10-19): X resized by scales or to sizes. Opset 10 takes (X, scales) with asymmetric
// coordinates and onnxruntime's 'simple' nearest rounding; opset 11+ takes (X, roi, scales, sizes)
// with coordinate_transformation_mode, nearest_mode, cubic_coeff_a, exclude_outside and
// extrapolation_value (tf_crop_and_resize reads roi = [starts, ends] as fractions of each axis);
// opset 18 adds axes (the axes scales/sizes/roi list) and keep_aspect_ratio_policy. Output sizes
// are floor(in · scale), or sizes with scale = size/in. antialias (18) widens the linear and cubic
// filters when downsampling.
registerOnnxOp('Resize', {
  minOpset: 10,
  run: (ctx: NodeContext) => {
    const x = ctx.tensor(0);
    if (ctx.opset < 11) {
      const m: ResizeMode = { mode: resizeMode(ctx, false), coordinates: 'asymmetric', nearest: 'simple', cubicA: -0.75, antialias: false, excludeOutside: false, extrapolation: 0 };
      const scales = ctx.ints(1);
      const { sizes, outWidths } = sizesFromScales(ctx, x, scales);
      return [resize(ctx, x, sizes, scales, outWidths, m, undefined)];
    }
    const m: ResizeMode = {
      mode: resizeMode(ctx, true),
      coordinates: ctx.string('coordinate_transformation_mode', 'half_pixel'),
      nearest: ctx.string('nearest_mode', 'round_prefer_floor'),
      cubicA: ctx.float('cubic_coeff_a', -0.75),
      antialias: ctx.int('antialias', 0) === 1,
      excludeOutside: ctx.int('exclude_outside', 0) === 1,
      extrapolation: ctx.float('extrapolation_value', 0),
    };
    if (!COORDINATE_MODES.includes(m.coordinates)) ctx.fail(`coordinate_transformation_mode '${m.coordinates}' is not one of ${COORDINATE_MODES.join(', ')}`);
    if (!NEAREST_MODES.includes(m.nearest)) ctx.fail(`nearest_mode '${m.nearest}' is not one of ${NEAREST_MODES.join(', ')}`);
    const rank = x.rank;
    const axes = (ctx.intList('axes') ?? x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
    if (axes.some((a) => a < 0 || a >= rank) || new Set(axes).size !== axes.length) ctx.fail(`axes [${axes.join(', ')}] must be distinct axes of a rank-${rank} input`);
    /** A per-listed-axis list spread over every axis (the others keep their value in `base`). */
    const spread = (values: readonly number[], base: readonly number[]): number[] => {
      const all = [...base];
      axes.forEach((a, i) => { all[a] = values[i]!; });
      return all;
    };
    const zeros = x.shape.map(() => 0), ones = x.shape.map(() => 1);
    const given = (i: number): number[] | undefined => {
      const v = ctx.optionalInts(i);
      return v === undefined || v.length === 0 ? undefined : v;
    };
    const roiValues = given(1);
    let roi: number[] | undefined;
    if (m.coordinates === 'tf_crop_and_resize') {
      if (roiValues?.length !== 2 * axes.length) ctx.fail(`tf_crop_and_resize needs roi with ${2 * axes.length} values (starts, then ends), got [${(roiValues ?? []).join(', ')}]`);
      roi = [...spread(roiValues.slice(0, axes.length), zeros), ...spread(roiValues.slice(axes.length), ones)];
    }
    const scaleValues = given(2), sizeValues = given(3);
    if ((scaleValues === undefined) === (sizeValues === undefined)) ctx.fail('exactly one of scales and sizes must be given (and non-empty)');
    if (scaleValues !== undefined) {
      if (scaleValues.length !== axes.length) ctx.fail(`scales needs ${axes.length} values, got [${scaleValues.join(', ')}]`);
      const scales = spread(scaleValues, ones);
      const { sizes, outWidths } = sizesFromScales(ctx, x, scales);
      return [resize(ctx, x, sizes, scales, outWidths, m, roi)];
    }
    if (sizeValues!.length !== axes.length) ctx.fail(`sizes needs ${axes.length} values, got [${sizeValues!.join(', ')}]`);
    let sizes = spread(sizeValues!, x.shape);
    let scales = sizes.map((s, i) => s / x.shape[i]!);
    const policy = ctx.string('keep_aspect_ratio_policy', 'stretch');
    if (policy === 'not_larger' || policy === 'not_smaller') {
      // One scale for the listed axes: the smallest (not_larger) or largest (not_smaller).
      const listed = axes.map((a) => scales[a]!);
      const s = policy === 'not_larger' ? Math.min(...listed) : Math.max(...listed);
      scales = scales.map((v, i) => (axes.includes(i) ? s : v));
      sizes = sizes.map((v, i) => (axes.includes(i) ? Math.round(s * x.shape[i]!) : v));
    } else if (policy !== 'stretch') {
      ctx.fail(`keep_aspect_ratio_policy '${policy}' is not one of stretch, not_larger, not_smaller`);
    }
    return [resize(ctx, x, sizes, scales, sizes, m, roi)];
  },
});

const PADDING_MODES = ['zeros', 'border', 'reflection'] as const;

// GridSample (opset 16; 20 renames the modes linear/cubic and adds volumes): samples X [N, C, H, W]
// at grid [N, Ho, Wo, 2] of (x, y) in [−1, 1], or X [N, C, D, H, W] at [N, Do, Ho, Wo, 3] of
// (x, y, z), as torch.nn.functional.grid_sample. 2-D bilinear and nearest are tessera's
// gridSample; bicubic (2-D only) and volumes are composed from it (see bicubicGridSample and
// volumetricGridSample). Integer X is sampled in the grid's float type and truncated back.
registerOnnxOp('GridSample', {
  minOpset: 16,
  run: (ctx: NodeContext) => {
    const x = ctx.tensor(0), grid0 = ctx.tensor(1);
    if (x.rank !== 4 && !(x.rank === 5 && ctx.opset >= 20)) ctx.fail(`X must be [N, C, H, W] (or [N, C, D, H, W] from opset 20), got shape [${x.shape.join(', ')}]`);
    if (!isFloating(grid0.dtype)) ctx.fail(`grid must be a float tensor, got ${ctx.typeName(ctx.typeOf(1))}`);
    const names: Record<string, 'bilinear' | 'nearest' | 'bicubic'> = { bilinear: 'bilinear', linear: 'bilinear', nearest: 'nearest', bicubic: 'bicubic', cubic: 'bicubic' };
    const modeName = ctx.string('mode', ctx.opset >= 20 ? 'linear' : 'bilinear');
    const mode = names[modeName];
    if (mode === undefined) ctx.fail(`mode '${modeName}' is not one of bilinear, nearest, bicubic (linear, cubic from opset 20)`);
    if (mode === 'bicubic' && x.rank === 5) ctx.fail('cubic sampling of volumes is not defined (ONNX allows it for 2-D inputs only)');
    const paddingName = ctx.string('padding_mode', 'zeros');
    const paddingMode = PADDING_MODES.find((p) => p === paddingName);
    if (paddingMode === undefined) ctx.fail(`padding_mode '${paddingName}' is not one of ${PADDING_MODES.join(', ')}`);
    const opts = { mode: mode === 'bicubic' ? 'nearest' as const : mode, paddingMode, alignCorners: ctx.int('align_corners', 0) === 1 };
    const integer = !isFloating(x.dtype);
    const xf = integer ? ops.cast(x, grid0.dtype) : x;
    const grid = grid0.dtype === xf.dtype ? grid0 : ops.cast(grid0, xf.dtype);
    const dims = x.rank - 2;
    if (grid.rank !== x.rank || grid.shape[0] !== x.shape[0] || grid.shape[dims + 1] !== dims) {
      ctx.fail(`grid must be [${x.shape[0]}, ${dims === 2 ? 'Ho, Wo' : 'Do, Ho, Wo'}, ${dims}] for X [${x.shape.join(', ')}], got [${grid.shape.join(', ')}]`);
    }
    const y = x.rank === 5 ? volumetricGridSample(xf, grid, opts)
      : mode === 'bicubic' ? bicubicGridSample(xf, grid, opts)
        : ops.gridSample(xf, grid, opts);
    return [integer ? toIntegerDType(y, x.dtype) : y];
  },
});

/** The grid coordinate of pixel p on an axis of `size` (the inverse of gridSample's unnormalization; on a size-1 axis with alignCorners every point is pixel 0). */
function gridCoordinate(p: Tensor, size: number, alignCorners: boolean): Tensor {
  if (alignCorners) return size === 1 ? ops.mul(p, 0) : ops.sub(ops.div(ops.mul(p, 2), size - 1), 1);
  return ops.sub(ops.div(ops.add(ops.mul(p, 2), 1), size), 1);
}

const CUBIC_A = -0.75;

/**
 * Bicubic grid sampling (PyTorch's): Σ over the 4×4 integer neighbours of each point of the pixel
 * there, read by a nearest sample (so the padding mode applies to each neighbour, as in PyTorch),
 * times Keys' coefficients (A = −0.75) of the offsets, through which the grid's gradient flows.
 */
function bicubicGridSample(x: Tensor, grid: Tensor, opts: ops.GridSampleOptions): Tensor {
  const [n, , h, w] = x.shape as [number, number, number, number];
  const [, ho, wo] = grid.shape as [number, number, number, number];
  const align = opts.alignCorners === true;
  /** Per axis: the first neighbour's pixel coordinate (held fixed) and the 4 coefficients. */
  const axis = (k: number, size: number): { first: Tensor; coeffs: Tensor[] } => {
    const g = ops.reshape(ops.narrow(grid, 3, k, 1), [n, ho, wo]);
    const pixel = align ? ops.mul(ops.div(ops.add(g, 1), 2), size - 1) : ops.div(ops.sub(ops.mul(ops.add(g, 1), size), 1), 2);
    const floor = ops.detach(ops.floor(pixel));
    const t = ops.sub(pixel, floor);
    const near = (v: Tensor): Tensor => ops.add(ops.mul(ops.mul(ops.sub(ops.mul(v, CUBIC_A + 2), CUBIC_A + 3), v), v), 1);
    const far = (v: Tensor): Tensor => ops.sub(ops.mul(ops.add(ops.mul(ops.sub(ops.mul(v, CUBIC_A), 5 * CUBIC_A), v), 8 * CUBIC_A), v), 4 * CUBIC_A);
    return { first: ops.sub(floor, 1), coeffs: [far(ops.add(t, 1)), near(t), near(ops.sub(1, t)), far(ops.sub(2, t))] };
  };
  const ax = axis(0, w), ay = axis(1, h);
  let out: Tensor | undefined;
  for (let j = 0; j < 4; j++) {
    const gy = gridCoordinate(ops.add(ay.first, j), h, align);
    for (let i = 0; i < 4; i++) {
      const gx = gridCoordinate(ops.add(ax.first, i), w, align);
      const sample = ops.gridSample(x, ops.stack([gx, gy], -1), { ...opts, mode: 'nearest' });
      const term = ops.mul(sample, ops.unsqueeze(ops.mul(ax.coeffs[i]!, ay.coeffs[j]!), 1));
      out = out === undefined ? term : ops.add(out, term);
    }
  }
  return out!;
}


/**
 * Trilinear / nearest sampling of a volume X [N, C, D, H, W] at grid [N, Do, Ho, Wo, 3], separably
 * with tessera's 2-D gridSample (each padding mode acts on each axis independently): first every
 * depth slice at the points' (x, y), giving S [N, C, D, P] for the P points, then S at (column p,
 * z) for each point p, where column p's exact grid coordinate picks it alone.
 */
function volumetricGridSample(x: Tensor, grid: Tensor, opts: ops.GridSampleOptions): Tensor {
  const [n, c, d, h, w] = x.shape as [number, number, number, number, number];
  const out = grid.shape.slice(1, 4);
  const p = out.reduce((a, b) => a * b, 1);
  const points = ops.reshape(grid, [n, 1, p, 3]);
  const slices = ops.gridSample(ops.reshape(x, [n, c * d, h, w]), ops.narrow(points, 3, 0, 2), opts);
  const columns = gridCoordinate(ops.arange(0, p, 1, { dtype: grid.dtype, backend: grid.backend }), p, opts.alignCorners === true);
  const depthGrid = ops.cat([ops.expand(ops.reshape(columns, [1, 1, p, 1]), [n, 1, p, 1]), ops.narrow(points, 3, 2, 1)], 3);
  const sampled = ops.gridSample(ops.reshape(slices, [n, c, d, p]), depthGrid, opts);
  return ops.reshape(sampled, [n, c, ...out]);
}

// ---- RoiAlign --------------------------------------------------------------------------------

/** One ROI's sampling along one axis. */
interface RoiAxis {
  /** [bins, size]: row b holds the mean over bin b's samples of their bilinear weights (invalid samples weigh 0). */
  weights: Float64Array;
  /** For max mode: per bin, per sample, the two pixels and weights (weight 0 and pixel 0 for an invalid sample). */
  samples: { low: number; high: number; wLow: number; wHigh: number }[][];
}

/**
 * The samples of one ROI along one axis (onnxruntime's RoiAlign): `bins` bins of size extent/bins,
 * `grid` regularly spaced samples in each. A sample beyond [−1, size] reads nothing; one in
 * [−1, 0] reads pixel 0; one past the last pixel reads it; else the two pixels around it.
 * `round` is the input's float precision, in which positions are computed.
 */
function roiAxis(start: number, extent: number, bins: number, grid: number, size: number, round: (v: number) => number): RoiAxis {
  const weights = new Float64Array(bins * size);
  const samples: RoiAxis['samples'] = [];
  const binSize = round(extent / bins);
  for (let b = 0; b < bins; b++) {
    const list: RoiAxis['samples'][number] = [];
    for (let s = 0; s < grid; s++) {
      let c = round(round(start + round(b * binSize)) + round(round((s + 0.5) * binSize) / grid));
      if (c < -1 || c > size) { list.push({ low: 0, high: 0, wLow: 0, wHigh: 0 }); continue; }
      if (c <= 0) c = 0;
      let low = Math.floor(c), high = low + 1;
      if (low >= size - 1) { low = high = size - 1; c = low; }
      const l = c - low;
      list.push({ low, high, wLow: 1 - l, wHigh: l });
      weights[b * size + low] += (1 - l) / grid;
      weights[b * size + high] += l / grid;
    }
    samples.push(list);
  }
  return { weights, samples };
}

// RoiAlign (opset 10, 16): bilinear samples averaged (mode avg) or maxed (mode max) over each of
// output_height × output_width bins of every ROI [x1, y1, x2, y2] · spatial_scale of image
// batch_indices[r], as onnxruntime computes it: sampling_ratio samples per bin axis (0: ceil(roi
// extent / bins)); coordinate_transformation_mode half_pixel (opset 16's default) shifts by −0.5,
// output_half_pixel (opset 10's behaviour) does not and makes each ROI at least 1×1. The ROIs are
// read to the host; avg is separable: out[r] = Ay[r] · X[b] · Ax[r]ᵀ. max takes, per bin, the
// largest of the samples' weighted corner values (onnxruntime's definition).
registerOnnxOp('RoiAlign', (ctx: NodeContext) => {
  const x = floatInput(ctx, 0);
  if (x.rank !== 4) ctx.fail(`X must be [N, C, H, W], got shape [${x.shape.join(', ')}]`);
  const rois = ctx.ints(1), batch = ctx.ints(2);
  const count = batch.length;
  if (rois.length !== 4 * count) ctx.fail(`rois must be [${count}, 4] (one per batch index), got shape [${ctx.tensor(1).shape.join(', ')}]`);
  const [, c, h, w] = x.shape as [number, number, number, number];
  if (batch.some((b) => !Number.isInteger(b) || b < 0 || b >= x.shape[0]!)) ctx.fail(`batch_indices must lie in [0, ${x.shape[0]}), got [${batch.join(', ')}]`);
  const mode = ctx.string('mode', 'avg');
  if (mode !== 'avg' && mode !== 'max') ctx.fail(`mode '${mode}' is not one of avg, max`);
  const oh = ctx.int('output_height', 1), ow = ctx.int('output_width', 1);
  const ratio = ctx.int('sampling_ratio', 0), scale = ctx.float('spatial_scale', 1);
  const transform = ctx.opset >= 16 ? ctx.string('coordinate_transformation_mode', 'half_pixel') : 'output_half_pixel';
  if (transform !== 'half_pixel' && transform !== 'output_half_pixel') ctx.fail(`coordinate_transformation_mode '${transform}' is not one of half_pixel, output_half_pixel`);
  const offset = transform === 'half_pixel' ? 0.5 : 0;
  // The geometry in the input's precision: the sample counts ceil(extent / bins) depend on it.
  const round = x.dtype === 'float64' ? (v: number): number => v : Math.fround;
  const axes = batch.map((_, r) => {
    const [x1, y1, x2, y2] = rois.slice(4 * r, 4 * r + 4).map((v) => round(round(v * scale) - offset)) as [number, number, number, number];
    let [rw, rh] = [round(x2 - x1), round(y2 - y1)];
    if (offset === 0) [rw, rh] = [Math.max(rw, 1), Math.max(rh, 1)];
    const gh = ratio > 0 ? ratio : Math.ceil(round(rh / oh)), gw = ratio > 0 ? ratio : Math.ceil(round(rw / ow));
    return { y: roiAxis(y1, rh, oh, gh, h, round), x: roiAxis(x1, rw, ow, gw, w, round) };
  });
  if (count === 0) return [ops.zeros([0, c, oh, ow], { dtype: x.dtype, backend: x.backend })];
  if (mode === 'avg') {
    // Per image b, its ROIs at once: Ay [R_b, 1, oh, H] · X[b] [1, C, H, W] · Axᵀ [R_b, 1, W, ow]
    // (the sample counts are folded into the weights); the results back in ROI order.
    const byImage = new Map<number, number[]>();
    batch.forEach((b, r) => byImage.set(b, [...(byImage.get(b) ?? []), r]));
    const parts = [...byImage].map(([b, rs]) => {
      const ay = constant(Float64Array.from(rs.flatMap((r) => [...axes[r]!.y.weights])), [rs.length, 1, oh, h], x.dtype, x);
      const ax = constant(Float64Array.from(rs.flatMap((r) => [...axes[r]!.x.weights])), [rs.length, 1, ow, w], x.dtype, x);
      return ops.matmul(ops.matmul(ay, ops.narrow(x, 0, b, 1)), ops.transpose(ax, 2, 3));
    });
    if (parts.length === 1) return [parts[0]];
    const order = [...byImage.values()].flat();
    const position = new Int32Array(count);
    order.forEach((r, k) => { position[r] = k; });
    return [ops.indexSelect(ops.cat(parts, 0), 0, constant(position, [count], 'int32', x))];
  }
  // max: gather every sample's 4 weighted corners from X as [N·H·W, C] rows, padded per bin to the
  // largest sample count with -inf.
  const taps = Math.max(1, ...axes.map((a) => 4 * (a.y.samples[0]?.length ?? 0) * (a.x.samples[0]?.length ?? 0)));
  const rows = new Int32Array(count * oh * ow * taps), weights = new Float64Array(rows.length), bias = new Float64Array(rows.length).fill(-Infinity);
  axes.forEach((a, r) => {
    for (let py = 0; py < oh; py++) {
      for (let px = 0; px < ow; px++) {
        let k = ((r * oh + py) * ow + px) * taps;
        const start = k;
        for (const sy of a.y.samples[py]!) {
          for (const sx of a.x.samples[px]!) {
            for (const [yy, wy] of [[sy.low, sy.wLow], [sy.high, sy.wHigh]] as const) {
              for (const [xx, wx] of [[sx.low, sx.wLow], [sx.high, sx.wHigh]] as const) {
                rows[k] = (batch[r]! * h + yy) * w + xx;
                weights[k] = wy * wx;
                bias[k++] = 0;
              }
            }
          }
        }
        if (k === start) bias[k] = 0; // no samples: the bin is 0
      }
    }
  });
  const table = ops.reshape(ops.permute(x, [0, 2, 3, 1]), [-1, c]);
  const picked = ops.indexSelect(table, 0, constant(rows, [rows.length], 'int32', x));
  const weighted = ops.add(ops.mul(picked, constant(weights, [rows.length, 1], x.dtype, x)), constant(bias, [rows.length, 1], x.dtype, x));
  const best = ops.max(ops.reshape(weighted, [count, oh, ow, taps, c]), 3);
  return [ops.permute(best, [0, 3, 1, 2])];
});
