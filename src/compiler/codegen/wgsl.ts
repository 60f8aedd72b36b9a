// The WGSL emitter of the kernel IR: one compute shader per fused node for tensors on the webgpu
// backend, so a `fusedElementwise` node (or a matmul epilogue) is one dispatch instead of one per
// body op, with no intermediate buffers.
//
// What it emits (canEmitWgsl says whether a spec qualifies):
//   - values of float32, int32, bool, uint8 and int8, held as the webgpu backend's typed kernels
//     hold them (f32, i32, u32 for bool/uint8, i32 for int8; 1-byte elements are bytes of 32-bit
//     words, four per word, as the cpu backend stores them);
//   - float32 ops with the backend's own expressions and helper functions (FLOAT_EXPRESSIONS over
//     FLOAT_MATH_WGSL: subnormal-safe comparisons, NaN and inf by their bits, range-reduced sin/cos,
//     exp/log/tanh/erf edges), comparisons, logical ops, isnan, where and casts with the typed
//     kernels' expressions (wgsl-typed.ts), and int32 arithmetic as the cpu kernels (which the
//     backend runs for int32) compute it: so each op gives what its own kernel gives when run alone;
//   - inputs read through their strided layouts (offset, strides, stride 0 broadcasts), baked into
//     the text as constants (a compiled graph's layouts rarely change, and constant divisors make
//     the index arithmetic cheap); a contiguous output; literals as params words read at run time;
//   - a trailing sum/max/min of a float32 body, as the backend's reduce kernel computes it (one
//     64-invocation workgroup per output element, the same lane order, combine step and tree), so
//     a fused reduction gives the bits of the body's kernel followed by the reduce kernel.
// Not emitted: float64 and the 16-bit floats,
// arithmetic on bool/uint8/int8 values, prod reductions and reductions of non-float32 values.
//
// Numerics: each op's expression is the one the per-op kernel evaluates, on the same f32/i32 values
// (a body value is what storing it and loading it back gives), so a fused kernel equals the unfused
// ops where the shader compiler evaluates them as written. Literals are not constants of the text
// because a compiler may then rewrite x / c as x · (1/c), which the div kernel (its divisor loaded
// at run time) does not do. WGSL also lets a compiler contract a product and a sum into one fma,
// which a per-op kernel cannot (its product is stored first): where a driver does that, mul-then-add
// bodies differ from the unfused ops in the last bit. test/compiler/webgpu-kernels.test.ts checks
// bit equality on SwiftShader, which contracts nothing.
import type { DType } from '../../core/dtype.js';
import { sizeOf } from '../../core/shape.js';
import { FLOAT_EXPRESSIONS, FLOAT_MATH_WGSL, REDUCE_TREE_WGSL, REDUCE_WGSL, REDUCE_WORKGROUP, WORKGROUP } from '../../backend/webgpu/wgsl.js';
import {
  ELEMENT_TYPE, INT_CONVERSION_WGSL, VALUE_TYPE, castExpression, compareExpression, loadElementWgsl, logicalExpression, storeBits,
} from '../../backend/webgpu/wgsl-typed.js';
import { PARAMS_SLOT_BYTES } from '../../backend/webgpu/protocol.js';
import { simplifyKernel, type KernelSpec } from './kernel-ir.js';

/**
 * int32 arithmetic as the cpu kernels compute it (the webgpu backend runs them for int32): a sum
 * or difference wraps modulo 2^32 (WGSL's i32 does too), a quotient truncates and is 0 for a zero
 * divisor (x / 0 in JS is ±inf or NaN, stored as 0; WGSL would give x). A product wraps its exact
 * value, where the cpu wraps the double product: they differ only beyond 2^53 in magnitude.
 */
const INT_EXPRESSIONS: Readonly<Record<string, string>> = {
  add: 'a + b', sub: 'a - b', mul: 'a * b', div: 'select(a / b, 0, b == 0)', maximum: 'max(a, b)', minimum: 'min(a, b)',
  neg: '-a', abs: 'abs(a)', relu: 'max(a, 0)', sign: 'sign(a)', floor: 'a', ceil: 'a', round: 'a',
};

const COMPARISONS: ReadonlySet<string> = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);

/** The WGSL expression (over arguments a, b, c as their value types) of one body op, or undefined where it is not emitted. */
function opExpression(op: string, args: readonly DType[], dtype: DType): string | undefined {
  const types = args.map((d) => ELEMENT_TYPE[d]);
  if (types.some((t) => t === undefined) || ELEMENT_TYPE[dtype] === undefined) return undefined;
  const [ta, tb] = types as [NonNullable<(typeof types)[number]>, NonNullable<(typeof types)[number]>];
  if (op === 'where') {
    // The backend's where kernel: float32 or int32 values, a bool condition.
    return args[0] === 'bool' && args[1] === dtype && args[2] === dtype && (dtype === 'float32' || dtype === 'int32') ? 'select(c, b, a != 0u)' : undefined;
  }
  if (op === 'cast') return castExpression(ta, dtype);
  if (dtype === 'bool') {
    if (COMPARISONS.has(op)) return args[0] === args[1] ? compareExpression(op, ta) : undefined;
    if (op === 'isnan') return args[0] === 'float32' ? 'select(0u, 1u, isnan_(a))' : undefined;
    if (op === 'logicalNot') return logicalExpression(op, ta);
    if (op === 'logicalAnd' || op === 'logicalOr') return logicalExpression(op, ta, tb);
    return undefined;
  }
  if (!args.every((d) => d === dtype)) return undefined;
  if (dtype === 'float32') return FLOAT_EXPRESSIONS[op];
  if (dtype === 'int32') return INT_EXPRESSIONS[op];
  return undefined;
}

/** The 32-bit pattern of a literal (its params word), with the WGSL that reads it as a value, or undefined. */
function literalWord(value: number, dtype: DType): { bits: number; read: (word: string) => string } | undefined {
  switch (dtype) {
    case 'float32': return { bits: new Int32Array(Float32Array.of(value).buffer)[0]!, read: (w) => `bitcast<f32>(${w})` };
    case 'int32': return { bits: value | 0, read: (w) => w };
    case 'bool': case 'uint8': return { bits: value & 255, read: (w) => `bitcast<u32>(${w})` };
    case 'int8': return { bits: (value << 24) >> 24, read: (w) => w };
    default: return undefined;
  }
}

/** Literals a kernel may have: one params slot of int32 words (protocol.ts). */
export const MAX_WGSL_LITERALS = PARAMS_SLOT_BYTES / 4;

const dtypeOfValue = (spec: KernelSpec, k: number): DType => {
  const e = spec.body[k]!;
  return e.kind === 'load' ? spec.inputs[e.input]!.dtype : e.dtype;
};

/** Reductions emitted in the kernel (the backend's reduce kernel has these, for float32). */
const REDUCTIONS: ReadonlySet<string> = new Set(['sum', 'max', 'min']);

/** Whether emitWgslKernel can produce this kernel (see the header for what it covers). */
export function canEmitWgsl(spec: KernelSpec): boolean {
  if (spec.outStrides !== undefined || ELEMENT_TYPE[spec.outDtype] === undefined) return false;
  if (spec.inputs.some((i) => ELEMENT_TYPE[i.dtype] === undefined)) return false;
  if (spec.body.length === 0 || dtypeOfValue(spec, spec.body.length - 1) !== spec.outDtype) return false;
  if (spec.reduce !== undefined && (!REDUCTIONS.has(spec.reduce.op) || spec.outDtype !== 'float32')) return false;
  if (spec.body.filter((e) => e.kind === 'literal').length > MAX_WGSL_LITERALS) return false;
  return spec.body.every((e, i) => {
    if (e.kind === 'load') return e.input >= 0 && e.input < spec.inputs.length;
    if (e.kind === 'literal') return literalWord(e.value, e.dtype) !== undefined;
    return e.args.every((a) => a < i) && opExpression(e.op, e.args.map((a) => dtypeOfValue(spec, a)), e.dtype) !== undefined;
  });
}

/** A generated kernel: its text and how to launch it. */
export interface WgslKernel {
  /**
   * Binding 0: the output (array<u32>); binding b + 1: the b-th bound storage (array<u32>); after
   * them, when `params` is given, the params (array<i32>).
   */
  readonly wgsl: string;
  /**
   * The body's literals as 32-bit words, bound after the storages; undefined without literals.
   * They are read at run time, as the unfused ops read them from a tensor: a literal in the text
   * lets the shader compiler rewrite x / 24 as x · (1/24), which rounds differently.
   */
  readonly params: Int32Array | undefined;
  /** Workgroups to dispatch (on a grid of any shape: the kernel numbers them row-major over x, y). */
  readonly workgroups: number;
  /** Elements of the (contiguous) output. */
  readonly outputSize: number;
}

export interface WgslEmitOptions {
  /**
   * Which bound storage each input reads (input k reads storage bindings[k], at binding
   * bindings[k] + 1), so inputs that view one storage take one binding. Default: input k, storage k.
   */
  bindings?: readonly number[];
}

/**
 * Lines declaring `c<d>` (the coordinate along axis d, for each of `axes`, in row-major order over
 * them) from the flat index `index`: remainders and quotients by the (constant) axis sizes.
 */
function coordinates(index: string, axes: readonly number[], shape: readonly number[], rem: string): string[] {
  const live = axes.filter((d) => shape[d] !== 1);
  if (live.length === 0) return [];
  if (live.length === 1) return [`let c${live[0]} = ${index};`];
  const lines = [`var ${rem} = ${index};`];
  for (let j = live.length - 1; j > 0; j--) {
    const d = live[j]!;
    lines.push(`let c${d} = ${rem} % ${shape[d]}; ${rem} = ${rem} / ${shape[d]};`);
  }
  lines.push(`let c${live[0]} = ${rem};`);
  return lines;
}

/** base + Σ c<d>·stride over `axes` (size-1 axes and stride-0 broadcasts add nothing). */
function offsetExpression(base: string, axes: readonly number[], shape: readonly number[], strides: readonly number[]): string {
  const terms = axes.filter((d) => shape[d] !== 1 && strides[d] !== 0).map((d) => (strides[d] === 1 ? `c${d}` : `c${d} * ${strides[d]}`));
  if (terms.length === 0) return base;
  return base === '0' ? terms.join(' + ') : `${base} + ${terms.join(' + ')}`;
}

/** WGSL source of a kernel (throws for specs canEmitWgsl refuses). */
export function emitWgslKernel(spec0: KernelSpec, opts: WgslEmitOptions = {}): WgslKernel {
  if (!canEmitWgsl(spec0)) {
    const ops = [...new Set(spec0.body.flatMap((e) => (e.kind === 'op' ? [`${e.op}:${e.dtype}`] : [])))].join(', ') || 'none';
    throw new Error(`emitWgslKernel: the spec has ops, dtypes, an output layout or a reduction the WGSL emitter does not handle (see canEmitWgsl); ops: ${ops}; `
      + `inputs: ${spec0.inputs.map((i) => i.dtype).join(', ')}; output: ${spec0.outDtype}${spec0.reduce ? `, ${spec0.reduce.op} over axes [${spec0.reduce.axes.join(', ')}]` : ''}.`);
  }
  const spec = simplifyKernel(spec0);
  const rank = spec.shape.length;
  const bindings = opts.bindings ?? spec.inputs.map((_, k) => k);
  const outType = ELEMENT_TYPE[spec.outDtype]!;
  const valueType = (k: number): string => VALUE_TYPE[ELEMENT_TYPE[dtypeOfValue(spec, k)]!];

  const storages = new Set(bindings).size;
  if (bindings.some((b) => b < 0 || b >= storages)) {
    throw new Error(`emitWgslKernel: bindings [${bindings.join(', ')}] must number the bound storages 0, 1, ... without gaps.`);
  }
  const decls = [...new Set(bindings)].sort((a, b) => a - b)
    .map((b) => `@group(0) @binding(${b + 1}) var<storage, read> in${b}: array<u32>;`);
  const loaders = spec.inputs.map((inp, k) =>
    `fn load${k}(o: i32) -> ${VALUE_TYPE[ELEMENT_TYPE[inp.dtype]!]} { return ${loadElementWgsl(ELEMENT_TYPE[inp.dtype]!, `in${bindings[k]}`, 'o')}; }`);

  // The body: one function per distinct op signature (the per-op kernel's expression over a, b, c),
  // literals read from the params at run time.
  const helpers = new Map<string, string>();
  const words: number[] = [];
  const lines: string[] = [];
  spec.body.forEach((e, i) => {
    if (e.kind === 'load') lines.push(`let v${i} = load${e.input}(o${e.input});`);
    else if (e.kind === 'literal') {
      const lit = literalWord(e.value, e.dtype)!;
      lines.push(`let v${i}: ${valueType(i)} = ${lit.read(`params[${words.length}]`)};`);
      words.push(lit.bits);
    } else {
      const expression = opExpression(e.op, e.args.map((a) => dtypeOfValue(spec, a)), e.dtype)!;
      const params = e.args.map((a, j) => `${'abc'[j]}: ${valueType(a)}`).join(', ');
      const signature = `(${params}) -> ${valueType(i)} { return ${expression}; }`;
      let name = helpers.get(signature);
      if (name === undefined) helpers.set(signature, (name = `op${helpers.size}`));
      lines.push(`let v${i} = ${name}(${e.args.map((a) => `v${a}`).join(', ')});`);
    }
  });
  const params = words.length > 0 ? Int32Array.from(words) : undefined;
  const result = `v${spec.body.length - 1}`;
  const value = `fn value(${spec.inputs.map((_, k) => `o${k}: i32`).join(', ')}) -> ${valueType(spec.body.length - 1)} {
  ${lines.join('\n  ')}
  return ${result};
}`;
  const prelude = [
    `${FLOAT_MATH_WGSL}${INT_CONVERSION_WGSL}`,
    '@group(0) @binding(0) var<storage, read_write> out: array<u32>;',
    ...decls,
    ...(words.length > 0 ? [`@group(0) @binding(${storages + 1}) var<storage, read> params: array<i32>;`] : []),
    ...loaders,
    ...[...helpers].map(([sig, name]) => `fn ${name}${sig}`),
    value,
  ].join('\n');
  const all = [...Array(rank).keys()];
  const entry = (size: number): string => `@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u)`;

  if (spec.reduce === undefined) {
    const n = sizeOf(spec.shape);
    const at = `fn at(i: i32) -> ${valueType(spec.body.length - 1)} {
  ${coordinates('i', all, spec.shape, 'rem').join('\n  ')}
  return value(${spec.inputs.map((inp) => offsetExpression(String(inp.offset), all, spec.shape, inp.strides)).join(', ')});
}`;
    const bytes = outType === 'u8' || outType === 'i8';
    const store = bytes
      ? `// Four 1-byte elements per invocation: one whole output word.
  let first = g * 4;
  if (first >= ${n}) { return; }
  var word = 0u;
  for (var e = 0; e < 4; e++) {
    if (first + e < ${n}) { word = word | (${storeBits(outType, 'at(first + e)')} << (8u * u32(e))); }
  }
  out[g] = word;`
      : `if (g >= ${n}) { return; }
  out[g] = ${storeBits(outType, 'at(g)')};`;
    const wgsl = `${prelude}
${at}
${entry(WORKGROUP)} {
  let g = i32((wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid.x);
  ${store}
}`;
    return { wgsl, params, workgroups: Math.ceil((bytes ? Math.ceil(n / 4) : n) / WORKGROUP), outputSize: n };
  }

  // A reduction, as the backend's reduce kernel (wgsl.ts reduceWgsl): a workgroup per output
  // element, invocation l combining the reduced elements l, l + 64, ... in row-major order over the
  // reduced axes, then the tree over the invocations.
  const reduced = spec.reduce.axes;
  const kept = all.filter((d) => !reduced.includes(d));
  const nOut = kept.reduce((p, d) => p * spec.shape[d]!, 1);
  const count = reduced.reduce((p, d) => p * spec.shape[d]!, 1);
  const { init, combine } = REDUCE_WGSL[spec.reduce.op as 'sum' | 'max' | 'min'];
  const wgsl = `${prelude}
var<workgroup> part: array<f32, ${REDUCE_WORKGROUP}>;
fn combine(x: f32, y: f32) -> f32 { return ${combine}; }
${entry(REDUCE_WORKGROUP)} {
  let o = i32(wid.y * nwg.x + wid.x);
  if (o >= ${nOut}) { return; }
  ${coordinates('o', kept, spec.shape, 'remKept').join('\n  ')}
  ${spec.inputs.map((inp, k) => `let base${k} = ${offsetExpression(String(inp.offset), kept, spec.shape, inp.strides)};`).join('\n  ')}
  var acc = ${init};
  for (var r = i32(lid.x); r < ${count}; r += ${REDUCE_WORKGROUP}) {
    ${coordinates('r', reduced, spec.shape, 'remReduced').join('\n    ')}
    acc = combine(acc, value(${spec.inputs.map((inp, k) => offsetExpression(`base${k}`, reduced, spec.shape, inp.strides)).join(', ')}));
  }
  ${REDUCE_TREE_WGSL}
  if (lid.x == 0u) { out[o] = bitcast<u32>(part[0]); }
}`;
  return { wgsl, params, workgroups: nOut, outputSize: nOut };
}
