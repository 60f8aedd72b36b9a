// ONNX neural-network operators: convolution (Conv, ConvTranspose) and pooling (MaxPool, AveragePool,
// LpPool, their Global forms, MaxUnpool), over tessera's conv and pool ops. Resampling (Resize,
// Upsample, GridSample, RoiAlign) is in resample.ts.
//
// ONNX gives pads per spatial axis as [x1_begin, x2_begin, ..., x1_end, x2_end, ...], possibly
// asymmetric, or derives them from auto_pad; tessera's ops take one symmetric padding per axis, so
// asymmetric pads are applied with an explicit pad first (zeros for Conv and AveragePool, -inf for
// MaxPool). ceil_mode's extra windows read an extra right padding that never counts in an average.

import type { Tensor } from '../../core/tensor.js';
import type { DType } from '../../core/dtype.js';
import { isFloating } from '../../core/dtype.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';
import { windowAverage, windowSums } from '../../ops/nn/pool.js';
import type { WindowGeometry } from '../../ops/nn/window.js';

type Pads = [number, number][];

// ---- shared helpers --------------------------------------------------------------------------

/** A per-spatial-axis int list attribute (strides, dilations, ...), `fallback` on every axis when absent. */
function spatialAttr(ctx: NodeContext, name: string, dims: number, fallback: number): number[] {
  const v = ctx.intList(name) ?? new Array<number>(dims).fill(fallback);
  if (v.length !== dims) ctx.fail(`attribute '${name}' needs ${dims} value(s), one per spatial axis, got [${v.join(', ')}]`);
  return v;
}

/** Checks that x is [N, C, *spatial] with 1 to 3 spatial axes (what tessera's conv and pool ops cover); returns the count. */
function spatialDims(ctx: NodeContext, x: Tensor): number {
  const dims = x.rank - 2;
  if (dims < 1 || dims > 3) ctx.fail(`input X must be [N, C, D1, ...] with 1 to 3 spatial axes, got shape [${x.shape.join(', ')}]`);
  return dims;
}

/**
 * Begin/end pads per spatial axis of a window sweep (Conv and the pools): auto_pad SAME_UPPER /
 * SAME_LOWER pad so that the output size is ceil(in / stride) (the odd element at the end for
 * SAME_UPPER, at the beginning for SAME_LOWER), VALID pads nothing, NOTSET reads `pads`.
 */
function windowPads(ctx: NodeContext, spatial: readonly number[], kernel: readonly number[], strides: readonly number[], dilations: readonly number[]): Pads {
  const dims = spatial.length;
  const autoPad = ctx.string('auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') {
    const p = ctx.intList('pads') ?? new Array<number>(2 * dims).fill(0);
    if (p.length !== 2 * dims || p.some((v) => v < 0)) ctx.fail(`attribute 'pads' needs ${2 * dims} non-negative values (the begins, then the ends), got [${p.join(', ')}]`);
    return spatial.map((_, i) => [p[i]!, p[dims + i]!]);
  }
  if (autoPad === 'VALID') return spatial.map(() => [0, 0]);
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER') ctx.fail(`auto_pad '${autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`);
  return spatial.map((n, i) => {
    const out = Math.ceil(n / strides[i]!);
    const total = Math.max(0, (out - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - n);
    const half = Math.floor(total / 2);
    return autoPad === 'SAME_UPPER' ? [half, total - half] : [total - half, half];
  });
}

/** Pads (or, with negative amounts, crops) the spatial axes of [N, C, *spatial] by `pads`, filling with `value`. */
function padSpatial(x: Tensor, pads: Pads, value: number): Tensor {
  if (pads.every(([b, e]) => b === 0 && e === 0)) return x;
  // ops.pad lists [before, after] pairs from the last axis backwards.
  const flat = [...pads].reverse().flatMap(([b, e]) => [b, e]);
  return ops.pad(x, flat, 'constant', value);
}

/** One symmetric padding per axis for tessera's ops: the pads themselves, or 0 after an explicit pad of x. */
function symmetricPadding(x: Tensor, pads: Pads, value: number): [Tensor, number[]] {
  if (pads.every(([b, e]) => b === e)) return [x, pads.map(([b]) => b)];
  return [padSpatial(x, pads, value), pads.map(() => 0)];
}

/** Fails unless input i is a floating tensor (the T of Conv, AveragePool, ...). */
export function floatInput(ctx: NodeContext, i: number): Tensor {
  const x = ctx.tensor(i);
  if (!isFloating(x.dtype)) ctx.fail(`input ${i} must be a float tensor (FLOAT, DOUBLE, FLOAT16, BFLOAT16), got ${ctx.typeName(ctx.typeOf(i))}`);
  return x;
}

/** Whether output i of the node is wanted (listed with a name). */
function wantsOutput(ctx: NodeContext, i: number): boolean {
  const name = ctx.node.outputs[i];
  return name !== undefined && name !== '';
}

/** A host array as a tensor of `dtype` on like's backend. */
export function constant(values: Float64Array | Int32Array, shape: readonly number[], dtype: DType, like: Tensor): Tensor {
  return ops.tensor(values, { dtype, shape: [...shape], backend: like.backend });
}

/** A float result clamped into an integer dtype's range and cast (truncated) to it, as onnxruntime's Resize on integer images. */
export function toIntegerDType(y: Tensor, dtype: DType): Tensor {
  const range: Partial<Record<DType, [number, number]>> = { uint8: [0, 255], int8: [-128, 127], int32: [-(2 ** 31), 2 ** 31 - 1] };
  const [lo, hi] = range[dtype] ?? [-Infinity, Infinity];
  return ops.cast(ops.clamp(y, lo, hi), dtype);
}

// ---- convolution -----------------------------------------------------------------------------

/**
 * What Conv and ConvTranspose share: the float input X, the weight W (whose layout, named in
 * messages, is `weightLayout`), the spatial rank, the kernel (checked against the optional
 * kernel_shape attribute), strides and dilations.
 */
function convOperands(ctx: NodeContext, weightLayout: string): { x: Tensor; w: Tensor; dims: number; kernel: number[]; strides: number[]; dilations: number[] } {
  const x = floatInput(ctx, 0), w = ctx.tensor(1);
  const dims = spatialDims(ctx, x);
  if (w.rank !== dims + 2) ctx.fail(`weight W must be [${weightLayout}, ${dims} kernel axes], got shape [${w.shape.join(', ')}]`);
  const kernel = w.shape.slice(2);
  const k = ctx.intList('kernel_shape');
  if (k !== undefined && (k.length !== kernel.length || k.some((v, i) => v !== kernel[i]))) {
    ctx.fail(`kernel_shape [${k.join(', ')}] does not match the weight's spatial shape [${kernel.join(', ')}]`);
  }
  return { x, w, dims, kernel, strides: spatialAttr(ctx, 'strides', dims, 1), dilations: spatialAttr(ctx, 'dilations', dims, 1) };
}

// Conv: cross-correlation of X [N, C, *spatial] with W [M, C/group, *kernel] plus an optional bias B
// [M]; kernel_shape, when given, must match W. Asymmetric pads are applied to X first.
registerOnnxOp('Conv', (ctx: NodeContext) => {
  const { x, w, dims, kernel, strides, dilations } = convOperands(ctx, 'M, C/group');
  const pads = windowPads(ctx, x.shape.slice(2), kernel, strides, dilations);
  const [input, padding] = symmetricPadding(x, pads, 0);
  return [ops.convNd('Conv', dims, input, w, { bias: ctx.optionalTensor(2), stride: strides, dilation: dilations, padding, groups: ctx.int('group', 1) })];
});

// ConvTranspose: the adjoint of Conv, X [N, C, *spatial], W [C, M/group, *kernel]. The unpadded
// output has (in − 1)·stride + (k − 1)·dilation + 1 + output_padding entries per axis (the last
// output_padding ones receive no window); pads are cut off its two ends. With output_shape (or
// auto_pad SAME_*, whose output is in·stride) the pads are derived as the spec says:
// total = unpadded − output_shape, split floor(total/2) at the beginning for SAME_UPPER and at the
// end otherwise; a negative total extends the output with zeros (before the bias). (onnxruntime
// instead clamps a negative SAME_* total to 0, giving a smaller output than in·stride.)
registerOnnxOp('ConvTranspose', (ctx: NodeContext) => {
  const { x, w, dims, kernel, strides, dilations } = convOperands(ctx, 'C, M/group');
  const outputPadding = spatialAttr(ctx, 'output_padding', dims, 0);
  const group = ctx.int('group', 1);
  const inSpatial = x.shape.slice(2);
  const unpadded = inSpatial.map((n, i) => (n - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 + outputPadding[i]!);
  const autoPad = ctx.string('auto_pad', 'NOTSET');
  let outputShape = ctx.intList('output_shape');
  if (outputShape === undefined && (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER')) outputShape = inSpatial.map((n, i) => n * strides[i]!);
  let pads: Pads;
  if (outputShape !== undefined) {
    // output_shape holds the spatial sizes (some exporters write the whole shape: keep its tail).
    const target = outputShape.slice(-dims);
    if (target.length !== dims) ctx.fail(`output_shape [${outputShape.join(', ')}] needs ${dims} spatial sizes`);
    pads = unpadded.map((u, i) => {
      const total = u - target[i]!;
      const half = Math.floor(total / 2);
      return autoPad === 'SAME_UPPER' ? [half, total - half] : [total - half, half];
    });
  } else if (autoPad === 'VALID' || autoPad === 'NOTSET') {
    pads = windowPads(ctx, inSpatial, kernel, strides, dilations);
  } else {
    ctx.fail(`auto_pad '${autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`);
  }
  pads.forEach(([b, e], i) => {
    if (unpadded[i]! - b - e < 1) ctx.fail(`pads [${b}, ${e}] leave no output on spatial axis ${i} (unpadded size ${unpadded[i]})`);
  });
  const y = ops.convTransposeNd('ConvTranspose', dims, x, w, { stride: strides, dilation: dilations, groups: group });
  // y lacks the output_padding entries at the end: the pad below adds them (as zeros) and cuts the pads.
  const out = padSpatial(y, pads.map(([b, e], i): [number, number] => [-b, outputPadding[i]! - e]), 0);
  const b = ctx.optionalTensor(2);
  if (b === undefined) return [out];
  if (b.rank !== 1 || b.shape[0] !== out.shape[1]) ctx.fail(`bias B must have shape [${out.shape[1]}], got [${b.shape.join(', ')}]`);
  return [ops.add(out, ops.reshape(b, [out.shape[1]!, ...new Array<number>(dims).fill(1)]))];
});

// ---- pooling ---------------------------------------------------------------------------------

interface PoolWindow {
  dims: number;
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** The pads of the attributes (or auto_pad). */
  pads: Pads;
  /** pads plus, with ceil_mode, the extra right padding the last windows read. */
  padsWithCeil: Pads;
  /** The output's spatial sizes. */
  out: number[];
}

/**
 * The window of a pooling node: kernel_shape (required), strides, dilations (where the op has
 * them), pads/auto_pad and ceil_mode. Output size per axis: floor or, with ceil_mode, ceil of
 * (in + pads − ((k − 1)·d + 1)) / stride, + 1; a last ceil-mode window that would start in the
 * end padding is dropped (as PyTorch and onnxruntime do).
 */
function poolWindow(ctx: NodeContext, x: Tensor, hasDilations: boolean): PoolWindow {
  const kernel = ctx.intList('kernel_shape');
  if (kernel === undefined) ctx.fail("the required attribute 'kernel_shape' is missing");
  const dims = kernel.length;
  if (x.rank !== dims + 2) ctx.fail(`kernel_shape [${kernel.join(', ')}] needs an input of rank ${dims + 2}, got shape [${x.shape.join(', ')}]`);
  spatialDims(ctx, x);
  const strides = spatialAttr(ctx, 'strides', dims, 1);
  const dilations = hasDilations ? spatialAttr(ctx, 'dilations', dims, 1) : new Array<number>(dims).fill(1);
  const spatial = x.shape.slice(2);
  const pads = windowPads(ctx, spatial, kernel, strides, dilations);
  const ceil = ctx.int('ceil_mode', 0) === 1;
  const out: number[] = [];
  const padsWithCeil = spatial.map((n, i): [number, number] => {
    const [b, e] = pads[i]!;
    const span = (kernel[i]! - 1) * dilations[i]! + 1, s = strides[i]!;
    if (n + b + e < span) ctx.fail(`spatial axis ${i} has size ${n} (${n + b + e} padded), smaller than the window's span ${span}`);
    let o = (ceil ? Math.ceil((n + b + e - span) / s) : Math.floor((n + b + e - span) / s)) + 1;
    if (ceil && (o - 1) * s >= n + b) o--;
    out.push(o);
    return [b, e + Math.max(0, (o - 1) * s + span - (n + b + e))];
  });
  return { dims, kernel, strides, dilations, pads, padsWithCeil, out };
}

/** Runs a float-only pooling computation on an int8/uint8 input through float32 (values stay exact). */
function viaFloat(ctx: NodeContext, x: Tensor, f: (xf: Tensor) => Tensor): Tensor {
  if (isFloating(x.dtype)) return f(x);
  if (x.dtype !== 'int8' && x.dtype !== 'uint8') ctx.fail(`input X must be a float, INT8 or UINT8 tensor, got ${ctx.typeName(ctx.typeOf(0))}`);
  return ops.cast(f(ops.cast(x, 'float32')), x.dtype);
}

/**
 * The ONNX Indices of MaxPool: for each output, the flat index into X (N and C included) of the
 * window's first maximum; with storage_order 1 the spatial part is column-major. `index` is
 * tessera's maxPoolIndices result: flat spatial indices into the padded input.
 */
function maxPoolOnnxIndices(ctx: NodeContext, x: Tensor, g: PoolWindow, index: Tensor): Tensor {
  const spatial = x.shape.slice(2);
  const padded = spatial.map((n, i) => n + g.padsWithCeil[i]![0] + g.padsWithCeil[i]![1]);
  const columnMajor = ctx.int('storage_order', 0) === 1;
  // The unpadded spatial offset of every padded position (padding maps to 0: never a maximum).
  const strides = spatial.map(() => 1);
  if (columnMajor) for (let i = 1; i < spatial.length; i++) strides[i] = strides[i - 1]! * spatial[i - 1]!;
  else for (let i = spatial.length - 2; i >= 0; i--) strides[i] = strides[i + 1]! * spatial[i + 1]!;
  const total = padded.reduce((a, b) => a * b, 1);
  const map = new Int32Array(total);
  for (let p = 0; p < total; p++) {
    let rest = p, offset = 0;
    for (let i = spatial.length - 1; i >= 0; i--) {
      const c = (rest % padded[i]!) - g.padsWithCeil[i]![0];
      rest = Math.floor(rest / padded[i]!);
      offset += Math.min(Math.max(c, 0), spatial[i]! - 1) * strides[i]!;
    }
    map[p] = offset;
  }
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const size = spatial.reduce((a, b) => a * b, 1);
  const offsets = ops.gather(ops.expand(constant(map, [1, 1, total], 'int32', x), [n, c, total]), 2, ops.reshape(index, [n, c, -1]));
  const base = ops.reshape(ops.mul(ops.arange(0, n * c, 1, { dtype: 'int32', backend: x.backend }), size), [n, c, 1]);
  return ops.reshape(ops.add(offsets, base), [n, c, ...g.out]);
}

// MaxPool (opset 1-12+): the maximum of each window, with -inf padding; kernel_shape, strides,
// dilations, pads/auto_pad, ceil_mode. INT8/UINT8 inputs run through float32. The optional second
// output Indices (INT64) holds each maximum's flat index into X (see maxPoolOnnxIndices).
registerOnnxOp('MaxPool', (ctx: NodeContext) => {
  const x = ctx.tensor(0);
  const g = poolWindow(ctx, x, true);
  let index: Tensor | undefined;
  const values = viaFloat(ctx, x, (xf) => {
    const padded = padSpatial(xf, g.padsWithCeil, -Infinity);
    index = ops.bind('maxPoolIndices', [padded], { kernel: g.kernel, stride: g.strides, dilation: g.dilations });
    const [n, c] = [x.shape[0]!, x.shape[1]!];
    const picked = ops.gather(ops.reshape(padded, [n, c, -1]), 2, ops.reshape(index, [n, c, -1]));
    return ops.reshape(picked, [n, c, ...g.out]);
  });
  if (!wantsOutput(ctx, 1)) return [values];
  return [values, ctx.output(maxPoolOnnxIndices(ctx, x, g, index!), ElemType.INT64)];
});

/** The pooling geometry tessera's window ops take: the windows read the pads and ceil-mode extra. */
function windowGeometry(g: PoolWindow): WindowGeometry {
  return { kernel: g.kernel, stride: g.strides, dilation: g.dilations, pads: g.padsWithCeil };
}

/**
 * Average pooling (tessera's windowAverage, which takes dilations, AveragePool 19): the pads count
 * in the divisor when countPad, the ceil-mode extra never.
 */
function averagePool(x: Tensor, g: PoolWindow, countPad: boolean): Tensor {
  return windowAverage(x, windowGeometry(g), countPad ? g.pads : g.pads.map((): [number, number] => [0, 0]));
}

// AveragePool: the mean of each window; count_include_pad (default 0) says whether the pads count
// in the divisor; the extra ceil_mode padding never does. dilations from opset 19.
registerOnnxOp('AveragePool', (ctx: NodeContext) => {
  const x = floatInput(ctx, 0);
  const g = poolWindow(ctx, x, true);
  return [averagePool(x, g, ctx.int('count_include_pad', 0) === 1)];
});

// LpPool: (Σ |x|^p)^(1/p) over each window, zero padding; p is a float attribute in opset 1 and an
// int from opset 2 (default 2); dilations and ceil_mode from opset 18.
registerOnnxOp('LpPool', (ctx: NodeContext) => {
  const x = floatInput(ctx, 0);
  const g = poolWindow(ctx, x, true);
  const p = ctx.opset < 2 ? ctx.float('p', 2) : ctx.int('p', 2);
  if (!(p > 0)) ctx.fail(`p must be positive, got ${p}`);
  const powered = p === 2 ? ops.square(x) : p === 1 ? ops.abs(x) : ops.pow(ops.abs(x), p);
  const sums = windowSums(powered, windowGeometry(g));
  return [p === 2 ? ops.sqrt(sums) : p === 1 ? sums : ops.pow(sums, 1 / p)];
});

const spatialAxes = (x: Tensor): number[] => x.shape.slice(2).map((_, i) => i + 2);

// GlobalAveragePool / GlobalMaxPool: the mean / maximum over every spatial axis, kept as size 1.
registerOnnxOp('GlobalAveragePool', (ctx: NodeContext) => {
  const x = floatInput(ctx, 0);
  return [x.rank <= 2 ? x : ops.mean(x, spatialAxes(x), true)];
});
registerOnnxOp('GlobalMaxPool', (ctx: NodeContext) => {
  const x = floatInput(ctx, 0);
  return [x.rank <= 2 ? x : ops.max(x, spatialAxes(x), true)];
});

// MaxUnpool: scatters X into zeros at the flat positions of Indices (MaxPool's second output) in
// the inferred shape, (in − 1)·stride + kernel − pads per spatial axis; an output_shape input
// extends that with zeros at the end of each axis (as ONNX's reference does). Duplicate indices add up.
registerOnnxOp('MaxUnpool', (ctx: NodeContext) => {
  const x = ctx.tensor(0), indices = ctx.tensor(1);
  const kernel = ctx.intList('kernel_shape');
  if (kernel === undefined) ctx.fail("the required attribute 'kernel_shape' is missing");
  const dims = kernel.length;
  if (x.rank !== dims + 2) ctx.fail(`kernel_shape [${kernel.join(', ')}] needs an input of rank ${dims + 2}, got shape [${x.shape.join(', ')}]`);
  if (indices.shape.length !== x.rank || indices.shape.some((d, i) => d !== x.shape[i])) {
    ctx.fail(`I must have X's shape [${x.shape.join(', ')}], got [${indices.shape.join(', ')}]`);
  }
  const strides = spatialAttr(ctx, 'strides', dims, 1);
  const p = ctx.intList('pads') ?? new Array<number>(2 * dims).fill(0);
  if (p.length !== 2 * dims) ctx.fail(`attribute 'pads' needs ${2 * dims} values, got [${p.join(', ')}]`);
  const inferred = [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map((n, i) => (n - 1) * strides[i]! + kernel[i]! - p[i]! - p[dims + i]!)];
  const shape = ctx.optionalInts(2) ?? inferred;
  if (shape.length !== x.rank || shape.some((d, i) => d < inferred[i]!)) {
    ctx.fail(`output_shape [${shape.join(', ')}] must have rank ${x.rank} and be at least the inferred shape [${inferred.join(', ')}]`);
  }
  const zeros = ops.zeros([inferred.reduce((a, b) => a * b, 1)], { dtype: x.dtype, backend: x.backend });
  const y = ops.reshape(ops.scatterAdd(zeros, 0, ops.reshape(indices, [-1]), ops.reshape(x, [-1])), inferred);
  return [shape.every((d, i) => d === inferred[i]) ? y : ops.pad(y, [...shape].reverse().flatMap((d, i) => [0, d - inferred[x.rank - 1 - i]!]))];
});
