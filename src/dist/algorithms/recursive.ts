// Recursive doubling and halving. They need a power-of-two number of ranks, so for other sizes
// the first 2·rem ranks (rem = p − 2^⌊log p⌋) pair up first: each even rank of those hands its
// data to the odd rank after it and sits out, and gets the result back at the end. Virtual rank
// v then stands for the real ranks [2v, 2v+2) when v < rem and [v+rem, v+rem+1) otherwise, a
// contiguous range, so block ranges stay contiguous. The pairing costs about 2(α + nβ) extra.
// Costs for p a power of two: recursive-doubling all-reduce ⌈log p⌉(α + nβ + nγ);
// recursive-halving reduce-scatter ⌈log p⌉α + (p−1)/p·n(β + γ); recursive-doubling
// all-gather ⌈log p⌉α + (p−1)/p·nβ; Rabenseifner all-reduce (halving reduce-scatter, then
// doubling all-gather) 2⌈log p⌉α + 2(p−1)/p·nβ + (p−1)/p·nγ.
import type { Blocks } from '../partition.js';
import { evenBlocks } from '../partition.js';
import { reduceInto } from '../reduce-kernels.js';
import type { CommArray, ReduceOp } from '../types.js';
import type { Comm } from './comm.js';

export interface Folding {
  /** Largest power of two ≤ p. */
  readonly pof2: number;
  readonly rem: number;
  /** This rank's virtual rank, or -1 if it sits out. */
  readonly vrank: number;
}

export function folding(rank: number, p: number): Folding {
  let pof2 = 1;
  while (pof2 * 2 <= p) pof2 *= 2;
  const rem = p - pof2;
  let vrank: number;
  if (rank < 2 * rem) vrank = rank % 2 === 0 ? -1 : rank >> 1;
  else vrank = rank - rem;
  return { pof2, rem, vrank };
}

export function realOfVirtual(v: number, f: Folding): number {
  return v < f.rem ? 2 * v + 1 : v + f.rem;
}

/** First real rank covered by virtual rank v (v = pof2 gives p). */
function firstRealOf(v: number, f: Folding): number {
  return v < f.rem ? 2 * v : v + f.rem;
}

/** Element range of the real blocks covered by virtual ranks [v0, v1). */
function virtualRange(blocks: Blocks, f: Folding, v0: number, v1: number): [number, number] {
  const a = firstRealOf(v0, f);
  const b = firstRealOf(v1, f);
  return [blocks.offsets[a] ?? blocks.total, blocks.offsets[b] ?? blocks.total];
}

/** Even ranks below 2·rem hand their whole vector to the next rank, which reduces it. */
async function foldIn(c: Comm, work: CommArray, op: ReduceOp, f: Folding): Promise<void> {
  if (c.rank >= 2 * f.rem) return;
  if (f.vrank < 0) await c.send(c.rank + 1, work);
  else await c.recvReduce(c.rank - 1, work, op);
}

async function foldOut(c: Comm, result: CommArray, f: Folding): Promise<void> {
  if (c.rank >= 2 * f.rem) return;
  if (f.vrank < 0) await c.recvInto(c.rank + 1, result);
  else await c.send(c.rank - 1, result);
}

export async function recursiveDoublingAllReduce(c: Comm, data: CommArray, op: ReduceOp): Promise<void> {
  const f = folding(c.rank, c.size);
  await foldIn(c, data, op, f);
  if (f.vrank >= 0 && f.pof2 > 1) {
    const incoming = c.scratch(data.length);
    for (let mask = 1; mask < f.pof2; mask <<= 1) {
      const partner = realOfVirtual(f.vrank ^ mask, f);
      // Received into scratch because `data` is being sent at the same time.
      await c.exchange(partner, data, incoming);
      reduceInto(data, incoming, op);
    }
  }
  await foldOut(c, data, f);
}

/**
 * Recursive halving over virtual ranks with block boundaries `range(v0, v1)`: afterwards
 * virtual rank v holds the reduction of its own range.
 */
async function halving(c: Comm, work: CommArray, op: ReduceOp, f: Folding, range: (v0: number, v1: number) => [number, number]): Promise<void> {
  let lo = 0;
  let hi = f.pof2;
  for (let mask = f.pof2 >> 1; mask > 0; mask >>= 1) {
    const partner = realOfVirtual(f.vrank ^ mask, f);
    const mid = lo + mask;
    const keepLower = (f.vrank & mask) === 0;
    const [k0, k1] = keepLower ? range(lo, mid) : range(mid, hi);
    const [s0, s1] = keepLower ? range(mid, hi) : range(lo, mid);
    await Promise.all([c.send(partner, work.subarray(s0, s1)), c.recvReduce(partner, work.subarray(k0, k1), op)]);
    if (keepLower) hi = mid;
    else lo = mid;
  }
}

/** Recursive doubling all-gather over virtual ranks: starts holding range(v, v+1). */
async function doubling(c: Comm, data: CommArray, f: Folding, range: (v0: number, v1: number) => [number, number]): Promise<void> {
  for (let mask = 1; mask < f.pof2; mask <<= 1) {
    const partnerV = f.vrank ^ mask;
    const partner = realOfVirtual(partnerV, f);
    const mine = f.vrank & ~(mask - 1);
    const theirs = partnerV & ~(mask - 1);
    const [m0, m1] = range(mine, mine + mask);
    const [t0, t1] = range(theirs, theirs + mask);
    await c.exchange(partner, data.subarray(m0, m1), data.subarray(t0, t1));
  }
}

export async function rabenseifnerAllReduce(c: Comm, data: CommArray, op: ReduceOp): Promise<void> {
  const f = folding(c.rank, c.size);
  await foldIn(c, data, op, f);
  if (f.vrank >= 0 && f.pof2 > 1) {
    const vBlocks = evenBlocks(data.length, f.pof2);
    const range = (v0: number, v1: number): [number, number] => [vBlocks.offsets[v0] ?? vBlocks.total, vBlocks.offsets[v1] ?? vBlocks.total];
    await halving(c, data, op, f, range);
    await doubling(c, data, f, range);
  }
  await foldOut(c, data, f);
}

/** Leaves the reduction of block `rank` in block `rank` of `work` (other blocks clobbered). */
export async function recursiveHalvingReduceScatter(c: Comm, work: CommArray, blocks: Blocks, op: ReduceOp): Promise<void> {
  const f = folding(c.rank, c.size);
  await foldIn(c, work, op, f);
  const range = (v0: number, v1: number) => virtualRange(blocks, f, v0, v1);
  if (f.vrank >= 0 && f.pof2 > 1) await halving(c, work, op, f, range);
  // The odd rank of each pair holds both ranks' blocks; return the even rank's.
  if (c.rank < 2 * f.rem) {
    const even = c.rank - (c.rank % 2);
    const b = work.subarray(blocks.offsets[even]!, blocks.offsets[even]! + blocks.counts[even]!);
    if (f.vrank < 0) await c.recvInto(c.rank + 1, b);
    else await c.send(c.rank - 1, b);
  }
}

/** Given block `rank` filled on each rank, fills all of `data` everywhere. */
export async function recursiveDoublingAllGather(c: Comm, data: CommArray, blocks: Blocks): Promise<void> {
  const f = folding(c.rank, c.size);
  if (c.rank < 2 * f.rem) {
    const even = c.rank - (c.rank % 2);
    const b = data.subarray(blocks.offsets[even]!, blocks.offsets[even]! + blocks.counts[even]!);
    if (f.vrank < 0) await c.send(c.rank + 1, b);
    else await c.recvInto(c.rank - 1, b);
  }
  if (f.vrank >= 0 && f.pof2 > 1) await doubling(c, data, f, (v0, v1) => virtualRange(blocks, f, v0, v1));
  await foldOut(c, data, f);
}
