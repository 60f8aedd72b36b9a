// Normalization layers as functions: layerNorm, rmsNorm and batchNorm (which also updates its
// running statistics in place while training, like torch.nn.functional.batch_norm).
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import { Tensor } from '../../core/tensor.js';
import { noGrad } from '../../autodiff/mode.js';
import { add, sub, mul, rsqrt, cast } from '../elementwise.js';
import { mean, sum } from '../reduce.js';
import { reshape, detach } from '../shape.js';
import { copy_ } from '../inplace.js';
import { autocastOperands, bind } from '../dispatch.js';

/**
 * Whether the argument after the fixed ones is an options object (or absent) rather than the first
 * of PyTorch's positional parameters: a Tensor, or undefined followed by more arguments.
 */
function isOptions<O>(arg: O | Tensor | undefined, argumentCount: number): arg is O | undefined {
  return !(arg instanceof Tensor) && !(arg === undefined && argumentCount > 3);
}

/** The object without its undefined entries (so exactOptionalPropertyTypes holds). */
function withDefined<O extends object>(o: { [K in keyof O]: O[K] | undefined }): O {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as O;
}

function checkFloat(op: string, x: Tensor): void {
  check(isFloating(x.dtype), op, () => `needs a floating input, got ${x.dtype}; cast it with .float().`);
}

function trailingAxes(op: string, x: Tensor, normalizedShape: readonly number[]): number[] {
  const k = normalizedShape.length;
  check(k >= 1 && k <= x.rank && normalizedShape.every((d, i) => d === x.shape[x.rank - k + i]), op, () =>
    `normalizedShape ${fmtShape(normalizedShape)} must equal the last ${k} dim(s) of the input, whose shape is ${fmtShape(x.shape)}.`);
  return normalizedShape.map((_, i) => x.rank - k + i);
}

function checkAffine(op: string, name: string, p: Tensor | undefined, shape: readonly number[]): void {
  if (p === undefined) return;
  check(p.rank === shape.length && p.shape.every((d, i) => d === shape[i]), op, () =>
    `${name} must have shape ${fmtShape(shape)}, got ${fmtShape(p.shape)}.`);
}

export interface LayerNormOptions {
  weight?: Tensor;
  bias?: Tensor;
  /** Added to the variance (default 1e-5). */
  eps?: number;
}

/** (x − mean) / sqrt(var + eps) · weight + bias over the last dims (biased variance, like PyTorch). */
export function layerNorm(x: Tensor, normalizedShape: readonly number[], opts?: LayerNormOptions): Tensor;
/** PyTorch's positional form: layerNorm(x, normalizedShape, weight, bias, eps). */
export function layerNorm(x: Tensor, normalizedShape: readonly number[], weight: Tensor | undefined, bias?: Tensor, eps?: number): Tensor;
export function layerNorm(x0: Tensor, normalizedShape: readonly number[], optsOrWeight?: LayerNormOptions | Tensor, bias?: Tensor, eps?: number): Tensor {
  const given: LayerNormOptions = isOptions(optsOrWeight, arguments.length) ? optsOrWeight ?? {} : withDefined({ weight: optsOrWeight, bias, eps });
  checkFloat('layerNorm', x0);
  const [x, weight, biasIn] = autocastOperands('layerNorm', [x0, given.weight, given.bias] as const);
  const opts: LayerNormOptions = weight === given.weight && biasIn === given.bias ? given : withDefined({ weight, bias: biasIn, eps: given.eps });
  const axes = trailingAxes('layerNorm', x, normalizedShape);
  checkAffine('layerNorm', 'weight', opts.weight, normalizedShape);
  checkAffine('layerNorm', 'bias', opts.bias, normalizedShape);
  let out = normalizeRows(x, axes, opts.eps ?? 1e-5);
  if (opts.weight !== undefined) out = mul(out, opts.weight);
  if (opts.bias !== undefined) out = add(out, opts.bias);
  return out;
}

/**
 * (x − mean) · rsqrt(var + eps) over the trailing `axes`: the layerNormCore primitive on rows of
 * their combined length (one pass per row on fast backends; a free view for contiguous x). Rows of
 * length 0, which the primitive refuses, keep the composite (its mean of nothing is NaN).
 */
function normalizeRows(x: Tensor, axes: readonly number[], eps: number): Tensor {
  const length = axes.reduce((n, a) => n * x.shape[a]!, 1);
  if (length === 0) {
    const centered = sub(x, mean(x, [...axes], true));
    return mul(centered, rsqrt(add(mean(mul(centered, centered), [...axes], true), eps)));
  }
  if (axes.length === 1) return bind('layerNormCore', [x], { eps });
  const rows = reshape(x, [...x.shape.slice(0, x.rank - axes.length), length]);
  return reshape(bind('layerNormCore', [rows], { eps }), [...x.shape]);
}

export interface RmsNormOptions {
  weight?: Tensor;
  /** Added to the mean square (default: the dtype's machine epsilon, like torch.nn.functional.rms_norm). */
  eps?: number;
}

const machineEpsilon = (x: Tensor): number => (x.dtype === 'float64' ? 2 ** -52 : x.dtype === 'float16' ? 2 ** -10 : x.dtype === 'bfloat16' ? 2 ** -7 : 2 ** -23);

/** x / sqrt(mean(x²) + eps) · weight over the last dims. */
export function rmsNorm(x: Tensor, normalizedShape: readonly number[], opts?: RmsNormOptions): Tensor;
/** PyTorch's positional form: rmsNorm(x, normalizedShape, weight, eps). */
export function rmsNorm(x: Tensor, normalizedShape: readonly number[], weight: Tensor | undefined, eps?: number): Tensor;
export function rmsNorm(x0: Tensor, normalizedShape: readonly number[], optsOrWeight?: RmsNormOptions | Tensor, eps?: number): Tensor {
  const given: RmsNormOptions = isOptions(optsOrWeight, arguments.length) ? optsOrWeight ?? {} : withDefined({ weight: optsOrWeight, eps });
  checkFloat('rmsNorm', x0);
  const [x, weight] = autocastOperands('rmsNorm', [x0, given.weight] as const);
  const opts: RmsNormOptions = weight === given.weight ? given : withDefined({ weight, eps: given.eps });
  const axes = trailingAxes('rmsNorm', x, normalizedShape);
  checkAffine('rmsNorm', 'weight', opts.weight, normalizedShape);
  const out = mul(x, rsqrt(add(mean(mul(x, x), axes, true), opts.eps ?? machineEpsilon(x))));
  return opts.weight === undefined ? out : mul(out, opts.weight);
}

export interface BatchNormOptions {
  weight?: Tensor;
  bias?: Tensor;
  /** Use the batch's statistics (and update the running ones) rather than the running ones. */
  training?: boolean;
  /** running = (1 − momentum)·running + momentum·batch (default 0.1). */
  momentum?: number;
  eps?: number;
}

/**
 * Batch normalization of x [N, C, *] per channel C. In training mode it normalizes with the batch
 * mean and biased variance and, when running statistics are given, updates them in place (without
 * recording gradients) using the unbiased variance, as PyTorch does. In eval mode it uses them.
 */
export function batchNorm(x: Tensor, runningMean: Tensor | undefined, runningVar: Tensor | undefined, opts?: BatchNormOptions): Tensor;
/** PyTorch's positional form: batchNorm(x, runningMean, runningVar, weight, bias, training, momentum, eps). */
export function batchNorm(
  x: Tensor, runningMean: Tensor | undefined, runningVar: Tensor | undefined,
  weight: Tensor | undefined, bias?: Tensor, training?: boolean, momentum?: number, eps?: number,
): Tensor;
export function batchNorm(
  x0: Tensor, runningMean: Tensor | undefined, runningVar: Tensor | undefined,
  optsOrWeight?: BatchNormOptions | Tensor, biasArg?: Tensor, trainingArg?: boolean, momentumArg?: number, epsArg?: number,
): Tensor {
  const given: BatchNormOptions = isOptions(optsOrWeight, arguments.length - 1)
    ? optsOrWeight ?? {}
    : withDefined({ weight: optsOrWeight, bias: biasArg, training: trainingArg, momentum: momentumArg, eps: epsArg });
  checkFloat('batchNorm', x0);
  const [x, weight, biasIn] = autocastOperands('batchNorm', [x0, given.weight, given.bias] as const);
  const opts: BatchNormOptions = weight === given.weight && biasIn === given.bias ? given : withDefined({ ...given, weight, bias: biasIn });
  check(x.rank >= 2, 'batchNorm', () => `input must be [N, C, *], got shape ${fmtShape(x.shape)}.`);
  const c = x.shape[1]!;
  for (const [name, p] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', opts.weight], ['bias', opts.bias]] as const) {
    checkAffine('batchNorm', name, p, [c]);
  }
  const training = opts.training ?? false;
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const axes = [0, ...Array.from({ length: x.rank - 2 }, (_, i) => i + 2)];
  const perChannel = (v: Tensor): Tensor => reshape(v, [c, ...new Array<number>(x.rank - 2).fill(1)]);
  let meanC: Tensor, varC: Tensor;
  if (training) {
    const n = x.size / c;
    check(n > 1, 'batchNorm', () => `training needs more than one value per channel, got input shape ${fmtShape(x.shape)}.`);
    meanC = mean(x, axes, true);
    const centered = sub(x, meanC);
    const sumSq = sum(mul(centered, centered), axes, true);
    varC = mul(sumSq, 1 / n);
    noGrad(() => {
      if (runningMean !== undefined) {
        copy_(runningMean, add(mul(runningMean, 1 - momentum), mul(cast(reshape(detach(meanC), [c]), runningMean.dtype), momentum)));
      }
      if (runningVar !== undefined) {
        const unbiased = mul(reshape(detach(sumSq), [c]), 1 / (n - 1));
        copy_(runningVar, add(mul(runningVar, 1 - momentum), mul(cast(unbiased, runningVar.dtype), momentum)));
      }
    });
  } else {
    check(runningMean !== undefined && runningVar !== undefined, 'batchNorm', () =>
      'eval mode (training: false) needs runningMean and runningVar; pass them, or use training: true to normalize with batch statistics.');
    meanC = perChannel(runningMean);
    varC = perChannel(runningVar);
  }
  let out = mul(sub(x, meanC), rsqrt(add(varC, eps)));
  if (opts.weight !== undefined) out = mul(out, perChannel(opts.weight));
  if (opts.bias !== undefined) out = add(out, perChannel(opts.bias));
  return out;
}
