// Vector and matrix norms as torch.linalg.vector_norm, matrix_norm and norm. The spectral and
// nuclear norms go through the singular values (svdvals), the others are reductions.
import { check, fmtShape } from '../../core/errors.js';
import { normalizeAxis } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { abs, cast, ne } from '../elementwise.js';
import { max, min, norm as pNorm, sum } from '../reduce.js';
import { permute, reshape } from '../shape.js';
import { checkMatrix } from './matrix-helpers.js';
import { svdvals } from './decompositions.js';

export type MatrixNormOrd = 'fro' | 'nuc' | number;

function checkFloat(op: string, x: Tensor): void {
  check(x.dtype === 'float32' || x.dtype === 'float64', `linalg.${op}`, () =>
    `takes float32 or float64, got ${x.dtype} (shape ${fmtShape(x.shape)}); cast it first, e.g. t.cast(x, 'float32').`);
}

/**
 * torch.linalg.vector_norm: (Σ|x|^ord)^(1/ord) over `dim` (all elements by default); ord = inf is
 * max|x|, −inf min|x|, 0 the number of non-zeros.
 */
export function vectorNorm(x: Tensor, ord = 2, dim?: number | readonly number[], keepdim = false): Tensor {
  checkFloat('vectorNorm', x);
  const axes = dim === undefined ? [...x.shape.keys()] : typeof dim === 'number' ? [dim] : [...dim];
  if (ord === -Infinity) return min(abs(x), axes, keepdim);
  if (ord === 0) return cast(sum(cast(ne(x, 0), x.dtype), axes, keepdim), x.dtype);
  return pNorm(x, ord, axes, keepdim);
}

/**
 * torch.linalg.matrix_norm over the two axes `dim` (default the last two): 'fro', 'nuc' (Σσ), 2 / −2
 * (largest / smallest σ), 1 / −1 (max / min column sum of |A|), inf / −inf (max / min row sum).
 */
export function matrixNorm(a: Tensor, ord: MatrixNormOrd = 'fro', dim: readonly [number, number] = [-2, -1], keepdim = false): Tensor {
  checkMatrix('matrixNorm', a);
  const r0 = normalizeAxis(dim[0], a.rank, 'linalg.matrixNorm'), r1 = normalizeAxis(dim[1], a.rank, 'linalg.matrixNorm');
  check(r0 !== r1, 'linalg.matrixNorm', () => `dim must name two different axes, got [${dim[0]}, ${dim[1]}].`);
  const ords: MatrixNormOrd[] = ['fro', 'nuc', 2, -2, 1, -1, Infinity, -Infinity];
  check(ords.includes(ord), 'linalg.matrixNorm', () => `ord must be one of 'fro', 'nuc', 2, -2, 1, -1, Infinity, -Infinity, got ${String(ord)}.`);
  if (ord === 'fro') return pNorm(a, 2, [r0, r1], keepdim);
  let value: Tensor;
  if (ord === 1 || ord === -1 || ord === Infinity || ord === -Infinity) {
    // Column sums (ord ±1) reduce the row axis first; row sums (±inf) the column axis.
    const [inner, outer] = ord === 1 || ord === -1 ? [r0, r1] : [r1, r0];
    const sums = sum(abs(a), inner, true);
    value = ord === 1 || ord === Infinity ? max(sums, outer, true) : min(sums, outer, true);
  } else {
    // Move the two axes last (rows, then columns) for the SVD, then put size-1 axes back where they were.
    const rest = [...a.shape.keys()].filter((i) => i !== r0 && i !== r1);
    const s = svdvals(permute(a, [...rest, r0, r1]));
    const v = ord === 'nuc' ? sum(s, -1) : ord === 2 ? max(s, -1) : min(s, -1);
    value = reshape(v, a.shape.map((d, i) => (i === r0 || i === r1 ? 1 : d)));
  }
  return keepdim ? value : reshape(value, a.shape.filter((_, i) => i !== r0 && i !== r1));
}

/**
 * torch.linalg.norm: a matrix norm when `dim` has two axes, or when ord is given, dim is not and x
 * is 2-D, or when ord is 'fro'/'nuc'; otherwise a vector norm (of the flattened x when neither ord
 * nor dim is given, which equals the Frobenius norm of a matrix).
 */
export function norm(x: Tensor, ord?: MatrixNormOrd, dim?: number | readonly number[], keepdim = false): Tensor {
  checkFloat('norm', x);
  const dims = dim === undefined ? undefined : typeof dim === 'number' ? [dim] : [...dim];
  const matrix = dims?.length === 2 || typeof ord === 'string' || (dims === undefined && ord !== undefined && x.rank === 2);
  if (matrix) {
    check(dims === undefined || dims.length === 2, 'linalg.norm', () => `a matrix norm needs two axes in dim, got ${JSON.stringify(dims)}.`);
    check(dims !== undefined || x.rank === 2, 'linalg.norm', () => `a matrix norm of a ${x.rank}-D tensor needs dim (two axes), got shape ${fmtShape(x.shape)}.`);
    return matrixNorm(x, ord ?? 'fro', (dims as [number, number] | undefined) ?? [-2, -1], keepdim);
  }
  check(typeof ord !== 'string', 'linalg.norm', () => `ord '${String(ord)}' is a matrix norm; give two axes in dim.`);
  check(dims === undefined || ord === undefined || dims.length === 1, 'linalg.norm', () => `a vector norm with ord ${ord} needs one axis in dim, got ${JSON.stringify(dims)}.`);
  return vectorNorm(x, (ord as number | undefined) ?? 2, dims, keepdim);
}
