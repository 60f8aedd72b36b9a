// Pooling layers: MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool1d/2d/3d.
import type { Tensor } from '../../core/tensor.js';
import { adaptiveAvgPoolNd, avgPoolNd, maxPoolNd, type AvgPoolOptions, type MaxPoolOptions, type SpatialArg } from '../../ops/nn/index.js';
import { Module } from '../module.js';

class MaxPoolNd extends Module {
  constructor(readonly dims: number, readonly kernelSize: SpatialArg, readonly options: MaxPoolOptions = {}) { super(); }
  override forward(x: Tensor): Tensor { return maxPoolNd(`MaxPool${this.dims}d`, this.dims, x, this.kernelSize, this.options); }
}
export class MaxPool1d extends MaxPoolNd {
  constructor(kernelSize: SpatialArg, options: MaxPoolOptions = {}) { super(1, kernelSize, options); }
}
export class MaxPool2d extends MaxPoolNd {
  constructor(kernelSize: SpatialArg, options: MaxPoolOptions = {}) { super(2, kernelSize, options); }
}
export class MaxPool3d extends MaxPoolNd {
  constructor(kernelSize: SpatialArg, options: MaxPoolOptions = {}) { super(3, kernelSize, options); }
}

class AvgPoolNd extends Module {
  constructor(readonly dims: number, readonly kernelSize: SpatialArg, readonly options: AvgPoolOptions = {}) { super(); }
  override forward(x: Tensor): Tensor { return avgPoolNd(`AvgPool${this.dims}d`, this.dims, x, this.kernelSize, this.options); }
}
export class AvgPool1d extends AvgPoolNd {
  constructor(kernelSize: SpatialArg, options: AvgPoolOptions = {}) { super(1, kernelSize, options); }
}
export class AvgPool2d extends AvgPoolNd {
  constructor(kernelSize: SpatialArg, options: AvgPoolOptions = {}) { super(2, kernelSize, options); }
}
export class AvgPool3d extends AvgPoolNd {
  constructor(kernelSize: SpatialArg, options: AvgPoolOptions = {}) { super(3, kernelSize, options); }
}

type OutputSize = number | readonly (number | null)[];
class AdaptiveAvgPoolNd extends Module {
  constructor(readonly dims: number, readonly outputSize: OutputSize) { super(); }
  override forward(x: Tensor): Tensor { return adaptiveAvgPoolNd(`AdaptiveAvgPool${this.dims}d`, this.dims, x, this.outputSize); }
}
export class AdaptiveAvgPool1d extends AdaptiveAvgPoolNd {
  constructor(outputSize: OutputSize) { super(1, outputSize); }
}
export class AdaptiveAvgPool2d extends AdaptiveAvgPoolNd {
  constructor(outputSize: OutputSize) { super(2, outputSize); }
}
export class AdaptiveAvgPool3d extends AdaptiveAvgPoolNd {
  constructor(outputSize: OutputSize) { super(3, outputSize); }
}
