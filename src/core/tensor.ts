// The Tensor: (storage on a backend, dtype, shape, strides, offset) plus autodiff bookkeeping.
//
// Most methods (add, sum, reshape, ...) are attached by the op modules in src/ops next to the
// function they call (see the `declare module` blocks there), so each op is defined in one place.
import type { Storage, KernelInput } from '../backend/backend.js';
import { type DType, type TypedArray, isFloating } from './dtype.js';
import { TesseraError, fmtShape } from './errors.js';
import { contiguousStrides, isContiguousLayout, sizeOf, viewSpan } from './shape.js';
import { trackStorage, noteTensorCreated, noteTensorDisposed } from './memory.js';
import type { GradNode } from '../autodiff/node.js';

let nextId = 1;

/** The id the next tensor will get: tensors with a smaller id already exist (see autodiff/cotangent-owner.ts). */
export function nextTensorId(): number {
  return nextId;
}

export type NestedArray = number | boolean | NestedArray[];

export class Tensor {
  readonly id = nextId++;
  /** Set by autodiff: the op that produced this tensor (undefined for leaves). */
  gradNode: GradNode | undefined = undefined;
  #grad: Tensor | undefined = undefined;
  /** Whether code outside autograd and the optimizers has seen the current #grad object (read or set .grad). */
  #gradSeen = false;
  /** Keep .grad on a non-leaf tensor (like torch's retain_grad). */
  retainsGrad = false;
  /** Hooks run with this tensor's gradient during backward; a hook may return a replacement. */
  readonly hooks: ((grad: Tensor) => Tensor | void)[] = [];
  /** Hooks run on a leaf after its .grad was accumulated (used to overlap gradient communication). */
  readonly postAccumulateHooks: ((t: Tensor) => void)[] = [];
  #requiresGrad = false;
  #disposed = false;

  /** Accumulated gradient of a leaf after backward(). */
  get grad(): Tensor | undefined {
    this.#gradSeen = true;
    return this.#grad;
  }

  set grad(g: Tensor | undefined) {
    this.#grad = g;
    this.#gradSeen = true;
  }

  // Gradient memory without the garbage collector. backward() stores gradients and the optimizers
  // read and drop them through the two methods below, which do not count as being seen. A
  // gradient object nobody else ever saw (no `.grad` read or write outside them) cannot be held by
  // anyone, so replacing or dropping it disposes it at once: a synchronous training loop does not
  // pile old gradients up in the wasm heap waiting for finalizers (see autodiff/cotangent-owner.ts).
  // Anything that reads `.grad` marks the object seen, and then it is left to the garbage collector.

  /** The gradient, for autograd and optimizers that neither keep nor hand out the object. */
  _peekGrad(): Tensor | undefined {
    return this.#grad;
  }

  /** Replaces the gradient (autograd's accumulation, clipping); the old one goes if unseen and `disposeUnseen`. */
  _replaceGrad(g: Tensor | undefined, disposeUnseen: boolean): void {
    const old = this.#grad;
    const oldSeen = this.#gradSeen;
    this.#grad = g;
    this.#gradSeen = false;
    if (disposeUnseen && !oldSeen && old !== undefined && old !== g) old.dispose();
  }

  constructor(
    readonly storage: Storage,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    readonly offset: number,
    readonly dtype: DType,
  ) {
    noteTensorCreated(this);
  }

  /** A fresh contiguous tensor over `storage`. */
  static fromStorage(storage: Storage, shape: readonly number[], dtype: DType = storage.dtype): Tensor {
    trackStorage(storage);
    return new Tensor(storage, [...shape], contiguousStrides(shape), 0, dtype);
  }

  get backend(): string {
    return this.storage.backend.name;
  }
  get rank(): number {
    return this.shape.length;
  }
  /** Alias of rank (PyTorch's ndim). */
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return sizeOf(this.shape);
  }
  numel(): number {
    return sizeOf(this.shape);
  }
  get isLeaf(): boolean {
    return this.gradNode === undefined;
  }
  get requiresGrad(): boolean {
    return this.#requiresGrad;
  }
  set requiresGrad(v: boolean) {
    if (v && !isFloating(this.dtype)) {
      throw new TesseraError(`requiresGrad: only floating-point tensors can require gradients; this one is ${this.dtype}. Cast it first, e.g. x.float().`);
    }
    if (!v && this.gradNode !== undefined) {
      throw new TesseraError('requiresGrad: cannot turn off gradients of a non-leaf tensor (it was computed by an op); use detach() instead.');
    }
    this.#requiresGrad = v;
  }
  /** Sets requiresGrad in place and returns this tensor (like torch's requires_grad_). */
  requiresGrad_(v = true): this {
    this.requiresGrad = v;
    return this;
  }
  /** Internal: marks an op output as requiring grad without the leaf checks. */
  _setRequiresGradFromOp(v: boolean): void {
    this.#requiresGrad = v;
  }

  get isDisposed(): boolean {
    return this.#disposed || this.storage.disposed;
  }

  isContiguous(): boolean {
    return isContiguousLayout(this.shape, this.strides);
  }

  /** The strided view kernels receive. Throws if the tensor was disposed. */
  asKernelInput(op = 'op'): KernelInput {
    this.assertAlive(op);
    return this;
  }

  assertAlive(op: string): void {
    if (this.isDisposed) {
      throw new TesseraError(`${op}: tensor #${this.id} (shape ${fmtShape(this.shape)}, ${this.dtype}) was disposed and cannot be used. ` +
        'Keep it alive (return it from the scope, or do not dispose it) until its last use.');
    }
  }

  /** Releases this tensor's view; the storage is freed once no live tensor uses it. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    noteTensorDisposed(this);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** The elements in row-major order as a new typed array (float16/bfloat16 read as Float32Array). */
  data(): TypedArray {
    this.assertAlive('data');
    const { values, offset } = viewElements(this);
    const n = this.size;
    if (this.isContiguous()) return values.slice(offset, offset + n) as TypedArray;
    const out = new (values.constructor as { new (n: number): TypedArray })(n);
    gatherStrided(values, this.shape, this.strides, offset, out);
    return out;
  }

  /** The elements as nested JS arrays (numbers; booleans for bool tensors). */
  toArray(): NestedArray {
    const flat = this.data();
    const isBool = this.dtype === 'bool';
    const build = (dim: number, base: number): NestedArray => {
      if (dim === this.shape.length) return isBool ? flat[base] !== 0 : flat[base]!;
      const n = this.shape[dim]!;
      const stride = sizeOf(this.shape.slice(dim + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++) out.push(build(dim + 1, base + i * stride));
      return out;
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) {
      throw new TesseraError(`item: only one-element tensors can be converted to a number; this one has shape ${fmtShape(this.shape)} (${this.size} elements).`);
    }
    return this.data()[0]!;
  }

  toString(): string {
    return formatTensor(this);
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/**
 * Writes `t`'s elements in row-major order into `out` from index `at`, straight from its storage's
 * memory: data() without its fresh array, for callers that fill an array they reuse.
 */
export function copyValuesInto(t: Tensor, out: TypedArray, at = 0): void {
  t.assertAlive('copyValuesInto');
  // The values may be a view of the backend's memory, valid until its next allocation: used at once.
  const { values, offset } = viewElements(t);
  if (t.isContiguous()) out.set(values.subarray(offset, offset + t.size) as never, at);
  else gatherStrided(values, t.shape, t.strides, offset, out.subarray(at, at + t.size));
}

/**
 * The storage elements a view reads and where the view starts in them: only the span it touches
 * where the backend can read a span (a packed half storage decodes just that), else readAll.
 */
function viewElements(t: Tensor): { values: TypedArray; offset: number } {
  const backend = t.storage.backend;
  if (backend.readSpan === undefined) return { values: backend.readAll(t.storage), offset: t.offset };
  const { lo, hi } = viewSpan(t);
  if (lo > hi) return { values: backend.readSpan(t.storage, 0, 0), offset: 0 };
  return { values: backend.readSpan(t.storage, lo, hi - lo + 1), offset: t.offset - lo };
}

/** Copies a strided view into a contiguous array. */
export function gatherStrided(src: ArrayLike<number>, shape: readonly number[], strides: readonly number[], offset: number, out: { [i: number]: number }): void {
  const rank = shape.length;
  const n = sizeOf(shape);
  if (n === 0) return;
  if (rank === 0) {
    out[0] = src[offset]!;
    return;
  }
  const idx = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const lastN = shape[last]!, lastS = strides[last]!;
  let pos = offset;
  let o = 0;
  while (o < n) {
    for (let j = 0, p = pos; j < lastN; j++, p += lastS) out[o++] = src[p]!;
    // Advance the odometer over the outer dims.
    let d = last - 1;
    while (d >= 0) {
      idx[d]!++;
      pos += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      pos -= strides[d]! * shape[d]!;
      idx[d] = 0;
      d--;
    }
    if (d < 0) break;
  }
}

/** Formats all elements alike, as PyTorch does: integers as "1.", otherwise fixed or scientific. */
function numberFormatter(values: ArrayLike<number>, dtype: DType): (x: number) => string {
  if (dtype === 'bool') return (x) => (x ? 'true' : 'false');
  if (!isFloating(dtype)) return (x) => String(x);
  let allIntegers = true;
  let maxAbs = 0;
  let minAbs = Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (!Number.isInteger(v)) allIntegers = false;
    const a = Math.abs(v);
    maxAbs = Math.max(maxAbs, a);
    if (a > 0) minAbs = Math.min(minAbs, a);
  }
  const special = (x: number): string | undefined => (Number.isNaN(x) ? 'nan' : !Number.isFinite(x) ? (x > 0 ? 'inf' : '-inf') : undefined);
  const scientific = maxAbs >= 1e8 || (minAbs < 1e-4 && !allIntegers) || (maxAbs / minAbs > 1e5 && !allIntegers && maxAbs >= 1e3);
  if (allIntegers && maxAbs < 1e8) return (x) => special(x) ?? `${x}.`;
  // Two-digit exponents, as PyTorch prints them (1.0000e-06, not 1.0000e-6).
  if (scientific) return (x) => special(x) ?? x.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2');
  return (x) => special(x) ?? x.toFixed(4);
}

function formatTensor(t: Tensor): string {
  if (t.isDisposed) return `tensor(<disposed>, shape=${fmtShape(t.shape)}, dtype=${t.dtype})`;
  const flat = t.data();
  const limit = 6;
  const format = numberFormatter(flat, t.dtype);
  const strs = Array.from(flat, (v) => format(v));
  const width = Math.max(1, ...strs.map((s) => s.length));
  const render = (dim: number, base: number, indent: string): string => {
    if (t.shape.length === 0) return strs[0]!;
    const n = t.shape[dim]!;
    const stride = sizeOf(t.shape.slice(dim + 1));
    const items: string[] = [];
    const pick = n > 2 * limit ? [...Array(limit).keys(), -1, ...Array.from({ length: limit }, (_, i) => n - limit + i)] : [...Array(n).keys()];
    for (const i of pick) {
      if (i === -1) items.push('...');
      else if (dim === t.shape.length - 1) items.push(strs[base + i * stride]!.padStart(width));
      else items.push(render(dim + 1, base + i * stride, indent + ' '));
    }
    const sep = dim === t.shape.length - 1 ? ', ' : ',\n' + '\n'.repeat(Math.max(0, t.shape.length - dim - 2)) + indent + ' ';
    return `[${items.join(sep)}]`;
  };
  const extras: string[] = [];
  if (t.dtype !== 'float32') extras.push(`dtype=${t.dtype}`);
  if (t.requiresGrad) extras.push(t.gradNode ? `gradFn=${t.gradNode.opName}` : 'requiresGrad=true');
  return `tensor(${render(0, 0, '       ')}${extras.length ? ', ' + extras.join(', ') : ''})`;
}
