// ONNX transformer operators of the newer opsets: Attention (23), RMSNormalization (23),
// RotaryEmbedding (23), Swish (24), SwiGLU, CausalConvWithState (27), LinearAttention (27) and
// ai.onnx.preview's FlexAttention, written with tessera's matmul, softmax, convolution and
// elementwise ops (so they run on every backend, under jit, and are differentiable).

import type { Tensor } from '../../core/tensor.js';
import { type DType, isFloating, promoteTypes } from '../../core/dtype.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';
import { storageDType } from '../value.js';
import { onnxAxis } from './reduce.js';

const shapeText = (t: Tensor): string => `[${t.shape.join(', ')}]`;

function requireFloat(ctx: NodeContext, x: Tensor, name: string, i: number): void {
  if (!isFloating(x.dtype)) ctx.fail(`${name} must be a floating tensor, got ${ctx.typeName(ctx.typeOf(i))}`);
}

/** Whether the node asks for output i (lists it under a non-empty name). */
function wantsOutput(ctx: NodeContext, i: number): boolean {
  return (ctx.node.outputs[i] ?? '') !== '';
}

/** The dtype to compute in: half types are computed in float32, float64 stays float64. */
function computeDType(dtype: DType): DType {
  return dtype === 'float64' ? 'float64' : 'float32';
}

/** A 0-d constant of a dtype on x's backend. */
function constant(x: Tensor, value: number, dtype: DType = x.dtype): Tensor {
  return ops.full([], value, { dtype, backend: x.backend });
}

/** 0 where `allowed`, −inf elsewhere: a bool mask as an additive bias. */
function additiveMask(allowed: Tensor, dtype: DType): Tensor {
  return ops.where(allowed, constant(allowed, 0, dtype), constant(allowed, -Infinity, dtype));
}

/** Sums additive biases (undefined for none). */
function addBias(a: Tensor | undefined, b: Tensor): Tensor {
  return a === undefined ? b : ops.add(a, b);
}

/** [B, S, H·D] → [B, H, S, D]: a 3-D Attention/RotaryEmbedding input split into heads. */
function splitHeads(ctx: NodeContext, x: Tensor, heads: number, name: string): Tensor {
  const [b, s, hidden] = x.shape as [number, number, number];
  if (!(heads > 0) || hidden % heads !== 0) ctx.fail(`${name} ${shapeText(x)}: its hidden size ${hidden} is not a multiple of the ${heads} heads`);
  return ops.transpose(ops.reshape(x, [b, s, heads, hidden / heads]), 1, 2);
}

/**
 * Attention (opsets 23, 24), as ONNX's function body defines it: Q [B, Hq, L, E], K [B, Hkv, S, E]
 * and V [B, Hkv, S, Ev] (or 3-D [B, L, Hq·E] with q_num_heads / kv_num_heads); past_key/past_value
 * [B, Hkv, P, ·] are concatenated before K/V along the sequence (giving present_key/present_value,
 * T = P + S keys). The scores Q·Kᵀ·scale (scale default 1/sqrt(E)) are soft-capped
 * (softcap·tanh(x/softcap) when softcap > 0), then the bias is added: attn_mask (bool: false = −inf;
 * or additive; a mask shorter than T is padded with −inf), is_causal (query i sees keys
 * j <= i + offset, offset = P with a past, nonpad_kv_seqlen[b] − L with nonpad_kv_seqlen (opset
 * 24), else 0) and nonpad_kv_seqlen (keys from nonpad_kv_seqlen[b] on are masked). Softmax over
 * the keys, where a row whose bias is all −inf gets zero weights, then · V. Grouped-query
 * attention (Hkv < Hq) repeats each K/V head Hq/Hkv times (head h reads K/V head floor(h·Hkv/Hq)).
 * qk_matmul_output is the scores after step 0 (scaled Q·Kᵀ), 1 (softcap), 2 (+ bias) or 3
 * (softmax), per qk_matmul_output_mode. Half-precision inputs are computed in float32.
 */
registerOnnxOp('Attention', {
  minOpset: 23,
  run: (ctx: NodeContext) => {
    let q = ctx.tensor(0), k = ctx.tensor(1), v = ctx.tensor(2);
    [q, k, v].forEach((t, i) => requireFloat(ctx, t, ['Q', 'K', 'V'][i]!, i));
    if (q.rank !== k.rank || q.rank !== v.rank || (q.rank !== 3 && q.rank !== 4)) {
      ctx.fail(`Q, K and V must all be 3-D or all 4-D, got Q ${shapeText(q)}, K ${shapeText(k)}, V ${shapeText(v)}`);
    }
    const dtype = q.dtype;
    const threeD = q.rank === 3;
    if (threeD) {
      const qHeads = ctx.int('q_num_heads'), kvHeads = ctx.int('kv_num_heads');
      if (qHeads === undefined || kvHeads === undefined) ctx.fail('3-D Q, K and V need the q_num_heads and kv_num_heads attributes');
      q = splitHeads(ctx, q, qHeads, 'Q');
      k = splitHeads(ctx, k, kvHeads, 'K');
      v = splitHeads(ctx, v, kvHeads, 'V');
    }
    const pastKey = ctx.optionalTensor(4), pastValue = ctx.optionalTensor(5);
    if ((pastKey === undefined) !== (pastValue === undefined)) ctx.fail('past_key and past_value must be given together');
    const presentKey = pastKey === undefined ? k : ops.cat([ops.cast(pastKey, dtype), k], 2);
    const presentValue = pastValue === undefined ? v : ops.cat([ops.cast(pastValue, dtype), v], 2);
    const [batch, qHeads, l, e] = q.shape as [number, number, number, number];
    const kvHeads = presentKey.shape[1]!, t = presentKey.shape[2]!;
    if (presentKey.shape[0] !== batch || presentKey.shape[3] !== e || presentValue.shape[0] !== batch || presentValue.shape[1] !== kvHeads || presentValue.shape[2] !== t) {
      ctx.fail(`K/V shapes do not fit Q: Q ${shapeText(q)}, present K ${shapeText(presentKey)}, present V ${shapeText(presentValue)}`);
    }
    if (qHeads % kvHeads !== 0) ctx.fail(`Q's ${qHeads} heads are not a multiple of K/V's ${kvHeads} heads`);

    const compute = computeDType(dtype);
    const scale = ctx.float('scale') ?? 1 / Math.sqrt(e);
    const softcap = ctx.float('softcap', 0);
    const causal = ctx.int('is_causal', 0) !== 0;
    const mode = ctx.int('qk_matmul_output_mode', 0);
    if (mode < 0 || mode > 3) ctx.fail(`qk_matmul_output_mode must be 0, 1, 2 or 3, got ${mode}`);
    const wantScores = wantsOutput(ctx, 3);
    const mask = ctx.optionalTensor(3);
    const nonpad = ctx.opset >= 24 ? ctx.optionalTensor(6) : undefined;
    const qc = ops.cast(q, compute);
    let kc = ops.cast(presentKey, compute), vc = ops.cast(presentValue, compute);
    if (qHeads !== kvHeads) {
      kc = ops.repeatInterleave(kc, qHeads / kvHeads, 1);
      vc = ops.repeatInterleave(vc, qHeads / kvHeads, 1);
    }

    let y: Tensor;
    let scoresOut: Tensor | undefined;
    if (mask === undefined && nonpad === undefined && (!causal || pastKey === undefined) && softcap <= 0 && !wantScores) {
      // No bias beyond top-left causal masking: tessera's (fused where it can) attention.
      y = ops.scaledDotProductAttention(qc, kc, vc, { scale, isCausal: causal });
    } else {
      // The additive bias, broadcastable to [B, Hq, L, T].
      let bias: Tensor | undefined;
      if (mask !== undefined) {
        let m = mask.dtype === 'bool' ? additiveMask(mask, compute) : ops.cast(mask, compute);
        if (m.rank === 0) m = ops.reshape(m, [1]);
        const width = m.shape[m.rank - 1]!;
        if (width > t) ctx.fail(`attn_mask ${shapeText(mask)} has more key positions than the ${t} keys`);
        if (width < t) m = ops.pad(m, [0, t - width], 'constant', -Infinity);
        bias = m;
      }
      const cols = ops.reshape(ops.arange(0, t, 1, { dtype: 'int32', backend: q.backend }), [1, t]);
      if (causal) {
        const rows = ops.reshape(ops.arange(0, l, 1, { dtype: 'int32', backend: q.backend }), [l, 1]);
        // Query i sees key j when j <= i + offset.
        let limit: Tensor;
        if (pastKey !== undefined) limit = ops.add(rows, pastKey.shape[2]!);
        else if (nonpad !== undefined) limit = ops.add(rows, ops.reshape(ops.sub(ops.cast(nonpad, 'int32'), l), [batch, 1, 1, 1]));
        else limit = rows;
        bias = addBias(bias, additiveMask(ops.le(cols, limit), compute));
      }
      if (nonpad !== undefined) {
        if (nonpad.size !== batch) ctx.fail(`nonpad_kv_seqlen must hold one length per batch entry (${batch}), got shape ${shapeText(nonpad)}`);
        bias = addBias(bias, additiveMask(ops.lt(cols, ops.reshape(ops.cast(nonpad, 'int32'), [batch, 1, 1, 1])), compute));
      }

      const raw = ops.mul(ops.matmul(qc, ops.transpose(kc, -2, -1)), scale);
      const capped = softcap > 0 ? ops.mul(ops.tanh(ops.div(raw, softcap)), softcap) : raw;
      let weights: Tensor;
      let biased = capped;
      if (bias === undefined) {
        weights = ops.softmax(capped, -1);
      } else {
        biased = ops.add(capped, bias);
        // Rows whose bias is all −inf get zero weights: they are given a zero bias (a finite
        // softmax, so no NaN reaches a gradient) and their weights multiplied by 0.
        const empty = ops.eq(ops.max(bias, -1, true), -Infinity);
        const safe = ops.add(capped, ops.where(empty, constant(bias, 0), bias));
        weights = ops.mul(ops.softmax(safe, -1), ops.cast(ops.logicalNot(empty), compute));
      }
      if (wantScores) scoresOut = [raw, capped, biased, weights][mode]!;
      y = ops.matmul(weights, vc);
    }

    y = ops.cast(y, dtype);
    if (threeD) y = ops.reshape(ops.transpose(y, 1, 2), [batch, l, qHeads * y.shape[3]!]);
    const out: Tensor[] = [y, presentKey, presentValue];
    if (scoresOut !== undefined) out.push(ops.cast(ops.expand(scoresOut, [batch, qHeads, l, t]), dtype));
    return out;
  },
});

/**
 * FlexAttention (domain ai.onnx.preview, version 1): softmax(Q·Kᵀ·scale)·V over 4-D Q [B, Hq, L, E],
 * K [B, Hkv, S, E] and V [B, Hkv, S, Ev] (K/V heads repeated for grouped queries, as Attention),
 * with the optional graph attributes applied in order: score_mod maps the scaled scores to new
 * scores, mask_mod masks them (a BOOL result keeps the scores where true and puts −inf elsewhere;
 * a float result replaces them), prob_mod maps the softmax probabilities. Each graph takes and
 * returns one [B, Hq, L, S] tensor of Q's type. Half-precision inputs are computed in float32,
 * the graphs seeing Q's own type.
 */
registerOnnxOp('FlexAttention', (ctx: NodeContext) => {
  const q = ctx.tensor(0), k = ctx.tensor(1), v = ctx.tensor(2);
  [q, k, v].forEach((t, i) => requireFloat(ctx, t, ['Q', 'K', 'V'][i]!, i));
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) ctx.fail(`Q, K and V must be 4-D, got Q ${shapeText(q)}, K ${shapeText(k)}, V ${shapeText(v)}`);
  const qHeads = q.shape[1]!, kvHeads = k.shape[1]!;
  if (v.shape[1] !== kvHeads || qHeads % kvHeads !== 0) ctx.fail(`Q's ${qHeads} heads must be a multiple of K's and V's (${kvHeads}, ${v.shape[1]})`);
  const compute = computeDType(q.dtype);
  const type = ctx.typeOf(0);
  /** Runs a graph attribute on x (given in Q's type) and returns its result in the compute dtype. */
  const apply = (name: string, x: Tensor): Tensor => {
    const [out] = ctx.runSubgraph(ctx.graph(name), [ctx.output(ops.cast(x, q.dtype), type)]);
    if (out?.kind !== 'tensor') ctx.fail(`the ${name} graph must return one tensor`);
    return out.tensor;
  };
  let kc = ops.cast(k, compute), vc = ops.cast(v, compute);
  if (qHeads !== kvHeads) {
    kc = ops.repeatInterleave(kc, qHeads / kvHeads, 1);
    vc = ops.repeatInterleave(vc, qHeads / kvHeads, 1);
  }
  const scale = ctx.float('scale') ?? 1 / Math.sqrt(q.shape[3]!);
  let scores = ops.mul(ops.matmul(ops.cast(q, compute), ops.transpose(kc, -2, -1)), scale);
  if (ctx.hasAttr('score_mod')) scores = ops.cast(apply('score_mod', scores), compute);
  if (ctx.hasAttr('mask_mod')) {
    const m = apply('mask_mod', scores);
    scores = m.dtype === 'bool' ? ops.where(m, scores, constant(scores, -Infinity)) : ops.cast(m, compute);
  }
  let probs = ops.softmax(scores, -1);
  if (ctx.hasAttr('prob_mod')) probs = ops.cast(apply('prob_mod', probs), compute);
  return [ops.cast(ops.matmul(probs, vc), q.dtype)];
}, 'ai.onnx.preview');

/**
 * RMSNormalization (opset 23): X / sqrt(mean(X²) + epsilon) over the axes from `axis` (default −1)
 * to the last, computed in stash_type (default FLOAT) and cast back, then · scale (broadcast).
 */
registerOnnxOp('RMSNormalization', {
  minOpset: 23,
  run: (ctx: NodeContext) => {
    const x = ctx.tensor(0);
    requireFloat(ctx, x, 'X', 0);
    if (x.rank === 0) ctx.fail('X must have at least one dimension');
    const axis = onnxAxis(ctx, ctx.int('axis', -1), x.rank);
    const stashType = ctx.int('stash_type', ElemType.FLOAT);
    const stash = storageDType(stashType);
    if (stash === undefined || !isFloating(stash)) ctx.fail(`stash_type ${ctx.typeName(stashType)} is not supported; it must be a floating type`);
    const xc = ops.cast(x, promoteTypes(stash, x.dtype));
    const axes = Array.from({ length: x.rank - axis }, (_, i) => axis + i);
    const rms = ops.sqrt(ops.add(ops.mean(ops.mul(xc, xc), axes, true), ctx.float('epsilon', 1e-5)));
    return [ops.mul(ops.cast(ops.div(xc, rms), x.dtype), ops.cast(ctx.tensor(1), x.dtype))];
  },
});

/**
 * RotaryEmbedding (opset 23) of X [B, H, S, D] (or [B, S, H·D] with num_heads): the first
 * rotary_embedding_dim (default D) features of each head are rotated in pairs by the angles whose
 * cos and sin the caches hold — cos_cache[position_ids] ([B, S, R/2]) when position_ids are
 * given, else the caches themselves ([B, S, R/2]). Pairs are (x[i], x[i + R/2]), or with
 * interleaved=1 (x[2i], x[2i+1]); each becomes (cos·x1 − sin·x2, sin·x1 + cos·x2). The other
 * features pass through.
 */
registerOnnxOp('RotaryEmbedding', {
  minOpset: 23,
  run: (ctx: NodeContext) => {
    const input = ctx.tensor(0);
    requireFloat(ctx, input, 'X', 0);
    if (input.rank !== 3 && input.rank !== 4) ctx.fail(`X must be 3-D [B, S, hidden] or 4-D [B, H, S, D], got ${shapeText(input)}`);
    // [B, S, H, D], as the reference computes.
    let x: Tensor;
    if (input.rank === 4) {
      x = ops.transpose(input, 1, 2);
    } else {
      const heads = ctx.int('num_heads', 0);
      if (heads <= 0) ctx.fail('a 3-D X needs the num_heads attribute');
      x = ops.transpose(splitHeads(ctx, input, heads, 'X'), 1, 2);
    }
    const [b, s, , d] = x.shape as [number, number, number, number];
    const rdim = ctx.int('rotary_embedding_dim', 0) || d;
    if (rdim % 2 !== 0 || rdim > d) ctx.fail(`rotary_embedding_dim ${rdim} must be even and at most the head size ${d}`);
    const half = rdim / 2;
    let cos = ctx.tensor(1), sin = ctx.tensor(2);
    const positions = ctx.optionalTensor(3);
    if (positions !== undefined) {
      const flat = ops.reshape(ops.cast(positions, 'int32'), [positions.size]);
      cos = ops.reshape(ops.indexSelect(cos, 0, flat), [...positions.shape, cos.shape[cos.rank - 1]!]);
      sin = ops.reshape(ops.indexSelect(sin, 0, flat), [...positions.shape, sin.shape[sin.rank - 1]!]);
    }
    if (cos.shape[cos.rank - 1] !== half || sin.shape[sin.rank - 1] !== half) {
      ctx.fail(`the cos/sin caches must have rotary_embedding_dim / 2 = ${half} features, got ${shapeText(cos)} and ${shapeText(sin)}`);
    }
    // [B, S, 1, R/2], broadcasting over the heads.
    cos = ops.unsqueeze(ops.cast(cos, x.dtype), -2);
    sin = ops.unsqueeze(ops.cast(sin, x.dtype), -2);
    const rotate = ops.narrow(x, 3, 0, rdim);
    const interleaved = ctx.int('interleaved', 0) !== 0;
    let x1: Tensor, x2: Tensor;
    if (interleaved) {
      const pairs = ops.reshape(rotate, [b, s, x.shape[2]!, half, 2]);
      x1 = ops.squeeze(ops.narrow(pairs, 4, 0, 1), 4);
      x2 = ops.squeeze(ops.narrow(pairs, 4, 1, 1), 4);
    } else {
      x1 = ops.narrow(rotate, 3, 0, half);
      x2 = ops.narrow(rotate, 3, half, half);
    }
    const real = ops.sub(ops.mul(cos, x1), ops.mul(sin, x2));
    const imag = ops.add(ops.mul(sin, x1), ops.mul(cos, x2));
    const rotated = interleaved ? ops.reshape(ops.stack([real, imag], -1), rotate.shape) : ops.cat([real, imag], 3);
    const y = rdim < d ? ops.cat([rotated, ops.narrow(x, 3, rdim, d - rdim)], 3) : rotated;
    return [input.rank === 4 ? ops.transpose(y, 1, 2) : ops.reshape(y, input.shape)];
  },
});

/** x · sigmoid(alpha · x). */
function swish(x: Tensor, alpha: number): Tensor {
  return ops.mul(x, ops.sigmoid(alpha === 1 ? x : ops.mul(x, alpha)));
}

// Swish (opset 24): x · sigmoid(alpha · x), alpha default 1 (SiLU).
registerOnnxOp('Swish', (ctx) => {
  const x = ctx.tensor(0);
  requireFloat(ctx, x, 'X', 0);
  return [swish(x, ctx.float('alpha', 1))];
});

// SwiGLU: Swish(a, alpha) · b (a gated linear unit with a Swish gate), as its function body.
registerOnnxOp('SwiGLU', (ctx) => {
  const a = ctx.tensor(0);
  requireFloat(ctx, a, 'A', 0);
  return [ops.mul(swish(a, ctx.float('alpha', 1)), ctx.tensor(1))];
});

/**
 * CausalConvWithState (opset 27): a depthwise causal 1-D convolution with a carried state, as in
 * Mamba-style blocks. input [B, C, L] is prefixed with past_state [B, C, k − 1] (zeros when absent),
 * convolved per channel with weight [C, 1, k] (+ bias [C]) without padding, then optionally passed
 * through SiLU (activation 'silu' or 'swish'; default 'none'). present_state is the last k − 1
 * positions of the prefixed input.
 */
registerOnnxOp('CausalConvWithState', (ctx: NodeContext) => {
  const x = ctx.tensor(0), weight = ctx.tensor(1);
  requireFloat(ctx, x, 'input', 0);
  if (x.rank !== 3) ctx.fail(`input must be [B, C, L], got ${shapeText(x)}`);
  const [b, c] = x.shape as [number, number, number];
  if (weight.rank !== 3 || weight.shape[0] !== c || weight.shape[1] !== 1) ctx.fail(`weight must be [${c}, 1, k] (depthwise), got ${shapeText(weight)}`);
  const k = weight.shape[2]!;
  const activation = ctx.string('activation', 'none');
  if (activation !== 'none' && activation !== 'silu' && activation !== 'swish') ctx.fail(`activation '${activation}' is not supported; supported: none, silu, swish`);
  const past = ctx.optionalTensor(3) ?? ops.zeros([b, c, k - 1], { dtype: x.dtype, backend: x.backend });
  if (past.rank !== 3 || past.shape[0] !== b || past.shape[1] !== c || past.shape[2] !== k - 1) {
    ctx.fail(`past_state must be [${b}, ${c}, ${k - 1}], got ${shapeText(past)}`);
  }
  const padded = ops.cat([ops.cast(past, x.dtype), x], 2);
  const bias = ctx.optionalTensor(2);
  let y = ops.conv1d(padded, ops.cast(weight, x.dtype), { groups: c, ...(bias === undefined ? {} : { bias: ops.cast(bias, x.dtype) }) });
  if (activation !== 'none') y = ops.cast(ops.silu(ops.cast(y, computeDType(x.dtype))), x.dtype);
  return [y, ops.narrow(padded, 2, padded.shape[2]! - (k - 1), k - 1)];
});

/**
 * LinearAttention (opset 27): causal linear attention as a recurrence over the T time steps of
 * query [B, T, Hq·dk], key [B, T, Hkv·dk] and value [B, T, Hkv·dv], with a state S [B, Hkv, dk, dv]
 * (past_state, default zeros), computed in float32 (float64 for DOUBLE). Per step, by update_rule
 * (default 'gated_delta'): 'gated'/'gated_delta' first decay S by exp(decay_t) (decay [B, T, Hkv]
 * per head or [B, T, Hkv·dk] per key dim); 'delta'/'gated_delta' replace v_t by
 * beta_t · (v_t − Sᵀ·k_t) (beta [B, T, Hkv or 1]; k_t times erase_gate_t there when given); then
 * S += k_t ⊗ v_t and the output is scale · q_t·S (scale default 1/sqrt(dk)), each group of
 * Hq/Hkv query heads reading one K/V head's state. Outputs [B, T, Hq·dv] and the final state
 * (in past_state's type, else the query's).
 */
registerOnnxOp('LinearAttention', (ctx: NodeContext) => {
  const query = ctx.tensor(0), key = ctx.tensor(1), value = ctx.tensor(2);
  [query, key, value].forEach((t, i) => {
    requireFloat(ctx, t, ['query', 'key', 'value'][i]!, i);
    if (t.rank !== 3) ctx.fail(`${['query', 'key', 'value'][i]} must be [B, T, H·D], got ${shapeText(t)}`);
  });
  const rule = ctx.string('update_rule', 'gated_delta');
  if (rule !== 'linear' && rule !== 'gated' && rule !== 'delta' && rule !== 'gated_delta') ctx.fail(`update_rule '${rule}' is not supported; supported: linear, gated, delta, gated_delta`);
  const qHeads = ctx.int('q_num_heads', 0), kvHeads = ctx.int('kv_num_heads', 0);
  if (qHeads <= 0 || kvHeads <= 0 || qHeads % kvHeads !== 0) ctx.fail(`q_num_heads (${qHeads}) must be a positive multiple of kv_num_heads (${kvHeads})`);
  const gating = rule === 'gated' || rule === 'gated_delta';
  const delta = rule === 'delta' || rule === 'gated_delta';
  const decay = ctx.optionalTensor(4), beta = ctx.optionalTensor(5), erase = ctx.optionalTensor(6);
  if (gating !== (decay !== undefined)) ctx.fail(`update_rule '${rule}' ${gating ? 'needs' : 'takes no'} decay input`);
  if (delta !== (beta !== undefined)) ctx.fail(`update_rule '${rule}' ${delta ? 'needs' : 'takes no'} beta input`);
  if (erase !== undefined && !delta) ctx.fail(`update_rule '${rule}' takes no erase_gate input`);

  const compute = computeDType(query.dtype);
  const [b, t] = query.shape as [number, number, number];
  const heads = (x: Tensor, h: number, name: string): Tensor => splitHeads(ctx, ops.cast(x, compute), h, name);
  const q = heads(query, qHeads, 'query'), k = heads(key, kvHeads, 'key'), v = heads(value, kvHeads, 'value');
  const dk = q.shape[3]!, dv = v.shape[3]!, group = qHeads / kvHeads;
  if (k.shape[3] !== dk) ctx.fail(`query's head size ${dk} differs from key's ${k.shape[3]}`);
  /** A per-step input [B, T, n] as [B, n, T, 1] (n heads, one value each). */
  const perHead = (x: Tensor, n: number): Tensor => ops.transpose(ops.reshape(ops.cast(x, compute), [b, t, n, 1]), 1, 2);
  let decay4: Tensor | undefined, beta4: Tensor | undefined;
  if (decay !== undefined) {
    const last = decay.shape[decay.rank - 1];
    if (decay.rank !== 3 || (last !== kvHeads && last !== kvHeads * dk)) ctx.fail(`decay must be [B, T, ${kvHeads}] or [B, T, ${kvHeads * dk}], got ${shapeText(decay)}`);
    decay4 = last === kvHeads ? perHead(decay, kvHeads) : heads(decay, kvHeads, 'decay');
  }
  if (beta !== undefined) {
    const last = beta.shape[beta.rank - 1]!;
    if (beta.rank !== 3 || (last !== kvHeads && last !== 1)) ctx.fail(`beta must be [B, T, ${kvHeads}] or [B, T, 1], got ${shapeText(beta)}`);
    beta4 = perHead(beta, last);
  }
  const erase4 = erase === undefined ? undefined : heads(erase, kvHeads, 'erase_gate');
  const past = ctx.optionalTensor(3);
  if (past !== undefined && (past.rank !== 4 || [b, kvHeads, dk, dv].some((d, i) => past.shape[i] !== d))) {
    ctx.fail(`past_state must be [${b}, ${kvHeads}, ${dk}, ${dv}], got ${shapeText(past)}`);
  }
  let state = past === undefined ? ops.zeros([b, kvHeads, dk, dv], { dtype: compute, backend: query.backend }) : ops.cast(past, compute);
  const scale = ctx.float('scale', 0) || 1 / Math.sqrt(dk);

  const step = (x: Tensor, i: number): Tensor => ops.narrow(x, 2, i, 1);
  const outputs: Tensor[] = [];
  for (let i = 0; i < t; i++) {
    const kt = step(k, i);
    let vt = step(v, i);
    // exp(decay) as [B, Hkv, dk or 1, 1], scaling the state's rows.
    if (decay4 !== undefined) state = ops.mul(state, ops.transpose(ops.exp(step(decay4, i)), -2, -1));
    if (beta4 !== undefined) {
      const ke = erase4 === undefined ? kt : ops.mul(step(erase4, i), kt);
      vt = ops.mul(step(beta4, i), ops.sub(vt, ops.matmul(ke, state)));
    }
    state = ops.add(state, ops.matmul(ops.transpose(kt, -2, -1), vt));
    // Query heads h·group .. h·group + group − 1 read K/V head h: [B, Hkv, group, dk] · S.
    const read = ops.matmul(ops.reshape(step(q, i), [b, kvHeads, group, dk]), state);
    outputs.push(ops.reshape(ops.mul(read, scale), [b, qHeads, 1, dv]));
  }
  const y = t === 0
    ? ops.zeros([b, 0, qHeads * dv], { dtype: compute, backend: query.backend })
    : ops.reshape(ops.transpose(ops.cat(outputs, 2), 1, 2), [b, t, qHeads * dv]);
  return [ops.cast(y, query.dtype), ops.cast(state, past?.dtype ?? query.dtype)];
});
