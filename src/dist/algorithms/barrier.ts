// Barriers: empty messages. Dissemination (Hensgen et al. 1988): in round k every rank signals
// rank + 2^k and waits for rank − 2^k; after ⌈log p⌉ rounds everyone has heard from everyone,
// cost ⌈log p⌉α. The tree barrier gathers to rank 0 and broadcasts back, 2⌈log p⌉α.
import type { Comm } from './comm.js';
import { treeBroadcast, treeReduce } from './tree.js';

export async function disseminationBarrier(c: Comm): Promise<void> {
  const p = c.size;
  const empty = c.scratch(0);
  for (let k = 1; k < p; k <<= 1) {
    await Promise.all([c.send((c.rank + k) % p, empty), c.recvInto((c.rank - k + p) % p, empty)]);
  }
}

export async function treeBarrier(c: Comm): Promise<void> {
  const empty = c.scratch(0);
  await treeReduce(c, empty, 'sum', 0);
  await treeBroadcast(c, empty, 0);
}
