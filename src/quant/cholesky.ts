// The one piece of dense linear algebra GPTQ needs: the upper-triangular Cholesky factor U of the
// inverse of a symmetric positive-definite matrix H, H⁻¹ = Uᵀ U, in float64 on the host.
//
// The textbook route factors H, inverts it, and factors the inverse again (three O(n³) passes).
// This one takes two: factor H "from the bottom up" as H = R Rᵀ with R upper triangular (an
// ordinary Cholesky of H with its rows and columns reversed), then U = R⁻¹, since
// H⁻¹ = R⁻ᵀ R⁻¹ = (R⁻¹)ᵀ (R⁻¹) and the inverse of an upper-triangular matrix is upper triangular.
// A Cholesky factor with a positive diagonal is unique, so this is the same U. Both loops walk rows
// (row-major storage), so the inner loops read memory in order.

/** The outcome of upperCholeskyOfInverse: U, or the pivot at which H proved not positive definite. */
export type InverseCholesky =
  | { ok: true; u: Float64Array }
  | { ok: false; pivot: number; value: number };

/**
 * U upper triangular with H⁻¹ = Uᵀ U, for H symmetric positive definite (n × n, row-major; only
 * its upper triangle is read). Fails at the first pivot (counted from the last row) that is not
 * positive, or that is so small next to its diagonal entry (< 1e-12 of it) that H is singular to
 * working precision.
 */
export function upperCholeskyOfInverse(h: Float64Array, n: number): InverseCholesky {
  // H = R Rᵀ: for j from the last row up,
  //   R_jj = sqrt(H_jj − Σ_{k>j} R_jk²),  R_ij = (H_ij − Σ_{k>j} R_ik R_jk) / R_jj  (i < j).
  const r = new Float64Array(n * n);
  for (let j = n - 1; j >= 0; j--) {
    const rowJ = j * n;
    const s = h[rowJ + j]! - dot(r, rowJ + j + 1, r, rowJ + j + 1, n - j - 1);
    if (!(s > 1e-12 * Math.abs(h[rowJ + j]!))) return { ok: false, pivot: j, value: s };
    const d = Math.sqrt(s);
    r[rowJ + j] = d;
    for (let i = 0; i < j; i++) {
      const rowI = i * n;
      r[rowI + j] = (h[rowI + j]! - dot(r, rowI + j + 1, r, rowJ + j + 1, n - j - 1)) / d;
    }
  }
  // U = R⁻¹, one row at a time from the bottom: row i of R U = I gives
  //   U_i· = (e_i − Σ_{k>i} R_ik U_k·) / R_ii.
  const u = new Float64Array(n * n);
  for (let i = n - 1; i >= 0; i--) {
    const rowI = i * n;
    u[rowI + i] = 1;
    for (let k = i + 1; k < n; k++) {
      const f = r[rowI + k]!;
      if (f === 0) continue;
      const rowK = k * n;
      for (let c = k; c < n; c++) u[rowI + c]! -= f * u[rowK + c]!;
    }
    const inv = 1 / r[rowI + i]!;
    for (let c = i; c < n; c++) u[rowI + c]! *= inv;
  }
  return { ok: true, u };
}

/** Σ a[ia + t] · b[ib + t] for t < len (four partial sums: the loop is the factorisation's hot spot). */
function dot(a: Float64Array, ia: number, b: Float64Array, ib: number, len: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, t = 0;
  for (; t + 4 <= len; t += 4) {
    s0 += a[ia + t]! * b[ib + t]!;
    s1 += a[ia + t + 1]! * b[ib + t + 1]!;
    s2 += a[ia + t + 2]! * b[ib + t + 2]!;
    s3 += a[ia + t + 3]! * b[ib + t + 3]!;
  }
  for (; t < len; t++) s0 += a[ia + t]! * b[ib + t]!;
  return (s0 + s1) + (s2 + s3);
}
