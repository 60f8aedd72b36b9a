// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022): rounds a Linear weight to the quantization grid
// one input column at a time, and after each column spreads its rounding error over the columns not
// yet rounded, so that the layer's output on calibration inputs X moves as little as possible:
// it minimises ||W X − Ŵ X||² greedily, column by column, with H = 2/n · X Xᵀ (hessian.ts).
//
// For column j, with U the upper Cholesky factor of H⁻¹ (H⁻¹ = Uᵀ U, cholesky.ts):
//
//   q_j = quant(w_j)                          (round to nearest on the column's grid)
//   e_j = (w_j − q_j) / U_jj
//   w_c ← w_c − e_j · U_jc    for every later column c > j
//
// which is the optimal-brain-surgeon update restricted to the columns still free. The rest follows
// the paper and its reference code:
//
// - dampening: λ = dampening · mean(diag H) is added to H's diagonal (default 0.01, GPTQ's percdamp);
// - dead inputs: a feature that was 0 in every calibration row has H_ii = 0; its H_ii is set to 1 and
//   its weight column to 0 (it never contributes to the output seen in calibration);
// - lazy batches: within a block of blockSize columns (default 128) updates go to the block only;
//   the columns after it get the whole block's errors at once when it ends (the same numbers,
//   fewer passes over the weight);
// - act-order (actOrder: true): columns are rounded in order of decreasing H_ii (the inputs with the
//   most energy first, while the most freedom is left to compensate), then put back in place.
//
// The grid is the library's own (scheme.ts, calibrate.ts), so the result is an ordinary
// QuantizedTensor (int8 / int4, per-tensor, per-channel or group-wise, symmetric or affine) that
// QuantizedLinear, its fused kernels, jit and the checkpoints take as they take quantize()'s.
// Per-tensor and per-channel grids are computed once, from the weight before any update. Group
// grids are computed when the group's first column comes up, from its columns as updated by every
// earlier column (lazy blocks are whole groups, so no pending update is missed: the result does not
// depend on blockSize). GPTQ's reference code takes a group's range from weights that still lack
// the updates of earlier columns of the same block when the group size is smaller than the block
// (it reads the block's columns from W, not from the block being updated); this is the
// unblocked algorithm's behaviour instead.
//
// Act-order with groups: groups here are contiguous runs of input features (the storage format
// has no per-column group index, GPTQ's g_idx), so act-order uses "static groups": every group's
// grid is fixed up front from the (dead-zeroed) weight, before any update, and each column, in
// whatever order it is rounded, uses the grid of the group it belongs to in the original order.
// (With g_idx, groups would be formed in act-order instead and kernels would gather scales per
// column; tessera's kernels do not.)
//
// Everything runs in float64 on the host: it is an offline, once-per-model conversion.
// Cost: O(k³) for the factorisation plus O(rows · k²) for the updates.
import { TesseraError, fmtShape } from '../core/errors.js';
import { isFloating } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { calibrate, quantizeValue, sliceLayout } from './calibrate.js';
import { upperCholeskyOfInverse } from './cholesky.js';
import { Hessian, quadraticForm } from './hessian.js';
import { dequantize, fromCodes, quantize } from './quantize.js';
import type { QuantizedTensor } from './quantized-tensor.js';
import { groupsPerRow, quantRange, resolveSpec, type QuantizeOptions, type QuantSpec } from './scheme.js';

export interface GptqOptions extends QuantizeOptions {
  /**
   * λ = dampening · mean(diag H) is added to H's diagonal before it is inverted (default 0.01,
   * GPTQ's percdamp). Raise it (0.1) when H is singular: few calibration rows, constant inputs.
   */
  dampening?: number;
  /** Columns per lazy batch (default 128; with groups, rounded to whole groups). Speed only. */
  blockSize?: number;
  /** Round columns in order of decreasing H_ii, then put them back (default false). */
  actOrder?: boolean;
  /**
   * Groups only: compute every group's grid up front from the weight before any update (default:
   * true with actOrder, which needs it; false otherwise, grids from the updated weights).
   */
  staticGroups?: boolean;
  /** The layer's name, for error messages (gptqQuantizeModel passes the dotted module name). */
  name?: string;
}

export interface GptqResult {
  /** The GPTQ-rounded weight (codes, scales, zero points) on the weight's backend. */
  quantized: QuantizedTensor;
  /**
   * ||W X − Ŵ X||² / ||W X||² on the calibration inputs, computed from H as
   * Σ_rows δᵀ H δ / Σ_rows wᵀ H w with δ = w − ŵ (H before dampening).
   */
  outputError: number;
  /** The same for round to nearest (quantize() with the same grid options), for comparison. */
  rtnOutputError: number;
  /** Input features with H_ii = 0 (always 0 in calibration): their weight columns were set to 0. */
  deadColumns: number;
  /** The λ added to H's diagonal. */
  damping: number;
  /** The order in which the columns were rounded (original indices; 0, 1, 2, … without actOrder). */
  order: Int32Array;
}

/** What gptqQuantize takes as calibration: inputs of the layer (one tensor or several, each [..., k]), or a Hessian. */
export type GptqCalibration = Hessian | Tensor | readonly Tensor[];

/**
 * GPTQ-quantizes a Linear weight [outFeatures, inFeatures] given the layer's calibration inputs (or
 * their Hessian, see Hessian.fromMatrix). Options are quantize()'s, with scheme defaulting to
 * 'per-channel' (one grid per output feature) as in quantizeModel, plus the GPTQ ones.
 */
export function gptqQuantize(weight: Tensor, calibration: GptqCalibration, options: GptqOptions = {}): GptqResult {
  const { dampening = 0.01, blockSize = 128, actOrder = false, staticGroups, name, ...qopts } = options;
  const where = name === undefined ? `weight ${fmtShape(weight.shape)}` : `layer '${name}' (weight ${fmtShape(weight.shape)})`;
  const fail = (msg: string): never => { throw new TesseraError(`gptqQuantize: ${where}: ${msg}`); };
  if (weight.rank !== 2) fail('the weight must be 2-D [outFeatures, inFeatures].');
  if (!isFloating(weight.dtype)) fail(`the weight is ${weight.dtype}; GPTQ quantizes floating-point weights.`);
  if (!(Number.isFinite(dampening) && dampening >= 0)) fail(`dampening must be a finite number ≥ 0, got ${dampening} (GPTQ's default is 0.01 of the mean diagonal).`);
  if (!(Number.isInteger(blockSize) && blockSize >= 1)) fail(`blockSize must be a positive integer, got ${blockSize} (default 128).`);
  const [rows, k] = weight.shape as [number, number];
  const spec = resolveSpec('gptqQuantize', weight.shape, weight.dtype, { scheme: 'per-channel', axis: 0, ...qopts });
  if (spec.scheme === 'per-channel' && spec.axis !== 0) {
    fail(`per-channel GPTQ keeps one grid per output feature (axis 0); got axis ${spec.axis}. Use axis 0 or scheme 'group'.`);
  }
  const grouped = spec.scheme === 'group';
  const isStatic = grouped && (staticGroups ?? actOrder);
  if (grouped && actOrder && !isStatic) {
    fail('actOrder with groups needs staticGroups (the default): groups are contiguous input features, and the storage format has no per-column group index (g_idx) for act-order groups.');
  }
  const calibrationName = qopts.calibration ?? 'minmax';
  const percentile = qopts.percentile ?? 99.99;

  const hessian = calibration instanceof Hessian ? calibration : Hessian.fromInputs(calibration as Tensor | readonly Tensor[]);
  if (hessian.k !== k) {
    fail(`the Hessian is ${hessian.k} × ${hessian.k} but the weight has ${k} input features; accumulate it from this layer's inputs ([..., ${k}]).`);
  }
  const h0 = hessian.matrix();
  for (let i = 0; i < h0.length; i++) {
    if (!Number.isFinite(h0[i]!)) {
      fail(`the Hessian of its calibration inputs holds ${h0[i]} at (${Math.floor(i / k)}, ${i % k}): the inputs reaching this layer hold NaN or infinity. ` +
        'Check the calibration data and the layers before it (a diverged model, unnormalised inputs).');
    }
  }
  const w0 = weight.data();
  for (let i = 0; i < w0.length; i++) {
    if (!Number.isFinite(w0[i]!)) fail(`the weight holds ${w0[i]} at (${Math.floor(i / k)}, ${i % k}); quantize a finite weight.`);
  }

  // Dead inputs: H_ii = 1, weight column 0.
  const h = Float64Array.from(h0);
  const w = Float64Array.from(w0);
  let deadColumns = 0;
  for (let i = 0; i < k; i++) {
    if (h[i * k + i] !== 0) continue;
    deadColumns++;
    h[i * k + i] = 1;
    for (let r = 0; r < rows; r++) w[r * k + i] = 0;
  }

  // The column order, and H and W permuted to it.
  const order = Int32Array.from({ length: k }, (_, i) => i);
  if (actOrder) order.sort((a, b) => h[b * k + b]! - h[a * k + a]! || a - b);
  const hp = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) hp[i * k + j] = h[order[i]! * k + order[j]!]!;
  const wp = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) wp[r * k + j] = w[r * k + order[j]!]!;

  let meanDiag = 0;
  for (let i = 0; i < k; i++) meanDiag += hp[i * k + i]!;
  meanDiag /= k;
  const damping = dampening * meanDiag;
  for (let i = 0; i < k; i++) hp[i * k + i]! += damping;
  const chol = upperCholeskyOfInverse(hp, k);
  if (!chol.ok) {
    fail(`H + λI is not positive definite (pivot ${chol.value.toExponential(3)} at input feature ${order[chol.pivot]}, λ = ${damping.toExponential(3)} = ` +
      `${dampening} × mean diagonal ${meanDiag.toExponential(3)}; ${hessian.samples} calibration rows for ${k} features). ` +
      'Raise dampening (e.g. 0.1), or calibrate with more, more varied inputs; a Hessian given with Hessian.fromMatrix must be symmetric positive semi-definite.');
  }
  const u = (chol as { u: Float64Array }).u;

  // Grids: scales and zero points per slice of the spec (rows × groups, rows, or 1).
  const { qmin, qmax } = quantRange(spec.bits, spec.symmetric);
  const groupSize = spec.groupSize;
  const nGroups = grouped ? groupsPerRow(spec, k) : 1;
  const scales = new Float32Array(grouped ? rows * nGroups : spec.scheme === 'per-channel' ? rows : 1);
  const zeroPoints = new Int32Array(scales.length);
  if (!grouped || isStatic) {
    const p = calibrate(w, sliceLayout(spec, [rows, k]), spec, calibrationName, percentile);
    scales.set(p.scales);
    zeroPoints.set(p.zeroPoints);
  }
  const sliceOfRow = (r: number, column: number): number =>
    grouped ? r * nGroups + Math.floor(column / groupSize) : spec.scheme === 'per-channel' ? r : 0;
  /** Grids of group g of every row from the current (updated) columns; without act-order wp is in the original order. */
  const gridsOfGroup = (g: number): void => {
    const start = g * groupSize, len = Math.min(groupSize, k - start);
    const values = new Float64Array(rows * len);
    for (let r = 0; r < rows; r++) for (let c = 0; c < len; c++) values[r * len + c] = wp[r * k + start + c]!;
    const rowSpec: QuantSpec = { ...spec, scheme: 'per-channel', axis: 0, groupSize: 0 };
    const p = calibrate(values, sliceLayout(rowSpec, [rows, len]), rowSpec, calibrationName, percentile);
    for (let r = 0; r < rows; r++) {
      scales[r * nGroups + g] = p.scales[r]!;
      zeroPoints[r * nGroups + g] = p.zeroPoints[r]!;
    }
  };

  // Blocks of whole groups when grids follow the updates, so a group's grid sees all its updates.
  const block = grouped && !isStatic ? Math.max(groupSize, Math.floor(blockSize / groupSize) * groupSize) : blockSize;
  const codes = new Int32Array(rows * k);
  const errors = new Float64Array(rows * block);
  for (let i1 = 0; i1 < k; i1 += block) {
    const i2 = Math.min(i1 + block, k), width = i2 - i1;
    for (let j = i1; j < i2; j++) {
      if (grouped && !isStatic && j % groupSize === 0) gridsOfGroup(j / groupSize);
      const column = order[j]!;
      const d = u[j * k + j]!;
      for (let r = 0; r < rows; r++) {
        const s = sliceOfRow(r, column);
        const scale = scales[s]!, zp = zeroPoints[s]!;
        const x = wp[r * k + j]!;
        const q = quantizeValue(x, scale, zp, qmin, qmax);
        codes[r * k + column] = q;
        const e = (x - (q - zp) * scale) / d;
        errors[r * block + (j - i1)] = e;
        if (e === 0) continue;
        const wRow = r * k, uRow = j * k;
        for (let c = j + 1; c < i2; c++) wp[wRow + c]! -= e * u[uRow + c]!;
      }
    }
    // The columns after the block get the block's errors at once.
    if (i2 < k) {
      for (let r = 0; r < rows; r++) {
        const wRow = r * k;
        for (let jj = 0; jj < width; jj++) {
          const e = errors[r * block + jj]!;
          if (e === 0) continue;
          const uRow = (i1 + jj) * k;
          for (let c = i2; c < k; c++) wp[wRow + c]! -= e * u[uRow + c]!;
        }
      }
    }
  }

  const quantized = fromCodes(codes, scales, spec.symmetric ? undefined : zeroPoints, [rows, k], spec, weight.backend);
  const deq = hostValues(dequantize(quantized, { dtype: 'float64' }));
  const rtn = quantize(weight, { ...qopts, bits: spec.bits, scheme: spec.scheme, axis: spec.axis, groupSize: grouped ? groupSize : undefined, symmetric: spec.symmetric });
  const rtnDeq = hostValues(dequantize(rtn, { dtype: 'float64' }));
  rtn.dispose();
  const [outputError, rtnOutputError] = relativeOutputErrors(w0, [deq, rtnDeq], h0, rows, k);
  return { quantized, outputError: outputError!, rtnOutputError: rtnOutputError!, deadColumns, damping, order };
}

/** A tensor's values on the host; the tensor is disposed. */
function hostValues(x: Tensor): ArrayLike<number> {
  const v = x.data();
  x.dispose();
  return v;
}

/**
 * ||W X − Ŵ X||² / ||W X||² from H ∝ X Xᵀ (any positive scale): Σ_r (w_r − ŵ_r)ᵀ H (w_r − ŵ_r) / Σ_r w_rᵀ H w_r
 * for row-major W, Ŵ [rows, k] and a symmetric H [k, k] (its upper triangle is read); one value per
 * Ŵ given (0 where Ŵ = W).
 */
export function relativeOutputErrors(w: ArrayLike<number>, wHats: ReadonlyArray<ArrayLike<number>>, h: Float64Array, rows: number, k: number): number[] {
  const v = new Float64Array(k);
  let den = 0;
  const nums = wHats.map(() => 0);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < k; c++) v[c] = w[r * k + c]!;
    den += quadraticForm(h, v, k);
    wHats.forEach((wHat, m) => {
      for (let c = 0; c < k; c++) v[c] = w[r * k + c]! - wHat[r * k + c]!;
      nums[m]! += quadraticForm(h, v, k);
    });
  }
  return nums.map((num) => (num === 0 ? 0 : num / den));
}
