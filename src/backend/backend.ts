// The Backend contract: where tensor memory lives and which kernels run on it.
//
// A backend owns storages (flat arrays of one dtype) and provides kernels keyed by primitive name.
// The cpu backend implements every primitive; faster backends implement what pays and fall back to
// cpu for the rest (dispatch reads their storage as typed arrays, runs the cpu kernel and copies back).
import type { DType, TypedArray } from '../core/dtype.js';
import type { PrimitiveAttrs, PrimitiveName } from '../ops/primitives.js';

/** Flat memory of one dtype on one backend. `handle` is backend-specific (a TypedArray on cpu). */
export class Storage {
  disposed = false;
  /**
   * Bumped by every in-place write through a tensor (copy_, fill_), so autodiff can tell that a
   * value it saved for backward was overwritten (PyTorch's version counter, shared by all views).
   */
  version = 0;
  constructor(
    readonly backend: Backend,
    readonly handle: unknown,
    readonly dtype: DType,
    /** Number of elements. */
    readonly size: number,
  ) {}
}

/** A strided view of a storage, as kernels receive their inputs. */
export interface KernelInput {
  readonly storage: Storage;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

/** Shape and dtype of the value a kernel must produce (computed by the primitive's `infer`). */
export interface OutputInfo {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** A kernel returns a NEW contiguous storage holding the output. */
export type Kernel<P extends PrimitiveName> = (
  inputs: readonly KernelInput[],
  attrs: PrimitiveAttrs[P],
  out: OutputInfo,
) => Storage;

export type KernelTable = { [P in PrimitiveName]: Kernel<P> };

export interface Backend {
  readonly name: string;
  /** Zero-filled storage of `size` elements. */
  alloc(dtype: DType, size: number): Storage;
  /** Storage holding a copy of `data` (whose class matches the dtype's storage class). */
  fromArray(dtype: DType, data: TypedArray): Storage;
  /**
   * A typed array with the storage's elements. The cpu backend returns its own array (no copy);
   * others may return a view into their memory or a copy. Callers must not keep it past a free.
   */
  readAll(storage: Storage): TypedArray;
  /** Writes `src` (contiguous, `dst.shape`'s element count) through the strided view `dst`. */
  writeStrided(dst: KernelInput, src: TypedArray): void;
  /** Releases the storage's memory (idempotent). */
  free(storage: Storage): void;
  /** The backend's own kernel for a primitive, or undefined to fall back to the cpu kernel. */
  kernel<P extends PrimitiveName>(prim: P): Kernel<P> | undefined;
}

const registry = new Map<string, Backend>();
let current: string | undefined;

export function registerBackend(backend: Backend): void {
  registry.set(backend.name, backend);
}

export function listBackends(): string[] {
  return [...registry.keys()];
}

export function getBackend(name?: string): Backend {
  const key = name ?? current ?? 'cpu';
  const b = registry.get(key);
  if (b === undefined) {
    throw new Error(`getBackend: no backend named '${key}' is registered (registered: ${listBackends().join(', ') || 'none'}).`);
  }
  return b;
}

/** Selects the backend new tensors are created on (like torch.set_default_device). */
export function setBackend(name: string): void {
  getBackend(name);
  current = name;
}

export function currentBackendName(): string {
  return current ?? 'cpu';
}
