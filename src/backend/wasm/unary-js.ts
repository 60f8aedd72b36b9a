// float32 unary ops without an exact SIMD instruction (exp, log, tanh, …), computed in JS
// directly between heap views: the same Math functions as the reference backend, so the results
// are identical, but without its intermediate arrays and per-element indirect call. One loop per
// op keeps each call site monomorphic.

import { erf, sigmoid } from '../cpu/math.js';

export const JS_UNARY_OPS = [
  'exp', 'log', 'log1p', 'expm1', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'sign',
] as const;
export type JsUnaryOp = (typeof JS_UNARY_OPS)[number];

const OPS = new Set<string>(JS_UNARY_OPS);
export function isJsUnaryOp(prim: string): prim is JsUnaryOp {
  return OPS.has(prim);
}

/** dst[d + i] = op(src[s + i·stride]) for i < n. */
export function mapUnaryRow(op: JsUnaryOp, src: Float32Array, s: number, stride: number, dst: Float32Array, d: number, n: number): void {
  const end = d + n;
  switch (op) {
    case 'exp': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = Math.exp(src[p]!); break;
    case 'log': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = Math.log(src[p]!); break;
    case 'log1p': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = Math.log1p(src[p]!); break;
    case 'expm1': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = Math.expm1(src[p]!); break;
    case 'rsqrt': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = 1 / Math.sqrt(src[p]!); break;
    case 'sin': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = Math.sin(src[p]!); break;
    case 'cos': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = Math.cos(src[p]!); break;
    case 'tanh': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = Math.tanh(src[p]!); break;
    case 'sigmoid': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = sigmoid(src[p]!); break;
    case 'erf': for (let o = d, p = s; o < end; o++, p += stride) dst[o] = erf(src[p]!); break;
    case 'sign':
      for (let o = d, p = s; o < end; o++, p += stride) {
        const x = src[p]!;
        dst[o] = Number.isNaN(x) ? NaN : Math.sign(x) + 0;
      }
      break;
  }
}
