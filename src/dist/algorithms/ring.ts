// Ring algorithms: in each of p−1 steps every rank sends one block to its right neighbour and
// receives one from its left, so every link carries (p−1)/p of the data, the bandwidth-optimal
// volume (Patarasuk & Yuan 2009), at the price of p−1 latencies.
// Costs: all-gather (p−1)α + (p−1)/p·nβ; reduce-scatter the same + (p−1)/p·nγ;
// all-reduce 2(p−1)α + 2(p−1)/p·nβ + (p−1)/p·nγ.
import type { Blocks } from '../partition.js';
import { evenBlocks } from '../partition.js';
import type { CommArray, ReduceOp } from '../types.js';
import type { Comm } from './comm.js';
import { pairAllReduce } from './pair.js';
import { treeScatter } from './tree.js';

function block(data: CommArray, blocks: Blocks, i: number): CommArray {
  const o = blocks.offsets[i]!;
  return data.subarray(o, o + blocks.counts[i]!);
}

/**
 * Reduces `work` across ranks so that block `rank` of each rank's `work` holds the reduction of
 * that block; the other blocks are left partially reduced.
 */
export async function ringReduceScatter(c: Comm, work: CommArray, blocks: Blocks, op: ReduceOp): Promise<void> {
  const p = c.size;
  const r = c.rank;
  const right = (r + 1) % p;
  const left = (r - 1 + p) % p;
  for (let s = 0; s < p - 1; s++) {
    const out = (r - s - 1 + 2 * p) % p;
    const into = (r - s - 2 + 2 * p) % p;
    await Promise.all([c.send(right, block(work, blocks, out)), c.recvReduce(left, block(work, blocks, into), op)]);
  }
}

/** Given block `rank` filled on each rank, fills every block of `data` on every rank. */
export async function ringAllGather(c: Comm, data: CommArray, blocks: Blocks): Promise<void> {
  const p = c.size;
  const r = c.rank;
  const right = (r + 1) % p;
  const left = (r - 1 + p) % p;
  for (let s = 0; s < p - 1; s++) {
    const out = (r - s + p) % p;
    const into = (r - s - 1 + p) % p;
    await Promise.all([c.send(right, block(data, blocks, out)), c.recvInto(left, block(data, blocks, into))]);
  }
}

export async function ringAllReduce(c: Comm, data: CommArray, op: ReduceOp): Promise<void> {
  // A ring of two is an exchange of halves; the direct form saves a round and, on shared
  // memory, the all-gather copy.
  if (c.size === 2) return pairAllReduce(c, data, op);
  const blocks = evenBlocks(data.length, c.size);
  await ringReduceScatter(c, data, blocks, op);
  await ringAllGather(c, data, blocks);
}

/** Ring reduce: ring reduce-scatter, then every rank sends its reduced block to the root. */
export async function ringReduce(c: Comm, acc: CommArray, op: ReduceOp, root: number): Promise<void> {
  const blocks = evenBlocks(acc.length, c.size);
  await ringReduceScatter(c, acc, blocks, op);
  if (c.rank !== root) {
    await c.send(root, block(acc, blocks, c.rank));
    return;
  }
  const recvs: Promise<void>[] = [];
  for (let i = 0; i < c.size; i++) if (i !== root) recvs.push(c.recvInto(i, block(acc, blocks, i)));
  await Promise.all(recvs);
}

/**
 * Broadcast as scatter + ring all-gather (van de Geijn): the root's data is cut into p blocks
 * in virtual-rank order, scattered along a binomial tree, then circulated around the ring.
 * Cost (⌈log p⌉ + p−1)α + 2(p−1)/p·nβ.
 */
export async function ringBroadcast(c: Comm, data: CommArray, root: number): Promise<void> {
  const p = c.size;
  const vr = (c.rank - root + p) % p;
  // Blocks by virtual rank over positions of `data`: the subtree spans stay contiguous in place.
  const vBlocks = evenBlocks(data.length, p);
  await scatterInPlace(c, data, vBlocks, root, vr);
  // Ring all-gather over virtual ranks.
  const right = (c.rank + 1) % p;
  const left = (c.rank - 1 + p) % p;
  for (let s = 0; s < p - 1; s++) {
    const out = (vr - s + p) % p;
    const into = (vr - s - 1 + p) % p;
    await Promise.all([c.send(right, block(data, vBlocks, out)), c.recvInto(left, block(data, vBlocks, into))]);
  }
}

/** Binomial scatter where every rank's subtree range is a contiguous piece of `data` itself. */
async function scatterInPlace(c: Comm, data: CommArray, v: Blocks, root: number, vr: number): Promise<void> {
  const p = c.size;
  let mask = 1;
  if (vr === 0) while (mask < p) mask <<= 1;
  else mask = vr & -vr;
  const rangeOf = (first: number, last: number) => data.subarray(v.offsets[first]!, v.offsets[last] ?? v.total);
  if (vr !== 0) await c.recvInto((vr - mask + root) % p, rangeOf(vr, Math.min(vr + mask, p)));
  for (let m = mask >> 1; m > 0; m >>= 1) {
    const child = vr + m;
    if (child < p) await c.send((child + root) % p, rangeOf(child, Math.min(child + m, p)));
  }
}

