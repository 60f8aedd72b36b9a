// Host side of the window kernels (window-kernel.ts): fills the parameter block from a kernel
// input's layout and runs the task over the thread pool. Modules are compiled once per pool
// (setThreads replaces the pool).

import type { KernelInput } from '../backend.js';
import type { PatchAttrs } from '../../ops/primitives.js';
import type { WindowSweep } from '../../ops/patch-shape.js';
import { sweep3, type Sweep3 } from '../cpu/window-kernels.js';
import type { WasmHeap } from './memory.js';
import type { KernelModule, ThreadPool } from './threads.js';
import { PoolModules } from './pool-modules.js';
import { buildWindowModule, MAX_UNROLLED_TAPS, WindowParam, WINDOW_PARAM_WORDS, type WindowKernelKind, type WindowSpec } from './window-kernel.js';

/** Compiled geometries kept per pool (one per distinct layer shape). */
const MAX_MODULES = 64;

/** Below this many elements moved a job runs on the calling thread (waking workers costs tens of µs). */
const PARALLEL_MIN_ELEMENTS = 1 << 15;

function contiguousStrides(shape: readonly number[]): number[] {
  const strides: number[] = [];
  for (let d = shape.length - 1, s = 1; d >= 0; d--) { strides[d] = s; s *= shape[d]!; }
  return strides;
}

export class WasmWindowKernels {
  /** Compiled modules by kind and baked geometry (see WindowSpec). */
  private readonly modules = new PoolModules(MAX_MODULES);
  private readonly params: number;

  constructor(private readonly heap: WasmHeap, private readonly currentPool: () => ThreadPool) {
    this.params = heap.alloc(WINDOW_PARAM_WORDS * 4);
  }

  private module(kind: WindowKernelKind, spec: WindowSpec | undefined): { pool: ThreadPool; module: KernelModule } {
    const pool = this.currentPool();
    const key = spec === undefined ? kind : `${kind} ${JSON.stringify(spec)}`;
    const module = this.modules.get(pool, key, () =>
      buildWindowModule(kind, { module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared }, spec));
    return { pool, module };
  }

  /** The geometry to bake into a module, when its taps can be unrolled with non-negative offsets. */
  private spec(s: Sweep3, groups: number, strides: readonly number[]): WindowSpec | undefined {
    const taps = s.kernel[0] * s.kernel[1] * s.kernel[2];
    if (taps > MAX_UNROLLED_TAPS || strides.slice(1).some((st) => st < 0)) return undefined;
    return {
      channels: s.channels / groups, kernel: s.kernel, dilation: s.dilation,
      strides: [4 * strides[1]!, 4 * strides[2]!, 4 * strides[3]!, 4 * strides[4]!], height: s.size[1], width: s.size[2],
    };
  }

  private run(kind: WindowKernelKind, s: Sweep3, src: number, dst: number, groups: number, srcEnd: number, units: number, elements: number): void {
    const { pool, module } = this.module(kind, this.spec(s, kind === 'maxPool' ? s.channels : groups, s.strides));
    const p = this.params >>> 2;
    const i32 = this.heap.i32;
    i32[p + WindowParam.src] = src;
    i32[p + WindowParam.dst] = dst;
    i32[p + WindowParam.n] = s.n;
    i32[p + WindowParam.channels] = s.channels / groups;
    i32[p + WindowParam.groups] = groups;
    for (let i = 0; i < 3; i++) {
      i32[p + WindowParam.size + i] = s.size[i]!;
      i32[p + WindowParam.out + i] = s.out[i]!;
      i32[p + WindowParam.kernel + i] = s.kernel[i]!;
      i32[p + WindowParam.stride + i] = s.stride[i]!;
      i32[p + WindowParam.dilation + i] = s.dilation[i]!;
      i32[p + WindowParam.padBefore + i] = s.padBefore[i]!;
    }
    for (let i = 0; i < 5; i++) i32[p + WindowParam.strides + i] = 4 * s.strides[i]!;
    i32[p + WindowParam.srcEnd] = srcEnd;
    pool.run(module, this.params, units, elements >= PARALLEL_MIN_ELEMENTS);
  }

  /** The patch matrix of a 4-byte input (at byte address `xPtr`, element offset in x) into `dstPtr`. */
  im2col(x: KernelInput, xPtr: number, xBytes: number, attrs: PatchAttrs, dstPtr: number): void {
    const s = sweep3(x.shape, x.strides, attrs, attrs.pads);
    const lines = attrs.groups * s.n * s.out[0] * s.out[1];
    const elements = lines * s.out[2] * s.channels / attrs.groups * s.kernel[0] * s.kernel[1] * s.kernel[2];
    this.run('im2col', s, xPtr + 4 * x.offset, dstPtr, attrs.groups, xPtr + xBytes, lines, elements);
  }

  /** Adds a contiguous float32 patch matrix into the zeroed, contiguous output of `inputShape`. */
  col2im(colsPtr: number, attrs: PatchAttrs & { inputShape: number[] }, dstPtr: number): void {
    const shape = attrs.inputShape;
    const s = sweep3(shape, contiguousStrides(shape), attrs, attrs.pads);
    const units = attrs.groups * s.n;
    const elements = units * s.out[0] * s.out[1] * s.out[2] * s.channels / attrs.groups * s.kernel[0] * s.kernel[1] * s.kernel[2];
    this.run('col2im', s, colsPtr, dstPtr, attrs.groups, 0, units, elements);
  }

  /** The int32 index of each window's first maximum of a float32 input (padded already). */
  maxPoolIndices(x: KernelInput, xPtr: number, attrs: WindowSweep, dstPtr: number): void {
    const s = sweep3(x.shape, x.strides, attrs);
    const planes = s.n * s.channels;
    const elements = planes * s.out[0] * s.out[1] * s.out[2] * s.kernel[0] * s.kernel[1] * s.kernel[2];
    this.run('maxPool', s, xPtr + 4 * x.offset, dstPtr, 1, 0, planes, elements);
  }
}
