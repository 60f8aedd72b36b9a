// Linear systems and determinants (torch.linalg.solve, inv, solve_triangular, cholesky, det,
// slogdet): batched over leading dims, float32/float64. solve, solveTriangular, cholesky, det and
// slogdet are primitives with cpu reference kernels (ops/matrix/primitive-defs.ts); inv is solve
// against the identity, exactly (it is how LAPACK's getri-free inverses are formed anyway).
import { check, fmtShape } from '../../core/errors.js';
import { broadcastShapes, shapesEqual } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { bind } from '../dispatch.js';
import { broadcastTo, cast, resultType } from '../elementwise.js';
import { narrow, squeeze, unsqueeze } from '../shape.js';
import { checkMatrix, identityLike, mT } from './matrix-helpers.js';

/**
 * Promotes A and B to one dtype and broadcasts their batch dims (torch's rules): B is a batch of
 * vectors when it is 1-D or has A's shape without the last axis, else a batch of matrices.
 */
function alignSystem(op: string, a: Tensor, b: Tensor, left: boolean, allowVector = true): { a: Tensor; b: Tensor; vector: boolean } {
  checkMatrix(op, a, { square: true });
  check(b.rank >= 1, `linalg.${op}`, () => `B must be a vector or a matrix (or a batch of them), got shape ${fmtShape(b.shape)}.`);
  check(b.dtype === 'float32' || b.dtype === 'float64', `linalg.${op}`, () =>
    `B must be float32 or float64, got ${b.dtype} (shape ${fmtShape(b.shape)}); cast it first, e.g. t.cast(B, 'float64').`);
  // float32 with float64 computes in float64 (torch asks for one dtype; promoting is the friendlier reading).
  const dtype = resultType(a, b);
  const vector = allowVector && (b.rank === 1 || (b.rank === a.rank - 1 && shapesEqual(b.shape, a.shape.slice(0, -1))));
  let bm = cast(vector ? unsqueeze(b, left ? -1 : -2) : b, dtype);
  checkMatrix(op, bm, { name: 'B' });
  const n = a.shape[a.rank - 1]!;
  check(bm.shape[bm.rank - (left ? 2 : 1)] === n, `linalg.${op}`, () =>
    `A ${fmtShape(a.shape)} and B ${fmtShape(b.shape)} do not fit: ${left ? 'A·X = B' : 'X·A = B'} needs B with ${n} ${left ? 'rows' : 'columns'}`
    + ` (B is read as ${vector ? 'a batch of vectors' : 'a batch of matrices'}).`);
  const batch = broadcastShapes(`linalg.${op}`, a.shape.slice(0, -2), bm.shape.slice(0, -2));
  const am = broadcastTo(cast(a, dtype), [...batch, n, n]);
  bm = broadcastTo(bm, [...batch, ...bm.shape.slice(-2)]);
  return { a: am, b: bm, vector };
}

export interface SolveOptions {
  /** Solve A·X = B (default true) or X·A = B. */
  left?: boolean;
}

/**
 * X with A·X = B (torch.linalg.solve), by LU with partial pivoting. A [..., n, n]; B [..., n] (a
 * batch of vectors) or [..., n, k]; batch dims broadcast. A singular A (an exactly zero pivot) is an
 * error naming the batch element; use lstsq or pinv for such systems.
 */
export function solve(a: Tensor, b: Tensor, opts: SolveOptions = {}): Tensor {
  const left = opts.left ?? true;
  const s = alignSystem('solve', a, b, left);
  // X·A = B  ⇔  Aᵀ·Xᵀ = Bᵀ.
  const x = left ? bind('solve', [s.a, s.b], { caller: 'solve' }) : mT(bind('solve', [mT(s.a), mT(s.b)], { caller: 'solve' }));
  return s.vector ? squeeze(x, left ? -1 : -2) : x;
}

/** A⁻¹ (torch.linalg.inv): solve(A, I). A singular A is an error. */
export function inv(a: Tensor): Tensor {
  checkMatrix('inv', a, { square: true });
  const id = broadcastTo(identityLike(a), a.shape);
  return bind('solve', [a, id], { caller: 'inv' });
}

export interface SolveTriangularOptions {
  /** Whether A is upper (true) or lower (false) triangular; only that triangle is read. Required, as in torch. */
  upper: boolean;
  /** Solve A·X = B (default true) or X·A = B. */
  left?: boolean;
  /** Take A's diagonal as ones (it is not read). */
  unitriangular?: boolean;
}

/**
 * X with A·X = B (or X·A = B) for a triangular A (torch.linalg.solve_triangular). B [..., n, k] (or
 * [..., k, n] with left: false); batch dims broadcast. A zero on the diagonal gives inf/NaN, as in
 * torch (no singularity check).
 */
export function solveTriangular(a: Tensor, b: Tensor, opts: SolveTriangularOptions): Tensor {
  check(opts !== undefined && typeof opts.upper === 'boolean', 'linalg.solveTriangular', () =>
    'needs { upper: true | false } (which triangle of A holds the matrix), as torch.linalg.solve_triangular does.');
  const left = opts.left ?? true;
  check(b.rank >= 2, 'linalg.solveTriangular', () => `B must be a matrix or a batch of matrices, got shape ${fmtShape(b.shape)} (use B.unsqueeze(-1) for a vector).`);
  const s = alignSystem('solveTriangular', a, b, left, false);
  return bind('triangularSolve', [s.a, s.b], { upper: opts.upper, left, unitriangular: opts.unitriangular ?? false });
}

export interface CholeskyOptions {
  /** Return the upper factor U with A = Uᵀ·U (read from A's upper triangle) instead of L. */
  upper?: boolean;
}

/**
 * The Cholesky factor of a symmetric positive-definite A (torch.linalg.cholesky): lower L with
 * A = L·Lᵀ, read from A's lower triangle (or with upper: true, U = Lᵀ from the upper triangle). A
 * matrix that is not positive-definite is an error naming the batch element and the order of the
 * first leading minor that is not positive-definite.
 */
export function cholesky(a: Tensor, opts: CholeskyOptions = {}): Tensor {
  checkMatrix('cholesky', a, { square: true });
  if (opts.upper === true) return mT(bind('cholesky', [mT(a)], {}));
  return bind('cholesky', [a], {});
}

/** det(A) per matrix (torch.linalg.det), [...] for A [..., n, n]; 0 for a singular A, whose gradient (the cofactor matrix) is still exact. */
export function det(a: Tensor): Tensor {
  checkMatrix('det', a, { square: true });
  return bind('det', [a], {});
}

/** sign and log|det| of each matrix (torch.linalg.slogdet); 0 and −inf for a singular A. */
export interface SlogdetResult {
  sign: Tensor;
  logabsdet: Tensor;
}

/** (sign, log|det A|) per matrix (torch.linalg.slogdet): log|det| without the overflow of det itself. */
export function slogdet(a: Tensor): SlogdetResult {
  checkMatrix('slogdet', a, { square: true });
  const packed = bind('slogdet', [a], {});
  return { sign: squeeze(narrow(packed, -1, 0, 1), -1), logabsdet: squeeze(narrow(packed, -1, 1, 1), -1) };
}
