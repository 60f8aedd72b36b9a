// Multi-head attention with PyTorch's parameter layout (in_proj_weight [3E, E], in_proj_bias [3E],
// out_proj), causal and key-padding masks, and a key/value cache for incremental decoding.
//
// Masks follow torch.nn.MultiheadAttention: in `attnMask` and `keyPaddingMask`, true means "may NOT
// attend" (the opposite of scaledDotProductAttention's bool mask, which this layer converts to).
import { defaultFloatDType } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { full, zeros } from '../../ops/creation.js';
import { add, logicalAnd, logicalNot, where } from '../../ops/elementwise.js';
import { cat, tril } from '../../ops/combine.js';
import { matmul } from '../../ops/linalg.js';
import { narrow, permute, reshape } from '../../ops/shape.js';
import { scaledDotProductAttention } from '../../ops/nn/index.js';
import { constant_, xavierUniform_ } from '../init.js';
import { Module, Parameter } from '../module.js';
import { Linear, type LayerOptions } from './linear.js';

/** Keys and values of the positions seen so far, per layer, for generation one token at a time. */
export class KVCache {
  k: Tensor | undefined = undefined;
  v: Tensor | undefined = undefined;
  /** Number of cached positions. */
  get length(): number {
    return this.k?.shape[2] ?? 0;
  }
}

export interface MultiheadAttentionOptions extends LayerOptions {
  bias?: boolean;
  /** Dropout on the attention weights in training mode. */
  dropout?: number;
  /** Inputs are [batch, seq, embed] (default true; PyTorch's default is false, [seq, batch, embed]). */
  batchFirst?: boolean;
}

export interface AttentionCallOptions {
  /** [L, S] or [B*H, L, S] (broadcastable to [B, H, L, S]); bool (true = masked) or float (added to the scores). */
  attnMask?: Tensor;
  /** [B, S] bool, true = padding (ignored as a key). */
  keyPaddingMask?: Tensor;
  /** Each query attends only to keys at its own or earlier positions (offset by the cache length). */
  isCausal?: boolean;
  /** Self-attention cache: keys/values of earlier positions are reused and the new ones appended. */
  cache?: KVCache;
}

export class MultiheadAttention extends Module<[Tensor, Tensor?, Tensor?, AttentionCallOptions?], Tensor> {
  in_proj_weight: Parameter;
  in_proj_bias: Parameter | undefined;
  out_proj: Linear;
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;

  constructor(readonly embedDim: number, readonly numHeads: number, options: MultiheadAttentionOptions = {}) {
    super();
    check(Number.isInteger(embedDim) && Number.isInteger(numHeads) && numHeads > 0 && embedDim % numHeads === 0, 'MultiheadAttention', () =>
      `embedDim ${embedDim} must be divisible by numHeads ${numHeads}.`);
    this.headDim = embedDim / numHeads;
    this.dropout = options.dropout ?? 0;
    this.batchFirst = options.batchFirst ?? true;
    const create = { dtype: options.dtype ?? defaultFloatDType(), backend: options.backend } as const;
    this.in_proj_weight = new Parameter(zeros([3 * embedDim, embedDim], create));
    xavierUniform_(this.in_proj_weight, 1, options.generator);
    const bias = options.bias ?? true;
    this.in_proj_bias = bias ? new Parameter(zeros([3 * embedDim], create)) : undefined;
    this.out_proj = new Linear(embedDim, embedDim, { ...options, bias });
    if (this.out_proj.bias) constant_(this.out_proj.bias, 0);
  }

  #project(x: Tensor, which: number): Tensor {
    const E = this.embedDim;
    const y = matmul(x, narrow(this.in_proj_weight, 0, which * E, E).mT);
    return this.in_proj_bias === undefined ? y : add(y, narrow(this.in_proj_bias, 0, which * E, E));
  }

  /** [B, T, E] → [B, H, T, Dh]. */
  #heads(x: Tensor): Tensor {
    const [b, t] = [x.shape[0]!, x.shape[1]!];
    return permute(reshape(x, [b, t, this.numHeads, this.headDim]), [0, 2, 1, 3]);
  }

  /** query [B, L, E], key/value [B, S, E] (default: the query, self-attention) → [B, L, E]. */
  override forward(query: Tensor, key?: Tensor, value?: Tensor, opts: AttentionCallOptions = {}): Tensor {
    const toBatchFirst = (x: Tensor): Tensor => (this.batchFirst ? x : permute(x, [1, 0, 2]));
    const q0 = toBatchFirst(query);
    const k0 = key === undefined ? q0 : toBatchFirst(key);
    const v0 = value === undefined ? k0 : toBatchFirst(value);
    for (const [name, x] of [['query', q0], ['key', k0], ['value', v0]] as const) {
      check(x.rank === 3 && x.shape[2] === this.embedDim, 'MultiheadAttention', () =>
        `${name} must be [batch, seq, ${this.embedDim}]${this.batchFirst ? '' : ' (after moving the batch first)'}, got ${fmtShape(x.shape)}.`);
    }
    const [B, L] = [q0.shape[0]!, q0.shape[1]!];
    const q = this.#heads(this.#project(q0, 0));
    let k = this.#heads(this.#project(k0, 1));
    let v = this.#heads(this.#project(v0, 2));
    const past = opts.cache?.length ?? 0;
    if (opts.cache !== undefined) {
      if (opts.cache.k !== undefined) {
        k = cat([opts.cache.k, k], 2);
        v = cat([opts.cache.v!, v], 2);
      }
      opts.cache.k = k.detach();
      opts.cache.v = v.detach();
    }
    const S = k.shape[2]!;
    // Combine the masks into one "may attend" mask (or an additive float mask).
    let allowed: Tensor | undefined;
    let additive: Tensor | undefined;
    if (opts.isCausal && (past > 0 || opts.attnMask !== undefined || opts.keyPaddingMask !== undefined)) {
      allowed = tril(full([L, S], true, { backend: q.backend }), past);
    }
    if (opts.attnMask !== undefined) {
      const m = opts.attnMask;
      const shaped = m.rank === 3 ? reshape(m, [B, this.numHeads, L, S]) : m;
      if (m.dtype === 'bool') allowed = allowed === undefined ? logicalNot(shaped) : logicalAnd(allowed, logicalNot(shaped));
      else additive = shaped;
    }
    if (opts.keyPaddingMask !== undefined) {
      const kpm = opts.keyPaddingMask;
      check(kpm.rank === 2 && kpm.shape[0] === B && kpm.shape[1] === S, 'MultiheadAttention', () =>
        `keyPaddingMask must be [batch ${B}, keys ${S}], got ${fmtShape(kpm.shape)}.`);
      const keep = reshape(logicalNot(kpm.dtype === 'bool' ? kpm : kpm.bool()), [B, 1, 1, S]);
      allowed = allowed === undefined ? keep : logicalAnd(allowed, keep);
    }
    let mask = allowed;
    if (additive !== undefined) {
      // A float mask and bool masks together: turn the bool part into -inf and add.
      mask = allowed === undefined ? additive : add(additive, where(allowed, 0, -Infinity));
    }
    // A plain causal mask without cached positions is scaledDotProductAttention's own (top-left
    // aligned) isCausal, which needs no empty-row handling.
    const plainCausal = opts.isCausal === true && past === 0 && opts.attnMask === undefined && opts.keyPaddingMask === undefined;
    const attended = scaledDotProductAttention(q, k, v, {
      ...(plainCausal ? { isCausal: true } : mask !== undefined ? { attnMask: mask } : {}),
      ...(this.training && this.dropout > 0 ? { dropoutP: this.dropout } : {}),
    });
    const merged = reshape(permute(attended, [0, 2, 1, 3]), [B, L, this.embedDim]);
    const out = this.out_proj.call(merged);
    return this.batchFirst ? out : permute(out, [1, 0, 2]);
  }
}
