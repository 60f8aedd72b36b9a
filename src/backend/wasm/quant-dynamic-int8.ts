// Host side of the dynamic int8 linear kernels (quant-dynamic-int8-kernel.ts):
//   y[i, j] = fp32(fp32(fp32(Σ_k xq[i, k] · wq[j, k]) · sw[j]) · sx[i]) (+ b[j])
// with x quantized per row on the fly (symmetric int8, scale max|x| / 127) and the weight's
// symmetric int8 codes (per output channel, or one scale for the tensor).
//
// Two passes: dqrows quantizes x into a packed int16 buffer (split over rows), then dqgemm runs
// the int8 × int8 → int32 GEMM with the scaling epilogue (split over output features). Both go
// through the row task (row-jobs.ts): every output is computed by the same code whatever the
// thread count, so 1 and 2 threads agree bit for bit (and integer sums have no order anyway).

import type { KernelInput, Storage } from '../backend.js';
import type { WasmBackend } from './backend.js';
import { RowJobs, type RowKernel } from './row-jobs.js';
import {
  DQDESC_WORDS, DQDesc, DQGEMM_EXPORT, DQGEMM_TASK_INDEX, DQKERNEL_PARAMS, DQROWS_EXPORT, DQROWS_TASK_INDEX,
  buildDynamicInt8Module,
} from './quant-dynamic-int8-kernel.js';

/** Largest K whose int32 sums cannot overflow: K · 127² ≤ 2^31 − 1. */
export const DYNAMIC_INT8_MAX_K = Math.floor((2 ** 31 - 1) / (127 * 127));

/** The weight as the kernel reads it (on the backend's heap, contiguous, offset 0). */
export interface DynamicInt8Weight {
  /** Output features (rows of W) and input features. */
  readonly n: number;
  readonly k: number;
  /** int8 codes, n rows of k. */
  readonly codes: KernelInput;
  /** float32 scales: n of them, or 1 (perTensor). */
  readonly scales: KernelInput;
  readonly perTensor: boolean;
}

/** Bytes of packed activation codes per block of rows walked against every feature block (kept in L2). */
const ROW_BLOCK_BYTES = 128 * 1024;
/** Output features per block (their weight rows are reused by every block of 4 rows). */
const FEATURE_BLOCK = 16;
/** Elements from which a pass is split over the pool. */
const PARALLEL_MIN_ELEMENTS = 1 << 15;

interface Compiled {
  readonly jobs: RowJobs;
  readonly rows: RowKernel;
  readonly gemm: RowKernel;
}

export class WasmDynamicInt8 {
  private compiled: Compiled | undefined;
  private desc = 0;

  constructor(private readonly backend: WasmBackend) {}

  private kernels(): Compiled {
    if (this.compiled === undefined) {
      const heap = this.backend.heap;
      const build = () => buildDynamicInt8Module({ module: 'env', name: 'memory', minPages: 1, maxPages: heap.maxPages, shared: heap.shared });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(build()), { env: { memory: heap.memory } });
      this.compiled = {
        jobs: new RowJobs(heap, () => this.backend.pool, build),
        rows: { index: DQROWS_TASK_INDEX, params: DQKERNEL_PARAMS, direct: instance.exports[DQROWS_EXPORT] as (...a: number[]) => void },
        gemm: { index: DQGEMM_TASK_INDEX, params: DQKERNEL_PARAMS, direct: instance.exports[DQGEMM_EXPORT] as (...a: number[]) => void },
      };
    }
    return this.compiled;
  }

  /**
   * y = dynamic-int8(x) · Wᵀ (+ bias) for x float32 of `m` rows of k (contiguous), as a new float32
   * storage of m × n; with `raw`, the int32 sums Σ_k xq · wq instead (an int32 storage, no scaling,
   * no bias). Undefined when the layout is not handled (the caller then runs the reference).
   */
  run(x: KernelInput, m: number, w: DynamicInt8Weight, bias: KernelInput | undefined, raw = false): Storage | undefined {
    const { n, k } = w;
    if (x.dtype !== 'float32' || w.codes.dtype !== 'int8' || w.scales.dtype !== 'float32' || (bias !== undefined && bias.dtype !== 'float32')) return undefined;
    if (k === 0 || k > DYNAMIC_INT8_MAX_K) return undefined;
    if (w.codes.offset !== 0 || w.scales.offset !== 0) return undefined;
    const be = this.backend, heap = be.heap;
    const codesPtr = be.addressOf(w.codes.storage);
    const kp = Math.ceil(k / 8) * 8;
    // A row not a multiple of 8 long is read up to 7 bytes past its end; stay inside the memory.
    if (kp !== k && codesPtr + n * k + 8 > heap.byteLength) return undefined;
    const out = be.allocUninitialized(raw ? 'int32' : 'float32', m * n);
    if (m === 0 || n === 0) return out;
    const c = this.kernels();
    if (this.desc === 0) this.desc = heap.alloc(DQDESC_WORDS * 4);
    const xq = heap.alloc(m * kp * 2);
    const sx = heap.alloc(m * 4);
    try {
      const i32 = heap.i32, d = this.desc >>> 2;
      i32[d + DQDesc.x] = be.addressOf(x.storage) + 4 * x.offset;
      i32[d + DQDesc.m] = m;
      i32[d + DQDesc.k] = k;
      i32[d + DQDesc.kp] = kp;
      i32[d + DQDesc.xq] = xq;
      i32[d + DQDesc.sx] = sx;
      i32[d + DQDesc.w] = codesPtr;
      i32[d + DQDesc.n] = n;
      i32[d + DQDesc.sw] = be.addressOf(w.scales.storage);
      i32[d + DQDesc.swStrideBytes] = w.perTensor ? 0 : 4;
      i32[d + DQDesc.bias] = bias === undefined || raw ? 0 : be.addressOf(bias.storage) + 4 * bias.offset;
      i32[d + DQDesc.out] = be.addressOf(out);
      i32[d + DQDesc.raw] = raw ? 1 : 0;
      i32[d + DQDesc.mc] = Math.max(4, Math.floor(ROW_BLOCK_BYTES / (kp * 2) / 4) * 4);
      i32[d + DQDesc.jb] = FEATURE_BLOCK;
      const desc = this.desc;
      c.jobs.run(c.rows, [{ count: m, args: (first, count) => [desc, first, count] }], k, PARALLEL_MIN_ELEMENTS);
      c.jobs.run(c.gemm, [{ count: n, args: (first, count) => [desc, first, count] }], m * k, PARALLEL_MIN_ELEMENTS, FEATURE_BLOCK);
      return out;
    } finally {
      heap.free(xq);
      heap.free(sx);
    }
  }
}

const instances = new WeakMap<WasmBackend, WasmDynamicInt8>();

/** The dynamic int8 matmul driver of a wasm backend (one per backend, kernels compiled on first use). */
export function wasmDynamicInt8(backend: WasmBackend): WasmDynamicInt8 {
  let q = instances.get(backend);
  if (q === undefined) instances.set(backend, (q = new WasmDynamicInt8(backend)));
  return q;
}
