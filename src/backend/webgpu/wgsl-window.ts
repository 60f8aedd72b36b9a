// WGSL for the window primitives of convolution and pooling over [N, C, D, H, W] views (fewer
// spatial axes padded in front with size 1, as the cpu kernels' Sweep3): im2col (one invocation per
// patch-matrix entry), col2im (one per input element, summing the patch entries that cover it in
// the cpu kernel's order, so no atomics are needed) and maxPoolIndices (one per window).
import { memoizeWgsl, WORKGROUP } from './wgsl.js';

/**
 * params (see sweepParams in backend.ts): [0] total invocations, [1] n, [2] channels, [3] groups,
 * [4..6] size D H W, [7..9] windows OD OH OW, [10..12] kernel, [13..15] stride, [16..18] dilation,
 * [19..21] padding before, [22..26] input strides N C D H W, [27] input offset,
 * [28..30] patch-matrix strides (group, row, column) and [31] its offset (col2im's input).
 */
export const WINDOW_PARAMS = 32;

const HEADER = `
fn p(i: i32) -> i32 { return params[i]; }
`;

function entry(body: string): string {
  return `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let o = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);
  if (o >= params[0]) { return; }
${body}
}`;
}

function im2colWgslText(): string {
  return `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<i32>;
${HEADER}
${entry(`  let cg = p(2) / p(3);
  let K = p(10) * p(11) * p(12);
  let L = p(7) * p(8) * p(9);
  let cols = cg * K;
  var col = o % cols; var row = o / cols;
  let l = row % L; row = row / L;
  let n = row % p(1); let gr = row / p(1);
  let c = col / K; var k = col % K;
  let kw = k % p(12); k = k / p(12); let kh = k % p(11); let kd = k / p(11);
  let ow = l % p(9); let oh = (l / p(9)) % p(8); let od = l / (p(9) * p(8));
  let id = od * p(13) - p(19) + kd * p(16);
  let ih = oh * p(14) - p(20) + kh * p(17);
  let iw = ow * p(15) - p(21) + kw * p(18);
  if (id < 0 || id >= p(4) || ih < 0 || ih >= p(5) || iw < 0 || iw >= p(6)) { out[o] = 0u; return; }
  out[o] = x[p(27) + n * p(22) + (gr * cg + c) * p(23) + id * p(24) + ih * p(25) + iw * p(26)];`)}`;
}

function col2imWgslText(): string {
  return `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> cols: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<i32>;
${HEADER}
// The window start along an axis covering input position i with tap t, or -1.
fn window(i: i32, t: i32, pad: i32, dil: i32, stride: i32, windows: i32) -> i32 {
  let num = i + pad - t * dil;
  if (num < 0 || num % stride != 0) { return -1; }
  let w = num / stride;
  return select(-1, w, w < windows);
}
${entry(`  var r = o;
  let iw = r % p(6); r = r / p(6);
  let ih = r % p(5); r = r / p(5);
  let id = r % p(4); r = r / p(4);
  let ch = r % p(2); let n = r / p(2);
  let cg = p(2) / p(3);
  let gr = ch / cg; let c = ch % cg;
  let K = p(10) * p(11) * p(12);
  var acc = 0.0;
  // Windows in increasing order (taps in decreasing order): the order the cpu kernel adds them in.
  for (var kd = p(10) - 1; kd >= 0; kd--) {
    let od = window(id, kd, p(19), p(16), p(13), p(7));
    if (od < 0) { continue; }
    for (var kh = p(11) - 1; kh >= 0; kh--) {
      let oh = window(ih, kh, p(20), p(17), p(14), p(8));
      if (oh < 0) { continue; }
      for (var kw = p(12) - 1; kw >= 0; kw--) {
        let ow = window(iw, kw, p(21), p(18), p(15), p(9));
        if (ow < 0) { continue; }
        let row = n * (p(7) * p(8) * p(9)) + (od * p(8) + oh) * p(9) + ow;
        let col = c * K + (kd * p(11) + kh) * p(12) + kw;
        acc = acc + cols[p(31) + gr * p(28) + row * p(29) + col * p(30)];
      }
    }
  }
  out[o] = acc;`)}`;
}

function maxPoolIndicesWgslText(): string {
  return `
@group(0) @binding(0) var<storage, read_write> out: array<i32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<i32>;
${HEADER}
fn isnan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn key_(v: f32) -> i32 { let u = bitcast<i32>(v); return select(u, -(u & 0x7fffffff), u < 0); }
${entry(`  var r = o;
  let ow = r % p(9); r = r / p(9);
  let oh = r % p(8); r = r / p(8);
  let od = r % p(7); r = r / p(7);
  let c = r % p(2); let n = r / p(2);
  let base = p(27) + n * p(22) + c * p(23);
  var best = -1; var bestV = 0.0;
  for (var kd = 0; kd < p(10); kd++) { for (var kh = 0; kh < p(11); kh++) { for (var kw = 0; kw < p(12); kw++) {
    let id = od * p(13) + kd * p(16); let ih = oh * p(14) + kh * p(17); let iw = ow * p(15) + kw * p(18);
    let v = x[base + id * p(24) + ih * p(25) + iw * p(26)];
    // Ties keep the first; a NaN replaces a number but not an earlier NaN (as the cpu kernel).
    if (best < 0 || (isnan_(v) && !isnan_(bestV)) || (!isnan_(v) && !isnan_(bestV) && key_(v) > key_(bestV))) {
      best = (id * p(5) + ih) * p(6) + iw; bestV = v;
    }
  } } }
  out[o] = best;`)}`;
}

export const im2colWgsl = memoizeWgsl(im2colWgslText);
export const col2imWgsl = memoizeWgsl(col2imWgslText);
export const maxPoolIndicesWgsl = memoizeWgsl(maxPoolIndicesWgslText);
