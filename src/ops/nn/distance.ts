// Similarities and distances with PyTorch's values and gradients: cosineSimilarity,
// pairwiseDistance, cdist (with its matmul expansion for large Euclidean problems) and normalize.
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import { broadcastShapes, normalizeAxis } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { ones } from '../creation.js';
import { abs, add, broadcastTo, cast, clamp, div, eq, mul, ne, pow, resultType, rsqrt, sqrt, sub, where } from '../elementwise.js';
import { cat } from '../combine.js';
import { matmul } from '../linalg.js';
import { max, norm, sum } from '../reduce.js';
import { detach, squeeze, unsqueeze } from '../shape.js';
import { clampMinKeepingGradient } from './straight-through.js';

export interface CosineSimilarityOptions {
  /** The axis the vectors lie along (default 1). */
  axis?: number;
  /** Lower bound on each vector's norm (default 1e-8). */
  eps?: number;
}

/**
 * Σ x1·x2 / (‖x1‖·‖x2‖) along `axis`, broadcasting x1 and x2. As in PyTorch, each squared norm is
 * raised to at least eps² without blocking its gradient (PyTorch clamps it under no_grad).
 */
export function cosineSimilarity(x1: Tensor, x2: Tensor, opts: CosineSimilarityOptions = {}): Tensor {
  const dtype = resultType(x1, x2);
  check(isFloating(dtype), 'cosineSimilarity', () => `needs floating inputs, got ${x1.dtype} and ${x2.dtype}; cast them first, e.g. x.float().`);
  const shape = broadcastShapes('cosineSimilarity', x1.shape, x2.shape);
  const a = broadcastTo(cast(x1, dtype), shape);
  const b = broadcastTo(cast(x2, dtype), shape);
  const axis = normalizeAxis(opts.axis ?? 1, shape.length, 'cosineSimilarity');
  const eps = opts.eps ?? 1e-8;
  const aa = clampMinKeepingGradient(sum(mul(a, a), axis, true), eps * eps);
  const bb = clampMinKeepingGradient(sum(mul(b, b), axis, true), eps * eps);
  return squeeze(mul(sum(mul(a, b), axis, true), rsqrt(mul(aa, bb))), axis);
}

export interface PairwiseDistanceOptions {
  /** The norm's order (default 2). */
  p?: number;
  /** Added to the difference so that equal rows have a small nonzero distance (default 1e-6). */
  eps?: number;
  keepdim?: boolean;
}

/** ‖x1 − x2 + eps‖_p along the last axis, broadcasting (torch.nn.functional.pairwise_distance). */
export function pairwiseDistance(x1: Tensor, x2: Tensor, opts: PairwiseDistanceOptions = {}): Tensor {
  const rank = Math.max(x1.rank, x2.rank);
  const d = add(sub(x1, x2), opts.eps ?? 1e-6);
  return vectorNorm(d, opts.p ?? 2, rank === 0 ? undefined : rank - 1, opts.keepdim ?? false);
}

/** L_p norm along one axis; p = 0 counts the nonzero entries, as torch.norm does. */
function vectorNorm(x: Tensor, p: number, axis: number | undefined, keepdim: boolean): Tensor {
  // The count's gradient is 0, but like PyTorch's it stays connected to x (the zero entries
  // contribute x·0), so a loss built on it can still call backward().
  if (p === 0) return sum(where(ne(x, 0), 1, mul(x, 0)), axis, keepdim);
  return norm(x, p, axis, keepdim);
}

export type CdistComputeMode = 'use_mm_for_euclid_dist_if_necessary' | 'use_mm_for_euclid_dist' | 'donot_use_mm_for_euclid_dist';

export interface CdistOptions {
  /** The norm's order, >= 0 (default 2). */
  p?: number;
  /**
   * PyTorch's choice for p = 2: the default expands ‖a − b‖² = ‖a‖² − 2a·b + ‖b‖² as a matmul when
   * either side has more than 25 rows (faster, less exact for nearby points), else the direct form.
   */
  computeMode?: CdistComputeMode;
}

/**
 * Distances between every row of x1 [..., P, M] and every row of x2 [..., R, M]: [..., P, R], with
 * the batch axes broadcast (torch.cdist). The gradient at a zero distance is 0, as in PyTorch; for
 * p = ∞ every coordinate tied for the maximum gets the full gradient (PyTorch's cdist backward).
 */
export function cdist(x1: Tensor, x2: Tensor, opts: CdistOptions = {}): Tensor {
  const p = opts.p ?? 2;
  const mode = opts.computeMode ?? 'use_mm_for_euclid_dist_if_necessary';
  check(['use_mm_for_euclid_dist_if_necessary', 'use_mm_for_euclid_dist', 'donot_use_mm_for_euclid_dist'].includes(mode), 'cdist', () =>
    `computeMode must be 'use_mm_for_euclid_dist_if_necessary', 'use_mm_for_euclid_dist' or 'donot_use_mm_for_euclid_dist', got ${JSON.stringify(mode)}.`);
  check(isFloating(x1.dtype) && isFloating(x2.dtype), 'cdist', () => `needs floating inputs, got ${x1.dtype} and ${x2.dtype}; cast them first, e.g. x.float().`);
  check(x1.rank >= 2 && x2.rank >= 2, 'cdist', () => `needs inputs of rank >= 2 ([..., rows, features]), got ${fmtShape(x1.shape)} and ${fmtShape(x2.shape)}.`);
  const m = x1.shape[x1.rank - 1]!;
  check(x2.shape[x2.rank - 1] === m, 'cdist', () => `x1 ${fmtShape(x1.shape)} and x2 ${fmtShape(x2.shape)} must have the same number of features (last axis).`);
  check(p >= 0, 'cdist', () => `p must be >= 0, got ${p}.`);
  const dtype = resultType(x1, x2);
  const batch = broadcastShapes('cdist', x1.shape.slice(0, -2), x2.shape.slice(0, -2));
  const [r1, r2] = [x1.shape[x1.rank - 2]!, x2.shape[x2.rank - 2]!];
  const a = broadcastTo(cast(x1, dtype), [...batch, r1, m]);
  const b = broadcastTo(cast(x2, dtype), [...batch, r2, m]);
  if (p === 2 && (mode === 'use_mm_for_euclid_dist' || (mode === 'use_mm_for_euclid_dist_if_necessary' && (r1 > 25 || r2 > 25)))) {
    return euclideanByMatmul(a, b);
  }
  const diff = sub(unsqueeze(a, -2), unsqueeze(b, -3)); // [..., P, R, M]
  if (p === Infinity) {
    // max|d| in value; each coordinate at the maximum passes the whole gradient (|d| − detach|d| is 0).
    const ad = abs(diff);
    const top = detach(max(ad, -1, true));
    return add(squeeze(top, -1), sum(where(eq(ad, top), sub(ad, detach(ad)), 0), -1));
  }
  if (p === 0) return vectorNorm(diff, 0, -1, false);
  if (p === 1) return sum(abs(diff), -1);
  // Σ|d|^p computed with |d| = 1 where d = 0, so pow's derivative never meets 0^(p−1) = inf (PyTorch
  // gives those coordinates a zero gradient).
  const zero = eq(diff, 0);
  const ad = abs(where(zero, 1, diff));
  const s = sum(where(zero, 0, p === 2 ? mul(ad, ad) : pow(ad, p)), -1);
  return rootWithZeroGradAtZero(s, p);
}

/** s^(1/p) with a zero gradient where s = 0 (a zero distance), as PyTorch's cdist backward. */
function rootWithZeroGradAtZero(s: Tensor, p: number): Tensor {
  const zero = eq(s, 0);
  const safe = where(zero, 1, s);
  return where(zero, 0, p === 2 ? sqrt(safe) : pow(safe, 1 / p));
}

/** PyTorch's _euclidean_dist: [−2a, ‖a‖², 1] · [b, 1, ‖b‖²]ᵀ, clamped at 0, square-rooted. */
function euclideanByMatmul(a: Tensor, b: Tensor): Tensor {
  const an = sum(mul(a, a), -1, true);
  const bn = sum(mul(b, b), -1, true);
  const aPad = ones(an.shape, { dtype: a.dtype, backend: a.backend });
  const bPad = ones(bn.shape, { dtype: b.dtype, backend: b.backend });
  const left = cat([mul(a, -2), an, aPad], -1);
  const right = cat([b, bPad, bn], -1);
  return rootWithZeroGradAtZero(clamp(matmul(left, right.mT), 0), 2);
}

export interface NormalizeOptions {
  /** The norm's order (default 2). */
  p?: number;
  /** Default 1. */
  axis?: number;
  /** Lower bound on the norm (default 1e-12). */
  eps?: number;
}

/** x / max(‖x‖_p, eps) along `axis` (torch.nn.functional.normalize). */
export function normalize(x: Tensor, opts: NormalizeOptions = {}): Tensor {
  check(isFloating(x.dtype), 'normalize', () => `needs a floating input, got ${x.dtype}; cast it first, e.g. x.float().`);
  const axis = normalizeAxis(opts.axis ?? 1, x.rank, 'normalize');
  return div(x, clamp(vectorNorm(x, opts.p ?? 2, axis, true), opts.eps ?? 1e-12));
}
