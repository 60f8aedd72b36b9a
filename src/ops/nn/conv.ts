// Convolution by two algorithms, chosen per shape (conv-algorithm.ts): the direct `convDirect`
// primitive (the wasm backend's SIMD kernel for few input channels, where the GEMM is too shallow),
// or im2col + GEMM, generic over 1, 2 and 3 spatial axes: the `im2col` primitive
// writes the [groups, N·L, C/g·K] patch matrix in one pass (padding, stride, dilation and groups
// included) → batched matmul with the weight, groups as the batch axis. Every step is a primitive
// with rules, so the gradient (col2im, the `col2im` primitive, and one GEMM over the whole batch
// for the weight), forward mode and higher orders come for free, and the cost (FLOPs and bytes)
// is the sum of the primitives' costs.
//
// convDirect's gradients reuse the composites: the input gradient is GEMM into patches + col2im,
// the weight gradient the `convWeightGrad` primitive or im2col + GEMM (chosen like the forward).
//
// The transposed convolution is the adjoint of that map w.r.t. its input: GEMM into columns, then
// fold them back with `col2im` (or, for an outputPadding of at least the stride, axis by axis
// with `unfoldBackward`) and cut off the padding.
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { cast, resultType, add } from '../elementwise.js';
import { sum } from '../reduce.js';
import type { PatchAttrs } from '../primitives.js';
import { channelsLastGeometry, channelsLastPatches, chooseConvAlgorithm } from './conv-algorithm.js';
import { matmul } from '../linalg.js';
import { reshape, permute, at, unsqueeze, squeeze, expand, contiguous, type SliceSpec } from '../shape.js';
import { autocastOperands, bind } from '../dispatch.js';
import { foldWindows, outputSpatialShape, spatialTuple, type SpatialArg } from './window.js';

export interface ConvOptions {
  bias?: Tensor;
  stride?: SpatialArg;
  /** Zero padding per spatial axis (both sides), or 'valid' (none) or 'same' (output size = input size; stride 1 only). */
  padding?: SpatialArg | 'valid' | 'same';
  dilation?: SpatialArg;
  groups?: number;
}

export interface ConvTransposeOptions {
  bias?: Tensor;
  stride?: SpatialArg;
  /** Implicit zero padding removed from both sides of the output (the padding of the conv this inverts). */
  padding?: SpatialArg;
  /** Extra size added to one side of the output (< stride or < dilation), to pick among the sizes that map to the input size. */
  outputPadding?: SpatialArg;
  groups?: number;
  dilation?: SpatialArg;
}

function floatOperands(op: string, x: Tensor, w: Tensor, bias: Tensor | undefined): [Tensor, Tensor, Tensor | undefined] {
  const dtype = resultType(x, w);
  check(isFloating(dtype), op, () => `needs floating input and weight, got ${x.dtype} and ${w.dtype}; cast them with .float().`);
  return [cast(x, dtype), cast(w, dtype), bias === undefined ? undefined : cast(bias, dtype)];
}

/** Accepts [N, C, *spatial] or unbatched [C, *spatial] (like PyTorch); returns the batched tensor and whether to squeeze. */
function batched(op: string, x: Tensor, dims: number, what: string): [Tensor, boolean] {
  check(x.rank === dims + 2 || x.rank === dims + 1, op, () =>
    `${what} must be [N, C, ${spatialNames(dims)}] or unbatched [C, ${spatialNames(dims)}], got shape ${fmtShape(x.shape)}.`);
  return x.rank === dims + 1 ? [unsqueeze(x, 0), true] : [x, false];
}

function spatialNames(dims: number): string {
  return ['L', 'H, W', 'D, H, W'][dims - 1]!;
}

function checkBias(op: string, bias: Tensor, channels: number): void {
  check(bias.rank === 1 && bias.shape[0] === channels, op, () => `bias must have shape [${channels}] (one per output channel), got ${fmtShape(bias.shape)}.`);
}

function addBias(op: string, out: Tensor, bias: Tensor | undefined, channels: number, dims: number): Tensor {
  if (bias === undefined) return out;
  checkBias(op, bias, channels);
  return add(out, reshape(bias, [channels, ...new Array<number>(dims).fill(1)]));
}

/**
 * N-d convolution (cross-correlation, like PyTorch) of x [N, C_in, *spatial] with weight
 * [C_out, C_in/groups, *kernel]; `dims` is the number of spatial axes.
 */
export function convNd(op: string, dims: number, input: Tensor, weight: Tensor, opts: ConvOptions = {}): Tensor {
  const [x0, squeezeBatch] = batched(op, input, dims, 'input');
  const [x, w, bias] = autocastOperands('conv', floatOperands(op, x0, weight, opts.bias));
  const groups = opts.groups ?? 1;
  check(w.rank === dims + 2, op, () => `weight must be [C_out, C_in/groups, ${['k', 'kH, kW', 'kD, kH, kW'][dims - 1]}], got shape ${fmtShape(w.shape)}.`);
  const [n, cIn] = [x.shape[0]!, x.shape[1]!];
  const [cOut, cInPerGroup] = [w.shape[0]!, w.shape[1]!];
  check(Number.isInteger(groups) && groups >= 1 && cIn % groups === 0 && cOut % groups === 0, op, () =>
    `groups=${groups} must be a positive integer dividing both the input channels (${cIn}) and the output channels (${cOut}).`);
  check(cInPerGroup * groups === cIn, op, () =>
    `weight ${fmtShape(w.shape)} expects ${cInPerGroup * groups} input channels (${cInPerGroup} per group × ${groups} groups), but the input ${fmtShape(x.shape)} has ${cIn}.`);
  const kernel = w.shape.slice(2);
  const stride = spatialTuple(op, 'stride', opts.stride ?? 1, dims, 1);
  const dilation = spatialTuple(op, 'dilation', opts.dilation ?? 1, dims, 1);
  const pads = convPads(op, opts.padding ?? 0, kernel, stride, dilation);
  const outSpatial = outputSpatialShape(op, x.shape.slice(2), { kernel, stride, dilation, pads });
  const attrs: PatchAttrs = { kernel, stride, dilation, pads, groups };

  const problem = { backend: x.storage.backend, dtype: x.dtype, inputShape: x.shape, outChannels: cOut, bias: bias !== undefined, attrs };
  if (chooseConvAlgorithm('forward', problem) === 'direct') {
    if (bias !== undefined) checkBias(op, bias, cOut);
    const out = bind('convDirect', bias === undefined ? [x, w] : [x, w, bias], attrs);
    return squeezeBatch ? squeeze(out, 0) : out;
  }

  let cols: Tensor, wmat: Tensor;
  if (channelsLastPatches(problem)) {
    // The patch matrix [1, N·L, K·C], K ordered (*k, c) (see channelsLastPatches): the input
    // copied to [N, *spatial, C] and unfolded with its last spatial axis and the channels merged.
    const spatialAxes = outSpatial.map((_, i) => 2 + i);
    const last = channelsLastGeometry(x.shape, attrs);
    cols = bind('im2col', [reshape(contiguous(permute(x, [0, ...spatialAxes, 1])), last.shape)], last.attrs);
    // Weight: [C_out, C, *k] → [C_out, *k, C] → [1, C_out, K·C] → [1, K·C, C_out].
    wmat = permute(reshape(permute(w, [0, ...spatialAxes, 1]), [1, cOut, -1]), [0, 2, 1]);
  } else {
    // im2col: the patch matrix [g, N·L, C/g·K], zero padding included (one pass, no padded copy).
    cols = bind('im2col', [x], { kernel, stride, dilation, pads, groups });
    // Weight: [C_out, C/g, *k] → [g, C_out/g, C/g·K] → [g, C/g·K, C_out/g].
    wmat = permute(reshape(w, [groups, cOut / groups, -1]), [0, 2, 1]);
  }
  const y = matmul(cols, wmat); // [g, N·L, C_out/g]
  // [g, N, *out, C_out/g] → [N, g, C_out/g, *out] → [N, C_out, *out].
  const yr = reshape(y, [groups, n, ...outSpatial, cOut / groups]);
  const out = reshape(permute(yr, [1, 0, dims + 2, ...outSpatial.map((_, i) => 2 + i)]), [n, cOut, ...outSpatial]);
  const withBias = addBias(op, out, bias, cOut, dims);
  return squeezeBatch ? squeeze(withBias, 0) : withBias;
}

function convPads(op: string, padding: SpatialArg | 'valid' | 'same', kernel: readonly number[], stride: readonly number[], dilation: readonly number[]): [number, number][] {
  const dims = kernel.length;
  if (padding === 'valid') return kernel.map(() => [0, 0]);
  if (padding === 'same') {
    check(stride.every((s) => s === 1), op, () => `padding='same' needs stride 1, got stride ${JSON.stringify(stride)}; give explicit padding instead.`);
    // Like PyTorch: the total padding dilation·(k-1) is split with the extra element on the right.
    return kernel.map((k, i) => {
      const total = dilation[i]! * (k - 1);
      return [Math.floor(total / 2), total - Math.floor(total / 2)];
    });
  }
  return spatialTuple(op, 'padding', padding, dims, 0).map((p) => [p, p]);
}

/** 1-D convolution: x [N, C_in, L], weight [C_out, C_in/groups, k]. */
export const conv1d = (x: Tensor, weight: Tensor, opts: ConvOptions = {}): Tensor => convNd('conv1d', 1, x, weight, opts);
/** 2-D convolution: x [N, C_in, H, W], weight [C_out, C_in/groups, kH, kW]. */
export const conv2d = (x: Tensor, weight: Tensor, opts: ConvOptions = {}): Tensor => convNd('conv2d', 2, x, weight, opts);
/** 3-D convolution: x [N, C_in, D, H, W], weight [C_out, C_in/groups, kD, kH, kW]. */
export const conv3d = (x: Tensor, weight: Tensor, opts: ConvOptions = {}): Tensor => convNd('conv3d', 3, x, weight, opts);

/**
 * N-d transposed convolution (the gradient of convNd w.r.t. its input), like
 * torch.nn.functional.conv_transposeNd: x [N, C_in, *spatial], weight [C_in, C_out/groups, *kernel].
 * Output size per axis: (L-1)·stride − 2·padding + dilation·(k−1) + outputPadding + 1.
 */
export function convTransposeNd(op: string, dims: number, input: Tensor, weight: Tensor, opts: ConvTransposeOptions = {}): Tensor {
  const [x0, squeezeBatch] = batched(op, input, dims, 'input');
  const [x, w, bias] = autocastOperands('convTranspose', floatOperands(op, x0, weight, opts.bias));
  const groups = opts.groups ?? 1;
  check(w.rank === dims + 2, op, () => `weight must be [C_in, C_out/groups, ${['k', 'kH, kW', 'kD, kH, kW'][dims - 1]}], got shape ${fmtShape(w.shape)}.`);
  const [n, cIn] = [x.shape[0]!, x.shape[1]!];
  const cOutPerGroup = w.shape[1]!;
  check(Number.isInteger(groups) && groups >= 1 && cIn % groups === 0, op, () =>
    `groups=${groups} must be a positive integer dividing the input channels (${cIn}).`);
  check(w.shape[0] === cIn, op, () => `weight ${fmtShape(w.shape)} expects ${w.shape[0]} input channels, but the input ${fmtShape(x.shape)} has ${cIn}.`);
  const cOut = cOutPerGroup * groups;
  const kernel = w.shape.slice(2);
  const stride = spatialTuple(op, 'stride', opts.stride ?? 1, dims, 1);
  const dilation = spatialTuple(op, 'dilation', opts.dilation ?? 1, dims, 1);
  const padding = spatialTuple(op, 'padding', opts.padding ?? 0, dims, 0);
  const outputPadding = spatialTuple(op, 'outputPadding', opts.outputPadding ?? 0, dims, 0);
  outputPadding.forEach((p, i) => check(p < stride[i]! || p < dilation[i]!, op, () =>
    `outputPadding ${p} on spatial axis ${i} must be smaller than the stride (${stride[i]}) or the dilation (${dilation[i]}).`));
  const inSpatial = x.shape.slice(2);
  // The full (padded) output the columns fold into, before the padding is cut off.
  const full = inSpatial.map((l, i) => (l - 1) * stride[i]! + dilation[i]! * (kernel[i]! - 1) + 1 + outputPadding[i]!);
  full.forEach((f, i) => check(f - 2 * padding[i]! > 0, op, () =>
    `the output would have size ${f - 2 * padding[i]!} on spatial axis ${i} (input ${inSpatial[i]}, stride ${stride[i]}, padding ${padding[i]}, kernel ${kernel[i]}); reduce the padding.`));

  // [N, C_in, *in] → [N, g, C_in/g, *in] → [g, N, *in, C_in/g] → [g, N·L, C_in/g].
  const xg = reshape(x, [n, groups, cIn / groups, ...inSpatial]);
  const inAxes = inSpatial.map((_, i) => 3 + i);
  const xmat = reshape(permute(xg, [1, 0, ...inAxes, 2]), [groups, -1, cIn / groups]);
  // Weight [C_in, C_out/g, *k] → [g, C_in/g, C_out/g·K].
  const wmat = reshape(w, [groups, cIn / groups, -1]);
  const cols = matmul(xmat, wmat); // [g, N·L, C_out/g·K]
  if (outputPadding.every((p, i) => p < stride[i]!)) {
    // The patches of the output, padded as the convolution this inverts, are exactly one per input
    // position: fold them back with col2im, which drops what falls into the padding.
    const outSize = full.map((f, i) => f - 2 * padding[i]!);
    const pads = padding.map((p): [number, number] => [p, p]);
    const folded = bind('col2im', [cols], { kernel, stride, dilation, pads, groups, inputShape: [n, cOut, ...outSize] });
    const out = addBias(op, folded, bias, cOut, dims);
    return squeezeBatch ? squeeze(out, 0) : out;
  }
  // An outputPadding of at least the stride (allowed below the dilation) adds windows on the right
  // that col2im's geometry has no room for: fold the windows axis by axis instead.
  // [g, N, *in, C_out/g, *k] → [N, g, C_out/g, *in, *k] → [N, C_out, *in, *k].
  const colsR = reshape(cols, [groups, n, ...inSpatial, cOutPerGroup, ...kernel]);
  const kAxes = kernel.map((_, i) => 3 + dims + i);
  const colsP = reshape(permute(colsR, [1, 0, 2 + dims, ...inSpatial.map((_, i) => 2 + i), ...kAxes]), [n, cOut, ...inSpatial, ...kernel]);
  const folded = foldWindows(colsP, full, { kernel, stride, dilation, pads: kernel.map(() => [0, 0]) });
  const specs: SliceSpec[] = [null, null, ...padding.map((p, i): SliceSpec => [p, full[i]! - p])];
  const out = addBias(op, at(folded, ...specs), bias, cOut, dims);
  return squeezeBatch ? squeeze(out, 0) : out;
}

/** 1-D transposed convolution: x [N, C_in, L], weight [C_in, C_out/groups, k]. */
export const convTranspose1d = (x: Tensor, weight: Tensor, opts: ConvTransposeOptions = {}): Tensor => convTransposeNd('convTranspose1d', 1, x, weight, opts);
/** 2-D transposed convolution: x [N, C_in, H, W], weight [C_in, C_out/groups, kH, kW]. */
export const convTranspose2d = (x: Tensor, weight: Tensor, opts: ConvTransposeOptions = {}): Tensor => convTransposeNd('convTranspose2d', 2, x, weight, opts);
/** 3-D transposed convolution: x [N, C_in, D, H, W], weight [C_in, C_out/groups, kD, kH, kW]. */
export const convTranspose3d = (x: Tensor, weight: Tensor, opts: ConvTransposeOptions = {}): Tensor => convTransposeNd('convTranspose3d', 3, x, weight, opts);

// ---- Gradients of the direct primitives (used by autodiff/vjp-rules.ts and jvp-rules.ts) ----

const patchAttrsOf = ({ kernel, stride, dilation, pads, groups }: PatchAttrs): PatchAttrs => ({ kernel, stride, dilation, pads, groups });

/**
 * The gradient w.r.t. the input x (of `inputShape`) of conv(x, w) for the output cotangent
 * g [N, C_out, *out]: per group, g as [N·L, C_out/g] times w as [C_out/g, C/g·K] gives the
 * patch-matrix cotangent, which col2im folds back (the same GEMM + col2im as the im2col path's).
 */
export function convInputGradient(g: Tensor, w: Tensor, attrs: PatchAttrs, inputShape: readonly number[]): Tensor {
  const [n, cOut] = [g.shape[0]!, g.shape[1]!];
  const groups = attrs.groups, og = cOut / groups;
  const l = g.shape.slice(2).reduce((a, b) => a * b, 1);
  // [N, C_out, *out] → [N, g, og, L] → [g, N, L, og] → [g, N·L, og]
  const gmat = reshape(permute(reshape(g, [n, groups, og, l]), [1, 0, 3, 2]), [groups, n * l, og]);
  const cols = matmul(gmat, reshape(w, [groups, og, -1]));
  return bind('col2im', [cols], { ...patchAttrsOf(attrs), inputShape: [...inputShape] });
}

/**
 * The gradient w.r.t. the weight of conv(x, w) for the output cotangent g: the convWeightGrad
 * primitive, or im2col + GEMM ([g, C_out/g, N·L] @ patches [g, N·L, C/g·K]), as chosen for the shape.
 */
export function convWeightGradient(x: Tensor, g: Tensor, attrs: PatchAttrs): Tensor {
  const [n, cIn] = [x.shape[0]!, x.shape[1]!];
  const cOut = g.shape[1]!, groups = attrs.groups, og = cOut / groups;
  const a = patchAttrsOf(attrs);
  const problem = { backend: x.storage.backend, dtype: x.dtype, inputShape: x.shape, outChannels: cOut, bias: false, attrs: a };
  if (chooseConvAlgorithm('weightGrad', problem) === 'direct') return bind('convWeightGrad', [x, g], a);
  const l = g.shape.slice(2).reduce((p, q) => p * q, 1);
  const cols = bind('im2col', [x], a);
  // [N, C_out, *out] → [N, g, og, L] → [g, og, N, L] → [g, og, N·L]
  const gmat = reshape(permute(reshape(g, [n, groups, og, l]), [1, 2, 0, 3]), [groups, og, n * l]);
  return reshape(matmul(gmat, cols), [cOut, cIn / groups, ...attrs.kernel]);
}

/** The bias of a convolution broadcast to its output (for tangents). */
function biasAsOutput(b: Tensor, out: Tensor): Tensor {
  return expand(reshape(b, [1, b.shape[0]!, ...new Array<number>(out.rank - 2).fill(1)]), [...out.shape]);
}

/** convDirect's vjp: input gradient by GEMM + col2im, weight gradient as chosen, bias gradient a sum. */
export function convDirectVjp(g: Tensor, [x, w, b]: readonly Tensor[], attrs: PatchAttrs, needsGrad: readonly boolean[]): (Tensor | undefined)[] {
  const dx = needsGrad[0] === false ? undefined : convInputGradient(g, w!, attrs, x!.shape);
  const dw = needsGrad[1] === false ? undefined : convWeightGradient(x!, g, attrs);
  const db = b === undefined || needsGrad[2] === false ? undefined : sum(g, [0, ...g.shape.slice(2).map((_, i) => i + 2)]);
  return [dx, dw, db];
}

/**
 * convWeightGrad(x, g) is bilinear: for a cotangent gw of the weight gradient, x receives the input
 * gradient of a convolution with weight gw for output cotangent g, and g receives conv(x, gw).
 */
export function convWeightGradVjp(gw: Tensor, [x, g]: readonly Tensor[], attrs: PatchAttrs, needsGrad: readonly boolean[]): (Tensor | undefined)[] {
  const a = patchAttrsOf(attrs);
  const dx = needsGrad[0] === false ? undefined : convInputGradient(g!, gw, a, x!.shape);
  const dg = needsGrad[1] === false ? undefined : bind('convDirect', [x!, gw], a);
  return [dx, dg];
}

/** convDirect is linear in each input: the tangent is the sum of the convolutions with one tangent each. */
export function convDirectJvp([tx, tw, tb]: readonly (Tensor | undefined)[], [x, w]: readonly Tensor[], out: Tensor, attrs: PatchAttrs): Tensor | undefined {
  const a = patchAttrsOf(attrs);
  const terms = [
    tx === undefined ? undefined : bind('convDirect', [tx, w!], a),
    tw === undefined ? undefined : bind('convDirect', [x!, tw], a),
    tb === undefined ? undefined : biasAsOutput(tb, out),
  ].filter((t): t is Tensor => t !== undefined);
  return terms.length === 0 ? undefined : terms.reduce((acc, t) => add(acc, t));
}

/** convWeightGrad is bilinear in (x, g). */
export function convWeightGradJvp([tx, tg]: readonly (Tensor | undefined)[], [x, g]: readonly Tensor[], attrs: PatchAttrs): Tensor | undefined {
  const a = patchAttrsOf(attrs);
  const terms = [
    tx === undefined ? undefined : bind('convWeightGrad', [tx, g!], a),
    tg === undefined ? undefined : bind('convWeightGrad', [x!, tg], a),
  ].filter((t): t is Tensor => t !== undefined);
  return terms.length === 0 ? undefined : terms.reduce((acc, t) => add(acc, t));
}
