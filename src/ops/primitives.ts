// The primitive ops: the small set every backend, every transformation and the compiler know.
//
// Each primitive is declared once here: its attributes (a typed record), `infer` (output shape and
// dtype, with validation) and `cost` (FLOPs and bytes moved). Its derivative rules live in one table
// per transformation (autodiff/vjp-rules.ts, autodiff/jvp-rules.ts) and its kernels in one table per
// backend (backend/cpu/kernels.ts); all are mapped types over PrimitiveName, so a primitive without
// a rule does not compile.
//
// Primitives are strict, which keeps kernels and derivative rules simple: elementwise primitives take
// inputs of one shape and one dtype (the user-facing ops broadcast with `expand` views and promote with
// `cast` first), matmul takes equal batch dimensions. User-facing ops (ops/*.ts) do that work.
import { type DType, itemsize, isFloating, defaultFloatDType } from '../core/dtype.js';
import { check, fmtShape } from '../core/errors.js';
import { sizeOf, shapesEqual, viewStrides as viewStridesImpl, type Shape } from '../core/shape.js';
import { patchMatrixShape, sweepWindows, type WindowSweep } from './patch-shape.js';
import type { Generator } from '../core/random.js';
import { linalgDefs, type LinalgPrimitiveAttrs } from './matrix/primitive-defs.js';

export interface ValueInfo {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export interface Cost {
  flops: number;
  bytesRead: number;
  bytesWritten: number;
}

export const UNARY_FLOAT_OPS = [
  'exp', 'log', 'log1p', 'expm1', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'erf',
  // x·Φ(x) (exact GELU) and its derivative Φ(x) + x·φ(x): one kernel each instead of five and ~ten.
  'gelu', 'geluGrad',
] as const;
export const UNARY_SAME_OPS = ['neg', 'abs', 'relu', 'sign', 'floor', 'ceil', 'round'] as const;
export const UNARY_PREDICATE_OPS = ['logicalNot', 'isnan'] as const;
export const BINARY_ARITH_OPS = [
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum',
  // reluGrad(x, g) = x > 0 ? g : 0 (NaN x gives 0): ReLU's vjp as one kernel instead of gt + where over a broadcast zero.
  'reluGrad',
] as const;
export const BINARY_COMPARE_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr'] as const;
export const REDUCE_OPS = ['sum', 'prod', 'max', 'min'] as const;

export type UnaryFloatOp = (typeof UNARY_FLOAT_OPS)[number];
export type UnarySameOp = (typeof UNARY_SAME_OPS)[number];
export type UnaryPredicateOp = (typeof UNARY_PREDICATE_OPS)[number];
export type UnaryOp = UnaryFloatOp | UnarySameOp | UnaryPredicateOp;
export type BinaryArithOp = (typeof BINARY_ARITH_OPS)[number];
export type BinaryCompareOp = (typeof BINARY_COMPARE_OPS)[number];
export type BinaryOp = BinaryArithOp | BinaryCompareOp;
export type ReduceOp = (typeof REDUCE_OPS)[number];

type NoAttrs = Record<string, never>;
export interface ReduceAttrs { axes: number[]; keepdim: boolean }
export interface ArgReduceAttrs { axis: number; keepdim: boolean }

/** Attributes of every primitive. Adding a primitive starts here. */
export interface PrimitiveAttrs
  // The matrix decompositions and solves (cholesky, triangularSolve, solve, det, slogdet, qr, eigh, svd) are declared in ops/matrix/primitive-defs.ts.
  extends Record<UnaryOp, NoAttrs>, Record<BinaryOp, NoAttrs>, Record<ReduceOp, ReduceAttrs>, LinalgPrimitiveAttrs {
  /** cond ? x : y, all three of one shape; cond is bool. */
  where: NoAttrs;
  cast: { dtype: DType };
  argmax: ArgReduceAttrs;
  argmin: ArgReduceAttrs;
  cumsum: { axis: number };
  /** exp(x − max) / Σ exp(x − max) along `axis` (the max shift is 0 where it is ±inf); floating x. */
  softmax: { axis: number };
  /** x − max − log Σ exp(x − max) along `axis` (the same shift as softmax); floating x. */
  logSoftmax: { axis: number };
  /**
   * LayerNorm without weight and bias over the last axis: (x − mean) · rsqrt(var + eps), biased
   * variance; floating x. One pass per row instead of the composite's dozen full-size kernels.
   */
  layerNormCore: { eps: number };
  /** rsqrt(var + eps) of each row over the last axis (kept as size 1): layerNormCore's scale, for its derivatives. */
  layerNormRstd: { eps: number };
  /**
   * layerNormCore's vjp (its Jacobian is symmetric, so also its jvp): for x and a cotangent g of one
   * shape, rstd·(g − mean(g) − y·mean(g·y)) per row, y = layerNormCore(x). One pass set per row.
   */
  layerNormCoreGrad: { eps: number };
  /**
   * Fused scaled-dot-product attention softmax(q·kᵀ·scale (+ causal mask))·v of q [..., L, E],
   * k [..., S, E], v [..., S, Ev] with equal batch dims and one floating dtype, S >= 1: [..., L, Ev].
   * `causal`: query i attends to keys j <= i (top-left aligned). One kernel instead of the
   * composite's matmul, mul, mask add, softmax and matmul (ops/nn/attention.ts picks it).
   */
  attention: AttentionAttrs;
  /**
   * A product with a quantized weight W [n, k] (QuantizedLinear, quant/): inputs x [..., k], the
   * codes (int8/uint8 [n, k], or int4 packed two per byte [n, ceil(k/2)]), the float32 scales and,
   * for affine codes, the int32 zero points, then with `bias` the bias [n] (added in the kernel: one
   * op per layer). y = x·Ŵᵀ (+ b) [..., n] with Ŵ = (q − z)·s, or with
   * activations 'dynamic-int8' the input quantized per row to int8 and summed in int32; with
   * `transposed`, y = x·Ŵ (x [..., n] → [..., k]), the input gradient. One primitive, so a traced
   * graph keeps the packed weight (not a dequantized float32 constant) and the kernels stay fused.
   */
  quantizedMatmul: QuantizedMatmulAttrs;
  /**
   * attention's vjp for an output cotangent dOut [..., L, Ev]: dq, dk and dv, each flattened in
   * row-major order and packed one after another in one 1-D tensor (a primitive has one output;
   * the vjp rule slices them out as views). Recomputes the softmax from q and k and saves nothing
   * from the forward (FlashAttention-style): a row logsumexp would spare only the max and sum passes,
   * not the exp, yet would have to ride in the forward's single output; and with D = rowsum(P∘dP)
   * in place of rowsum(dOut∘out) the forward output is not needed either, so attentionGrad is a
   * function of (q, k, v, dOut) alone, which keeps its own derivative rules (higher order) simple.
   */
  attentionGrad: AttentionAttrs;
  /** (..., m, k) @ (..., k, n) with equal batch dims. */
  matmul: NoAttrs;
  // Views: no data moves; the output shares the input's storage.
  reshape: { shape: number[] };
  permute: { perm: number[] };
  expand: { shape: number[] };
  /** Per-axis start and step (step >= 1) with the output size per axis. */
  slice: { starts: number[]; steps: number[]; sizes: number[] };
  /** Sliding windows along `axis` (like torch.Tensor.unfold): a new last dim of length `size`. */
  unfold: { axis: number; size: number; step: number };
  // Data movement.
  /** Materializes a contiguous copy (also the vjp-safe "copy"). */
  contiguous: NoAttrs;
  /** Constant padding: `pads[i] = [before, after]` per axis (non-negative). */
  pad: { pads: [number, number][]; value: number };
  /** The adjoint of slice: zeros of `inputShape` with the input placed at the sliced positions. */
  sliceBackward: { inputShape: number[]; starts: number[]; steps: number[] };
  /** The adjoint of unfold: windows summed back into a tensor of `inputShape`. */
  unfoldBackward: { inputShape: number[]; axis: number; size: number; step: number };
  cat: { axis: number };
  flip: { axes: number[] };
  /** torch.gather: out[i][j] = x[index[i][j]][j] along `axis` (index int32, same rank). */
  gather: { axis: number };
  /** out = base, then out[index[i][j]][j] += src[i][j] along `axis`. */
  scatterAdd: { axis: number };
  /** Indices that sort along `axis` (stable). */
  argsort: { axis: number; descending: boolean };
  /** Convolution patches of x [N, C, *spatial] as a [groups, N·L, C/groups·K] matrix (zero padding). */
  im2col: PatchAttrs;
  /** The adjoint of im2col: a patch matrix summed back into a tensor of `inputShape` [N, C, *spatial]. */
  col2im: PatchAttrs & { inputShape: number[] };
  /** Per window of x [N, C, *spatial] (padded already): the flat spatial index of its first maximum (NaN wins), int32. */
  maxPoolIndices: WindowSweep;
  /**
   * Direct convolution (cross-correlation) of x [N, C_in, *spatial] with w [C_out, C_in/groups, *kernel],
   * plus an optional bias [C_out] as a third input: [N, C_out, *out], computed straight from x (no patch
   * matrix). ops/nn/conv.ts picks it or im2col + matmul per shape.
   */
  convDirect: PatchAttrs;
  /** The weight gradient of convDirect: from x [N, C_in, *spatial] and the output cotangent g [N, C_out, *out], dW [C_out, C_in/groups, *kernel]. */
  convWeightGrad: PatchAttrs;
  // Random draws (see RandomAttrs): no inputs; each run advances `generator`.
  /** low + (high − low)·u per element, u uniform on [0, 1) (Generator.uniform), rounded to dtype. */
  randomUniform: RandomAttrs & { low: number; high: number };
  /** A standard normal per element (Generator.normal: Box-Muller, the second value of a pair kept for the next draw). */
  randomNormal: RandomAttrs;
  /** A uniform integer in [low, high) per element (Generator.integer). */
  randomInteger: RandomAttrs & { low: number; high: number };
}

/**
 * The random primitives are the only impure ones: they have no inputs, and each application draws
 * the next numbers of `generator` (in row-major order), so two applications with equal attrs give
 * different values. The graph compiler never folds, merges, drops or reorders them (see
 * graph/graph-ops.ts isImpureNode), so a replayed graph draws exactly what the eager code would.
 */
export interface RandomAttrs {
  shape: number[];
  dtype: DType;
  /** The backend the output is allocated on (a primitive without inputs cannot take it from them). */
  backend: string;
  generator: Generator;
}

export const RANDOM_OPS = ['randomUniform', 'randomNormal', 'randomInteger'] as const;
export type RandomOp = (typeof RANDOM_OPS)[number];

/** True for the primitives that draw from a generator (impure: every run gives new values). */
export function isRandomPrimitive(op: string): op is RandomOp {
  return (RANDOM_OPS as readonly string[]).includes(op);
}

/** Attributes of quantizedMatmul: how the weight's codes are stored and scaled, and what is computed. */
export interface QuantizedMatmulAttrs {
  bits: 4 | 8;
  /** Signed codes, zero point 0 (symmetric); else unsigned codes and a 4th input of zero points. */
  symmetric: boolean;
  scheme: 'per-tensor' | 'per-channel' | 'group';
  /** per-channel: the axis of [n, k] the scales run along (0: output features). */
  axis: number;
  /** group: elements per scale along k (the last group of a row may be shorter). */
  groupSize: number;
  /** The weight's shape [n, k]. */
  n: number;
  k: number;
  activations: 'none' | 'dynamic-int8';
  transposed: boolean;
  /** A last input holds the bias [n] (not with `transposed`). */
  bias: boolean;
}

/** Attributes of the attention primitives. */
export interface AttentionAttrs {
  /** Multiplies q·kᵀ before the softmax. */
  scale: number;
  /** Query i attends only to keys j <= i. */
  causal: boolean;
}

/** Windows of im2col/col2im: per spatial axis kernel, stride, dilation and [before, after] zero padding. */
export interface PatchAttrs extends WindowSweep {
  pads: [number, number][];
  groups: number;
}

export type PrimitiveName = keyof PrimitiveAttrs;

export interface PrimitiveDef<P extends PrimitiveName> {
  /** Output shape and dtype; throws a TesseraError naming the op for bad input. */
  infer(inputs: readonly ValueInfo[], attrs: PrimitiveAttrs[P]): ValueInfo;
  cost(inputs: readonly ValueInfo[], attrs: PrimitiveAttrs[P], out: ValueInfo): Cost;
  /** For view primitives: the output's layout over the same storage. */
  view?: (input: Layout, attrs: PrimitiveAttrs[P]) => Layout;
  /** Number of inputs, or undefined for variadic (cat). */
  arity?: number;
}

export interface Layout {
  shape: number[];
  strides: number[];
  offset: number;
}

const bytes = (v: ValueInfo): number => sizeOf(v.shape) * itemsize(v.dtype);
function movementCost(inputs: readonly ValueInfo[], out: ValueInfo): Cost {
  return { flops: 0, bytesRead: inputs.reduce((s, v) => s + bytes(v), 0), bytesWritten: bytes(out) };
}
const viewCost = (): Cost => ({ flops: 0, bytesRead: 0, bytesWritten: 0 });
function elementwiseCost(inputs: readonly ValueInfo[], out: ValueInfo, flopsPerElement = 1): Cost {
  return { flops: sizeOf(out.shape) * flopsPerElement, bytesRead: inputs.reduce((s, v) => s + bytes(v), 0), bytesWritten: bytes(out) };
}

function checkArity(op: string, inputs: readonly ValueInfo[], n: number): void {
  check(inputs.length === n, op, () => `expects ${n} input(s), got ${inputs.length}.`);
}

function unaryDef(kind: 'float' | 'same' | 'predicate', flops = 1): PrimitiveDef<UnaryOp> {
  return {
    arity: 1,
    infer: ([x]) => ({
      shape: [...x!.shape],
      dtype: kind === 'predicate' ? 'bool' : kind === 'float' && !isFloating(x!.dtype) ? defaultFloatDType() : x!.dtype,
    }),
    cost: (inputs, _a, out) => elementwiseCost(inputs, out, flops),
  };
}

function sameShapeSameDtype(op: string, a: ValueInfo, b: ValueInfo): void {
  check(shapesEqual(a.shape, b.shape), op, () =>
    `primitive inputs must have one shape (got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}); the user-facing op broadcasts first.`);
  check(a.dtype === b.dtype, op, () =>
    `primitive inputs must have one dtype (got ${a.dtype} and ${b.dtype}); the user-facing op promotes first.`);
}

function binaryDef(op: BinaryOp, kind: 'arith' | 'compare'): PrimitiveDef<BinaryOp> {
  return {
    arity: 2,
    infer: ([a, b]) => {
      sameShapeSameDtype(op, a!, b!);
      return { shape: [...a!.shape], dtype: kind === 'compare' ? 'bool' : a!.dtype };
    },
    cost: (inputs, _a, out) => elementwiseCost(inputs, out, op === 'pow' ? 10 : 1),
  };
}

function reducedShape(shape: Shape, axes: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (axes.includes(i)) {
      if (keepdim) out.push(1);
    } else out.push(d);
  });
  return out;
}

function checkAxes(op: string, rank: number, axes: readonly number[]): void {
  for (const a of axes) check(Number.isInteger(a) && a >= 0 && a < Math.max(rank, 1), op, () => `axis ${a} out of range for rank ${rank} (primitives take normalized axes).`);
}

function reduceDef(op: ReduceOp): PrimitiveDef<ReduceOp> {
  return {
    arity: 1,
    infer: ([x], { axes, keepdim }) => {
      checkAxes(op, x!.shape.length, axes);
      if (op === 'max' || op === 'min') {
        for (const a of axes) check(x!.shape[a] !== 0, op, () =>
          `cannot reduce over axis ${a} of size 0 in a tensor of shape ${fmtShape(x!.shape)}: the ${op} of nothing is undefined.`);
      }
      const dtype = (op === 'sum' || op === 'prod') && !isFloating(x!.dtype) ? 'int32' : x!.dtype;
      return { shape: reducedShape(x!.shape, axes, keepdim), dtype };
    },
    cost: (inputs) => ({ flops: sizeOf(inputs[0]!.shape), bytesRead: bytes(inputs[0]!), bytesWritten: 0 }),
  };
}

/** softmax and logSoftmax along one axis: the input's shape and floating dtype. */
function softmaxDef(op: 'softmax' | 'logSoftmax'): PrimitiveDef<'softmax' | 'logSoftmax'> {
  return {
    arity: 1,
    infer: ([x], { axis }) => {
      checkAxes(op, x!.shape.length, [axis]);
      check(isFloating(x!.dtype), op, () => `the primitive takes a floating input, got ${x!.dtype}; the user-facing op casts first.`);
      return { shape: [...x!.shape], dtype: x!.dtype };
    },
    cost: (inputs, _a, out) => elementwiseCost(inputs, out, 6),
  };
}

function argReduceDef(op: 'argmax' | 'argmin'): PrimitiveDef<'argmax' | 'argmin'> {
  return {
    arity: 1,
    infer: ([x], { axis, keepdim }) => {
      checkAxes(op, x!.shape.length, [axis]);
      check(x!.shape.length === 0 || x!.shape[axis] !== 0, op, () => `cannot take ${op} over axis ${axis} of size 0 (shape ${fmtShape(x!.shape)}).`);
      return { shape: x!.shape.length === 0 ? [] : reducedShape(x!.shape, [axis], keepdim), dtype: 'int32' };
    },
    cost: (inputs) => ({ flops: sizeOf(inputs[0]!.shape), bytesRead: bytes(inputs[0]!), bytesWritten: 0 }),
  };
}

/** The layerNorm primitives normalize non-empty rows along the last axis of a floating tensor. */
function checkRowsInput(op: string, x: ValueInfo): void {
  check(x.shape.length >= 1 && x.shape[x.shape.length - 1]! > 0, op, () =>
    `the primitive normalizes along a non-empty last axis, got shape ${fmtShape(x.shape)}; the user-facing layerNorm reshapes first.`);
  check(isFloating(x.dtype), op, () => `the primitive takes a floating input, got ${x.dtype}; the user-facing op checks first.`);
}

function attentionDims(q: ValueInfo, k: ValueInfo, v: ValueInfo): { batch: number[]; l: number; s: number; e: number; ev: number } {
  const r = q.shape.length;
  return { batch: q.shape.slice(0, r - 2), l: q.shape[r - 2]!, s: k.shape[r - 2]!, e: q.shape[r - 1]!, ev: v.shape[r - 1]! };
}

/** The attention primitives take q [..., L, E], k [..., S, E], v [..., S, Ev]: one rank, one batch, one floating dtype, S >= 1. */
function checkAttentionInputs(op: string, q: ValueInfo, k: ValueInfo, v: ValueInfo): ReturnType<typeof attentionDims> {
  const r = q.shape.length;
  const shapes = () => `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  check(r >= 2 && k.shape.length === r && v.shape.length === r, op, () =>
    `q, k and v must have one rank >= 2 ([..., L, E], [..., S, E], [..., S, Ev]), got ${shapes()}; the user-facing op broadcasts first.`);
  const d = attentionDims(q, k, v);
  check(shapesEqual(k.shape.slice(0, r - 2), d.batch) && shapesEqual(v.shape.slice(0, r - 2), d.batch), op, () =>
    `batch dimensions differ: ${shapes()}; the user-facing op broadcasts first.`);
  check(k.shape[r - 1] === d.e && v.shape[r - 2] === d.s, op, () => `q and k need one feature size E and k and v one key count S, got ${shapes()}.`);
  check(d.s >= 1, op, () => `needs at least one key, got ${shapes()}; the user-facing op handles S = 0.`);
  check(isFloating(q.dtype) && k.dtype === q.dtype && v.dtype === q.dtype, op, () =>
    `q, k and v must share one floating dtype, got ${q.dtype}, ${k.dtype}, ${v.dtype}.`);
  return d;
}

/** Query-key pairs that attention computes per batch entry: L·S, or Σ_i min(i + 1, S) when causal. */
export function attendedPairs(l: number, s: number, causal: boolean): number {
  if (!causal) return l * s;
  const full = Math.min(l, s);
  return (full * (full + 1)) / 2 + (l - full) * s;
}

type DefTable = { [P in PrimitiveName]: PrimitiveDef<P> };

/** randomUniform/randomNormal/randomInteger: no inputs, the shape and dtype come from the attrs. */
function randomDef<P extends RandomOp>(op: P, flopsPerElement: number, bounds: boolean): PrimitiveDef<P> {
  return {
    arity: 0,
    infer: (_inputs, attrs) => {
      const { shape, dtype } = attrs;
      check(Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d >= 0), op, () =>
        `shape must be an array of non-negative integers, got ${JSON.stringify(shape)}.`);
      if (bounds) {
        const { low, high } = attrs as RandomAttrs & { low: number; high: number };
        check(Number.isFinite(low) && Number.isFinite(high), op, () => `low and high must be finite numbers, got low=${low}, high=${high}.`);
      }
      return { shape: [...shape], dtype };
    },
    cost: (_inputs, _a, out) => ({ flops: sizeOf(out.shape) * flopsPerElement, bytesRead: 0, bytesWritten: bytes(out) }),
  };
}

const unaryDefs = {} as { [P in UnaryOp]: PrimitiveDef<P> };
for (const op of UNARY_FLOAT_OPS) unaryDefs[op] = unaryDef('float', op === 'erf' ? 20 : op === 'gelu' ? 24 : op === 'geluGrad' ? 32 : 4);
for (const op of UNARY_SAME_OPS) unaryDefs[op] = unaryDef('same');
for (const op of UNARY_PREDICATE_OPS) unaryDefs[op] = unaryDef('predicate');
const binaryDefs = {} as { [P in BinaryOp]: PrimitiveDef<P> };
for (const op of BINARY_ARITH_OPS) binaryDefs[op] = binaryDef(op, 'arith');
for (const op of BINARY_COMPARE_OPS) binaryDefs[op] = binaryDef(op, 'compare');
const reduceDefs = {} as { [P in ReduceOp]: PrimitiveDef<P> };
for (const op of REDUCE_OPS) reduceDefs[op] = reduceDef(op);

export const primitives: DefTable = {
  ...linalgDefs,
  ...unaryDefs,
  ...binaryDefs,
  ...reduceDefs,
  where: {
    arity: 3,
    infer: ([c, x, y]) => {
      check(c!.dtype === 'bool', 'where', () => `condition must be bool, got ${c!.dtype}.`);
      check(shapesEqual(c!.shape, x!.shape), 'where', () => `primitive inputs must have one shape (got ${fmtShape(c!.shape)} and ${fmtShape(x!.shape)}).`);
      sameShapeSameDtype('where', x!, y!);
      return { shape: [...x!.shape], dtype: x!.dtype };
    },
    cost: (inputs, _a, out) => elementwiseCost(inputs, out),
  },
  cast: {
    arity: 1,
    infer: ([x], { dtype }) => ({ shape: [...x!.shape], dtype }),
    cost: (inputs, _a, out) => movementCost(inputs, out),
  },
  argmax: argReduceDef('argmax'),
  argmin: argReduceDef('argmin'),
  softmax: softmaxDef('softmax'),
  logSoftmax: softmaxDef('logSoftmax'),
  layerNormCore: {
    arity: 1,
    infer: ([x]) => {
      checkRowsInput('layerNormCore', x!);
      return { shape: [...x!.shape], dtype: x!.dtype };
    },
    cost: (inputs, _a, out) => elementwiseCost(inputs, out, 8),
  },
  layerNormCoreGrad: {
    arity: 2,
    infer: ([x, g]) => {
      checkRowsInput('layerNormCoreGrad', x!);
      sameShapeSameDtype('layerNormCoreGrad', x!, g!);
      return { shape: [...x!.shape], dtype: x!.dtype };
    },
    cost: (inputs, _a, out) => elementwiseCost(inputs, out, 14),
  },
  layerNormRstd: {
    arity: 1,
    infer: ([x]) => {
      checkRowsInput('layerNormRstd', x!);
      return { shape: [...x!.shape.slice(0, -1), 1], dtype: x!.dtype };
    },
    cost: (inputs, _a, out) => ({ flops: 4 * sizeOf(inputs[0]!.shape), bytesRead: bytes(inputs[0]!), bytesWritten: bytes(out) }),
  },
  cumsum: {
    arity: 1,
    infer: ([x], { axis }) => {
      checkAxes('cumsum', x!.shape.length, [axis]);
      return { shape: [...x!.shape], dtype: isFloating(x!.dtype) ? x!.dtype : 'int32' };
    },
    cost: (inputs, _a, out) => elementwiseCost(inputs, out),
  },
  attention: {
    arity: 3,
    infer: ([q, k, v]) => {
      const { batch, l, ev } = checkAttentionInputs('attention', q!, k!, v!);
      return { shape: [...batch, l, ev], dtype: q!.dtype };
    },
    cost: ([q, k, v], { causal }, out) => {
      const { batch, l, s, e, ev } = attentionDims(q!, k!, v!);
      const pairs = sizeOf(batch) * attendedPairs(l, s, causal);
      return { flops: pairs * (2 * e + 2 * ev + 5), bytesRead: bytes(q!) + bytes(k!) + bytes(v!), bytesWritten: bytes(out) };
    },
  },
  attentionGrad: {
    arity: 4,
    infer: ([q, k, v, g]) => {
      const { batch, l, s, e, ev } = checkAttentionInputs('attentionGrad', q!, k!, v!);
      check(shapesEqual(g!.shape, [...batch, l, ev]) && g!.dtype === q!.dtype, 'attentionGrad', () =>
        `the output cotangent must be ${fmtShape([...batch, l, ev])} ${q!.dtype}, got ${fmtShape(g!.shape)} ${g!.dtype}.`);
      const n = sizeOf(batch);
      return { shape: [n * (l * e + s * e + s * ev)], dtype: q!.dtype };
    },
    cost: ([q, k, v, g], { causal }, out) => {
      const { batch, l, s, e, ev } = attentionDims(q!, k!, v!);
      const pairs = sizeOf(batch) * attendedPairs(l, s, causal);
      // Recomputed scores (2E), dP (2Ev), dV (2Ev), dQ and dK (2E each), softmax and dS (~8).
      return { flops: pairs * (6 * e + 4 * ev + 8), bytesRead: bytes(q!) + bytes(k!) + bytes(v!) + bytes(g!), bytesWritten: bytes(out) };
    },
  },
  quantizedMatmul: {
    infer: (inputs, a) => {
      const [x, codes, scales] = inputs;
      const zeroPoints = a.symmetric ? undefined : inputs[3];
      const bias = a.bias ? inputs[a.symmetric ? 3 : 4] : undefined;
      check(inputs.length === 3 + (a.symmetric ? 0 : 1) + (a.bias ? 1 : 0), 'quantizedMatmul', () =>
        `takes x, codes, scales${a.symmetric ? '' : ', zero points'}${a.bias ? ', bias' : ''}, got ${inputs.length} inputs.`);
      check(bias === undefined || (!a.transposed && shapesEqual(bias.shape, [a.n]) && bias.dtype === x!.dtype), 'quantizedMatmul', () =>
        `the bias must be [${a.n}] ${x!.dtype} (and only with the forward product), got ${fmtShape(bias!.shape)} ${bias!.dtype}.`);
      check(isFloating(x!.dtype) && x!.shape.length >= 1, 'quantizedMatmul', () => `x must be a floating tensor of rank >= 1, got ${fmtShape(x!.shape)} ${x!.dtype}.`);
      const inner = a.transposed ? a.n : a.k;
      check(x!.shape[x!.shape.length - 1] === inner, 'quantizedMatmul', () =>
        `x of shape ${fmtShape(x!.shape)} should have ${inner} features in its last dimension (the weight is [${a.n}, ${a.k}]${a.transposed ? ', transposed' : ''}).`);
      const rowBytes = a.bits === 4 ? (a.k + 1) >>> 1 : a.k;
      check(shapesEqual(codes!.shape, [a.n, rowBytes]) && (codes!.dtype === 'int8' || codes!.dtype === 'uint8'), 'quantizedMatmul', () =>
        `codes must be int8/uint8 [${a.n}, ${rowBytes}] for ${a.bits}-bit codes of a [${a.n}, ${a.k}] weight, got ${fmtShape(codes!.shape)} ${codes!.dtype}.`);
      check(scales!.dtype === 'float32', 'quantizedMatmul', () => `scales must be float32, got ${scales!.dtype}.`);
      check(zeroPoints === undefined || zeroPoints.dtype === 'int32', 'quantizedMatmul', () => `zero points must be int32, got ${zeroPoints!.dtype}.`);
      check(a.activations === 'none' || (!a.transposed && a.bits === 8 && a.symmetric && (a.scheme === 'per-tensor' || (a.scheme === 'per-channel' && a.axis === 0))), 'quantizedMatmul', () =>
        `activations 'dynamic-int8' needs an 8-bit symmetric weight scaled per tensor or per output channel, got ${a.bits}-bit ${a.symmetric ? 'symmetric' : 'affine'} ${a.scheme}.`);
      return { shape: [...x!.shape.slice(0, -1), a.transposed ? a.k : a.n], dtype: x!.dtype };
    },
    cost: (inputs, a, out) => {
      const rows = sizeOf(out.shape.slice(0, -1));
      return { flops: 2 * rows * a.n * a.k, bytesRead: inputs.reduce((s, v) => s + bytes(v), 0), bytesWritten: bytes(out) };
    },
  },
  matmul: {
    arity: 2,
    infer: ([a, b]) => {
      check(a!.shape.length >= 2 && b!.shape.length === a!.shape.length, 'matmul', () =>
        `primitive takes two tensors of equal rank >= 2, got ${fmtShape(a!.shape)} and ${fmtShape(b!.shape)}.`);
      const r = a!.shape.length;
      check(a!.shape[r - 1] === b!.shape[r - 2], 'matmul', () =>
        `inner dimensions differ: ${fmtShape(a!.shape)} @ ${fmtShape(b!.shape)} (${a!.shape[r - 1]} vs ${b!.shape[r - 2]}).`);
      check(shapesEqual(a!.shape.slice(0, -2), b!.shape.slice(0, -2)), 'matmul', () =>
        `batch dimensions differ: ${fmtShape(a!.shape)} @ ${fmtShape(b!.shape)}.`);
      check(a!.dtype === b!.dtype, 'matmul', () => `dtypes differ: ${a!.dtype} and ${b!.dtype}.`);
      return { shape: [...a!.shape.slice(0, -1), b!.shape[r - 1]!], dtype: a!.dtype };
    },
    cost: ([a, b], _a, out) => {
      const k = a!.shape[a!.shape.length - 1]!;
      return { flops: 2 * sizeOf(out.shape) * k, bytesRead: bytes(a!) + bytes(b!), bytesWritten: bytes(out) };
    },
  },
  reshape: {
    arity: 1,
    infer: ([x], { shape }) => {
      check(sizeOf(shape) === sizeOf(x!.shape), 'reshape', () => `cannot reshape ${fmtShape(x!.shape)} into ${fmtShape(shape)}.`);
      return { shape: [...shape], dtype: x!.dtype };
    },
    cost: viewCost,
    // Only valid when the layout allows it; dispatch materializes a contiguous input otherwise.
    view: (l, { shape }) => ({ shape: [...shape], strides: viewStridesOrThrow(l, shape), offset: l.offset }),
  },
  permute: {
    arity: 1,
    infer: ([x], { perm }) => {
      const r = x!.shape.length;
      check(perm.length === r && [...perm].sort((a, b) => a - b).every((p, i) => p === i), 'permute', () =>
        `${JSON.stringify(perm)} is not a permutation of the ${r} axes of a tensor of shape ${fmtShape(x!.shape)}.`);
      return { shape: perm.map((p) => x!.shape[p]!), dtype: x!.dtype };
    },
    cost: viewCost,
    view: (l, { perm }) => ({ shape: perm.map((p) => l.shape[p]!), strides: perm.map((p) => l.strides[p]!), offset: l.offset }),
  },
  expand: {
    arity: 1,
    infer: ([x], { shape }) => {
      const off = shape.length - x!.shape.length;
      check(off >= 0 && x!.shape.every((d, i) => d === shape[off + i] || d === 1), 'expand', () =>
        `cannot expand a tensor of shape ${fmtShape(x!.shape)} to ${fmtShape(shape)}: only size-1 dims can grow and new dims go in front.`);
      return { shape: [...shape], dtype: x!.dtype };
    },
    cost: viewCost,
    view: (l, { shape }) => {
      const off = shape.length - l.shape.length;
      const strides = shape.map((d, i) => (i < off ? 0 : l.shape[i - off] === 1 && d !== 1 ? 0 : l.strides[i - off]!));
      return { shape: [...shape], strides, offset: l.offset };
    },
  },
  slice: {
    arity: 1,
    infer: ([x], { starts, steps, sizes }) => {
      const r = x!.shape.length;
      check(starts.length === r && steps.length === r && sizes.length === r, 'slice', () => `needs one start/step/size per axis (rank ${r}).`);
      for (let i = 0; i < r; i++) {
        check(steps[i]! >= 1 && starts[i]! >= 0 && (sizes[i] === 0 || starts[i]! + (sizes[i]! - 1) * steps[i]! < x!.shape[i]!), 'slice', () =>
          `axis ${i}: start ${starts[i]}, step ${steps[i]}, size ${sizes[i]} do not fit in a dimension of ${x!.shape[i]}.`);
      }
      return { shape: [...sizes], dtype: x!.dtype };
    },
    cost: viewCost,
    view: (l, { starts, steps, sizes }) => ({
      shape: [...sizes],
      strides: l.strides.map((s, i) => s * steps[i]!),
      offset: l.offset + starts.reduce((o, st, i) => o + st * l.strides[i]!, 0),
    }),
  },
  unfold: {
    arity: 1,
    infer: ([x], { axis, size, step }) => {
      checkAxes('unfold', x!.shape.length, [axis]);
      const n = x!.shape[axis]!;
      check(size >= 1 && size <= n && step >= 1, 'unfold', () => `window size ${size} with step ${step} does not fit in axis ${axis} of size ${n}.`);
      const shape = [...x!.shape];
      shape[axis] = Math.floor((n - size) / step) + 1;
      shape.push(size);
      return { shape, dtype: x!.dtype };
    },
    cost: viewCost,
    view: (l, { axis, size, step }) => {
      const shape = [...l.shape];
      const strides = [...l.strides];
      shape[axis] = Math.floor((l.shape[axis]! - size) / step) + 1;
      strides[axis] = l.strides[axis]! * step;
      shape.push(size);
      strides.push(l.strides[axis]!);
      return { shape, strides, offset: l.offset };
    },
  },
  contiguous: {
    arity: 1,
    infer: ([x]) => ({ shape: [...x!.shape], dtype: x!.dtype }),
    cost: (inputs, _a, out) => movementCost(inputs, out),
  },
  pad: {
    arity: 1,
    infer: ([x], { pads }) => {
      check(pads.length === x!.shape.length && pads.every(([a, b]) => a >= 0 && b >= 0), 'pad', () =>
        `needs a non-negative [before, after] pair per axis for shape ${fmtShape(x!.shape)}, got ${JSON.stringify(pads)}.`);
      return { shape: x!.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]), dtype: x!.dtype };
    },
    cost: (inputs, _a, out) => movementCost(inputs, out),
  },
  sliceBackward: {
    arity: 1,
    infer: ([g], { inputShape }) => ({ shape: [...inputShape], dtype: g!.dtype }),
    cost: (inputs, _a, out) => movementCost(inputs, out),
  },
  unfoldBackward: {
    arity: 1,
    infer: ([g], { inputShape, axis, size, step }) => {
      const windows = Math.floor((inputShape[axis]! - size) / step) + 1;
      const expected = [...inputShape];
      expected[axis] = windows;
      expected.push(size);
      check(shapesEqual(g!.shape, expected), 'unfoldBackward', () => `gradient shape ${fmtShape(g!.shape)} should be ${fmtShape(expected)}.`);
      return { shape: [...inputShape], dtype: g!.dtype };
    },
    cost: (inputs, _a, out) => elementwiseCost(inputs, out),
  },
  cat: {
    infer: (inputs, { axis }) => {
      check(inputs.length >= 1, 'cat', () => 'needs at least one tensor.');
      const first = inputs[0]!;
      checkAxes('cat', first.shape.length, [axis]);
      let total = 0;
      for (const t of inputs) {
        check(t.dtype === first.dtype, 'cat', () => `primitive inputs must share a dtype (got ${first.dtype} and ${t.dtype}).`);
        check(t.shape.length === first.shape.length && t.shape.every((d, i) => i === axis || d === first.shape[i]), 'cat', () =>
          `shapes ${inputs.map((v) => fmtShape(v.shape)).join(', ')} differ outside axis ${axis}.`);
        total += t.shape[axis]!;
      }
      const shape = [...first.shape];
      shape[axis] = total;
      return { shape, dtype: first.dtype };
    },
    cost: (inputs, _a, out) => movementCost(inputs, out),
  },
  flip: {
    arity: 1,
    infer: ([x], { axes }) => {
      checkAxes('flip', x!.shape.length, axes);
      return { shape: [...x!.shape], dtype: x!.dtype };
    },
    cost: (inputs, _a, out) => movementCost(inputs, out),
  },
  gather: {
    arity: 2,
    infer: ([x, index], { axis }) => {
      checkAxes('gather', x!.shape.length, [axis]);
      check(index!.dtype === 'int32', 'gather', () => `index must be int32, got ${index!.dtype}.`);
      check(index!.shape.length === x!.shape.length, 'gather', () =>
        `index ${fmtShape(index!.shape)} must have the rank of the input ${fmtShape(x!.shape)}.`);
      return { shape: [...index!.shape], dtype: x!.dtype };
    },
    cost: ([x, index], _a, out) => ({ flops: 0, bytesRead: bytes(index!) + bytes(out), bytesWritten: bytes(out) + 0 * bytes(x!) }),
  },
  scatterAdd: {
    arity: 3,
    infer: ([base, index, src], { axis }) => {
      checkAxes('scatterAdd', base!.shape.length, [axis]);
      check(index!.dtype === 'int32', 'scatterAdd', () => `index must be int32, got ${index!.dtype}.`);
      check(shapesEqual(index!.shape, src!.shape), 'scatterAdd', () => `index ${fmtShape(index!.shape)} and src ${fmtShape(src!.shape)} must have one shape.`);
      check(base!.dtype === src!.dtype, 'scatterAdd', () => `base and src dtypes differ: ${base!.dtype} vs ${src!.dtype}.`);
      return { shape: [...base!.shape], dtype: base!.dtype };
    },
    cost: ([base, index, src], _a, out) => ({ flops: sizeOf(src!.shape), bytesRead: bytes(base!) + bytes(index!) + bytes(src!), bytesWritten: bytes(out) }),
  },
  argsort: {
    arity: 1,
    infer: ([x], { axis }) => {
      checkAxes('argsort', x!.shape.length, [axis]);
      return { shape: [...x!.shape], dtype: 'int32' };
    },
    cost: (inputs, _a, out) => {
      const n = sizeOf(inputs[0]!.shape);
      return { flops: n * Math.max(1, Math.log2(Math.max(2, n))), bytesRead: bytes(inputs[0]!), bytesWritten: bytes(out) };
    },
  },
  im2col: {
    arity: 1,
    infer: ([x], attrs) => ({ shape: patchMatrixShape('im2col', x!.shape, attrs), dtype: x!.dtype }),
    cost: (inputs, _a, out) => movementCost(inputs, out),
  },
  col2im: {
    arity: 1,
    infer: ([g], attrs) => {
      const expected = patchMatrixShape('col2im', attrs.inputShape, attrs);
      check(shapesEqual(g!.shape, expected), 'col2im', () =>
        `patches of shape ${fmtShape(g!.shape)} should be ${fmtShape(expected)} for an input of shape ${fmtShape(attrs.inputShape)}.`);
      return { shape: [...attrs.inputShape], dtype: g!.dtype };
    },
    cost: (inputs, _a, out) => elementwiseCost(inputs, out),
  },
  // Generator.uniform is two 32-bit draws and a few integer ops; normal adds a log, a sqrt and a sin or cos per pair.
  randomUniform: randomDef('randomUniform', 12, true),
  randomNormal: randomDef('randomNormal', 30, false),
  randomInteger: randomDef('randomInteger', 14, true),
  convDirect: {
    infer: (inputs, attrs) => {
      check(inputs.length === 2 || inputs.length === 3, 'convDirect', () => `expects x, w and an optional bias, got ${inputs.length} input(s).`);
      const [x, w, b] = inputs as [ValueInfo, ValueInfo, ValueInfo | undefined];
      const out = convGeometry('convDirect', x, w, attrs);
      check(b === undefined || (b.shape.length === 1 && b.shape[0] === w.shape[0] && b.dtype === x.dtype), 'convDirect', () =>
        `bias must be [${w.shape[0]}] of dtype ${x.dtype}, got ${fmtShape(b!.shape)} ${b!.dtype}.`);
      return { shape: [x.shape[0]!, w.shape[0]!, ...out], dtype: x.dtype };
    },
    cost: (inputs, _a, out) => ({
      flops: convFlops(sizeOf(out.shape), inputs[1]!) + (inputs.length === 3 ? sizeOf(out.shape) : 0),
      bytesRead: inputs.reduce((s, v) => s + bytes(v), 0), bytesWritten: bytes(out),
    }),
  },
  convWeightGrad: {
    arity: 2,
    infer: ([x, g], attrs) => {
      const out = sweepWindows('convWeightGrad', x!.shape, attrs, attrs.pads);
      const cOut = g!.shape[1]!;
      check(g!.shape.length === x!.shape.length && g!.shape[0] === x!.shape[0] && g!.shape.slice(2).every((d, i) => d === out[i]), 'convWeightGrad', () =>
        `cotangent ${fmtShape(g!.shape)} should be [${x!.shape[0]}, C_out, ${out.join(', ')}] for an input of shape ${fmtShape(x!.shape)}.`);
      check(Number.isInteger(attrs.groups) && attrs.groups >= 1 && cOut % attrs.groups === 0 && x!.shape[1]! % attrs.groups === 0, 'convWeightGrad', () =>
        `groups=${attrs.groups} must divide the input channels (${x!.shape[1]}) and the output channels (${cOut}).`);
      check(x!.dtype === g!.dtype && isFloating(x!.dtype), 'convWeightGrad', () => `input and cotangent must share one floating dtype, got ${x!.dtype} and ${g!.dtype}.`);
      return { shape: [cOut, x!.shape[1]! / attrs.groups, ...attrs.kernel], dtype: x!.dtype };
    },
    cost: ([x, g], _a, out) => ({ flops: convFlops(sizeOf(g!.shape), out), bytesRead: bytes(x!) + bytes(g!), bytesWritten: bytes(out) }),
  },
  maxPoolIndices: {
    arity: 1,
    infer: ([x], attrs) => ({ shape: [...x!.shape.slice(0, 2), ...sweepWindows('maxPoolIndices', x!.shape, attrs)], dtype: 'int32' }),
    cost: ([x], { kernel }, out) => ({ flops: sizeOf(out.shape) * kernel.reduce((a, b) => a * b, 1), bytesRead: bytes(x!), bytesWritten: bytes(out) }),
  },
};

/** Checks x [N, C, *spatial] against w [C_out, C/groups, *kernel] and returns the output spatial sizes. */
function convGeometry(op: string, x: ValueInfo, w: ValueInfo, attrs: PatchAttrs): number[] {
  const out = sweepWindows(op, x.shape, attrs, attrs.pads);
  const dims = attrs.kernel.length;
  const { groups } = attrs;
  check(w.shape.length === dims + 2 && w.shape.slice(2).every((k, i) => k === attrs.kernel[i]), op, () =>
    `weight ${fmtShape(w.shape)} must be [C_out, C_in/groups, ${attrs.kernel.join(', ')}] (the kernel of the attrs).`);
  check(Number.isInteger(groups) && groups >= 1 && w.shape[0]! % groups === 0 && w.shape[1]! * groups === x.shape[1], op, () =>
    `weight ${fmtShape(w.shape)} with groups=${groups} does not fit an input of ${x.shape[1]} channels ${fmtShape(x.shape)}; `
    + 'C_out must divide by groups and C_in/groups · groups must equal the input channels.');
  check(x.dtype === w.dtype && isFloating(x.dtype), op, () => `input and weight must share one floating dtype, got ${x.dtype} and ${w.dtype}; the user-facing op casts first.`);
  return out;
}

const convFlops = (outSize: number, w: ValueInfo): number => 2 * outSize * sizeOf(w.shape.slice(1));

function viewStridesOrThrow(l: Layout, shape: readonly number[]): number[] {
  const s = viewStridesImpl(l.shape, l.strides, shape);
  if (s === undefined) throw new Error(`reshape: internal error: layout ${fmtShape(l.shape)}/${fmtShape(l.strides)} cannot be viewed as ${fmtShape(shape)}.`);
  return s;
}

/** True when a primitive produces a view of its input rather than new memory. */
export function isViewPrimitive(p: PrimitiveName): boolean {
  return primitives[p].view !== undefined;
}

/** Primitives whose outputs carry no gradient (integer/bool results). */
export function isNonDifferentiableOutput(dtype: DType): boolean {
  return !isFloating(dtype);
}
