// torch.nn.functional coverage (activations elu … softmin, losses l1Loss … multiMarginLoss in every
// reduction, cosineSimilarity, pairwiseDistance, cdist in both compute modes, normalize,
// pixelShuffle/pixelUnshuffle) matches PyTorch, forward and backward, on the cases recorded by
// scripts/fixtures/torch_functional.py (test/fixtures/torch/functional.json) in float64 and float32,
// including the kinks where PyTorch's gradient is a convention. Also: forward mode agrees with
// reverse mode, the nn modules equal the functions, and bad arguments raise errors that name the
// op, the shapes or dtypes and the fix.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';
import { casesFor, readTorchFixture, runCase, type Op } from '../helpers/torch-fixture.js';
import { autocast } from '../../src/quant/index.js';

const fixture = readTorchFixture('functional.json');
type Reduction = t.Reduction;
const REDUCTIONS: Reduction[] = ['mean', 'sum', 'none'];

/** The tessera side of every case, by name (the part before '@dtype'). */
const ops: Record<string, Op> = {
  elu: (x) => t.elu(x),
  eluAlpha: (x) => t.elu(x, 0.5),
  eluKink: (x) => t.elu(x, 0.5),
  selu: (x) => t.selu(x),
  seluKink: (x) => t.selu(x),
  celu: (x) => t.celu(x),
  celuAlpha: (x) => t.celu(x, 2),
  celuAlphaZero: (x) => t.celu(x, 0),
  mish: (x) => t.mish(x),
  hardtanh: (x) => t.hardtanh(x),
  hardtanhKink: (x) => t.hardtanh(x),
  hardtanhRange: (x) => t.hardtanh(x, -2, 0.5),
  relu6: (x) => t.relu6(x),
  hardswish: (x) => t.hardswish(x),
  hardswishKink: (x) => t.hardswish(x),
  hardsigmoid: (x) => t.hardsigmoid(x),
  prelu: (x, w) => t.prelu(x, w),
  preluShared: (x, w) => t.prelu(x, w),
  prelu2d: (x, w) => t.prelu(x, w),
  preluMismatch: (x, w) => t.prelu(x, w),
  softsign: (x) => t.softsign(x),
  tanhshrink: (x) => t.tanhshrink(x),
  softshrink: (x) => t.softshrink(x),
  softshrinkLambd: (x) => t.softshrink(x, 1.2),
  softshrinkNegative: (x) => t.softshrink(x, -0.5),
  hardshrink: (x) => t.hardshrink(x),
  hardshrinkNegative: (x) => t.hardshrink(x, -0.3),
  threshold: (x) => t.threshold(x, 1, 0.5),
  glu: (x) => t.glu(x),
  gluAxis: (x) => t.glu(x, 1),
  gluOdd: (x) => t.glu(x, 1),
  softmin: (x) => t.softmin(x, 1),
  logSigmoid: (x) => t.logSigmoid(x),
  eluInt: (x) => t.elu(x),
  mishInt: (x) => t.mish(x),
  hardswishInt: (x) => t.hardswish(x),
  hardsigmoidInt: (x) => t.hardsigmoid(x),
  softshrinkInt: (x) => t.softshrink(x),
  gluInt: (x) => t.glu(x),

  l1LossKink: (x, y) => t.l1Loss(x, y, { reduction: 'sum' }),
  smoothL1LossKink: (x, y) => t.smoothL1Loss(x, y, { reduction: 'sum', beta: 0.5 }),
  smoothL1LossBeta0: (x, y) => t.smoothL1Loss(x, y, { beta: 0 }),
  huberLossKink: (x, y) => t.huberLoss(x, y, { reduction: 'sum', delta: 0.5 }),
  huberLossDelta: (x, y) => t.huberLoss(x, y, { delta: 0.7 }),
  smoothL1LossNegativeBeta: (x, y) => t.smoothL1Loss(x, y, { beta: -1 }),
  huberLossZeroDelta: (x, y) => t.huberLoss(x, y, { delta: 0 }),
  l1LossBadReduction: (x, y) => t.l1Loss(x, y, { reduction: 'avg' as Reduction }),
  poissonNllLossFull: (x, y) => t.poissonNllLoss(x, y, { full: true, reduction: 'none' }),
  poissonNllLossRate: (x, y) => t.poissonNllLoss(x, y, { logInput: false, reduction: 'sum' }),
  poissonNllLossRateFull: (x, y) => t.poissonNllLoss(x, y, { logInput: false, full: true, eps: 1e-3 }),
  gaussianNllLossFull: (x, y, v) => t.gaussianNllLoss(x, y, v, { full: true }),
  gaussianNllLossShortVar: (x, y, v) => t.gaussianNllLoss(x, y, v, { reduction: 'none' }),
  gaussianNllLossUnitVar: (x, y, v) => t.gaussianNllLoss(x, y, v, { reduction: 'sum' }),
  gaussianNllLossSmallVar: (x, y, v) => t.gaussianNllLoss(x, y, v, { eps: 1e-2, reduction: 'sum' }),
  gaussianNllLossNegativeVar: (x, y, v) => t.gaussianNllLoss(x, y, v),
  gaussianNllLossVarShape: (x, y, v) => t.gaussianNllLoss(x, y, v),

  klDiv_batchmean: (x, y) => t.klDiv(x, y, { reduction: 'batchmean' }),
  klDivLogTarget: (x, y) => t.klDiv(x, y, { reduction: 'batchmean', logTarget: true }),
  klDivZeroTarget: (x, y) => t.klDiv(x, y.detach(), { reduction: 'sum' }),
  binaryCrossEntropyWeight: (x, y, w) => t.binaryCrossEntropy(x, y, { weight: w.detach() }),
  binaryCrossEntropyNearBoundary: (x, y) => t.binaryCrossEntropy(x, y, { reduction: 'sum' }),
  binaryCrossEntropySaturated: (x, y) => t.binaryCrossEntropy(x, y.detach(), { reduction: 'none' }),
  binaryCrossEntropyShape: (x, y) => t.binaryCrossEntropy(x, y),

  marginRankingLossDefault: (a, b, y) => t.marginRankingLoss(a, b, y),
  marginRankingLossKink: (a, b, y) => t.marginRankingLoss(a, b, y, { margin: 0.5, reduction: 'sum' }),
  marginRankingLossBroadcast: (a, b, y) => t.marginRankingLoss(a, b, y, { reduction: 'none' }),
  marginRankingLossRank: (a, b, y) => t.marginRankingLoss(a, b, y),
  hingeEmbeddingLossKink: (x, y) => t.hingeEmbeddingLoss(x, y, { margin: 0.5, reduction: 'none' }),
  hingeEmbeddingLossNegativeMargin: (x, y) => t.hingeEmbeddingLoss(x, y, { margin: -1 }),
  multilabelSoftMarginLossWeight: (x, y, w) => t.multilabelSoftMarginLoss(x, y, { weight: w }),
  multilabelSoftMarginLoss1d: (x, y) => t.multilabelSoftMarginLoss(x, y, { reduction: 'none' }),
  multiMarginLossP2: (x, y) => t.multiMarginLoss(x, y, { p: 2, margin: 0.5 }),
  multiMarginLossWeight: (x, y, w) => t.multiMarginLoss(x, y, { weight: w.detach(), reduction: 'sum' }),
  multiMarginLossKink: (x, y) => t.multiMarginLoss(x, y, { reduction: 'none' }),
  multiMarginLoss1d: (x, y) => t.multiMarginLoss(x, y, { reduction: 'none' }),
  multiMarginLoss1dBatch: (x, y) => t.multiMarginLoss(x, y, { reduction: 'none' }),
  multiMarginLossP3: (x, y) => t.multiMarginLoss(x, y, { p: 3 as 1 }),
  multiMarginLossTargetRange: (x, y) => t.multiMarginLoss(x, y),
  multiMarginLossTargetShape: (x, y) => t.multiMarginLoss(x, y),

  cosineEmbeddingLossMargin: (a, b, y) => t.cosineEmbeddingLoss(a, b, y, { margin: -0.4 }),
  cosineEmbeddingLoss1d: (a, b, y) => t.cosineEmbeddingLoss(a, b, y),
  cosineEmbeddingLossTarget2d: (a, b, y) => t.cosineEmbeddingLoss(a, b, y),
  cosineEmbeddingLossInputs1d: (a, b, y) => t.cosineEmbeddingLoss(a, b, y),
  tripletMarginLossP1: (a, p, n) => t.tripletMarginLoss(a, p, n, { p: 1, margin: 0.5 }),
  tripletMarginLossP3Swap: (a, p, n) => t.tripletMarginLoss(a, p, n, { p: 3, swap: true, eps: 1e-3 }),
  tripletMarginLossSwap: (a, p, n) => t.tripletMarginLoss(a, p, n, { swap: true, reduction: 'none' }),
  tripletMarginLossBroadcast: (a, p, n) => t.tripletMarginLoss(a, p, n, { reduction: 'none' }),
  tripletMarginLossRank: (a, p, n) => t.tripletMarginLoss(a, p, n),

  cosineSimilarity: (a, b) => t.cosineSimilarity(a, b),
  cosineSimilarityAxis: (a, b) => t.cosineSimilarity(a, b, { axis: -1 }),
  cosineSimilarityBroadcast: (a, b) => t.cosineSimilarity(a, b, { axis: 1 }),
  cosineSimilarityEps: (a, b) => t.cosineSimilarity(a, b, { axis: 1, eps: 0.1 }),
  cosineSimilarityInt: (a, b) => t.cosineSimilarity(a, b),
  pairwiseDistance: (a, b) => t.pairwiseDistance(a, b),
  pairwiseDistanceP1: (a, b) => t.pairwiseDistance(a, b, { p: 1 }),
  pairwiseDistanceP3: (a, b) => t.pairwiseDistance(a, b, { p: 3, eps: 1e-3 }),
  pairwiseDistanceInf: (a, b) => t.pairwiseDistance(a, b, { p: Infinity }),
  pairwiseDistanceKeepdim: (a, b) => t.pairwiseDistance(a, b, { keepdim: true }),
  pairwiseDistance1d: (a, b) => t.pairwiseDistance(a, b),
  cdist: (a, b) => t.cdist(a, b),
  cdistP1: (a, b) => t.cdist(a, b, { p: 1 }),
  cdistP0: (a, b) => t.cdist(a, b, { p: 0 }),
  cdistP3: (a, b) => t.cdist(a, b, { p: 3 }),
  cdistPHalf: (a, b) => t.cdist(a, b, { p: 0.5 }),
  cdistInf: (a, b) => t.cdist(a, b, { p: Infinity }),
  cdistInfTie: (a, b) => t.cdist(a, b, { p: Infinity }),
  cdistZero: (a, b) => t.cdist(a, b),
  cdistZeroP3: (a, b) => t.cdist(a, b, { p: 3 }),
  cdistBatched: (a, b) => t.cdist(a, b),
  cdistMatmul: (a, b) => t.cdist(a, b),
  cdistMatmulForced: (a, b) => t.cdist(a, b, { computeMode: 'use_mm_for_euclid_dist' }),
  cdistDirectForced: (a, b) => t.cdist(a, b, { computeMode: 'donot_use_mm_for_euclid_dist' }),
  cdistFeatures: (a, b) => t.cdist(a, b),
  cdistRank1: (a, b) => t.cdist(a, b),
  cdistNegativeP: (a, b) => t.cdist(a, b, { p: -1 }),
  normalize: (x) => t.normalize(x),
  normalizeP1: (x) => t.normalize(x, { p: 1, axis: -1 }),
  normalizeInf: (x) => t.normalize(x, { p: Infinity, axis: 0 }),
  normalizeZeroRow: (x) => t.normalize(x, { axis: 1, eps: 1e-3 }),
  normalizeInt: (x) => t.normalize(x),
  pixelShuffle: (x) => t.pixelShuffle(x, 2),
  pixelShuffle3: (x) => t.pixelShuffle(x, 3),
  pixelShuffleBatch: (x) => t.pixelShuffle(x, 2),
  pixelUnshuffle: (x) => t.pixelUnshuffle(x, 2),
  pixelUnshuffleBatch: (x) => t.pixelUnshuffle(x, 3),
  pixelShuffleChannels: (x) => t.pixelShuffle(x, 2),
  pixelShuffleRank: (x) => t.pixelShuffle(x, 2),
  pixelUnshuffleHeight: (x) => t.pixelUnshuffle(x, 2),
};
for (const reduction of REDUCTIONS) {
  ops[`l1Loss_${reduction}`] = (x, y) => t.l1Loss(x, y, { reduction });
  ops[`smoothL1Loss_${reduction}`] = (x, y) => t.smoothL1Loss(x, y, { reduction });
  ops[`huberLoss_${reduction}`] = (x, y) => t.huberLoss(x, y, { reduction });
  ops[`softMarginLoss_${reduction}`] = (x, y) => t.softMarginLoss(x, y.detach(), { reduction });
  ops[`poissonNllLoss_${reduction}`] = (x, y) => t.poissonNllLoss(x, y, { reduction });
  ops[`gaussianNllLoss_${reduction}`] = (x, y, v) => t.gaussianNllLoss(x, y, v, { reduction });
  ops[`klDiv_${reduction}`] = (x, y) => t.klDiv(x, y, { reduction });
  ops[`binaryCrossEntropy_${reduction}`] = (x, y) => t.binaryCrossEntropy(x, y, { reduction });
  ops[`marginRankingLoss_${reduction}`] = (a, b, y) => t.marginRankingLoss(a, b, y, { margin: 0.3, reduction });
  ops[`hingeEmbeddingLoss_${reduction}`] = (x, y) => t.hingeEmbeddingLoss(x, y, { reduction });
  ops[`multilabelSoftMarginLoss_${reduction}`] = (x, y) => t.multilabelSoftMarginLoss(x, y, { reduction });
  ops[`multiMarginLoss_${reduction}`] = (x, y) => t.multiMarginLoss(x, y, { reduction });
  ops[`cosineEmbeddingLoss_${reduction}`] = (a, b, y) => t.cosineEmbeddingLoss(a, b, y, { reduction });
  ops[`tripletMarginLoss_${reduction}`] = (a, p, n) => t.tripletMarginLoss(a, p, n, { reduction });
}

/** J·v by forward mode equals the reverse-mode gradient's inner product with v (for a scalar-valued f). */
function checkForwardMode(f: (x: Tensor) => Tensor, x: Tensor): void {
  const v = t.randn(x.shape, { dtype: x.dtype });
  const [, tangent] = t.jvp((z) => f(z).sum(), [x], [v]);
  const leaf = x.detach().requiresGrad_();
  const [g] = t.gradientsOf(f(leaf).sum(), [leaf]);
  assertClose(tangent, [g!.mul(v).sum().item()], { rtol: 1e-9, atol: 1e-9 });
}

forEachBackend(`torch.nn.functional coverage matches PyTorch ${fixture.torch}`, (backend) => {
  for (const c of casesFor(fixture, backend)) it(c.name, () => runCase(c, (key) => ops[key]));

  it('forward mode (jvp) agrees with reverse mode, kinks included', () => {
    const x = t.tensor([-3, -1, -0.5, 0, 0.5, 1, 3, 6, 2.2, -2.7], { dtype: 'float64' });
    const y = t.tensor([0.5, -1, 0.25, 0.3, 0.5, 1.5, 2, 5.5, 2, -2], { dtype: 'float64' });
    const p = t.tensor([0.1, 0.9, 0.5, 1e-13, 1, 0, 0.3, 0.7, 0.2, 0.6], { dtype: 'float64' });
    const fs: ((z: Tensor) => Tensor)[] = [
      (z) => t.elu(z, 0.5), (z) => t.selu(z), (z) => t.celu(z, 2), (z) => t.mish(z), (z) => t.hardtanh(z), (z) => t.relu6(z),
      (z) => t.hardswish(z), (z) => t.hardsigmoid(z), (z) => t.softsign(z), (z) => t.tanhshrink(z), (z) => t.softshrink(z),
      (z) => t.hardshrink(z), (z) => t.threshold(z, 1, 0.5), (z) => t.glu(z), (z) => t.softmin(z, 0),
      (z) => t.prelu(z, t.tensor([0.25], { dtype: 'float64' })),
      (z) => t.l1Loss(z, y), (z) => t.smoothL1Loss(z, y, { beta: 0.5 }), (z) => t.huberLoss(z, y, { delta: 0.5 }),
      (z) => t.poissonNllLoss(z, y.abs(), { full: true }), (z) => t.gaussianNllLoss(z, y, z.abs().add(0.1)),
      (z) => t.klDiv(z.logSoftmax(0), p, { reduction: 'batchmean' }), (z) => t.binaryCrossEntropy(z.sigmoid(), p),
      (z) => t.binaryCrossEntropy(p, z.sigmoid()), (z) => t.softMarginLoss(z, y.sign()),
      (z) => t.marginRankingLoss(z, y, y.sign(), { margin: 0.2 }), (z) => t.hingeEmbeddingLoss(z, y.sign()),
      (z) => t.multilabelSoftMarginLoss(z.reshape([2, 5]), p.reshape([2, 5]).round()),
      (z) => t.multiMarginLoss(z.reshape([2, 5]), t.tensor([1, 4], { dtype: 'int32' }), { p: 2 }),
      (z) => t.cosineEmbeddingLoss(z.reshape([2, 5]), y.reshape([2, 5]), t.tensor([1, -1], { dtype: 'float64' })),
      (z) => t.tripletMarginLoss(z.reshape([2, 5]), y.reshape([2, 5]), p.reshape([2, 5]), { swap: true }),
      (z) => t.cosineSimilarity(z.reshape([2, 5]), y.reshape([2, 5])), (z) => t.pairwiseDistance(z.reshape([2, 5]), y.reshape([2, 5]), { p: 3 }),
      (z) => t.cdist(z.reshape([5, 2]), y.reshape([5, 2])), (z) => t.cdist(z.reshape([5, 2]), y.reshape([5, 2]), { computeMode: 'use_mm_for_euclid_dist' }),
      (z) => t.cdist(z.reshape([5, 2]), y.reshape([5, 2]), { p: Infinity }), (z) => t.normalize(z.reshape([2, 5])),
      (z) => t.pixelShuffle(z.reshape([1, 4, 1, 1]).mul(z.reshape([1, 4, 1, 1]).sum()), 2),
    ];
    fs.forEach((f, i) => {
      try {
        checkForwardMode(f, i === fs.length - 1 ? x.narrow(0, 0, 4) : x);
      } catch (e) {
        throw new Error(`function #${i} (${f.toString()}): ${String(e)}`);
      }
    });
  });

  it('the nn modules equal the functions', () => {
    const x = t.randn([2, 4, 3]);
    const y = t.randn([2, 4, 3]);
    const same = (a: Tensor, b: Tensor): void => assert.deepEqual(Array.from(a.data()), Array.from(b.data()));
    same(new t.nn.ELU(0.5).forward(x), t.elu(x, 0.5));
    same(new t.nn.SELU().forward(x), t.selu(x));
    same(new t.nn.CELU(2).forward(x), t.celu(x, 2));
    same(new t.nn.Mish().forward(x), t.mish(x));
    same(new t.nn.Hardtanh(-2, 0.5).forward(x), t.hardtanh(x, -2, 0.5));
    same(new t.nn.ReLU6().forward(x), t.relu6(x));
    same(new t.nn.Hardswish().forward(x), t.hardswish(x));
    same(new t.nn.Hardsigmoid().forward(x), t.hardsigmoid(x));
    same(new t.nn.Softsign().forward(x), t.softsign(x));
    same(new t.nn.Tanhshrink().forward(x), t.tanhshrink(x));
    same(new t.nn.Softshrink(0.3).forward(x), t.softshrink(x, 0.3));
    same(new t.nn.Hardshrink(0.3).forward(x), t.hardshrink(x, 0.3));
    same(new t.nn.Threshold(0.1, 20).forward(x), t.threshold(x, 0.1, 20));
    same(new t.nn.GLU(1).forward(x), t.glu(x, 1));
    same(new t.nn.Softmin(1).forward(x), t.softmin(x, 1));
    same(new t.nn.LogSigmoid().forward(x), t.logSigmoid(x));
    same(new t.nn.Softplus(2, 10).forward(x), t.softplus(x, 2, 10));
    same(new t.nn.PixelShuffle(2).forward(x.reshape([1, 4, 2, 3])), t.pixelShuffle(x.reshape([1, 4, 2, 3]), 2));
    same(new t.nn.PixelUnshuffle(2).forward(x.reshape([1, 1, 4, 6])), t.pixelUnshuffle(x.reshape([1, 1, 4, 6]), 2));
    same(new t.nn.CosineSimilarity(2, 1e-6).forward(x, y), t.cosineSimilarity(x, y, { axis: 2, eps: 1e-6 }));
    same(new t.nn.PairwiseDistance(1, 1e-3, true).forward(x, y), t.pairwiseDistance(x, y, { p: 1, eps: 1e-3, keepdim: true }));

    const p = x.sigmoid();
    const q = y.sigmoid();
    const sign = y.sign();
    same(new t.nn.L1Loss({ reduction: 'sum' }).forward(x, y), t.l1Loss(x, y, { reduction: 'sum' }));
    same(new t.nn.MSELoss().forward(x, y), t.mseLoss(x, y));
    same(new t.nn.SmoothL1Loss({ beta: 0.5 }).forward(x, y), t.smoothL1Loss(x, y, { beta: 0.5 }));
    same(new t.nn.HuberLoss({ delta: 0.5, reduction: 'none' }).forward(x, y), t.huberLoss(x, y, { delta: 0.5, reduction: 'none' }));
    same(new t.nn.KLDivLoss({ reduction: 'batchmean' }).forward(x.logSoftmax(1), q), t.klDiv(x.logSoftmax(1), q, { reduction: 'batchmean' }));
    same(new t.nn.BCELoss({ weight: q }).forward(p, q), t.binaryCrossEntropy(p, q, { weight: q }));
    same(new t.nn.BCEWithLogitsLoss().forward(x, q), t.binaryCrossEntropyWithLogits(x, q));
    same(new t.nn.MarginRankingLoss({ margin: 0.2 }).forward(x, y, sign), t.marginRankingLoss(x, y, sign, { margin: 0.2 }));
    same(new t.nn.HingeEmbeddingLoss({ margin: 2 }).forward(x, sign), t.hingeEmbeddingLoss(x, sign, { margin: 2 }));
    same(new t.nn.SoftMarginLoss().forward(x, sign), t.softMarginLoss(x, sign));
    same(new t.nn.MultiLabelSoftMarginLoss().forward(x, q.round()), t.multilabelSoftMarginLoss(x, q.round()));
    const a2 = x.reshape([4, 6]);
    const b2 = y.reshape([4, 6]);
    const y4 = t.tensor([1, -1, 1, -1]);
    same(new t.nn.CosineEmbeddingLoss({ margin: 0.1 }).forward(a2, b2, y4), t.cosineEmbeddingLoss(a2, b2, y4, { margin: 0.1 }));
    same(new t.nn.TripletMarginLoss({ p: 1, swap: true }).forward(a2, b2, a2.mul(2)), t.tripletMarginLoss(a2, b2, a2.mul(2), { p: 1, swap: true }));
    same(new t.nn.PoissonNLLLoss({ full: true }).forward(x, q.mul(5)), t.poissonNllLoss(x, q.mul(5), { full: true }));
    same(new t.nn.GaussianNLLLoss({ eps: 1e-3 }).forward(x, y, q), t.gaussianNllLoss(x, y, q, { eps: 1e-3 }));
    const cls = t.tensor([0, 5, 2, 3], { dtype: 'int32' });
    same(new t.nn.MultiMarginLoss({ p: 2 }).forward(a2, cls), t.multiMarginLoss(a2, cls, { p: 2 }));
    same(new t.nn.CrossEntropyLoss({ labelSmoothing: 0.1 }).forward(a2, cls), t.crossEntropy(a2, cls, { labelSmoothing: 0.1 }));
    same(new t.nn.NLLLoss().forward(a2.logSoftmax(1), cls), t.nllLoss(a2.logSoftmax(1), cls));
  });

  it('nn.PReLU holds one weight (or one per channel) initialised to 0.25, which gets a gradient', () => {
    const shared = new t.nn.PReLU();
    assert.deepEqual(shared.parameters().map((q) => [...q.shape]), [[1]]);
    assert.deepEqual(Array.from(shared.weight.data()), [0.25]);
    const perChannel = new t.nn.PReLU(3, 0.1);
    assert.deepEqual(Array.from(perChannel.weight.data()).map((v) => Math.fround(v)), [0.1, 0.1, 0.1].map(Math.fround));
    const x = t.tensor([[[-2, 1], [-1, -4], [3, -0.5]]]);
    const out = perChannel.forward(x);
    assertClose(out, [[[-0.2, 1], [-0.1, -0.4], [3, -0.05]]], { rtol: 1e-6 });
    out.sum().backward();
    // d/dw_c = Σ x over the non-positive entries of channel c
    assertClose(perChannel.weight.grad!, [-2, -5, -0.5], { rtol: 1e-6 });
    assert.deepEqual(perChannel.stateDict().get('weight')!.shape, [3]);
  });
});

it('bad arguments name the op, the shapes or dtypes, and the fix', () => {
  const x = t.randn([2, 3]);
  const i = t.tensor([1, 2, 3], { dtype: 'int32' });
  assert.throws(() => t.elu(i), /elu: needs a floating input, got int32 of shape \[3\]; cast it first, e\.g\. x\.float\(\)/);
  assert.throws(() => t.celu(x, 0), /celu: alpha cannot be 0/);
  assert.throws(() => t.softshrink(x, -1), /softshrink: lambd must be greater or equal to 0, got -1/);
  assert.throws(() => t.glu(x), /glu: halving axis 1 of \[2, 3\] needs an even size, got 3/);
  assert.throws(() => t.prelu(x, t.ones([4])), /prelu: weight has 4 values but input \[2, 3\] has 3 channels \(axis 1\); pass 1 or 3 values/);
  assert.throws(() => t.prelu(x, t.ones([3, 1])), /prelu: weight must be a scalar or 1-D tensor, got shape \[3, 1\]/);
  assert.throws(() => t.l1Loss(x, t.randn([3, 2])), /l1Loss: input \[2, 3\] and target \[3, 2\] must have one shape; reshape or expand the target to \[2, 3\] explicitly/);
  assert.throws(() => t.huberLoss(i, i), /huberLoss: input must be floating, got int32; cast it first/);
  assert.throws(() => t.smoothL1Loss(x, x, { reduction: 'avg' as Reduction }), /smoothL1Loss: reduction must be 'mean', 'sum' or 'none', got "avg"/);
  assert.throws(() => t.klDiv(x, x, { reduction: 'batch' as Reduction }), /klDiv: reduction must be 'batchmean', 'mean', 'sum' or 'none', got "batch"/);
  assert.throws(() => t.smoothL1Loss(x, x, { beta: -1 }), /smoothL1Loss: beta must not be negative, got -1/);
  assert.throws(() => t.huberLoss(x, x, { delta: 0 }), /huberLoss: delta must be positive, got 0/);
  assert.throws(() => t.binaryCrossEntropy(x.sigmoid(), x.sigmoid(), { weight: t.ones([2]) }), /binaryCrossEntropy: shapes \[2\] and \[2, 3\]|binaryCrossEntropy: .*\[2\].*\[2, 3\]/);
  assert.throws(() => t.gaussianNllLoss(x, x, t.ones([3])), /gaussianNllLoss: variance \[3\] does not fit input \[2, 3\]; give \[2, 3\], \[2\] or \[2, 1\]/);
  assert.throws(() => t.gaussianNllLoss(x, x, t.full([2, 3], -0.5)), /gaussianNllLoss: variance has negative entries/);
  assert.throws(() => t.marginRankingLoss(t.randn([3]), x, t.ones([3])), /marginRankingLoss: input1 \[3\], input2 \[2, 3\] and target \[3\] must have one rank/);
  assert.throws(() => t.multiMarginLoss(x, t.tensor([0, 1], { dtype: 'int32' }), { p: 3 as 1 }), /multiMarginLoss: p must be 1 or 2, got 3/);
  assert.throws(() => t.multiMarginLoss(x, t.tensor([0, 1, 2], { dtype: 'int32' })), /multiMarginLoss: input \[2, 3\] needs 2 targets \(shape \[2\]\), got \[3\]/);
  assert.throws(() => t.multiMarginLoss(x, t.tensor([0, 1])), /multiMarginLoss: target must hold int32 class indices, got float32/);
  assert.throws(() => t.multiMarginLoss(x, t.tensor([0, 3], { dtype: 'int32' })), /multiMarginLoss: targets must be in \[0, 3\)/);
  assert.throws(() => t.cosineEmbeddingLoss(x, x, t.ones([2, 1])), /cosineEmbeddingLoss: target must be 0-d or 1-D/);
  assert.throws(() => t.tripletMarginLoss(t.randn([3]), x, x), /tripletMarginLoss: anchor \[3\], positive \[2, 3\] and negative \[2, 3\] must have one rank/);
  assert.throws(() => t.cosineSimilarity(i, i), /cosineSimilarity: needs floating inputs, got int32 and int32; cast them first/);
  assert.throws(() => t.cdist(x, t.randn([2, 4])), /cdist: x1 \[2, 3\] and x2 \[2, 4\] must have the same number of features/);
  assert.throws(() => t.cdist(t.randn([3]), t.randn([3])), /cdist: needs inputs of rank >= 2/);
  assert.throws(() => t.cdist(x, x, { computeMode: 'mm' as t.CdistComputeMode }), /cdist: computeMode must be/);
  assert.throws(() => t.normalize(i.reshape([1, 3])), /normalize: needs a floating input, got int32/);
  assert.throws(() => t.pixelShuffle(t.randn([1, 7, 2, 2]), 2), /pixelShuffle: the channel axis \(size 7\) of \[1, 7, 2, 2\] must be divisible by upscaleFactor² = 4/);
  assert.throws(() => t.pixelShuffle(t.randn([1, 4, 2, 2]), 0), /pixelShuffle: upscaleFactor must be a positive integer, got 0/);
  assert.throws(() => t.pixelUnshuffle(t.randn([1, 1, 3, 4]), 2), /pixelUnshuffle: height 3 and width 4 of \[1, 1, 3, 4\] must be divisible by downscaleFactor 2/);
});

it('the losses run in float32 under autocast, and the composites trace under jit', () => {
  const x = t.tensor([-2, -1, 0.3, 1, 3]);
  const p = t.tensor([0, 0.2, 0.5, 1, 0.9]);
  assert.equal(autocast({ dtype: 'bfloat16' }, () => t.l1Loss(x.cast('bfloat16'), p.cast('bfloat16'))).dtype, 'float32');
  assert.equal(autocast({ dtype: 'bfloat16' }, () => t.tripletMarginLoss(x.cast('bfloat16'), p.cast('bfloat16'), p.cast('bfloat16'))).dtype, 'float32');
  // detach-based pieces (hardtanh's bounds, hardsigmoid's slope, BCE's boundary, cdist's ties) under jit
  const f = (a: Tensor, b: Tensor): Tensor => t.hardtanh(a).add(t.binaryCrossEntropy(b, a.sigmoid()))
    .add(t.hardsigmoid(a).sum()).add(t.cdist(a.reshape([5, 1]), b.reshape([5, 1]), { p: Infinity }).sum());
  const jitted = t.jit(f);
  for (const a of [x, x.mul(2)]) assert.deepEqual(Array.from(jitted(a, p).data()), Array.from(f(a, p).data()));
  const eager = t.grad((a: Tensor) => f(a, p).sum())(x) as Tensor;
  const traced = t.grad((a: Tensor) => jitted(a, p).sum())(x) as Tensor;
  assert.deepEqual(Array.from(traced.data()), Array.from(eager.data()));
});
