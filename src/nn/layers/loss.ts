// Loss modules (torch.nn.L1Loss, ...): each holds its options (reduction, margin, weight, ...) and
// calls the loss function of src/ops/nn with them, so module and function cannot disagree.
import type { Tensor } from '../../core/tensor.js';
import {
  binaryCrossEntropy, binaryCrossEntropyWithLogits, cosineEmbeddingLoss, crossEntropy, gaussianNllLoss, hingeEmbeddingLoss,
  huberLoss, klDiv, l1Loss, marginRankingLoss, mseLoss, multilabelSoftMarginLoss, multiMarginLoss, nllLoss, poissonNllLoss,
  smoothL1Loss, softMarginLoss, tripletMarginLoss,
  type BceWithLogitsOptions, type BinaryCrossEntropyOptions, type CosineEmbeddingLossOptions, type CrossEntropyOptions,
  type ElementwiseLossOptions, type GaussianNllLossOptions, type HuberLossOptions, type KlDivOptions, type MarginLossOptions,
  type MultilabelSoftMarginLossOptions, type MultiMarginLossOptions, type NllLossOptions, type PoissonNllLossOptions,
  type SmoothL1LossOptions, type TripletMarginLossOptions,
} from '../../ops/nn/index.js';
import { Module } from '../module.js';

/** A loss of (input, target) configured once. */
abstract class PairLoss<O> extends Module<[Tensor, Tensor]> {
  constructor(readonly options: O) { super(); }
}

export class L1Loss extends PairLoss<ElementwiseLossOptions> {
  constructor(options: ElementwiseLossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return l1Loss(input, target, this.options); }
}
export class MSELoss extends PairLoss<ElementwiseLossOptions> {
  constructor(options: ElementwiseLossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return mseLoss(input, target, this.options); }
}
export class SmoothL1Loss extends PairLoss<SmoothL1LossOptions> {
  constructor(options: SmoothL1LossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return smoothL1Loss(input, target, this.options); }
}
export class HuberLoss extends PairLoss<HuberLossOptions> {
  constructor(options: HuberLossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return huberLoss(input, target, this.options); }
}
export class KLDivLoss extends PairLoss<KlDivOptions> {
  constructor(options: KlDivOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return klDiv(input, target, this.options); }
}
export class BCELoss extends PairLoss<BinaryCrossEntropyOptions> {
  constructor(options: BinaryCrossEntropyOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return binaryCrossEntropy(input, target, this.options); }
}
export class BCEWithLogitsLoss extends PairLoss<BceWithLogitsOptions> {
  constructor(options: BceWithLogitsOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return binaryCrossEntropyWithLogits(input, target, this.options); }
}
export class CrossEntropyLoss extends PairLoss<CrossEntropyOptions> {
  constructor(options: CrossEntropyOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return crossEntropy(input, target, this.options); }
}
export class NLLLoss extends PairLoss<NllLossOptions> {
  constructor(options: NllLossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return nllLoss(input, target, this.options); }
}
export class HingeEmbeddingLoss extends PairLoss<MarginLossOptions> {
  constructor(options: MarginLossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return hingeEmbeddingLoss(input, target, this.options); }
}
export class SoftMarginLoss extends PairLoss<ElementwiseLossOptions> {
  constructor(options: ElementwiseLossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return softMarginLoss(input, target, this.options); }
}
export class MultiLabelSoftMarginLoss extends PairLoss<MultilabelSoftMarginLossOptions> {
  constructor(options: MultilabelSoftMarginLossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return multilabelSoftMarginLoss(input, target, this.options); }
}
export class MultiMarginLoss extends PairLoss<MultiMarginLossOptions> {
  constructor(options: MultiMarginLossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return multiMarginLoss(input, target, this.options); }
}
export class PoissonNLLLoss extends PairLoss<PoissonNllLossOptions> {
  constructor(options: PoissonNllLossOptions = {}) { super(options); }
  override forward(input: Tensor, target: Tensor): Tensor { return poissonNllLoss(input, target, this.options); }
}

/** forward(input, target, variance). */
export class GaussianNLLLoss extends Module<[Tensor, Tensor, Tensor]> {
  constructor(readonly options: GaussianNllLossOptions = {}) { super(); }
  override forward(input: Tensor, target: Tensor, variance: Tensor): Tensor { return gaussianNllLoss(input, target, variance, this.options); }
}
/** forward(input1, input2, target ±1). */
export class MarginRankingLoss extends Module<[Tensor, Tensor, Tensor]> {
  constructor(readonly options: MarginLossOptions = {}) { super(); }
  override forward(input1: Tensor, input2: Tensor, target: Tensor): Tensor { return marginRankingLoss(input1, input2, target, this.options); }
}
/** forward(input1, input2, target ±1). */
export class CosineEmbeddingLoss extends Module<[Tensor, Tensor, Tensor]> {
  constructor(readonly options: CosineEmbeddingLossOptions = {}) { super(); }
  override forward(input1: Tensor, input2: Tensor, target: Tensor): Tensor { return cosineEmbeddingLoss(input1, input2, target, this.options); }
}
/** forward(anchor, positive, negative). */
export class TripletMarginLoss extends Module<[Tensor, Tensor, Tensor]> {
  constructor(readonly options: TripletMarginLossOptions = {}) { super(); }
  override forward(anchor: Tensor, positive: Tensor, negative: Tensor): Tensor { return tripletMarginLoss(anchor, positive, negative, this.options); }
}
