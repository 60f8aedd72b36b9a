// All-reduce between exactly two ranks as a direct exchange of halves: each rank reduces one
// half (reading the peer's half as it arrives, in place where the transport can), then each
// gets the other half's result. On two ranks this moves the same bytes as the ring, but in
// one round instead of a pipelined two, and on shared memory it needs no all-gather copy at
// all: the reducing rank writes the result straight back into the peer's array (see
// Comm.recvReduceWriteBack), so the whole call is one fused pass over half the array per rank.
// Cost: 2α + n/2·β + n/2·γ (+ α for the write-back flags; + n/2·β where nothing was written back).
import { evenBlocks } from '../partition.js';
import type { CommArray, ReduceOp } from '../types.js';
import type { Comm } from './comm.js';

export async function pairAllReduce(c: Comm, data: CommArray, op: ReduceOp): Promise<void> {
  if (c.size !== 2) throw new RangeError(`pairAllReduce: needs a group of exactly 2 ranks, got ${c.size}`);
  const peer = 1 - c.rank;
  const blocks = evenBlocks(data.length, 2);
  const half = (i: number) => data.subarray(blocks.offsets[i]!, blocks.offsets[i]! + blocks.counts[i]!);
  const mine = half(c.rank);
  const theirs = half(peer);
  const [, wroteBack] = await Promise.all([c.send(peer, theirs), c.recvReduceWriteBack(peer, mine, op)]);
  // Each side tells the other whether its half already holds the result; only a half that was
  // not written back travels again. Int32 flags, whatever the data's dtype: the transport
  // moves bytes.
  const flagOut = new Int32Array([wroteBack ? 1 : 0]);
  const flagIn = new Int32Array(1);
  await Promise.all([c.send(peer, flagOut), c.recvInto(peer, flagIn)]);
  const sends: Promise<void>[] = [];
  if (!wroteBack) sends.push(c.send(peer, mine));
  if (flagIn[0] !== 1) sends.push(c.recvInto(peer, theirs));
  await Promise.all(sends);
}
