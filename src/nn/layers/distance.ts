// nn.CosineSimilarity and nn.PairwiseDistance: the distance functions with their arguments fixed.
import type { Tensor } from '../../core/tensor.js';
import { cosineSimilarity, pairwiseDistance } from '../../ops/nn/index.js';
import { Module } from '../module.js';

export class CosineSimilarity extends Module<[Tensor, Tensor]> {
  constructor(readonly axis = 1, readonly eps = 1e-8) { super(); }
  override forward(x1: Tensor, x2: Tensor): Tensor { return cosineSimilarity(x1, x2, { axis: this.axis, eps: this.eps }); }
}

export class PairwiseDistance extends Module<[Tensor, Tensor]> {
  constructor(readonly p = 2, readonly eps = 1e-6, readonly keepdim = false) { super(); }
  override forward(x1: Tensor, x2: Tensor): Tensor { return pairwiseDistance(x1, x2, { p: this.p, eps: this.eps, keepdim: this.keepdim }); }
}
