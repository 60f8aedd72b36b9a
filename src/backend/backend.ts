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

/**
 * One optimizer's per-element update, with the scalars it needs for this step already computed
 * (bias corrections, decayed learning rates), for Backend.optimizerUpdate. The formulas are those
 * of src/optim (PyTorch's), evaluated in the parameter's dtype. State names match src/optim's.
 */
export type OptimizerRule =
  /** State: expAvg, expAvgSq (+ maxExpAvgSq with amsgrad). p ← p·decay; g (+ weightDecay·p); m, v; p −= stepSize·m/(√v̂/bc2Sqrt + eps). */
  | { readonly kind: 'adam'; readonly stepSize: number; readonly biasCorrection2Sqrt: number; readonly decay: number; readonly weightDecay: number;
      readonly beta1: number; readonly beta2: number; readonly eps: number; readonly amsgrad: boolean; readonly maximize: boolean }
  /** State: momentumBuffer when momentum > 0 (overwritten with the direction when firstStep). */
  | { readonly kind: 'sgd'; readonly lr: number; readonly momentum: number; readonly dampening: number; readonly weightDecay: number;
      readonly nesterov: boolean; readonly maximize: boolean; readonly firstStep: boolean }
  /** State: squareAvg (+ momentumBuffer when momentum > 0, + gradAvg when centered). */
  | { readonly kind: 'rmsprop'; readonly lr: number; readonly alpha: number; readonly eps: number; readonly weightDecay: number;
      readonly momentum: number; readonly centered: boolean; readonly maximize: boolean }
  /** State: sum. `lr` is this step's decayed rate. */
  | { readonly kind: 'adagrad'; readonly lr: number; readonly weightDecay: number; readonly eps: number; readonly maximize: boolean };

/** The tensors of one parameter's optimizer update (Backend.optimizerUpdate). */
export interface OptimizerUpdate {
  readonly rule: OptimizerRule;
  /** Updated in place. */
  readonly param: KernelInput;
  /** Read only; any strides (a broadcast or transposed view is fine). */
  readonly grad: KernelInput;
  /** The rule's state tensors by name, updated in place. */
  readonly state: Readonly<Record<string, KernelInput>>;
}

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
  /**
   * Elements [start, start + count) of the storage, as readAll gives them (a view or a copy).
   * Optional: a backend whose readAll copies (decodes) implements it so that reading a small view
   * of a large storage copies only what the view touches; without it callers use readAll.
   */
  readSpan?(storage: Storage, start: number, count: number): TypedArray;
  /** Writes `src` (contiguous, `dst.shape`'s element count) through the strided view `dst`. */
  writeStrided(dst: KernelInput, src: TypedArray): void;
  /**
   * Optional: the bytes the storage occupies in the backend's memory, when they differ from the
   * dtype's typed-array element size times its length (the wasm backend packs float16/bfloat16 into
   * 2 bytes per element; the cpu backend keeps them in a Float32Array).
   */
  storageBytes?(storage: Storage): number;
  /** Releases the storage's memory (idempotent). */
  free(storage: Storage): void;
  /** The backend's own kernel for a primitive, or undefined to fall back to the cpu kernel. */
  kernel<P extends PrimitiveName>(prim: P): Kernel<P> | undefined;
  /**
   * Optional: applies one optimizer update in place on this backend's memory, in one pass (src/optim
   * calls it for every parameter with a gradient). Returns false, having written nothing, when it
   * does not handle the dtypes or layouts (the optimizer then runs its own element loop). The wasm
   * backend implements it for contiguous float32 parameters and state, in float32 arithmetic.
   */
  optimizerUpdate?(update: OptimizerUpdate): boolean;
  /**
   * Optional: copies the elements of `src` into the view `dst` (same shape and dtype, both on this
   * backend, not the same storage) without reading them back to JavaScript; the webgpu backend
   * uses it so that a compiled training step's parameter writes stay on the GPU. Returns false,
   * having written nothing, when it does not handle the case (the caller then copies through
   * readAll and writeStrided).
   */
  copyStrided?(dst: KernelInput, src: KernelInput): boolean;
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
