// Reference kernels of the linalg primitives: per batch entry, the matrix is read (any strides)
// into a Float64Array, factorized by linalg-algorithms.ts and stored, rounded to the dtype once, into
// a new contiguous output (several results packed along the last axis, in the order of
// ops/matrix/primitive-defs.ts packedParts). Every backend runs these through the cpu fallback.
import type { Kernel, KernelInput, OutputInfo, Storage } from '../backend.js';
import { allocStorage, type TypedArray } from '../../core/dtype.js';
import { TesseraError, fmtShape } from '../../core/errors.js';
import { sizeOf } from '../../core/shape.js';
import { arrayOf, forEachPosition } from './strided.js';
import {
  choleskyLower, householderQr, jacobiEigh, jacobiSvd, luFactor, luSolve, transposed, triangularSolveLeft,
} from './linalg-algorithms.js';
import type { LinalgPrimitiveAttrs } from '../../ops/matrix/primitive-defs.js';

type Wrap = (out: OutputInfo, data: TypedArray) => Storage;
type LinalgKernels = { [P in keyof LinalgPrimitiveAttrs]: Kernel<P> };

/** The matrices of the last two axes of x, one Float64Array (row-major) per batch entry in row-major batch order. */
function matricesOf(x: KernelInput): { mats: Float64Array[]; m: number; n: number } {
  const r = x.shape.length;
  const m = x.shape[r - 2]!, n = x.shape[r - 1]!;
  const rs = x.strides[r - 2]!, cs = x.strides[r - 1]!;
  const data = arrayOf(x);
  const mats: Float64Array[] = [];
  forEachPosition(x.shape.slice(0, r - 2), x.strides.slice(0, r - 2), x.offset, (base) => {
    const a = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) a[i * n + j] = data[base + i * rs + j * cs]!;
    mats.push(a);
  });
  return { mats, m, n };
}

/** "(Batch element 3): " for batched inputs, as torch's messages name the failing matrix. */
function batchPrefix(x: KernelInput, b: number): string {
  return x.shape.length > 2 ? `(Batch element ${b}): ` : '';
}

export function makeLinalgKernels(wrap: Wrap): LinalgKernels {
  /** Stores one array of per-batch results (each of `per` values) into the output. */
  const store = (out: OutputInfo, parts: ArrayLike<number>[][]): Storage => {
    const dst = allocStorage(out.dtype, sizeOf(out.shape));
    let at = 0;
    for (const entry of parts) for (const p of entry) { for (let i = 0; i < p.length; i++) dst[at + i] = p[i]!; at += p.length; }
    return wrap(out, dst);
  };

  return {
    cholesky: ([x], _attrs, out) => {
      const { mats, n } = matricesOf(x!);
      return store(out, mats.map((a, b) => {
        const r = choleskyLower(a, n);
        if ('failedOrder' in r) {
          throw new TesseraError(`linalg.cholesky: ${batchPrefix(x!, b)}The factorization could not be completed because the input is not positive-definite `
            + `(the leading minor of order ${r.failedOrder} is not positive-definite). Input shape ${fmtShape(x!.shape)} ${x!.dtype}; `
            + 'check that A is symmetric positive-definite (linalg.eigvalsh lists its eigenvalues); a nearly singular covariance often needs a small diagonal jitter, A + ε·I.');
        }
        return [r.l];
      }));
    },
    triangularSolve: ([a, b], { upper, left, unitriangular }, out) => {
      const { mats: as, n } = matricesOf(a!);
      const { mats: bs, m: bm, n: bn } = matricesOf(b!);
      return store(out, as.map((am, i) => {
        if (left) return [triangularSolveLeft(am, bs[i]!, n, bn, upper, unitriangular)];
        // X·A = B  ⇔  Aᵀ·Xᵀ = Bᵀ, and Aᵀ is triangular the other way.
        const xt = triangularSolveLeft(transposed(am, n, n), transposed(bs[i]!, bm, bn), n, bm, !upper, unitriangular);
        return [transposed(xt, n, bm)];
      }));
    },
    solve: ([a, b], { caller }, out) => {
      const { mats: as, n } = matricesOf(a!);
      const { mats: bs, n: k } = matricesOf(b!);
      return store(out, as.map((am, i) => {
        const f = luFactor(am, n);
        if (f.zeroPivot >= 0) {
          throw new TesseraError(`linalg.${caller}: ${batchPrefix(a!, i)}The solver failed because the input matrix is singular `
            + `(U[${f.zeroPivot}, ${f.zeroPivot}] of its LU factorization with partial pivoting is exactly zero). A ${fmtShape(a!.shape)} ${a!.dtype}; `
            + 'for a singular or rank-deficient system use linalg.lstsq or linalg.pinv.');
        }
        return [luSolve(f, bs[i]!, n, k)];
      }));
    },
    det: ([x], _attrs, out) => {
      const { mats, n } = matricesOf(x!);
      return store(out, mats.map((a) => {
        const { lu, sign } = luFactor(a, n);
        let d = sign;
        for (let i = 0; i < n; i++) d *= lu[i * n + i]!;
        return [[d]];
      }));
    },
    slogdet: ([x], _attrs, out) => {
      const { mats, n } = matricesOf(x!);
      return store(out, mats.map((a) => {
        const { lu, sign, zeroPivot } = luFactor(a, n);
        if (zeroPivot >= 0) return [[0, -Infinity]];
        // Sum of logs rather than the log of a product: det itself may overflow or underflow.
        let s = sign, logAbs = 0;
        for (let i = 0; i < n; i++) { const u = lu[i * n + i]!; if (u < 0) s = -s; logAbs += Math.log(Math.abs(u)); }
        return [[s, logAbs]];
      }));
    },
    qr: ([x], { complete }, out) => {
      const { mats, m, n } = matricesOf(x!);
      return store(out, mats.map((a) => { const { q, r } = householderQr(a, m, n, complete); return [q, r]; }));
    },
    eigh: ([x], _attrs, out) => {
      const { mats, n } = matricesOf(x!);
      return store(out, mats.map((a) => { const { w, v } = jacobiEigh(a, n); return [w, v]; }));
    },
    svd: ([x], { fullMatrices }, out) => {
      const { mats, m, n } = matricesOf(x!);
      return store(out, mats.map((a) => { const { u, s, vh } = jacobiSvd(a, m, n, fullMatrices); return [u, s, vh]; }));
    },
  };
}
