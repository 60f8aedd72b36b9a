// Reference kernels: every primitive, any strides, float64-capable. Written for clarity first; the
// wasm backend is the fast path. Each kernel returns a new contiguous storage.
import type { Kernel, KernelInput, KernelTable, OutputInfo, Storage } from '../backend.js';
import { allocStorage, castScalar, isFloating, type TypedArray } from '../../core/dtype.js';
import { TesseraError } from '../../core/errors.js';
import { contiguousStrides, sizeOf } from '../../core/shape.js';
import {
  BINARY_ARITH_OPS, BINARY_COMPARE_OPS, REDUCE_OPS, UNARY_FLOAT_OPS, UNARY_PREDICATE_OPS, UNARY_SAME_OPS,
  type BinaryOp, type PrimitiveName, type ReduceAttrs, type ReduceOp, type UnaryOp,
} from '../../ops/primitives.js';
import { erf, gelu, geluGrad, powC, roundHalfEven, sigmoid } from './math.js';
import { accumulateStrided, arrayOf, contiguousValues, forEachPosition, permutedLayout, scatterStrided } from './strided.js';
import { gatherStrided } from '../../core/tensor.js';
import { makeWindowKernels } from './window-kernels.js';
import { makeRandomKernels } from './random-kernels.js';
import { makeConvKernels } from './conv-kernels.js';
import { makeAttentionKernels } from './attention-kernels.js';
import { makeQuantizedKernels } from './quantized-kernels.js';
import { makeLinalgKernels } from './linalg-kernels.js';

/** Set by backend.ts: allocates a storage on the cpu backend around an array. */
let wrap: (out: OutputInfo, data: TypedArray) => Storage = () => {
  throw new Error('cpu kernels used before the cpu backend was created');
};
export function setStorageWrapper(fn: (out: OutputInfo, data: TypedArray) => Storage): void {
  wrap = fn;
}

const alloc = (out: OutputInfo): TypedArray => allocStorage(out.dtype, sizeOf(out.shape));

const UNARY_FNS: Record<UnaryOp, (x: number) => number> = {
  exp: Math.exp,
  log: Math.log,
  log1p: Math.log1p,
  expm1: Math.expm1,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  sigmoid,
  erf,
  gelu,
  geluGrad,
  neg: (x) => -x,
  abs: Math.abs,
  relu: (x) => (x > 0 ? x : Number.isNaN(x) ? x : 0),
  sign: (x) => (Number.isNaN(x) ? NaN : Math.sign(x) + 0),
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundHalfEven,
  logicalNot: (x) => (x === 0 ? 1 : 0),
  isnan: (x) => (Number.isNaN(x) ? 1 : 0),
};

const BINARY_FNS: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: powC,
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a > b ? a : b),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a < b ? a : b),
  reluGrad: (x, g) => (x > 0 ? g : 0),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  logicalAnd: (a, b) => (a !== 0 && b !== 0 ? 1 : 0),
  logicalOr: (a, b) => (a !== 0 || b !== 0 ? 1 : 0),
};

function unaryKernel(op: UnaryOp): Kernel<UnaryOp> {
  const f = UNARY_FNS[op];
  return ([x], _attrs, out) => {
    const src = contiguousValues(x!);
    const dst = alloc(out);
    for (let i = 0; i < dst.length; i++) dst[i] = f(src[i]!);
    return wrap(out, dst);
  };
}

function binaryKernel(op: BinaryOp): Kernel<BinaryOp> {
  const f = BINARY_FNS[op];
  const intDivCheck = op === 'pow';
  return ([a, b], _attrs, out) => {
    const x = contiguousValues(a!);
    const y = contiguousValues(b!);
    const dst = alloc(out);
    if (intDivCheck && !isFloating(a!.dtype)) {
      for (let i = 0; i < dst.length; i++) {
        if (y[i]! < 0 && x[i] !== 1 && x[i] !== -1) {
          throw new TesseraError(`pow: integers to negative integer powers are not allowed (${x[i]} ** ${y[i]}); cast the base to float first.`);
        }
        dst[i] = castScalar(f(x[i]!, y[i]!), out.dtype);
      }
      return wrap(out, dst);
    }
    for (let i = 0; i < dst.length; i++) dst[i] = f(x[i]!, y[i]!);
    return wrap(out, dst);
  };
}

/** Lays the input out as [kept..., reduced...] rows: returns the values and the row length. */
function rowsOverAxes(x: KernelInput, axes: readonly number[]): { values: TypedArray; rowLength: number } {
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const perm = [...kept, ...axes];
  const { shape, strides } = permutedLayout(x, perm);
  const arr = arrayOf(x);
  const values = new (arr.constructor as { new (n: number): TypedArray })(sizeOf(shape));
  gatherStrided(arr, shape, strides, x.offset, values);
  return { values, rowLength: axes.reduce((n, a) => n * x.shape[a]!, 1) };
}

function reduceKernel(op: ReduceOp): Kernel<ReduceOp> {
  return ([x], { axes }: ReduceAttrs, out) => {
    const { values, rowLength } = rowsOverAxes(x!, axes);
    const dst = alloc(out);
    const rows = dst.length;
    for (let r = 0; r < rows; r++) {
      const base = r * rowLength;
      let acc: number;
      switch (op) {
        case 'sum': {
          acc = 0;
          for (let j = 0; j < rowLength; j++) acc += values[base + j]!;
          break;
        }
        case 'prod': {
          acc = 1;
          for (let j = 0; j < rowLength; j++) acc *= values[base + j]!;
          break;
        }
        case 'max': {
          acc = -Infinity;
          for (let j = 0; j < rowLength; j++) {
            const v = values[base + j]!;
            if (v > acc || Number.isNaN(v)) acc = v;
            if (Number.isNaN(acc)) break;
          }
          break;
        }
        case 'min': {
          acc = Infinity;
          for (let j = 0; j < rowLength; j++) {
            const v = values[base + j]!;
            if (v < acc || Number.isNaN(v)) acc = v;
            if (Number.isNaN(acc)) break;
          }
          break;
        }
      }
      dst[r] = acc;
    }
    return wrap(out, dst);
  };
}

function argReduceKernel(wantMax: boolean): Kernel<'argmax' | 'argmin'> {
  return ([x], { axis }, out) => {
    const axes = x!.shape.length === 0 ? [] : [axis];
    const { values, rowLength } = rowsOverAxes(x!, axes);
    const dst = alloc(out);
    for (let r = 0; r < dst.length; r++) {
      const base = r * rowLength;
      let best = 0;
      let bestV = values[base]!;
      if (!Number.isNaN(bestV)) {
        for (let j = 1; j < rowLength; j++) {
          const v = values[base + j]!;
          // Ties keep the first index; NaN counts as the extreme value (as in PyTorch).
          if (Number.isNaN(v)) { best = j; break; }
          if (wantMax ? v > bestV : v < bestV) { best = j; bestV = v; }
        }
      }
      dst[r] = best;
    }
    return wrap(out, dst);
  };
}

/** Output of `shape` (contiguous) viewed with axis `axis` moved last: strides for writing rows back. */
function axisLastLayout(shape: readonly number[], axis: number): { shape: number[]; strides: number[]; perm: number[] } {
  const perm = [...shape.keys()].filter((i) => i !== axis);
  perm.push(axis);
  const cs = contiguousStrides(shape);
  return { shape: perm.map((p) => shape[p]!), strides: perm.map((p) => cs[p]!), perm };
}

/**
 * softmax (or, with `log`, logSoftmax) of the `length` values src[srcAt + j·srcStride] into
 * dst[dstAt + j·dstStride], in float64: shift by the line's max (0 where it is ±inf, or the line
 * holds NaN: its results are NaN anyway), then e / Σ e or (x − shift) − log Σ e. `scratch` holds
 * at least `length` values. The reference kernels and the cpu planned executor share it.
 */
export function softmaxLine(src: ArrayLike<number>, srcAt: number, srcStride: number, dst: { [i: number]: number }, dstAt: number, dstStride: number,
  length: number, log: boolean, scratch: Float64Array): void {
  let m = -Infinity;
  for (let j = 0; j < length; j++) {
    const v = src[srcAt + j * srcStride]!;
    if (Number.isNaN(v)) { m = 0; break; }
    if (v > m) m = v;
  }
  const shift = Number.isFinite(m) ? m : 0;
  // scratch keeps x − shift (logSoftmax) or its exp (softmax), so each exp is computed once.
  let total = 0;
  for (let j = 0; j < length; j++) {
    const z = src[srcAt + j * srcStride]! - shift;
    const e = Math.exp(z);
    scratch[j] = log ? z : e;
    total += e;
  }
  if (log) {
    const logTotal = Math.log(total);
    for (let j = 0; j < length; j++) dst[dstAt + j * dstStride] = scratch[j]! - logTotal;
  } else {
    for (let j = 0; j < length; j++) dst[dstAt + j * dstStride] = scratch[j]! / total;
  }
}

/** Rows along `axis` through softmaxLine, written back in `out`'s contiguous layout. */
function softmaxKernel<P extends 'softmax' | 'logSoftmax'>(log: boolean): Kernel<P> {
  return ([x], { axis }, out) => {
    const { values, rowLength } = rowsOverAxes(x!, [axis]);
    const rows = rowLength === 0 ? 0 : values.length / rowLength;
    const result = new Float64Array(values.length);
    const scratch = new Float64Array(rowLength);
    for (let r = 0; r < rows; r++) softmaxLine(values, r * rowLength, 1, result, r * rowLength, 1, rowLength, log, scratch);
    const dst = alloc(out);
    const l = axisLastLayout(out.shape, axis);
    scatterStrided(dst, l.shape, l.strides, 0, result);
    return wrap(out, dst);
  };
}

const softmax = softmaxKernel<'softmax'>(false);
const logSoftmax = softmaxKernel<'logSoftmax'>(true);

/**
 * The layerNorm primitives' rows (the last axis), each with its mean and rsqrt(biased variance + eps)
 * in float64 (two passes: the variance of the centered values, as the composite computes it).
 */
function layerNormRows(x: KernelInput, eps: number, each: (values: TypedArray, base: number, length: number, mean: number, rstd: number, row: number) => void): void {
  const values = contiguousValues(x);
  const length = x.shape[x.shape.length - 1]!;
  const rows = values.length / length;
  for (let r = 0; r < rows; r++) {
    const base = r * length;
    let total = 0;
    for (let j = 0; j < length; j++) total += values[base + j]!;
    const mean = total / length;
    let squares = 0;
    for (let j = 0; j < length; j++) {
      const d = values[base + j]! - mean;
      squares += d * d;
    }
    each(values, base, length, mean, 1 / Math.sqrt(squares / length + eps), r);
  }
}

const layerNormCore: Kernel<'layerNormCore'> = ([x], { eps }, out) => {
  const dst = alloc(out);
  layerNormRows(x!, eps, (values, base, length, mean, rstd) => {
    for (let j = 0; j < length; j++) dst[base + j] = (values[base + j]! - mean) * rstd;
  });
  return wrap(out, dst);
};

const layerNormCoreGrad: Kernel<'layerNormCoreGrad'> = ([x, g], { eps }, out) => {
  const dst = alloc(out);
  const gv = contiguousValues(g!);
  layerNormRows(x!, eps, (values, base, length, mean, rstd) => {
    let total = 0, dot = 0;
    for (let j = 0; j < length; j++) {
      const gj = gv[base + j]!;
      total += gj;
      dot += gj * (values[base + j]! - mean) * rstd;
    }
    const gMean = total / length, dotMean = dot / length;
    for (let j = 0; j < length; j++) dst[base + j] = rstd * (gv[base + j]! - gMean - (values[base + j]! - mean) * rstd * dotMean);
  });
  return wrap(out, dst);
};

const layerNormRstd: Kernel<'layerNormRstd'> = ([x], { eps }, out) => {
  const dst = alloc(out);
  layerNormRows(x!, eps, (_v, _b, _l, _m, rstd, row) => { dst[row] = rstd; });
  return wrap(out, dst);
};

const cumsum: Kernel<'cumsum'> = ([x], { axis }, out) => {
  const { values, rowLength } = rowsOverAxes(x!, [axis]);
  const rows = rowLength === 0 ? 0 : values.length / rowLength;
  const scan = new Float64Array(values.length);
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    for (let j = 0; j < rowLength; j++) {
      acc += values[r * rowLength + j]!;
      scan[r * rowLength + j] = acc;
    }
  }
  const dst = alloc(out);
  const l = axisLastLayout(out.shape, axis);
  scatterStrided(dst, l.shape, l.strides, 0, scan);
  return wrap(out, dst);
};

const argsort: Kernel<'argsort'> = ([x], { axis, descending }, out) => {
  const { values, rowLength } = rowsOverAxes(x!, [axis]);
  const rows = rowLength === 0 ? 0 : values.length / rowLength;
  const sorted = new Int32Array(values.length);
  const idx: number[] = [];
  for (let r = 0; r < rows; r++) {
    const base = r * rowLength;
    idx.length = 0;
    for (let j = 0; j < rowLength; j++) idx.push(j);
    // NaN sorts as the largest value; Array.prototype.sort is stable, so ties keep their order.
    const key = (j: number): number => { const v = values[base + j]!; return Number.isNaN(v) ? Infinity : v; };
    const isNaNAt = (j: number): number => (Number.isNaN(values[base + j]!) ? 1 : 0);
    idx.sort((i, j) => {
      const c = key(i) - key(j) || isNaNAt(i) - isNaNAt(j);
      return descending ? -c : c;
    });
    for (let j = 0; j < rowLength; j++) sorted[base + j] = idx[j]!;
  }
  const dst = alloc(out);
  const l = axisLastLayout(out.shape, axis);
  scatterStrided(dst, l.shape, l.strides, 0, sorted);
  return wrap(out, dst);
};

const matmul: Kernel<'matmul'> = ([a, b], _attrs, out) => {
  const r = a!.shape.length;
  const m = a!.shape[r - 2]!, k = a!.shape[r - 1]!, n = b!.shape[r - 1]!;
  const batch = sizeOf(a!.shape.slice(0, -2));
  const av = contiguousValues(a!);
  const bv = contiguousValues(b!);
  const dst = alloc(out);
  const acc = new Float64Array(n);
  for (let t = 0; t < batch; t++) {
    const ao = t * m * k, bo = t * k * n, co = t * m * n;
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      for (let p = 0; p < k; p++) {
        const aip = av[ao + i * k + p]!;
        if (aip === 0) continue;
        const brow = bo + p * n;
        for (let j = 0; j < n; j++) acc[j] += aip * bv[brow + j]!;
      }
      for (let j = 0; j < n; j++) dst[co + i * n + j] = acc[j]!;
    }
  }
  return wrap(out, dst);
};

const where: Kernel<'where'> = ([c, x, y], _attrs, out) => {
  const cv = contiguousValues(c!), xv = contiguousValues(x!), yv = contiguousValues(y!);
  const dst = alloc(out);
  for (let i = 0; i < dst.length; i++) dst[i] = cv[i] ? xv[i]! : yv[i]!;
  return wrap(out, dst);
};

const cast: Kernel<'cast'> = ([x], { dtype }, out) => {
  const src = contiguousValues(x!);
  const dst = alloc(out);
  if (isFloating(dtype)) for (let i = 0; i < dst.length; i++) dst[i] = src[i]!;
  else for (let i = 0; i < dst.length; i++) dst[i] = castScalar(src[i]!, dtype);
  return wrap(out, dst);
};

const contiguous: Kernel<'contiguous'> = ([x], _attrs, out) => {
  const dst = alloc(out);
  dst.set(contiguousValues(x!));
  return wrap(out, dst);
};

const pad: Kernel<'pad'> = ([x], { pads, value }, out) => {
  const dst = alloc(out);
  if (value !== 0) dst.fill(value);
  const strides = contiguousStrides(out.shape);
  const offset = pads.reduce((o, [before], i) => o + before * strides[i]!, 0);
  scatterStrided(dst, x!.shape, strides, offset, contiguousValues(x!));
  return wrap(out, dst);
};

const sliceBackward: Kernel<'sliceBackward'> = ([g], { starts, steps }, out) => {
  const dst = alloc(out);
  const cs = contiguousStrides(out.shape);
  const offset = starts.reduce((o, s, i) => o + s * cs[i]!, 0);
  scatterStrided(dst, g!.shape, cs.map((s, i) => s * steps[i]!), offset, contiguousValues(g!));
  return wrap(out, dst);
};

const unfoldBackward: Kernel<'unfoldBackward'> = ([g], { axis, step }, out) => {
  const dst = alloc(out);
  const cs = contiguousStrides(out.shape);
  const strides = [...cs];
  strides[axis] = cs[axis]! * step;
  strides.push(cs[axis]!);
  accumulateStrided(dst, g!.shape, strides, 0, contiguousValues(g!));
  return wrap(out, dst);
};

const cat: Kernel<'cat'> = (inputs, { axis }, out) => {
  const dst = alloc(out);
  const cs = contiguousStrides(out.shape);
  let start = 0;
  for (const x of inputs) {
    scatterStrided(dst, x.shape, cs, start * cs[axis]!, contiguousValues(x));
    start += x.shape[axis]!;
  }
  return wrap(out, dst);
};

const flip: Kernel<'flip'> = ([x], { axes }, out) => {
  const strides = [...x!.strides];
  let offset = x!.offset;
  for (const a of axes) {
    offset += (x!.shape[a]! - 1) * strides[a]!;
    strides[a] = -strides[a]!;
  }
  const dst = alloc(out);
  gatherStrided(arrayOf(x!), x!.shape, strides, offset, dst);
  return wrap(out, dst);
};

function checkIndex(op: string, v: number, n: number, axis: number): void {
  if (!(v >= 0 && v < n)) {
    throw new TesseraError(`${op}: index ${v} is out of bounds for axis ${axis} of size ${n}. Indices must be in [0, ${n}).`);
  }
}

const gather: Kernel<'gather'> = ([x, index], { axis }, out) => {
  const iv = contiguousValues(index!);
  const xa = arrayOf(x!);
  const dst = alloc(out);
  const n = x!.shape[axis]!;
  const ishape = index!.shape;
  const rank = ishape.length;
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < dst.length; i++) {
    const v = iv[i]!;
    checkIndex('gather', v, n, axis);
    let pos = x!.offset;
    for (let d = 0; d < rank; d++) pos += (d === axis ? v : idx[d]!) * x!.strides[d]!;
    dst[i] = xa[pos]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < ishape[d]!) break;
      idx[d] = 0;
    }
  }
  return wrap(out, dst);
};

const scatterAdd: Kernel<'scatterAdd'> = ([base, index, src], { axis }, out) => {
  const dst = alloc(out);
  dst.set(contiguousValues(base!));
  const iv = contiguousValues(index!);
  const sv = contiguousValues(src!);
  const cs = contiguousStrides(out.shape);
  const n = out.shape[axis]!;
  forEachPosition(index!.shape, contiguousStrides(index!.shape), 0, (_p, i) => {
    // Recover the multi-index of element i of index/src to address the output.
    let rem = i;
    let pos = 0;
    const ishape = index!.shape;
    for (let d = ishape.length - 1; d >= 0; d--) {
      const c = rem % ishape[d]!;
      rem = (rem - c) / ishape[d]!;
      if (d === axis) {
        const v = iv[i]!;
        checkIndex('scatterAdd', v, n, axis);
        pos += v * cs[d]!;
      } else pos += c * cs[d]!;
    }
    dst[pos] = dst[pos]! + sv[i]!;
  });
  return wrap(out, dst);
};

const viewOnly = <P extends PrimitiveName>(name: P): Kernel<P> => () => {
  throw new Error(`${name} is a view primitive; dispatch handles it without a kernel.`);
};

const unary = {} as { [P in UnaryOp]: Kernel<P> };
for (const op of [...UNARY_FLOAT_OPS, ...UNARY_SAME_OPS, ...UNARY_PREDICATE_OPS]) unary[op] = unaryKernel(op);
const binary = {} as { [P in BinaryOp]: Kernel<P> };
for (const op of [...BINARY_ARITH_OPS, ...BINARY_COMPARE_OPS]) binary[op] = binaryKernel(op);
const reduce = {} as { [P in ReduceOp]: Kernel<P> };
for (const op of REDUCE_OPS) reduce[op] = reduceKernel(op);

export const cpuKernels: KernelTable = {
  ...unary,
  ...binary,
  ...reduce,
  where,
  cast,
  argmax: argReduceKernel(true),
  argmin: argReduceKernel(false),
  cumsum,
  softmax,
  logSoftmax,
  layerNormCore,
  layerNormRstd,
  layerNormCoreGrad,
  matmul,
  reshape: viewOnly('reshape'),
  permute: viewOnly('permute'),
  expand: viewOnly('expand'),
  slice: viewOnly('slice'),
  unfold: viewOnly('unfold'),
  contiguous,
  pad,
  sliceBackward,
  unfoldBackward,
  cat,
  flip,
  gather,
  scatterAdd,
  argsort,
  ...makeWindowKernels((out, data) => wrap(out, data)),
  ...makeRandomKernels((out, data) => wrap(out, data)),
  ...makeConvKernels((out, data) => wrap(out, data)),
  ...makeAttentionKernels((out, data) => wrap(out, data)),
  ...makeQuantizedKernels((out, data) => wrap(out, data)),
  ...makeLinalgKernels((out, data) => wrap(out, data)),
};
