// Moving tensors' values through the collectives, shared by the parallel training layers: which
// typed array a tensor travels in, copying the root rank's tensors to every rank, averaging
// gradients, summing a tensor over the ranks, and cutting an autodiff graph where a collective
// has to run.
import type { DType as TensorDType } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { assignValues } from '../nn/inplace.js';
import type { Parameter } from '../nn/module.js';
import type { ProcessGroup } from './process-group.js';
import { tensor } from '../ops/creation.js';
import { allocArray, sharedArray, type DType } from './types.js';

/** The dtype a float tensor travels in: float64 stays float64; every other float (f32, f16, bf16) goes as float32. */
export function commDType(dtype: TensorDType, op: string): DType {
  if (dtype === 'float64') return 'float64';
  if (dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16') return 'float32';
  throw new TesseraError(`${op}: cannot synchronize a ${dtype} tensor; data-parallel parameters must be floating point.`);
}

const isFloat = (t: Tensor): boolean => t.dtype === 'float64' || t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'bfloat16';

/**
 * Overwrites every rank's `tensors` with the root's, one broadcast per communication dtype. Every
 * rank must pass tensors of the same shapes in the same order (it is a collective).
 */
export async function broadcastTensors(group: ProcessGroup, tensors: readonly Tensor[], root: number, op: string): Promise<void> {
  if (group.size === 1 || tensors.length === 0) return;
  const send = async (some: readonly Tensor[], dtype: DType): Promise<void> => {
    const total = some.reduce((n, t) => n + t.size, 0);
    if (total === 0) return;
    const buffer = sharedArray(dtype, total);
    let offset = 0;
    for (const t of some) { buffer.set(t.data(), offset); offset += t.size; }
    await group.broadcast(buffer, { root });
    offset = 0;
    for (const t of some) { assignValues(t, buffer.subarray(offset, offset + t.size), op); offset += t.size; }
  };
  const floats = tensors.filter(isFloat);
  await send(floats.filter((t) => commDType(t.dtype, op) === 'float64'), 'float64');
  await send(floats.filter((t) => commDType(t.dtype, op) === 'float32'), 'float32');
  // Integer and bool tensors (e.g. BatchNorm's num_batches_tracked) travel as float64: exact below 2^53.
  await send(tensors.filter((t) => !isFloat(t)), 'float64');
}

/** The sum over the group's ranks of a tensor's values, as a new leaf (requiring grad when asked). */
export async function allReduced(t: Tensor, group: ProcessGroup, requiresGrad: boolean): Promise<Tensor> {
  const values = allocArray(commDType(t.dtype, 'tensor parallel'), t.size);
  values.set(t.data());
  await group.allReduce(values);
  return tensor(values, { shape: [...t.shape], dtype: t.dtype, backend: t.storage.backend.name, requiresGrad });
}

/** A copy of `t`'s values as a new leaf that requires grad: where one piece ends and the next begins. */
export function cut(t: Tensor): Tensor {
  return tensor(t.data(), { shape: [...t.shape], dtype: t.dtype, backend: t.storage.backend.name, requiresGrad: true });
}

/**
 * Replaces every parameter's gradient by its sum or average over the group's ranks (a missing
 * gradient counts as zero and is created), one all-reduce per communication dtype. A collective.
 */
export async function reduceGradients(params: readonly Parameter[], group: ProcessGroup, op: 'sum' | 'avg'): Promise<void> {
  if (group.size === 1) return;
  for (const dtype of ['float64', 'float32'] as const) {
    const some = params.filter((p) => commDType(p.dtype, 'reduceGradients') === dtype);
    const total = some.reduce((n, p) => n + p.size, 0);
    if (total === 0) continue;
    const flat = sharedArray(dtype, total);
    let offset = 0;
    for (const p of some) { const g = p._peekGrad(); if (g !== undefined) flat.set(g.data(), offset); offset += p.size; }
    await group.allReduce(flat, { op });
    offset = 0;
    for (const p of some) {
      const values = flat.subarray(offset, offset + p.size);
      // Read and written without marking the gradient seen, so zeroGrad can still dispose it (tensor.ts).
      const g = p._peekGrad();
      if (g === undefined) p._replaceGrad(tensor(values, { shape: [...p.shape], dtype: p.dtype, backend: p.storage.backend.name }), true);
      else assignValues(g, values, 'reduceGradients');
      offset += p.size;
    }
  }
}

/** Replaces every parameter's gradient by its average over the group's ranks (see reduceGradients). */
export async function averageGradients(params: readonly Parameter[], group: ProcessGroup): Promise<void> {
  await reduceGradients(params, group, 'avg');
}
