// t.linalg factorizations satisfy their defining identities on batched float64 and float32 inputs
// (A = L·Lᵀ, A = Q·R with orthonormal Q, A·V = V·Λ, A = U·Σ·Vh), follow the documented conventions
// (ascending eigenvalues with positive largest-magnitude entries, descending singular values,
// LAPACK's R signs), handle rank deficiency, strided inputs and repeated eigenvalues, and reject bad
// input with errors that name the op, the shapes, the batch element and what to do.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor, DType } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose, assertThrowsWith } from '../helpers/close.js';

const L = t.linalg;

function rand(shape: number[], seed: number, dtype: DType = 'float64'): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
  return t.tensor(v, { dtype, shape });
}
const eye = (n: number, dtype: DType): Tensor => t.eye(n, n, { dtype });
/** max |x| as a number. */
const maxAbs = (x: Tensor): number => x.abs().max().item() as number;
/** Tolerance of an identity residual, relative to the size of the values: ~1e-13 in float64, ~1e-5 in float32. */
const tolFor = (dtype: DType): number => (dtype === 'float64' ? 1e-12 : 2e-5);

forEachBackend('linalg decompositions', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    const tol = tolFor(dtype);

    it(`cholesky: L·Lᵀ = A, L lower with a positive diagonal, batched (${dtype})`, () => {
      const x = rand([3, 4, 4], 1, dtype);
      const a = x.matmul(x.mT).add(eye(4, dtype));
      const l = L.cholesky(a);
      assert.equal(l.dtype, dtype);
      assert.ok(maxAbs(l.matmul(l.mT).sub(a)) < tol * 4, 'reconstruction');
      assert.equal(maxAbs(l.triu(1)), 0, 'strictly upper part is zero');
      const u = L.cholesky(a, { upper: true });
      assert.ok(maxAbs(u.mT.matmul(u).sub(a)) < tol * 4, 'upper reconstruction');
    });

    it(`solve, inv, det, slogdet agree with each other (${dtype})`, () => {
      const a = rand([2, 4, 4], 2, dtype).add(eye(4, dtype).mul(2));
      const b = rand([4, 3], 3, dtype);
      const x = L.solve(a, b);
      assert.deepEqual(x.shape, [2, 4, 3]);
      assert.ok(maxAbs(a.matmul(x).sub(b)) < tol * 10, 'residual');
      assert.ok(maxAbs(L.inv(a).matmul(a).sub(eye(4, dtype))) < tol * 10, 'inverse');
      const { sign, logabsdet } = L.slogdet(a);
      assertClose(sign.mul(logabsdet.exp()), L.det(a), { rtol: tol * 10, atol: 0 }, 'det = sign·exp(logabsdet)');
      assertClose(a.det(), L.det(a), { rtol: 0, atol: 0 }, 'Tensor.det');
    });

    it(`qr: Q·R = A, QᵀQ = I, R upper with LAPACK's signs; complete mode (${dtype})`, () => {
      for (const [m, n] of [[5, 3], [3, 5], [4, 4]] as const) {
        const a = rand([2, m, n], 4 + m, dtype);
        for (const mode of ['reduced', 'complete'] as const) {
          const { Q, R } = L.qr(a, { mode });
          const k = mode === 'complete' ? m : Math.min(m, n);
          assert.deepEqual(Q.shape, [2, m, k]);
          assert.deepEqual(R.shape, [2, k, n]);
          assert.ok(maxAbs(Q.matmul(R).sub(a)) < tol * 10, `${m}x${n} ${mode}: reconstruction`);
          assert.ok(maxAbs(Q.mT.matmul(Q).sub(eye(k, dtype))) < tol * 10, `${m}x${n} ${mode}: orthonormal`);
          assert.equal(maxAbs(R.tril(-1)), 0, 'R is upper triangular');
        }
      }
      // geqrf's β = −sign(α)·‖x‖: a positive leading entry gives a negative R[0, 0].
      assert.ok((L.qr(t.tensor([[3, 1], [4, 1]], { dtype })).R.at(0, 0).item() as number) < 0);
    });

    it(`eigh: A·V = V·Λ, VᵀV = I, ascending, largest-magnitude entry positive (${dtype})`, () => {
      const x = rand([2, 5, 5], 9, dtype);
      const a = x.add(x.mT);
      const { eigenvalues: w, eigenvectors: v } = L.eigh(a);
      assert.ok(maxAbs(a.matmul(v).sub(v.mul(w.unsqueeze(-2)))) < tol * 20, 'A·V = V·Λ');
      assert.ok(maxAbs(v.mT.matmul(v).sub(eye(5, dtype))) < tol * 10, 'orthonormal');
      const wv = w.toArray() as number[][];
      for (const row of wv) for (let i = 1; i < row.length; i++) assert.ok(row[i]! >= row[i - 1]!, 'ascending');
      for (const mat of v.toArray() as number[][][]) {
        for (let c = 0; c < 5; c++) {
          const col = mat.map((r) => r[c]!);
          const big = col.reduce((b, y) => (Math.abs(y) > Math.abs(b) ? y : b), 0);
          assert.ok(big > 0, 'largest-magnitude entry positive');
        }
      }
      // uplo: only one triangle is read.
      const lowerOnly = a.tril(), upperOnly = a.triu();
      assertClose(L.eigvalsh(lowerOnly), w, { rtol: tol, atol: tol * 10 }, 'uplo L reads the lower triangle');
      assertClose(L.eigvalsh(upperOnly, { uplo: 'U' }), w, { rtol: tol, atol: tol * 10 }, 'uplo U reads the upper triangle');
    });

    it(`svd: U·Σ·Vh = A, orthonormal factors, descending, full and reduced, tall and wide (${dtype})`, () => {
      for (const [m, n] of [[5, 3], [3, 5], [4, 4]] as const) {
        const a = rand([2, m, n], 10 + n, dtype);
        const k = Math.min(m, n);
        for (const fullMatrices of [false, true]) {
          const { U, S, Vh } = L.svd(a, { fullMatrices });
          assert.deepEqual(U.shape, [2, m, fullMatrices ? m : k]);
          assert.deepEqual(Vh.shape, [2, fullMatrices ? n : k, n]);
          const us = U.at(null, null, [0, k]).mul(S.unsqueeze(-2));
          assert.ok(maxAbs(us.matmul(Vh.at(null, [0, k])).sub(a)) < tol * 10, `${m}x${n}: reconstruction`);
          assert.ok(maxAbs(U.mT.matmul(U).sub(eye(U.shape[2]!, dtype))) < tol * 10, 'U orthonormal');
          assert.ok(maxAbs(Vh.matmul(Vh.mT).sub(eye(Vh.shape[1]!, dtype))) < tol * 10, 'Vh orthonormal');
          for (const row of S.toArray() as number[][]) for (let i = 1; i < row.length; i++) assert.ok(row[i]! <= row[i - 1]!, 'descending');
        }
      }
    });
  }

  it('svd of rank-deficient and zero matrices: orthonormal U and V all the same; tiny singular values keep relative accuracy', () => {
    const f64 = { dtype: 'float64' as const };
    const rank1 = t.tensor([[1, 2], [2, 4], [3, 6]], f64);
    for (const a of [rank1, t.zeros([3, 3], f64), t.tensor([[1, 2, 3], [2, 4, 6], [1, 0.5, 2]], f64)]) {
      const { U, S, Vh } = L.svd(a);
      assert.ok(maxAbs(U.mT.matmul(U).sub(eye(U.shape[0]!, 'float64'))) < 1e-12);
      assert.ok(maxAbs(Vh.matmul(Vh.mT).sub(eye(Vh.shape[0]!, 'float64'))) < 1e-12);
      const k = S.shape[0]!;
      assert.ok(maxAbs(U.at(null, [0, k]).mul(S.unsqueeze(0)).matmul(Vh.at([0, k])).sub(a)) < 1e-12);
    }
    // A graded matrix: σ spans 20 orders of magnitude; one-sided Jacobi keeps each to full relative
    // accuracy (an eigh of AᵀA would return the small one as roundoff noise around 1e-16).
    const graded = L.svdvals(t.tensor([[1, 0], [0, 1e-20]], f64).matmul(t.tensor([[0.6, -0.8], [0.8, 0.6]], f64)));
    assertClose(graded, [1, 1e-20], { rtol: 1e-14, atol: 0 });
  });

  it('strided inputs (a transposed view, an expanded batch) give the same results as contiguous copies', () => {
    const a = rand([4, 4], 40).add(eye(4, 'float64').mul(2));
    const at = a.mT, atc = a.mT.contiguous();
    assertClose(L.inv(at), L.inv(atc), { rtol: 0, atol: 0 });
    assertClose(L.svdvals(at), L.svdvals(atc), { rtol: 0, atol: 0 });
    const batch = a.unsqueeze(0).expand([3, 4, 4]);
    assertClose(L.det(batch), [L.det(a).item() as number, L.det(a).item() as number, L.det(a).item() as number], { rtol: 0, atol: 0 });
  });

  it('repeated eigenvalues: eigenvalue gradients are finite; vector gradients of a rotation-invariant loss too', () => {
    const a = t.eye(3, 3, { dtype: 'float64' }).mul(2).requiresGrad_();
    const g = t.gradientsOf(L.eigvalsh(a).mul(t.tensor([1, 2, 3], { dtype: 'float64' })).sum(), [a])[0]!;
    assert.ok((g.toArray() as number[][]).flat().every(Number.isFinite), 'finite');
    // Σ λ has gradient I whatever the multiplicity.
    const g2 = t.gradientsOf(L.eigvalsh(a).sum(), [a])[0]!;
    assertClose(g2, t.eye(3, 3, { dtype: 'float64' }), { rtol: 0, atol: 1e-15 });
    // V·Vᵀ = I does not depend on the basis chosen inside the eigenspace.
    const g3 = t.gradientsOf(L.eigh(a).eigenvectors.matmul(L.eigh(a).eigenvectors.mT).sum(), [a])[0]!;
    assert.ok((g3.toArray() as number[][]).flat().every(Number.isFinite));
  });

  it('lstsq solves the normal equations; pinv satisfies the Penrose conditions', () => {
    const a = rand([2, 5, 3], 50), b = rand([2, 5, 2], 51);
    const { solution: x, residuals } = L.lstsq(a, b);
    assert.ok(maxAbs(a.mT.matmul(a.matmul(x).sub(b))) < 1e-12, 'Aᵀ(AX − B) = 0');
    assertClose(residuals, a.matmul(x).sub(b).square().sum(-2), { rtol: 1e-12, atol: 1e-14 });
    const wide = rand([2, 4], 52), rhs = rand([2], 53);
    const xw = L.lstsq(wide, rhs).solution;
    assertClose(xw, L.pinv(wide).matmul(rhs), { rtol: 1e-10, atol: 1e-12 }, 'minimum-norm solution = pinv(A)·b');
    const p = L.pinv(a);
    assert.ok(maxAbs(a.matmul(p).matmul(a).sub(a)) < 1e-12, 'A·A⁺·A = A');
    assert.ok(maxAbs(p.matmul(a).matmul(p).sub(p)) < 1e-12, 'A⁺·A·A⁺ = A⁺');
  });

  it('errors name the op, the shapes or dtype, the batch element and what to do', () => {
    const f64 = { dtype: 'float64' as const };
    assertThrowsWith(() => L.cholesky(t.tensor([[[2, 0], [0, 1]], [[1, 2], [2, 1]]], f64)),
      'linalg.cholesky', '(Batch element 1)', 'not positive-definite', 'leading minor of order 2');
    assertThrowsWith(() => L.solve(t.tensor([[[1, 0], [0, 1]], [[1, 2], [2, 4]]], f64), t.tensor([1, 1], f64)),
      'linalg.solve', '(Batch element 1)', 'singular', 'lstsq');
    assertThrowsWith(() => L.inv(t.tensor([[1, 2], [2, 4]], f64)), 'linalg.inv', 'singular');
    assertThrowsWith(() => L.det(t.tensor([[1, 2], [3, 4]], { dtype: 'int32' })), 'linalg.det', 'int32', 'float32 or float64', 'cast');
    assertThrowsWith(() => L.inv(t.zeros([2, 3], f64)), 'linalg.inv', 'square', '[2, 3]');
    assertThrowsWith(() => L.solve(t.eye(3, 3, f64), t.zeros([2, 2], f64)), 'linalg.solve', '[3, 3]', '[2, 2]');
    assertThrowsWith(() => L.svd(t.zeros([3], f64)), 'linalg.svd', '[3]');
    assertThrowsWith(() => L.solveTriangular(t.eye(2, 2, f64), t.zeros([2, 1], f64), undefined as never), 'linalg.solveTriangular', 'upper');
    const tall = rand([4, 3], 60).requiresGrad_();
    assertThrowsWith(() => t.gradientsOf(L.qr(tall, { mode: 'complete' }).Q.sum(), [tall]), 'linalg.qr', 'not differentiable', "mode 'reduced'");
  });
});
