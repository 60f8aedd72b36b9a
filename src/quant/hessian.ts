// The second-moment matrix of a Linear layer's inputs, H = 2/n · Σ x xᵀ over n input rows x ∈ ℝᵏ:
// the Hessian of the layer-wise reconstruction loss ||W X − Ŵ X||² that GPTQ minimises (the factor 2
// is the derivative's; GPTQ's result does not depend on H's scale). Accumulated in float64 on the
// host from calibration inputs of any shape [..., k] (every leading index is one row).
import { TesseraError, fmtShape } from '../core/errors.js';
import { isFloating } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';

export class Hessian {
  /** Σ x xᵀ (upper triangle kept up to date; the lower one is filled when read). */
  readonly #sum: Float64Array;
  #rows = 0;

  /** An empty accumulator for inputs of `k` features. */
  constructor(readonly k: number) {
    if (!Number.isInteger(k) || k < 1) throw new TesseraError(`Hessian: the number of input features must be a positive integer, got ${k}.`);
    this.#sum = new Float64Array(k * k);
  }

  /** Input rows seen so far (n). */
  get samples(): number {
    return this.#rows;
  }

  /**
   * A Hessian given as a k × k matrix (row-major values or a [k, k] tensor), e.g. one computed
   * elsewhere; it is used as it is (only its upper triangle is read).
   */
  static fromMatrix(matrix: ArrayLike<number> | Tensor, k?: number): Hessian {
    const values = isTensor(matrix) ? matrix.data() : matrix;
    const size = isTensor(matrix) ? (matrix.rank === 2 && matrix.shape[0] === matrix.shape[1] ? matrix.shape[0]! : -1) : k ?? Math.round(Math.sqrt(values.length));
    if (size < 1 || values.length !== size * size) {
      const what = isTensor(matrix) ? `a tensor of shape ${fmtShape(matrix.shape)}` : `${values.length} values`;
      throw new TesseraError(`Hessian.fromMatrix: expected a square k × k matrix, got ${what}${k === undefined ? '' : ` for k = ${k}`}.`);
    }
    const h = new Hessian(size);
    // Stored as a sum over 2 rows, so that matrix() = 2/2 · sum gives it back unscaled.
    for (let i = 0; i < size * size; i++) h.#sum[i] = values[i]!;
    h.#rows = 2;
    return h;
  }

  /** The Hessian of inputs given as one tensor or a list of them (each of shape [..., k]). */
  static fromInputs(inputs: Tensor | readonly Tensor[]): Hessian {
    const list = isTensor(inputs) ? [inputs] : inputs;
    if (list.length === 0) throw new TesseraError('Hessian.fromInputs: no inputs given; pass at least one tensor of calibration inputs of shape [..., k].');
    const first = list[0]!;
    if (first.rank === 0) throw new TesseraError(`Hessian.fromInputs: inputs must have a feature axis ([..., k]); got a scalar.`);
    const h = new Hessian(first.shape[first.rank - 1]!);
    for (const x of list) h.add(x);
    return h;
  }

  /** Adds the rows of x (shape [..., k]) to the sum. */
  add(x: Tensor): void {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.k) {
      throw new TesseraError(`Hessian.add: input of shape ${fmtShape(x.shape)} should have ${this.k} features in its last dimension.`);
    }
    if (!isFloating(x.dtype)) throw new TesseraError(`Hessian.add: input of shape ${fmtShape(x.shape)} is ${x.dtype}; calibration inputs are floating point.`);
    this.addRows(x.data(), x.size / this.k);
  }

  /**
   * Adds `rows` rows of k values (row-major). Rows are taken 64 at a time, transposed, so that each
   * entry of the sum gets one dot product per block; features that are 0 in a whole block (dead
   * pixels, ReLU units that never fire) are skipped.
   */
  addRows(values: ArrayLike<number>, rows: number): void {
    const k = this.k, sum = this.#sum;
    if (values.length !== rows * k) throw new TesseraError(`Hessian.addRows: ${values.length} values do not make ${rows} rows of ${k}.`);
    const B = 64;
    const cols = new Float64Array(k * B);
    const active = new Int32Array(k);
    for (let r0 = 0; r0 < rows; r0 += B) {
      const b = Math.min(B, rows - r0);
      cols.fill(0);
      for (let t = 0; t < b; t++) {
        const base = (r0 + t) * k;
        for (let j = 0; j < k; j++) cols[j * B + t] = values[base + j]!;
      }
      let m = 0;
      for (let j = 0; j < k; j++) {
        for (let t = 0; t < b; t++) {
          if (cols[j * B + t] !== 0) { active[m++] = j; break; } // NaN too: it must reach H to be reported
        }
      }
      for (let a = 0; a < m; a++) {
        const i = active[a]!, ci = i * B, base = i * k;
        for (let c = a; c < m; c++) {
          const j = active[c]!, cj = j * B;
          let s0 = 0, s1 = 0;
          for (let t = 0; t < b; t += 2) {
            s0 += cols[ci + t]! * cols[cj + t]!;
            s1 += cols[ci + t + 1]! * cols[cj + t + 1]!;
          }
          sum[base + j]! += s0 + s1;
        }
      }
    }
    this.#rows += rows;
  }

  /** H = 2/n · Σ x xᵀ as a full symmetric k × k row-major matrix (a copy). */
  matrix(): Float64Array {
    const k = this.k;
    if (this.#rows === 0) throw new TesseraError(`Hessian: no inputs were added (k = ${k}); run calibration inputs through the layer first.`);
    const out = new Float64Array(k * k);
    const f = 2 / this.#rows;
    for (let i = 0; i < k; i++) {
      for (let j = i; j < k; j++) {
        const v = this.#sum[i * k + j]! * f;
        out[i * k + j] = v;
        out[j * k + i] = v;
      }
    }
    return out;
  }
}

function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

/**
 * vᵀ H v for a symmetric k × k row-major H, reading its upper triangle only:
 * Σ_i v_i (H_ii v_i + 2 Σ_{j>i} H_ij v_j). With H ∝ X Xᵀ this is ||v X||², the squared output a
 * weight row v gives on the calibration inputs (float64, two accumulators for speed).
 */
export function quadraticForm(h: Float64Array, v: Float64Array, k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) {
    const hRow = i * k, vi = v[i]!;
    if (vi === 0) continue;
    let a0 = 0, a1 = 0, j = i + 1;
    for (; j + 2 <= k; j += 2) {
      a0 += h[hRow + j]! * v[j]!;
      a1 += h[hRow + j + 1]! * v[j + 1]!;
    }
    if (j < k) a0 += h[hRow + j]! * v[j]!;
    s += vi * (h[hRow + i]! * vi + 2 * (a0 + a1));
  }
  return s;
}
