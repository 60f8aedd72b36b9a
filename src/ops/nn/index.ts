// Neural-network ops (torch.nn.functional's counterparts), each a composite of primitives.
export { conv1d, conv2d, conv3d, convNd, convTranspose1d, convTranspose2d, convTranspose3d, convTransposeNd, type ConvOptions, type ConvTransposeOptions } from './conv.js';
export { setConvAlgorithm, convAlgorithmChoices, clearConvAlgorithmChoices, type ConvAlgorithm, type ConvPass } from './conv-algorithm.js';
export {
  maxPool1d, maxPool2d, maxPool3d, avgPool1d, avgPool2d, avgPool3d, maxPoolNd, avgPoolNd,
  adaptiveAvgPool1d, adaptiveAvgPool2d, adaptiveAvgPool3d, adaptiveAvgPoolNd, type MaxPoolOptions, type AvgPoolOptions,
} from './pool.js';
export { im2col, col2im, type PatchOptions } from './im2col.js';
export { type SpatialArg } from './window.js';
export { softmax, logSoftmax, type SoftmaxOptions } from './softmax.js';
export { layerNorm, rmsNorm, batchNorm, type LayerNormOptions, type RmsNormOptions, type BatchNormOptions } from './normalization.js';
export { dropout, type DropoutOptions } from './dropout.js';
export { embedding, type EmbeddingOptions } from './embedding.js';
export {
  crossEntropy, nllLoss, mseLoss, binaryCrossEntropyWithLogits,
  type Reduction, type NllLossOptions, type CrossEntropyOptions, type ElementwiseLossOptions, type BceWithLogitsOptions,
} from './loss.js';
// Activations beyond relu/gelu/silu/softplus (those are elementwise ops); logSigmoid lives with the losses that use it.
export {
  elu, selu, celu, mish, hardtanh, relu6, hardswish, hardsigmoid, prelu, softsign, tanhshrink, softshrink, hardshrink,
  threshold, glu, softmin,
} from './activations.js';
export { logSigmoid } from './loss.js';
export {
  l1Loss, smoothL1Loss, huberLoss, poissonNllLoss, gaussianNllLoss,
  type SmoothL1LossOptions, type HuberLossOptions, type PoissonNllLossOptions, type GaussianNllLossOptions,
} from './losses-regression.js';
export { klDiv, binaryCrossEntropy, type KlDivOptions, type BinaryCrossEntropyOptions } from './losses-probabilistic.js';
export {
  marginRankingLoss, hingeEmbeddingLoss, softMarginLoss, multilabelSoftMarginLoss, multiMarginLoss,
  type MarginLossOptions, type MultilabelSoftMarginLossOptions, type MultiMarginLossOptions,
} from './losses-margin.js';
export { cosineEmbeddingLoss, tripletMarginLoss, type CosineEmbeddingLossOptions, type TripletMarginLossOptions } from './losses-embedding.js';
export {
  cosineSimilarity, pairwiseDistance, cdist, normalize,
  type CosineSimilarityOptions, type PairwiseDistanceOptions, type CdistOptions, type CdistComputeMode, type NormalizeOptions,
} from './distance.js';
export { pixelShuffle, pixelUnshuffle } from './pixel-shuffle.js';
export { scaledDotProductAttention, setFusedAttention, type AttentionOptions } from './attention.js';
export { interpolate, type InterpolateMode, type InterpolateOptions } from './interpolate.js';
export { gridSample, affineGrid, type GridSampleMode, type GridSamplePadding, type GridSampleOptions } from './grid-sample.js';
