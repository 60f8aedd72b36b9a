// Which ops autocast casts, and to what: the one table (PyTorch's autocast op lists, for the ops
// tessera has). docs/mixed-precision.md prints it.
//
// 'lower'   the op runs in the region's dtype (float16 or bfloat16): its floating inputs that are not
//           float64 are cast to it (a parameter once per region, see the weight cache in autocast.ts).
//           Matrix products, whose cost dominates and whose accumulation the hardware keeps in float32.
// 'float32' the op runs in float32: its float16/bfloat16 inputs are cast up. Reductions, exponentials,
//           normalizations and losses, whose results lose too much in a 8- or 11-bit mantissa.
// Ops in neither list (elementwise add/mul/relu/gelu, views, gathers, ...) run in their inputs'
// dtype; mixed inputs promote as usual (bfloat16 + float32 → float32).
//
// Keys are primitive names (checked in ops/dispatch.ts `bind`, so eager code, traced code and every
// composite built on them are covered: einsum lowers to matmul, the attention composite's matmuls
// and softmax, conv's im2col + matmul) and composite names (checked where the composite starts,
// through autocastOperands, so that e.g. a linear layer's bias add also stays in the region's dtype
// and a loss computes every step in float32, as PyTorch's single fused ops do).
export type AutocastPolicy = 'lower' | 'float32';

export interface AutocastRule {
  policy: AutocastPolicy;
  /** 'primitive': checked in bind; 'composite': checked at the composite's entry. */
  level: 'primitive' | 'composite';
  /** What it covers, in PyTorch's terms. */
  note: string;
}

export const AUTOCAST_RULES: Readonly<Record<string, AutocastRule>> = {
  // Lower precision.
  matmul: { policy: 'lower', level: 'primitive', note: 'matmul, mm, bmm, dot, outer, einsum contractions, attention composite products' },
  convDirect: { policy: 'lower', level: 'primitive', note: 'direct convolution kernel (with its bias)' },
  attention: { policy: 'lower', level: 'primitive', note: 'fused scaled-dot-product attention (softmax inside in float32, output in the region dtype)' },
  linear: { policy: 'lower', level: 'composite', note: 'nn.Linear: input, weight and bias' },
  conv: { policy: 'lower', level: 'composite', note: 'conv1d/2d/3d: input, weight and bias' },
  convTranspose: { policy: 'lower', level: 'composite', note: 'convTranspose1d/2d/3d: input, weight and bias' },
  // Float32.
  softmax: { policy: 'float32', level: 'primitive', note: 'softmax' },
  logSoftmax: { policy: 'float32', level: 'primitive', note: 'logSoftmax' },
  layerNormCore: { policy: 'float32', level: 'primitive', note: 'layer normalization kernel' },
  layerNormRstd: { policy: 'float32', level: 'primitive', note: 'layer normalization statistics' },
  sum: { policy: 'float32', level: 'primitive', note: 'sum, mean, var, norm (built on sum)' },
  prod: { policy: 'float32', level: 'primitive', note: 'prod' },
  cumsum: { policy: 'float32', level: 'primitive', note: 'cumsum' },
  exp: { policy: 'float32', level: 'primitive', note: 'exp' },
  expm1: { policy: 'float32', level: 'primitive', note: 'expm1' },
  log: { policy: 'float32', level: 'primitive', note: 'log' },
  log1p: { policy: 'float32', level: 'primitive', note: 'log1p' },
  pow: { policy: 'float32', level: 'primitive', note: 'pow' },
  rsqrt: { policy: 'float32', level: 'primitive', note: 'rsqrt' },
  layerNorm: { policy: 'float32', level: 'composite', note: 'layerNorm: input, weight and bias' },
  rmsNorm: { policy: 'float32', level: 'composite', note: 'rmsNorm: input and weight' },
  batchNorm: { policy: 'float32', level: 'composite', note: 'batchNorm: input, weight and bias (running statistics keep their dtype)' },
  crossEntropy: { policy: 'float32', level: 'composite', note: 'crossEntropy: logits (and probability targets, class weights)' },
  nllLoss: { policy: 'float32', level: 'composite', note: 'nllLoss' },
  mseLoss: { policy: 'float32', level: 'composite', note: 'mseLoss' },
  binaryCrossEntropyWithLogits: { policy: 'float32', level: 'composite', note: 'binaryCrossEntropyWithLogits' },
  // The other torch.nn.functional losses (src/ops/nn/losses-*.ts), all in float32 like PyTorch's autocast list.
  l1Loss: { policy: 'float32', level: 'composite', note: 'l1Loss' },
  smoothL1Loss: { policy: 'float32', level: 'composite', note: 'smoothL1Loss' },
  huberLoss: { policy: 'float32', level: 'composite', note: 'huberLoss' },
  poissonNllLoss: { policy: 'float32', level: 'composite', note: 'poissonNllLoss' },
  gaussianNllLoss: { policy: 'float32', level: 'composite', note: 'gaussianNllLoss: input, target and variance' },
  klDiv: { policy: 'float32', level: 'composite', note: 'klDiv' },
  binaryCrossEntropy: { policy: 'float32', level: 'composite', note: 'binaryCrossEntropy (on probabilities)' },
  marginRankingLoss: { policy: 'float32', level: 'composite', note: 'marginRankingLoss' },
  hingeEmbeddingLoss: { policy: 'float32', level: 'composite', note: 'hingeEmbeddingLoss' },
  softMarginLoss: { policy: 'float32', level: 'composite', note: 'softMarginLoss' },
  multilabelSoftMarginLoss: { policy: 'float32', level: 'composite', note: 'multilabelSoftMarginLoss' },
  multiMarginLoss: { policy: 'float32', level: 'composite', note: 'multiMarginLoss' },
  cosineEmbeddingLoss: { policy: 'float32', level: 'composite', note: 'cosineEmbeddingLoss' },
  tripletMarginLoss: { policy: 'float32', level: 'composite', note: 'tripletMarginLoss' },
};

/** The policy for an op name, or undefined when autocast leaves the op alone. */
export function autocastPolicyOf(op: string): AutocastPolicy | undefined {
  return Object.prototype.hasOwnProperty.call(AUTOCAST_RULES, op) ? AUTOCAST_RULES[op]!.policy : undefined;
}
