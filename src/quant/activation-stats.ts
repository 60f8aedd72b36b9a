// What AWQ needs to know about a Linear layer's calibration inputs, accumulated in float64 on the
// host from inputs of any shape [..., k] (every leading index is one row):
//
// - the mean magnitude of each input feature, a_j = mean |x_j| (AWQ's activation salience, the
//   base of its per-channel scales);
// - the second-moment matrix H = 2/n · Σ x xᵀ (hessian.ts), from which the output error of any
//   candidate weight on the calibration rows is Σ_rows δᵀ H δ, so the scale and clip searches never
//   keep the rows themselves (memory k², whatever the number of calibration tokens).
import { TesseraError, fmtShape } from '../core/errors.js';
import { isFloating } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';
import { Hessian } from './hessian.js';

export class ActivationStats {
  readonly hessian: Hessian;
  /** Σ |x_j| over the rows seen. */
  readonly #absSum: Float64Array;

  /** An empty accumulator for inputs of `k` features. */
  constructor(readonly k: number) {
    if (!Number.isInteger(k) || k < 1) throw new TesseraError(`ActivationStats: the number of input features must be a positive integer, got ${k}.`);
    this.hessian = new Hessian(k);
    this.#absSum = new Float64Array(k);
  }

  /** The statistics of inputs given as one tensor or a list of them (each of shape [..., k]). */
  static fromInputs(inputs: Tensor | readonly Tensor[]): ActivationStats {
    const list = inputs instanceof Tensor ? [inputs] : inputs;
    if (list.length === 0) throw new TesseraError('ActivationStats.fromInputs: no inputs given; pass at least one tensor of calibration inputs of shape [..., k].');
    const first = list[0]!;
    if (first.rank === 0) throw new TesseraError('ActivationStats.fromInputs: inputs must have a feature axis ([..., k]); got a scalar.');
    const stats = new ActivationStats(first.shape[first.rank - 1]!);
    for (const x of list) stats.add(x);
    return stats;
  }

  /** Input rows seen so far. */
  get samples(): number {
    return this.hessian.samples;
  }

  /** Adds the rows of x (shape [..., k]). */
  add(x: Tensor): void {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.k) {
      throw new TesseraError(`ActivationStats.add: input of shape ${fmtShape(x.shape)} should have ${this.k} features in its last dimension.`);
    }
    if (!isFloating(x.dtype)) throw new TesseraError(`ActivationStats.add: input of shape ${fmtShape(x.shape)} is ${x.dtype}; calibration inputs are floating point.`);
    const values = x.data();
    const k = this.k, rows = x.size / k, sum = this.#absSum;
    this.hessian.addRows(values, rows);
    for (let r = 0; r < rows; r++) {
      const base = r * k;
      for (let j = 0; j < k; j++) sum[j]! += Math.abs(values[base + j]!);
    }
  }

  /** a_j = mean |x_j| over the rows seen (a copy). */
  meanAbs(): Float64Array {
    const n = this.samples;
    if (n === 0) throw new TesseraError(`ActivationStats: no inputs were added (k = ${this.k}); run calibration inputs through the layer first.`);
    return Float64Array.from(this.#absSum, (s) => s / n);
  }
}
