// Direct algorithms: the root (or every rank) talks to each peer itself. With all messages in
// flight at once, the latencies overlap: about α + (p−1)/p·nβ when the links are not the limit.
import type { Blocks } from '../partition.js';
import type { CommArray } from '../types.js';
import type { Comm } from './comm.js';

function block(data: CommArray, blocks: Blocks, i: number): CommArray {
  const o = blocks.offsets[i]!;
  return data.subarray(o, o + blocks.counts[i]!);
}

export async function linearScatter(c: Comm, input: CommArray | undefined, output: CommArray, blocks: Blocks, root: number): Promise<void> {
  if (c.rank !== root) {
    await c.recvInto(root, output);
    return;
  }
  const sends: Promise<void>[] = [];
  for (let i = 0; i < c.size; i++) if (i !== root) sends.push(c.send(i, block(input!, blocks, i)));
  output.set(block(input!, blocks, root));
  await Promise.all(sends);
}

export async function linearGather(c: Comm, input: CommArray, output: CommArray | undefined, blocks: Blocks, root: number): Promise<void> {
  if (c.rank !== root) {
    await c.send(root, input);
    return;
  }
  const recvs: Promise<void>[] = [];
  for (let i = 0; i < c.size; i++) if (i !== root) recvs.push(c.recvInto(i, block(output!, blocks, i)));
  output!.set(input, blocks.offsets[root]!);
  await Promise.all(recvs);
}

/**
 * All-to-all in p−1 rounds: in round s rank r sends to r+s and receives from r−s, so each rank
 * has one message in each direction at a time. Cost (p−1)(α + nβ/p) for n bytes per rank.
 */
export async function pairwiseAllToAll(c: Comm, input: CommArray, output: CommArray, send: Blocks, recv: Blocks): Promise<void> {
  const p = c.size;
  const r = c.rank;
  output.set(block(input, send, r), recv.offsets[r]!);
  for (let s = 1; s < p; s++) {
    const to = (r + s) % p;
    const from = (r - s + p) % p;
    await Promise.all([c.send(to, block(input, send, to)), c.recvInto(from, block(output, recv, from))]);
  }
}

/** All-to-all with every message posted at once. */
export async function linearAllToAll(c: Comm, input: CommArray, output: CommArray, send: Blocks, recv: Blocks): Promise<void> {
  const p = c.size;
  const r = c.rank;
  output.set(block(input, send, r), recv.offsets[r]!);
  const ops: Promise<void>[] = [];
  for (let s = 1; s < p; s++) {
    const peer = (r + s) % p;
    ops.push(c.send(peer, block(input, send, peer)), c.recvInto(peer, block(output, recv, peer)));
  }
  await Promise.all(ops);
}
