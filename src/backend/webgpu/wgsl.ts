// WGSL generators for the webgpu backend's kernels. Each returns the shader text; the device thread
// compiles a text once and caches its pipeline, so a generator must return the same text for the same
// structure (shapes and strides travel in the `meta` buffer, never in the text).
//
// Conventions: binding 0 is the output, inputs follow, `meta` (array<i32>) is the last binding.
// Workgroups are laid out on a 2-D grid (x·y) when one dimension cannot hold them all.
// NaN and ±inf are produced at run time from bit patterns (a constant NaN does not compile) and
// tested by their bits, as Vulkan drivers may assume that no value is NaN.

/**
 * Caches a generator's text by its arguments: the same text object comes back for the same
 * structure, so building it, hashing it and recognizing it as already sent cost nothing per call.
 */
export function memoizeWgsl<A extends unknown[]>(generate: (...args: A) => string): (...args: A) => string {
  const cache = new Map<string, string>();
  return (...args: A): string => {
    const key = JSON.stringify(args);
    let text = cache.get(key);
    if (text === undefined) cache.set(key, text = generate(...args));
    return text;
  };
}

/** Dimensions a strided view may have in the generic kernels. */
export const MAX_RANK = 8;
/** Invocations per workgroup of the one-dimensional kernels. */
export const WORKGROUP = 256;

const SPECIALS = `
var<private> NAN_BITS: u32 = 0x7fc00000u;
var<private> INF_BITS: u32 = 0x7f800000u;
fn nan_() -> f32 { return bitcast<f32>(NAN_BITS); }
fn inf_() -> f32 { return bitcast<f32>(INF_BITS); }
fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn isinf_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }
// An integer with the order of the (non-NaN) floats, -0 = +0: comparisons by it are exact even where a
// GPU flushes subnormals to zero in float comparisons (WGSL allows that).
fn key_(x: f32) -> i32 { let u = bitcast<i32>(x); return select(u, -(u & 0x7fffffff), u < 0); }
`;

// Float32 math that WGSL leaves imprecise or undefined at the edges (log of 0 or a negative number,
// exp overflow, tanh of large arguments), written so that the edges match the reference. Exported
// for the compiler's generated kernels (compiler/codegen/wgsl.ts), so a fused body computes each op
// with the same functions as the op's own kernel.
export const FLOAT_MATH_WGSL = `${SPECIALS}
fn exp_(x: f32) -> f32 { if (x > 88.72283) { return inf_(); } if (x < -103.97) { return 0.0; } return exp(x); }
fn log_(x: f32) -> f32 { if (isnan_(x) || x < 0.0) { return nan_(); } if (x == 0.0) { return -inf_(); } if (isinf_(x)) { return x; } return log(x); }
fn log1p_(x: f32) -> f32 {
  if (isnan_(x) || x < -1.0) { return nan_(); } if (x == -1.0) { return -inf_(); } if (isinf_(x)) { return x; }
  let u = 1.0 + x; if (u == 1.0) { return x; } return log(u) * (x / (u - 1.0));
}
fn expm1_(x: f32) -> f32 {
  if (isnan_(x)) { return x; } if (x > 88.72283) { return inf_(); }
  if (abs(x) < 1e-5) { return x + 0.5 * x * x; }
  let u = exp(x); if (u == 1.0) { return x; } let um1 = u - 1.0; if (um1 == -1.0) { return -1.0; } return um1 * x / log(u);
}
fn sqrt_(x: f32) -> f32 { if (isnan_(x) || x < 0.0) { return nan_(); } if (isinf_(x)) { return x; } return sqrt(x); }
fn rsqrt_(x: f32) -> f32 { if (isnan_(x) || x < 0.0) { return nan_(); } if (x == 0.0) { return inf_(); } if (isinf_(x)) { return 0.0; } return 1.0 / sqrt(x); }
fn tanh_(x: f32) -> f32 {
  if (isnan_(x)) { return x; } if (x > 9.0) { return 1.0; } if (x < -9.0) { return -1.0; }
  if (abs(x) < 0.0004) { return x; }
  let e = exp(-2.0 * abs(x)); let t = (1.0 - e) / (1.0 + e); return select(t, -t, x < 0.0);
}
fn sigmoid_(x: f32) -> f32 { if (isnan_(x)) { return x; } if (x >= 0.0) { return 1.0 / (1.0 + exp_(-x)); } let e = exp_(x); return e / (1.0 + e); }
// erf by Abramowitz & Stegun 7.1.26 refined: |error| < 1.2e-7 (float32 rounding dominates).
fn erf_(x: f32) -> f32 {
  if (isnan_(x)) { return x; }
  let a = abs(x);
  if (a < 0.5) {
    // Maclaurin series: accurate near 0, where the rational form loses relative precision.
    let z = a * a;
    let s = a * (1.1283791671 + z * (-0.3761263890 + z * (0.1128379167 + z * (-0.0268661706 + z * (0.0052239776 + z * -0.0008548327)))));
    return select(s, -s, x < 0.0);
  }
  if (a > 4.0) { return select(1.0, -1.0, x < 0.0); }
  let t = 1.0 / (1.0 + 0.5 * a);
  let y = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  let r = 1.0 - y;
  return select(r, -r, x < 0.0);
}
fn gelu_(x: f32) -> f32 { if (isinf_(x)) { return select(0.0, x, x > 0.0); } return 0.5 * x * (1.0 + erf_(x * 0.70710678118654752)); }
fn geluGrad_(x: f32) -> f32 { if (isinf_(x)) { return select(0.0, 1.0, x > 0.0); } return 0.5 * (1.0 + erf_(x * 0.70710678118654752)) + x * exp_(-0.5 * x * x) * 0.3989422804014327; }
fn round_(x: f32) -> f32 {
  if (isnan_(x) || isinf_(x)) { return x; }
  let r = floor(x + 0.5);
  // Half to even, as PyTorch: a tie rounds to the even neighbour.
  if (r - x == 0.5 && (r * 0.5) != floor(r * 0.5)) { return r - 1.0; }
  return r;
}
// x^y with C's (and PyTorch's) special cases: y = 0 or x = 1 give 1 (NaN included); a finite
// negative x with a non-integer y gives NaN; an odd integer y keeps x's sign (-0 and -inf
// included); infinite x or y follow the limits. WGSL's own pow is undefined for x <= 0, so the
// magnitude is exp2(y·log2|x|) (relative error about |y·log2|x||·2^-21 on a GPU), with exact
// products for the common squares and cubes.
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0 || x == 1.0) { return 1.0; }
  if (isnan_(x) || isnan_(y)) { return nan_(); }
  if (y == 1.0) { return x; }
  if (y == 2.0) { return x * x; }
  if (y == 3.0) { return x * x * x; }
  let ax = abs(x);
  let negative = (bitcast<u32>(x) >> 31u) == 1u;
  if (isinf_(y)) {
    if (ax == 1.0) { return 1.0; }
    return select(0.0, inf_(), (ax > 1.0) == (y > 0.0));
  }
  let integer = floor(y) == y;
  if (negative && !integer && !isinf_(x) && ax != 0.0) { return nan_(); }
  // Integers beyond 2^24 are all even in float32.
  let odd = integer && abs(y) < 16777216.0 && (i32(abs(y)) & 1) == 1;
  var r: f32;
  if (ax == 0.0) { r = select(inf_(), 0.0, y > 0.0); }
  else if (isinf_(ax)) { r = select(0.0, inf_(), y > 0.0); }
  else if (y == 0.5) { r = sqrt(ax); }
  else {
    let t = y * log2(ax);
    if (t > 128.0) { r = inf_(); } else if (t < -150.0) { r = 0.0; } else { r = exp2(t); }
  }
  return select(r, -r, negative && odd);
}
fn sign_(x: f32) -> f32 { if (isnan_(x)) { return x; } if (x > 0.0) { return 1.0; } if (x < 0.0) { return -1.0; } return 0.0; }
fn maximum_(a: f32, b: f32) -> f32 { if (isnan_(a) || isnan_(b)) { return nan_(); } return select(b, a, key_(a) > key_(b)); }
fn minimum_(a: f32, b: f32) -> f32 { if (isnan_(a) || isnan_(b)) { return nan_(); } return select(b, a, key_(a) < key_(b)); }
// sin and cos with a three-part Cody-Waite reduction by π/2 and Cephes' float polynomials on
// [-π/4, π/4] (a GPU's own sin/cos are far less accurate away from 0). Beyond |x| = 2^17 the
// reduction loses bits: the GPU's own functions are used there.
fn sincosReduced_(x: f32) -> vec3f {
  let k = round(x * 0.63661977236758134);
  let r = ((x - k * 1.5703125) - k * 4.837512969970703125e-4) - k * 7.54978995489188216e-8;
  let z = r * r;
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  return vec3f(s, c, k);
}
fn sin_(x: f32) -> f32 {
  if (isnan_(x) || isinf_(x)) { return nan_(); }
  if (abs(x) > 131072.0) { return sin(x); }
  if (x == 0.0) { return x; }
  let v = sincosReduced_(x);
  let q = i32(v.z) & 3;
  if (q == 0) { return v.x; } if (q == 1) { return v.y; } if (q == 2) { return -v.x; } return -v.y;
}
fn cos_(x: f32) -> f32 {
  if (isnan_(x) || isinf_(x)) { return nan_(); }
  if (abs(x) > 131072.0) { return cos(x); }
  let v = sincosReduced_(x);
  let q = i32(v.z) & 3;
  if (q == 0) { return v.y; } if (q == 1) { return -v.x; } if (q == 2) { return -v.y; } return v.x;
}
`;

/** WGSL expression per float32 elementwise primitive, over inputs `a` (and `b`). */
export const FLOAT_EXPRESSIONS: Readonly<Record<string, string>> = {
  // relu and reluGrad test the sign by the bits: a GPU may flush a subnormal to zero in a comparison.
  neg: '-a', abs: 'abs(a)', relu: 'select(0.0, a, isnan_(a) || bitcast<i32>(a) > 0)',
  exp: 'exp_(a)', log: 'log_(a)', log1p: 'log1p_(a)', expm1: 'expm1_(a)', sqrt: 'sqrt_(a)', rsqrt: 'rsqrt_(a)',
  sin: 'sin_(a)', cos: 'cos_(a)', tanh: 'tanh_(a)', sigmoid: 'sigmoid_(a)', erf: 'erf_(a)', gelu: 'gelu_(a)', geluGrad: 'geluGrad_(a)',
  sign: 'sign_(a)', floor: 'floor(a)', ceil: 'ceil(a)', round: 'round_(a)',
  add: 'a + b', sub: 'a - b', mul: 'a * b', div: 'a / b', maximum: 'maximum_(a, b)', minimum: 'minimum_(a, b)', pow: 'pow_(a, b)',
  reluGrad: 'select(0.0, b, bitcast<i32>(a) > 0 && !isnan_(a))',
};

/** The flat index of this invocation on the 2-D grid. */
const FLAT_INDEX = `let i = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);`;
const ENTRY_1D = `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u)`;

/** Where element `i` of the output (its row-major index) sits in input `k`'s storage. */
/** WGSL `offsetOf(i, k)`: where element i (row-major over params' shape) sits in view k; shared by the elementwise kernels. */
export function stridedOffsetWgsl(): string {
  // meta: [n, rank, shape[MAX_RANK], then per input: strides[MAX_RANK], offset]
  return `fn offsetOf(i: i32, k: i32) -> i32 {
  let base = ${2 + MAX_RANK} + k * ${MAX_RANK + 1};
  var rem = i;
  var off = params[base + ${MAX_RANK}];
  for (var d = params[1] - 1; d >= 0; d--) {
    let s = params[2 + d];
    off += (rem % s) * params[base + d];
    rem = rem / s;
  }
  return off;
}`;
}

/**
 * An elementwise kernel over `arity` float32 (or, for `copy`, any 4-byte) inputs with any strides.
 * `flat`: every input is contiguous in the output's order, so input k's element i sits at offset_k + i.
 */
function elementwiseWgslText(expression: string, arity: number, flat: boolean, scalar = 'f32'): string {
  const names = ['a', 'b', 'c'];
  const inputs = Array.from({ length: arity }, (_, k) => `@group(0) @binding(${k + 1}) var<storage, read> in${k}: array<${scalar}>;`).join('\n');
  const loads = Array.from({ length: arity }, (_, k) => flat
    ? `let ${names[k]} = in${k}[params[${1 + k}] + i];`
    : `let ${names[k]} = in${k}[offsetOf(i, ${k})];`).join('\n  ');
  return `${scalar === 'f32' ? FLOAT_MATH_WGSL : ''}
@group(0) @binding(0) var<storage, read_write> out: array<${scalar}>;
${inputs}
@group(0) @binding(${arity + 1}) var<storage, read> params: array<i32>;
${flat ? '' : stridedOffsetWgsl()}
${ENTRY_1D} {
  ${FLAT_INDEX}
  if (i >= params[0]) { return; }
  ${loads}
  out[i] = ${expression};
}`;
}

/** One matmul kernel's shape: blocks of C per workgroup, the register block per invocation, the k step. */
interface MatmulTiling {
  /** Rows and columns of C per 16×16 workgroup (64 or 128). */
  readonly block: number;
  /** Rows and columns of C per invocation: block / 16. */
  readonly perInvocation: number;
  /** k per staged tile; block · depth = 1024, four loads per invocation. */
  readonly depth: number;
  /**
   * Blocks numbered along groups of 8 block rows, column by column within a group (grid x = block
   * count, y = batch), so that the blocks resident at one time share their A and B panels in cache;
   * otherwise grid x = block column, y = block row, z = batch.
   */
  readonly grouped: boolean;
}

/**
 * Batched matrix product C[b] = A[b]·B[b] with any strides, tiled: a 16×16 workgroup computes a
 * block×block block of C, each invocation a perInvocation² register block (rows ty + 16u, columns
 * tx + 16v, so that reads of the staged tiles do not conflict), from block×depth and depth×block
 * tiles staged in workgroup memory.
 * params: [M, N, K, batchRank, batchShape[6], aBatchStrides[6], bBatchStrides[6],
 *          aRowStride, aColStride, bRowStride, bColStride, aOffset, bOffset]
 */
function matmulTiledWgslText(t: MatmulTiling): string {
  const T = t.block, R = t.perInvocation, D = t.depth;
  const placement = t.grouped ? `
  let tilesM = (M + ${T - 1}) / ${T}; let tilesN = (N + ${T - 1}) / ${T};
  let blk = i32(wid.x);
  let perGroup = 8 * tilesN;
  let firstM = (blk / perGroup) * 8;
  let groupRows = min(tilesM - firstM, 8);
  let row0 = (firstM + (blk % perGroup) % groupRows) * ${T};
  let col0 = ((blk % perGroup) / groupRows) * ${T};
  let batch = i32(wid.y);` : `
  let row0 = i32(wid.y) * ${T}; let col0 = i32(wid.x) * ${T};
  let batch = i32(wid.z);`;
  return `
@group(0) @binding(0) var<storage, read_write> c: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<i32>;
var<workgroup> As: array<f32, ${T * D}>;
var<workgroup> Bs: array<f32, ${T * D}>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let M = params[0]; let N = params[1]; let K = params[2];
  ${placement}
  var aBase = params[26]; var bBase = params[27];
  var rem = batch;
  for (var d = params[3] - 1; d >= 0; d--) {
    let s = params[4 + d];
    let q = rem % s;
    aBase += q * params[10 + d];
    bBase += q * params[16 + d];
    rem = rem / s;
  }
  let ars = params[22]; let acs = params[23]; let brs = params[24]; let bcs = params[25];
  let tx = i32(lid.x); let ty = i32(lid.y);
  var acc: array<array<f32, ${R}>, ${R}>;
  for (var k0 = 0; k0 < K; k0 += ${D}) {
    for (var j = 0; j < 4; j++) {
      let e = i32(li) + 256 * j;
      // A tile: consecutive invocations take consecutive k of one row (coalesced for row-major A).
      let kk = e % ${D}; let mm = e / ${D};
      let r = row0 + mm; let ka = k0 + kk;
      var av = 0.0;
      if (r < M && ka < K) { av = a[aBase + r * ars + ka * acs]; }
      As[kk * ${T} + mm] = av;
      // B tile: consecutive invocations take consecutive columns of one row.
      let nn = e % ${T}; let kb = e / ${T}; let cc = col0 + nn;
      var bv = 0.0;
      if (cc < N && k0 + kb < K) { bv = b[bBase + (k0 + kb) * brs + cc * bcs]; }
      Bs[kb * ${T} + nn] = bv;
    }
    workgroupBarrier();
    for (var kk = 0; kk < ${D}; kk++) {
      var ar: array<f32, ${R}>;
      var br: array<f32, ${R}>;
      for (var u = 0; u < ${R}; u++) { ar[u] = As[kk * ${T} + ty + 16 * u]; br[u] = Bs[kk * ${T} + tx + 16 * u]; }
      for (var u = 0; u < ${R}; u++) { for (var v = 0; v < ${R}; v++) { acc[u][v] = fma(ar[u], br[v], acc[u][v]); } }
    }
    workgroupBarrier();
  }
  let cBase = batch * M * N;
  for (var u = 0; u < ${R}; u++) {
    let r = row0 + ty + 16 * u;
    if (r >= M) { continue; }
    for (var v = 0; v < ${R}; v++) {
      let cc = col0 + tx + 16 * v;
      if (cc < N) { c[cBase + r * N + cc] = acc[u][v]; }
    }
  }
}`;
}

/** 64×64 blocks, 4×4 per invocation (two FMAs per staged value read): products with few blocks. */
function matmulWgslText(): string {
  return matmulTiledWgslText({ block: 64, perInvocation: 4, depth: 16, grouped: false });
}

/**
 * 128×128 blocks, 8×8 per invocation (four FMAs per staged value read), in grouped order: x-fastest
 * order streams all of B once per block row, which for 4096² no longer fits the H100's L2.
 */
function matmulLargeWgslText(): string {
  return matmulTiledWgslText({ block: 128, perInvocation: 8, depth: 8, grouped: true });
}

/** Blocks of C from which matmulLargeWgsl pays (fewer would leave most of a large GPU idle). */
export const MATMUL_LARGE_MIN_BLOCKS = 256;

/** Batch dimensions a matmul may have (meta has room for six). */
export const MATMUL_MAX_BATCH_RANK = 6;

/**
 * A float32 reduction's starting value and its combining step of accumulator x and value y (NaN
 * wins; max and min order by key_, exact for subnormals). Shared with the compiler's fused
 * reductions (compiler/codegen/wgsl.ts), which must combine in the same way and order.
 */
export const REDUCE_WGSL: Readonly<Record<'sum' | 'max' | 'min', { init: string; combine: string }>> = {
  sum: { init: '0.0', combine: 'x + y' },
  max: { init: '-inf_()', combine: 'select(y, x, isnan_(x) || (!isnan_(y) && key_(x) > key_(y)))' },
  min: { init: 'inf_()', combine: 'select(y, x, isnan_(x) || (!isnan_(y) && key_(x) < key_(y)))' },
};

/** Invocations per workgroup of the reduction kernels (one workgroup per output element). */
export const REDUCE_WORKGROUP = 64;

/**
 * The end of a reduction: each invocation's accumulator `acc` into `part` (a workgroup array of
 * REDUCE_WORKGROUP), combined pairwise by halves; part[0] then holds the result.
 */
export const REDUCE_TREE_WGSL = `part[lid.x] = acc;
  workgroupBarrier();
  for (var w = ${REDUCE_WORKGROUP / 2}u; w > 0u; w = w / 2u) {
    if (lid.x < w) { part[lid.x] = combine(part[lid.x], part[lid.x + w]); }
    workgroupBarrier();
  }`;

/**
 * sum / max / min of float32 over some axes: one 64-invocation workgroup per output element, each
 * invocation strides over the reduced elements, then a tree in workgroup memory.
 * meta: [nOut, keptRank, keptShape[8], keptStrides[8], redRank, redShape[8], redStrides[8], redCount, offset]
 */
function reduceWgslText(op: 'sum' | 'max' | 'min'): string {
  const { init, combine } = REDUCE_WGSL[op];
  const R = MAX_RANK;
  return `${SPECIALS}
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<i32>;
var<workgroup> part: array<f32, ${REDUCE_WORKGROUP}>;
fn combine(x: f32, y: f32) -> f32 { return ${combine}; }
@compute @workgroup_size(${REDUCE_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let o = i32(wid.y * nwg.x + wid.x);
  if (o >= params[0]) { return; }
  var base = params[${4 + 4 * R}];
  var rem = o;
  for (var d = params[1] - 1; d >= 0; d--) { let s = params[2 + d]; base += (rem % s) * params[${2 + R} + d]; rem = rem / s; }
  let redRank = params[${2 + 2 * R}];
  let count = params[${3 + 4 * R}];
  var acc = ${init};
  for (var r = i32(lid.x); r < count; r += ${REDUCE_WORKGROUP}) {
    var off = base; var q = r;
    for (var d = redRank - 1; d >= 0; d--) { let s = params[${3 + 2 * R} + d]; off += (q % s) * params[${3 + 3 * R} + d]; q = q / s; }
    acc = combine(acc, x[off]);
  }
  ${REDUCE_TREE_WGSL}
  if (lid.x == 0u) { out[o] = part[0]; }
}`;
}

/**
 * softmax / logSoftmax of float32 along one axis: a 64-invocation workgroup per row (max, then the
 * sum of exponentials, then the outputs). The shift is the row's max, or 0 where it is ±inf.
 * meta: [rows, rowLength, keptRank, keptShape[8], inKeptStrides[8], outKeptStrides[8], inAxisStride, outAxisStride, offset]
 */
function softmaxWgslText(log: boolean): string {
  const R = MAX_RANK;
  return `${FLOAT_MATH_WGSL}
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<i32>;
var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = i32(wid.y * nwg.x + wid.x);
  if (row >= params[0]) { return; }
  let len = params[1];
  var inBase = params[${5 + 3 * R}]; var outBase = 0;
  var rem = row;
  for (var d = params[2] - 1; d >= 0; d--) {
    let s = params[3 + d]; let q = rem % s; rem = rem / s;
    inBase += q * params[${3 + R} + d]; outBase += q * params[${3 + 2 * R} + d];
  }
  let xs = params[${3 + 3 * R}]; let os = params[${4 + 3 * R}];
  var m = -inf_();
  for (var j = i32(lid.x); j < len; j += 64) { let v = x[inBase + j * xs]; if (v > m || isnan_(v)) { m = v; } }
  part[lid.x] = m;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w = w / 2u) {
    if (lid.x < w) { let v = part[lid.x + w]; if (v > part[lid.x] || isnan_(v)) { part[lid.x] = v; } }
    workgroupBarrier();
  }
  var shift = part[0];
  if (isinf_(shift)) { shift = 0.0; }
  workgroupBarrier();
  var s = 0.0;
  for (var j = i32(lid.x); j < len; j += 64) { s += exp_(x[inBase + j * xs] - shift); }
  part[lid.x] = s;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w = w / 2u) {
    if (lid.x < w) { part[lid.x] = part[lid.x] + part[lid.x + w]; }
    workgroupBarrier();
  }
  let total = part[0];
  ${log ? 'let lse = log_(total);' : ''}
  for (var j = i32(lid.x); j < len; j += 64) {
    let v = x[inBase + j * xs] - shift;
    out[outBase + j * os] = ${log ? 'v - lse' : 'exp_(v) / total'};
  }
}`;
}

/**
 * One optimizer update of a contiguous float32 parameter in place; the gradient may have any
 * strides (offsetOf with input slot 0). Scalars arrive as float bits in meta after the layout.
 * meta: [n, rank, shape[8], gradStrides[8], gradOffset, scalars...]
 */
function optimizerWgslText(kind: 'adam' | 'sgd', options: { maximize: boolean; coupledDecay: boolean; momentum: boolean; nesterov: boolean; firstStep: boolean }): string {
  const S = 2 + MAX_RANK + MAX_RANK + 1;
  const scalar = (k: number): string => `bitcast<f32>(params[${S + k}])`;
  const g = options.maximize ? '-grad[offsetOf(i, 0)]' : 'grad[offsetOf(i, 0)]';
  if (kind === 'adam') {
    // scalars: stepSize, biasCorrection2Sqrt, decay, weightDecay, 1 - beta1, beta2, 1 - beta2, eps
    return `
@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> params: array<i32>;
${stridedOffsetWgsl()}
${ENTRY_1D} {
  ${FLAT_INDEX}
  if (i >= params[0]) { return; }
  var gi = ${g};
  var p = param[i] * ${scalar(2)};
  ${options.coupledDecay ? `gi += ${scalar(3)} * p;` : ''}
  let mi = m[i] + (gi - m[i]) * ${scalar(4)};
  let vi = v[i] * ${scalar(5)} + ${scalar(6)} * gi * gi;
  m[i] = mi; v[i] = vi;
  let denom = sqrt(vi) / ${scalar(1)} + ${scalar(7)};
  p -= ${scalar(0)} * (mi / denom);
  param[i] = p;
}`;
  }
  // scalars: lr, momentum, 1 - dampening, weightDecay
  return `
@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
${options.momentum ? '@group(0) @binding(2) var<storage, read_write> buf: array<f32>;' : ''}
@group(0) @binding(${options.momentum ? 3 : 2}) var<storage, read> params: array<i32>;
${stridedOffsetWgsl()}
${ENTRY_1D} {
  ${FLAT_INDEX}
  if (i >= params[0]) { return; }
  var d = ${g};
  let p = param[i];
  d += ${scalar(3)} * p;
  ${options.momentum ? `
  var b = d;
  ${options.firstStep ? '' : `b = buf[i] * ${scalar(1)} + ${scalar(2)} * d;`}
  buf[i] = b;
  ${options.nesterov ? `d = d + ${scalar(1)} * b;` : 'd = b;'}` : ''}
  param[i] = p - ${scalar(0)} * d;
}`;
}

export const elementwiseWgsl = memoizeWgsl(elementwiseWgslText);

export const matmulWgsl = memoizeWgsl(matmulWgslText);

export const reduceWgsl = memoizeWgsl(reduceWgslText);

export const softmaxWgsl = memoizeWgsl(softmaxWgslText);

export const optimizerWgsl = memoizeWgsl(optimizerWgslText);

export const matmulLargeWgsl = memoizeWgsl(matmulLargeWgslText);
