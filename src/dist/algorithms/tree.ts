// Binomial-tree (minimum spanning tree) algorithms. Ranks are renumbered relative to the root
// ("virtual rank" vr = (rank - root) mod p); the subtree under vr covers the virtual ranks
// [vr, vr + lowbit(vr)), so a subtree's blocks are contiguous when laid out in virtual order.
// Costs (Chan et al. 2007): broadcast ⌈log p⌉(α + nβ); reduce ⌈log p⌉(α + nβ + nγ);
// scatter and gather ⌈log p⌉α + (p−1)/p·nβ.
import type { Blocks } from '../partition.js';
import { blocksFromCounts } from '../partition.js';
import type { CommArray, ReduceOp } from '../types.js';
import type { Comm } from './comm.js';

function realRank(vr: number, root: number, p: number): number {
  return (vr + root) % p;
}

/** Lowest set bit of vr, or the smallest power of two ≥ p for the root. */
function subtreeMask(vr: number, p: number): number {
  if (vr === 0) {
    let m = 1;
    while (m < p) m <<= 1;
    return m;
  }
  return vr & -vr;
}

export async function treeBroadcast(c: Comm, data: CommArray, root: number): Promise<void> {
  const p = c.size;
  const vr = (c.rank - root + p) % p;
  const mask = subtreeMask(vr, p);
  if (vr !== 0) await c.recvInto(realRank(vr - mask, root, p), data);
  for (let m = mask >> 1; m > 0; m >>= 1) {
    if (vr + m < p) await c.send(realRank(vr + m, root, p), data);
  }
}

/** Reduces every rank's `acc` into the root's `acc`; non-root `acc` arrays are clobbered. */
export async function treeReduce(c: Comm, acc: CommArray, op: ReduceOp, root: number): Promise<void> {
  const p = c.size;
  const vr = (c.rank - root + p) % p;
  for (let m = 1; m < p; m <<= 1) {
    if (vr & m) {
      await c.send(realRank(vr - m, root, p), acc);
      return;
    }
    if (vr + m < p) await c.recvReduce(realRank(vr + m, root, p), acc, op);
  }
}

/** Blocks laid out in virtual-rank order: block j belongs to real rank (j + root) mod p. */
function virtualBlocks(blocks: Blocks, root: number): Blocks {
  const p = blocks.counts.length;
  const counts: number[] = [];
  for (let j = 0; j < p; j++) counts.push(blocks.counts[(j + root) % p]!);
  return blocksFromCounts(counts);
}

function spanEnd(vr: number, mask: number, p: number): number {
  return Math.min(vr + mask, p);
}

/** Copies between real-rank order (`real`) and virtual order (`virt`) in either direction. */
function rotate(real: CommArray, virt: CommArray, blocks: Blocks, v: Blocks, root: number, toVirtual: boolean): void {
  const p = blocks.counts.length;
  for (let j = 0; j < p; j++) {
    const r = (j + root) % p;
    const n = blocks.counts[r]!;
    const ro = blocks.offsets[r]!;
    const vo = v.offsets[j]!;
    if (toVirtual) virt.set(real.subarray(ro, ro + n), vo);
    else real.set(virt.subarray(vo, vo + n), ro);
  }
}

/**
 * Root's `input` (all blocks, rank order) → each rank's `output` (its block). `input` is only
 * read at the root.
 */
export async function treeScatter(c: Comm, input: CommArray | undefined, output: CommArray, blocks: Blocks, root: number): Promise<void> {
  const p = c.size;
  const vr = (c.rank - root + p) % p;
  const v = virtualBlocks(blocks, root);
  const mask = subtreeMask(vr, p);
  const end = spanEnd(vr, mask, p);
  const base = v.offsets[vr]!;
  let buf: CommArray;
  if (vr === 0) {
    if (root === 0) buf = input!;
    else {
      buf = c.scratch(blocks.total);
      rotate(input!, buf, blocks, v, root, true);
    }
  } else {
    const spanLength = (v.offsets[end] ?? v.total) - base;
    buf = end === vr + 1 ? output : c.scratch(spanLength);
    await c.recvInto(realRank(vr - mask, root, p), buf.subarray(0, spanLength));
  }
  for (let m = mask >> 1; m > 0; m >>= 1) {
    const child = vr + m;
    if (child >= p) continue;
    const cEnd = spanEnd(child, m, p);
    const from = v.offsets[child]! - base;
    const to = (v.offsets[cEnd] ?? v.total) - base;
    await c.send(realRank(child, root, p), buf.subarray(from, to));
  }
  if (buf !== output) output.set(buf.subarray(0, v.counts[vr]!));
}

/** Each rank's `input` (its block) → root's `output` (all blocks, rank order). */
export async function treeGather(c: Comm, input: CommArray, output: CommArray | undefined, blocks: Blocks, root: number): Promise<void> {
  const p = c.size;
  const vr = (c.rank - root + p) % p;
  const v = virtualBlocks(blocks, root);
  const mask = subtreeMask(vr, p);
  const end = spanEnd(vr, mask, p);
  const base = v.offsets[vr]!;
  const spanLength = (v.offsets[end] ?? v.total) - base;
  let buf: CommArray;
  if (vr === 0) buf = root === 0 ? output! : c.scratch(blocks.total);
  else buf = end === vr + 1 ? input : c.scratch(spanLength);
  if (buf !== input) buf.set(input, 0);
  for (let m = 1; m < mask && vr + m < p; m <<= 1) {
    const child = vr + m;
    const cEnd = spanEnd(child, m, p);
    const from = v.offsets[child]! - base;
    const to = (v.offsets[cEnd] ?? v.total) - base;
    await c.recvInto(realRank(child, root, p), buf.subarray(from, to));
  }
  if (vr !== 0) await c.send(realRank(vr - mask, root, p), buf.subarray(0, spanLength));
  else if (root !== 0) rotate(output!, buf, blocks, v, root, false);
}
