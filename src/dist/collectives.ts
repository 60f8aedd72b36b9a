// Each collective's algorithms behind one signature, plus the block layouts and the extra
// steps around them (scratch copies that keep inputs intact, the division of 'avg').
import type { Comm } from './algorithms/comm.js';
import { disseminationBarrier, treeBarrier } from './algorithms/barrier.js';
import { linearAllToAll, linearGather, linearScatter, pairwiseAllToAll } from './algorithms/linear.js';
import { rabenseifnerAllReduce, recursiveDoublingAllGather, recursiveDoublingAllReduce, recursiveHalvingReduceScatter } from './algorithms/recursive.js';
import type { AlgorithmOf } from './algorithms/registry.js';
import { ringAllGather, ringAllReduce, ringBroadcast, ringReduce, ringReduceScatter } from './algorithms/ring.js';
import { treeBroadcast, treeGather, treeReduce, treeScatter } from './algorithms/tree.js';
import type { Blocks } from './partition.js';
import { checkCounts, evenBlocks } from './partition.js';
import { divideInPlace } from './reduce-kernels.js';
import type { CommArray, ReduceOp } from './types.js';
import { allocArray, dtypeOf } from './types.js';

export const barrierAlgorithms: Record<AlgorithmOf<'barrier'>, (c: Comm) => Promise<void>> = {
  dissemination: disseminationBarrier,
  tree: treeBarrier,
};

function sumFor(op: ReduceOp): ReduceOp {
  return op === 'avg' ? 'sum' : op;
}

function block(data: CommArray, blocks: Blocks, i: number): CommArray {
  return data.subarray(blocks.offsets[i]!, blocks.offsets[i]! + blocks.counts[i]!);
}

async function broadcast(c: Comm, alg: AlgorithmOf<'broadcast'>, data: CommArray, root: number): Promise<void> {
  if (alg === 'tree') await treeBroadcast(c, data, root);
  else await ringBroadcast(c, data, root);
}

async function reduce(c: Comm, alg: AlgorithmOf<'reduce'>, data: CommArray, op: ReduceOp, root: number): Promise<void> {
  // Non-root arrays serve as accumulators, so they work on a copy.
  const acc = c.rank === root ? data : c.copyToScratch(data);
  if (alg === 'tree') await treeReduce(c, acc, sumFor(op), root);
  else await ringReduce(c, acc, sumFor(op), root);
  if (op === 'avg' && c.rank === root) divideInPlace(data, c.size);
}

async function allReduce(c: Comm, alg: AlgorithmOf<'allReduce'>, data: CommArray, op: ReduceOp): Promise<void> {
  const o = sumFor(op);
  switch (alg) {
    case 'ring':
      await ringAllReduce(c, data, o);
      break;
    case 'tree':
      await treeReduce(c, data, o, 0);
      await treeBroadcast(c, data, 0);
      break;
    case 'recursive-doubling':
      await recursiveDoublingAllReduce(c, data, o);
      break;
    case 'rabenseifner':
      await rabenseifnerAllReduce(c, data, o);
      break;
  }
  if (op === 'avg') divideInPlace(data, c.size);
}

async function scatter(c: Comm, alg: AlgorithmOf<'scatter'>, input: CommArray | undefined, output: CommArray, blocks: Blocks, root: number): Promise<void> {
  if (alg === 'tree') await treeScatter(c, input, output, blocks, root);
  else await linearScatter(c, input, output, blocks, root);
}

async function gather(c: Comm, alg: AlgorithmOf<'gather'>, input: CommArray, output: CommArray | undefined, blocks: Blocks, root: number): Promise<void> {
  if (alg === 'tree') await treeGather(c, input, output, blocks, root);
  else await linearGather(c, input, output, blocks, root);
}

async function allGather(c: Comm, alg: AlgorithmOf<'allGather'>, input: CommArray, output: CommArray, blocks: Blocks): Promise<void> {
  switch (alg) {
    case 'ring':
      output.set(input, blocks.offsets[c.rank]!);
      await ringAllGather(c, output, blocks);
      break;
    case 'recursive-doubling':
      output.set(input, blocks.offsets[c.rank]!);
      await recursiveDoublingAllGather(c, output, blocks);
      break;
    case 'tree':
      await treeGather(c, input, c.rank === 0 ? output : undefined, blocks, 0);
      await treeBroadcast(c, output, 0);
      break;
  }
}

async function reduceScatter(c: Comm, alg: AlgorithmOf<'reduceScatter'>, input: CommArray, output: CommArray, blocks: Blocks, op: ReduceOp, overwriteInput: boolean): Promise<void> {
  // The algorithms reduce in place; the input is kept intact unless the caller gave it up.
  const work = overwriteInput ? input : c.copyToScratch(input);
  const o = sumFor(op);
  switch (alg) {
    case 'ring':
      await ringReduceScatter(c, work, blocks, o);
      output.set(block(work, blocks, c.rank));
      break;
    case 'recursive-halving':
      await recursiveHalvingReduceScatter(c, work, blocks, o);
      output.set(block(work, blocks, c.rank));
      break;
    case 'tree':
      await treeReduce(c, work, o, 0);
      await treeScatter(c, c.rank === 0 ? work : undefined, output, blocks, 0);
      break;
  }
  if (op === 'avg') divideInPlace(output, c.size);
}

async function allToAll(c: Comm, alg: AlgorithmOf<'allToAll'>, input: CommArray, output: CommArray, send: Blocks, recv: Blocks): Promise<void> {
  if (alg === 'pairwise') await pairwiseAllToAll(c, input, output, send, recv);
  else await linearAllToAll(c, input, output, send, recv);
}

/** Blocks from explicit counts, or `each` elements per rank, or an even split of `total`. */
function blocksFor(what: string, p: number, counts: readonly number[] | undefined, each?: number, total?: number): Blocks {
  if (counts !== undefined) {
    const b = checkCounts(counts, p, what);
    if (total !== undefined && b.total !== total) {
      throw new RangeError(`${what}: counts add up to ${b.total} but the input has ${total} elements; they must match`);
    }
    return b;
  }
  if (total !== undefined) return evenBlocks(total, p);
  return checkCounts(new Array<number>(p).fill(each ?? 0), p, what);
}

function allToAllBlocks(p: number, length: number, sendCounts?: readonly number[], recvCounts?: readonly number[]): { send: Blocks; recv: Blocks } {
  if ((sendCounts === undefined) !== (recvCounts === undefined)) {
    throw new RangeError('allToAll: pass both sendCounts and recvCounts (what each rank sends to and receives from every rank), or neither');
  }
  if (sendCounts && recvCounts) {
    const send = checkCounts(sendCounts, p, 'allToAll sendCounts');
    if (send.total !== length) throw new RangeError(`allToAll: sendCounts add up to ${send.total} but the input has ${length} elements`);
    return { send, recv: checkCounts(recvCounts, p, 'allToAll recvCounts') };
  }
  if (length % p !== 0) {
    throw new RangeError(
      `allToAll: the input length ${length} is not divisible by the group size ${p}; pad it, or pass sendCounts and recvCounts to split it unevenly`,
    );
  }
  const even = evenBlocks(length, p);
  return { send: even, recv: even };
}

function alloc(like: CommArray, length: number): CommArray {
  return allocArray(dtypeOf(like), length);
}

export const runCollective = { broadcast, reduce, allReduce, scatter, gather, allGather, reduceScatter, allToAll, blocksFor, allToAllBlocks, alloc };
