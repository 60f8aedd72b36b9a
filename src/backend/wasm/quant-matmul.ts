// Host side of the weight-only quantized linear kernels (quant-matmul-kernel.ts):
//   y[m, n] = x[m, k] · Ŵ[n, k]ᵀ + b,   Ŵ = (q − zero_point) · scale per group / channel / tensor.
//
// Two paths, chosen by the number of rows of x:
//   m ≤ GEMV_MAX_ROWS  qgemv reads the codes directly (1 or ½ byte per weight instead of 4): at
//                      small batch the float GEMV is bound by the weight stream, so fewer bytes
//                      is the whole win.
//   larger m           panels of Ŵ are decoded into float32 (qdequant, a few MB at a time)
//                      and the existing SGEMM runs on each panel: at large
//                      batch the product is compute bound, the SGEMM's register tiling is what
//                      matters, and decoding each weight once per call costs O(n·k) next to O(m·n·k).
// Both split the output features over the thread pool (row-jobs.ts), each feature computed alone.

import type { KernelInput, Storage } from '../backend.js';
import type { WasmBackend } from './backend.js';
import { RowJobs, type RowKernel } from './row-jobs.js';
import {
  QDEQUANT_EXPORT, QDEQUANT_TASK_INDEX, QDESC_WORDS, QDesc, QGEMV_EXPORT, QGEMV_TASK_INDEX, QKERNEL_PARAMS,
  buildQuantMatmulModule, chunkElements, quantKernelKey, type QuantKernelVariant,
} from './quant-matmul-kernel.js';
import { relaxedSimdSupported } from './simd-features.js';

/** The quantized weight as the kernels need it (all on the backend's heap). */
export interface QuantMatmulWeight {
  readonly bits: 4 | 8;
  /** Signed codes (symmetric) or unsigned codes with zero points (affine). */
  readonly signed: boolean;
  /** Output features (rows of W) and input features (its columns). */
  readonly n: number;
  readonly k: number;
  /** Codes: n rows of k int8/uint8, or of ceil(k / 2) packed int4 bytes; contiguous. */
  readonly codes: KernelInput;
  /** float32 scales: n × groups, or 1 value for the whole tensor (perTensor); contiguous. */
  readonly scales: KernelInput;
  readonly zeroPoints?: KernelInput;
  /** Scale groups per row (1 for per-channel and per-tensor); the last may be shorter than groupSize. */
  readonly groups: number;
  /** Elements per group (k for per-channel and per-tensor). */
  readonly groupSize: number;
  /** One scale for every row. */
  readonly perTensor: boolean;
}

/**
 * Rows of x up to which the direct kernel runs (above: decode panels + SGEMM). Measured with
 * bench/quant.ts: the direct kernel reads each weight once per 4 rows, the SGEMM once per call.
 */
export const quantGemvMaxRows = { value: 8 };

/** Bytes of one decoded panel: wide enough (≥ 256 columns of C at k = 4096) that the SGEMM does not repack x for every narrow panel, which cost 40% at batch 64 with 32-row panels. */
const PANEL_BYTES = 4 * 1024 * 1024;

/** Elements (features × k × rows) from which a job is split over the pool. */
const PARALLEL_MIN_ELEMENTS = 1 << 15;

interface Compiled {
  readonly jobs: RowJobs;
  readonly gemv: RowKernel;
  readonly dequant: RowKernel;
}

export class WasmQuantMatmul {
  private readonly compiled = new Map<string, Compiled>();
  private desc = 0;

  constructor(private readonly backend: WasmBackend) {}

  /** Whether the kernels handle this weight (groups must span whole 16-byte chunks of codes). */
  supports(w: QuantMatmulWeight): boolean {
    const chunk = chunkElements(w.bits);
    if (w.groups > 1 && w.groupSize % chunk !== 0) return false;
    if (w.codes.offset !== 0 || w.scales.offset !== 0 || (w.zeroPoints !== undefined && w.zeroPoints.offset !== 0)) return false;
    return true;
  }

  private variant(w: QuantMatmulWeight): Compiled {
    const v: QuantKernelVariant = { bits: w.bits, signed: w.signed, fma: relaxedSimdSupported() };
    const key = quantKernelKey(v);
    let c = this.compiled.get(key);
    if (c === undefined) {
      const heap = this.backend.heap;
      const build = () => buildQuantMatmulModule(v, { module: 'env', name: 'memory', minPages: 1, maxPages: heap.maxPages, shared: heap.shared });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(build()), { env: { memory: heap.memory } });
      c = {
        jobs: new RowJobs(heap, () => this.backend.pool, build),
        gemv: { index: QGEMV_TASK_INDEX, params: QKERNEL_PARAMS, direct: instance.exports[QGEMV_EXPORT] as (...a: number[]) => void },
        dequant: { index: QDEQUANT_TASK_INDEX, params: QKERNEL_PARAMS, direct: instance.exports[QDEQUANT_EXPORT] as (...a: number[]) => void },
      };
      this.compiled.set(key, c);
    }
    return c;
  }

  /**
   * y = x · Ŵᵀ (+ bias) for x float32 of `m` rows of k (contiguous), as a new float32 storage of
   * m × n; undefined when this weight or layout is not handled (the caller then runs the reference).
   */
  run(x: KernelInput, m: number, w: QuantMatmulWeight, bias: KernelInput | undefined): Storage | undefined {
    if (!this.supports(w) || x.dtype !== 'float32') return undefined;
    const be = this.backend, heap = be.heap;
    const { n, k } = w;
    const chunk = chunkElements(w.bits);
    const kPadded = Math.ceil(k / chunk) * chunk;
    const rowBytes = w.bits === 8 ? k : (k + 1) >>> 1;
    const codesPtr = be.addressOf(w.codes.storage);
    const direct = m <= quantGemvMaxRows.value;
    // A row shorter than whole chunks is read up to 15 bytes past its end; stay inside the memory.
    if (kPadded !== k && codesPtr + n * rowBytes + 16 > heap.byteLength) return undefined;
    const out = be.allocUninitialized('float32', m * n);
    if (m === 0 || n === 0) return out;
    const c = this.variant(w);
    if (this.desc === 0) this.desc = heap.alloc(QDESC_WORDS * 4);
    let xPtr = be.addressOf(x.storage) + 4 * x.offset;
    let xStride = k;
    let padded = 0;
    if (direct && kPadded !== k) {
      // The kernel reads whole chunks of x: copy it into zero-padded rows of kPadded.
      padded = heap.alloc(m * kPadded * 4);
      const f32 = heap.f32, src = xPtr >>> 2, dst = padded >>> 2;
      for (let r = 0; r < m; r++) {
        f32.copyWithin(dst + r * kPadded, src + r * k, src + r * k + k);
        f32.fill(0, dst + r * kPadded + k, dst + (r + 1) * kPadded);
      }
      xPtr = padded;
      xStride = kPadded;
    }
    const i32 = heap.i32, d = this.desc >>> 2;
    i32[d + QDesc.x] = xPtr;
    i32[d + QDesc.m] = m;
    i32[d + QDesc.xStride] = xStride;
    i32[d + QDesc.out] = be.addressOf(out);
    i32[d + QDesc.n] = n;
    i32[d + QDesc.w] = codesPtr;
    i32[d + QDesc.rowBytes] = rowBytes;
    i32[d + QDesc.scales] = be.addressOf(w.scales.storage);
    i32[d + QDesc.groups] = w.groups;
    i32[d + QDesc.chunksPerGroup] = Math.ceil(Math.min(w.groupSize, k) / chunk);
    i32[d + QDesc.chunksLastGroup] = Math.ceil((k - (w.groups - 1) * w.groupSize) / chunk);
    i32[d + QDesc.zeroPoints] = w.zeroPoints === undefined ? 0 : be.addressOf(w.zeroPoints.storage);
    i32[d + QDesc.scaleRowStride] = w.perTensor ? 0 : w.groups;
    const biasPtr = bias === undefined ? 0 : be.addressOf(bias.storage) + 4 * bias.offset;
    i32[d + QDesc.bias] = biasPtr;
    const desc = this.desc;
    try {
      if (direct) {
        c.jobs.run(c.gemv, [{ count: n, args: (first, count) => [desc, first, count] }], k * m, PARALLEL_MIN_ELEMENTS);
        return out;
      }
      const panelRows = Math.min(n, Math.max(16, Math.floor(PANEL_BYTES / (kPadded * 4) / 16) * 16));
      const panel = heap.alloc(panelRows * kPadded * 4);
      try {
        // (Views after the allocation: growth replaces an unshared memory's buffer.)
        heap.i32[d + QDesc.dst] = panel;
        heap.i32[d + QDesc.dstStride] = kPadded;
        const outPtr = be.addressOf(out);
        for (let j0 = 0; j0 < n; j0 += panelRows) {
          const rows = Math.min(panelRows, n - j0);
          heap.i32[d + QDesc.dstFirst] = j0;
          c.jobs.run(c.dequant, [{ count: rows, args: (first, count) => [desc, j0 + first, count] }], k, PARALLEL_MIN_ELEMENTS);
          be.matmul.run({
            m, n: rows, k,
            a: { ptr: xPtr, rowStride: xStride, colStride: 1, batchStride: 0 },
            b: { ptr: panel, rowStride: 1, colStride: kPadded, batchStride: 0 },
            c: { ptr: outPtr + 4 * j0, rowStride: n, colStride: 1, batchStride: 0 },
            bias: biasPtr === 0 ? undefined : biasPtr + 4 * j0,
          });
        }
      } finally {
        heap.free(panel);
      }
      return out;
    } finally {
      if (padded !== 0) heap.free(padded);
    }
  }
}

const instances = new WeakMap<WasmBackend, WasmQuantMatmul>();

/** The quantized-matmul driver of a wasm backend (one per backend, kernels compiled on first use). */
export function wasmQuantMatmul(backend: WasmBackend): WasmQuantMatmul {
  let q = instances.get(backend);
  if (q === undefined) instances.set(backend, (q = new WasmQuantMatmul(backend)));
  return q;
}
