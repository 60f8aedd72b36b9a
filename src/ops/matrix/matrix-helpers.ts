// Small matrix pieces the linalg ops and their derivative rules share: input checks, the last-two-axes
// transpose, diagonal and diag_embed written with differentiable ops, the unpacking of a packed
// primitive output, and a division that is 0 where the numerator is exactly 0.
import { check, fmtShape } from '../../core/errors.js';
import type { DType } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import { sizeOf } from '../../core/shape.js';
import { cat } from '../combine.js';
import { eye } from '../creation.js';
import { div, eq, mul, where } from '../elementwise.js';
import { narrow, reshape, slice, transpose, unsqueeze } from '../shape.js';
import { packedParts } from './primitive-defs.js';

const LINALG_DTYPES: readonly DType[] = ['float32', 'float64'];

/**
 * Checks a user-facing linalg input: a batch of matrices [..., m, n] (square when asked) of float32
 * or float64, with a message naming the op, the shape and dtype, and what to do.
 */
export function checkMatrix(op: string, a: Tensor, opts: { square?: boolean; name?: string } = {}): void {
  const what = opts.name ?? 'A';
  check(a.rank >= 2, `linalg.${op}`, () => `${what} must be a matrix or a batch of matrices [..., m, n], got shape ${fmtShape(a.shape)}.`);
  check(LINALG_DTYPES.includes(a.dtype), `linalg.${op}`, () =>
    `${what} must be float32 or float64, got ${a.dtype} (shape ${fmtShape(a.shape)}); cast it first, e.g. t.cast(A, 'float64').`);
  if (opts.square === true) {
    check(a.shape[a.rank - 1] === a.shape[a.rank - 2], `linalg.${op}`, () =>
      `${what} must be a square matrix or a batch of square matrices, got shape ${fmtShape(a.shape)}.`);
  }
}

/** The transpose of the last two axes (a view). */
export const mT = (x: Tensor): Tensor => transpose(x, -2, -1);

/** The main diagonal of the last two (square) axes, [..., n]: a strided view of the flattened matrix. */
export function diagonal(x: Tensor): Tensor {
  const n = x.shape[x.rank - 1]!;
  const flat = reshape(x, [...x.shape.slice(0, -2), n * n]);
  return slice(flat, -1, 0, n * n, n + 1);
}

/** [..., n] → [..., n, n] with v on the diagonal (torch.diag_embed). */
export function diagEmbed(v: Tensor): Tensor {
  const n = v.shape[v.rank - 1]!;
  return mul(unsqueeze(v, -1), eye(n, n, { dtype: v.dtype, backend: v.backend }));
}

/** The identity broadcast to the shape of a batch of square matrices like x. */
export function identityLike(x: Tensor): Tensor {
  const n = x.shape[x.rank - 1]!;
  return eye(n, n, { dtype: x.dtype, backend: x.backend });
}

/**
 * num / den, taken as 0 wherever num is exactly 0 (also where den is 0). The derivative rules of
 * eigh and svd divide by eigenvalue (or squared singular value) gaps: a zero numerator means that
 * part of the cotangent is absent (e.g. only the eigenvalues were used), and 0/0 must not turn the
 * whole gradient into NaN. The denominator is made safe too, so the unselected branch's own
 * derivative (higher order) is not NaN either.
 */
export function divOrZero(num: Tensor, den: Tensor | number): Tensor {
  const zero = eq(num, 0);
  return where(zero, 0, div(num, typeof den === 'number' ? den : where(zero, 1, den)));
}

/** The results packed along the last axis of a qr/eigh/svd primitive output, as views of the given shapes. */
export function unpack(out: Tensor, op: 'qr' | 'eigh' | 'svd', m: number, n: number, full: boolean): Tensor[] {
  const batch = out.shape.slice(0, -1);
  let start = 0;
  return packedParts(op, m, n, full).map((shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const part = reshape(narrow(out, -1, start, size), [...batch, ...shape]);
    start += size;
    return part;
  });
}

/** The inverse of unpack: parts (each [..., *shape]) flattened and concatenated along a last axis. */
export function pack(parts: readonly Tensor[], batch: readonly number[]): Tensor {
  return cat(parts.map((p) => reshape(p, [...batch, sizeOf(p.shape.slice(batch.length))])), -1);
}
