// ONNX shape and layout operators: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
// Concat, Split, Slice, Expand, Tile, Pad, Identity, Dropout (inference), DepthToSpace,
// SpaceToDepth, Trilu, CenterCropPad.
//
// Shape-like parameters (target shapes, axes, pads, repeats, slice bounds) are read to the host;
// the data moves through tessera ops (views where tessera can, copies otherwise), so results run
// on every backend and stay differentiable.

import { isFloating } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';
import type { OnnxTensor } from '../value.js';

// ---- helpers shared with indexing.ts and creation.ts -------------------------------------------

/** An axis in [-rank, rank) made non-negative; fails naming the attribute otherwise. */
export function normAxis(ctx: NodeContext, axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) ctx.fail(`${what} ${axis} is out of range for rank ${rank} (valid: [${-rank}, ${rank - 1}])`);
  return axis < 0 ? axis + rank : axis;
}

/** Distinct non-negative axes from a list that may hold negative ones. */
export function normAxes(ctx: NodeContext, axes: readonly number[], rank: number, what = 'axes'): number[] {
  const out = axes.map((a) => normAxis(ctx, a, rank, what));
  if (new Set(out).size !== out.length) ctx.fail(`${what} ${JSON.stringify(axes)} name an axis twice`);
  return out;
}

/** An INT64 tensor (stored as int32) of the given values and shape. */
export function int64Tensor(ctx: NodeContext, values: readonly number[], shape: readonly number[], backend: string): OnnxTensor {
  return ctx.output(ops.tensor(Int32Array.from(values), { dtype: 'int32', shape: [...shape], backend }), ElemType.INT64);
}

/** A result that keeps the ONNX type of input 0 (the data input of a layout or indexing op). */
export function sameType(ctx: NodeContext, t: Tensor): OnnxTensor {
  return ctx.output(t, ctx.typeOf(0));
}

/** Axes given as an attribute before `inputSince` and as input `index` from then on; undefined when absent. */
function axesParam(ctx: NodeContext, inputSince: number, index = 1, attr = 'axes'): number[] | undefined {
  return ctx.opset >= inputSince ? ctx.optionalInts(index) : ctx.intList(attr);
}

/** The element count of a shape. */
export const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

// ---- shape queries -----------------------------------------------------------------------------

// Shape: the input's dimensions as INT64; from opset 15 the slice [start, end) of them, both
// clamped into [0, rank] after negative values count from the end.
registerOnnxOp('Shape', (ctx) => {
  const x = ctx.tensor(0);
  const r = x.rank;
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  const start = clamp(ctx.int('start', 0));
  const end = Math.max(start, clamp(ctx.int('end', r)));
  const dims = x.shape.slice(start, end);
  return [int64Tensor(ctx, dims, [dims.length], x.backend)];
});

// Size: the element count as an INT64 scalar.
registerOnnxOp('Size', (ctx) => {
  const x = ctx.tensor(0);
  return [int64Tensor(ctx, [x.size], [], x.backend)];
});

// ---- reshaping -----------------------------------------------------------------------------------

// Reshape: the target shape is the 'shape' attribute before opset 5 and input 1 after. A 0 copies
// the input's dimension at that position unless allowzero (opset 14) is 1, where it means an
// empty dimension; one -1 is inferred from the rest.
registerOnnxOp('Reshape', (ctx) => {
  const x = ctx.tensor(0);
  const shape = (ctx.opset >= 5 ? ctx.ints(1) : ctx.intList('shape')) ?? ctx.fail("the 'shape' attribute is missing");
  const allowZero = ctx.int('allowzero', 0) === 1;
  if (allowZero && shape.includes(0) && shape.includes(-1)) ctx.fail(`with allowzero=1 the shape ${JSON.stringify(shape)} cannot hold both 0 and -1`);
  const target = shape.map((d, i) => {
    if (d !== 0 || allowZero) return d;
    if (i >= x.rank) ctx.fail(`shape ${JSON.stringify(shape)} copies dimension ${i} (a 0), but the input has rank ${x.rank}`);
    return x.shape[i]!;
  });
  return [sameType(ctx, ops.reshape(x, target))];
});

// Flatten: a 2-D result [prod(dims before axis), prod(dims from axis)]; axis in [-rank, rank].
registerOnnxOp('Flatten', (ctx) => {
  const x = ctx.tensor(0);
  const axis = ctx.int('axis', 1);
  if (axis < -x.rank || axis > x.rank) ctx.fail(`axis ${axis} is out of range for rank ${x.rank} (valid: [${-x.rank}, ${x.rank}])`);
  const a = axis < 0 ? axis + x.rank : axis;
  return [sameType(ctx, ops.reshape(x, [product(x.shape.slice(0, a)), product(x.shape.slice(a))]))];
});

// Squeeze: removes the listed size-1 axes (an attribute before opset 13, input 1 after), or every
// size-1 axis when none are listed. Listing an axis that is not 1 is an error, as in ONNX.
registerOnnxOp('Squeeze', (ctx) => {
  const x = ctx.tensor(0);
  const given = axesParam(ctx, 13);
  const drop = given === undefined ? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : normAxes(ctx, given, x.rank);
  for (const a of drop) if (x.shape[a] !== 1) ctx.fail(`cannot squeeze axis ${a} of size ${x.shape[a]} (shape [${x.shape.join(', ')}])`);
  return [sameType(ctx, ops.reshape(x, x.shape.filter((_, i) => !drop.includes(i))))];
});

// Unsqueeze: inserts size-1 axes at the listed positions of the output (an attribute before
// opset 13, input 1 after); negative positions count from the output's end.
registerOnnxOp('Unsqueeze', (ctx) => {
  const x = ctx.tensor(0);
  const given = axesParam(ctx, 13) ?? ctx.fail('the axes are missing');
  const outRank = x.rank + given.length;
  const axes = new Set(normAxes(ctx, given, outRank));
  const dims = [...x.shape];
  const shape = Array.from({ length: outRank }, (_, i) => (axes.has(i) ? 1 : dims.shift()!));
  return [sameType(ctx, ops.reshape(x, shape))];
});

// Transpose: permutes the axes by 'perm' (default: reversed).
registerOnnxOp('Transpose', (ctx) => {
  const x = ctx.tensor(0);
  const perm = ctx.intList('perm', [...x.shape.keys()].reverse());
  if (perm.length !== x.rank) ctx.fail(`perm ${JSON.stringify(perm)} must list ${x.rank} axes`);
  return [sameType(ctx, ops.permute(x, normAxes(ctx, perm, x.rank, 'perm')))];
});

// Concat: joins the inputs along 'axis' (negative from opset 11). Inputs share one type.
registerOnnxOp('Concat', (ctx) => {
  const xs = ctx.tensors();
  if (xs.length === 0) ctx.fail('needs at least one input');
  const first = xs[0]!;
  if (first.rank === 0) ctx.fail('cannot concatenate 0-d tensors');
  const a = normAxis(ctx, ctx.int('axis', 1), first.rank);
  for (const t of xs) {
    if (t.dtype !== first.dtype) ctx.fail(`inputs must share one type, got ${t.dtype} and ${first.dtype}`);
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      ctx.fail(`inputs must match outside axis ${a}, got ${xs.map((u) => `[${u.shape.join(', ')}]`).join(', ')}`);
    }
  }
  // ops.cat skips 1-D empty tensors, which is also what ONNX means for them.
  return [sameType(ctx, xs.length === 1 ? first : ops.cat(xs, a))];
});

// Split: cuts along 'axis' into the given sizes ('split' attribute before opset 13, input 1
// after), or into equal parts, one per output (from opset 18, 'num_outputs' parts, the last
// smaller when the axis does not divide evenly).
registerOnnxOp('Split', (ctx) => {
  const x = ctx.tensor(0);
  if (x.rank === 0) ctx.fail('cannot split a 0-d tensor');
  const a = normAxis(ctx, ctx.int('axis', 0), x.rank);
  const n = x.shape[a]!;
  let sizes = ctx.opset >= 13 ? ctx.optionalInts(1) : ctx.intList('split');
  if (sizes === undefined) {
    const parts = ctx.opset >= 18 ? ctx.int('num_outputs', ctx.node.outputs.length) : ctx.node.outputs.length;
    if (parts < 1) ctx.fail(`cannot split into ${parts} parts`);
    const size = Math.ceil(n / parts);
    if (ctx.opset < 18 && n % parts !== 0) ctx.fail(`axis ${a} of length ${n} does not split into ${parts} equal parts; give the sizes`);
    sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(size, n - i * size)));
  }
  if (sizes.some((s) => s < 0) || sizes.reduce((p, q) => p + q, 0) !== n) {
    ctx.fail(`split sizes ${JSON.stringify(sizes)} must be non-negative and add up to ${n}, the length of axis ${a}`);
  }
  return ops.split(x, sizes, a).map((t) => sameType(ctx, t));
});

/**
 * Elements start, start + step, ... before end along one axis, with ONNX Slice's bounds: negative
 * values count from the end, then start and end are clamped into [0, n] for a positive step and
 * into [-1, n-1] for a negative one (a start still before the first element selects nothing, as
 * numpy and onnxruntime do). Negative steps slice and flip (a copy).
 */
function sliceAxis(x: Tensor, axis: number, start: number, end: number, step: number): Tensor {
  const n = x.shape[axis]!;
  const wrap = (v: number): number => (v < 0 ? v + n : v);
  if (step > 0) {
    const s = Math.min(Math.max(wrap(start), 0), n);
    const e = Math.min(Math.max(wrap(end), 0), n);
    return ops.slice(x, axis, s, Math.max(s, e), step);
  }
  const s = Math.min(Math.max(wrap(start), -1), n - 1);
  const e = Math.min(Math.max(wrap(end), -1), n - 1);
  const count = n === 0 ? 0 : Math.max(0, Math.ceil((s - e) / -step));
  if (count === 0) return ops.slice(x, axis, 0, 0);
  const low = s + (count - 1) * step;
  return ops.flip(ops.slice(x, axis, low, s + 1, -step), axis);
}

// Slice: starts/ends/axes are attributes before opset 10, inputs 1..4 (with steps) after. Axes
// default to 0..len(starts)-1 and steps to 1. INT64 bounds such as ±2^63 arrive saturated to
// int32, which the clamping turns into "to the end".
registerOnnxOp('Slice', (ctx) => {
  const x = ctx.tensor(0);
  const starts = (ctx.opset >= 10 ? ctx.ints(1) : ctx.intList('starts')) ?? ctx.fail("the 'starts' attribute is missing");
  const ends = (ctx.opset >= 10 ? ctx.ints(2) : ctx.intList('ends')) ?? ctx.fail("the 'ends' attribute is missing");
  const axesGiven = ctx.opset >= 10 ? ctx.optionalInts(3) : ctx.intList('axes');
  const steps = ctx.opset >= 10 ? ctx.optionalInts(4) : undefined;
  const axes = normAxes(ctx, axesGiven ?? [...starts.keys()], x.rank);
  if (ends.length !== starts.length || axes.length !== starts.length || (steps !== undefined && steps.length !== starts.length)) {
    ctx.fail(`starts (${starts.length}), ends (${ends.length}), axes (${axes.length}) and steps (${steps?.length ?? 'default'}) must have one length`);
  }
  let y = x;
  axes.forEach((a, i) => {
    const step = steps?.[i] ?? 1;
    if (step === 0) ctx.fail(`step ${i} is 0`);
    y = sliceAxis(y, a, starts[i]!, ends[i]!, step);
  });
  return [sameType(ctx, y)];
});

// Expand: broadcasts the input with the shape input both ways (numpy rules: a 1 on either side
// takes the other's size), so the result may be larger than the given shape.
registerOnnxOp('Expand', (ctx) => {
  const x = ctx.tensor(0);
  const shape = ctx.ints(1);
  const rank = Math.max(x.rank, shape.length);
  const target = Array.from({ length: rank }, (_, i) => {
    const a = x.shape[i - (rank - x.rank)] ?? 1;
    const b = shape[i - (rank - shape.length)] ?? 1;
    if (a !== b && a !== 1 && b !== 1) ctx.fail(`cannot broadcast shape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
    return a === 1 ? b : a;
  });
  return [sameType(ctx, ops.expand(x, target))];
});

// Tile: repeats the input repeats[i] times along each axis.
registerOnnxOp('Tile', (ctx) => {
  const x = ctx.tensor(0);
  const repeats = ctx.ints(1);
  if (repeats.length !== x.rank || repeats.some((r) => r < 0)) ctx.fail(`repeats ${JSON.stringify(repeats)} must hold ${x.rank} non-negative counts`);
  return [sameType(ctx, ops.repeat(x, repeats))];
});

const PAD_MODES: Record<string, ops.PadMode> = { constant: 'constant', reflect: 'reflect', edge: 'replicate', wrap: 'circular' };

// Pad: 'pads' is [x1_begin, x2_begin, ..., x1_end, x2_end, ...] over every axis (the 'pads'
// attribute, 'paddings' at opset 1, before opset 11; input 1 after), or over the axes of input 3
// from opset 18. Negative amounts crop. The constant is the 'value' attribute before opset 11 and
// the optional input 2 after. Modes: constant, reflect, edge (and wrap, opset 19).
registerOnnxOp('Pad', (ctx) => {
  const x = ctx.tensor(0);
  const modeName = ctx.string('mode', 'constant');
  const mode = PAD_MODES[modeName];
  if (mode === undefined) ctx.fail(`mode '${modeName}' is not supported; supported: constant, reflect, edge, wrap`);
  const pads = (ctx.opset >= 11 ? ctx.ints(1) : ctx.intList(ctx.opset >= 2 ? 'pads' : 'paddings')) ?? ctx.fail("the 'pads' attribute is missing");
  const value = ctx.opset >= 11 ? (ctx.has(2) ? ctx.scalar(2) : 0) : ctx.float('value', 0);
  const axesGiven = ctx.opset >= 18 ? ctx.optionalInts(3) : undefined;
  const axes = axesGiven === undefined ? [...x.shape.keys()] : normAxes(ctx, axesGiven, x.rank);
  if (pads.length !== 2 * axes.length) ctx.fail(`pads ${JSON.stringify(pads)} must hold ${2 * axes.length} values (begin and end for ${axes.length} axes)`);
  // tessera's pad lists [before, after] pairs from the last axis backwards.
  const pairs: number[][] = x.shape.map(() => [0, 0]);
  axes.forEach((a, i) => { pairs[a] = [pads[i]!, pads[i + axes.length]!]; });
  const flat = pairs.reverse().flat();
  if (mode === 'constant' && !isFloating(x.dtype) && !Number.isInteger(value)) ctx.fail(`constant value ${value} does not fit the integer input`);
  return [sameType(ctx, ops.pad(x, flat, mode, value))];
});

// Identity: the input value unchanged (tensors, sequences and optionals alike).
registerOnnxOp('Identity', (ctx) => {
  const v = ctx.value(0);
  if (v === undefined) ctx.fail('input 0 is required');
  return [v];
});

// Dropout in inference: the output is the input, and the optional mask is all true (BOOL from
// opset 10, the input's type before). ratio/training_mode are attributes before opset 12
// (is_test before 7 is ignored: tessera runs models for inference) and inputs after; training
// mode with a non-zero ratio would need random dropping, which this importer does not do.
registerOnnxOp('Dropout', (ctx) => {
  const x = ctx.tensor(0);
  if (ctx.opset >= 12) {
    const training = ctx.has(2) && ctx.scalar(2) !== 0;
    const ratio = ctx.has(1) ? ctx.scalar(1) : 0.5;
    if (training && ratio !== 0) ctx.fail(`training_mode=true with ratio ${ratio} is not supported; tessera runs Dropout for inference only (training_mode false, or ratio 0)`);
  }
  const wantsMask = ctx.node.outputs.length > 1 && ctx.node.outputs[1] !== '';
  if (!wantsMask) return [ctx.input(0)];
  const mask = ctx.opset >= 10
    ? ctx.output(ops.full(x.shape, true, { dtype: 'bool', backend: x.backend }), ElemType.BOOL)
    : sameType(ctx, ops.full(x.shape, 1, { dtype: x.dtype, backend: x.backend }));
  return [ctx.input(0), mask];
});

/** Checks for a 4-D NCHW input (DepthToSpace, SpaceToDepth) and returns its dims. */
function nchw(ctx: NodeContext, x: Tensor): [number, number, number, number] {
  if (x.rank !== 4) ctx.fail(`needs a 4-D input [N, C, H, W], got shape [${x.shape.join(', ')}]`);
  return [x.shape[0]!, x.shape[1]!, x.shape[2]!, x.shape[3]!];
}

// DepthToSpace: moves blocks of channels into blocksize x blocksize spatial tiles. DCR (default)
// reads the channel as (block row, block col, out channel); CRD as (out channel, block row, block col).
registerOnnxOp('DepthToSpace', (ctx) => {
  const x = ctx.tensor(0);
  const [n, c, h, w] = nchw(ctx, x);
  const b = ctx.requiredInt('blocksize');
  const mode = ctx.string('mode', 'DCR');
  if (b < 1 || c % (b * b) !== 0) ctx.fail(`channels ${c} must be divisible by blocksize² = ${b * b}`);
  const oc = c / (b * b);
  if (mode !== 'DCR' && mode !== 'CRD') ctx.fail(`mode '${mode}' is not supported; supported: DCR, CRD`);
  const y = mode === 'DCR'
    ? ops.permute(ops.reshape(x, [n, b, b, oc, h, w]), [0, 3, 4, 1, 5, 2])
    : ops.permute(ops.reshape(x, [n, oc, b, b, h, w]), [0, 1, 4, 2, 5, 3]);
  return [sameType(ctx, ops.reshape(y, [n, oc, h * b, w * b]))];
});

// SpaceToDepth: the inverse of DepthToSpace in DCR order: each blocksize x blocksize tile
// becomes channels (block row, block col, channel).
registerOnnxOp('SpaceToDepth', (ctx) => {
  const x = ctx.tensor(0);
  const [n, c, h, w] = nchw(ctx, x);
  const b = ctx.requiredInt('blocksize');
  if (b < 1 || h % b !== 0 || w % b !== 0) ctx.fail(`height ${h} and width ${w} must be divisible by blocksize ${b}`);
  const y = ops.permute(ops.reshape(x, [n, c, h / b, b, w / b, b]), [0, 3, 5, 1, 2, 4]);
  return [sameType(ctx, ops.reshape(y, [n, c * b * b, h / b, w / b]))];
});

// Trilu: keeps the upper (upper=1, default) or lower triangle of the last two axes, shifted by
// the optional diagonal offset k (input 1); the rest becomes zero.
registerOnnxOp('Trilu', (ctx) => {
  const x = ctx.tensor(0);
  if (x.rank < 2) ctx.fail(`needs at least 2 dimensions, got shape [${x.shape.join(', ')}]`);
  const k = ctx.has(1) ? ctx.scalar(1) : 0;
  return [sameType(ctx, ctx.int('upper', 1) !== 0 ? ops.triu(x, k) : ops.tril(x, k))];
});

// CenterCropPad (opset 18): each of `axes` (default all) cropped or zero-padded to the size the
// shape input gives, centered: the floor of half the difference goes before, the rest after.
registerOnnxOp('CenterCropPad', (ctx) => {
  const x = ctx.tensor(0);
  const target = ctx.ints(1);
  const axesGiven = ctx.intList('axes');
  const axes = axesGiven === undefined ? [...x.shape.keys()] : normAxes(ctx, axesGiven, x.rank);
  if (target.length !== axes.length) ctx.fail(`shape ${JSON.stringify(target)} must hold one size per axis (${axes.length})`);
  const pairs: number[][] = x.shape.map(() => [0, 0]);
  axes.forEach((a, i) => {
    const size = target[i]!;
    if (!Number.isInteger(size) || size < 0) ctx.fail(`shape entry ${size} must be a non-negative integer`);
    const diff = size - x.shape[a]!;
    const sign = Math.sign(diff), half = Math.abs(diff) / 2;
    // Negative amounts crop.
    pairs[a] = [sign * Math.floor(half), sign * Math.ceil(half)];
  });
  return [sameType(ctx, ops.pad(x, pairs.reverse().flat()))];
});
