// DataLoader: turns a dataset into batches, in a seeded order that can be saved and restored exactly, and
// prepares the next batches while the current one trains.
//
// Order. Epoch e visits the records in the permutation drawn from SeededRandom(mixSeed(seed, e)) (or in
// index order without shuffling). The order of an epoch depends only on (seed, e), so the loader's whole
// state is (epoch, batches already handed out): `stateDict()` / `loadStateDict()` resume a run on the
// exact batch where it stopped, as if it had never stopped.
//
// Prefetch. While the consumer works on batch i (between two `next()` calls of the async iterator),
// batches i+1 .. i+prefetch are already being built on the event loop. This overlaps with anything the
// training step awaits (worker-thread kernels, GPU work, I/O), and an async `collate` (decoding, reading
// from disk) runs concurrently with training.

import type { Dataset } from './dataset.js';
import { mixSeed, randomPermutation, SeededRandom } from './random.js';

/** Builds a batch from the records of `indices` (in that order). May be async. */
export type BatchBuilder<B> = (indices: Int32Array) => B | Promise<B>;

export interface DataLoaderOptions<T, B> {
  /** Records per batch (default 1). */
  batchSize?: number;
  /** Visit the records in a new seeded random order each epoch (default false). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** Drop the last batch of an epoch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /**
   * Turns the records of one batch into a batch. Default: the dataset's `getBatch` when it has one
   * (TensorDataset stacks rows without per-record tensors), else the array of records.
   */
  collate?: (items: T[]) => B | Promise<B>;
  /** Batches built ahead of the consumer by the async iterator (default 1; 0 disables prefetch). */
  prefetch?: number;
}

/** What `stateDict()` returns: enough to resume on the exact next batch. */
export interface DataLoaderState {
  seed: number;
  shuffle: boolean;
  batchSize: number;
  dropLast: boolean;
  datasetLength: number;
  /** The epoch in progress (0-based). */
  epoch: number;
  /** Batches of that epoch already handed to the consumer. */
  batchesDone: number;
}

/** Runs `fn` on a later turn of the event loop (setImmediate in Node: no 1 ms timer clamp). */
const laterTurn: (fn: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (fn) => void globalThis.setImmediate(fn) : (fn) => void setTimeout(fn, 0);

export class DataLoader<T, B = T[]> implements AsyncIterable<B> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  #epoch = 0;
  #batchesDone = 0;
  #order: { epoch: number; indices: Int32Array } | undefined;
  readonly #build: BatchBuilder<B>;
  #iterating = false;

  /** Without `collate`: batches are the dataset's `getBatch` results, or arrays of records. */
  constructor(dataset: Dataset<T, B>, options?: DataLoaderOptions<T, B> & { collate?: undefined });
  /** With `collate`: batches are what it returns. */
  constructor(dataset: Dataset<T, unknown>, options: DataLoaderOptions<T, B> & { collate: (items: T[]) => B | Promise<B> });
  constructor(
    readonly dataset: Dataset<T, unknown>,
    options: DataLoaderOptions<T, B> = {},
  ) {
    this.batchSize = options.batchSize ?? 1;
    this.shuffle = options.shuffle ?? false;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
    this.prefetch = options.prefetch ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new Error(`DataLoader: batchSize ${this.batchSize} must be a positive integer.`);
    }
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) {
      throw new Error(`DataLoader: prefetch ${this.prefetch} must be a non-negative integer (batches built ahead).`);
    }
    if (!Number.isFinite(this.seed)) throw new Error(`DataLoader: seed ${this.seed} must be a finite number.`);
    const collate = options.collate;
    if (collate !== undefined) {
      this.#build = (indices) => collate(Array.from(indices, (i) => dataset.get(i)));
    } else if (typeof dataset.getBatch === 'function') {
      this.#build = (indices) => dataset.getBatch!(indices) as B;
    } else {
      this.#build = (indices) => Array.from(indices, (i) => dataset.get(i)) as B;
    }
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch in progress (advances when an epoch's last batch has been handed out). */
  get epoch(): number {
    return this.#epoch;
  }

  /** The record indices of epoch `epoch`, in visiting order. */
  epochOrder(epoch: number): Int32Array {
    if (this.#order?.epoch === epoch) return this.#order.indices;
    const n = this.dataset.length;
    const indices = this.shuffle ? randomPermutation(n, new SeededRandom(mixSeed(this.seed, epoch))) : Int32Array.from({ length: n }, (_, i) => i);
    this.#order = { epoch, indices };
    return indices;
  }

  /** The record indices of batch `batch` of epoch `epoch`. */
  batchIndices(epoch: number, batch: number): Int32Array {
    const order = this.epochOrder(epoch);
    return order.subarray(batch * this.batchSize, Math.min(order.length, (batch + 1) * this.batchSize));
  }

  stateDict(): DataLoaderState {
    return {
      seed: this.seed,
      shuffle: this.shuffle,
      batchSize: this.batchSize,
      dropLast: this.dropLast,
      datasetLength: this.dataset.length,
      epoch: this.#epoch,
      batchesDone: this.#batchesDone,
    };
  }

  /** Continues from a state saved by `stateDict()`; the loader must be configured as the saved one was. */
  loadStateDict(state: DataLoaderState): void {
    const mine = this.stateDict();
    for (const key of ['seed', 'shuffle', 'batchSize', 'dropLast', 'datasetLength'] as const) {
      if (state[key] !== mine[key]) {
        throw new Error(
          `DataLoader.loadStateDict: the saved loader had ${key} = ${state[key]} but this one has ${mine[key]}; ` +
            'create the loader with the same dataset and options as the run that saved the state.',
        );
      }
    }
    if (!Number.isInteger(state.epoch) || state.epoch < 0 || !Number.isInteger(state.batchesDone) || state.batchesDone < 0 || state.batchesDone > this.length) {
      throw new Error(`DataLoader.loadStateDict: epoch ${state.epoch} / batchesDone ${state.batchesDone} is not a valid position (an epoch has ${this.length} batches).`);
    }
    if (this.#iterating) throw new Error('DataLoader.loadStateDict: the loader is being iterated; load the state before starting the loop.');
    this.#epoch = state.epoch;
    this.#batchesDone = state.batchesDone;
  }

  /** Marks one batch as handed out, rolling over to the next epoch after the last one. */
  #advance(): void {
    this.#batchesDone++;
    if (this.#batchesDone >= this.length) {
      this.#epoch++;
      this.#batchesDone = 0;
    }
  }

  /** The rest of the current epoch, synchronously (no prefetch; `collate` must not be async). */
  *[Symbol.iterator](): Iterator<B> {
    const epoch = this.#epoch;
    for (let b = this.#batchesDone; b < this.length && this.#epoch === epoch; b = this.#batchesDone) {
      const batch = this.#build(this.batchIndices(epoch, b));
      if (batch instanceof Promise) {
        throw new Error('DataLoader: collate returned a Promise; iterate with `for await` to use an async collate.');
      }
      this.#advance();
      yield batch;
    }
  }

  /** The rest of the current epoch, building up to `prefetch` batches ahead of the consumer. */
  async *[Symbol.asyncIterator](): AsyncIterator<B> {
    if (this.#iterating) throw new Error('DataLoader: this loader is already being iterated; finish (or break out of) that loop first.');
    this.#iterating = true;
    const epoch = this.#epoch;
    const total = this.length;
    const pending: Array<Promise<B>> = [];
    let nextToBuild = this.#batchesDone;
    // Building starts on a later turn of the event loop, so it runs while the consumer awaits.
    const schedule = (b: number): Promise<B> =>
      new Promise<B>((resolve, reject) => {
        laterTurn(() => {
          try {
            Promise.resolve(this.#build(this.batchIndices(epoch, b))).then(resolve, reject);
          } catch (e) {
            reject(e);
          }
        });
      });
    try {
      while (this.#batchesDone < total && this.#epoch === epoch) {
        while (nextToBuild < total && pending.length <= this.prefetch) pending.push(schedule(nextToBuild++));
        const batch = await pending.shift()!;
        this.#advance();
        yield batch;
      }
    } finally {
      // Batches built ahead but not handed out are dropped; the position counts only what was yielded.
      for (const p of pending) p.catch(() => undefined);
      this.#iterating = false;
    }
  }
}
