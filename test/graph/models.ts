// Small real models built from ops directly (the nn layer is written in parallel): MLP, CNN with
// batchnorm (conv as unfold + matmul), a GPT block, an LSTM cell. Shared by graph and compiler tests.
import * as t from '../../src/index.js';
type T = t.Tensor;

export function softmax(x: T, axis = -1): T {
  const m = t.max(x, axis, true);
  const e = t.exp(t.sub(x, m));
  return t.div(e, t.sum(e, axis, true));
}

export function layerNorm(x: T, w: T, b: T, eps = 1e-5): T {
  const mu = t.mean(x, -1, true);
  const xc = t.sub(x, mu);
  const v = t.mean(t.mul(xc, xc), -1, true);
  return t.add(t.mul(t.mul(xc, t.rsqrt(t.add(v, eps))), w), b);
}

export function linear(x: T, w: T, b?: T): T {
  const y = t.matmul(x, w);
  return b === undefined ? y : t.add(y, b);
}

export function param(shape: number[], scale = 0.1, gen?: t.Generator): T {
  return t.mul(t.randn(shape, { generator: gen }), scale).detach().requiresGrad_();
}

export interface MLP { w1: T; b1: T; w2: T; b2: T }
export function mlpParams(inp: number, hidden: number, out: number): MLP {
  return { w1: param([inp, hidden]), b1: param([hidden], 0.01), w2: param([hidden, out]), b2: param([out], 0.01) };
}
export function mlp(p: MLP, x: T): T {
  return linear(t.relu(linear(x, p.w1, p.b1)), p.w2, p.b2);
}

/** Mean squared error (no gather, so the whole step stays in fusable ops). */
export function mse(y: T, target: T): T {
  const d = t.sub(y, target);
  return t.mean(t.mul(d, d));
}

/** Cross-entropy against one-hot targets (logsumexp minus the target logit). */
export function crossEntropyOneHot(logits: T, onehot: T): T {
  const m = t.max(logits, -1, true).detach();
  const lse = t.add(t.log(t.sum(t.exp(t.sub(logits, m)), -1, true)), m);
  return t.mean(t.sum(t.mul(t.sub(lse, logits), onehot), -1));
}

export interface GPT { ln1w: T; ln1b: T; wq: T; wk: T; wv: T; wo: T; ln2w: T; ln2b: T; w1: T; b1: T; w2: T; b2: T; heads: number }
export function gptParams(c: number, heads: number): GPT {
  return {
    ln1w: t.ones([c]).requiresGrad_(), ln1b: t.zeros([c]).requiresGrad_(),
    wq: param([c, c]), wk: param([c, c]), wv: param([c, c]), wo: param([c, c]),
    ln2w: t.ones([c]).requiresGrad_(), ln2b: t.zeros([c]).requiresGrad_(),
    w1: param([c, 4 * c]), b1: param([4 * c], 0.01), w2: param([4 * c, c]), b2: param([c], 0.01), heads,
  };
}
export function gptBlock(p: GPT, x: T): T {
  const [B, S, C] = x.shape as [number, number, number];
  const H = p.heads, D = C / H;
  const h = layerNorm(x, p.ln1w, p.ln1b);
  const split = (y: T): T => t.permute(t.reshape(y, [B, S, H, D]), [0, 2, 1, 3]);
  const q = split(t.matmul(h, p.wq)), k = split(t.matmul(h, p.wk)), v = split(t.matmul(h, p.wv));
  const scores = t.mul(t.matmul(q, t.transpose(k, -2, -1)), 1 / Math.sqrt(D));
  const mask = t.tensor(Array.from({ length: S }, (_, i) => Array.from({ length: S }, (_, j) => j <= i)));
  const att = softmax(t.where(mask, scores, -1e9));
  const o = t.reshape(t.permute(t.matmul(att, v), [0, 2, 1, 3]), [B, S, C]);
  const x1 = t.add(x, t.matmul(o, p.wo));
  const f = linear(t.gelu(linear(layerNorm(x1, p.ln2w, p.ln2b), p.w1, p.b1), 'tanh'), p.w2, p.b2);
  return t.add(x1, f);
}

export interface LSTM { wx: T; wh: T; b: T }
export function lstmParams(inp: number, hidden: number): LSTM {
  return { wx: param([inp, 4 * hidden]), wh: param([hidden, 4 * hidden]), b: param([4 * hidden], 0.01) };
}
export function lstmCell(p: LSTM, x: T, h: T, c: T): [T, T] {
  const H = h.shape[1]!;
  const z = t.add(t.add(t.matmul(x, p.wx), t.matmul(h, p.wh)), p.b);
  const gate = (k: number): T => t.narrow(z, 1, k * H, H);
  const i = t.sigmoid(gate(0)), f = t.sigmoid(gate(1)), g = t.tanh(gate(2)), o = t.sigmoid(gate(3));
  const c2 = t.add(t.mul(f, c), t.mul(i, g));
  return [t.mul(o, t.tanh(c2)), c2];
}

export interface CNN { w: T; gamma: T; beta: T; mean: T; var: T; fc: T }
export function cnnParams(cin: number, cout: number, k: number, hw: number, classes: number): CNN {
  const ho = hw - k + 1;
  return {
    w: param([cout, cin, k, k], 0.3), gamma: t.add(t.mul(t.rand([cout]), 0.5), 0.75).detach().requiresGrad_(),
    beta: param([cout]), mean: t.mul(t.randn([cout]), 0.1), var: t.add(t.rand([cout]), 0.5),
    fc: param([cout * ho * ho, classes]),
  };
}
/** conv2d (stride 1, no padding) as unfold + matmul, like ops/nn does. */
export function conv2d(x: T, w: T): T {
  const [N, C, Hh, W] = x.shape as [number, number, number, number];
  const [O, , K] = w.shape as [number, number, number, number];
  const Ho = Hh - K + 1, Wo = W - K + 1;
  const cols = t.unfold(t.unfold(x, 2, K, 1), 3, K, 1); // [N, C, Ho, Wo, K, K]
  const patches = t.reshape(t.permute(cols, [0, 2, 3, 1, 4, 5]), [N * Ho * Wo, C * K * K]);
  const y = t.matmul(patches, t.transpose(t.reshape(w, [O, C * K * K]), 0, 1)); // [N*Ho*Wo, O]
  return t.permute(t.reshape(y, [N, Ho, Wo, O]), [0, 3, 1, 2]);
}
/** Inference batchnorm with running statistics, per channel (axis 1). */
export function batchNorm(x: T, mean: T, variance: T, gamma: T, beta: T, eps = 1e-5): T {
  const r = (v: T): T => t.reshape(v, [1, v.shape[0]!, 1, 1]);
  return t.add(t.mul(t.div(t.sub(x, r(mean)), t.sqrt(t.add(r(variance), eps))), r(gamma)), r(beta));
}
export function cnn(p: CNN, x: T): T {
  const y = t.relu(batchNorm(conv2d(x, p.w), p.mean, p.var, p.gamma, p.beta));
  return t.matmul(t.reshape(y, [x.shape[0]!, -1]), p.fc);
}
