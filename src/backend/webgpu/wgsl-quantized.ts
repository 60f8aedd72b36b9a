// WGSL of the quantizedMatmul primitive, weight-only (QuantizedLinear on the GPU): one invocation per
// output element decodes its row (or column, for the transposed product of backward) of the packed
// codes and sums in float32. Codes are int8/uint8 storage, so their bytes arrive packed 4 per u32
// word; int4 codes pack two per byte, low nibble first. Dynamic int8 activations run the cpu kernel.
//
// params: [total, m, n, k, bits, signed, scheme, groupSize, groups, transposed, hasBias, hasZp,
//          xOffset, codesOffset (bytes), scalesOffset, zpOffset, biasOffset, rowBytes]
//   scheme: 0 per tensor, 1 per output channel (axis 0), 2 per input feature (axis 1), 3 group.
import { memoizeWgsl, WORKGROUP } from './wgsl.js';

export const QUANTIZED_MATMUL_PARAMS = 18;

function quantizedMatmulWgslText(): string {
  return `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> zps: array<i32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read> params: array<i32>;

fn code(j: i32, p: i32) -> i32 {
  let bits = params[4];
  let byteIndex = params[13] + j * params[17] + select(p >> 1u, p, bits == 8);
  let b = i32((codes[u32(byteIndex) >> 2u] >> ((u32(byteIndex) & 3u) * 8u)) & 0xffu);
  if (bits == 8) {
    return select(b, (b << 24u) >> 24u, params[5] != 0);
  }
  let nibble = select(b >> 4u, b & 0xf, (p & 1) == 0);
  return select(nibble, (nibble << 28u) >> 28u, params[5] != 0);
}

fn weight(j: i32, p: i32) -> f32 {
  let scheme = params[6];
  var s = 0;
  if (scheme == 1) { s = j; } else if (scheme == 2) { s = p; } else if (scheme == 3) { s = j * params[8] + p / params[7]; }
  var q = code(j, p);
  if (params[11] != 0) { q = q - zps[params[15] + s]; }
  return f32(q) * scales[params[14] + s];
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);
  if (i >= params[0]) { return; }
  let n = params[2];
  let k = params[3];
  let transposed = params[9] != 0;
  let cols = select(n, k, transposed);
  let inner = select(k, n, transposed);
  let r = i / cols;
  let o = i % cols;
  let xBase = params[12] + r * inner;
  var acc = 0.0;
  for (var p = 0; p < inner; p = p + 1) {
    let w = select(weight(o, p), weight(p, o), transposed);
    acc = acc + x[xBase + p] * w;
  }
  if (params[10] != 0) { acc = acc + bias[params[16] + o]; }
  out[i] = acc;
}`;
}

export const quantizedMatmulWgsl = memoizeWgsl(quantizedMatmulWgslText);
