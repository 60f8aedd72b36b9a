// nn.PixelShuffle and nn.PixelUnshuffle: the rearrangements of src/ops/nn/pixel-shuffle.ts as layers.
import type { Tensor } from '../../core/tensor.js';
import { pixelShuffle, pixelUnshuffle } from '../../ops/nn/index.js';
import { Module } from '../module.js';

export class PixelShuffle extends Module {
  constructor(readonly upscaleFactor: number) { super(); }
  override forward(x: Tensor): Tensor { return pixelShuffle(x, this.upscaleFactor); }
}

export class PixelUnshuffle extends Module {
  constructor(readonly downscaleFactor: number) { super(); }
  override forward(x: Tensor): Tensor { return pixelUnshuffle(x, this.downscaleFactor); }
}
