// Derivative rules of the linalg primitives, written with ops (so they trace, and run with grad mode
// on they give higher-order derivatives). References: Giles 2008 ("An extended collection of matrix
// derivative results"), Murray 2016 (Cholesky), Seeger et al. 2017 / Ionescu et al. 2015
// (eigh, svd), Walter & Lehmann 2018 / Liao et al. 2019 (QR), and PyTorch's FunctionsManual.cpp,
// whose conventions these follow (noted per rule).
//
// Matrix inputs whose kernel reads one triangle (cholesky, eigh) are treated, as in torch, as the
// symmetric matrix they stand for: the vjp returns a symmetric gradient and the jvp takes the tangent
// as given. Check them with a symmetrized input, f(X) = op((X + Xᵀ)/2).
import { TesseraError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import type { PrimitiveAttrs } from '../primitives.js';
import { bind } from '../dispatch.js';
import { add, div, eq, mul, neg, sub, where } from '../elementwise.js';
import { eye, zerosLike } from '../creation.js';
import { prod, sum } from '../reduce.js';
import { cat, stack, tril, triu } from '../combine.js';
import { detach, narrow, unsqueeze } from '../shape.js';
import { broadcastTo } from '../elementwise.js';
import { matmul } from '../linalg.js';
import { diagEmbed, diagonal, divOrZero, identityLike, mT, pack, unpack } from './matrix-helpers.js';
import { svd } from './decompositions.js';

type Maybe = Tensor | undefined;

const triSolve = (a: Tensor, b: Tensor, upper: boolean, left: boolean, unitriangular = false): Tensor =>
  bind('triangularSolve', [a, b], { upper, left, unitriangular });

/** The lower triangle with its diagonal halved: Φ in Murray's Cholesky derivatives. */
function phi(x: Tensor): Tensor {
  const lower = tril(x);
  return sub(lower, mul(diagEmbed(diagonal(lower)), 0.5));
}

const dims = (x: Tensor): { batch: number[]; m: number; n: number } =>
  ({ batch: x.shape.slice(0, -2), m: x.shape[x.rank - 2]!, n: x.shape[x.rank - 1]! });

// --- cholesky: A = L·Lᵀ -------------------------------------------------------------------------

/** Murray 2016 eq. (10), as torch's cholesky_backward: S = L⁻ᵀ·Φ(Lᵀ·ḡ)·L⁻¹, symmetrized. */
export function choleskyVjp(g: Tensor, l: Tensor): Tensor {
  const x = triSolve(mT(l), phi(matmul(mT(l), g)), true, true);
  const s = triSolve(l, x, false, false);
  return mul(add(s, mT(s)), 0.5);
}

/** dL = L·Φ(L⁻¹·dA·L⁻ᵀ). */
export function choleskyJvp(da: Tensor, l: Tensor): Tensor {
  const y = triSolve(l, da, false, true);
  return matmul(l, phi(triSolve(mT(l), y, true, false)));
}

// --- triangular solve: A·X = B or X·A = B ------------------------------------------------------

type TriAttrs = PrimitiveAttrs['triangularSolve'];
/** The part of a cotangent that the kernel's A reads (its triangle; without the diagonal when unitriangular), as torch masks it. */
const triangleOf = (x: Tensor, { upper, unitriangular }: TriAttrs): Tensor =>
  (upper ? triu(x, unitriangular ? 1 : 0) : tril(x, unitriangular ? -1 : 0));

export function triangularSolveVjp(g: Tensor, a: Tensor, x: Tensor, attrs: TriAttrs, needsGrad: readonly boolean[]): Maybe[] {
  const { upper, left, unitriangular } = attrs;
  // left: X = A⁻¹B, ḡB = A⁻ᵀ·ḡ, ḡA = −ḡB·Xᵀ; right: X = B·A⁻¹, ḡB = ḡ·A⁻ᵀ, ḡA = −Xᵀ·ḡB.
  const gb = triSolve(mT(a), g, !upper, left, unitriangular);
  const ga = needsGrad[0] === false ? undefined : triangleOf(neg(left ? matmul(gb, mT(x)) : matmul(mT(x), gb)), attrs);
  return [ga, needsGrad[1] === false ? undefined : gb];
}

export function triangularSolveJvp([da, db]: readonly Maybe[], a: Tensor, x: Tensor, attrs: TriAttrs): Maybe {
  if (da === undefined && db === undefined) return undefined;
  // left: dX = A⁻¹(dB − dA·X); right: dX = (dB − X·dA)·A⁻¹.
  const dax = da === undefined ? undefined : attrs.left ? matmul(triangleOf(da, attrs), x) : matmul(x, triangleOf(da, attrs));
  const rhs = db === undefined ? neg(dax!) : dax === undefined ? db : sub(db, dax);
  return triSolve(a, rhs, attrs.upper, attrs.left, attrs.unitriangular);
}

// --- solve: A·X = B ----------------------------------------------------------------------------

export function solveVjp(g: Tensor, a: Tensor, x: Tensor, attrs: PrimitiveAttrs['solve'], needsGrad: readonly boolean[]): Maybe[] {
  const gb = bind('solve', [mT(a), g], attrs);
  return [needsGrad[0] === false ? undefined : neg(matmul(gb, mT(x))), needsGrad[1] === false ? undefined : gb];
}

export function solveJvp([da, db]: readonly Maybe[], a: Tensor, x: Tensor, attrs: PrimitiveAttrs['solve']): Maybe {
  if (da === undefined && db === undefined) return undefined;
  const dax = da === undefined ? undefined : matmul(da, x);
  return bind('solve', [a, db === undefined ? neg(dax!) : dax === undefined ? db : sub(db, dax)], attrs);
}

// --- det and slogdet ---------------------------------------------------------------------------

/**
 * The cofactor matrix cof(A) = ∂det/∂A (det(A)·A⁻ᵀ when A is invertible), from the SVD A = U·S·Vh:
 * det(U)·det(Vh)·U·diag(Πⱼ≠ᵢ σⱼ)·Vh. Exact for singular A too (the products skip the zero σ),
 * which is what torch computes at singular matrices when building higher-order graphs (its
 * first-order path perturbs zero LU pivots by ε instead).
 */
function cofactor(a: Tensor): Tensor {
  const n = a.shape[a.rank - 1]!;
  const { U, S, Vh } = svd(a, { fullMatrices: false });
  // ±1: piecewise constant, so no derivative flows through it.
  const sign = mul(bind('det', [detach(U)], {}), bind('det', [detach(Vh)], {}));
  const diag = eq(eye(n, n, { dtype: a.dtype, backend: a.backend }), 1);
  const others = prod(where(diag, 1, unsqueeze(S, -2)), -1);
  return mul(unsqueeze(unsqueeze(sign, -1), -1), matmul(mul(U, unsqueeze(others, -2)), Vh));
}

export const detVjp = (g: Tensor, a: Tensor): Tensor => mul(unsqueeze(unsqueeze(g, -1), -1), cofactor(a));
export const detJvp = (da: Tensor, a: Tensor): Tensor => sum(mul(cofactor(a), da), [-2, -1]);

/** A⁻ᵀ (the gradient of log|det A|): a singular A is an error, as its log|det| is −inf. */
const invTransposed = (a: Tensor): Tensor => mT(bind('solve', [a, broadcastTo(identityLike(a), a.shape)], { caller: 'inv' }));

/** Only log|det| has a derivative (the sign is piecewise constant): ḡA = ḡ_log·A⁻ᵀ. */
export function slogdetVjp(g: Tensor, a: Tensor): Tensor {
  const gLog = narrow(g, -1, 1, 1);
  return mul(unsqueeze(gLog, -1), invTransposed(a));
}

export function slogdetJvp(da: Tensor, a: Tensor): Tensor {
  const dLog = sum(mul(invTransposed(a), da), [-2, -1]);
  return stack([zerosLike(dLog), dLog], -1);
}

// --- qr ----------------------------------------------------------------------------------------

function checkQrDifferentiable(a: Tensor, complete: boolean): void {
  const { m, n } = dims(a);
  if (complete && m > n) {
    throw new TesseraError(`linalg.qr: the QR decomposition is not differentiable when mode='complete' and nrows > ncols (A ${m}×${n}): `
      + `the last ${m - n} columns of Q are not unique. Use mode 'reduced' (torch raises the same).`);
  }
}

/** m >= n, A = Q·R reduced: ḡA = [ḡQ + Q·copyltu(M)]·R⁻ᵀ with M = R·ḡRᵀ − ḡQᵀ·Q (Liao et al. 2019; torch's linalg_qr_backward). */
function qrVjpTall(gq: Tensor, gr: Tensor, q: Tensor, r: Tensor): Tensor {
  const m = sub(matmul(r, mT(gr)), matmul(mT(gq), q));
  const copyltu = add(tril(m), mT(tril(m, -1)));
  return triSolve(mT(r), add(gq, matmul(q, copyltu)), false, false);
}

export function qrVjp(g: Tensor, a: Tensor, out: Tensor, { complete }: PrimitiveAttrs['qr']): Tensor {
  checkQrDifferentiable(a, complete);
  const { m, n } = dims(a);
  const [q, r] = unpack(out, 'qr', m, n, complete) as [Tensor, Tensor];
  const [gq, gr] = unpack(g, 'qr', m, n, complete) as [Tensor, Tensor];
  if (m >= n) return qrVjpTall(gq, gr, q, r);
  // m < n: A = [X | Y] with X = Q·U square and Y = Q·V, so V = Qᵀ·Y also depends on Q.
  const gu = narrow(gr, -1, 0, m), gv = narrow(gr, -1, m, n - m);
  const y = narrow(a, -1, m, n - m);
  const gx = qrVjpTall(add(gq, matmul(y, mT(gv))), gu, q, narrow(r, -1, 0, m));
  return cat([gx, matmul(q, gv)], -1);
}

/** m >= n: with D = dA·R⁻¹ and C = Qᵀ·D, Qᵀ·dQ = Ω (skew, from C's strict lower triangle) and dR·R⁻¹ = C − Ω (upper). */
function qrJvpTall(da: Tensor, q: Tensor, r: Tensor): [Tensor, Tensor] {
  const d = triSolve(r, da, true, false);
  const c = matmul(mT(q), d);
  const lower = tril(c, -1);
  const upperPart = sub(c, sub(lower, mT(lower)));
  return [sub(d, matmul(q, upperPart)), matmul(upperPart, r)];
}

export function qrJvp(da: Tensor, a: Tensor, out: Tensor, { complete }: PrimitiveAttrs['qr']): Tensor {
  checkQrDifferentiable(a, complete);
  const { batch, m, n } = dims(a);
  const [q, r] = unpack(out, 'qr', m, n, complete) as [Tensor, Tensor];
  if (m >= n) return pack(qrJvpTall(da, q, r), batch);
  const [dq, du] = qrJvpTall(narrow(da, -1, 0, m), q, narrow(r, -1, 0, m));
  const dv = matmul(mT(q), sub(narrow(da, -1, m, n - m), matmul(dq, narrow(r, -1, m, n - m))));
  return pack([dq, cat([du, dv], -1)], batch);
}

// --- eigh --------------------------------------------------------------------------------------

/** E with Eᵢⱼ = xⱼ − xᵢ. */
const gaps = (x: Tensor): Tensor => sub(unsqueeze(x, -2), unsqueeze(x, -1));

/**
 * ḡA = V·(diag(ḡλ) + skew(Vᵀ·ḡV)/E)·Vᵀ, Eᵢⱼ = λⱼ − λᵢ (torch's linalg_eig_backward, Hermitian case).
 * Repeated eigenvalues: a term whose numerator is exactly 0 (no eigenvector cotangent, as when only
 * eigenvalues are used) counts as 0; otherwise it is ±inf, as in torch.
 */
export function eighVjp(g: Tensor, a: Tensor, out: Tensor): Tensor {
  const { n } = dims(a);
  const [w, v] = unpack(out, 'eigh', n, n, false) as [Tensor, Tensor];
  const [gw, gv] = unpack(g, 'eigh', n, n, false) as [Tensor, Tensor];
  const vtgv = matmul(mT(v), gv);
  const inner = add(divOrZero(mul(sub(vtgv, mT(vtgv)), 0.5), gaps(w)), diagEmbed(gw));
  return matmul(v, matmul(inner, mT(v)));
}

/** Off-diagonal x/E (Eᵢⱼ = gaps), 0 on the diagonal; ±inf for repeated values with a non-zero numerator. */
function offDiagonalOver(x: Tensor, e: Tensor): Tensor {
  const n = x.shape[x.rank - 1]!;
  const diag = eq(eye(n, n, { dtype: x.dtype, backend: x.backend }), 1);
  return where(diag, 0, div(x, where(diag, 1, e)));
}

/** With Ā = Vᵀ·dA·V: dλ = diag(Ā), dV = V·(Ā/E off the diagonal). */
export function eighJvp(da: Tensor, a: Tensor, out: Tensor): Tensor {
  const { batch, n } = dims(a);
  const [w, v] = unpack(out, 'eigh', n, n, false) as [Tensor, Tensor];
  const abar = matmul(mT(v), matmul(da, v));
  return pack([diagonal(abar), matmul(v, offDiagonalOver(abar, gaps(w)))], batch);
}

// --- svd ---------------------------------------------------------------------------------------

/** U, S, Vh and the cotangent parts narrowed to k = min(m, n) singular triplets (the extra full-matrix columns are not unique). */
function svdParts(x: Tensor, m: number, n: number, full: boolean): [Tensor, Tensor, Tensor] {
  const [u, s, vh] = unpack(x, 'svd', m, n, full) as [Tensor, Tensor, Tensor];
  if (!full) return [u, s, vh];
  const k = Math.min(m, n);
  return [narrow(u, -1, 0, k), s, narrow(vh, -2, 0, k)];
}

/**
 * torch's svd_backward (real case), after narrowing full matrices to k columns as torch does:
 * ḡA = U·[(skew(Uᵀ·ḡU)·S + S·skew(Vᵀ·ḡV))/E + diag(ḡS)]·Vh, Eⱼₖ = σₖ² − σⱼ², plus
 * (I − U·Uᵀ)·ḡU·S⁻¹·Vh when m > k, or U·S⁻¹·ḡVᵀ·(I − V·Vᵀ) when n > k. Repeated or zero singular
 * values give finite gradients only for losses that do not depend on the ambiguous vectors
 * (zero numerators count as 0, see divOrZero).
 */
export function svdVjp(g: Tensor, a: Tensor, out: Tensor, { fullMatrices }: PrimitiveAttrs['svd']): Tensor {
  const { m, n } = dims(a);
  const k = Math.min(m, n);
  const [u, s, vh] = svdParts(out, m, n, fullMatrices);
  const [gu, gs, gvh] = svdParts(g, m, n, fullMatrices);
  const v = mT(vh), gv = mT(gvh);
  const skew = (x: Tensor): Tensor => sub(x, mT(x));
  const s2 = mul(s, s);
  const numerator = add(mul(skew(matmul(mT(u), gu)), unsqueeze(s, -2)), mul(unsqueeze(s, -1), skew(matmul(vh, gv))));
  const inner = add(divOrZero(numerator, gaps(s2)), diagEmbed(gs));
  if (m > k) {
    const guSinv = divOrZero(gu, unsqueeze(s, -2));
    const ga = add(matmul(u, inner), sub(guSinv, matmul(u, matmul(mT(u), guSinv))));
    return matmul(ga, vh);
  }
  if (n > k) {
    const gvSinvT = mT(divOrZero(gv, unsqueeze(s, -2)));
    const ga = add(matmul(inner, vh), sub(gvSinvT, matmul(matmul(gvSinvT, v), vh)));
    return matmul(u, ga);
  }
  return matmul(u, matmul(inner, vh));
}

/**
 * With dP = Uᵀ·dA·V: dS = diag(dP), dU = U·F∘(dP·S + S·dPᵀ) + (I − U·Uᵀ)·dA·V·S⁻¹,
 * dV = V·F∘(S·dP + dPᵀ·S) + (I − V·Vᵀ)·dAᵀ·U·S⁻¹, Fᵢⱼ = 1/(σⱼ² − σᵢ²) off the diagonal.
 */
export function svdJvp(da: Tensor, a: Tensor, out: Tensor, { fullMatrices }: PrimitiveAttrs['svd']): Tensor {
  const { batch, m, n } = dims(a);
  if (fullMatrices && m !== n) {
    throw new TesseraError(`linalg.svd: forward-mode derivatives with fullMatrices: true need a square A (got ${m}×${n}; `
      + 'the extra singular vectors are not unique); use fullMatrices: false.');
  }
  const [u, s, vh] = unpack(out, 'svd', m, n, fullMatrices) as [Tensor, Tensor, Tensor];
  const v = mT(vh);
  const dp = matmul(mT(u), matmul(da, v));
  const e = gaps(mul(s, s));
  const sr = unsqueeze(s, -2), sc = unsqueeze(s, -1);
  const complement = (basis: Tensor, x: Tensor): Tensor => sub(x, matmul(basis, matmul(mT(basis), x)));
  const du = add(matmul(u, offDiagonalOver(add(mul(dp, sr), mul(sc, mT(dp))), e)), div(complement(u, matmul(da, v)), sr));
  const dv = add(matmul(v, offDiagonalOver(add(mul(sc, dp), mul(mT(dp), sr)), e)), div(complement(v, matmul(mT(da), u)), sr));
  return pack([du, diagonal(dp), mT(dv)], batch);
}

