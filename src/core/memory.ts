// Ownership of tensor memory: reference counts on storages, scopes, and a GC safety net.
//
// Several tensors (views) can share one storage. Each live tensor holds one reference; dispose()
// drops it and the storage is freed when the last reference goes. A FinalizationRegistry drops the
// reference of a tensor that was garbage-collected without dispose(), so forgetting dispose() leaks
// nothing in the long run (but wasm/GPU memory is returned sooner with explicit dispose or scopes).
import type { Storage } from '../backend/backend.js';

// `using` needs Symbol.dispose, which older Node 20 releases and some browsers lack. Node's own
// pre-standard symbol is Symbol.for('nodejs.dispose'); reusing it keeps Node's disposables compatible.
// This runs before Tensor's class body (tensor.ts imports this module), whose [Symbol.dispose] key needs it.
if (typeof Symbol.dispose !== 'symbol') {
  Object.defineProperty(Symbol, 'dispose', { value: Symbol.for('nodejs.dispose'), configurable: false, writable: false });
}
if (typeof Symbol.asyncDispose !== 'symbol') {
  Object.defineProperty(Symbol, 'asyncDispose', { value: Symbol.for('nodejs.asyncDispose'), configurable: false, writable: false });
}
import type { Tensor } from './tensor.js';
import { itemsize } from './dtype.js';

const refCounts = new Map<Storage, number>();
let liveTensors = 0;
let peakBytes = 0;
let liveBytes = 0;

const storageBytes = (s: Storage): number => s.size * itemsize(s.dtype);

/** Live and peak bytes per backend (where memory is: the wasm heap, the GPU, the host's cpu arrays). */
const perBackend = new Map<string, { liveBytes: number; peakBytes: number }>();
function countOn(storage: Storage, bytes: number): void {
  const name = storage.backend.name;
  let c = perBackend.get(name);
  if (c === undefined) perBackend.set(name, (c = { liveBytes: 0, peakBytes: 0 }));
  c.liveBytes += bytes;
  c.peakBytes = Math.max(c.peakBytes, c.liveBytes);
}

// A tensor collected without dispose() releases its reference here. The held value is the storage
// (never the tensor itself, which would keep it alive).
const finalizer = new FinalizationRegistry<Storage>((storage) => {
  liveTensors--;
  release(storage);
});

/** Starts accounting for a storage (called when a tensor is created over new memory). */
export function trackStorage(storage: Storage): void {
  if (!refCounts.has(storage)) {
    refCounts.set(storage, 0);
    liveBytes += storageBytes(storage);
    peakBytes = Math.max(peakBytes, liveBytes);
    countOn(storage, storageBytes(storage));
  }
}

function release(storage: Storage): void {
  const n = (refCounts.get(storage) ?? 1) - 1;
  if (n > 0) {
    refCounts.set(storage, n);
    return;
  }
  if (refCounts.delete(storage)) {
    liveBytes -= storageBytes(storage);
    countOn(storage, -storageBytes(storage));
  }
  if (!storage.disposed) {
    storage.disposed = true;
    storage.backend.free(storage);
  }
}

const scopeStack: Set<Tensor>[] = [];

export function noteTensorCreated(t: Tensor): void {
  trackStorage(t.storage);
  refCounts.set(t.storage, (refCounts.get(t.storage) ?? 0) + 1);
  liveTensors++;
  finalizer.register(t, t.storage, t);
  scopeStack[scopeStack.length - 1]?.add(t);
}

export function noteTensorDisposed(t: Tensor): void {
  finalizer.unregister(t);
  liveTensors--;
  release(t.storage);
  for (const s of scopeStack) s.delete(t);
}

/** Removes a tensor from every open scope, so scopes do not dispose it (like tf.keep). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopeStack) s.delete(t);
  return t;
}

function collectTensors(value: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ((value as { storage?: unknown }).storage !== undefined && typeof (value as Tensor).dispose === 'function' && 'strides' in value) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectTensors(v, out, seen);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectTensors(v, out, seen);
}

/**
 * Runs `fn` and disposes every tensor created inside it except the ones it returns (found in
 * arrays, plain objects and Maps) and the ones passed to keep(). Scopes nest. Async functions are
 * supported: the scope ends when the returned promise settles.
 */
export function scope<T>(fn: () => T): T {
  const created = new Set<Tensor>();
  scopeStack.push(created);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(created, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    // Leave the scope open until the promise settles; tensors created meanwhile are ours.
    return result.then(
      (v) => { endScope(created, v); return v; },
      (e) => { endScope(created, undefined); throw e; },
    ) as T;
  }
  endScope(created, result);
  return result;
}

function endScope(created: Set<Tensor>, result: unknown): void {
  const i = scopeStack.lastIndexOf(created);
  if (i >= 0) scopeStack.splice(i, 1);
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  for (const t of created) {
    if (kept.has(t)) {
      // Returned tensors belong to the enclosing scope now.
      scopeStack[scopeStack.length - 1]?.add(t);
      continue;
    }
    t.dispose();
  }
}

/** A scope usable with `using`: `{ using _ = memoryScope(); ... }` disposes what the block created. */
export function memoryScope(): { keep<T extends Tensor>(t: T): T; [Symbol.dispose](): void } {
  const created = new Set<Tensor>();
  scopeStack.push(created);
  return {
    keep: (t) => { created.delete(t); return t; },
    [Symbol.dispose]: () => endScope(created, undefined),
  };
}

export interface MemoryStats {
  /** Tensors created and neither disposed nor garbage-collected. */
  liveTensors: number;
  /** Distinct storages those tensors use. */
  liveStorages: number;
  /** Bytes of those storages (float16/bfloat16 counted at 2 bytes). */
  liveBytes: number;
  /** Highest liveBytes seen since start or the last resetPeakMemory(). */
  peakBytes: number;
  /** The same two numbers per backend name ('wasm', 'cpu', 'webgpu'), like torch.cuda.max_memory_allocated per device. */
  byBackend: Record<string, { liveBytes: number; peakBytes: number }>;
}

export function memoryStats(): MemoryStats {
  const byBackend: Record<string, { liveBytes: number; peakBytes: number }> = {};
  for (const [name, c] of perBackend) byBackend[name] = { ...c };
  return { liveTensors, liveStorages: refCounts.size, liveBytes, peakBytes, byBackend };
}

export function resetPeakMemory(): void {
  peakBytes = liveBytes;
  for (const c of perBackend.values()) c.peakBytes = c.liveBytes;
}
