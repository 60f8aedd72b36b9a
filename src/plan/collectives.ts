// α-β cost of collectives per algorithm (Chan et al. 2007, doi:10.1002/cpe.1206; Thakur,
// Rabenseifner & Gropp 2005, IJHPCA 19(1)), the double binary tree of Sanders, Speck & Träff 2009
// (used by NCCL ≥ 2.4), the best algorithm per message size, and NCCL's algbw/busbw conversion
// (nccl-tests doc/PERFORMANCE.md). n = message bytes (the full vector; for all-gather the gathered
// output, for reduce-scatter the input), p = ranks, α = latency, β = seconds per byte, γ = seconds
// per byte reduced. parallel-anchors.md §5. All-to-all (the token exchange of expert parallelism):
// n = one rank's whole send buffer, p blocks of n/p; pairwise exchange (Thakur et al. §3: p−1
// rounds, one block each way per round) and Bruck's algorithm (Bruck et al. 1997,
// doi:10.1109/71.642949: ⌈log p⌉ rounds, each forwarding about half the buffer).
import type { LinkSpec } from './hardware.js';

export type Collective = 'broadcast' | 'reduce' | 'scatter' | 'gather' | 'all-gather' | 'reduce-scatter' | 'all-reduce' | 'all-to-all';
export type CollectiveAlgorithm = 'ring' | 'binomial-tree' | 'recursive' | 'double-binary-tree' | 'pairwise' | 'bruck';

export const collectives: readonly Collective[] = ['broadcast', 'reduce', 'scatter', 'gather', 'all-gather', 'reduce-scatter', 'all-reduce', 'all-to-all'];
export const collectiveAlgorithms: readonly CollectiveAlgorithm[] = ['ring', 'binomial-tree', 'recursive', 'double-binary-tree', 'pairwise', 'bruck'];

export interface AlphaBeta {
  /** Seconds per message. */
  alpha: number;
  /** Seconds per byte. */
  beta: number;
  /** Seconds per byte of reduction arithmetic (0 = free). */
  gamma?: number;
}

export function alphaBetaOf(l: LinkSpec, gamma = 0): AlphaBeta {
  return { alpha: l.latency, beta: 1 / (l.bandwidth * l.efficiency), gamma };
}

const isPowerOfTwo = (p: number): boolean => (p & (p - 1)) === 0;

/** Seconds for one collective with one algorithm, or undefined where the algorithm does not
 * implement that collective (the double binary tree only does broadcast, reduce, all-reduce;
 * pairwise exchange and Bruck only all-to-all, which no other algorithm here does). */
export function collectiveTime(op: Collective, alg: CollectiveAlgorithm, bytes: number, p: number, ab: AlphaBeta): number | undefined {
  if (!Number.isInteger(p) || p < 1) throw new Error(`collective ${op}: ranks must be a positive integer, got ${p}.`);
  if (!(bytes >= 0)) throw new Error(`collective ${op}: bytes must be >= 0, got ${bytes}.`);
  if (p === 1) return 0;
  const { alpha: a, beta: b } = ab;
  const g = ab.gamma ?? 0;
  const n = bytes;
  const lg = Math.ceil(Math.log2(p));
  const frac = (p - 1) / p;
  // Binomial-tree (MST) building blocks, Chan et al. §4.
  const mstBcast = lg * (a + n * b);
  const mstReduce = lg * (a + n * b + n * g);
  const mstScatter = lg * a + frac * n * b;
  // Ring ("bucket") building blocks, Chan et al. §5.
  const ringAllGather = (p - 1) * a + frac * n * b;
  const ringReduceScatter = (p - 1) * a + frac * n * (b + g);
  // Recursive doubling/halving (Thakur et al. §4); a non-power-of-two p costs an extra exchange
  // before and after with the excess ranks.
  const extra = isPowerOfTwo(p) ? 0 : 2 * (a + n * b);
  const recAllGather = lg * a + frac * n * b + extra;
  const recReduceScatter = lg * a + frac * n * (b + g) + extra;
  // Pipelined binary tree with the optimal chunk count: (√(dα) + √(nβ))² (Sanders et al. 2009);
  // two trees each carry half the data so every link is used in both directions.
  const pipelinedTree = (Math.sqrt(lg * a) + Math.sqrt(n * b)) ** 2;
  if (op === 'all-to-all') {
    if (alg === 'pairwise') return (p - 1) * (a + (n / p) * b);
    // Round r sends the blocks whose index has bit r set: ⌊p/2⌋ of the p blocks when p is a power of two.
    if (alg === 'bruck') return lg * (a + (Math.floor(p / 2) / p) * n * b);
    return undefined;
  }
  switch (alg) {
    case 'ring':
      switch (op) {
        case 'all-gather': return ringAllGather;
        case 'reduce-scatter': return ringReduceScatter;
        case 'all-reduce': return 2 * (p - 1) * a + 2 * frac * n * b + frac * n * g;
        case 'broadcast': return mstScatter + ringAllGather; // scatter + all-gather (van de Geijn)
        case 'reduce': return ringReduceScatter + mstScatter; // reduce-scatter + gather
        case 'scatter': case 'gather': return (p - 1) * a + frac * n * b;
      }
      break;
    case 'binomial-tree':
      switch (op) {
        case 'broadcast': return mstBcast;
        case 'reduce': return mstReduce;
        case 'scatter': case 'gather': return mstScatter;
        case 'all-gather': return mstScatter + mstBcast; // gather + broadcast
        case 'reduce-scatter': return mstReduce + mstScatter; // reduce + scatter
        case 'all-reduce': return mstReduce + mstBcast;
      }
      break;
    case 'recursive':
      switch (op) {
        case 'all-gather': return recAllGather;
        case 'reduce-scatter': return recReduceScatter;
        // Rabenseifner: recursive-halving reduce-scatter + recursive-doubling all-gather.
        case 'all-reduce': return 2 * lg * a + 2 * frac * n * b + frac * n * g + extra;
        case 'broadcast': return mstScatter + recAllGather;
        case 'reduce': return recReduceScatter + mstScatter;
        case 'scatter': case 'gather': return undefined;
      }
      break;
    case 'double-binary-tree':
      switch (op) {
        case 'broadcast': return pipelinedTree;
        case 'reduce': return pipelinedTree + n * g;
        case 'all-reduce': return 2 * pipelinedTree + n * g;
        default: return undefined;
      }
  }
  return undefined;
}

export interface CollectiveChoice {
  algorithm: CollectiveAlgorithm;
  seconds: number;
  /** Every algorithm that implements the collective, with its time. */
  candidates: { algorithm: CollectiveAlgorithm; seconds: number }[];
}

/** The fastest algorithm for this collective at this size, as NCCL's tuner does from its model. */
export function bestCollective(op: Collective, bytes: number, p: number, ab: AlphaBeta): CollectiveChoice {
  const candidates: { algorithm: CollectiveAlgorithm; seconds: number }[] = [];
  for (const algorithm of collectiveAlgorithms) {
    const seconds = collectiveTime(op, algorithm, bytes, p, ab);
    if (seconds !== undefined) candidates.push({ algorithm, seconds });
  }
  const best = candidates.reduce((x, y) => (y.seconds < x.seconds ? y : x));
  return { algorithm: best.algorithm, seconds: best.seconds, candidates };
}

/** nccl-tests' bus-bandwidth factor: busbw = algbw × factor, so that busbw is comparable with the
 * link's speed whatever the rank count. */
export function busBandwidthFactor(op: Collective | 'all-to-all', p: number): number {
  switch (op) {
    case 'all-reduce': return (2 * (p - 1)) / p;
    case 'reduce-scatter': case 'all-gather': case 'all-to-all': return (p - 1) / p;
    default: return 1;
  }
}

/** algbw = S / t, with S the size nccl-tests reports (for all-gather and reduce-scatter the total
 * size, count × ranks); busbw = algbw × busBandwidthFactor. */
export function ncclBandwidths(op: Collective | 'all-to-all', bytes: number, seconds: number, p: number): { algbw: number; busbw: number } {
  if (!(seconds > 0)) throw new Error(`ncclBandwidths: seconds must be > 0, got ${seconds}.`);
  const algbw = bytes / seconds;
  return { algbw, busbw: algbw * busBandwidthFactor(op, p) };
}
