// AWQ (Lin, Tang, Tang, Yang, Dang, Gan, Han 2023, "AWQ: Activation-aware Weight Quantization for
// LLM Compression and Acceleration"): before rounding a Linear weight, scale up its input columns
// that meet large activations, so that their weights land on a finer share of the grid, and divide
// the layer's input by the same factors so that the product does not change:
//
//   y = x Wᵀ = (x ⊙ s⁻¹) (W diag(s))ᵀ  ≈  (x ⊙ s⁻¹) Q(W diag(s))ᵀ
//
// with s = a^α per input feature, a_j = mean |x_j| over the calibration rows (activation-stats.ts),
// clamped below at 1e-4 and normalised by √(max s · min s) as AutoAWQ does. α is searched over a
// grid (default i/20, i = 0 … 19: AutoAWQ's n_grid) for the smallest output error on the
// calibration rows, ||X Wᵀ − (X ⊙ s⁻¹) Q(W diag(s))ᵀ||², computed in float64 as Σ_rows δᵀ H δ with
// δ = w − ŵ, H = 2/n · XᵀX (one k × k matrix, whatever the number of rows) and ŵ the weight the
// quantized layer applies: dequant(Q)_j · fp32(1/s_j). α = 0 gives s = 1 exactly, which is round
// to nearest, and the search takes the first α of the smallest error, so AWQ's error on the
// calibration rows never exceeds RTN's (before clipping, which only lowers it further).
//
// Then, optionally (clip, default on with min/max ranges, as AutoAWQ's apply_clip), each slice of
// the grid (a group, or a row for per-channel, the tensor for per-tensor) tries ranges shrunk to
// ratio · max|W diag(s)| for ratio = 1 − i/20, i = 0 … 9 (AutoAWQ's n_grid 20, max_shrink 0.5):
// its values are clamped to [−m, m] and the slice's grid is the min/max one of the clamped values.
// AutoAWQ scores each group by its own share of the output, (x_g · (w_g − q_g))², ignoring what the
// other groups of the row do; here the score is the exact change of the layer's output error (the
// cross terms with the row's other groups included, through H δ), slices taken in order, so the
// total error can only fall.
//
// Where this differs from AutoAWQ: AutoAWQ searches one s for the layers that share an input (q, k
// and v after a LayerNorm) on the output of the whole block (attention, MLP), and folds s⁻¹ into
// the LayerNorm or the previous Linear; tessera has no map of which module feeds which, so each
// Linear gets its own s, scored on its own output, and s⁻¹ stays on the layer as an input scale
// (QuantizedLinear's `inputScale`, AutoAWQ's ScaledActivation: one elementwise multiply). AutoAWQ's
// "duo scaling" (s = a^α / w^(1−α), its newer default) is not done: s = a^α is the paper's rule.
// AutoAWQ skips the clip search for q/k projections; here `clip` is per call, not per name.
//
// The grid is the library's (scheme.ts, calibrate.ts): the result is an ordinary QuantizedTensor
// of W diag(s), which QuantizedLinear's fused kernels, jit and checkpoints take as they take
// quantize()'s, plus the input scale. Everything runs in float64 on the host, once per model.
// Cost: O(grid · out · in²) for the α search, O(out · in²) for the clip search.
import { TesseraError, fmtShape } from '../core/errors.js';
import { isFloating } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { fromValues } from '../ops/creation.js';
import { ActivationStats } from './activation-stats.js';
import { calibrate, paramsOfRange, quantizeValue, sliceLayout, sliceOf } from './calibrate.js';
import { relativeOutputErrors } from './gptq.js';
import { quadraticForm } from './hessian.js';
import { dequantize, fromCodes, quantize } from './quantize.js';
import type { QuantizedTensor } from './quantized-tensor.js';
import { groupsPerRow, quantRange, resolveSpec, type QuantizeOptions, type QuantSpec } from './scheme.js';

export interface AwqOptions extends QuantizeOptions {
  /** α is searched over i / grid, i = 0 … grid − 1 (default 20: 0, 0.05, …, 0.95, AutoAWQ's n_grid). */
  grid?: number;
  /** Use this α (in [0, 1]) instead of searching; 0 gives s = 1, round to nearest. */
  alpha?: number;
  /**
   * After the scales, search a clipped range for each slice (group, row or tensor) that lowers the
   * output error (default: true with 'minmax' calibration; 'percentile' and 'mse' choose ranges
   * their own way and take no clip search).
   */
  clip?: boolean;
  /** Clip ratios tried: 1 − i / clipGrid for i < maxShrink · clipGrid (defaults 20 and 0.5: 1, 0.95, …, 0.55). */
  clipGrid?: number;
  maxShrink?: number;
  /** The layer's name, for error messages (awqQuantizeModel passes the dotted module name). */
  name?: string;
}

export interface AwqResult {
  /** Q(W diag(s)): the codes, scales and zero points of the scaled weight, on the weight's backend. */
  quantized: QuantizedTensor;
  /** fp32(1 / s), float32 [inFeatures] on the weight's backend: the layer multiplies its input by it. */
  inputScale: Tensor;
  /** The scales s (float64). */
  scales: Float64Array;
  /** The chosen α. */
  alpha: number;
  /** The α values tried and the relative output error of each (before clipping). */
  alphas: Float64Array;
  alphaErrors: Float64Array;
  /**
   * ||W X − Ŵ X||² / ||W X||² on the calibration inputs for the weight the layer applies,
   * Ŵ = dequant(Q) diag(fp32(1/s)), after clipping.
   */
  outputError: number;
  /** The same for round to nearest (quantize() with the same grid options), for comparison. */
  rtnOutputError: number;
  /** Slices whose range the clip search shrank. */
  clippedSlices: number;
}

/** What awqQuantize takes as calibration: inputs of the layer (one tensor or several, each [..., k]), or their statistics. */
export type AwqCalibration = ActivationStats | Tensor | readonly Tensor[];

/** AutoAWQ's lower bound on a scale before normalisation (a feature that is always 0 gets it). */
const MIN_SCALE = 1e-4;

/**
 * AWQ-quantizes a Linear weight [outFeatures, inFeatures] given the layer's calibration inputs (or
 * their ActivationStats). Options are quantize()'s, with scheme defaulting to 'per-channel' (one grid
 * per output feature) as in quantizeModel, plus the AWQ ones. Build the layer with
 * `new QuantizedLinear(in, out, r.quantized, bias, { inputScale: r.inputScale })`.
 */
export function awqQuantize(weight: Tensor, calibration: AwqCalibration, options: AwqOptions = {}): AwqResult {
  const { grid = 20, alpha: fixedAlpha, clip: clipOption, clipGrid = 20, maxShrink = 0.5, name, ...qopts } = options;
  const where = name === undefined ? `weight ${fmtShape(weight.shape)}` : `layer '${name}' (weight ${fmtShape(weight.shape)})`;
  const fail = (msg: string): never => { throw new TesseraError(`awqQuantize: ${where}: ${msg}`); };
  if (weight.rank !== 2) fail('the weight must be 2-D [outFeatures, inFeatures].');
  if (!isFloating(weight.dtype)) fail(`the weight is ${weight.dtype}; AWQ quantizes floating-point weights.`);
  if (!(Number.isInteger(grid) && grid >= 1)) fail(`grid must be a positive integer (the number of α values tried, i / grid), got ${grid} (AutoAWQ's default is 20).`);
  if (fixedAlpha !== undefined && !(Number.isFinite(fixedAlpha) && fixedAlpha >= 0 && fixedAlpha <= 1)) {
    fail(`alpha must be a number in [0, 1] (the exponent of s = a^α), got ${fixedAlpha}; leave it out to search it.`);
  }
  if (!(Number.isInteger(clipGrid) && clipGrid >= 1)) fail(`clipGrid must be a positive integer, got ${clipGrid} (default 20).`);
  if (!(Number.isFinite(maxShrink) && maxShrink >= 0 && maxShrink < 1)) fail(`maxShrink must be in [0, 1) (the largest fraction of a range the clip search removes), got ${maxShrink} (default 0.5).`);
  const [rows, k] = weight.shape as [number, number];
  const spec = resolveSpec('awqQuantize', weight.shape, weight.dtype, { scheme: 'per-channel', axis: 0, ...qopts });
  if (spec.scheme === 'per-channel' && spec.axis !== 0) {
    fail(`per-channel AWQ keeps one grid per output feature (axis 0); got axis ${spec.axis}. A grid per input feature absorbs any input scaling, ` +
      'so AWQ could not change anything: use axis 0 or scheme \'group\'.');
  }
  const calibrationName = qopts.calibration ?? 'minmax';
  const percentile = qopts.percentile ?? 99.99;
  const clip = clipOption ?? calibrationName === 'minmax';
  if (clip && calibrationName !== 'minmax') {
    fail(`clip: true needs calibration 'minmax'; '${calibrationName}' already chooses each range its own way. Drop one of them.`);
  }

  const stats = calibration instanceof ActivationStats ? calibration : ActivationStats.fromInputs(calibration as Tensor | readonly Tensor[]);
  if (stats.k !== k) {
    fail(`the calibration inputs have ${stats.k} features but the weight has ${k} input features; collect them from this layer's inputs ([..., ${k}]).`);
  }
  const h = stats.hessian.matrix();
  const a = stats.meanAbs();
  for (let i = 0; i < h.length; i++) {
    if (!Number.isFinite(h[i]!)) {
      fail(`the statistics of its calibration inputs hold ${h[i]} at (${Math.floor(i / k)}, ${i % k}): the inputs reaching this layer hold NaN or infinity ` +
        '(or values so large that their squares overflow). Check the calibration data and the layers before it.');
    }
  }
  const w = weight.data();
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i]!)) fail(`the weight holds ${w[i]} at (${Math.floor(i / k)}, ${i % k}); quantize a finite weight.`);
  }

  const layout = sliceLayout(spec, [rows, k]);
  const { qmin, qmax } = quantRange(spec.bits, spec.symmetric);
  /** The weight the layer applies for scales s: W diag(s) rounded, times fp32(1/s). */
  const candidate = (s: Float64Array) => {
    const inv = Float32Array.from(s, (v) => 1 / v);
    const ws = new Float64Array(rows * k);
    for (let i = 0; i < ws.length; i++) ws[i] = w[i]! * s[i % k]!;
    const p = calibrate(ws, layout, spec, calibrationName, percentile);
    const codes = new Int32Array(rows * k);
    const wHat = new Float64Array(rows * k);
    for (let i = 0; i < ws.length; i++) {
      const sl = sliceOf(layout, i), scale = p.scales[sl]!, zp = p.zeroPoints[sl]!;
      const q = quantizeValue(ws[i]!, scale, zp, qmin, qmax);
      codes[i] = q;
      wHat[i] = (q - zp) * scale * inv[i % k]!;
    }
    return { s, inv, ws, codes, scales: p.scales, zeroPoints: p.zeroPoints, wHat };
  };
  /** Σ_rows (w − ŵ)ᵀ H (w − ŵ): the squared output error on the calibration rows (up to H's factor 2/n). */
  const errorOf = (wHat: Float64Array): number => {
    const v = new Float64Array(k);
    let e = 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < k; c++) v[c] = w[r * k + c]! - wHat[r * k + c]!;
      e += quadraticForm(h, v, k);
    }
    return e;
  };
  const v = new Float64Array(k);
  let norm = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < k; c++) v[c] = w[r * k + c]!;
    norm += quadraticForm(h, v, k);
  }

  const alphas = fixedAlpha === undefined ? Float64Array.from({ length: grid }, (_, i) => i / grid) : Float64Array.of(fixedAlpha);
  const alphaErrors = new Float64Array(alphas.length);
  let best: ReturnType<typeof candidate> | undefined, bestError = Infinity, alpha = alphas[0]!;
  alphas.forEach((al, i) => {
    const c = candidate(scalesOf(a, al));
    const e = errorOf(c.wHat);
    alphaErrors[i] = e === 0 ? 0 : e / norm;
    // Strictly smaller: ties keep the smaller α (α = 0 is round to nearest), as AutoAWQ.
    if (e < bestError || best === undefined) { best = c; bestError = e; alpha = al; }
  });
  const chosen = best!;
  const clippedSlices = clip ? clipSearch(w, chosen, h, rows, k, spec, clipGrid, maxShrink) : 0;

  const quantized = fromCodes(chosen.codes, chosen.scales, spec.symmetric ? undefined : chosen.zeroPoints, [rows, k], spec, weight.backend);
  const inputScale = fromValues(chosen.inv, [k], 'float32', { backend: weight.backend });
  const rtn = quantize(weight, { ...qopts, bits: spec.bits, scheme: spec.scheme, axis: spec.axis, groupSize: spec.scheme === 'group' ? spec.groupSize : undefined, symmetric: spec.symmetric });
  const rtnDeqTensor = dequantize(rtn, { dtype: 'float64' });
  const rtnDeq = rtnDeqTensor.data();
  rtnDeqTensor.dispose();
  rtn.dispose();
  const [outputError, rtnOutputError] = relativeOutputErrors(w, [chosen.wHat, rtnDeq], h, rows, k);
  return { quantized, inputScale, scales: chosen.s, alpha, alphas, alphaErrors, outputError: outputError!, rtnOutputError: rtnOutputError!, clippedSlices };
}

/** s = max(a^α, 1e-4) / √(max s · min s) (AutoAWQ's normalisation keeps the scales around 1). */
export function scalesOf(meanAbs: Float64Array, alpha: number): Float64Array {
  const s = new Float64Array(meanAbs.length);
  let hi = -Infinity, lo = Infinity;
  for (let j = 0; j < s.length; j++) {
    const x = Math.max(Math.pow(meanAbs[j]!, alpha), MIN_SCALE);
    s[j] = x;
    if (x > hi) hi = x;
    if (x < lo) lo = x;
  }
  const norm = Math.sqrt(hi * lo);
  for (let j = 0; j < s.length; j++) s[j]! /= norm;
  return s;
}

interface Candidate {
  inv: Float32Array; ws: Float64Array; codes: Int32Array; scales: Float32Array; zeroPoints: Int32Array; wHat: Float64Array;
}

/**
 * The clip search (see the module comment), in place on `c`: for each slice in order, the shrink
 * ratio whose clamped range changes the output error Σ_rows δᵀ H δ (δ = w − ŵ) the most downwards,
 * if any does. With D = δ H kept up to date, changing δ by Δ on the slice's columns J changes a
 * row's error by 2 Δ·D_J + Δᵀ H_JJ Δ. Returns the number of slices clipped.
 */
function clipSearch(w: ArrayLike<number>, c: Candidate, h: Float64Array, rows: number, k: number, spec: QuantSpec,
  clipGrid: number, maxShrink: number): number {
  const { qmin, qmax } = quantRange(spec.bits, spec.symmetric);
  // D = δ H (H symmetric, full).
  const d = new Float64Array(rows * k);
  const delta = new Float64Array(k);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < k; i++) delta[i] = w[r * k + i]! - c.wHat[r * k + i]!;
    for (let i = 0; i < k; i++) {
      const di = delta[i]!;
      if (di === 0) continue;
      const hRow = i * k, dRow = r * k;
      for (let j = 0; j < k; j++) d[dRow + j]! += di * h[hRow + j]!;
    }
  }
  // Slices as (rows r0..r1, columns a..b, index into scales): a group, a row, or the whole tensor.
  const slices: Array<[number, number, number, number, number]> = [];
  if (spec.scheme === 'group') {
    const g = groupsPerRow(spec, k);
    for (let r = 0; r < rows; r++) for (let j = 0; j < g; j++) slices.push([r, r + 1, j * spec.groupSize, Math.min((j + 1) * spec.groupSize, k), r * g + j]);
  } else if (spec.scheme === 'per-channel') {
    for (let r = 0; r < rows; r++) slices.push([r, r + 1, 0, k, r]);
  } else {
    slices.push([0, rows, 0, k, 0]);
  }
  const steps = Math.floor(maxShrink * clipGrid);
  let clipped = 0;
  for (const [r0, r1, a, b, index] of slices) {
    const len = b - a;
    let m0 = 0;
    for (let r = r0; r < r1; r++) for (let j = a; j < b; j++) m0 = Math.max(m0, Math.abs(c.ws[r * k + j]!));
    if (m0 === 0) continue;
    let bestChange = 0, bestCodes: Int32Array | undefined, bestScale = 0, bestZp = 0;
    const codes = new Int32Array((r1 - r0) * len);
    const diff = new Float64Array(len);
    for (let i = 1; i < steps; i++) {
      const m = (1 - i / clipGrid) * m0;
      let lo = Infinity, hi = -Infinity;
      for (let r = r0; r < r1; r++) {
        for (let j = a; j < b; j++) {
          const x = Math.min(Math.max(c.ws[r * k + j]!, -m), m);
          if (x < lo) lo = x;
          if (x > hi) hi = x;
        }
      }
      const { scale, zeroPoint } = paramsOfRange(lo, hi, spec);
      let change = 0;
      for (let r = r0; r < r1; r++) {
        for (let j = a; j < b; j++) {
          const x = Math.min(Math.max(c.ws[r * k + j]!, -m), m);
          const q = quantizeValue(x, scale, zeroPoint, qmin, qmax);
          codes[(r - r0) * len + j - a] = q;
          // δ' − δ = ŵ − ŵ'.
          diff[j - a] = c.wHat[r * k + j]! - (q - zeroPoint) * scale * c.inv[j]!;
        }
        let linear = 0, quad = 0;
        for (let p = 0; p < len; p++) {
          const dp = diff[p]!;
          if (dp === 0) continue;
          linear += dp * d[r * k + a + p]!;
          const hRow = (a + p) * k + a;
          let s = 0;
          for (let q = 0; q < len; q++) s += h[hRow + q]! * diff[q]!;
          quad += dp * s;
        }
        change += 2 * linear + quad;
      }
      if (change < bestChange) {
        bestChange = change;
        bestCodes = Int32Array.from(codes);
        bestScale = scale;
        bestZp = zeroPoint;
      }
    }
    if (bestCodes === undefined) continue;
    clipped++;
    c.scales[index] = bestScale;
    c.zeroPoints[index] = bestZp;
    for (let r = r0; r < r1; r++) {
      for (let j = a; j < b; j++) {
        const q = bestCodes[(r - r0) * len + j - a]!;
        const wHat = (q - bestZp) * bestScale * c.inv[j]!;
        const dj = c.wHat[r * k + j]! - wHat;
        c.codes[r * k + j] = q;
        c.wHat[r * k + j] = wHat;
        if (dj === 0) continue;
        const hRow = j * k, dRow = r * k;
        for (let i = 0; i < k; i++) d[dRow + i]! += dj * h[hRow + i]!;
      }
    }
  }
  return clipped;
}
