// The two graph ops of activation offloading under jit (autodiff/offload.ts): `offloadStore` copies
// a saved activation from its backend (the wasm heap, the GPU) into host memory, and
// `offloadFetch` copies it back onto the backend named in its attrs when the traced backward needs
// it. The host copy is a tensor of the cpu backend, a JavaScript typed array: a replayed graph frees
// the backend tensor after its last forward use (the store) and holds only the host copy until
// backward fetches it, so the backend's peak memory drops as it does eagerly.
//
// Both ops copy without `bind`: they run outside the primitives (no tape, nothing else recorded)
// and are recorded on the active tracer by hand. memory-plan.ts counts a store's output as host
// memory, not arena memory.
import { cpuBackend } from '../backend/cpu/backend.js';
import { Storage, getBackend, type Backend } from '../backend/backend.js';
import { itemsize, type TypedArray } from '../core/dtype.js';
import { releaseHostArray, takeHostArray } from '../autodiff/offload.js';
import { TesseraError } from '../core/errors.js';
import { sizeOf } from '../core/shape.js';
import { Tensor, copyValuesInto } from '../core/tensor.js';
import { registerTracingHooks } from '../autodiff/checkpoint.js';
import type { ValueInfo } from '../ops/primitives.js';
import { registerGraphOp } from './graph-ops.js';
import { activeTracer } from './trace.js';

export const OFFLOAD_STORE_OP = 'offloadStore';
export const OFFLOAD_FETCH_OP = 'offloadFetch';

export interface OffloadFetchAttrs {
  /** The backend the activation came from and goes back to. */
  backend: string;
}

// Host copies are cpu-backend storages whose arrays come from offload's pool and go back to it when
// the copy is freed (a replay frees it after the fetch, its last use): a training step stores the
// same shapes every time, and allocating fresh arrays costs more than the copies themselves.
const hostBackend: Backend = Object.create(cpuBackend, {
  free: { value: (storage: Storage): void => releaseHostArray(storage.handle as TypedArray) },
});

/** `x`'s values, row-major, in a pooled host array. */
function store(x: Tensor): Tensor {
  const host = takeHostArray(x.storage.backend.readAll(x.storage), x.size);
  copyValuesInto(x, host);
  return Tensor.fromStorage(new Storage(hostBackend, host, x.dtype, x.size), x.shape, x.dtype);
}

/** A host copy back on `attrs.backend` (one copy: the host array is contiguous). */
function fetch(h: Tensor, attrs: OffloadFetchAttrs): Tensor {
  const all = h.storage.backend.readAll(h.storage);
  const values = h.isContiguous() && h.offset === 0 && all.length === h.size ? all : all.slice(h.offset, h.offset + h.size);
  return Tensor.fromStorage(getBackend(attrs.backend).fromArray(h.dtype, values as TypedArray), h.shape, h.dtype);
}

const sameType = (inputs: readonly ValueInfo[], op: string): ValueInfo[] => {
  if (inputs.length !== 1) throw new TesseraError(`${op}: takes one tensor, got ${inputs.length}.`);
  return [{ shape: [...inputs[0]!.shape], dtype: inputs[0]!.dtype }];
};
const copyCost = (inputs: readonly ValueInfo[]) => {
  const bytes = sizeOf(inputs[0]!.shape) * itemsize(inputs[0]!.dtype);
  return { flops: 0, bytesRead: bytes, bytesWritten: bytes };
};


registerGraphOp(OFFLOAD_STORE_OP, {
  infer: (inputs) => sameType(inputs, OFFLOAD_STORE_OP),
  cost: copyCost,
  execute: ([x]) => [store(x!)],
});

registerGraphOp(OFFLOAD_FETCH_OP, {
  infer: (inputs) => sameType(inputs, OFFLOAD_FETCH_OP),
  cost: copyCost,
  execute: ([h], attrs) => [fetch(h!, attrs as OffloadFetchAttrs)],
});

/** Runs one of the ops above now and records it on the tracer that is recording. */
function runRecorded(op: string, x: Tensor, attrs: unknown, run: () => Tensor): Tensor {
  const tracer = activeTracer();
  if (tracer === undefined) throw new TesseraError(`${op}: called while no tracer records (internal error).`);
  const out = run();
  tracer.record(op, [x], attrs, [out]);
  return out;
}

registerTracingHooks({
  storeOnHost: (x) => runRecorded(OFFLOAD_STORE_OP, x, {}, () => store(x)),
  fetchFromHost: (h, backend) => runRecorded(OFFLOAD_FETCH_OP, h, { backend }, () => fetch(h, { backend })),
});
