// All-reduce between exactly two ranks as a direct exchange of halves: each rank reduces one
// half (reading the peer's half as it arrives, in place where the transport can), then each
// gets the other half's result. On two ranks this moves the same bytes as the ring, but in
// one round instead of a pipelined two, and on shared memory it needs no all-gather copy at
// all: the reducing rank writes the result straight back into the peer's array (see
// Comm.recvReduceWriteBack), so the whole call is one fused pass over half the array per rank.
// Cost: 2α + n/2·β + n/2·γ (+ α for the write-back flags; + n/2·β where nothing was written back).
//
// Over TCP nothing is ever read in the peer's memory, so the result always travels back, and
// the call is streamed instead (streamedPairAllReduce): each half goes in pieces, and each piece
// of the result is sent as soon as it is reduced, without the flag exchange.
import { evenBlocks } from '../partition.js';
import type { CommArray, ReduceOp } from '../types.js';
import type { Comm } from './comm.js';

export async function pairAllReduce(c: Comm, data: CommArray, op: ReduceOp): Promise<void> {
  if (c.size !== 2) throw new RangeError(`pairAllReduce: needs a group of exactly 2 ranks, got ${c.size}`);
  if (c.transportKind === 'tcp') return streamedPairAllReduce(c, data, op);
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

/**
 * Pieces of 4 MiB: the last piece's reduction, which nothing overlaps, stays short (~1 ms with
 * the SIMD reduction), and the per-message costs (a header, a receive to match, a promise, a
 * timer) are paid 16 times per 64 MB instead of 64. Measured on a quiet machine, 64 MB 2-rank
 * TCP all-reduce, 1 MiB and 4 MiB alternating four times (this constant edited between runs of
 * `npx tsx bench/comm/profile-allreduce.ts tcp 64 ring 20`):
 * median 78/77/78/65 ms per call with 1 MiB against 72/71/72/57 with 4 MiB. (Before the reduction
 * ran in SIMD, under load, no size between 1 and 32 MiB was consistently better.)
 */
const STREAM_PIECE_BYTES = 4 << 20;

function pieces(half: CommArray): CommArray[] {
  const step = Math.max(1, Math.floor(STREAM_PIECE_BYTES / half.BYTES_PER_ELEMENT));
  const out: CommArray[] = [];
  for (let o = 0; o < half.length; o += step) out.push(half.subarray(o, Math.min(half.length, o + step)));
  if (out.length === 0) out.push(half);
  return out;
}

/**
 * The exchange of halves for transports that copy (TCP), with nothing waiting on a phase: each
 * rank queues all pieces of the half it does not own at once; each piece of its own half is
 * reduced as it arrives and at once queued back as a result; the peer's results are read
 * straight into this rank's array. On a connection, each rank's messages thus go out as all
 * input pieces, then all result pieces, in order, so both ranks post their receives in that
 * order up front. A result piece overwrites the input piece this rank sent from the same
 * memory, which is safe: the peer can only have reduced it after the kernel had copied it.
 * Cost: 2α + n/2·β + n/2·γ + n/2·β, with the reduction and both halves' transfers overlapping.
 */
async function streamedPairAllReduce(c: Comm, data: CommArray, op: ReduceOp): Promise<void> {
  const peer = 1 - c.rank;
  const blocks = evenBlocks(data.length, 2);
  const half = (i: number) => data.subarray(blocks.offsets[i]!, blocks.offsets[i]! + blocks.counts[i]!);
  const mine = pieces(half(c.rank));
  const theirs = pieces(half(peer));
  const work: Promise<void>[] = [];
  for (const piece of theirs) work.push(c.send(peer, piece));
  for (const piece of mine) work.push(c.recvReduce(peer, piece, op).then(() => c.send(peer, piece)));
  for (const piece of theirs) work.push(c.recvInto(peer, piece));
  await Promise.all(work);
}
