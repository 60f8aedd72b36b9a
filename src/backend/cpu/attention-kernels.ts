// Reference kernels of the fused attention primitives (attention and its vjp attentionGrad): plain
// loops per batch entry and query row, any strides, every sum in double precision, rounded once to
// the dtype when stored. They define what the wasm kernels (backend/wasm/attention*.ts) compute.
//
// Per query row i (keys j < n_i: all S, or min(i + 1, S) when causal):
//   s_j = scale·q_i·k_j,  p_j = exp(s_j − shift) / Σ exp(s_j − shift)  (shift = max s, 0 if not finite,
//   like the softmax primitive),  o_i = Σ_j p_j v_j.
// The backward recomputes p and uses D_i = Σ_j p_j·dP_j (= dO_i·o_i) so that it needs no forward output:
//   dP_j = dO_i·v_j,  dS_j = p_j (dP_j − D_i),  dq_i += scale Σ_j dS_j k_j,  dk_j += scale dS_j q_i,  dv_j += p_j dO_i.
import type { Kernel, KernelInput, OutputInfo, Storage } from '../backend.js';
import { allocStorage, type TypedArray } from '../../core/dtype.js';
import { sizeOf } from '../../core/shape.js';
import { arrayOf, forEachPosition } from './strided.js';

/** A [rows, cols] matrix of one batch entry: element (r, c) is at data[base + r·rowStride + c·colStride]. */
interface Matrix {
  data: TypedArray;
  base: number;
  rowStride: number;
  colStride: number;
}

/** Per batch entry (row-major over the batch dims), the matrix of `t`'s last two axes. */
function batchMatrices(t: KernelInput): Matrix[] {
  const r = t.shape.length;
  const data = arrayOf(t);
  const out: Matrix[] = [];
  forEachPosition(t.shape.slice(0, r - 2), t.strides.slice(0, r - 2), t.offset, (pos) => {
    out.push({ data, base: pos, rowStride: t.strides[r - 2]!, colStride: t.strides[r - 1]! });
  });
  return out;
}

/** Keys query row i attends to. */
export function keysOfRow(i: number, s: number, causal: boolean): number {
  return causal ? Math.min(i + 1, s) : s;
}

/** Σ_c a(ra, c)·b(rb, c) over c < len. */
function rowDot(a: Matrix, ra: number, b: Matrix, rb: number, len: number): number {
  const ad = a.data, bd = b.data, acs = a.colStride, bcs = b.colStride;
  let pa = a.base + ra * a.rowStride, pb = b.base + rb * b.rowStride, dot = 0;
  for (let c = 0; c < len; c++, pa += acs, pb += bcs) dot += ad[pa]! * bd[pb]!;
  return dot;
}

/** acc[accBase + c] += w·m(row, c) for c < len. */
function addScaledRow(acc: Float64Array, accBase: number, w: number, m: Matrix, row: number, len: number): void {
  const d = m.data, cs = m.colStride;
  for (let c = 0, p = m.base + row * m.rowStride; c < len; c++, p += cs) acc[accBase + c] = acc[accBase + c]! + w * d[p]!;
}

/** The normalized weights p_j of query row i into `p` (length >= n). */
function rowWeights(q: Matrix, k: Matrix, i: number, n: number, e: number, scale: number, p: Float64Array): void {
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    const s = rowDot(q, i, k, j, e) * scale;
    p[j] = s;
    if (s > max || Number.isNaN(s)) max = s;
  }
  const shift = Number.isFinite(max) ? max : 0;
  let total = 0;
  for (let j = 0; j < n; j++) total += (p[j] = Math.exp(p[j]! - shift));
  for (let j = 0; j < n; j++) p[j] = p[j]! / total;
}

export function makeAttentionKernels(wrapOut: (out: OutputInfo, data: TypedArray) => Storage): {
  attention: Kernel<'attention'>; attentionGrad: Kernel<'attentionGrad'>;
} {
  const attention: Kernel<'attention'> = ([qi, ki, vi], { scale, causal }, out) => {
    const r = qi!.shape.length;
    const [l, e, s, ev] = [qi!.shape[r - 2]!, qi!.shape[r - 1]!, ki!.shape[r - 2]!, vi!.shape[r - 1]!];
    const dst = allocStorage(out.dtype, sizeOf(out.shape));
    const [qs, ks, vs] = [batchMatrices(qi!), batchMatrices(ki!), batchMatrices(vi!)];
    const p = new Float64Array(s);
    const row = new Float64Array(ev);
    for (let b = 0; b < qs.length; b++) {
      const [q, k, v] = [qs[b]!, ks[b]!, vs[b]!];
      for (let i = 0; i < l; i++) {
        const n = keysOfRow(i, s, causal);
        rowWeights(q, k, i, n, e, scale, p);
        row.fill(0);
        for (let j = 0; j < n; j++) addScaledRow(row, 0, p[j]!, v, j, ev);
        dst.set(row, (b * l + i) * ev);
      }
    }
    return wrapOut(out, dst);
  };

  const attentionGrad: Kernel<'attentionGrad'> = ([qi, ki, vi, gi], { scale, causal }, out) => {
    const r = qi!.shape.length;
    const [l, e, s, ev] = [qi!.shape[r - 2]!, qi!.shape[r - 1]!, ki!.shape[r - 2]!, vi!.shape[r - 1]!];
    const [qs, ks, vs, gs] = [batchMatrices(qi!), batchMatrices(ki!), batchMatrices(vi!), batchMatrices(gi!)];
    const units = qs.length;
    const dst = allocStorage(out.dtype, sizeOf(out.shape));
    const dkStart = units * l * e, dvStart = dkStart + units * s * e;
    const p = new Float64Array(s), dp = new Float64Array(s);
    const dq = new Float64Array(e), dk = new Float64Array(s * e), dv = new Float64Array(s * ev);
    for (let b = 0; b < units; b++) {
      const [q, k, v, g] = [qs[b]!, ks[b]!, vs[b]!, gs[b]!];
      dk.fill(0);
      dv.fill(0);
      for (let i = 0; i < l; i++) {
        const n = keysOfRow(i, s, causal);
        rowWeights(q, k, i, n, e, scale, p);
        let d = 0;
        for (let j = 0; j < n; j++) {
          dp[j] = rowDot(g, i, v, j, ev);
          d += p[j]! * dp[j]!;
        }
        dq.fill(0);
        for (let j = 0; j < n; j++) {
          const ds = p[j]! * (dp[j]! - d) * scale;
          addScaledRow(dq, 0, ds, k, j, e);
          addScaledRow(dk, j * e, ds, q, i, e);
          addScaledRow(dv, j * ev, p[j]!, g, i, ev);
        }
        dst.set(dq, (b * l + i) * e);
      }
      dst.set(dk, dkStart + b * s * e);
      dst.set(dv, dvStart + b * s * ev);
    }
    return wrapOut(out, dst);
  };

  return { attention, attentionGrad };
}
