// Orthogonal factorizations (torch.linalg.qr, eigh, eigvalsh, svd, svdvals): primitives with cpu
// reference kernels whose several results are packed into one output and sliced back out here as
// views, so gradients of any of them reach the primitive's vjp (ops/matrix/rules.ts).
//
// Conventions (documented in docs/tensors.md):
// - qr: R's diagonal has LAPACK's signs (so Q and R equal torch's for full-rank A);
// - eigh: eigenvalues ascending; each eigenvector's entry of largest magnitude is positive;
// - svd: singular values descending; singular vectors are unique only up to a joint sign flip of
//   (uᵢ, vᵢ) (and any rotation within repeated singular values), so compare them with that in mind.
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { bind } from '../dispatch.js';
import { checkMatrix, mT, unpack } from './matrix-helpers.js';

export interface QrOptions {
  /** 'reduced' (default): Q [m, k], R [k, n] with k = min(m, n); 'complete': Q [m, m], R [m, n]. */
  mode?: 'reduced' | 'complete';
}

export interface QrResult {
  Q: Tensor;
  R: Tensor;
}

/** A = Q·R with orthonormal columns of Q and upper-triangular R (torch.linalg.qr), by Householder reflections. */
export function qr(a: Tensor, opts: QrOptions = {}): QrResult {
  checkMatrix('qr', a);
  const mode = opts.mode ?? 'reduced';
  check(mode === 'reduced' || mode === 'complete', 'linalg.qr', () => `mode must be 'reduced' or 'complete', got '${String(mode)}' (mode 'r' is not supported: take .R).`);
  const m = a.shape[a.rank - 2]!, n = a.shape[a.rank - 1]!;
  const [q, r] = unpack(bind('qr', [a], { complete: mode === 'complete' }), 'qr', m, n, mode === 'complete');
  return { Q: q!, R: r! };
}

export interface EighOptions {
  /** Which triangle of A is read: 'L' (default, as torch) or 'U'. */
  uplo?: 'L' | 'U';
}

export interface EighResult {
  /** Ascending, [..., n]. */
  eigenvalues: Tensor;
  /** Orthonormal, as the columns of [..., n, n]: A·V = V·diag(eigenvalues). */
  eigenvectors: Tensor;
}

function eighPacked(op: string, a: Tensor, opts: EighOptions): Tensor {
  checkMatrix(op, a, { square: true });
  const uplo = opts.uplo ?? 'L';
  check(uplo === 'L' || uplo === 'U', `linalg.${op}`, () => `uplo must be 'L' or 'U', got '${String(uplo)}'.`);
  // The primitive reads the lower triangle; Aᵀ's lower triangle is A's upper one.
  return bind('eigh', [uplo === 'L' ? a : mT(a)], {});
}

/**
 * Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric A (torch.linalg.eigh), read
 * from one triangle (uplo), by cyclic Jacobi rotations. Gradients through the eigenvectors involve
 * 1/(λⱼ − λᵢ) and are infinite for repeated eigenvalues unless the loss is invariant to rotations
 * within the eigenspace; gradients of the eigenvalues alone are always finite.
 */
export function eigh(a: Tensor, opts: EighOptions = {}): EighResult {
  const n = a.shape[a.rank - 1]!;
  const [w, v] = unpack(eighPacked('eigh', a, opts), 'eigh', n, n, false);
  return { eigenvalues: w!, eigenvectors: v! };
}

/** The eigenvalues of a symmetric A, ascending (torch.linalg.eigvalsh). */
export function eigvalsh(a: Tensor, opts: EighOptions = {}): Tensor {
  const n = a.shape[a.rank - 1]!;
  return unpack(eighPacked('eigvalsh', a, opts), 'eigh', n, n, false)[0]!;
}

export interface SvdOptions {
  /** U [m, m] and Vh [n, n] (default true, as torch) or U [m, k] and Vh [k, n], k = min(m, n). */
  fullMatrices?: boolean;
}

export interface SvdResult {
  U: Tensor;
  /** Descending, [..., k]. */
  S: Tensor;
  Vh: Tensor;
}

/**
 * A = U·diag(S)·Vh (torch.linalg.svd) by one-sided Jacobi. With fullMatrices the extra columns of U
 * (rows of Vh) complete an orthonormal basis; they are not unique, and their cotangents are ignored
 * by the gradient (as torch does).
 */
export function svd(a: Tensor, opts: SvdOptions = {}): SvdResult {
  checkMatrix('svd', a);
  const full = opts.fullMatrices ?? true;
  const m = a.shape[a.rank - 2]!, n = a.shape[a.rank - 1]!;
  const [u, s, vh] = unpack(bind('svd', [a], { fullMatrices: full }), 'svd', m, n, full);
  return { U: u!, S: s!, Vh: vh! };
}

/** The singular values of A, descending, [..., min(m, n)] (torch.linalg.svdvals); their gradient is U·diag(g)·Vh. */
export function svdvals(a: Tensor): Tensor {
  checkMatrix('svdvals', a);
  return svd(a, { fullMatrices: false }).S;
}

/** Rejects an empty matrix dimension where an op needs at least one element (kept for messages that name the op). */
export function checkNonEmpty(op: string, a: Tensor): void {
  check(a.shape[a.rank - 1]! > 0 && a.shape[a.rank - 2]! > 0, `linalg.${op}`, () => `needs a non-empty matrix, got shape ${fmtShape(a.shape)}.`);
}
