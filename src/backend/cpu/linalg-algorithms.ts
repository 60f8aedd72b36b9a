// Dense matrix factorizations on one matrix held row-major in a Float64Array (element (i, j) of an
// m×n matrix at i·n + j). The cpu kernels of the linalg primitives (linalg-kernels.ts) run these per
// batch entry, in double precision whatever the dtype, and round once when they store.
//
// The algorithms are the textbook ones, picked for accuracy and simplicity over speed (the
// matrices this reference path sees are small; a fast backend would call LAPACK-style blocked code):
// - Cholesky: the outer-product (Cholesky–Banachiewicz) loop; the first non-positive pivot names
//   the leading minor that is not positive-definite, as LAPACK's potrf reports it.
// - LU with partial pivoting (getrf's pivot choice: the first row of largest magnitude).
// - QR: Householder reflections with LAPACK's sign convention (dlarfg: β = −sign(α)·‖x‖, and no
//   reflection when the part below the diagonal is already zero), so R's diagonal signs (and with
//   a full-rank A the whole of Q and R) match LAPACK's geqrf/orgqr, hence torch's.
// - eigh: cyclic Jacobi. Each rotation is exactly orthogonal, so V is orthogonal to working
//   precision and the eigenvalues are accurate to O(ε‖A‖) (small ones often to high relative
//   accuracy, Demmel & Veselić 1992); it converges quadratically, in ~6–10 sweeps. A tridiagonal
//   QR (LAPACK's syevd path) is O(n³) with a smaller constant, which matters only for large n.
// - SVD: one-sided Jacobi (Hestenes 1958; Demmel & Veselić 1992): rotates column pairs of A until
//   all are orthogonal; the singular values are the column norms. It never forms AᵀA (whose
//   eigenvalues would square the condition number and lose the small singular values), and its
//   singular values have high relative accuracy.
const EPS = Number.EPSILON;
/** Jacobi sweeps before giving up (each converges quadratically: in practice < 15 are used). */
const MAX_SWEEPS = 80;

/** Lower factor L of A = L·Lᵀ from A's lower triangle, or the order (1-based) of the first leading minor that is not positive-definite. */
export function choleskyLower(a: Float64Array, n: number): { l: Float64Array } | { failedOrder: number } {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let k = 0; k < j; k++) d -= l[j * n + k]! ** 2;
    // NaN fails too (!(d > 0)), as LAPACK's potrf reports a NaN pivot.
    if (!(d > 0)) return { failedOrder: j + 1 };
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = s / ljj;
    }
  }
  return { l };
}

export interface LuFactors {
  /** L (unit lower, below the diagonal) and U (on and above) in one n×n array. */
  lu: Float64Array;
  /** Row i of P·A is row perm[i] of A. */
  perm: Int32Array;
  /** The permutation's sign (±1). */
  sign: number;
  /** The first column (0-based) whose pivot was exactly zero, or −1. */
  zeroPivot: number;
}

/** P·A = L·U with partial pivoting; a column without a non-zero pivot is left as is (U singular). */
export function luFactor(a: Float64Array, n: number): LuFactors {
  const lu = Float64Array.from(a);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  let sign = 1, zeroPivot = -1;
  for (let k = 0; k < n; k++) {
    let p = k, best = Math.abs(lu[k * n + k]!);
    for (let i = k + 1; i < n; i++) {
      const v = Math.abs(lu[i * n + k]!);
      if (v > best) { best = v; p = i; }
    }
    if (p !== k) {
      for (let j = 0; j < n; j++) { const t = lu[k * n + j]!; lu[k * n + j] = lu[p * n + j]!; lu[p * n + j] = t; }
      const t = perm[k]!; perm[k] = perm[p]!; perm[p] = t;
      sign = -sign;
    }
    const pivot = lu[k * n + k]!;
    if (pivot === 0) {
      if (zeroPivot < 0) zeroPivot = k;
      continue;
    }
    for (let i = k + 1; i < n; i++) {
      const f = lu[i * n + k]! / pivot;
      lu[i * n + k] = f;
      if (f === 0) continue;
      for (let j = k + 1; j < n; j++) lu[i * n + j] = lu[i * n + j]! - f * lu[k * n + j]!;
    }
  }
  return { lu, perm, sign, zeroPivot };
}

/** X with A·X = B from A's LU factors; B is n×k row-major. */
export function luSolve({ lu, perm }: LuFactors, b: Float64Array, n: number, k: number): Float64Array {
  const x = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) x[i * k + c] = b[perm[i]! * k + c]!;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const f = lu[i * n + j]!;
      if (f !== 0) for (let c = 0; c < k; c++) x[i * k + c] = x[i * k + c]! - f * x[j * k + c]!;
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let j = i + 1; j < n; j++) {
      const f = lu[i * n + j]!;
      if (f !== 0) for (let c = 0; c < k; c++) x[i * k + c] = x[i * k + c]! - f * x[j * k + c]!;
    }
    const d = lu[i * n + i]!;
    for (let c = 0; c < k; c++) x[i * k + c] = x[i * k + c]! / d;
  }
  return x;
}

/**
 * X with A·X = B for a triangular A (n×n; only the `upper` or lower triangle read, a unit diagonal
 * assumed with `unit`), B n×k. A zero diagonal gives inf/NaN, as LAPACK's trtrs and torch do.
 */
export function triangularSolveLeft(a: Float64Array, b: Float64Array, n: number, k: number, upper: boolean, unit: boolean): Float64Array {
  const x = Float64Array.from(b);
  for (let step = 0; step < n; step++) {
    const i = upper ? n - 1 - step : step;
    const from = upper ? i + 1 : 0, to = upper ? n : i;
    for (let j = from; j < to; j++) {
      const f = a[i * n + j]!;
      if (f !== 0) for (let c = 0; c < k; c++) x[i * k + c] = x[i * k + c]! - f * x[j * k + c]!;
    }
    if (!unit) {
      const d = a[i * n + i]!;
      for (let c = 0; c < k; c++) x[i * k + c] = x[i * k + c]! / d;
    }
  }
  return x;
}

/** Transpose of an m×n row-major matrix. */
export function transposed(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j]!;
  return t;
}

/**
 * Householder QR of an m×n A, k = min(m, n): Q m×kq (kq = m when `complete`, else k) and the first
 * kr rows of R (kr likewise), with LAPACK's signs.
 */
export function householderQr(a: Float64Array, m: number, n: number, complete: boolean): { q: Float64Array; r: Float64Array; kq: number } {
  const k = Math.min(m, n);
  const r = Float64Array.from(a);
  const reflectors: (Float64Array | undefined)[] = [];
  for (let j = 0; j < k; j++) {
    let below = 0;
    for (let i = j + 1; i < m; i++) below += r[i * n + j]! ** 2;
    // dlarfg: nothing below the diagonal means H = I (τ = 0), whatever the sign of the diagonal.
    if (below === 0) { reflectors.push(undefined); continue; }
    const alpha = r[j * n + j]!;
    const norm = Math.hypot(alpha, Math.sqrt(below));
    const beta = alpha >= 0 ? -norm : norm;
    const v = new Float64Array(m - j);
    v[0] = alpha - beta;
    for (let i = j + 1; i < m; i++) v[i - j] = r[i * n + j]!;
    const vv = v[0]! ** 2 + below;
    // H = I − 2·v·vᵀ/(vᵀv) applied to the trailing columns; column j becomes β·e₁ exactly.
    for (let c = j + 1; c < n; c++) {
      let s = 0;
      for (let i = j; i < m; i++) s += v[i - j]! * r[i * n + c]!;
      const f = (2 * s) / vv;
      for (let i = j; i < m; i++) r[i * n + c] = r[i * n + c]! - f * v[i - j]!;
    }
    r[j * n + j] = beta;
    for (let i = j + 1; i < m; i++) r[i * n + j] = 0;
    for (let i = 0; i < v.length; i++) v[i] = v[i]! / Math.sqrt(vv);
    reflectors.push(v);
  }
  const kq = complete ? m : k;
  // Q = H₀·H₁·…·H_{k−1} applied to the first kq columns of I, innermost reflector first.
  const q = new Float64Array(m * kq);
  for (let i = 0; i < Math.min(m, kq); i++) q[i * kq + i] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const v = reflectors[j];
    if (v === undefined) continue;
    for (let c = 0; c < kq; c++) {
      let s = 0;
      for (let i = j; i < m; i++) s += v[i - j]! * q[i * kq + c]!;
      if (s === 0) continue;
      for (let i = j; i < m; i++) q[i * kq + c] = q[i * kq + c]! - 2 * s * v[i - j]!;
    }
  }
  const kr = complete ? m : k;
  const rOut = new Float64Array(kr * n);
  for (let i = 0; i < Math.min(kr, m); i++) for (let c = i; c < n; c++) rOut[i * n + c] = r[i * n + c]!;
  return { q, r: rOut, kq };
}

/** Flips the sign of each column of V (n×n) whose entry of largest magnitude is negative (the first such entry on ties). */
function normalizeColumnSigns(v: Float64Array, rows: number, cols: number): void {
  for (let c = 0; c < cols; c++) {
    let best = 0;
    for (let i = 0; i < rows; i++) if (Math.abs(v[i * cols + c]!) > Math.abs(best)) best = v[i * cols + c]!;
    if (best < 0) for (let i = 0; i < rows; i++) v[i * cols + c] = -v[i * cols + c]!;
  }
}

/**
 * Eigenvalues (ascending) and orthonormal eigenvectors (the columns of V, n×n) of the symmetric
 * matrix whose lower triangle is A's, by cyclic Jacobi rotations. Each eigenvector is scaled so that
 * its entry of largest magnitude is positive (LAPACK fixes no sign; this makes the result
 * deterministic and continuous in A away from ties).
 */
export function jacobiEigh(a: Float64Array, n: number): { w: Float64Array; v: Float64Array } {
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) { s[i * n + j] = a[i * n + j]!; s[j * n + i] = a[i * n + j]!; }
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += s[i]! ** 2;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += s[p * n + q]! ** 2;
    // Off-diagonal mass below ε²·‖A‖²/100: the eigenvalues are exact to ε‖A‖ and further rotations change nothing.
    if (!(off > total * EPS * EPS * 1e-2)) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = s[p * n + q]!;
        if (apq === 0) continue;
        const app = s[p * n + p]!, aqq = s[q * n + q]!;
        // Golub & Van Loan, Algorithm 8.5.1 (sym.schur2): the smaller rotation angle.
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(1 + theta * theta));
        const c = 1 / Math.sqrt(1 + t * t), sn = t * c;
        for (let k = 0; k < n; k++) {
          const akp = s[k * n + p]!, akq = s[k * n + q]!;
          s[k * n + p] = c * akp - sn * akq;
          s[k * n + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = s[p * n + k]!, aqk = s[q * n + k]!;
          s[p * n + k] = c * apk - sn * aqk;
          s[q * n + k] = sn * apk + c * aqk;
        }
        s[p * n + q] = 0;
        s[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!, vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - sn * vkq;
          v[k * n + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => s[i * n + i]! - s[j * n + j]! || i - j);
  const w = Float64Array.from(order, (i) => s[i * n + i]!);
  const vs = new Float64Array(n * n);
  for (let c = 0; c < n; c++) for (let r = 0; r < n; r++) vs[r * n + c] = v[r * n + order[c]!]!;
  normalizeColumnSigns(vs, n, n);
  return { w, v: vs };
}

/**
 * Fills the missing columns (undefined) of an m-row set of orthonormal columns with unit vectors
 * orthogonal to all the others: for each, the standard basis vector with the largest component
 * outside the current span, orthogonalized twice (Gram–Schmidt "twice is enough").
 */
function completeOrthonormal(cols: (Float64Array | undefined)[], m: number): Float64Array[] {
  const done = cols.filter((c): c is Float64Array => c !== undefined);
  return cols.map((c) => {
    if (c !== undefined) return c;
    let best: Float64Array | undefined, bestNorm = -1;
    for (let e = 0; e < m; e++) {
      const x = new Float64Array(m);
      x[e] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (const d of done) {
          let s = 0;
          for (let i = 0; i < m; i++) s += d[i]! * x[i]!;
          for (let i = 0; i < m; i++) x[i] = x[i]! - s * d[i]!;
        }
      }
      let norm = 0;
      for (let i = 0; i < m; i++) norm += x[i]! ** 2;
      if (norm > bestNorm) { bestNorm = norm; best = x; }
    }
    const u = best!;
    const inv = 1 / Math.sqrt(bestNorm);
    for (let i = 0; i < m; i++) u[i] = u[i]! * inv;
    done.push(u);
    return u;
  });
}

export interface SvdFactors {
  /** m×ku, row-major. */
  u: Float64Array;
  /** k = min(m, n), descending. */
  s: Float64Array;
  /** kv×n, row-major (the rows are the right singular vectors). */
  vh: Float64Array;
  ku: number;
  kv: number;
}

/** ‖x‖₂ without underflow or overflow of the squares (scaled by max |xᵢ|, as LAPACK's dnrm2). */
function scaledNorm(x: Float64Array): number {
  let big = 0;
  for (let i = 0; i < x.length; i++) big = Math.max(big, Math.abs(x[i]!));
  if (big === 0 || !Number.isFinite(big)) return big;
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += (x[i]! / big) ** 2;
  return big * Math.sqrt(sum);
}

/** One-sided Jacobi SVD of an m×n A with m >= n: columns U (m×n, missing where σ = 0), σ and V (n×n), sorted descending. */
function jacobiSvdTall(a: Float64Array, m: number, n: number): { uCols: (Float64Array | undefined)[]; s: Float64Array; vCols: Float64Array[] } {
  const w = Array.from({ length: n }, (_, j) => Float64Array.from({ length: m }, (_, i) => a[i * n + j]!));
  const v = Array.from({ length: n }, (_, j) => { const e = new Float64Array(n); e[j] = 1; return e; });
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const wp = w[p]!, wq = w[q]!;
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < m; i++) { alpha += wp[i]! ** 2; beta += wq[i]! ** 2; gamma += wp[i]! * wq[i]!; }
        // Columns orthogonal to working precision (relative to their norms): nothing to rotate.
        if (alpha === 0 || beta === 0 || Math.abs(gamma) <= EPS * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t), sn = c * t;
        for (let i = 0; i < m; i++) { const x = wp[i]!, y = wq[i]!; wp[i] = c * x - sn * y; wq[i] = sn * x + c * y; }
        const vp = v[p]!, vq = v[q]!;
        for (let i = 0; i < n; i++) { const x = vp[i]!, y = vq[i]!; vp[i] = c * x - sn * y; vq[i] = sn * x + c * y; }
      }
    }
    if (!rotated) break;
  }
  const norms = w.map(scaledNorm);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => norms[j]! - norms[i]! || i - j);
  const s = Float64Array.from(order, (j) => norms[j]!);
  // u_j = w_j / σ_j. A column whose σ is at roundoff level (or underflows) carries no reliable
  // direction; re-orthogonalizing against the larger ones shows it, and such columns are completed
  // to an orthonormal basis instead (any unit vector orthogonal to the rest is a valid u_j then).
  const uCols: (Float64Array | undefined)[] = [];
  for (const j of order) {
    const sigma = norms[j]!;
    if (!(sigma > 0)) { uCols.push(undefined); continue; }
    const u = w[j]!.map((x) => x / sigma);
    for (let pass = 0; pass < 2; pass++) {
      for (const d of uCols) {
        if (d === undefined) continue;
        let dot = 0;
        for (let i = 0; i < m; i++) dot += d[i]! * u[i]!;
        for (let i = 0; i < m; i++) u[i] = u[i]! - dot * d[i]!;
      }
    }
    const len = scaledNorm(u);
    uCols.push(len > 0.5 ? u.map((x) => x / len) : undefined);
  }
  return { uCols, s, vCols: order.map((j) => v[j]!) };
}

/** SVD of an m×n A: U (m×k or m×m with `full`), σ descending, Vh (k×n or n×n). */
export function jacobiSvd(a: Float64Array, m: number, n: number, full: boolean): SvdFactors {
  const tall = m >= n;
  // A wide A is decomposed through Aᵀ = U'·S·V'ᵀ, so A = V'·S·U'ᵀ.
  const rows = tall ? m : n, cols = tall ? n : m;
  const { uCols, s, vCols } = jacobiSvdTall(tall ? a : transposed(a, m, n), rows, cols);
  const left = completeOrthonormal(full ? [...uCols, ...new Array<undefined>(rows - cols)] : uCols, rows);
  const right = vCols;
  // left: columns of length `rows`; right: columns of length `cols`.
  const [uList, vList] = tall ? [left, right] : [right, left];
  const ku = uList.length, kv = vList.length;
  const u = new Float64Array(m * ku);
  uList.forEach((col, c) => { for (let i = 0; i < m; i++) u[i * ku + c] = col[i]!; });
  const vh = new Float64Array(kv * n);
  vList.forEach((col, r) => { for (let j = 0; j < n; j++) vh[r * n + j] = col[j]!; });
  return { u, s, vh, ku, kv };
}
