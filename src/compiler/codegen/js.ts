// Emits a KernelSpec as a JavaScript function (new Function) for the cpu backend, and caches
// compiled kernels by structure. Every intermediate is rounded to its dtype (Math.fround for
// float32, |0 for int32, ...), exactly as the reference kernels round when they store each op's
// result, so a fused kernel gives the same bits as the ops run one by one.
import type { DType, TypedArray } from '../../core/dtype.js';
import { castScalar } from '../../core/dtype.js';
import { TesseraError } from '../../core/errors.js';
import { erf, powC, roundHalfEven, sigmoid } from '../../backend/cpu/math.js';
import { kernelKey, simplifyKernel, type KernelSpec, type ScalarExpr } from './kernel-ir.js';

export type CompiledKernel = (inputs: readonly TypedArray[], out: TypedArray) => void;

const UNARY: Record<string, (a: string) => string> = {
  exp: (a) => `Math.exp(${a})`, log: (a) => `Math.log(${a})`, log1p: (a) => `Math.log1p(${a})`, expm1: (a) => `Math.expm1(${a})`,
  sqrt: (a) => `Math.sqrt(${a})`, rsqrt: (a) => `(1 / Math.sqrt(${a}))`, sin: (a) => `Math.sin(${a})`, cos: (a) => `Math.cos(${a})`,
  tanh: (a) => `Math.tanh(${a})`, sigmoid: (a) => `L.sigmoid(${a})`, erf: (a) => `L.erf(${a})`, neg: (a) => `(-${a})`,
  abs: (a) => `Math.abs(${a})`, relu: (a) => `(${a} > 0 ? ${a} : (${a} !== ${a} ? ${a} : 0))`, sign: (a) => `L.sign(${a})`,
  floor: (a) => `Math.floor(${a})`, ceil: (a) => `Math.ceil(${a})`, round: (a) => `L.roundHalfEven(${a})`,
  logicalNot: (a) => `(${a} === 0 ? 1 : 0)`, isnan: (a) => `(${a} !== ${a} ? 1 : 0)`,
};
const BINARY: Record<string, (a: string, b: string) => string> = {
  add: (a, b) => `(${a} + ${b})`, sub: (a, b) => `(${a} - ${b})`, mul: (a, b) => `(${a} * ${b})`, div: (a, b) => `(${a} / ${b})`,
  pow: (a, b) => `L.powC(${a}, ${b})`, maximum: (a, b) => `L.maximum(${a}, ${b})`, minimum: (a, b) => `L.minimum(${a}, ${b})`,
  eq: (a, b) => `(${a} === ${b} ? 1 : 0)`, ne: (a, b) => `(${a} !== ${b} ? 1 : 0)`, lt: (a, b) => `(${a} < ${b} ? 1 : 0)`,
  le: (a, b) => `(${a} <= ${b} ? 1 : 0)`, gt: (a, b) => `(${a} > ${b} ? 1 : 0)`, ge: (a, b) => `(${a} >= ${b} ? 1 : 0)`,
  logicalAnd: (a, b) => `(${a} !== 0 && ${b} !== 0 ? 1 : 0)`, logicalOr: (a, b) => `(${a} !== 0 || ${b} !== 0 ? 1 : 0)`,
};

/** Scalar ops a generated kernel can evaluate (the elementwise primitives). */
export function isScalarOp(op: string): boolean {
  return op in UNARY || op in BINARY || op === 'where' || op === 'cast';
}

export const LIB = {
  sigmoid, erf, roundHalfEven, powC,
  sign: (x: number): number => (Number.isNaN(x) ? NaN : Math.sign(x) + 0),
  maximum: (a: number, b: number): number => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a > b ? a : b),
  minimum: (a: number, b: number): number => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a < b ? a : b),
  cast: castScalar,
};

/** Rounds a JS number expression to what storing it in an array of `dtype` gives. */
export function rounded(expr: string, dtype: DType): string {
  switch (dtype) {
    case 'float64': return expr;
    case 'float32': return `Math.fround(${expr})`;
    case 'int32': return `(${expr} | 0)`;
    case 'int8': return `((${expr} << 24) >> 24)`;
    case 'uint8': case 'bool': return `(${expr} & 255)`;
    default: throw new TesseraError(`codegen: ${dtype} is not supported by generated JS kernels (float16/bfloat16 run through the interpreter).`);
  }
}

/** JS source of one scalar expression; `load` gives the source of reading input k. */
export function scalarExpr(e: ScalarExpr, i: number, name: (k: number) => string, load: (k: number) => string = (k) => `in${k}[p${k}]`): string {
  switch (e.kind) {
    case 'load': return load(e.input);
    case 'literal': return Number.isNaN(e.value) ? 'NaN' : e.value === Infinity ? 'Infinity' : e.value === -Infinity ? '-Infinity' : String(e.value);
    case 'op': {
      const a = e.args.map(name);
      if (e.op === 'where') return rounded(`(${a[0]} !== 0 ? ${a[1]} : ${a[2]})`, e.dtype);
      if (e.op === 'cast') return `L.cast(${a[0]}, ${JSON.stringify(e.dtype)})`;
      const u = UNARY[e.op];
      if (u !== undefined) return rounded(u(a[0]!), e.dtype);
      const b = BINARY[e.op];
      if (b !== undefined) return rounded(b(a[0]!, a[1]!), e.dtype);
      throw new TesseraError(`codegen: no scalar code for op '${e.op}' (expression ${i}).`);
    }
  }
}

/** The JavaScript source of a kernel's body (exposed for docs and tests). */
export function emitJs(spec0: KernelSpec): string {
  // A reduction over no axes is an elementwise kernel (each point is its own group).
  const spec = simplifyKernel(spec0.reduce !== undefined && spec0.reduce.axes.length === 0 && spec0.shape.length > 0 ? { ...spec0, reduce: undefined } : spec0);
  const rank = spec.shape.length;
  const nIn = spec.inputs.length;
  const red = new Set(spec.reduce?.axes ?? []);
  // Loop order: kept axes outside, reduced axes inside (the reference reduce order).
  const order = [...Array(rank).keys()].filter((d) => !red.has(d)).concat([...Array(rank).keys()].filter((d) => red.has(d)));
  const outStrides = spec.outStrides;
  const lines: string[] = [];
  for (let k = 0; k < nIn; k++) lines.push(`const in${k} = ins[${k}];`);
  const ptrs = [...Array(nIn).keys()].map((k) => `p${k}`);
  const hasOutLayout = spec.reduce === undefined && outStrides !== undefined;
  if (hasOutLayout) ptrs.push('po');
  const stridesOf = (d: number): number[] => [...spec.inputs.map((i) => i.strides[d]!), ...(hasOutLayout ? [outStrides![d]!] : [])];
  const offsets = [...spec.inputs.map((i) => i.offset), ...(hasOutLayout ? [spec.outOffset ?? 0] : [])];
  lines.push(`let ${ptrs.map((p, k) => `${p} = ${offsets[k]}`).join(', ')}${ptrs.length ? ', ' : ''}o = 0;`);
  const body: string[] = [];
  const name = (k: number): string => `v${k}`;
  spec.body.forEach((e, i) => body.push(`const v${i} = ${scalarExpr(e, i, name)};`));
  const result = `v${spec.body.length - 1}`;
  const reduceOp = spec.reduce?.op;
  const combine = reduceOp === 'sum' ? `acc += ${result};` : reduceOp === 'prod' ? `acc *= ${result};`
    : reduceOp === 'max' ? `if (${result} > acc || ${result} !== ${result}) acc = ${result};`
    : reduceOp === 'min' ? `if (${result} < acc || ${result} !== ${result}) acc = ${result};` : '';
  const init = reduceOp === 'sum' ? '0' : reduceOp === 'prod' ? '1' : reduceOp === 'max' ? '-Infinity' : 'Infinity';
  const firstReduced = order.findIndex((d) => red.has(d));
  // Build the nest inside-out.
  let inner = spec.reduce === undefined
    ? [...body, hasOutLayout ? `out[po] = ${result};` : `out[o++] = ${result};`]
    : [...body, combine];
  for (let li = order.length - 1; li >= 0; li--) {
    const d = order[li]!;
    const st = stridesOf(d);
    const save = ptrs.map((p) => `const ${p}_${li} = ${p};`);
    const restore = ptrs.map((p) => `${p} = ${p}_${li};`);
    const advance = ptrs.map((p, k) => (st[k] !== 0 ? `${p} += ${st[k]};` : '')).filter(Boolean);
    let loop = [...save, `for (let i${li} = 0; i${li} < ${spec.shape[d]}; i${li}++) {`, ...inner.map((l) => '  ' + l), ...advance.map((l) => '  ' + l), '}', ...restore];
    if (li === firstReduced) loop = ['let acc = ' + init + ';', ...loop, `out[o++] = acc;`];
    inner = loop;
  }
  if (spec.reduce !== undefined && firstReduced === -1) inner = ['let acc = ' + init + ';', ...inner, 'out[o++] = acc;'];
  return [...lines, ...inner].join('\n');
}

const cache = new Map<string, CompiledKernel>();
let compiledCount = 0;

/** The compiled kernel for a spec (compiled once per structure). */
export function compileJsKernel(spec: KernelSpec): CompiledKernel {
  const key = kernelKey(spec);
  let k = cache.get(key);
  if (k === undefined) {
    const src = emitJs(spec);
    const make = new Function('L', `return function kernel(ins, out) {\n${src}\n};`) as (lib: typeof LIB) => CompiledKernel;
    k = make(LIB);
    cache.set(key, k);
    compiledCount++;
  }
  return k;
}

/** How many distinct kernels were compiled (the cache's misses). */
export function kernelCacheStats(): { compiled: number; cached: number } {
  return { compiled: compiledCount, cached: cache.size };
}
