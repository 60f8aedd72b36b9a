// Public surface of nn: modules, containers, layers and initialisations (`import { nn } from 'tessera'`).
export { Module, Parameter, type StateDict, type LoadStateDictResult, type SummaryRow, type AnyModule } from './module.js';
export { Sequential, ModuleList, ModuleDict } from './containers.js';
export * as init from './init.js';
export { assignValues } from './inplace.js';
export { Linear, Identity, Flatten, type LayerOptions, type LinearOptions } from './layers/linear.js';
export { ReLU, GELU, SiLU, Tanh, Sigmoid, LeakyReLU } from './layers/activation.js';
export { Softmax, LogSoftmax } from './layers/activation.js';
export {
  ELU, SELU, CELU, Mish, Hardtanh, ReLU6, Hardswish, Hardsigmoid, PReLU, Softsign, Tanhshrink, Softshrink, Hardshrink,
  Threshold, GLU, Softmin, LogSigmoid, Softplus,
} from './layers/activation.js';
export {
  L1Loss, MSELoss, SmoothL1Loss, HuberLoss, KLDivLoss, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, NLLLoss,
  MarginRankingLoss, HingeEmbeddingLoss, SoftMarginLoss, MultiLabelSoftMarginLoss, CosineEmbeddingLoss,
  TripletMarginLoss, PoissonNLLLoss, GaussianNLLLoss, MultiMarginLoss,
} from './layers/loss.js';
export { CosineSimilarity, PairwiseDistance } from './layers/distance.js';
export { PixelShuffle, PixelUnshuffle } from './layers/pixel-shuffle.js';
export { Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, type ConvLayerOptions, type ConvTransposeLayerOptions } from './layers/conv.js';
export { MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d } from './layers/pool.js';
export { Upsample } from './layers/upsample.js';
export { BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm, RMSNorm, type BatchNormLayerOptions, type LayerNormLayerOptions, type RmsNormLayerOptions } from './layers/normalization.js';
export { Dropout, Embedding, type EmbeddingLayerOptions } from './layers/dropout.js';
export { MultiheadAttention, KVCache, type MultiheadAttentionOptions, type AttentionCallOptions } from './layers/attention.js';
export { TransformerBlock, GPT, sampleToken, flattenLogits, type TransformerBlockOptions, type GptConfig, type SampleOptions } from './layers/transformer.js';
export { RNN, LSTM, GRU, type RecurrentOptions } from './layers/recurrent.js';
export { MoE, withAuxLoss, routeTopK, type MoEOptions, type RoutingStats } from './layers/moe.js';
