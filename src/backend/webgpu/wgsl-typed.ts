// WGSL for elementwise primitives whose inputs or output are not float32: comparisons and logical
// ops (bool output), where, cast between float32/int32/bool/uint8/int8, and the data movement of
// gather, scatterAdd and sliceBackward. Every buffer is declared array<u32>: 4-byte elements are
// bit casts of a word, 1-byte elements (bool, uint8, int8) are bytes of a word (as the cpu backend
// stores them, one per byte), so an output of 1-byte elements is written a word (4 elements) per invocation.
import type { DType } from '../../core/dtype.js';
import { memoizeWgsl, stridedOffsetWgsl, MAX_RANK, WORKGROUP } from './wgsl.js';

/** How an element is held in a buffer. */
export type ElementType = 'f32' | 'i32' | 'u8' | 'i8';

/** How each dtype's elements are held in a buffer, for the typed kernels (float64 and the 16-bit floats have none). */
export const ELEMENT_TYPE: Partial<Record<DType, ElementType>> = { float32: 'f32', int32: 'i32', bool: 'u8', uint8: 'u8', int8: 'i8' };

/** The WGSL type an element of each kind is computed in. */
export const VALUE_TYPE: Readonly<Record<ElementType, string>> = { f32: 'f32', i32: 'i32', u8: 'u32', i8: 'i32' };

/**
 * float → int32 as the cpu backend (JS) converts: exported for the compiler's generated kernels,
 * which add it to FLOAT_MATH_WGSL (that text already has the other helpers below).
 */
export const INT_CONVERSION_WGSL = `
fn finite_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) < 0x7f800000u; }
// float → int32 as the cpu backend (JS): truncate, wrap modulo 2^32, NaN and ±inf give 0.
fn toI32_(x: f32) -> i32 {
  if (!finite_(x)) { return 0; }
  let t = trunc(x);
  if (abs(t) < 2147483648.0) { return i32(t); }
  let m = t - 4294967296.0 * floor(t / 4294967296.0);
  return bitcast<i32>(u32(m));
}
`;

const SPECIALS = `
var<private> NAN_BITS: u32 = 0x7fc00000u;
fn nan_() -> f32 { return bitcast<f32>(NAN_BITS); }
fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn key_(x: f32) -> i32 { let u = bitcast<i32>(x); return select(u, -(u & 0x7fffffff), u < 0); }
${INT_CONVERSION_WGSL}`;

/** WGSL reading element `o` (an i32 expression) of an array<u32> holding elements of `type`, as its value type. */
export function loadElementWgsl(type: ElementType, array: string, o: string): string {
  switch (type) {
    case 'f32': return `bitcast<f32>(${array}[${o}])`;
    case 'i32': return `bitcast<i32>(${array}[${o}])`;
    case 'u8': return `((${array}[${o} >> 2u] >> (8u * u32(${o} & 3))) & 0xffu)`;
    case 'i8': return `(bitcast<i32>(${array}[${o} >> 2u] << (24u - 8u * u32(${o} & 3))) >> 24u)`;
  }
}

function loader(k: number, type: ElementType): string {
  return `fn load${k}(o: i32) -> ${VALUE_TYPE[type]} { return ${loadElementWgsl(type, `in${k}`, 'o')}; }`;
}

/** WGSL for a comparison of two values `a`, `b` of one element type, as a u32 0/1 (NaN compares unequal, as in JS). */
export function compareExpression(op: string, type: ElementType): string {
  const sym: Record<string, string> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=' };
  if (type !== 'f32') return `select(0u, 1u, a ${sym[op]} b)`;
  // NaN is tested by its bits (a driver may assume no value is NaN), and the order by key_ (exact for subnormals).
  return op === 'ne' ? `select(0u, 1u, isnan_(a) || isnan_(b) || key_(a) != key_(b))` : `select(0u, 1u, !isnan_(a) && !isnan_(b) && key_(a) ${sym[op]} key_(b))`;
}

/** WGSL that is true where a value of the element type is nonzero (NaN counts, as in JS). */
function truthy(v: string, type: ElementType): string {
  return type === 'f32' ? `((bitcast<u32>(${v}) & 0x7fffffffu) != 0u)` : type === 'u8' ? `${v} != 0u` : `${v} != 0`;
}

/** WGSL for logicalAnd / logicalOr (of `a`, `b`) and logicalNot (of `a`), as a u32 0/1. */
export function logicalExpression(op: 'logicalAnd' | 'logicalOr' | 'logicalNot', ta: ElementType, tb: ElementType = ta): string {
  return op === 'logicalNot' ? `select(1u, 0u, ${truthy('a', ta)})`
    : `select(0u, 1u, ${truthy('a', ta)} ${op === 'logicalAnd' ? '&&' : '||'} ${truthy('b', tb)})`;
}

/** WGSL converting a value `a` of type `from` to dtype `to`, as castScalar does. */
export function castExpression(from: ElementType, to: DType): string | undefined {
  const toI32 = from === 'f32' ? 'toI32_(a)' : from === 'u8' ? 'i32(a)' : 'a';
  switch (to) {
    case 'float32': return from === 'f32' ? 'a' : 'f32(a)';
    case 'int32': return toI32;
    case 'bool': return `select(0u, 1u, ${truthy('a', from)})`;
    case 'uint8': return `u32(${toI32}) & 0xffu`;
    case 'int8': return `(${toI32} << 24u) >> 24u`;
    default: return undefined;
  }
}

/** Word bits of an output value. */
export function storeBits(type: ElementType, v: string): string {
  switch (type) {
    case 'f32': case 'i32': return `bitcast<u32>(${v})`;
    case 'u8': return `(u32(${v}) & 0xffu)`;
    case 'i8': return `(bitcast<u32>(${v}) & 0xffu)`;
  }
}

/**
 * An elementwise kernel over inputs of the given element types (named a, b, c in `expression`, as
 * their value types), producing `out`. Strided inputs as elementwiseWgsl's params.
 */
function typedElementwiseWgslText(inputs: readonly ElementType[], out: ElementType, expression: string): string {
  const names = ['a', 'b', 'c'];
  const decls = inputs.map((_, k) => `@group(0) @binding(${k + 1}) var<storage, read> in${k}: array<u32>;`).join('\n');
  const loads = inputs.map((_, k) => `let ${names[k]} = load${k}(offsetOf(i, ${k}));`).join('\n  ');
  const value = `fn value(i: i32) -> ${VALUE_TYPE[out]} {
  ${loads}
  return ${expression};
}`;
  const body = out === 'f32' || out === 'i32'
    ? `let i = g;
  if (i >= params[0]) { return; }
  out[i] = ${storeBits(out, 'value(i)')};`
    : `// Four 1-byte elements per invocation: one whole output word.
  let first = g * 4;
  if (first >= params[0]) { return; }
  var word = 0u;
  for (var e = 0; e < 4; e++) {
    if (first + e < params[0]) { word = word | (${storeBits(out, 'value(first + e)')} << (8u * u32(e))); }
  }
  out[g] = word;`;
  return `${SPECIALS}
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
${decls}
@group(0) @binding(${inputs.length + 1}) var<storage, read> params: array<i32>;
${inputs.map((t, k) => loader(k, t)).join('\n')}
${stridedOffsetWgsl()}
${value}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let g = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);
  ${body}
}`;
}

/** Invocations a typed kernel needs for n output elements. */
export function typedInvocations(n: number, out: ElementType): number {
  return out === 'f32' || out === 'i32' ? n : Math.ceil(n / 4);
}

/** Status words a kernel sets when it finds an index out of range: [code, index, size, axis]. */
export const STATUS_WORDS = 4;
/** The codes of STATUS_WORDS[0]. */
export const STATUS_OP = { gather: 1, scatterAdd: 2 } as const;

/**
 * torch.gather of 4-byte elements: out[c] = x[c with c[axis] ← index[c]].
 * params: [n, rank, shape[8] (the index's = the output's), xStrides[8] (axis stride 0), xOffset,
 *          indexStrides[8], indexOffset, axis, axisSize, xAxisStride]
 */
function gatherWgslText(): string {
  const R = MAX_RANK;
  return `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> status: array<atomic<i32>, ${STATUS_WORDS}>;
@group(0) @binding(4) var<storage, read> params: array<i32>;
${stridedOffsetWgsl()}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);
  if (i >= params[0]) { return; }
  let v = index[offsetOf(i, 1)];
  let size = params[${5 + 3 * R}];
  if (v < 0 || v >= size) {
    atomicStore(&status[1], v); atomicStore(&status[2], size); atomicStore(&status[3], params[${4 + 3 * R}]);
    atomicStore(&status[0], ${STATUS_OP.gather});
    out[i] = 0u;
    return;
  }
  out[i] = x[offsetOf(i, 0) + v * params[${6 + 3 * R}]];
}`;
}

/**
 * scatterAdd of float32, as a gather so that it needs no atomics and adds in the cpu kernel's order:
 * each output element starts from base and adds, in order along the axis, the src elements whose
 * index points at it. params: [n, rank, outShape[8], baseStrides[8], baseOffset, indexStrides[8],
 * indexOffset, srcStrides[8], srcOffset, indexShape[8], axis]
 */
function scatterAddWgslText(): string {
  const R = MAX_RANK;
  const idxS = 2 + R + (R + 1), srcS = 2 + R + 2 * (R + 1), idxShape = 2 + R + 3 * (R + 1), axisAt = idxShape + R;
  return `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> base: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read_write> status: array<atomic<i32>, ${STATUS_WORDS}>;
@group(0) @binding(5) var<storage, read> params: array<i32>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);
  if (i >= params[0]) { return; }
  let rank = params[1];
  let axis = params[${axisAt}];
  var rem = i;
  var baseOff = params[${2 + 2 * R}];
  var idxOff = params[${idxS + R}];
  var srcOff = params[${srcS + R}];
  var inside = true;
  var want = 0;
  for (var d = rank - 1; d >= 0; d--) {
    let s = params[2 + d];
    let c = rem % s;
    rem = rem / s;
    baseOff += c * params[${2 + R} + d];
    if (d == axis) { want = c; continue; }
    if (c >= params[${idxShape} + d]) { inside = false; }
    idxOff += c * params[${idxS} + d];
    srcOff += c * params[${srcS} + d];
  }
  var acc = base[baseOff];
  if (inside) {
    let size = params[2 + axis];
    for (var t = 0; t < params[${idxShape} + axis]; t++) {
      let v = index[idxOff + t * params[${idxS} + axis]];
      if (v == want) { acc = acc + src[srcOff + t * params[${srcS} + axis]]; }
      if (want == 0 && (v < 0 || v >= size)) {
        atomicStore(&status[1], v); atomicStore(&status[2], size); atomicStore(&status[3], axis);
        atomicStore(&status[0], ${STATUS_OP.scatterAdd});
      }
    }
  }
  out[i] = acc;
}`;
}

/**
 * sliceBackward of 4-byte elements: zeros of the input's shape with x placed at start + step·j.
 * params: [n, rank, outShape[8], xStrides[8], xOffset, starts[8], steps[8], xShape[8]]
 */
function sliceBackwardWgslText(): string {
  const R = MAX_RANK;
  const starts = 3 + 2 * R, steps = starts + R, xShape = steps + R;
  return `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<i32>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);
  if (i >= params[0]) { return; }
  var rem = i;
  var off = params[${2 + 2 * R}];
  for (var d = params[1] - 1; d >= 0; d--) {
    let s = params[2 + d];
    let r = rem % s - params[${starts} + d];
    rem = rem / s;
    let step = params[${steps} + d];
    if (r < 0 || r % step != 0 || r / step >= params[${xShape} + d]) { out[i] = 0u; return; }
    off += (r / step) * params[${2 + R} + d];
  }
  out[i] = x[off];
}`;
}

export const typedElementwiseWgsl = memoizeWgsl(typedElementwiseWgslText);

export const gatherWgsl = memoizeWgsl(gatherWgslText);

export const scatterAddWgsl = memoizeWgsl(scatterAddWgslText);

export const sliceBackwardWgsl = memoizeWgsl(sliceBackwardWgslText);

/** out[view 0 at i] = in[view 1 at i] for 4-byte elements: a copy into a strided view (params as typedElementwiseWgsl's for two views). */
function stridedCopyWgslText(): string {
  return `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<storage, read> in0: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<i32>;
${stridedOffsetWgsl()}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);
  if (i >= params[0]) { return; }
  out[offsetOf(i, 0)] = in0[offsetOf(i, 1)];
}`;
}
export const stridedCopyWgsl = memoizeWgsl(stridedCopyWgslText);
