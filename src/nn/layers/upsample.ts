// Upsample (torch.nn.Upsample): a layer around ops' interpolate, for [N, C, *spatial] inputs.
import type { Tensor } from '../../core/tensor.js';
import { interpolate, type InterpolateOptions } from '../../ops/nn/index.js';
import { Module } from '../module.js';

export class Upsample extends Module {
  /** `options`: size or scaleFactor, mode (default 'nearest'), alignCorners, as interpolate takes them. */
  constructor(readonly options: InterpolateOptions) { super(); }
  override forward(x: Tensor): Tensor { return interpolate(x, this.options); }
}
