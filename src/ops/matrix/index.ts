// torch.linalg / jnp.linalg for tessera, exposed as t.linalg.*: factorizations (cholesky, qr, eigh,
// svd), solves (solve, solveTriangular, lstsq), inverses (inv, pinv), determinants (det, slogdet)
// and norms. Batched over leading dims, float32 and float64, differentiable in both modes.
import { Tensor } from '../../core/tensor.js';
import { det, inv, slogdet, type SlogdetResult } from './solve.js';
import { pinv, type PinvOptions } from './least-squares.js';

export { solve, inv, solveTriangular, cholesky, det, slogdet } from './solve.js';
export type { SolveOptions, SolveTriangularOptions, CholeskyOptions, SlogdetResult } from './solve.js';
export { qr, eigh, eigvalsh, svd, svdvals } from './decompositions.js';
export type { QrOptions, QrResult, EighOptions, EighResult, SvdOptions, SvdResult } from './decompositions.js';
export { lstsq, pinv } from './least-squares.js';
export type { LstsqResult, PinvOptions } from './least-squares.js';
export { norm, vectorNorm, matrixNorm, type MatrixNormOrd } from './norms.js';

declare module '../../core/tensor.js' {
  interface Tensor {
    /** torch.Tensor.det: t.linalg.det(this). */
    det(): Tensor;
    /** torch.Tensor.slogdet: t.linalg.slogdet(this). */
    slogdet(): SlogdetResult;
    /** torch.Tensor.inverse: t.linalg.inv(this). */
    inverse(): Tensor;
    /** torch.Tensor.pinverse: t.linalg.pinv(this). */
    pinverse(opts?: PinvOptions): Tensor;
  }
}

const P = Tensor.prototype;
P.det = function () { return det(this); };
P.slogdet = function () { return slogdet(this); };
P.inverse = function () { return inv(this); };
P.pinverse = function (o) { return pinv(this, o); };
