// Every t.linalg op's derivatives against central finite differences in float64 (gradcheck: reverse
// mode, and forward mode where the op has jvp rules), on small well-conditioned inputs. Inputs a
// kernel reads one triangle of (cholesky, eigh) are symmetrized inside f, as torch's gradcheck of
// them does; eigh and svd are checked through gauge-invariant outputs (eigen/singular values and
// the squared entries of the vectors, which do not depend on the vectors' signs).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

const L = t.linalg;

/** Deterministic float64 values in [-1, 1) (a small LCG: the tests must not depend on a global seed). */
function rand(shape: number[], seed: number): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
  return t.tensor(v, { dtype: 'float64', shape });
}
const eyeLike = (n: number): Tensor => t.eye(n, n, { dtype: 'float64' });
/** Random plus 2·I: well conditioned. */
const well = (shape: number[], seed: number): Tensor => rand(shape, seed).add(eyeLike(shape[shape.length - 1]!).mul(2));
/** X·Xᵀ/n + I: symmetric positive-definite with a margin that finite differences do not cross. */
const spd = (shape: number[], seed: number): Tensor => {
  const x = rand(shape, seed), n = shape[shape.length - 1]!;
  return x.matmul(x.mT).div(n).add(eyeLike(n));
};
const sym = (x: Tensor): Tensor => x.add(x.mT).mul(0.5);

function check(name: string, f: (...xs: Tensor[]) => Tensor | Tensor[], inputs: Tensor[], mode: 'both' | 'vjp' = 'both'): void {
  const report = t.gradcheck(f, inputs, { name, mode, atol: 1e-6, rtol: 1e-5, throwOnFailure: false });
  assert.ok(report.ok, `${name}: worst ${JSON.stringify(report.worst)}`);
}

forEachBackend('linalg gradients (gradcheck, float64)', () => {
  it('cholesky (lower, upper, batched) and its second derivative', () => {
    check('cholesky', (a) => L.cholesky(sym(a)), [spd([3, 3], 1)]);
    check('cholesky upper batched', (a) => L.cholesky(sym(a), { upper: true }), [spd([2, 3, 3], 2)]);
    assert.ok(t.gradgradcheck((a) => L.cholesky(sym(a)), [spd([2, 2], 3)], { atol: 1e-5, rtol: 1e-4, throwOnFailure: false }).ok, 'cholesky gradgradcheck');
  });

  it('solve (matrix and vector B, broadcast batch, left: false), inv', () => {
    check('solve', (a, b) => L.solve(a, b), [well([3, 3], 4), rand([3, 2], 5)]);
    check('solve broadcast vector', (a, b) => L.solve(a, b), [well([2, 3, 3], 6), rand([3], 7)]);
    check('solve right', (a, b) => L.solve(a, b, { left: false }), [well([3, 3], 8), rand([2, 3], 9)]);
    check('inv', (a) => L.inv(a), [well([2, 3, 3], 10)]);
    assert.ok(t.gradgradcheck((a, b) => L.solve(a, b), [well([2, 2], 11), rand([2, 1], 12)], { atol: 1e-5, rtol: 1e-4, throwOnFailure: false }).ok, 'solve gradgradcheck');
  });

  it('solveTriangular: upper/lower, left/right, unit diagonal', () => {
    for (const upper of [true, false]) {
      for (const left of [true, false]) {
        for (const unitriangular of [false, true]) {
          const b = left ? rand([3, 2], 13) : rand([2, 3], 13);
          check(`solveTriangular ${JSON.stringify({ upper, left, unitriangular })}`, (a, bb) => L.solveTriangular(a, bb, { upper, left, unitriangular }), [well([3, 3], 14), b]);
        }
      }
    }
  });

  it('det (also at a singular matrix: the cofactor matrix), slogdet', () => {
    check('det', (a) => L.det(a), [well([2, 3, 3], 15)]);
    // det is a polynomial, so finite differences are exact at a singular A too.
    check('det singular', (a) => L.det(a), [t.tensor([[1, 2, 3], [2, 4, 6], [1, 0.5, 2]], { dtype: 'float64' })]);
    check('slogdet', (a) => L.slogdet(a).logabsdet, [rand([2, 3, 3], 16).mul(2)]);
  });

  it('qr: reduced tall and wide, complete wide', () => {
    check('qr tall', (a) => { const r = L.qr(a); return [r.Q, r.R]; }, [rand([4, 3], 17)]);
    check('qr wide', (a) => { const r = L.qr(a); return [r.Q, r.R]; }, [rand([2, 4], 18)]);
    check('qr complete wide batched', (a) => { const r = L.qr(a, { mode: 'complete' }); return [r.Q, r.R]; }, [rand([2, 2, 3], 19)]);
    check('qr square', (a) => { const r = L.qr(a); return [r.Q, r.R]; }, [rand([3, 3], 20)]);
  });

  it('eigh: eigenvalues and (gauge-invariant) eigenvectors, uplo U, eigvalsh', () => {
    check('eigh', (a) => { const r = L.eigh(sym(a)); return [r.eigenvalues, r.eigenvectors.square()]; }, [rand([4, 4], 21)]);
    check('eigh uplo U batched', (a) => { const r = L.eigh(sym(a), { uplo: 'U' }); return [r.eigenvalues, r.eigenvectors.square()]; }, [rand([2, 3, 3], 22)]);
    check('eigvalsh', (a) => L.eigvalsh(sym(a)), [rand([3, 3], 23)]);
  });

  it('svd: reduced tall and wide (values and squared vectors), full (reconstruction), svdvals', () => {
    const parts = (a: Tensor): Tensor[] => { const r = L.svd(a, { fullMatrices: false }); return [r.S, r.U.square(), r.Vh.square()]; };
    check('svd tall', parts, [rand([4, 3], 24)]);
    check('svd wide batched', parts, [rand([2, 2, 4], 25)]);
    check('svd square', parts, [rand([3, 3], 26)]);
    // Full matrices: the extra columns are not unique; a loss through the first k is well defined (reverse mode narrows as torch does).
    check('svd full tall', (a) => { const r = L.svd(a); return r.U.at(null, [0, 2]).mul(r.S.unsqueeze(-2)).matmul(r.Vh).mul(r.U.at(null, [0, 2]).sum()); }, [rand([4, 2], 27)], 'vjp');
    check('svdvals', (a) => L.svdvals(a), [rand([3, 5], 28)]);
  });

  it('lstsq (tall, wide minimum-norm), pinv, matrix and vector norms', () => {
    check('lstsq tall', (a, b) => L.lstsq(a, b).solution, [rand([5, 3], 29), rand([5, 2], 30)]);
    check('lstsq wide', (a, b) => L.lstsq(a, b).solution, [rand([2, 4], 31), rand([2], 32)]);
    check('pinv', (a) => L.pinv(a), [rand([4, 3], 33)]);
    check('pinv wide', (a) => L.pinv(a), [rand([2, 3], 34)]);
    check('matrix norms', (a) => (['fro', 'nuc', 2, -2, 1, -1, Infinity, -Infinity] as const).map((o) => L.matrixNorm(a, o)), [rand([2, 3, 4], 35)]);
    check('norm', (a) => [L.norm(a), L.norm(a, 2, 1), L.vectorNorm(a, 3, [0, 1])], [rand([3, 4], 36)]);
  });
}, { float64Only: true });
