// Least squares and the pseudo-inverse (torch.linalg.lstsq, pinv), composites of the QR, triangular
// solve and SVD primitives, so they differentiate through those primitives' rules.
import { check, fmtShape } from '../../core/errors.js';
import { broadcastShapes, shapesEqual } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { bind } from '../dispatch.js';
import { broadcastTo, cast, div, gt, maximum, mul, resultType, sub, where } from '../elementwise.js';
import { max, sum } from '../reduce.js';
import { squeeze, unsqueeze } from '../shape.js';
import { matmul } from '../linalg.js';
import { checkMatrix, mT } from './matrix-helpers.js';
import { qr, svd } from './decompositions.js';
import { full } from '../creation.js';

export interface LstsqResult {
  /** X minimizing ‖A·X − B‖ (the minimum-norm one when m < n), [..., n, k] (or [..., n] for a vector B). */
  solution: Tensor;
  /** ‖A·X − B‖² per column when m > n ([..., k], or [...] for a vector B), else an empty tensor. */
  residuals: Tensor;
}

/**
 * Least-squares solution of A·X = B (torch.linalg.lstsq) through a Householder QR, for A of full
 * rank: with m >= n, A = Q·R and X = R⁻¹·Qᵀ·B; with m < n the minimum-norm solution from Aᵀ = Q·R,
 * X = Q·R⁻ᵀ·B. (torch's default cpu driver, gelsy, also handles rank-deficient A; for those use
 * pinv(A)·B.) B is a vector or a matrix; batch dims broadcast.
 */
export function lstsq(a: Tensor, b: Tensor): LstsqResult {
  checkMatrix('lstsq', a);
  check(b.rank >= 1 && (b.dtype === 'float32' || b.dtype === 'float64'), 'linalg.lstsq', () =>
    `B must be a float32/float64 vector or matrix, got shape ${fmtShape(b.shape)} ${b.dtype}.`);
  const dtype = resultType(a, b);
  const m = a.shape[a.rank - 2]!, n = a.shape[a.rank - 1]!;
  const vector = b.rank === 1 || (b.rank === a.rank - 1 && shapesEqual(b.shape, a.shape.slice(0, -1)));
  let bm = cast(vector ? unsqueeze(b, -1) : b, dtype);
  check(bm.rank >= 2 && bm.shape[bm.rank - 2] === m, 'linalg.lstsq', () =>
    `A ${fmtShape(a.shape)} and B ${fmtShape(b.shape)} do not fit: B needs ${m} rows (the rows of A).`);
  const batch = broadcastShapes('linalg.lstsq', a.shape.slice(0, -2), bm.shape.slice(0, -2));
  const am = broadcastTo(cast(a, dtype), [...batch, m, n]);
  bm = broadcastTo(bm, [...batch, ...bm.shape.slice(-2)]);
  let x: Tensor;
  if (m >= n) {
    const { Q, R } = qr(am);
    x = bind('triangularSolve', [R, matmul(mT(Q), bm)], { upper: true, left: true, unitriangular: false });
  } else {
    const { Q, R } = qr(mT(am));
    x = matmul(Q, bind('triangularSolve', [mT(R), bm], { upper: false, left: true, unitriangular: false }));
  }
  const residuals = m > n ? sum(mul(sub(matmul(am, x), bm), sub(matmul(am, x), bm)), -2) : full([0], 0, { dtype, backend: a.backend });
  return { solution: vector ? squeeze(x, -1) : x, residuals: vector && m > n ? squeeze(residuals, -1) : residuals };
}

export interface PinvOptions {
  /** Singular values <= max(atol, rtol·σ_max) are treated as zero. Default 0. */
  atol?: number;
  /** Default: ε(dtype)·max(m, n) when atol is not given, else 0 (torch's defaults). */
  rtol?: number;
}

/** The Moore–Penrose pseudo-inverse (torch.linalg.pinv) through the SVD: V·diag(1/σ for σ above the cutoff, else 0)·Uᵀ. */
export function pinv(a: Tensor, opts: PinvOptions = {}): Tensor {
  checkMatrix('pinv', a);
  const m = a.shape[a.rank - 2]!, n = a.shape[a.rank - 1]!;
  const eps = a.dtype === 'float64' ? 2 ** -52 : 2 ** -23;
  const rtol = opts.rtol ?? (opts.atol === undefined ? eps * Math.max(m, n) : 0);
  const { U, S, Vh } = svd(a, { fullMatrices: false });
  if (S.shape[S.rank - 1] === 0) return mT(a);
  const cutoff = maximum(mul(max(S, -1, true), rtol), opts.atol ?? 0);
  const keep = gt(S, cutoff);
  // 1/σ on a safe denominator, so the dropped branch's derivative is not NaN either.
  const sInv = where(keep, div(1, where(keep, S, 1)), 0);
  return matmul(mul(mT(Vh), unsqueeze(sInv, -2)), mT(U));
}
