// A generated matmul kernel for the cpu backend: reads both operands through their strides (so a
// transposed operand costs no copy), accumulates in float64 in the reference kernel's order (the
// same bits as the eager matmul), and applies an optional elementwise epilogue (bias, activation)
// to each element before storing it. Compiled kernels are cached by structure.
import type { DType, TypedArray } from '../../core/dtype.js';
import { LIB, rounded, scalarExpr } from './js.js';
import type { KernelInputLayout, ScalarExpr } from './kernel-ir.js';

export interface MatmulKernelSpec {
  /** Batch dims, then m, k, n. */
  batch: number[];
  m: number;
  k: number;
  n: number;
  /** Strides over (batch..., m, k) and (batch..., k, n). */
  a: { strides: number[]; offset: number };
  b: { strides: number[]; offset: number };
  dtype: DType;
  /** Elementwise work on each result: input 0 is the product; inputs 1.. are laid out over (batch..., m, n). */
  epilogue?: { body: ScalarExpr[]; inputs: KernelInputLayout[]; outDtype: DType };
}

export type MatmulKernel = (inputs: readonly TypedArray[], out: TypedArray) => void;

export function emitMatmulJs(s: MatmulKernelSpec): string {
  const nb = s.batch.length;
  const r = nb + 2;
  const [sam, sak] = [s.a.strides[r - 2]!, s.a.strides[r - 1]!];
  const [sbk, sbn] = [s.b.strides[r - 2]!, s.b.strides[r - 1]!];
  const ep = s.epilogue;
  const extra = ep === undefined ? [] : ep.inputs.slice(1);
  const lines: string[] = ['const A = ins[0], B = ins[1];'];
  extra.forEach((_, j) => lines.push(`const E${j + 1} = ins[${j + 2}];`));
  const ptrs = ['pa', 'pb', ...extra.map((_, j) => `pe${j + 1}`)];
  const offs = [s.a.offset, s.b.offset, ...extra.map((e) => e.offset)];
  lines.push(`let ${ptrs.map((p, i) => `${p} = ${offs[i]}`).join(', ')}, o = 0;`);
  const finish = (accExpr: string, i: string, j: string): string[] => {
    const prod = rounded(accExpr, s.dtype);
    if (ep === undefined) return [`out[o++] = ${prod};`];
    const out: string[] = [`const r = ${prod};`];
    const load = (k: number): string => (k === 0 ? 'r' : `E${k}[pe${k} + ${i} * ${extra[k - 1]!.strides[r - 2]} + ${j} * ${extra[k - 1]!.strides[r - 1]}]`);
    ep.body.forEach((e, x) => out.push(`const v${x} = ${scalarExpr(e, x, (q) => `v${q}`, load)};`));
    out.push(`out[o++] = v${ep.body.length - 1};`);
    return out;
  };
  let inner: string[];
  if (sbn === 1) {
    inner = [
      `for (let i = 0; i < ${s.m}; i++) {`,
      '  acc.fill(0);',
      `  for (let p = 0; p < ${s.k}; p++) {`,
      `    const av = A[pa + i * ${sam} + p * ${sak}];`,
      '    if (av === 0) continue;',
      `    const pbp = pb + p * ${sbk};`,
      `    for (let j = 0; j < ${s.n}; j++) acc[j] += av * B[pbp + j];`,
      '  }',
      `  for (let j = 0; j < ${s.n}; j++) {`,
      ...finish('acc[j]', 'i', 'j').map((l) => '    ' + l),
      '  }',
      '}',
    ];
  } else {
    inner = [
      `for (let i = 0; i < ${s.m}; i++) {`,
      `  const pai = pa + i * ${sam};`,
      `  for (let j = 0; j < ${s.n}; j++) {`,
      '    let sum = 0;',
      `    const pbj = pb + j * ${sbn};`,
      `    for (let p = 0; p < ${s.k}; p++) {`,
      `      const av = A[pai + p * ${sak}];`,
      `      if (av !== 0) sum += av * B[pbj + p * ${sbk}];`,
      '    }',
      ...finish('sum', 'i', 'j').map((l) => '    ' + l),
      '  }',
      '}',
    ];
  }
  for (let d = nb - 1; d >= 0; d--) {
    const st = [s.a.strides[d]!, s.b.strides[d]!, ...extra.map((e) => e.strides[d]!)];
    inner = [
      ...ptrs.map((p) => `const ${p}_${d} = ${p};`),
      `for (let b${d} = 0; b${d} < ${s.batch[d]}; b${d}++) {`,
      ...inner.map((l) => '  ' + l),
      ...ptrs.map((p, i) => (st[i] !== 0 ? `  ${p} += ${st[i]};` : '')).filter(Boolean),
      '}',
      ...ptrs.map((p) => `${p} = ${p}_${d};`),
    ];
  }
  return [...lines, ...inner].join('\n');
}

const cache = new Map<string, MatmulKernel>();

export function compileMatmulKernel(s: MatmulKernelSpec): MatmulKernel {
  const key = JSON.stringify(s);
  let k = cache.get(key);
  if (k === undefined) {
    const src = emitMatmulJs(s);
    // The float64 accumulator row is allocated once per compiled kernel, not per call.
    k = new Function('L', `const acc = new Float64Array(${Math.max(1, s.n)});\nreturn function matmul(ins, out) {\n${src}\n};`)(LIB) as MatmulKernel;
    cache.set(key, k);
  }
  return k;
}
