// Normalization layers: BatchNorm1d/2d/3d (running statistics, train/eval), LayerNorm, RMSNorm.
// Parameter and buffer names follow PyTorch's state dicts (weight, bias, running_mean, running_var,
// num_batches_tracked).
import { defaultFloatDType } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { noGrad } from '../../autodiff/mode.js';
import { ones, zeros, full } from '../../ops/creation.js';
import { batchNorm, layerNorm, rmsNorm } from '../../ops/nn/index.js';
import { assignValues } from '../inplace.js';
import { Module, Parameter } from '../module.js';
import type { LayerOptions } from './linear.js';

export interface BatchNormLayerOptions extends Omit<LayerOptions, 'generator'> {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

class BatchNormNd extends Module {
  weight: Parameter | undefined;
  bias: Parameter | undefined;
  running_mean: Tensor | undefined;
  running_var: Tensor | undefined;
  num_batches_tracked: Tensor | undefined;
  readonly eps: number;
  readonly momentum: number;

  constructor(readonly inputRanks: readonly number[], readonly numFeatures: number, options: BatchNormLayerOptions = {}) {
    super();
    check(Number.isInteger(numFeatures) && numFeatures > 0, this.constructor.name, () => `numFeatures must be a positive integer, got ${numFeatures}.`);
    const create = { dtype: options.dtype ?? defaultFloatDType(), backend: options.backend } as const;
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    const affine = options.affine ?? true;
    this.weight = affine ? new Parameter(ones([numFeatures], create)) : undefined;
    this.bias = affine ? new Parameter(zeros([numFeatures], create)) : undefined;
    const track = options.trackRunningStats ?? true;
    this.running_mean = this.registerBuffer('running_mean', track ? zeros([numFeatures], create) : undefined);
    this.running_var = this.registerBuffer('running_var', track ? ones([numFeatures], create) : undefined);
    this.num_batches_tracked = this.registerBuffer('num_batches_tracked', track ? full([], 0, { dtype: 'int32', backend: options.backend }) : undefined);
  }

  override forward(x: Tensor): Tensor {
    check(this.inputRanks.includes(x.rank) && x.shape[1] === this.numFeatures, this.constructor.name, () =>
      `expects input of rank ${this.inputRanks.join(' or ')} with ${this.numFeatures} channels in dim 1, got shape ${fmtShape(x.shape)}.`);
    // Batch statistics in training mode, and always when no running statistics are tracked.
    const useBatch = this.training || this.running_mean === undefined;
    if (this.training && this.num_batches_tracked !== undefined) {
      const tracked = this.num_batches_tracked;
      noGrad(() => assignValues(tracked, [tracked.item() + 1]));
    }
    return batchNorm(x, this.running_mean, this.running_var, {
      ...(this.weight ? { weight: this.weight } : {}), ...(this.bias ? { bias: this.bias } : {}),
      training: useBatch, momentum: this.momentum, eps: this.eps,
    });
  }
}

/** Over [N, C] or [N, C, L]. */
export class BatchNorm1d extends BatchNormNd {
  constructor(numFeatures: number, options: BatchNormLayerOptions = {}) { super([2, 3], numFeatures, options); }
}
/** Over [N, C, H, W]. */
export class BatchNorm2d extends BatchNormNd {
  constructor(numFeatures: number, options: BatchNormLayerOptions = {}) { super([4], numFeatures, options); }
}
/** Over [N, C, D, H, W]. */
export class BatchNorm3d extends BatchNormNd {
  constructor(numFeatures: number, options: BatchNormLayerOptions = {}) { super([5], numFeatures, options); }
}

export interface LayerNormLayerOptions extends Omit<LayerOptions, 'generator'> {
  eps?: number;
  elementwiseAffine?: boolean;
  bias?: boolean;
}

export class LayerNorm extends Module {
  weight: Parameter | undefined;
  bias: Parameter | undefined;
  readonly normalizedShape: number[];
  readonly eps: number;

  constructor(normalizedShape: number | readonly number[], options: LayerNormLayerOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.eps = options.eps ?? 1e-5;
    const create = { dtype: options.dtype ?? defaultFloatDType(), backend: options.backend } as const;
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine ? new Parameter(ones(this.normalizedShape, create)) : undefined;
    this.bias = affine && (options.bias ?? true) ? new Parameter(zeros(this.normalizedShape, create)) : undefined;
  }

  override forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, { ...(this.weight ? { weight: this.weight } : {}), ...(this.bias ? { bias: this.bias } : {}), eps: this.eps });
  }
}

export interface RmsNormLayerOptions extends Omit<LayerOptions, 'generator'> {
  /** Default: the dtype's machine epsilon (PyTorch's default). */
  eps?: number;
  elementwiseAffine?: boolean;
}

export class RMSNorm extends Module {
  weight: Parameter | undefined;
  readonly normalizedShape: number[];

  constructor(normalizedShape: number | readonly number[], readonly options: RmsNormLayerOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    const create = { dtype: options.dtype ?? defaultFloatDType(), backend: options.backend } as const;
    this.weight = (options.elementwiseAffine ?? true) ? new Parameter(ones(this.normalizedShape, create)) : undefined;
  }

  override forward(x: Tensor): Tensor {
    return rmsNorm(x, this.normalizedShape, { ...(this.weight ? { weight: this.weight } : {}), ...(this.options.eps !== undefined ? { eps: this.options.eps } : {}) });
  }
}
