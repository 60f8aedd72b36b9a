// Host side of the direct convolution kernels (conv-direct-kernel.ts): builds the padded,
// phase-split input scratch, makes the weight / cotangent / bias contiguous when they are not,
// picks the blocking and the work split over the thread pool, and caches one compiled module per
// geometry (modules are compiled once per pool; setThreads replaces the pool).

import type { KernelInput } from '../backend.js';
import type { PatchAttrs } from '../../ops/primitives.js';
import { sizeOf } from '../../core/shape.js';
import { sweep3 } from '../cpu/window-kernels.js';
import { forEachPosition } from '../cpu/strided.js';
import type { WasmHeap } from './memory.js';
import type { KernelModule, ThreadPool } from './threads.js';
import { PoolModules } from './pool-modules.js';
import { relaxedSimdSupported } from './simd-features.js';
import {
  buildConvForwardModule, buildConvWeightGradModule, buildConvScratchModule, ConvParam, CONV_PARAM_WORDS, PHASE_ROW_SLACK, type ConvDirectSpec,
} from './conv-direct-kernel.js';

/** Compiled geometries kept per pool (two per distinct layer shape: forward and weight gradient). */
const MAX_MODULES = 64;

/** At most this many taps (KH·KW) per window: each is unrolled in the generated code. */
export const MAX_DIRECT_TAPS = 64;

/** Below this many multiply-adds a job runs on the calling thread (waking workers costs tens of µs). */
const PARALLEL_MIN_MACS = 1 << 16;

/** Whether the wasm kernels serve a convolution of this geometry (float32 is checked by the caller). */
export function directConvolutionFits(attrs: PatchAttrs): boolean {
  return attrs.kernel.length <= 2 && attrs.kernel.reduce((a, b) => a * b, 1) <= MAX_DIRECT_TAPS;
}

function isContiguous(t: KernelInput): boolean {
  for (let d = t.shape.length - 1, s = 1; d >= 0; d--) {
    if (t.shape[d]! !== 1 && t.strides[d] !== s) return false;
    s *= t.shape[d]!;
  }
  return true;
}

/** The scratch layout and geometry of one convolution, as the kernels see it. */
interface Layout {
  n: number;
  channels: number;
  height: number;
  width: number;
  padTop: number;
  padLeft: number;
  paddedRows: number;
  phaseRow: number;
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  out: [number, number];
  /** Element strides of x over N, C, H, W. */
  strides: [number, number, number, number];
}

function layoutOf(x: KernelInput, attrs: PatchAttrs): Layout {
  const s = sweep3(x.shape, x.strides, attrs, attrs.pads);
  const last = attrs.pads.length - 1;
  const padRight = attrs.pads[last]![1];
  const padBottom = attrs.pads.length === 2 ? attrs.pads[0]![1] : 0;
  const paddedWidth = s.size[2] + s.padBefore[2] + padRight;
  return {
    n: s.n, channels: s.channels, height: s.size[1], width: s.size[2], padTop: s.padBefore[1], padLeft: s.padBefore[2],
    paddedRows: s.size[1] + s.padBefore[1] + padBottom,
    phaseRow: Math.ceil(paddedWidth / s.stride[2]) + PHASE_ROW_SLACK,
    kernel: [s.kernel[1], s.kernel[2]], stride: [s.stride[1], s.stride[2]], dilation: [s.dilation[1], s.dilation[2]],
    out: [s.out[1], s.out[2]], strides: [s.strides[0], s.strides[1], s.strides[3], s.strides[4]],
  };
}

export class WasmConvDirect {
  private readonly modules = new PoolModules(MAX_MODULES);
  private readonly params: number;

  constructor(private readonly heap: WasmHeap, private readonly currentPool: () => ThreadPool) {
    this.params = heap.alloc(CONV_PARAM_WORDS * 4);
  }

  private module(kind: 'forward' | 'weightGrad' | 'scratch', spec: ConvDirectSpec): { pool: ThreadPool; module: KernelModule } {
    const pool = this.currentPool();
    const module = this.modules.get(pool, `${kind} ${JSON.stringify(spec)}`, () => {
      const memory = { module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared };
      const build = { forward: buildConvForwardModule, weightGrad: buildConvWeightGradModule, scratch: buildConvScratchModule }[kind];
      return build(memory, spec);
    });
    return { pool, module };
  }

  /**
   * The zero-padded, phase-split copy of x (see conv-direct-kernel.ts), filled plane by plane over
   * the pool; the caller frees it.
   */
  private scratch(x: KernelInput, xPtr: number, l: Layout, spec: ConvDirectSpec): number {
    const floats = l.n * l.channels * l.paddedRows * l.stride[1] * l.phaseRow;
    const ptr = this.heap.alloc(4 * floats);
    const [sn, sc, sh, sw] = l.strides;
    this.setParams({ scratch: ptr, src: xPtr + 4 * x.offset, inChannels: l.channels });
    const i32 = this.heap.i32;
    for (let i = 0; i < 4; i++) i32[(this.params >>> 2) + ConvParam.srcStrides + i] = 4 * [sn, sc, sh, sw][i]!;
    const { pool, module } = this.module('scratch', spec);
    pool.run(module, this.params, l.n * l.channels, floats >= PARALLEL_MIN_MACS);
    return ptr;
  }

  /** Byte address of t's elements in row-major order: t itself, or a copy pushed to `temps` (freed by the caller). */
  private contiguous(t: KernelInput, ptr: number, temps: number[]): number {
    if (isContiguous(t)) return ptr + 4 * t.offset;
    const copy = this.heap.alloc(4 * sizeOf(t.shape));
    temps.push(copy);
    const f32 = this.heap.f32;
    const dst = copy >>> 2;
    forEachPosition(t.shape, t.strides, (ptr >>> 2) + t.offset, (pos, i) => { f32[dst + i] = f32[pos]!; });
    return copy;
  }

  private spec(l: Layout, channelsPerGroup: number, channelBlock: number, vectors: number, bias: boolean): ConvDirectSpec {
    return {
      channels: channelsPerGroup, kernel: l.kernel, stride: l.stride, dilation: l.dilation, out: l.out,
      phaseRow: l.phaseRow, paddedRows: l.paddedRows, inSize: [l.height, l.width], padBefore: [l.padTop, l.padLeft], channelBlock, vectors, bias, fma: relaxedSimdSupported(),
    };
  }

  private setParams(words: Partial<Record<keyof typeof ConvParam, number>>): void {
    const i32 = this.heap.i32;
    const p = this.params >>> 2;
    for (const [name, value] of Object.entries(words)) i32[p + ConvParam[name as keyof typeof ConvParam]] = value;
  }

  /**
   * y [N, C_out, *out] = conv(x, w) (+ bias) into the contiguous float32 output at `dstPtr`. `address`
   * gives a kernel input's storage address.
   */
  forward(x: KernelInput, w: KernelInput, bias: KernelInput | undefined, address: (t: KernelInput) => number, attrs: PatchAttrs, dstPtr: number): void {
    const l = layoutOf(x, attrs);
    const cOut = w.shape[0]!, groups = attrs.groups, og = cOut / groups, cg = l.channels / groups;
    if (l.n === 0 || cOut === 0) return;
    // Channel blocks share each input load among CB weights; V·4 columns per block share each weight.
    const CB = [4, 2, 1].find((c) => og % c === 0)!;
    const V = Math.min(CB >= 4 ? 2 : 4, Math.ceil(l.out[1] / 4));
    const spec = this.spec(l, cg, CB, V, bias !== undefined);
    const temps: number[] = [];
    const scratch = this.scratch(x, address(x), l, spec);
    temps.push(scratch);
    try {
      const wPtr = this.contiguous(w, address(w), temps);
      const bPtr = bias === undefined ? 0 : this.contiguous(bias, address(bias), temps);
      const { pool, module } = this.module('forward', spec);
      const blocks = l.n * groups * (og / CB);
      const [OH] = l.out;
      // Enough units for every thread: split the output rows when there are few blocks.
      const wanted = Math.min(OH, Math.ceil((4 * pool.threads) / blocks));
      const perUnit = Math.ceil(OH / Math.max(1, wanted));
      const chunks = Math.ceil(OH / perUnit);
      this.setParams({ scratch, second: wPtr, bias: bPtr, dst: dstPtr, n: l.n, groups, outPerGroup: og, perUnit, chunks });
      const macs = l.n * cOut * OH * l.out[1] * cg * l.kernel[0] * l.kernel[1];
      pool.run(module, this.params, blocks * chunks, macs >= PARALLEL_MIN_MACS);
    } finally {
      for (const t of temps) this.heap.free(t);
    }
  }

  /** dW [C_out, C/g, *kernel] of conv(x, w) for the output cotangent g, into the contiguous float32 `dstPtr`. */
  weightGrad(x: KernelInput, g: KernelInput, address: (t: KernelInput) => number, attrs: PatchAttrs, dstPtr: number): void {
    const l = layoutOf(x, attrs);
    const cOut = g.shape[1]!, groups = attrs.groups, og = cOut / groups, cg = l.channels / groups;
    const size = cOut * cg * l.kernel[0] * l.kernel[1];
    if (size === 0) return;
    if (l.n === 0) {
      this.heap.f32.fill(0, dstPtr >>> 2, (dstPtr >>> 2) + size);
      return;
    }
    const spec = this.spec(l, cg, 1, 1, false);
    const temps: number[] = [];
    const scratch = this.scratch(x, address(x), l, spec);
    temps.push(scratch);
    try {
      const gPtr = this.contiguous(g, address(g), temps);
      const { pool, module } = this.module('weightGrad', spec);
      // Units are (batch chunk, output channel); with few channels the batch is split and each
      // chunk writes a partial dW, summed below in chunk order.
      const wanted = Math.min(l.n, Math.ceil((4 * pool.threads) / cOut));
      const perUnit = Math.ceil(l.n / Math.max(1, wanted));
      const chunks = Math.ceil(l.n / perUnit);
      const partial = chunks === 1 ? dstPtr : this.heap.alloc(4 * chunks * size);
      if (chunks > 1) temps.push(partial);
      this.setParams({ scratch, second: gPtr, dst: partial, n: l.n, groups, outPerGroup: og, perUnit, chunks });
      const macs = l.n * cOut * l.out[0] * l.out[1] * cg * l.kernel[0] * l.kernel[1];
      pool.run(module, this.params, chunks * cOut, macs >= PARALLEL_MIN_MACS);
      if (chunks > 1) {
        const f32 = this.heap.f32;
        const p0 = partial >>> 2, d0 = dstPtr >>> 2;
        for (let i = 0; i < size; i++) {
          let s = f32[p0 + i]!;
          for (let c = 1; c < chunks; c++) s += f32[p0 + c * size + i]!;
          f32[d0 + i] = s;
        }
      }
    } finally {
      for (const t of temps) this.heap.free(t);
    }
  }
}
