// Scaled dot-product attention, softmax(q·kᵀ·scale + mask)·v.
//
// The common case (no attnMask, causal or not, no dropout, q, k and v of one dtype float32 or
// float64, at least one key) binds the fused `attention` primitive: one forward kernel and one
// backward kernel (`attentionGrad`, which recomputes the softmax) instead of the composite's two
// batched matmuls, scale, mask add, softmax and their dozen backward kernels; its derivative rules
// (attention-rules.ts) keep every mode of differentiation working. Everything else (masks,
// dropout, other dtypes) runs the composite of matmul, softmax and dropout.
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import { broadcastShapes } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import type { Generator } from '../../core/random.js';
import { full } from '../creation.js';
import { add, mul, where, cast, eq, logicalOr, logicalNot } from '../elementwise.js';
import { matmul } from '../linalg.js';
import { transpose, reshape, expand } from '../shape.js';
import { bind } from '../dispatch.js';
import { causalAdditiveMask } from './attention-rules.js';
import { softmax } from './softmax.js';
import { dropout } from './dropout.js';
import { sum } from '../reduce.js';

export interface AttentionOptions {
  /**
   * Broadcastable to [..., L, S]: a bool mask (true = may attend, like PyTorch) or a floating mask
   * added to the scores.
   */
  attnMask?: Tensor;
  /** Query i attends to keys j <= i (top-left aligned, like PyTorch); not combinable with attnMask. */
  isCausal?: boolean;
  /** Dropout probability on the attention weights (applied only when > 0). */
  dropoutP?: number;
  /** Multiplies q·kᵀ (default 1/sqrt(E), E = the query's last dim). */
  scale?: number;
  generator?: Generator;
}

/**
 * q [..., L, E], k [..., S, E], v [..., S, Ev] → [..., L, Ev]. Query rows whose keys are all masked
 * out give zeros (not NaN), like PyTorch's math implementation since 2.5.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const op = 'scaledDotProductAttention';
  check(q.rank >= 2 && k.rank >= 2 && v.rank >= 2, op, () =>
    `q, k and v need at least 2 dims ([..., L, E], [..., S, E], [..., S, Ev]), got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}.`);
  check(isFloating(q.dtype) && isFloating(k.dtype) && isFloating(v.dtype), op, () => `q, k and v must be floating, got ${q.dtype}, ${k.dtype}, ${v.dtype}.`);
  const e = q.shape[q.rank - 1]!;
  const [l, s] = [q.shape[q.rank - 2]!, k.shape[k.rank - 2]!];
  check(k.shape[k.rank - 1] === e, op, () => `q's last dim (${e}) must equal k's (${k.shape[k.rank - 1]}): q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}.`);
  check(v.shape[v.rank - 2] === s, op, () => `k and v must have the same number of keys (dim -2): k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}.`);
  check(!(opts.isCausal && opts.attnMask !== undefined), op, () => 'give either isCausal or attnMask, not both (fold the causal mask into attnMask).');
  const scale = opts.scale ?? 1 / Math.sqrt(e);
  const p = opts.dropoutP ?? 0;
  if (fusedAttentionEnabled && opts.attnMask === undefined && p === 0 && s >= 1 && (q.dtype === 'float32' || q.dtype === 'float64') &&
      k.dtype === q.dtype && v.dtype === q.dtype) {
    return fusedAttention(q, k, v, scale, opts.isCausal === true);
  }
  let scores = mul(matmul(q, transpose(k, -2, -1)), scale);

  let weights: Tensor;
  if (opts.isCausal) {
    // Key 0 is allowed for every query, so no row is empty: an additive [L, S] mask (0 or −inf),
    // broadcast by a SIMD add, instead of selects over the whole [..., L, S] scores.
    weights = softmax(add(scores, causalAdditiveMask(l, s, scores)), -1);
  } else if (opts.attnMask?.dtype === 'bool') {
    // A query row with every key masked out would be softmax of all −inf (0/0): it gets zero weights.
    // Such rows see an all-zero additive mask instead (finite softmax, so no NaN reaches the
    // gradient either) and are multiplied by 0 afterwards. Everything but the add and the multiply
    // works on the mask's own (usually small, e.g. [L, S]) shape.
    const allowed = opts.attnMask;
    const rowEmpty = eq(sum(cast(allowed, 'int32'), -1, true), 0);
    const masked = add(scores, additiveMask(logicalOr(allowed, rowEmpty), scores));
    weights = mul(softmax(masked, -1), cast(logicalNot(rowEmpty), scores.dtype));
  } else {
    if (opts.attnMask !== undefined) scores = add(scores, cast(opts.attnMask, scores.dtype));
    weights = softmax(scores, -1);
  }
  if (p > 0) weights = dropout(weights, p, opts.generator === undefined ? {} : { generator: opts.generator });
  return matmul(weights, v);
}

let fusedAttentionEnabled = true;

/**
 * Whether scaledDotProductAttention may use the fused attention primitives (default true); false
 * forces the composite everywhere, e.g. to compare the two in one process. Returns the previous setting.
 */
export function setFusedAttention(enabled: boolean): boolean {
  const previous = fusedAttentionEnabled;
  fusedAttentionEnabled = enabled;
  return previous;
}

/** The attention primitive over q, k and v with their batch dims broadcast (as matmul would) by expand views. */
function fusedAttention(q: Tensor, k: Tensor, v: Tensor, scale: number, causal: boolean): Tensor {
  const lead = (x: Tensor) => x.shape.slice(0, x.rank - 2);
  const batch = broadcastShapes('scaledDotProductAttention', lead(q), lead(k), lead(v));
  const to = (x: Tensor) => (x.rank - 2 === batch.length && lead(x).every((d, i) => d === batch[i]) ? x : expand(x, [...batch, ...x.shape.slice(-2)]));
  return bind('attention', [to(q), to(k), to(v)], { scale, causal });
}

/** 0 where `allowed`, −inf elsewhere, in the scores' dtype. */
function additiveMask(allowed: Tensor, scores: Tensor): Tensor {
  return where(allowed, full([], 0, { dtype: scores.dtype, backend: scores.backend }), full([], -Infinity, { dtype: scores.dtype, backend: scores.backend }));
}
