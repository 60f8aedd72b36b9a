// The matrix-decomposition primitives (torch.linalg's factorizations and solves): attributes, shape
// and dtype inference, cost. Each takes matrices in the last two axes with equal batch dims (the
// user-facing ops in ops/matrix/ broadcast first) and one of float32/float64 (the cpu reference
// kernels compute in double precision and round once when they store).
//
// A primitive has one output, so the factorizations with several results (qr, eigh, svd, slogdet)
// store them flattened one after another along a last axis per batch entry, as attentionGrad packs
// its three gradients; the user-facing op slices them back out as views (ops/matrix/packing.ts), so
// a cotangent of any of the results reaches the primitive's vjp as one packed tensor.
import { check, fmtShape } from '../../core/errors.js';
import { itemsize, type DType } from '../../core/dtype.js';
import { shapesEqual, sizeOf } from '../../core/shape.js';
import type { Cost, PrimitiveDef, ValueInfo } from '../primitives.js';

export interface LinalgPrimitiveAttrs {
  /** Lower Cholesky factor L of a symmetric positive-definite A = L·Lᵀ (reads A's lower triangle). */
  cholesky: Record<string, never>;
  /**
   * X with A·X = B (`left`) or X·A = B, A triangular ([..., n, n], only the `upper` or lower triangle
   * read; with `unitriangular` its diagonal is taken as ones), B [..., n, k] (left) or [..., k, n].
   */
  triangularSolve: { upper: boolean; left: boolean; unitriangular: boolean };
  /**
   * X with A·X = B by LU with partial pivoting, A [..., n, n], B [..., n, k]. A singular A (an exactly
   * zero pivot) is an error; `caller` names the user-facing op in it (solve or inv).
   */
  solve: { caller: 'solve' | 'inv' };
  /** det(A) per batch entry [...] (LU with partial pivoting; 0 for a singular A). */
  det: Record<string, never>;
  /** (sign, log|det|) per batch entry, packed as [..., 2] (0 and −inf for a singular A). */
  slogdet: Record<string, never>;
  /**
   * Householder QR of A [..., m, n], k = min(m, n): Q [m, k] and R [k, n], or with `complete` Q [m, m]
   * and R [m, n], packed [..., |Q| + |R|]. R's diagonal has LAPACK's signs (geqrf's β = −sign(α)‖x‖).
   */
  qr: { complete: boolean };
  /**
   * Eigen-decomposition of the symmetric matrix held in A's lower triangle [..., n, n]: eigenvalues
   * ascending [n] then eigenvectors as the columns of V [n, n], packed [..., n + n·n].
   */
  eigh: Record<string, never>;
  /**
   * Singular value decomposition A = U·diag(S)·Vh of A [..., m, n], k = min(m, n): U [m, k], S [k]
   * descending, Vh [k, n] (with `fullMatrices`, U [m, m] and Vh [n, n]), packed [..., |U| + k + |Vh|].
   */
  svd: { fullMatrices: boolean };
}

/** The sizes of the packed results of a qr/eigh/svd primitive for one batch entry, in storage order. */
export function packedParts(op: 'qr' | 'eigh' | 'svd' | 'slogdet', m: number, n: number, full: boolean): number[][] {
  const k = Math.min(m, n);
  switch (op) {
    case 'qr': return full ? [[m, m], [m, n]] : [[m, k], [k, n]];
    case 'eigh': return [[n], [n, n]];
    case 'svd': return full ? [[m, m], [k], [n, n]] : [[m, k], [k], [k, n]];
    case 'slogdet': return [[], []];
  }
}

const partsSize = (parts: number[][]): number => parts.reduce((s, p) => s + sizeOf(p), 0);
const bytes = (v: ValueInfo): number => sizeOf(v.shape) * itemsize(v.dtype);
const LINALG_DTYPES: readonly DType[] = ['float32', 'float64'];

/** A batch of matrices [..., rows, cols] of float32/float64 (the user-facing op checks and casts first). */
function matrixInput(op: string, x: ValueInfo, square: boolean): { batch: number[]; m: number; n: number } {
  const r = x.shape.length;
  check(r >= 2, op, () => `the primitive takes matrices [..., m, n], got shape ${fmtShape(x.shape)}.`);
  check(LINALG_DTYPES.includes(x.dtype), op, () => `the primitive takes float32 or float64, got ${x.dtype}; the user-facing op checks first.`);
  const m = x.shape[r - 2]!, n = x.shape[r - 1]!;
  check(!square || m === n, op, () => `needs square matrices, got shape ${fmtShape(x.shape)}.`);
  return { batch: x.shape.slice(0, r - 2), m, n };
}

/** A and B of a solve: A [..., n, n] and B [..., n, k] (or [..., k, n] for a right solve), one batch, one dtype. */
function solveInputs(op: string, a: ValueInfo, b: ValueInfo, left: boolean): ValueInfo {
  const { batch, n } = matrixInput(op, a, true);
  const r = b.shape.length;
  check(r === a.shape.length && shapesEqual(b.shape.slice(0, r - 2), batch) && b.dtype === a.dtype, op, () =>
    `A ${fmtShape(a.shape)} ${a.dtype} and B ${fmtShape(b.shape)} ${b.dtype} need one batch and one dtype; the user-facing op broadcasts first.`);
  check(b.shape[left ? r - 2 : r - 1] === n, op, () =>
    `B ${fmtShape(b.shape)} does not fit A ${fmtShape(a.shape)}: ${left ? 'A·X = B needs B [..., n, k]' : 'X·A = B needs B [..., k, n]'} with n = ${n}.`);
  return { shape: [...b.shape], dtype: b.dtype };
}

const matrices = (batch: readonly number[]): number => sizeOf(batch);

export const linalgDefs: { [P in keyof LinalgPrimitiveAttrs]: PrimitiveDef<P> } = {
  cholesky: {
    arity: 1,
    infer: ([a]) => { matrixInput('cholesky', a!, true); return { shape: [...a!.shape], dtype: a!.dtype }; },
    cost: ([a], _x, out): Cost => {
      const { batch, n } = matrixInput('cholesky', a!, true);
      return { flops: matrices(batch) * n ** 3 / 3, bytesRead: bytes(a!), bytesWritten: bytes(out) };
    },
  },
  triangularSolve: {
    arity: 2,
    infer: ([a, b], { left }) => solveInputs('triangularSolve', a!, b!, left),
    cost: ([a, b], _x, out) => {
      const n = a!.shape[a!.shape.length - 1]!;
      return { flops: sizeOf(b!.shape) * n, bytesRead: bytes(a!) + bytes(b!), bytesWritten: bytes(out) };
    },
  },
  solve: {
    arity: 2,
    infer: ([a, b]) => solveInputs('solve', a!, b!, true),
    cost: ([a, b], _x, out) => {
      const { batch, n } = matrixInput('solve', a!, true);
      return { flops: matrices(batch) * (2 / 3) * n ** 3 + 2 * sizeOf(b!.shape) * n, bytesRead: bytes(a!) + bytes(b!), bytesWritten: bytes(out) };
    },
  },
  det: {
    arity: 1,
    infer: ([a]) => ({ shape: matrixInput('det', a!, true).batch, dtype: a!.dtype }),
    cost: ([a], _x, out) => {
      const { batch, n } = matrixInput('det', a!, true);
      return { flops: matrices(batch) * (2 / 3) * n ** 3, bytesRead: bytes(a!), bytesWritten: bytes(out) };
    },
  },
  slogdet: {
    arity: 1,
    infer: ([a]) => ({ shape: [...matrixInput('slogdet', a!, true).batch, 2], dtype: a!.dtype }),
    cost: ([a], _x, out) => {
      const { batch, n } = matrixInput('slogdet', a!, true);
      return { flops: matrices(batch) * (2 / 3) * n ** 3, bytesRead: bytes(a!), bytesWritten: bytes(out) };
    },
  },
  qr: {
    arity: 1,
    infer: ([a], { complete }) => {
      const { batch, m, n } = matrixInput('qr', a!, false);
      return { shape: [...batch, partsSize(packedParts('qr', m, n, complete))], dtype: a!.dtype };
    },
    cost: ([a], _x, out) => {
      const { batch, m, n } = matrixInput('qr', a!, false);
      const k = Math.min(m, n);
      // Householder: 2mn² − 2n³/3 for R (m >= n), about as much again to form Q.
      return { flops: matrices(batch) * 2 * (2 * m * n * k - (2 / 3) * k ** 3), bytesRead: bytes(a!), bytesWritten: bytes(out) };
    },
  },
  eigh: {
    arity: 1,
    infer: ([a]) => {
      const { batch, n } = matrixInput('eigh', a!, true);
      return { shape: [...batch, n + n * n], dtype: a!.dtype };
    },
    // Cyclic Jacobi: about 6–10 sweeps of n²/2 rotations, each ~8n flops on A and 4n on V.
    cost: ([a], _x, out) => {
      const { batch, n } = matrixInput('eigh', a!, true);
      return { flops: matrices(batch) * 8 * 6 * n ** 3, bytesRead: bytes(a!), bytesWritten: bytes(out) };
    },
  },
  svd: {
    arity: 1,
    infer: ([a], { fullMatrices }) => {
      const { batch, m, n } = matrixInput('svd', a!, false);
      return { shape: [...batch, partsSize(packedParts('svd', m, n, fullMatrices))], dtype: a!.dtype };
    },
    // One-sided Jacobi: about 8 sweeps of k²/2 rotations over columns of length max(m, n), ~10 flops per element.
    cost: ([a], _x, out) => {
      const { batch, m, n } = matrixInput('svd', a!, false);
      const k = Math.min(m, n), l = Math.max(m, n);
      return { flops: matrices(batch) * 8 * 5 * k * k * (l + k), bytesRead: bytes(a!), bytesWritten: bytes(out) };
    },
  },
};
