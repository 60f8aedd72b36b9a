// Datasets: indexable collections of records. A DataLoader batches them; `getBatch`, when a dataset has
// it, builds a whole batch at once (TensorDataset gathers rows without per-record work).

import type { TypedArray } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';
import { fromValues } from '../ops/creation.js';
import { reshape } from '../ops/shape.js';
import { randomPermutation, SeededRandom } from './random.js';

export interface Dataset<T, TBatch = T[]> {
  readonly length: number;
  /** The record at `index` (0 <= index < length). */
  get(index: number): T;
  /**
   * Optional: the batch of the records at `indices`, in that order, faster than `get` one by one.
   * A DataLoader without a custom collate uses it.
   */
  getBatch?(indices: Int32Array): TBatch;
}

/** A dataset over a plain array of records. */
export class ArrayDataset<T> implements Dataset<T> {
  constructor(readonly records: readonly T[]) {}
  get length(): number {
    return this.records.length;
  }
  get(index: number): T {
    checkIndex(index, this.records.length, 'ArrayDataset');
    return this.records[index]!;
  }
}

/**
 * Tensors that share their first dimension; record i is the i-th row of each (like torch's TensorDataset).
 * The values are read once when the dataset is made (later writes to the tensors are not seen); batches
 * are gathered straight from those values into new tensors, without per-record tensors or autodiff.
 */
export class TensorDataset implements Dataset<Tensor[], Tensor[]> {
  readonly tensors: readonly Tensor[];
  readonly length: number;
  readonly #values: TypedArray[];
  readonly #rowSizes: number[];
  readonly #backend: string | undefined;

  /** @param options.backend where batches are created (default: the current backend at batch time). */
  constructor(tensors: readonly Tensor[], options: { backend?: string } = {}) {
    if (tensors.length === 0) throw new Error('TensorDataset: give at least one tensor.');
    const length = tensors[0]!.shape[0];
    tensors.forEach((t, i) => {
      if (t.shape.length === 0 || t.shape[0] !== length) {
        throw new Error(
          `TensorDataset: tensor ${i} has shape [${t.shape.join(', ')}] but tensor 0 has ${length} rows; every tensor needs the same first dimension.`,
        );
      }
    });
    this.tensors = [...tensors];
    this.length = length ?? 0;
    this.#values = tensors.map((t) => t.data());
    this.#rowSizes = tensors.map((t) => t.shape.slice(1).reduce((a, b) => a * b, 1));
    this.#backend = options.backend;
  }

  get(index: number): Tensor[] {
    return this.getBatch(Int32Array.of(checkIndex(index, this.length, 'TensorDataset'))).map((t) => reshape(t, t.shape.slice(1)));
  }

  /** One tensor per source tensor, holding the rows at `indices` in that order. */
  getBatch(indices: Int32Array): Tensor[] {
    return this.tensors.map((t, k) => {
      const rowSize = this.#rowSizes[k]!;
      const src = this.#values[k]!;
      const out = new (src.constructor as new (n: number) => TypedArray)(indices.length * rowSize);
      for (let i = 0; i < indices.length; i++) {
        const r = checkIndex(indices[i]!, this.length, 'TensorDataset');
        out.set(src.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize);
      }
      return fromValues(out, [indices.length, ...t.shape.slice(1)], t.dtype, this.#backend === undefined ? {} : { backend: this.#backend });
    });
  }
}

/** The records of `dataset` at `indices`, in that order. */
export class Subset<T, TBatch = T[]> implements Dataset<T, TBatch> {
  readonly getBatch?: (indices: Int32Array) => TBatch;

  constructor(
    readonly dataset: Dataset<T, TBatch>,
    readonly indices: Int32Array,
  ) {
    for (const i of indices) checkIndex(i, dataset.length, 'Subset');
    const parentBatch = dataset.getBatch;
    if (parentBatch !== undefined) {
      this.getBatch = (batch: Int32Array) => parentBatch.call(dataset, Int32Array.from(batch, (i) => this.indices[checkIndex(i, this.indices.length, 'Subset')]!));
    }
  }

  get length(): number {
    return this.indices.length;
  }

  get(index: number): T {
    return this.dataset.get(this.indices[checkIndex(index, this.indices.length, 'Subset')]!);
  }
}

export function checkIndex(index: number, length: number, what: string): number {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new RangeError(`${what}: index ${index} is outside [0, ${length}).`);
  }
  return index;
}

/**
 * Splits a dataset into disjoint random subsets (like torch.utils.data.random_split). `lengths` are
 * record counts that add up to the dataset's length, or fractions that add up to 1 (the remainder of
 * rounding goes to the first subsets, one record each, as PyTorch does). The split depends only on `seed`.
 */
export function randomSplit<T, TBatch = T[]>(dataset: Dataset<T, TBatch>, lengths: readonly number[], seed = 0): Subset<T, TBatch>[] {
  const n = dataset.length;
  let counts = [...lengths];
  const isFractions = counts.every((x) => x >= 0 && x <= 1) && Math.abs(counts.reduce((a, b) => a + b, 0) - 1) < 1e-9 && counts.some((x) => !Number.isInteger(x));
  if (isFractions) {
    counts = counts.map((f) => Math.floor(f * n));
    let rest = n - counts.reduce((a, b) => a + b, 0);
    for (let i = 0; rest > 0; i = (i + 1) % counts.length, rest--) counts[i]!++;
  }
  if (counts.some((c) => !Number.isInteger(c) || c < 0) || counts.reduce((a, b) => a + b, 0) !== n) {
    throw new Error(
      `randomSplit: lengths ${JSON.stringify(lengths)} must be non-negative counts adding up to the dataset's ${n} records, or fractions adding up to 1.`,
    );
  }
  const order = randomPermutation(n, new SeededRandom(seed));
  const out: Subset<T, TBatch>[] = [];
  let at = 0;
  for (const c of counts) {
    out.push(new Subset(dataset, order.slice(at, at + c)));
    at += c;
  }
  return out;
}
