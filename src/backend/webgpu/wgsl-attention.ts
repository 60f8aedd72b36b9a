// WGSL for the fused attention primitives: softmax(q·kᵀ·scale (+ causal mask))·v and its gradient,
// for one batch element and one query row (forward, and dq) or one key row (dk, dv) per 64-invocation
// workgroup. The row's scores sit in workgroup memory (so at most MAX_KEYS keys); each invocation
// owns up to four output columns (so head sizes up to MAX_HEAD). The backward recomputes the scores
// (as the cpu kernel does, FlashAttention-style): a first pass per query row writes dq and the row's
// logsumexp and D = Σ P∘dP to a scratch buffer, a second pass per key row sums dk and dv over the
// queries in chunks of 64, whose P and dS are computed once per chunk into workgroup memory.
import { memoizeWgsl } from './wgsl.js';

/** Keys a row may have (its scores are held in workgroup memory). */
export const MAX_KEYS = 2048;
/** Head size (E and Ev) at most: four columns per invocation. */
export const MAX_HEAD = 256;
/** Batch dimensions the params have room for. */
export const ATTENTION_MAX_BATCH_RANK = 6;

// params: [Bt, L, S, E, Ev, causal, scale bits, batchRank, batchShape[6],
//          qB[6], kB[6], vB[6], gB[6],  (batch strides of q, k, v, dOut)
//          qRow, qCol, kRow, kCol, vRow, vCol, gRow, gCol, qOff, kOff, vOff, gOff]
export const ATTENTION_PARAMS = 8 + 6 * 5 + 12;

const COMMON = `
var<private> INF_BITS: u32 = 0x7f800000u;
fn inf_() -> f32 { return bitcast<f32>(INF_BITS); }
struct Bases { q: i32, k: i32, v: i32, g: i32 }
fn bases(b: i32) -> Bases {
  var r = Bases(params[46], params[47], params[48], params[49]);
  var rem = b;
  for (var d = params[7] - 1; d >= 0; d--) {
    let s = params[8 + d]; let c = rem % s; rem = rem / s;
    r.q += c * params[14 + d]; r.k += c * params[20 + d]; r.v += c * params[26 + d]; r.g += c * params[32 + d];
  }
  return r;
}
fn qAt(o: Bases, i: i32, e: i32) -> f32 { return q[o.q + i * params[38] + e * params[39]]; }
fn kAt(o: Bases, j: i32, e: i32) -> f32 { return k[o.k + j * params[40] + e * params[41]]; }
fn vAt(o: Bases, j: i32, e: i32) -> f32 { return v[o.v + j * params[42] + e * params[43]]; }
fn score(o: Bases, i: i32, j: i32) -> f32 {
  var s = 0.0;
  for (var e = 0; e < params[3]; e++) { s = fma(qAt(o, i, e), kAt(o, j, e), s); }
  return s * bitcast<f32>(params[6]);
}
fn allowed(i: i32, j: i32) -> bool { return params[5] == 0 || j <= i; }
var<workgroup> red: array<f32, 64>;
fn reduceMax(v: f32, lid: u32) -> f32 {
  red[lid] = v; workgroupBarrier();
  for (var s = 32u; s > 0u; s = s / 2u) { if (lid < s) { red[lid] = max(red[lid], red[lid + s]); } workgroupBarrier(); }
  let r = red[0]; workgroupBarrier(); return r;
}
fn reduceSum(v: f32, lid: u32) -> f32 {
  red[lid] = v; workgroupBarrier();
  for (var s = 32u; s > 0u; s = s / 2u) { if (lid < s) { red[lid] = red[lid] + red[lid + s]; } workgroupBarrier(); }
  let r = red[0]; workgroupBarrier(); return r;
}
var<workgroup> p: array<f32, ${MAX_KEYS}>;
// Softmax of query row i's scores into p[0..S): returns (max, sum of exponentials).
fn softmaxRow(o: Bases, i: i32, lid: u32) -> vec2f {
  let S = params[2];
  var m = -inf_();
  for (var j = i32(lid); j < S; j += 64) {
    var s = -inf_();
    if (allowed(i, j)) { s = score(o, i, j); }
    p[j] = s; m = max(m, s);
  }
  m = reduceMax(m, lid);
  var l = 0.0;
  for (var j = i32(lid); j < S; j += 64) {
    var e = 0.0;
    if (allowed(i, j)) { e = exp(p[j] - m); }
    p[j] = e; l += e;
  }
  l = reduceSum(l, lid);
  for (var j = i32(lid); j < S; j += 64) { p[j] = p[j] / l; }
  workgroupBarrier();
  return vec2f(m, l);
}
`;

const BINDINGS = (extra: string): string => `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
${extra}`;

/** out[b, i, :] = softmax row i · v. */
function attentionWgslText(): string {
  return `${BINDINGS('@group(0) @binding(4) var<storage, read> params: array<i32>;')}
${COMMON}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let lid = lid3.x;
  let i = i32(wid.x); let b = i32(wid.y);
  let L = params[1]; let S = params[2]; let Ev = params[4];
  let o = bases(b);
  _ = softmaxRow(o, i, lid);
  for (var c = 0; c < 4; c++) {
    let e = i32(lid) + 64 * c;
    if (e >= Ev) { break; }
    var acc = 0.0;
    for (var j = 0; j < S; j++) { acc = fma(p[j], vAt(o, j, e), acc); }
    out[(b * L + i) * Ev + e] = acc;
  }
}`;
}

/**
 * The first backward pass, per query row: dq, and (logsumexp, D) of the row into `rows`.
 * out holds dq, dk, dv packed: dq at 0, dk at Bt·L·E, dv at Bt·L·E + Bt·S·E.
 */
function attentionGradRowsWgslText(): string {
  return `${BINDINGS(`@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> rows: array<f32>;
@group(0) @binding(6) var<storage, read> params: array<i32>;`)}
${COMMON}
fn gAt(o: Bases, i: i32, e: i32) -> f32 { return g[o.g + i * params[44] + e * params[45]]; }
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let lid = lid3.x;
  let i = i32(wid.x); let b = i32(wid.y);
  let L = params[1]; let S = params[2]; let E = params[3]; let Ev = params[4];
  let scale = bitcast<f32>(params[6]);
  let o = bases(b);
  let ml = softmaxRow(o, i, lid);
  // p[j] ← dS_j = P_j (dP_j − D), dP_j = dOut_i · v_j, D = Σ_j P_j dP_j.
  var dsum = 0.0;
  var dp: array<f32, ${MAX_KEYS / 64}>;
  for (var j = i32(lid); j < S; j += 64) {
    var d = 0.0;
    for (var e = 0; e < Ev; e++) { d = fma(gAt(o, i, e), vAt(o, j, e), d); }
    dp[j / 64] = d;
    dsum = fma(p[j], d, dsum);
  }
  let D = reduceSum(dsum, lid);
  for (var j = i32(lid); j < S; j += 64) { p[j] = p[j] * (dp[j / 64] - D); }
  workgroupBarrier();
  for (var c = 0; c < 4; c++) {
    let e = i32(lid) + 64 * c;
    if (e >= E) { break; }
    var acc = 0.0;
    for (var j = 0; j < S; j++) { acc = fma(p[j], kAt(o, j, e), acc); }
    out[(b * L + i) * E + e] = acc * scale;
  }
  if (lid == 0u) { rows[2 * (b * L + i)] = ml.x + log(ml.y); rows[2 * (b * L + i) + 1] = D; }
}`;
}

/** The second backward pass, per key row j: dk_j = scale Σ_i dS_ij q_i and dv_j = Σ_i P_ij dOut_i. */
function attentionGradColumnsWgslText(): string {
  return `${BINDINGS(`@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read> rows: array<f32>;
@group(0) @binding(6) var<storage, read> params: array<i32>;`)}
${COMMON}
fn gAt(o: Bases, i: i32, e: i32) -> f32 { return g[o.g + i * params[44] + e * params[45]]; }
var<workgroup> ds: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let lid = lid3.x;
  let j = i32(wid.x); let b = i32(wid.y);
  let Bt = params[0]; let L = params[1]; let S = params[2]; let E = params[3]; let Ev = params[4];
  let scale = bitcast<f32>(params[6]);
  let o = bases(b);
  var dk: array<f32, 4>;
  var dv: array<f32, 4>;
  for (var i0 = 0; i0 < L; i0 += 64) {
    // This chunk's P_ij and dS_ij, one query row per invocation.
    let i = i0 + i32(lid);
    var pij = 0.0; var dsij = 0.0;
    if (i < L && allowed(i, j)) {
      pij = exp(score(o, i, j) - rows[2 * (b * L + i)]);
      var d = 0.0;
      for (var e = 0; e < Ev; e++) { d = fma(gAt(o, i, e), vAt(o, j, e), d); }
      dsij = pij * (d - rows[2 * (b * L + i) + 1]);
    }
    p[lid] = pij; ds[lid] = dsij;
    workgroupBarrier();
    let n = min(64, L - i0);
    for (var c = 0; c < 4; c++) {
      let e = i32(lid) + 64 * c;
      for (var t = 0; t < n; t++) {
        if (e < E) { dk[c] = fma(ds[t], qAt(o, i0 + t, e), dk[c]); }
        if (e < Ev) { dv[c] = fma(p[t], gAt(o, i0 + t, e), dv[c]); }
      }
    }
    workgroupBarrier();
  }
  let dkBase = Bt * L * E;
  let dvBase = dkBase + Bt * S * E;
  for (var c = 0; c < 4; c++) {
    let e = i32(lid) + 64 * c;
    if (e < E) { out[dkBase + (b * S + j) * E + e] = dk[c] * scale; }
    if (e < Ev) { out[dvBase + (b * S + j) * Ev + e] = dv[c]; }
  }
}`;
}

export const attentionWgsl = memoizeWgsl(attentionWgslText);

export const attentionGradRowsWgsl = memoizeWgsl(attentionGradRowsWgslText);

export const attentionGradColumnsWgsl = memoizeWgsl(attentionGradColumnsWgslText);
