// Host side of the fused attention kernels (attention-kernel.ts): writes each batch entry's row
// addresses to a unit table (so q, k and v may be the strided head views of a QKV projection without
// a copy), gives every thread a scratch for its packed operands and score tiles (attentionScratchLayout),
// and runs one unit per batch entry
// over the thread pool. Inputs whose last axis is not stride 1 are copied to contiguous scratch
// first (the GPT's never are: heads are permuted views with contiguous features).

import type { KernelInput } from '../backend.js';
import type { AttentionAttrs } from '../../ops/primitives.js';
import { attendedPairs } from '../../ops/primitives.js';
import { sizeOf, contiguousStrides } from '../../core/shape.js';
import { forEachPosition } from '../cpu/strided.js';
import type { WasmHeap } from './memory.js';
import type { KernelModule, ThreadPool } from './threads.js';
import { PoolModules } from './pool-modules.js';
import {
  buildAttentionModule, attentionFma, AttentionParam, ATTENTION_PARAM_WORDS, ATTENTION_TABLE_WORDS, attentionScratchLayout, type AttentionSpec,
} from './attention-kernel.js';

/** Feature sizes above this run the reference: the kernel's packing and column blocks are unrolled over E and Ev (code size). */
export const MAX_ATTENTION_FEATURES = 256;

/** Below this many multiply-adds a job runs on the calling thread (waking workers costs tens of µs). */
const PARALLEL_MIN_MACS = 1 << 15;

/** An input as the kernel reads it: byte address of its element 0, strides in elements. */
interface Operand {
  ptr: number;
  shape: readonly number[];
  strides: readonly number[];
  offset: number;
}

export class WasmAttention {
  private readonly modules = new PoolModules(32);
  private readonly params: number;

  constructor(private readonly heap: WasmHeap, private readonly currentPool: () => ThreadPool) {
    this.params = heap.alloc(ATTENTION_PARAM_WORDS * 4);
  }

  /** Whether the kernels take these inputs (q, k, v[, dOut]): float32, E and Ev positive multiples of 4 up to MAX_ATTENTION_FEATURES. */
  fits(inputs: readonly KernelInput[]): boolean {
    const q = inputs[0]!, v = inputs[2]!;
    const e = q.shape[q.shape.length - 1]!, ev = v.shape[v.shape.length - 1]!;
    // No keys (S = 0): the reference decides what an empty softmax gives.
    const s = inputs[1]!.shape[inputs[1]!.shape.length - 2]!;
    return inputs.every((t) => t.dtype === 'float32') && s > 0 && e > 0 && ev > 0 && e % 4 === 0 && ev % 4 === 0 &&
      e <= MAX_ATTENTION_FEATURES && ev <= MAX_ATTENTION_FEATURES;
  }

  private module(spec: AttentionSpec): { pool: ThreadPool; module: KernelModule } {
    const pool = this.currentPool();
    const module = this.modules.get(pool, JSON.stringify(spec), () =>
      buildAttentionModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared }, spec));
    return { pool, module };
  }

  /**
   * attention (dOut undefined: the [..., L, Ev] output at `dstPtr`) or attentionGrad (dq, dk, dv
   * packed at `dstPtr`, every element written) of inputs that `fits`. `address` gives an input's storage address.
   */
  run(inputs: readonly KernelInput[], address: (t: KernelInput) => number, attrs: AttentionAttrs, dstPtr: number): void {
    const backward = inputs.length === 4;
    const [q, k, v] = inputs as [KernelInput, KernelInput, KernelInput];
    const r = q.shape.length;
    const [l, e, s, ev] = [q.shape[r - 2]!, q.shape[r - 1]!, k.shape[r - 2]!, v.shape[r - 1]!];
    const units = sizeOf(q.shape.slice(0, r - 2));
    if (units === 0 || l === 0) return;
    const temps: number[] = [];
    try {
      const ops = inputs.map((t) => this.featuresContiguous(t, address(t), temps));
      const { pool, module } = this.module({ e, ev, causal: attrs.causal, backward, fma: attentionFma() });
      const layout = attentionScratchLayout(l, s, e, ev, backward);
      const scratchBytes = layout.bytes;
      const scratch = this.heap.alloc(scratchBytes * pool.threads);
      temps.push(scratch);
      const table = this.heap.alloc(4 * ATTENTION_TABLE_WORDS * units);
      temps.push(table);
      // Views after the allocations: growth would detach views of an unshared memory.
      const i32 = this.heap.i32;
      ops.forEach((o, slot) => {
        forEachPosition(o.shape.slice(0, r - 2), o.strides.slice(0, r - 2), o.offset, (pos, u) => {
          i32[(table >>> 2) + u * ATTENTION_TABLE_WORDS + slot] = o.ptr + 4 * pos;
        });
      });
      const rowStride = (o: Operand | undefined) => (o === undefined ? 0 : 4 * o.strides[r - 2]!);
      const words: Partial<Record<keyof typeof AttentionParam, number>> = {
        table, out: dstPtr, l, s, qStride: rowStride(ops[0]), kStride: rowStride(ops[1]), vStride: rowStride(ops[2]), gStride: rowStride(ops[3]),
        scratch, scratchBytes, sp: layout.sp, chunk: layout.chunk,
        qpAt: layout.qpAt, ktAt: layout.ktAt, pAt: layout.pAt, gpAt: layout.gpAt, vtAt: layout.vtAt, dpAt: layout.dpAt,
      };
      if (backward) {
        words.dk = dstPtr + 4 * units * l * e;
        words.dv = words.dk + 4 * units * s * e;
      }
      const p = this.params >>> 2;
      for (const [name, value] of Object.entries(words)) i32[p + AttentionParam[name as keyof typeof AttentionParam]] = value;
      this.heap.f32[p + AttentionParam.scale] = attrs.scale;
      const macs = units * attendedPairs(l, s, attrs.causal) * (e + ev) * (backward ? 2 : 1);
      pool.run(module, this.params, units, macs >= PARALLEL_MIN_MACS);
    } finally {
      for (const t of temps) this.heap.free(t);
    }
  }

  /** t as the kernel reads it: itself when its last axis has stride 1 (or size 1), else a contiguous copy pushed to `temps`. */
  private featuresContiguous(t: KernelInput, ptr: number, temps: number[]): Operand {
    const last = t.shape.length - 1;
    if (t.strides[last] === 1 || t.shape[last] === 1) return { ptr, shape: t.shape, strides: t.strides, offset: t.offset };
    const copy = this.heap.alloc(4 * sizeOf(t.shape));
    temps.push(copy);
    const f32 = this.heap.f32;
    const dst = copy >>> 2;
    forEachPosition(t.shape, t.strides, (ptr >>> 2) + t.offset, (pos, i) => { f32[dst + i] = f32[pos]!; });
    return { ptr: copy, shape: t.shape, strides: contiguousStrides(t.shape), offset: 0 };
  }
}
