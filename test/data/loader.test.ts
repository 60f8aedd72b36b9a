import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ArrayDataset, type Dataset } from '../../src/data/dataset.js';
import { DataLoader } from '../../src/data/loader.js';

const range = (n: number) => new ArrayDataset(Array.from({ length: n }, (_, i) => i));

async function collect<B>(it: AsyncIterable<B>): Promise<B[]> {
  const out: B[] = [];
  for await (const b of it) out.push(b);
  return out;
}

test('batches in order without shuffle; the last batch is short unless dropLast', async () => {
  const loader = new DataLoader(range(7), { batchSize: 3 });
  assert.equal(loader.length, 3);
  assert.deepEqual(await collect(loader), [[0, 1, 2], [3, 4, 5], [6]]);
  const dropping = new DataLoader(range(7), { batchSize: 3, dropLast: true });
  assert.equal(dropping.length, 2);
  assert.deepEqual(await collect(dropping), [[0, 1, 2], [3, 4, 5]]);
  // The sync iterator gives the same.
  assert.deepEqual([...new DataLoader(range(7), { batchSize: 3 })], [[0, 1, 2], [3, 4, 5], [6]]);
});

test('seeded shuffle: a permutation per epoch, reproducible, different across epochs and seeds', async () => {
  const a = new DataLoader(range(50), { batchSize: 8, shuffle: true, seed: 5 });
  const e0 = (await collect(a)).flat();
  const e1 = (await collect(a)).flat();
  assert.equal(a.epoch, 2);
  assert.deepEqual([...e0].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.notDeepEqual(e0, e1);
  assert.notDeepEqual(e0, Array.from({ length: 50 }, (_, i) => i));
  const b = new DataLoader(range(50), { batchSize: 8, shuffle: true, seed: 5 });
  assert.deepEqual((await collect(b)).flat(), e0);
  const c = new DataLoader(range(50), { batchSize: 8, shuffle: true, seed: 6 });
  assert.notDeepEqual((await collect(c)).flat(), e0);
});

test('stateDict/loadStateDict resume on the exact next batch, across epoch boundaries', async () => {
  const options = { batchSize: 4, shuffle: true, seed: 123, dropLast: true } as const;
  const reference = new DataLoader(range(18), options);
  const uninterrupted: number[][] = [];
  for (let epoch = 0; epoch < 3; epoch++) uninterrupted.push(...(await collect(reference)));
  assert.equal(uninterrupted.length, 12);

  for (const stopAfter of [1, 4, 6]) {
    // Run until `stopAfter` batches were consumed, save, and continue in a fresh loader.
    const first = new DataLoader(range(18), options);
    const seen: number[][] = [];
    outer: for (let epoch = 0; epoch < 3; epoch++) {
      for await (const batch of first) {
        seen.push(batch);
        if (seen.length === stopAfter) break outer;
      }
    }
    const state = JSON.parse(JSON.stringify(first.stateDict()));
    const resumed = new DataLoader(range(18), options);
    resumed.loadStateDict(state);
    while (seen.length < uninterrupted.length) seen.push(...(await collect(resumed)));
    assert.deepEqual(seen, uninterrupted, `stopped after ${stopAfter}`);
  }
});

test('loadStateDict refuses a state from a differently configured loader', () => {
  const state = new DataLoader(range(10), { batchSize: 2, seed: 1 }).stateDict();
  assert.throws(() => new DataLoader(range(10), { batchSize: 3, seed: 1 }).loadStateDict(state), /saved loader had batchSize = 2 but this one has 3/);
  assert.throws(() => new DataLoader(range(11), { batchSize: 2, seed: 1 }).loadStateDict(state), /datasetLength = 10 but this one has 11/);
  assert.throws(() => new DataLoader(range(10), { batchSize: 2, seed: 1 }).loadStateDict({ ...state, batchesDone: 9 }), /not a valid position/);
});

test('custom collate, async collate, and the dataset\'s getBatch', async () => {
  const sums = new DataLoader(range(6), { batchSize: 2, collate: (items: number[]) => items[0]! + items[1]! });
  assert.deepEqual(await collect(sums), [1, 5, 9]);
  const asyncCollate = new DataLoader(range(4), { batchSize: 2, collate: async (items: number[]) => items.join('+') });
  assert.deepEqual(await collect(asyncCollate), ['0+1', '2+3']);
  assert.throws(() => [...new DataLoader(range(4), { batchSize: 2, collate: async (items: number[]) => items })], /collate returned a Promise/);

  const withBatch: Dataset<number, string> = {
    length: 5,
    get: (i) => i * 10,
    getBatch: (indices) => `rows ${[...indices].join(',')}`,
  };
  assert.deepEqual(await collect(new DataLoader(withBatch, { batchSize: 2 })), ['rows 0,1', 'rows 2,3', 'rows 4']);
});

test('the next batch is built while the consumer is still working on the current one', async () => {
  const log: string[] = [];
  const loader = new DataLoader(range(6), {
    batchSize: 2,
    prefetch: 1,
    collate: async (items: number[]) => {
      log.push(`build ${items[0]! / 2}`);
      return items;
    },
  });
  for await (const batch of loader) {
    const i = batch[0]! / 2;
    log.push(`train ${i} start`);
    // The training step awaits (as it would on worker-thread kernels or a GPU).
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    log.push(`train ${i} end`);
  }
  // Batch i+1 was built before training on batch i ended (i.e. while it ran, not after it).
  for (let i = 0; i < 2; i++) {
    const built = log.indexOf(`build ${i + 1}`);
    const end = log.indexOf(`train ${i} end`);
    assert.ok(built >= 0 && built < end, log.join(' | '));
  }

  // Without prefetch, building waits for the consumer.
  log.length = 0;
  const lazy = new DataLoader(range(4), { batchSize: 2, prefetch: 0, collate: (items: number[]) => (log.push(`build ${items[0]! / 2}`), items) });
  for await (const batch of lazy) {
    log.push(`train ${batch[0]! / 2} start`);
    await new Promise((resolve) => setImmediate(resolve));
    log.push(`train ${batch[0]! / 2} end`);
  }
  assert.deepEqual(log, ['build 0', 'train 0 start', 'train 0 end', 'build 1', 'train 1 start', 'train 1 end']);
});

test('an error while building a batch reaches the consumer; bad options are refused', async () => {
  const failing = new DataLoader(range(4), {
    batchSize: 2,
    collate: (items: number[]) => {
      if (items[0] === 2) throw new Error('decode failed for record 2');
      return items;
    },
  });
  await assert.rejects(collect(failing), /decode failed for record 2/);
  assert.throws(() => new DataLoader(range(4), { batchSize: 0 }), /batchSize 0 must be a positive integer/);
  assert.throws(() => new DataLoader(range(4), { prefetch: -1 }), /prefetch -1/);
});
