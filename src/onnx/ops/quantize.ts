// ONNX quantization operators: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
// MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv.
//
// The integer products run in tessera int32 (int32 matmul over im2col patches for the
// convolutions): with 8-bit operands every product and sum is exact as long as it fits in int32,
// which float32 accumulation would not guarantee (its 24-bit mantissa rounds sums past 2^24).
// Requantization (QLinear*) then scales the int32 accumulator in float32, rounds half to even and
// saturates to the output type, as onnxruntime does.

import * as ops from '../../ops/index.js';
import type { DType } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';
import { integerRange, isFloatElemType, NewElemType, onnxTensor, smallFloatFormat, storageDType, type OnnxTensor, type SmallFloatFormat } from '../value.js';
import { toSmallFloat } from './elementwise.js';

/** An integer type values quantize to: its tessera storage and saturation range. */
interface IntQuant {
  readonly dtype: DType;
  readonly min: number;
  readonly max: number;
}

/** The 8-bit integer types the QLinear ops and DynamicQuantizeLinear quantize to. */
const QUANT_TYPES = new Map<number, IntQuant>([
  [ElemType.UINT8, { dtype: 'uint8', min: 0, max: 255 }],
  [ElemType.INT8, { dtype: 'int8', min: -128, max: 127 }],
]);

function quantType(ctx: NodeContext, type: number, what: string): IntQuant {
  return QUANT_TYPES.get(type) ?? ctx.fail(`${what} is ${ctx.typeName(type)}; tessera quantizes to UINT8 and INT8`);
}

/** The integer types QuantizeLinear produces and DequantizeLinear reads (INT32 is only read). */
const LINEAR_INT_TYPES: readonly number[] = [
  ElemType.UINT8, ElemType.INT8, ElemType.UINT16, ElemType.INT16,
  ElemType.UINT4, ElemType.INT4, NewElemType.UINT2, NewElemType.INT2,
];

/** What QuantizeLinear rounds to: an integer type (round half to even, saturate) or a FLOAT8/FLOAT4 format. */
type LinearQuant = { readonly kind: 'int'; readonly q: IntQuant } | { readonly kind: 'float'; readonly format: SmallFloatFormat };

function linearQuant(ctx: NodeContext, type: number): LinearQuant {
  const format = smallFloatFormat(type);
  if (format !== undefined) return { kind: 'float', format };
  if (!LINEAR_INT_TYPES.includes(type)) {
    ctx.fail(`the quantized type is ${ctx.typeName(type)}; QuantizeLinear produces UINT8, INT8, UINT16, INT16, UINT4, INT4, UINT2, INT2, the FLOAT8 types and FLOAT4E2M1`);
  }
  return { kind: 'int', q: { dtype: storageDType(type)!, ...integerRange(type)! } };
}

/** How a scale and zero point map onto x: per tensor, per axis, or (block_size > 0, opset 21) in blocks along `axis`. */
interface Granularity {
  readonly axis: number;
  readonly blockSize: number;
}

function granularity(ctx: NodeContext): Granularity {
  const blockSize = ctx.int('block_size', 0);
  if (blockSize < 0) ctx.fail(`block_size must be positive (or 0 for per-tensor and per-axis quantization), got ${blockSize}`);
  return { axis: ctx.int('axis', 1), blockSize };
}

/**
 * A scale or zero point shaped to broadcast against x: a scalar (or one-element 1-D tensor) as it
 * is; a 1-D tensor of x.shape[axis] values along `axis` (per-axis quantization); with a block size,
 * a tensor of x's rank holding ceil(x.shape[axis] / block_size) values along `axis` (and x's size
 * elsewhere), each repeated over block_size consecutive elements (blocked quantization).
 */
function alongAxis(ctx: NodeContext, p: Tensor, x: Tensor, g: Granularity, what: string): Tensor {
  if (g.blockSize === 0 && (p.rank === 0 || (p.rank === 1 && p.shape[0] === 1))) return p.rank === 0 ? p : ops.reshape(p, []);
  const { axis, blockSize } = g;
  if (axis < -x.rank || axis >= x.rank) ctx.fail(`axis ${axis} is out of range for an input of rank ${x.rank}`);
  const a = axis < 0 ? axis + x.rank : axis;
  const n = x.shape[a]!;
  if (blockSize === 0) {
    if (p.rank !== 1 || p.shape[0] !== n) {
      ctx.fail(`${what} must be a scalar or a 1-D tensor of ${n} values (axis ${a} of input shape [${x.shape.join(', ')}]), got shape [${p.shape.join(', ')}]`);
    }
    return ops.reshape(p, x.shape.map((d, i) => (i === a ? d : 1)));
  }
  const blocks = Math.ceil(n / blockSize);
  const want = x.shape.map((d, i) => (i === a ? blocks : d));
  if (p.rank !== x.rank || p.shape.some((d, i) => d !== want[i])) {
    ctx.fail(`with block_size ${blockSize} along axis ${a}, ${what} must have shape [${want.join(', ')}] (input shape [${x.shape.join(', ')}]), got shape [${p.shape.join(', ')}]`);
  }
  const repeated = ops.repeatInterleave(p, blockSize, a);
  return blocks * blockSize === n ? repeated : ops.slice(repeated, a, 0, n);
}

/** saturate(round_half_even(v) + zeroPoint) into a quantized type; v is a float tensor. */
function requantize(v: Tensor, zeroPoint: Tensor | undefined, q: IntQuant): Tensor {
  let r = ops.round(v);
  if (zeroPoint !== undefined) r = ops.add(r, ops.cast(zeroPoint, r.dtype));
  return ops.cast(ops.clamp(r, q.min, q.max), q.dtype);
}

/** x - zeroPoint in int32 (the zero point already shaped to broadcast), or x in int32 without one. */
function centered(x: Tensor, zeroPoint: Tensor | undefined): Tensor {
  const xi = ops.cast(x, 'int32');
  return zeroPoint === undefined ? xi : ops.sub(xi, ops.cast(zeroPoint, 'int32'));
}

/** A float element type's tessera dtype (for output_dtype and precision), failing for any other type. */
function floatDType(ctx: NodeContext, type: number, what: string): DType {
  if (!isFloatElemType(type)) ctx.fail(`${what} is ${ctx.typeName(type)}; it must be FLOAT, DOUBLE, FLOAT16 or BFLOAT16`);
  return storageDType(type)!;
}

// QuantizeLinear (opsets 10, 13, 19, 21, 23-25): y = saturate(round(x / y_scale) + y_zero_point)
// for the integer types (rounding half to even), and y = x / y_scale + y_zero_point rounded to
// the format (ties to even; beyond its range saturating, or inf/NaN when saturate = 0) for the
// FLOAT8 types and FLOAT4E2M1. The scale and zero point are per tensor, per slice along `axis`
// (from 13, default 1) or per block of block_size elements along `axis` (from 21). y takes
// y_zero_point's type, else output_dtype's (21), else UINT8. The division runs in float32 (float64
// when x or y_scale is DOUBLE), or in the type `precision` names (23).
registerOnnxOp('QuantizeLinear', (ctx) => {
  const x = ctx.tensor(0);
  const g = granularity(ctx);
  const outputDType = ctx.int('output_dtype', 0);
  const type = ctx.has(2) ? ctx.typeOf(2) : outputDType !== 0 ? outputDType : ElemType.UINT8;
  if (outputDType !== 0 && outputDType !== type) ctx.fail(`output_dtype ${ctx.typeName(outputDType)} differs from y_zero_point's type ${ctx.typeName(type)}`);
  const target = linearQuant(ctx, type);
  const precision = ctx.int('precision', 0);
  const scaleIn = ctx.tensor(1);
  const dtype = precision !== 0 ? floatDType(ctx, precision, 'precision')
    : x.dtype === 'float64' || x.dtype === 'int32' || scaleIn.dtype === 'float64' ? 'float64' : 'float32';
  const scale = ops.cast(alongAxis(ctx, scaleIn, x, g, 'y_scale'), dtype);
  const zp = ctx.has(2) ? alongAxis(ctx, ctx.tensor(2), x, g, 'y_zero_point') : undefined;
  const v = ops.div(ops.cast(x, dtype), scale);
  if (target.kind === 'int') return [ctx.output(requantize(v, zp, target.q), type)];
  // toSmallFloat rounds float32 or float64 values (a FLOAT16/BFLOAT16 precision widens exactly to float32).
  const wide = v.dtype === 'float64' ? v : ops.cast(v, 'float32');
  const shifted = zp === undefined ? wide : ops.add(wide, ops.cast(zp, wide.dtype));
  return [ctx.output(toSmallFloat(shifted, target.format, ctx.int('saturate', 1) !== 0), type)];
});

// DequantizeLinear (opsets 10, 13, 19, 21, 23-25): y = (x - x_zero_point) * x_scale, per tensor,
// per slice along `axis` (from 13, default 1) or per block of block_size elements along `axis`
// (from 21). x is one of QuantizeLinear's types or INT32 (whose zero point must be 0); the FLOAT8
// and FLOAT4 values subtract their zero point in float, the integers in int32. y has the type
// output_dtype names (23), else x_scale's; the product runs in float32 (float64 for DOUBLE) and
// is rounded to y's type.
registerOnnxOp('DequantizeLinear', (ctx) => {
  const x = ctx.tensor(0);
  const xType = ctx.typeOf(0);
  const isFloat = smallFloatFormat(xType) !== undefined;
  if (!isFloat && xType !== ElemType.INT32 && !LINEAR_INT_TYPES.includes(xType)) {
    ctx.fail(`x is ${ctx.typeName(xType)}; DequantizeLinear takes UINT8, INT8, UINT16, INT16, UINT4, INT4, UINT2, INT2, INT32, the FLOAT8 types and FLOAT4E2M1`);
  }
  const g = granularity(ctx);
  const outputDType = ctx.int('output_dtype', 0);
  const outType = outputDType !== 0 ? outputDType : ctx.typeOf(1);
  const outDType = floatDType(ctx, outType, outputDType !== 0 ? 'output_dtype' : "the output type (x_scale's, as output_dtype is not given)");
  const scale = alongAxis(ctx, ctx.tensor(1), x, g, 'x_scale');
  const zp = ctx.has(2) ? alongAxis(ctx, ctx.tensor(2), x, g, 'x_zero_point') : undefined;
  const dtype = outDType === 'float64' || scale.dtype === 'float64' ? 'float64' : 'float32';
  const shifted = isFloat
    ? (zp === undefined ? ops.cast(x, dtype) : ops.sub(ops.cast(x, dtype), ops.cast(zp, dtype)))
    : ops.cast(centered(x, zp), dtype);
  return [ctx.output(ops.cast(ops.mul(shifted, ops.cast(scale, dtype)), outDType), outType)];
});

// DynamicQuantizeLinear (opset 11): quantizes a float32 tensor to UINT8 over the range
// [min(0, min x), max(0, max x)]: y_scale = range / 255, y_zero_point = saturate(round(-min / y_scale)),
// y = saturate(round(x / y_scale) + y_zero_point). Outputs y, y_scale, y_zero_point.
registerOnnxOp('DynamicQuantizeLinear', (ctx) => {
  const x = ops.cast(ctx.tensor(0), 'float32');
  const q = QUANT_TYPES.get(ElemType.UINT8)!;
  const lo = ops.minimum(ops.min(x), 0);
  const hi = ops.maximum(ops.max(x), 0);
  const scale = ops.div(ops.sub(hi, lo), q.max - q.min);
  const zp = requantize(ops.sub(q.min, ops.div(lo, scale)), undefined, q);
  const y = requantize(ops.div(x, scale), zp, q);
  return [ctx.output(y, ElemType.UINT8), ctx.output(scale, ElemType.FLOAT), ctx.output(zp, ElemType.UINT8)];
});

/**
 * An 8-bit input minus its zero point, in int32. A zero point of one value per row of a matrix
 * (per-row for A, `rowAxis` -2) or per column (B, -1) broadcasts along that axis.
 */
function matmulOperand(ctx: NodeContext, x: Tensor, zp: Tensor | undefined, rowAxis: -1 | -2, what: string): Tensor {
  if (zp === undefined || zp.size === 1) return centered(x, zp === undefined ? undefined : ops.reshape(zp, []));
  if (x.rank < 2) ctx.fail(`a per-${rowAxis === -2 ? 'row' : 'column'} ${what} needs a matrix operand, got shape [${x.shape.join(', ')}]`);
  return centered(x, alongAxis(ctx, zp, x, { axis: x.rank + rowAxis, blockSize: 0 }, what));
}

/** (A - a_zero_point) @ (B - b_zero_point) exactly, in int32. */
function integerMatmul(ctx: NodeContext, a: Tensor, aZp: Tensor | undefined, b: Tensor, bZp: Tensor | undefined): Tensor {
  for (const [t, what] of [[a, 'A'], [b, 'B']] as const) {
    if (t.dtype !== 'int8' && t.dtype !== 'uint8') ctx.fail(`${what} must be INT8 or UINT8, got ${t.dtype}`);
  }
  return ops.matmul(matmulOperand(ctx, a, aZp, -2, 'a_zero_point'), matmulOperand(ctx, b, bZp, -1, 'b_zero_point'));
}

// MatMulInteger (opset 10): (A - a_zero_point) @ (B - b_zero_point) with numpy matmul's
// broadcasting, as INT32. Zero points are scalars, or per row of A / per column of B.
registerOnnxOp('MatMulInteger', (ctx) =>
  [ctx.output(integerMatmul(ctx, ctx.tensor(0), ctx.optionalTensor(2), ctx.tensor(1), ctx.optionalTensor(3)), ElemType.INT32)]);

/**
 * A convolution of int32 tensors (x [N, C, *spatial], w [M, C/group, *kernel]), exact: zero
 * padding (explicit pads or auto_pad), then per group the im2col patches times the reshaped
 * weight in int32. Follows ONNX Conv's attributes: auto_pad, dilations, group, kernel_shape, pads,
 * strides.
 */
function integerConv(ctx: NodeContext, x: Tensor, w: Tensor): Tensor {
  const dims = x.rank - 2;
  if (dims < 1 || w.rank !== x.rank) ctx.fail(`x must be [N, C, *spatial] and w [M, C/group, *kernel] of the same rank, got [${x.shape.join(', ')}] and [${w.shape.join(', ')}]`);
  const kernel = w.shape.slice(2);
  const kernelAttr = ctx.intList('kernel_shape');
  if (kernelAttr !== undefined && kernelAttr.some((k, i) => k !== kernel[i])) ctx.fail(`kernel_shape [${kernelAttr.join(', ')}] does not match the weight's [${kernel.join(', ')}]`);
  const strides = ctx.intList('strides', kernel.map(() => 1));
  const dilations = ctx.intList('dilations', kernel.map(() => 1));
  const group = ctx.int('group', 1);
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const m = w.shape[0]!;
  if (c % group !== 0 || m % group !== 0 || w.shape[1]! * group !== c) {
    ctx.fail(`group ${group} does not fit ${c} input channels, ${m} output channels and a weight of shape [${w.shape.join(', ')}]`);
  }
  const spatial = x.shape.slice(2);
  const autoPad = ctx.string('auto_pad', 'NOTSET');
  let begins: number[], ends: number[];
  if (autoPad === 'NOTSET') {
    const pads = ctx.intList('pads', new Array<number>(2 * dims).fill(0));
    [begins, ends] = [pads.slice(0, dims), pads.slice(dims)];
  } else if (autoPad === 'VALID') {
    [begins, ends] = [spatial.map(() => 0), spatial.map(() => 0)];
  } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    // The output is ceil(in / stride) long; the padding it takes goes to the end (SAME_UPPER) or the start.
    const total = spatial.map((len, i) => Math.max(0, (Math.ceil(len / strides[i]!) - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - len));
    begins = total.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
    ends = total.map((t, i) => t - begins[i]!);
  } else {
    return ctx.fail(`auto_pad '${autoPad}' is not valid; NOTSET, SAME_UPPER, SAME_LOWER or VALID`);
  }
  // ops.pad takes [before, after] pairs from the last axis.
  const padPairs = begins.flatMap((_, i) => [begins[dims - 1 - i]!, ends[dims - 1 - i]!]);
  const padded = padPairs.every((p) => p === 0) ? x : ops.pad(x, padPairs);
  const outSpatial = padded.shape.slice(2).map((len, i) => Math.floor((len - dilations[i]! * (kernel[i]! - 1) - 1) / strides[i]!) + 1);
  if (outSpatial.some((o) => o < 1)) ctx.fail(`the kernel [${kernel.join(', ')}] does not fit the padded input [${padded.shape.join(', ')}]`);
  const [cg, mg] = [c / group, m / group];
  const outs: Tensor[] = [];
  for (let g = 0; g < group; g++) {
    const xg = group === 1 ? padded : ops.slice(padded, 1, g * cg, (g + 1) * cg);
    const cols = ops.im2col(xg, kernel, { stride: strides, dilation: dilations }); // [N, Cg·K, L]
    const wg = ops.reshape(group === 1 ? w : ops.slice(w, 0, g * mg, (g + 1) * mg), [mg, -1]); // [Mg, Cg·K]
    outs.push(ops.matmul(wg, cols)); // [N, Mg, L]
  }
  const y = group === 1 ? outs[0]! : ops.cat(outs, 1);
  return ops.reshape(y, [n, m, ...outSpatial]);
}

/** A conv weight's zero point or scale: a scalar, or one per output channel (shaped [M, 1, ...] or [1, M, 1, ...]). */
function perOutputChannel(ctx: NodeContext, p: Tensor, channels: number, rank: number, axis: 0 | 1, what: string): Tensor {
  if (p.size === 1) return ops.reshape(p, []);
  if (p.rank !== 1 || p.shape[0] !== channels) ctx.fail(`${what} must be a scalar or hold one value per output channel (${channels}), got shape [${p.shape.join(', ')}]`);
  return ops.reshape(p, Array.from({ length: rank }, (_, i) => (i === axis ? channels : 1)));
}

/** (x - x_zero_point) conv (w - w_zero_point) in int32; w's zero point may be per output channel. */
function centeredConv(ctx: NodeContext, x: Tensor, xZp: Tensor | undefined, w: Tensor, wZp: Tensor | undefined): Tensor {
  for (const [t, what] of [[x, 'x'], [w, 'w']] as const) {
    if (t.dtype !== 'int8' && t.dtype !== 'uint8') ctx.fail(`${what} must be INT8 or UINT8, got ${t.dtype}`);
  }
  if (xZp !== undefined && xZp.size !== 1) ctx.fail(`x_zero_point must be a scalar, got shape [${xZp.shape.join(', ')}]`);
  const wc = centered(w, wZp === undefined ? undefined : perOutputChannel(ctx, wZp, w.shape[0]!, w.rank, 0, 'w_zero_point'));
  return integerConv(ctx, centered(x, xZp === undefined ? undefined : ops.reshape(xZp, [])), wc);
}

// ConvInteger (opset 10): (x - x_zero_point) conv (w - w_zero_point) as INT32, with Conv's
// attributes; the padding is zero after subtracting the zero point (the zero point before).
registerOnnxOp('ConvInteger', (ctx) =>
  [ctx.output(centeredConv(ctx, ctx.tensor(0), ctx.optionalTensor(2), ctx.tensor(1), ctx.optionalTensor(3)), ElemType.INT32)]);

/** Scale input i as float32. */
function scaleOf(ctx: NodeContext, i: number): Tensor {
  return ops.cast(ctx.tensor(i), 'float32');
}

/** The zero-point input i and the quantized type of the output it defines. */
function outputQuant(ctx: NodeContext, i: number): { zp: Tensor; type: number; q: IntQuant } {
  const type = ctx.typeOf(i);
  return { zp: ctx.tensor(i), type, q: quantType(ctx, type, 'y_zero_point') };
}

// QLinearMatMul (opset 10): the int32 product (a - a_zero_point) @ (b - b_zero_point), scaled by
// a_scale * b_scale / y_scale in float32, then y = saturate(round(.) + y_zero_point). b's scale
// and zero point may be per column, a's per row.
registerOnnxOp('QLinearMatMul', (ctx) => {
  const [a, b] = [ctx.tensor(0), ctx.tensor(3)];
  const acc = integerMatmul(ctx, a, ctx.tensor(2), b, ctx.tensor(5));
  const aScale = ctx.tensor(1).size === 1 ? ops.reshape(scaleOf(ctx, 1), []) : ops.reshape(scaleOf(ctx, 1), [-1, 1]);
  const bScale = ctx.tensor(4).size === 1 ? ops.reshape(scaleOf(ctx, 4), []) : ops.reshape(scaleOf(ctx, 4), [-1]);
  const out = outputQuant(ctx, 7);
  const multiplier = ops.div(ops.mul(aScale, bScale), ops.reshape(scaleOf(ctx, 6), []));
  return [onnxTensor(requantize(ops.mul(ops.cast(acc, 'float32'), multiplier), ops.reshape(out.zp, []), out.q), out.type)];
});

// QLinearConv (opset 10): the int32 convolution (x - x_zero_point) conv (w - w_zero_point) plus
// the INT32 bias B, scaled by x_scale * w_scale / y_scale in float32, then
// y = saturate(round(.) + y_zero_point). w's scale and zero point may be per output channel.
registerOnnxOp('QLinearConv', (ctx): OnnxTensor[] => {
  const w = ctx.tensor(3);
  const m = w.shape[0]!;
  let acc = centeredConv(ctx, ctx.tensor(0), ctx.tensor(2), w, ctx.tensor(5));
  if (ctx.has(8)) acc = ops.add(acc, perOutputChannel(ctx, ops.cast(ctx.tensor(8), 'int32'), m, acc.rank, 1, 'B'));
  const wScale = perOutputChannel(ctx, scaleOf(ctx, 4), m, acc.rank, 1, 'w_scale');
  const multiplier = ops.div(ops.mul(ops.reshape(scaleOf(ctx, 1), []), wScale), ops.reshape(scaleOf(ctx, 6), []));
  const out = outputQuant(ctx, 7);
  return [onnxTensor(requantize(ops.mul(ops.cast(acc, 'float32'), multiplier), ops.reshape(out.zp, []), out.q), out.type)];
});
