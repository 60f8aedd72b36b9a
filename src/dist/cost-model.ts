// The alpha-beta(-gamma) model: sending n bytes costs α + nβ, reducing n bytes costs nγ.
// Formulas follow Chan et al. 2007 and Thakur et al. 2005 (see docs/distributed.md); they
// choose the algorithm of each call when none is given. All ranks use the same α, β, γ (those
// measured on rank 0) so that they all choose the same algorithm.
import type { AlgorithmOf, Collective } from './algorithms/registry.js';
import { ALGORITHMS } from './algorithms/registry.js';

export interface CostModel {
  /** Latency of one message, seconds. */
  readonly alpha: number;
  /** Transfer time per byte, seconds (1 / bandwidth). */
  readonly beta: number;
  /** Reduction time per byte, seconds. */
  readonly gamma: number;
}

/** Used until measured, and when measuring is turned off: roughly a loopback TCP link. */
export const DEFAULT_COST_MODEL: CostModel = { alpha: 30e-6, beta: 1 / 1e9, gamma: 1 / 2e9 };

/**
 * Predicted seconds for one call. `bytes` is the size of the whole vector: the array for
 * broadcast/reduce/all-reduce, the concatenation of all blocks for scatter, gather,
 * all-gather and reduce-scatter, and one rank's input for all-to-all.
 */
export function predictSeconds<C extends Collective>(collective: C, algorithm: AlgorithmOf<C>, p: number, bytes: number, m: CostModel): number {
  if (p <= 1) return 0;
  const { alpha: a, beta: b, gamma: g } = m;
  const n = bytes;
  const L = Math.ceil(Math.log2(p));
  const f = (p - 1) / p;
  let pof2 = 1;
  while (pof2 * 2 <= p) pof2 *= 2;
  const Lf = Math.log2(pof2);
  const folded = pof2 !== p ? 1 : 0;
  const key = `${collective}/${algorithm}`;
  switch (key) {
    case 'broadcast/tree': return L * (a + n * b);
    case 'broadcast/ring': return (L + p - 1) * a + 2 * f * n * b;
    case 'reduce/tree': return L * (a + n * b + n * g);
    case 'reduce/ring': return 2 * (p - 1) * a + 2 * f * n * b + f * n * g;
    case 'scatter/tree':
    case 'gather/tree': return L * a + f * n * b;
    case 'scatter/linear':
    case 'gather/linear': return (p - 1) * a + f * n * b;
    case 'allGather/ring': return (p - 1) * a + f * n * b;
    case 'allGather/recursive-doubling': return Lf * a + f * n * b + folded * (2 * a + n * b);
    case 'allGather/tree': return 2 * L * a + f * n * b + L * n * b;
    case 'reduceScatter/ring': return (p - 1) * a + f * n * (b + g);
    case 'reduceScatter/recursive-halving': return Lf * a + f * n * (b + g) + folded * (2 * a + n * (b + g));
    case 'reduceScatter/tree': return L * (a + n * b + n * g) + L * a + f * n * b;
    case 'allReduce/ring': return 2 * (p - 1) * a + 2 * f * n * b + f * n * g;
    case 'allReduce/tree': return 2 * L * (a + n * b) + L * n * g;
    case 'allReduce/recursive-doubling': return Lf * (a + n * b + n * g) + folded * (2 * a + 2 * n * b + n * g);
    case 'allReduce/rabenseifner': return 2 * Lf * a + 2 * f * n * b + f * n * g + folded * (2 * a + 2 * n * b + n * g);
    case 'allToAll/pairwise': return (p - 1) * (a + (n / p) * b);
    case 'allToAll/linear': return (p - 1) * a + f * n * b;
    case 'barrier/dissemination': return L * a;
    case 'barrier/tree': return 2 * L * a;
  }
  throw new Error(`cost model: no formula for ${key}`);
}

/** The algorithm with the smallest predicted time (first listed wins ties). */
export function chooseAlgorithm<C extends Collective>(collective: C, p: number, bytes: number, m: CostModel): AlgorithmOf<C> {
  const list = ALGORITHMS[collective] as readonly AlgorithmOf<C>[];
  let best = list[0]!;
  let bestTime = Infinity;
  for (const alg of list) {
    const t = predictSeconds(collective, alg, p, bytes, m);
    if (t < bestTime * (1 - 1e-12)) {
      best = alg;
      bestTime = t;
    }
  }
  return best;
}

/**
 * Fit of t = α + nβ to (bytes, seconds) samples of one-way message times, minimising the
 * relative error (weights 1/t²): plain least squares lets the large messages decide everything
 * and leaves α at noise, while latency and bandwidth matter at opposite ends of the sweep.
 */
export function fitAlphaBeta(samples: readonly { bytes: number; seconds: number }[]): { alpha: number; beta: number } {
  const k = samples.length;
  if (k < 2) throw new RangeError(`fitAlphaBeta needs at least 2 samples, got ${k}`);
  let sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const { bytes: x, seconds: y } of samples) {
    const w = 1 / Math.max(y, 1e-12) ** 2;
    sw += w; sx += w * x; sy += w * y; sxx += w * x * x; sxy += w * x * y;
  }
  const den = sw * sxx - sx * sx;
  const beta = den === 0 ? 0 : (sw * sxy - sx * sy) / den;
  const alpha = (sy - beta * sx) / sw;
  return { alpha: Math.max(alpha, 1e-9), beta: Math.max(beta, 1e-15) };
}
