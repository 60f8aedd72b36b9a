// WGSL for the row primitives of layer normalization (over the last axis): layerNormCore,
// layerNormRstd and layerNormCoreGrad, one 64-invocation workgroup per row (mean, then the biased
// variance, then the outputs), float32 throughout.
import { memoizeWgsl, MAX_RANK } from './wgsl.js';

/** params: [rows, len, keptRank, keptShape[8], xKeptStrides[8], xLastStride, xOffset, gKeptStrides[8], gLastStride, gOffset, eps bits] */
export const LAYER_NORM_PARAMS = 3 + MAX_RANK + 2 * (MAX_RANK + 2) + 1;

function layerNormWgslText(mode: 'core' | 'rstd' | 'grad'): string {
  const R = MAX_RANK;
  const xS = 3 + R, gS = 3 + R + (R + 2), epsAt = 3 + R + 2 * (R + 2);
  return `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${mode === 'grad' ? '@group(0) @binding(2) var<storage, read> g: array<f32>;' : ''}
@group(0) @binding(${mode === 'grad' ? 3 : 2}) var<storage, read> params: array<i32>;
var<workgroup> part: array<f32, 64>;
var<workgroup> part2: array<f32, 64>;
fn total(v: f32, w: f32, lid: u32) -> vec2f {
  part[lid] = v; part2[lid] = w;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s / 2u) {
    if (lid < s) { part[lid] = part[lid] + part[lid + s]; part2[lid] = part2[lid] + part2[lid + s]; }
    workgroupBarrier();
  }
  let r = vec2f(part[0], part2[0]);
  workgroupBarrier();
  return r;
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let row = i32(wid.y * nwg.x + wid.x);
  if (row >= params[0]) { return; }
  let lid = lid3.x;
  let len = params[1];
  var xo = params[${xS + R + 1}];
  var go = params[${gS + R + 1}];
  var rem = row;
  for (var d = params[2] - 1; d >= 0; d--) {
    let s = params[3 + d]; let q = rem % s; rem = rem / s;
    xo += q * params[${xS} + d]; go += q * params[${gS} + d];
  }
  let xs = params[${xS + R}]; let gs = params[${gS + R}];
  let eps = bitcast<f32>(params[${epsAt}]);
  // Sums of x − x[0] rather than of x: when the row's spread is tiny against its values (where eps
  // matters), float32 sums of x would lose the deviations to rounding (the cpu kernel sums in float64).
  let pivot = x[xo];
  var s1 = 0.0;
  for (var j = i32(lid); j < len; j += 64) { s1 += x[xo + j * xs] - pivot; }
  let shift = total(s1, 0.0, lid).x / f32(len);
  var s2 = 0.0;
  for (var j = i32(lid); j < len; j += 64) { let c = (x[xo + j * xs] - pivot) - shift; s2 += c * c; }
  let rstd = 1.0 / sqrt(total(s2, 0.0, lid).x / f32(len) + eps);
  ${mode === 'rstd' ? 'if (lid == 0u) { out[row] = rstd; }' : mode === 'core' ? `
  for (var j = i32(lid); j < len; j += 64) { out[row * len + j] = ((x[xo + j * xs] - pivot) - shift) * rstd; }` : `
  var sg = 0.0; var sgy = 0.0;
  for (var j = i32(lid); j < len; j += 64) {
    let gj = g[go + j * gs]; let y = ((x[xo + j * xs] - pivot) - shift) * rstd;
    sg += gj; sgy += gj * y;
  }
  let t = total(sg, sgy, lid);
  let mg = t.x / f32(len); let mgy = t.y / f32(len);
  for (var j = i32(lid); j < len; j += 64) {
    let y = ((x[xo + j * xs] - pivot) - shift) * rstd;
    out[row * len + j] = rstd * (g[go + j * gs] - mg - y * mgy);
  }`}
}`;
}

export const layerNormWgsl = memoizeWgsl(layerNormWgslText);
