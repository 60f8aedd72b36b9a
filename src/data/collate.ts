// Turning a list of records into a batch, like PyTorch's default_collate: tensors are stacked along a
// new first dimension, numbers become a 1-D tensor, and arrays / objects are collated position by
// position / key by key.

import type { TypedArray } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';
import { fromValues } from '../ops/creation.js';

/** The batch type `defaultCollate` makes from records of type T. */
export type Collated<T> = T extends Tensor
  ? Tensor
  : T extends number
    ? Tensor
    : T extends readonly unknown[]
      ? { [K in keyof T]: Collated<T[K]> }
      : T extends object
        ? { [K in keyof T]: Collated<T[K]> }
        : never;

/** Stacks tensors of one shape and dtype into one tensor with a new first dimension. */
export function stackTensors(items: readonly Tensor[]): Tensor {
  if (items.length === 0) throw new Error('stackTensors: give at least one tensor.');
  const first = items[0]!;
  const rowSize = first.size;
  const data = items.map((t, i) => {
    if (t.dtype !== first.dtype || t.shape.length !== first.shape.length || t.shape.some((d, k) => d !== first.shape[k])) {
      throw new Error(
        `collate: record ${i} is a ${t.dtype} tensor of shape [${t.shape.join(', ')}] but record 0 is ${first.dtype} [${first.shape.join(', ')}]; ` +
          'records must share shape and dtype to be stacked (pad them, or pass a custom collate).',
      );
    }
    return t.data();
  });
  const out = new (data[0]!.constructor as new (n: number) => TypedArray)(items.length * rowSize);
  data.forEach((d, i) => out.set(d, i * rowSize));
  return fromValues(out, [items.length, ...first.shape], first.dtype, { backend: first.backend });
}

/** Collates records the way PyTorch's default_collate does (tensors stacked, numbers to a tensor). */
export function defaultCollate<T>(items: readonly T[]): Collated<T> {
  if (items.length === 0) throw new Error('defaultCollate: a batch needs at least one record.');
  const first = items[0] as unknown;
  if (first instanceof Tensor) return stackTensors(items as readonly Tensor[]) as Collated<T>;
  if (typeof first === 'number') {
    const numbers = items as readonly number[];
    const integral = numbers.every((x) => Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 31);
    return fromValues(integral ? Int32Array.from(numbers) : Float32Array.from(numbers), [numbers.length], integral ? 'int32' : 'float32') as Collated<T>;
  }
  if (Array.isArray(first)) {
    return first.map((_, k) => defaultCollate((items as readonly unknown[][]).map((r) => r[k]))) as unknown as Collated<T>;
  }
  if (typeof first === 'object' && first !== null) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(first)) out[key] = defaultCollate(items.map((r) => (r as Record<string, unknown>)[key]));
    return out as Collated<T>;
  }
  throw new Error(`defaultCollate: cannot batch records of type ${typeof first}; pass a custom collate to the DataLoader.`);
}
