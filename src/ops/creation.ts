// Creating tensors: from data, filled, ranges, identity, random.
import { getBackend } from '../backend/backend.js';
import { type DType, allocStorage, castScalar, defaultFloatDType, dtypeOfArray, isDType, isFloating, type TypedArray } from '../core/dtype.js';
import { TesseraError, check, fmtShape } from '../core/errors.js';
import { sizeOf } from '../core/shape.js';
import { Tensor, type NestedArray } from '../core/tensor.js';
import { defaultGenerator, type Generator } from '../core/random.js';
import { bind } from './dispatch.js';
import type { PrimitiveAttrs, RandomAttrs, RandomOp } from './primitives.js';

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
  /** Backend name ('cpu', 'wasm', ...); defaults to the current one (setBackend). */
  backend?: string;
}
export interface RandomOptions extends CreateOptions {
  /**
   * Where the numbers come from (default: the global generator, seeded by manualSeed). Under jit
   * the graph keeps this object and draws from it on every call (a generator passed as an
   * argument of the jitted function is part of its signature: another one traces again).
   */
  generator?: Generator;
}

function checkShape(op: string, shape: readonly number[]): void {
  check(Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d >= 0), op, () =>
    `shape must be an array of non-negative integers, got ${JSON.stringify(shape)}.`);
}

/** Builds a tensor from a contiguous array of values already in storage form. */
export function fromValues(values: TypedArray, shape: readonly number[], dtype: DType, opts: CreateOptions = {}): Tensor {
  check(values.length === sizeOf(shape), 'tensor', () => `${values.length} values do not fill shape ${fmtShape(shape)}.`);
  const backend = getBackend(opts.backend);
  const t = Tensor.fromStorage(backend.fromArray(dtype, values), shape, dtype);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

function nestedShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0]!;
  }
  return shape;
}

/** A tensor from nested arrays, a typed array (flat, or with `shape`), a number or a boolean. */
export function tensor(data: NestedArray | TypedArray, opts: CreateOptions & { shape?: number[] } = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    const arr = data as TypedArray;
    const from = dtypeOfArray(arr);
    check(from !== undefined, 'tensor', () => `unsupported typed array ${(arr as object).constructor.name}; use Float32Array, Float64Array, Int32Array, Int8Array or Uint8Array.`);
    const dtype = opts.dtype ?? from!;
    const shape = opts.shape ?? [arr.length];
    return fromValues(convert(arr, dtype), shape, dtype, opts);
  }
  const shape = nestedShape(data);
  const flat: (number | boolean)[] = [];
  const walk = (x: NestedArray, dim: number): void => {
    if (dim === shape.length) {
      check(!Array.isArray(x), 'tensor', () => `ragged nested array: expected a number at depth ${dim} for shape ${fmtShape(shape)}.`);
      check(typeof x === 'number' || typeof x === 'boolean', 'tensor', () => `elements must be numbers or booleans, got ${typeof x}.`);
      flat.push(x as number | boolean);
      return;
    }
    check(Array.isArray(x) && x.length === shape[dim], 'tensor', () =>
      `ragged nested array: expected length ${shape[dim]} at depth ${dim}, got ${Array.isArray(x) ? x.length : typeof x}.`);
    for (const y of x as NestedArray[]) walk(y, dim + 1);
  };
  walk(data, 0);
  // JavaScript cannot tell 1 from 1.0, so numbers give the default float dtype (as in TensorFlow.js)
  // and only all-boolean data gives bool; ask for integers with { dtype: 'int32' } or an Int32Array.
  let dtype = opts.dtype;
  if (dtype === undefined) dtype = flat.length > 0 && flat.every((v) => typeof v === 'boolean') ? 'bool' : defaultFloatDType();
  const values = allocStorage(dtype, flat.length);
  for (let i = 0; i < flat.length; i++) values[i] = castScalar(Number(flat[i]), dtype);
  // An explicit shape reads the values in row-major order, as it does for a typed array; the
  // nested array's own shape was only used to flatten it. fromValues checks the element count.
  return fromValues(values, opts.shape ?? shape, dtype, opts);
}

function convert(arr: TypedArray, dtype: DType): TypedArray {
  const out = allocStorage(dtype, arr.length);
  if (isFloating(dtype)) out.set(arr);
  else for (let i = 0; i < arr.length; i++) out[i] = castScalar(arr[i]!, dtype);
  return out;
}

/** A 0-d tensor holding one value (used for scalars mixed into ops). */
export function scalar(value: number | boolean, dtype: DType, backend?: string): Tensor {
  const values = allocStorage(dtype, 1);
  values[0] = castScalar(Number(value), dtype);
  return fromValues(values, [], dtype, backend === undefined ? {} : { backend });
}

export function full(shape: readonly number[], value: number | boolean, opts: CreateOptions = {}): Tensor {
  checkShape('full', shape);
  // Like torch.full: the fill value's kind picks the dtype (bool, int32 for integers, else float).
  const dtype = opts.dtype ?? (typeof value === 'boolean' ? 'bool' : Number.isInteger(value) ? 'int32' : defaultFloatDType());
  const values = allocStorage(dtype, sizeOf(shape));
  const v = castScalar(Number(value), dtype);
  if (v !== 0) values.fill(v);
  return fromValues(values, shape, dtype, opts);
}
export const zeros = (shape: readonly number[], opts: CreateOptions = {}): Tensor => full(shape, 0, { dtype: defaultFloatDType(), ...opts });
export const ones = (shape: readonly number[], opts: CreateOptions = {}): Tensor => full(shape, 1, { dtype: defaultFloatDType(), ...opts });

function likeOptions(t: Tensor, opts: CreateOptions): CreateOptions {
  return { dtype: opts.dtype ?? t.dtype, backend: opts.backend ?? t.backend, ...(opts.requiresGrad !== undefined ? { requiresGrad: opts.requiresGrad } : {}) };
}
export const zerosLike = (t: Tensor, opts: CreateOptions = {}): Tensor => full(t.shape, 0, likeOptions(t, opts));
export const onesLike = (t: Tensor, opts: CreateOptions = {}): Tensor => full(t.shape, 1, likeOptions(t, opts));
export const fullLike = (t: Tensor, value: number, opts: CreateOptions = {}): Tensor => full(t.shape, value, likeOptions(t, opts));

/** Values from start (inclusive) to end (exclusive) by step; arange(n) = 0..n-1. Integers give int32. */
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  check(step !== 0 && Number.isFinite(step), 'arange', () => `step must be a non-zero finite number, got ${step}.`);
  check((end - start) / step >= 0 || start === end, 'arange', () => `the range [${start}, ${end}) cannot be walked with step ${step}.`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dtype = opts.dtype ?? ([start, end, step].every(Number.isInteger) ? 'int32' : defaultFloatDType());
  const values = allocStorage(dtype, n);
  for (let i = 0; i < n; i++) values[i] = castScalar(start + i * step, dtype);
  return fromValues(values, [n], dtype, opts);
}

/** `steps` evenly spaced values from start to end, both included. */
export function linspace(start: number, end: number, steps: number, opts: CreateOptions = {}): Tensor {
  check(Number.isInteger(steps) && steps >= 0, 'linspace', () => `steps must be a non-negative integer, got ${steps}.`);
  const dtype = opts.dtype ?? defaultFloatDType();
  const values = allocStorage(dtype, steps);
  const delta = steps > 1 ? (end - start) / (steps - 1) : 0;
  // Like PyTorch: fill the first half from the start and the second half from the end, for symmetry.
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) values[i] = castScalar(i < half ? start + i * delta : end - (steps - 1 - i) * delta, dtype);
  return fromValues(values, [steps], dtype, opts);
}

/** The n x m identity (m defaults to n). */
export function eye(n: number, m = n, opts: CreateOptions = {}): Tensor {
  checkShape('eye', [n, m]);
  const dtype = opts.dtype ?? defaultFloatDType();
  const values = allocStorage(dtype, n * m);
  for (let i = 0; i < Math.min(n, m); i++) values[i * m + i] = 1;
  return fromValues(values, [n, m], dtype, opts);
}

/**
 * Draws through a random primitive (see RandomAttrs in primitives.ts), so eager code and traced
 * graphs share one path: under jit the draw is a graph node that takes fresh numbers from the
 * generator on every call, in the order the eager code would.
 */
function randomDraw<P extends RandomOp>(op: string, prim: P, shape: readonly number[], dtype: DType, opts: RandomOptions,
  extra: Omit<PrimitiveAttrs[P], keyof RandomAttrs>): Tensor {
  checkShape(op, shape);
  const attrs = { ...extra, shape: [...shape], dtype, backend: getBackend(opts.backend).name, generator: opts.generator ?? defaultGenerator } as PrimitiveAttrs[P];
  const t = bind(prim, [], attrs);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

/** Uniform on [0, 1). */
export function rand(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const dtype = opts.dtype ?? defaultFloatDType();
  check(isFloating(dtype), 'rand', () => `dtype must be floating, got ${dtype}.`);
  return randomDraw('rand', 'randomUniform', shape, dtype, opts, { low: 0, high: 1 });
}

/** Standard normal. */
export function randn(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const dtype = opts.dtype ?? defaultFloatDType();
  check(isFloating(dtype), 'randn', () => `dtype must be floating, got ${dtype}.`);
  return randomDraw('randn', 'randomNormal', shape, dtype, opts, {});
}

/** Uniform integers in [low, high). */
export function randint(low: number, high: number, shape: readonly number[], opts: RandomOptions = {}): Tensor {
  check(Number.isInteger(low) && Number.isInteger(high) && high > low, 'randint', () => `needs integers low < high, got low=${low}, high=${high}.`);
  return randomDraw('randint', 'randomInteger', shape, opts.dtype ?? 'int32', opts, { low, high });
}

/** Uniform on [low, high) with the given shape (like torch.empty(...).uniform_). */
export function uniform(shape: readonly number[], low: number, high: number, opts: RandomOptions = {}): Tensor {
  const dtype = opts.dtype ?? defaultFloatDType();
  return randomDraw('uniform', 'randomUniform', shape, dtype, opts, { low, high });
}

export function assertDType(x: unknown, op: string): DType {
  if (!isDType(x)) throw new TesseraError(`${op}: unknown dtype ${JSON.stringify(x)}; use one of float32, float64, float16, bfloat16, int32, int8, uint8, bool.`);
  return x;
}
