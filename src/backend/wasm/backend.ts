// The wasm backend: tensor storages live in one WebAssembly memory (WasmHeap) shared with a
// pool of worker threads; matmul and the elementwise ops whose SIMD result equals the reference
// run generated kernels; every other primitive runs the cpu reference kernel directly on views
// of the heap (no copy of the inputs) and copies its result in.
//
// float16/bfloat16 storages are packed, 2 bytes per element; the kernels below see them as float32
// words holding the format's values (packed-half.ts widens their inputs and narrows, rounding, their
// outputs; the matmul and float32 ↔ half casts read and write the packed storages directly).
//
// Platform-neutral: in Node the registered backend gets worker threads through node-workers.ts
// (which finds worker_threads at run time, so this module still loads in a browser).

import { Storage, registerBackend, type Backend, type Kernel, type KernelInput, type OptimizerUpdate, type OutputInfo } from '../backend.js';
import { cpuBackend } from '../cpu/backend.js';
import { allocStorage, type DType, type TypedArray } from '../../core/dtype.js';
import { isContiguousLayout, sizeOf } from '../../core/shape.js';
import type { PrimitiveAttrs, PrimitiveName, ReduceAttrs } from '../../ops/primitives.js';
import { scatterStrided } from '../cpu/strided.js';
import { WasmHeap, type WasmHeapOptions } from './memory.js';
import { ThreadPool, type WorkerSpawner } from './threads.js';
import { WasmMatmul } from './matmul.js';
import type { MatmulConfig } from './matmul-config.js';
import { operandBytes, type MatmulOperandFormat } from './matmul-kernel.js';
import { WasmElementwise } from './elementwise.js';
import { planRows, forEachRow } from './strided-rows.js';
import { WasmReduce } from './reduce.js';
import { WasmSoftmax } from './softmax.js';
import { WasmLayerNorm } from './layer-norm.js';
import { isJsUnaryOp, mapUnaryRow, type JsUnaryOp } from './unary-js.js';
import { copyStrided, copyStrided4, contiguousStridesOf, type Copy4 } from './copy.js';
import { buildCopyModule, COPY4_EXPORT } from './copy-kernel.js';
import { WasmHalfPack, type HalfFormat } from './half-pack.js';
import { withPackedHalves, narrowed, isHalfFormat, type PackedHalfHost } from './packed-half.js';
import { argReduceStrided } from './arg-reduce.js';
import { gatherStrided, scatterAddStrided, WasmGatherScatter, type HeapView } from './gather-scatter.js';
import { WasmWindowKernels } from './window.js';
import { transposePlan, WasmTranspose } from './transpose.js';
import { nodeRuntime, defaultThreadCount, nodeWorkerSpawner } from './node-workers.js';
import { nodeGarbageCollector } from './node-gc.js';
import { heapPressureHandler } from './heap-pressure.js';
import { WasmOptimizerKernels } from './optimizer-kernel.js';
import { WasmConvDirect, directConvolutionFits } from './conv-direct.js';
import { WasmAttention } from './attention.js';
import { wasmQuantMatmul } from './quant-matmul.js';
import { wasmDynamicInt8 } from './quant-dynamic-int8.js';

/** The direct convolution primitives (conv-direct.ts). */
const CONV_DIRECT_PRIMITIVES = new Set<string>(['convDirect', 'convWeightGrad']);

/** The fused attention primitives (attention.ts). */
const ATTENTION_PRIMITIVES = new Set<string>(['attention', 'attentionGrad']);

/** The primitives the layerNorm kernel serves (layer-norm-kernel.ts). */
const LAYER_NORM_PRIMITIVES = new Set<string>(['layerNormCore', 'layerNormRstd', 'layerNormCoreGrad']);

/** What a wasm storage's `handle` holds. */
export interface WasmBuffer {
  /** Byte address in the heap. */
  readonly ptr: number;
  readonly byteLength: number;
  freed: boolean;
  /** float16/bfloat16 packed 2 bytes per element (packed-half.ts); false for float32 words and other dtypes. */
  readonly packed: boolean;
}

export interface WasmBackendOptions {
  heap?: WasmHeapOptions;
  /** Threads including the calling one (default 1; the registered backend uses TESSERA_THREADS or the CPU count in Node). */
  threads?: number;
  spawner?: WorkerSpawner;
  matmulConfig?: MatmulConfig;
  /** Registry name (default 'wasm'). */
  name?: string;
}

type ArrayConstructorOf = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

const arrayClasses = new Map<DType, ArrayConstructorOf>();

/** Whether two dtypes share a storage class, so that copying their bits copies their values. */
function sameStorageClass(a: DType, b: DType): boolean {
  return arrayClass(a) === arrayClass(b);
}

/** The typed array of each dtype's elements as the kernels see them (float16/bfloat16 as float32 words, as on the cpu backend). */
function arrayClass(dtype: DType): ArrayConstructorOf {
  let cls = arrayClasses.get(dtype);
  if (cls === undefined) {
    cls = allocStorage(dtype, 0).constructor as unknown as ArrayConstructorOf;
    arrayClasses.set(dtype, cls);
  }
  return cls;
}

export class WasmBackend implements Backend {
  readonly name: string;
  readonly heap: WasmHeap;
  private currentPool: ThreadPool;
  private currentMatmul: WasmMatmul;
  private readonly elementwise: WasmElementwise;
  private readonly reduce: WasmReduce;
  private readonly softmax: WasmSoftmax;
  private readonly logSoftmax: WasmSoftmax;
  private readonly layerNorm: WasmLayerNorm;
  private readonly kernels = new Map<PrimitiveName, Kernel<PrimitiveName>>();
  private copy4: Copy4 | undefined;
  private halfPackOnce: WasmHalfPack | undefined;
  /** What packed-half.ts's wrapper needs of this backend. */
  private readonly packedHost: PackedHalfHost = {
    isPacked: (s) => this.isPacked(s),
    allocHalfWords: (format, size) => this.allocWords(format, size),
    allocPacked: (format, size) => this.allocUninitialized(format, size),
    addressOf: (s) => this.addressOf(s),
    free: (s) => this.free(s),
    widen: (format, dst, src, n) => this.halfPack.widen(format, dst, src, n),
    narrow: (format, dst, src, n) => this.halfPack.narrow(format, dst, src, n),
  };
  /** Per primitive: calls served by a wasm kernel, and calls that ran the cpu reference on heap views. */
  readonly kernelCalls = new Map<PrimitiveName, { wasm: number; reference: number }>();

  constructor(options: WasmBackendOptions = {}) {
    this.name = options.name ?? 'wasm';
    this.heap = new WasmHeap(options.heap);
    this.currentPool = new ThreadPool(this.heap, { threads: options.threads ?? 1, spawner: options.spawner });
    this.currentMatmul = new WasmMatmul(this.heap, this.currentPool, options.matmulConfig);
    this.elementwise = new WasmElementwise(this.heap, () => this.currentPool);
    this.reduce = new WasmReduce(this.heap, () => this.currentPool);
    this.softmax = new WasmSoftmax(this.heap, () => this.currentPool);
    this.logSoftmax = new WasmSoftmax(this.heap, () => this.currentPool, 'logSoftmax');
    this.layerNorm = new WasmLayerNorm(this.heap, () => this.currentPool);
  }

  get pool(): ThreadPool {
    return this.currentPool;
  }

  /** The SGEMM driver (its `config` may be changed, e.g. by an autotuner). */
  get matmul(): WasmMatmul {
    return this.currentMatmul;
  }

  /**
   * Replaces the thread pool (threads including the calling one). Storages are unaffected; the
   * kernels are compiled again for the new pool on first use.
   */
  setThreads(threads: number, spawner?: WorkerSpawner): void {
    const pool = new ThreadPool(this.heap, { threads, spawner });
    const config = this.currentMatmul.config;
    this.currentPool.dispose();
    this.currentPool = pool;
    this.currentMatmul = new WasmMatmul(this.heap, pool, config);
  }

  private bufferOf(storage: Storage): WasmBuffer {
    if (storage.backend !== this) {
      throw new Error(`${this.name} backend: got a storage of backend '${storage.backend.name}'; move the tensor with .to('${this.name}') first`);
    }
    const buffer = storage.handle as WasmBuffer;
    if (buffer.freed) throw new Error(`${this.name} backend: storage used after it was freed (dispose() was called on every tensor over it)`);
    return buffer;
  }

  /** Byte address of a storage's element 0. */
  addressOf(storage: Storage): number {
    return this.bufferOf(storage).ptr;
  }

  /** Whether a storage of this backend holds packed 2-byte float16/bfloat16 patterns (packed-half.ts). */
  isPacked(storage: Storage): boolean {
    return storage.backend === this && (storage.handle as WasmBuffer).packed;
  }

  /** Bytes the storage takes in the heap before the allocator's rounding (2 per float16/bfloat16 element). */
  storageBytes(storage: Storage): number {
    return (storage.handle as WasmBuffer).byteLength;
  }

  /**
   * A fresh storage; contents unspecified unless `zero`. float16/bfloat16 are packed, 2 bytes per
   * element; every other dtype has its typed array's element size.
   */
  allocUninitialized(dtype: DType, size: number, zero = false): Storage {
    return isHalfFormat(dtype) ? this.allocBytes(dtype, size, 2 * size, true, zero) : this.allocWords(dtype, size, zero);
  }

  /**
   * A storage as the kernels compute on it: float16/bfloat16 in float32 words (packed-half.ts hands
   * the kernels such storages and packs their half-format outputs), other dtypes as always.
   */
  private allocWords(dtype: DType, size: number, zero = false): Storage {
    return this.allocBytes(dtype, size, size * arrayClass(dtype).BYTES_PER_ELEMENT, false, zero);
  }

  private allocBytes(dtype: DType, size: number, byteLength: number, packed: boolean, zero: boolean): Storage {
    const ptr = this.heap.alloc(byteLength);
    // Whole 32-bit words (blocks are 64-byte aligned and sized): Int32Array.fill on a shared
    // memory runs ~4x faster than the byte-wise Uint8Array.fill.
    if (zero) this.heap.i32.fill(0, ptr >>> 2, (ptr + byteLength + 3) >>> 2);
    const buffer: WasmBuffer = { ptr, byteLength, freed: false, packed };
    return new Storage(this, buffer, dtype, size);
  }

  alloc(dtype: DType, size: number): Storage {
    return this.allocUninitialized(dtype, size, true);
  }

  /** The widening and narrowing between packed half-format patterns and float32 words (half-pack.ts). */
  get halfPack(): WasmHalfPack {
    return (this.halfPackOnce ??= new WasmHalfPack(this.heap, () => this.currentPool));
  }

  /** float16/bfloat16 data is rounded to the format as it is packed (one narrowing pass from float32 words). */
  fromArray(dtype: DType, data: TypedArray): Storage {
    if (!isHalfFormat(dtype)) {
      const storage = this.allocWords(dtype, data.length);
      this.readAll(storage).set(data);
      return storage;
    }
    const words = this.allocWords(dtype, data.length);
    this.readAll(words).set(data);
    return narrowed(this.packedHost, words);
  }

  /**
   * The storage's elements. For every dtype but float16/bfloat16: a view of the heap (no copy),
   * valid until the storage is freed and, with an unshared memory, until the next allocation
   * (growth replaces the buffer). For a packed float16/bfloat16 storage: a new Float32Array of its
   * values (the Backend contract allows a copy; writing to it changes nothing in the heap).
   */
  readAll(storage: Storage): TypedArray {
    const { ptr, packed } = this.bufferOf(storage);
    if (packed) {
      const words = this.allocWords(storage.dtype, storage.size);
      this.halfPack.widen(storage.dtype as HalfFormat, this.addressOf(words), ptr, storage.size);
      const copy = (this.readAll(words) as Float32Array).slice();
      this.free(words);
      return copy;
    }
    const Cls = arrayClass(storage.dtype);
    return new Cls(this.heap.memory.buffer, ptr, storage.size);
  }

  /** Backend.readSpan: a heap view of the elements, or for a packed storage the decoded span alone. */
  readSpan(storage: Storage, start: number, count: number): TypedArray {
    const { ptr, packed } = this.bufferOf(storage);
    if (start < 0 || count < 0 || start + count > storage.size) {
      throw new RangeError(`${this.name} backend: readSpan [${start}, ${start + count}) is outside the storage's ${storage.size} elements`);
    }
    if (!packed) return this.readAll(storage).subarray(start, start + count);
    if (count === 0) return new Float32Array(0);
    const words = this.allocWords(storage.dtype, count);
    this.halfPack.widen(storage.dtype as HalfFormat, this.addressOf(words), ptr + 2 * start, count);
    const copy = (this.readAll(words) as Float32Array).slice();
    this.free(words);
    return copy;
  }

  writeStrided(dst: KernelInput, src: TypedArray): void {
    if (!this.isPacked(dst.storage)) {
      scatterStrided(this.readAll(dst.storage), dst.shape, dst.strides, dst.offset, src);
      return;
    }
    // Through float32 words (as the values were stored before packing), rounded as they are packed.
    const format = dst.dtype as HalfFormat;
    const n = sizeOf(dst.shape);
    const words = this.allocWords(format, n);
    this.readAll(words).set(src);
    if (isContiguousLayout(dst.shape, dst.strides)) {
      this.halfPack.narrow(format, this.addressOf(dst.storage) + 2 * dst.offset, this.addressOf(words), n);
      this.free(words);
      return;
    }
    const packed = narrowed(this.packedHost, words);
    const { ptr } = this.bufferOf(packed);
    const buffer = this.heap.memory.buffer;
    scatterStrided(new Uint16Array(buffer, this.addressOf(dst.storage), dst.storage.size) as unknown as TypedArray,
      dst.shape, dst.strides, dst.offset, new Uint16Array(buffer, ptr, n));
    this.free(packed);
  }

  free(storage: Storage): void {
    const buffer = storage.handle as WasmBuffer;
    if (buffer.freed) return;
    buffer.freed = true;
    this.heap.free(buffer.ptr);
  }

  kernel<P extends PrimitiveName>(prim: P): Kernel<P> {
    let k = this.kernels.get(prim);
    if (k === undefined) {
      // Every kernel computes on float32 words; packed half-format inputs and outputs are converted around it.
      const inner = (this.ownKernel(prim) ?? this.cpuOnViews(prim)) as Kernel<PrimitiveName>;
      k = withPackedHalves(this.packedHost, inner, (prim === 'cast' ? this.directCast : prim === 'matmul' ? this.directMatmul : undefined) as never);
      this.kernels.set(prim, k);
    }
    return k as unknown as Kernel<P>;
  }

  private count(prim: PrimitiveName, path: 'wasm' | 'reference'): void {
    let c = this.kernelCalls.get(prim);
    if (c === undefined) this.kernelCalls.set(prim, (c = { wasm: 0, reference: 0 }));
    c[path]++;
  }

  /** Stops the worker threads; later work runs on the calling thread. Storages stay usable. */
  stopThreads(): void {
    this.setThreads(1);
  }

  private optimizerKernelsOnce: WasmOptimizerKernels | undefined;

  /** Fused in-place optimizer updates for float32 parameters (optimizer-kernel.ts); `updates` counts them. */
  get optimizerKernels(): WasmOptimizerKernels {
    return (this.optimizerKernelsOnce ??= new WasmOptimizerKernels(this.heap, () => this.currentPool));
  }

  /** Backend.optimizerUpdate: one SIMD pass per parameter; false (nothing written) for other dtypes or layouts. */
  optimizerUpdate(update: OptimizerUpdate): boolean {
    return this.optimizerKernels.run(update, (s) => (s.backend === this && !(s.handle as WasmBuffer).freed ? this.addressOf(s) : undefined));
  }

  private ownKernel(prim: PrimitiveName): Kernel<PrimitiveName> | undefined {
    if (prim === 'softmax' || prim === 'logSoftmax') {
      // float32 along a contiguous last axis (softmax-kernel.ts); anything else: the reference.
      const fallback = this.cpuOnViews(prim);
      const rows = prim === 'softmax' ? this.softmax : this.logSoftmax;
      const k: Kernel<'softmax'> = (inputs, attrs, out) => {
        const x = asFloat32Words(inputs, out)?.[0];
        if (x === undefined || !rows.fits(x, attrs.axis)) return fallback(inputs, attrs, out);
        const storage = this.allocWords(out.dtype, sizeOf(out.shape));
        rows.run(x, this.addressOf(x.storage), this.addressOf(storage));
        this.count(prim, 'wasm');
        return storage;
      };
      return k as unknown as Kernel<PrimitiveName>;
    }
    if (LAYER_NORM_PRIMITIVES.has(prim)) {
      // float32 rows along a stride-1 last axis (layer-norm-kernel.ts); anything else: the reference.
      // (A Set, not `prim === …`, so that prim's type is not narrowed for the branches below.)
      const fallback = this.cpuOnViews(prim as 'layerNormCore' | 'layerNormRstd' | 'layerNormCoreGrad');
      const rstdOnly = prim === 'layerNormRstd';
      const k: Kernel<'layerNormCore' | 'layerNormRstd' | 'layerNormCoreGrad'> = (inputs, attrs, out) => {
        const words = asFloat32Words(inputs, out);
        if (words === undefined || !words.every((t) => this.layerNorm.fits(t))) return fallback(inputs, attrs, out);
        const x = words[0]!, g = words[1];
        const storage = this.allocWords(out.dtype, sizeOf(out.shape));
        if (g !== undefined) this.layerNorm.runGrad(x, this.addressOf(x.storage), g, this.addressOf(g.storage), this.addressOf(storage), attrs.eps);
        else this.layerNorm.run(x, this.addressOf(x.storage), this.addressOf(storage), attrs.eps, rstdOnly);
        this.count(prim, 'wasm');
        return storage;
      };
      return k as unknown as Kernel<PrimitiveName>;
    }
    if (CONV_DIRECT_PRIMITIVES.has(prim)) return this.convDirectKernel(prim as 'convDirect' | 'convWeightGrad');
    if (ATTENTION_PRIMITIVES.has(prim)) return this.attentionKernel(prim as 'attention' | 'attentionGrad');
    if (prim === 'quantizedMatmul') return this.quantizedMatmulKernel() as unknown as Kernel<PrimitiveName>;
    if (prim === 'matmul') {
      const fallback = this.cpuOnViews('matmul');
      const k: Kernel<'matmul'> = (inputs, attrs, out) => {
        const result = this.matmulKernel(inputs, out);
        if (result === undefined) return fallback(inputs, attrs, out);
        this.count('matmul', 'wasm');
        return result;
      };
      return k as unknown as Kernel<PrimitiveName>;
    }
    const movement = this.movementKernel(prim);
    if (movement !== undefined) {
      return ((inputs, attrs, out) => {
        this.count(prim, 'wasm');
        return movement(inputs, attrs, out);
      }) as Kernel<PrimitiveName>;
    }
    if (this.elementwise.signature(prim) !== undefined) {
      const fallback = this.cpuOnViews(prim);
      return ((inputs, attrs, out) => {
        const result = this.elementwiseKernel(prim, inputs, out);
        if (result === undefined) return fallback(inputs, attrs, out);
        this.count(prim, 'wasm');
        return result;
      }) as Kernel<PrimitiveName>;
    }
    if (isJsUnaryOp(prim)) {
      const fallback = this.cpuOnViews(prim as PrimitiveName);
      return ((inputs, attrs, out) => {
        const result = this.jsUnaryKernel(prim, inputs[0]!, out);
        if (result === undefined) return fallback(inputs, attrs, out);
        this.count(prim, 'wasm');
        return result;
      }) as Kernel<PrimitiveName>;
    }
    if (this.reduce.handles(prim)) {
      const fallback = this.cpuOnViews(prim);
      return ((inputs, attrs, out) => {
        const reduceAttrs = attrs as unknown as ReduceAttrs;
        const result = this.reduceKernel(prim, inputs[0]!, reduceAttrs, out);
        if (result === undefined) return fallback(inputs, reduceAttrs, out);
        this.count(prim, 'wasm');
        return result;
      }) as Kernel<PrimitiveName>;
    }
    return undefined;
  }

  /** float32 transcendental unary ops computed between heap views (see unary-js.ts). */
  private jsUnaryKernel(op: JsUnaryOp, x: KernelInput, out: OutputInfo): Storage | undefined {
    if (x.dtype !== 'float32' || out.dtype !== 'float32') return undefined;
    const n = sizeOf(out.shape);
    const storage = this.allocWords('float32', n);
    const outStrides = contiguousStridesOf(out.shape);
    const plan = planRows(out.shape, [outStrides, x.strides]);
    // Views after the allocation: growth would detach views of an unshared memory.
    const src = this.readAll(x.storage) as Float32Array;
    const dst = this.readAll(storage) as Float32Array;
    const stride = plan.innerStrides[1]!;
    forEachRow(plan, [0, x.offset], ([o, p]) => mapUnaryRow(op, src, p!, stride, dst, o!, plan.rowLength));
    return storage;
  }

  /**
   * float32 sum/max/min through the SIMD row/column kernels; undefined when the layout does not
   * fit. float16/bfloat16 (float32 words here) take the same kernels, accumulating in float32 as
   * PyTorch's CPU reductions of half formats do, and round the result once.
   */
  private reduceKernel(op: 'sum' | 'max' | 'min', x: KernelInput, attrs: ReduceAttrs, out: OutputInfo): Storage | undefined {
    if (asFloat32Words([x], out) === undefined) return undefined;
    const n = sizeOf(out.shape);
    if (n === 0) return undefined;
    const storage = this.allocWords(out.dtype, n);
    const done = this.reduce.run(op, {
      inPtr: this.addressOf(x.storage), inOffset: x.offset, shape: x.shape, strides: x.strides,
      axes: attrs.axes, outPtr: this.addressOf(storage),
    });
    if (done) {
      return storage;
    }
    this.free(storage);
    return undefined;
  }

  /** The cpu reference kernel run over views of the heap; its result is copied into the heap. */
  private cpuOnViews<P extends PrimitiveName>(prim: P): Kernel<P> {
    const cpuKernel = cpuBackend.kernel(prim)!;
    return (inputs, attrs, out) => {
      this.count(prim, 'reference');
      const views: KernelInput[] = inputs.map((t) => ({
        storage: new Storage(cpuBackend, this.readAll(t.storage), t.storage.dtype, t.storage.size),
        dtype: t.dtype, shape: t.shape, strides: t.strides, offset: t.offset,
      }));
      const result = cpuKernel(views, attrs, out);
      return this.fromArray(out.dtype, result.handle as TypedArray);
    };
  }

  /**
   * A cast between float32 and a half format of a contiguous view, in one pass over the packed side:
   * float32 → float16/bfloat16 narrows (and rounds) straight into the packed output, float16/bfloat16
   * → float32 widens straight out of the packed input. Undefined for anything else (the wrapper then
   * widens, runs the cast kernel and narrows).
   */
  private readonly directCast = (inputs: readonly KernelInput[], _attrs: PrimitiveAttrs['cast'], out: OutputInfo): Storage | undefined => {
    const x = inputs[0]!;
    if (!isContiguousLayout(x.shape, x.strides)) return undefined;
    const n = sizeOf(out.shape);
    let dst: Storage;
    if (out.dtype === 'float32' && this.isPacked(x.storage)) {
      dst = this.allocWords('float32', n);
      this.halfPack.widen(x.dtype as HalfFormat, this.addressOf(dst), this.addressOf(x.storage) + 2 * x.offset, n);
    } else if (isHalfFormat(out.dtype) && x.dtype === 'float32') {
      dst = this.allocUninitialized(out.dtype, n);
      this.halfPack.narrow(out.dtype, this.addressOf(dst), this.addressOf(x.storage) + 4 * x.offset, n);
    } else {
      return undefined;
    }
    this.count('cast', 'wasm');
    return dst;
  };

  /**
   * Data-movement primitives as strided copies between heap views (copy.ts). Views are taken
   * after the output's allocation: growth would detach views of an unshared memory.
   */
  private movementKernel(prim: PrimitiveName): Kernel<PrimitiveName> | undefined {
    const copyInto = (dst: Storage, x: KernelInput, strides: readonly number[], offset: number) =>
      this.stridedCopy(dst, strides, offset, x, false);
    switch (prim) {
      case 'contiguous':
        return ((inputs, _attrs, out) => {
          const dst = this.allocWords(out.dtype, sizeOf(out.shape));
          copyInto(dst, inputs[0]!, contiguousStridesOf(out.shape), 0);
          return dst;
        }) as Kernel<PrimitiveName>;
      case 'flip':
        return ((inputs, attrs, out) => {
          const x = inputs[0]!;
          const strides = [...x.strides];
          let offset = x.offset;
          for (const a of (attrs as PrimitiveAttrs['flip']).axes) {
            offset += (x.shape[a]! - 1) * strides[a]!;
            strides[a] = -strides[a]!;
          }
          const dst = this.allocWords(out.dtype, sizeOf(out.shape));
          copyInto(dst, { ...x, strides, offset }, contiguousStridesOf(out.shape), 0);
          return dst;
        }) as Kernel<PrimitiveName>;
      case 'sliceBackward':
        return ((inputs, attrs, out) => {
          const { starts, steps } = attrs as PrimitiveAttrs['sliceBackward'];
          const dst = this.allocWords(out.dtype, sizeOf(out.shape), true);
          const cs = contiguousStridesOf(out.shape);
          copyInto(dst, inputs[0]!, cs.map((s, i) => s * steps[i]!), starts.reduce((o, s, i) => o + s * cs[i]!, 0));
          return dst;
        }) as Kernel<PrimitiveName>;
      case 'cat':
        return ((inputs, attrs, out) => {
          const { axis } = attrs as PrimitiveAttrs['cat'];
          const dst = this.allocWords(out.dtype, sizeOf(out.shape));
          const cs = contiguousStridesOf(out.shape);
          let start = 0;
          for (const x of inputs) {
            copyInto(dst, x, cs, start * cs[axis]!);
            start += x.shape[axis]!;
          }
          return dst;
        }) as Kernel<PrimitiveName>;
      case 'cast': {
        // To float32/float64 a cast is the typed-array conversion the reference's `dst[i] = src[i]`
        // performs; to a half format from float32 or a half format (exact in float32 words) it is that
        // copy, and the wrapper's narrowing into the packed output rounds (float32 ↔ half of a
        // contiguous view skips this: directCast); casts to integers, or from float64 to a half format
        // (which must round once, not through float32), need the reference's rules.
        const fallback = this.cpuOnViews('cast');
        return ((inputs, attrs, out) => {
          const from = inputs[0]!.dtype;
          const toHalf = (out.dtype === 'float16' || out.dtype === 'bfloat16') && wordType(from) === 'float32';
          if (out.dtype !== 'float32' && out.dtype !== 'float64' && !toHalf) return fallback(inputs, attrs as PrimitiveAttrs['cast'], out);
          const dst = this.allocWords(out.dtype, sizeOf(out.shape));
          copyInto(dst, inputs[0]!, contiguousStridesOf(out.shape), 0);
          return dst;
        }) as Kernel<PrimitiveName>;
      }
      case 'argmax':
      case 'argmin':
        return ((inputs, attrs, out) => {
          const x = inputs[0]!;
          const dst = this.allocWords(out.dtype, sizeOf(out.shape));
          if (x.shape.length === 0) {
            this.readAll(dst).fill(0);
            return dst;
          }
          const { axis } = attrs as PrimitiveAttrs['argmax'];
          argReduceStrided(prim === 'argmax', this.readAll(x.storage), x.shape, x.strides, x.offset, axis, this.readAll(dst));
          return dst;
        }) as Kernel<PrimitiveName>;
      case 'gather': {
        const fallback = this.cpuOnViews('gather');
        return ((inputs, attrs, out) => {
          const [x, index] = inputs as [KernelInput, KernelInput];
          const a = attrs as PrimitiveAttrs['gather'];
          if (index.dtype !== 'int32') return fallback(inputs, a, out);
          const dst = this.allocWords(out.dtype, sizeOf(out.shape));
          const ok = arrayClass(out.dtype).BYTES_PER_ELEMENT === 4
            ? this.gatherScatter.gather(this.heapView(x), this.heapView(index), a.axis, this.addressOf(dst))
            : gatherStrided(this.viewOf(x), this.viewOf(index), a.axis, this.readAll(dst));
          if (ok) return dst;
          this.free(dst);
          return fallback(inputs, a, out); // reports the index out of range
        }) as Kernel<PrimitiveName>;
      }
      case 'scatterAdd': {
        const fallback = this.cpuOnViews('scatterAdd');
        return ((inputs, attrs, out) => {
          const [base, index, src] = inputs as [KernelInput, KernelInput, KernelInput];
          const a = attrs as PrimitiveAttrs['scatterAdd'];
          // float16/bfloat16 sums would need rounding: reference.
          if (index.dtype !== 'int32' || out.dtype === 'float16' || out.dtype === 'bfloat16') return fallback(inputs, a, out);
          // A broadcast zero base (gather's vjp) starts from zeroed memory instead of a copy.
          const zeroBase = base.strides.every((s) => s === 0) && Object.is(this.readAll(base.storage)[base.offset], 0);
          // float32 zeroes it there (split over the threads with the scatter-add when that is).
          const zeroHere = zeroBase && out.dtype !== 'float32';
          const dst = this.allocWords(out.dtype, sizeOf(out.shape), zeroHere);
          if (!zeroBase) this.stridedCopy(dst, contiguousStridesOf(out.shape), 0, base, false);
          const ok = out.dtype === 'float32'
            ? this.gatherScatter.scatterAdd(this.addressOf(dst), out.shape, this.heapView(index), this.heapView(src), a.axis, zeroBase)
            : scatterAddStrided(this.readAll(dst), out.shape, this.viewOf(index), this.viewOf(src), a.axis);
          if (ok) return dst;
          this.free(dst);
          return fallback(inputs, a, out); // reports the index out of range
        }) as Kernel<PrimitiveName>;
      }
      case 'unfoldBackward': {
        // col2im: overlapping windows add up. float16/bfloat16 sums would need rounding: reference.
        const fallback = this.cpuOnViews('unfoldBackward');
        return ((inputs, attrs, out) => {
          const a = attrs as PrimitiveAttrs['unfoldBackward'];
          if (out.dtype === 'float16' || out.dtype === 'bfloat16') return fallback(inputs, a, out);
          const dst = this.allocWords(out.dtype, sizeOf(out.shape), true);
          const cs = contiguousStridesOf(out.shape);
          const strides = [...cs];
          strides[a.axis] = cs[a.axis]! * a.step;
          strides.push(cs[a.axis]!);
          this.stridedCopy(dst, strides, 0, inputs[0]!, true);
          return dst;
        }) as Kernel<PrimitiveName>;
      }
      case 'pad': {
        const fallback = this.cpuOnViews('pad');
        return ((inputs, attrs, out) => {
          const { pads, value } = attrs as PrimitiveAttrs['pad'];
          // A fill value would need rounding to float16/bfloat16: leave those to the reference.
          if (value !== 0 && (out.dtype === 'float16' || out.dtype === 'bfloat16')) return fallback(inputs, attrs as PrimitiveAttrs['pad'], out);
          const dst = this.allocWords(out.dtype, sizeOf(out.shape), value === 0);
          if (value !== 0) this.readAll(dst).fill(value);
          const cs = contiguousStridesOf(out.shape);
          copyInto(dst, inputs[0]!, cs, pads.reduce((o, [before], i) => o + before * cs[i]!, 0));
          return dst;
        }) as Kernel<PrimitiveName>;
      }
      case 'im2col':
      case 'col2im':
      case 'maxPoolIndices':
        return this.windowKernel(prim);
      default:
        return undefined;
    }
  }

  private windowKernelsOnce: WasmWindowKernels | undefined;

  /**
   * im2col, col2im and maxPoolIndices through the generated window kernels (window.ts): 4-byte
   * elements for im2col, float32 for the others; other dtypes run the reference on heap views.
   */
  private windowKernel(prim: 'im2col' | 'col2im' | 'maxPoolIndices'): Kernel<PrimitiveName> {
    const kernels = (this.windowKernelsOnce ??= new WasmWindowKernels(this.heap, () => this.currentPool));
    const fallback = this.cpuOnViews(prim) as Kernel<PrimitiveName>;
    return ((inputs, attrs, out) => {
      const x = inputs[0]!;
      const fits = prim === 'im2col' ? arrayClass(x.dtype).BYTES_PER_ELEMENT === 4 && sameStorageClass(x.dtype, out.dtype) : x.dtype === 'float32';
      if (!fits) return fallback(inputs, attrs, out);
      if (prim === 'col2im') {
        const dst = this.allocWords(out.dtype, sizeOf(out.shape), true);
        const cols = x.strides.every((s, i) => s === contiguousStridesOf(x.shape)[i] || x.shape[i] === 1)
          ? { storage: x.storage, offset: x.offset } : { storage: this.allocWords('float32', sizeOf(x.shape)), offset: 0 };
        if (cols.storage !== x.storage) this.stridedCopy(cols.storage, contiguousStridesOf(x.shape), 0, x, false);
        kernels.col2im(this.addressOf(cols.storage) + 4 * cols.offset, attrs as PrimitiveAttrs['col2im'], this.addressOf(dst));
        if (cols.storage !== x.storage) this.free(cols.storage);
        return dst;
      }
      const dst = this.allocWords(out.dtype, sizeOf(out.shape));
      const { ptr, byteLength } = this.bufferOf(x.storage);
      if (prim === 'im2col') kernels.im2col(x, ptr, byteLength, attrs as PrimitiveAttrs['im2col'], this.addressOf(dst));
      else kernels.maxPoolIndices(x, ptr, attrs as PrimitiveAttrs['maxPoolIndices'], this.addressOf(dst));
      return dst;
    }) as Kernel<PrimitiveName>;
  }

  private convDirectOnce: WasmConvDirect | undefined;

  /**
   * convDirect and convWeightGrad on float32 with 1-2 spatial axes through the generated direct
   * convolution (conv-direct.ts); other dtypes and 3-D run the reference on heap views.
   */
  private convDirectKernel(prim: 'convDirect' | 'convWeightGrad'): Kernel<PrimitiveName> {
    const conv = (this.convDirectOnce ??= new WasmConvDirect(this.heap, () => this.currentPool));
    const fallback = this.cpuOnViews(prim) as Kernel<PrimitiveName>;
    return ((inputs, attrs, out) => {
      const a = attrs as PrimitiveAttrs['convDirect'];
      if (out.dtype !== 'float32' || !directConvolutionFits(a)) return fallback(inputs, attrs, out);
      const dst = this.allocWords('float32', sizeOf(out.shape));
      const address = (t: KernelInput) => this.addressOf(t.storage);
      if (prim === 'convDirect') conv.forward(inputs[0]!, inputs[1]!, inputs[2], address, a, this.addressOf(dst));
      else conv.weightGrad(inputs[0]!, inputs[1]!, address, a, this.addressOf(dst));
      this.count(prim, 'wasm');
      return dst;
    }) as Kernel<PrimitiveName>;
  }

  private attentionOnce: WasmAttention | undefined;

  /**
   * The fused attention kernels (attention.ts) for float32 inputs they fit, and for float16/bfloat16
   * ones (float32 words: the float32 kernel runs and the result is rounded to the format once, as
   * for matmul; autocast runs attention in the half format); anything else: the reference.
   */
  private attentionKernel(prim: 'attention' | 'attentionGrad'): Kernel<PrimitiveName> {
    const attention = (this.attentionOnce ??= new WasmAttention(this.heap, () => this.currentPool));
    const fallback = this.cpuOnViews(prim) as Kernel<PrimitiveName>;
    return ((inputs, attrs, out) => {
      const words = asFloat32Words(inputs, out);
      if (words === undefined || !attention.fits(words)) return fallback(inputs, attrs, out);
      const dst = this.allocWords(out.dtype, sizeOf(out.shape));
      attention.run(words, (t) => this.addressOf(t.storage), attrs as PrimitiveAttrs['attention'], this.addressOf(dst));
      this.count(prim, 'wasm');
      return dst;
    }) as Kernel<PrimitiveName>;
  }

  /**
   * quantizedMatmul on float32 inputs: the weight-only kernels (quant-matmul.ts: codes decoded in
   * registers for a few rows, decoded panels + SGEMM for more) or the dynamic int8 GEMM
   * (quant-dynamic-int8.ts); what they do not take (the transposed product of backward, float64,
   * scales along the input axis, strided x) runs the cpu reference.
   */
  private quantizedMatmulKernel(): Kernel<'quantizedMatmul'> {
    const fallback = this.cpuOnViews('quantizedMatmul');
    return (inputs, a, out) => {
      const [x, codes, scales] = inputs as [KernelInput, KernelInput, KernelInput];
      const zeroPoints = a.symmetric ? undefined : inputs[3];
      const bias = a.bias ? inputs[inputs.length - 1] : undefined;
      const plain = x.dtype === 'float32' && !a.transposed && isContiguousLayout(x.shape, x.strides) && !(a.scheme === 'per-channel' && a.axis !== 0) &&
        (bias === undefined || isContiguousLayout(bias.shape, bias.strides));
      const m = sizeOf(x.shape.slice(0, -1));
      const perTensor = a.scheme === 'per-tensor';
      const result = !plain ? undefined : a.activations === 'dynamic-int8'
        ? wasmDynamicInt8(this).run(x, m, { n: a.n, k: a.k, codes, scales, perTensor }, bias)
        : wasmQuantMatmul(this).run(x, m, {
          bits: a.bits, signed: a.symmetric, n: a.n, k: a.k, codes, scales, ...(zeroPoints === undefined ? {} : { zeroPoints }),
          groups: a.scheme === 'group' ? Math.max(1, Math.ceil(a.k / a.groupSize)) : 1,
          groupSize: a.scheme === 'group' ? a.groupSize : a.k, perTensor,
        }, bias);
      if (result === undefined) return fallback(inputs, a, out);
      this.count('quantizedMatmul', 'wasm');
      return result;
    };
  }

  private gatherScatterOnce: WasmGatherScatter | undefined;

  /** gather/scatterAdd row loops in wasm (gather-scatter.ts). */
  private get gatherScatter(): WasmGatherScatter {
    return (this.gatherScatterOnce ??= new WasmGatherScatter(this.heap, () => this.currentPool));
  }

  /** A kernel input as a byte address and its layout in elements. */
  private heapView(x: KernelInput): HeapView {
    return { ptr: this.addressOf(x.storage), shape: x.shape, strides: x.strides, offset: x.offset };
  }

  /** A strided typed-array view of a kernel input (valid until the next allocation with an unshared memory). */
  private viewOf(x: KernelInput): { data: TypedArray; shape: readonly number[]; strides: readonly number[]; offset: number } {
    return { data: this.readAll(x.storage), shape: x.shape, strides: x.strides, offset: x.offset };
  }

  private transposeOnce: WasmTranspose | undefined;

  /**
   * dst (through `strides`/`offset`) = x, or += x with `accumulate` (float32 only). 4-byte
   * elements go through the generated 4-D copy, others through JS (copy.ts).
   */
  private stridedCopy(dst: Storage, strides: readonly number[], offset: number, x: KernelInput, accumulate: boolean): void {
    const fourByteBits = arrayClass(dst.dtype).BYTES_PER_ELEMENT === 4 && sameStorageClass(dst.dtype, x.dtype);
    if (fourByteBits && !accumulate) {
      // Transposes (dst's rows along src's columns) move in 4x4 SIMD blocks (transpose.ts).
      const plan = transposePlan(x.shape, strides, x.strides);
      if (plan !== undefined) {
        (this.transposeOnce ??= new WasmTranspose(this.heap, () => this.currentPool)).run(plan, this.addressOf(dst) + 4 * offset, this.addressOf(x.storage) + 4 * x.offset);
        return;
      }
    }
    if (fourByteBits && (!accumulate || dst.dtype === 'float32')) {
      if (this.copy4 === undefined) {
        const module = buildCopyModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared });
        const instance = new WebAssembly.Instance(new WebAssembly.Module(module), { env: { memory: this.heap.memory } });
        this.copy4 = instance.exports[COPY4_EXPORT] as Copy4;
      }
      copyStrided4(this.copy4, x.shape, this.addressOf(x.storage), x.strides, x.offset, this.addressOf(dst), strides, offset, accumulate);
      return;
    }
    // Views after any allocation: growth would detach views of an unshared memory.
    copyStrided(x.shape, this.readAll(x.storage), x.strides, x.offset, this.readAll(dst), strides, offset, accumulate);
  }

  /**
   * matmul on float32 through the generated SGEMM; undefined for other dtypes. float16/bfloat16
   * operands here are float32 words (holding values of the format), so the same SGEMM reads them
   * and its float32 sums are rounded once to the format (by the wrapper's narrowing): a
   * half-precision product with float32 accumulation, as tensor cores compute it (mixed precision,
   * src/quant/autocast.ts). Packed operands normally take directMatmul instead, with the same sums.
   */
  private matmulKernel(inputs: readonly KernelInput[], out: OutputInfo): Storage | undefined {
    const [a, b] = inputs as [KernelInput, KernelInput];
    const half = (a.dtype === 'float16' || a.dtype === 'bfloat16') && b.dtype === a.dtype && out.dtype === a.dtype;
    if (!half && (a.dtype !== 'float32' || b.dtype !== 'float32')) return undefined;
    const c = this.runMatmul(a, b, sizeOf(out.shape), undefined, false, out.dtype);
    return c;
  }

  /**
   * matmul of two packed float16/bfloat16 operands of the output's format, without widened copies:
   * the SGEMM's packing reads the 2-byte patterns (matmul-kernel.ts), its float32 product is narrowed
   * (rounded once) into the packed output. Undefined for anything else (the wrapper's generic path).
   */
  private readonly directMatmul = (inputs: readonly KernelInput[], _attrs: PrimitiveAttrs['matmul'], out: OutputInfo): Storage | undefined => {
    const [a, b] = inputs as [KernelInput, KernelInput];
    if (!isHalfFormat(out.dtype) || a.dtype !== out.dtype || b.dtype !== out.dtype || !this.isPacked(a.storage) || !this.isPacked(b.storage)) return undefined;
    const c = this.runMatmul(a, b, sizeOf(out.shape), undefined, false, out.dtype, out.dtype);
    this.count('matmul', 'wasm');
    return narrowed(this.packedHost, c);
  };

  /**
   * float32 (..., m, k) @ (..., k, n) + bias[n], then ReLU when asked, in one pass over C (the
   * epilogue runs as each tile is stored): the fused kernel for the compiler's matmul + bias (+
   * ReLU) pattern. Operands may be strided views (transposes, broadcast batches); batch
   * dimensions must be equal. Returns a new contiguous storage of shape (..., m, n).
   */
  matmulBiasRelu(a: KernelInput, b: KernelInput, bias: KernelInput | undefined, relu: boolean): Storage {
    const r = a.shape.length;
    const bad = (why: string) => new Error(`matmulBiasRelu: ${why} (a ${a.dtype}[${a.shape}], b ${b.dtype}[${b.shape}]`
      + `${bias ? `, bias ${bias.dtype}[${bias.shape}]` : ''})`);
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || (bias !== undefined && bias.dtype !== 'float32')) throw bad('operands must be float32');
    if (r < 2 || b.shape.length !== r) throw bad('a and b need the same rank ≥ 2');
    if (a.shape[r - 1] !== b.shape[r - 2]) throw bad(`inner sizes differ (${a.shape[r - 1]} vs ${b.shape[r - 2]})`);
    if (a.shape.slice(0, -2).some((d, i) => d !== b.shape[i])) throw bad('batch dimensions differ; expand them first');
    const n = b.shape[r - 1]!;
    if (bias !== undefined && (bias.shape.length !== 1 || bias.shape[0] !== n || bias.strides[0] !== 1)) {
      throw bad(`bias must be a contiguous vector of ${n} values`);
    }
    const size = sizeOf(a.shape.slice(0, -1)) * n;
    return this.runMatmul(a, b, size, bias, relu);
  }

  /**
   * True when B is the same matrix for every batch entry (batch strides 0) and A's batch and row
   * dimensions walk as one row dimension (stride rowStride·m·… per batch dim), so that the batched
   * product is one matrix product with batch·m rows.
   */
  private foldsBatchIntoRows(a: KernelInput, b: KernelInput, batchShape: readonly number[]): boolean {
    const r = a.shape.length;
    let expected = a.strides[r - 2]! * a.shape[r - 2]!;
    for (let d = batchShape.length - 1; d >= 0; d--) {
      const extent = batchShape[d]!;
      if (extent === 1) continue;
      if (b.strides[d] !== 0 || a.strides[d] !== expected) return false;
      expected *= extent;
    }
    return true;
  }

  private runMatmul(
    a: KernelInput, b: KernelInput, size: number, bias: KernelInput | undefined, relu: boolean, dtype: DType = 'float32', operands: MatmulOperandFormat = 'float32',
  ): Storage {
    const r = a.shape.length;
    // A's and B's element size: packed half-format operands are widened by the SGEMM's packing.
    const eb = operandBytes(operands);
    const m = a.shape[r - 2]!, k = a.shape[r - 1]!, n = b.shape[r - 1]!;
    const c = this.allocWords(dtype, size);
    if (m === 0 || n === 0 || size === 0) return c;
    const batchShape = a.shape.slice(0, -2);
    if (batchShape.length > 0 && this.foldsBatchIntoRows(a, b, batchShape)) {
      // (batch…, m, k) @ broadcast (k, n), e.g. a Linear layer on [B, T, d]: one (batch·m)×k
      // product instead of `batch` small ones (each repacking B), same sums per element.
      const rows = (size / n);
      this.matmul.run({
        m: rows, n, k, batch: 1,
        a: { ptr: this.addressOf(a.storage) + eb * a.offset, rowStride: a.strides[r - 2]!, colStride: a.strides[r - 1]!, batchStride: 0 },
        b: { ptr: this.addressOf(b.storage) + eb * b.offset, rowStride: b.strides[r - 2]!, colStride: b.strides[r - 1]!, batchStride: 0 },
        c: { ptr: this.addressOf(c), rowStride: n, colStride: 1, batchStride: 0 },
        bias: bias === undefined ? undefined : this.addressOf(bias.storage) + 4 * bias.offset, relu, operands,
      });
      return c;
    }
    const cBatchStrides: number[] = [];
    for (let d = batchShape.length - 1, s = m * n; d >= 0; d--) {
      cBatchStrides[d] = s;
      s *= batchShape[d]!;
    }
    // Batch dimensions that walk like one are merged; the rest are looped over here.
    const plan = planRows(batchShape, [a.strides.slice(0, -2), b.strides.slice(0, -2), cBatchStrides]);
    const aPtr = this.addressOf(a.storage), bPtr = this.addressOf(b.storage), cPtr = this.addressOf(c);
    const biasPtr = bias === undefined ? undefined : this.addressOf(bias.storage) + 4 * bias.offset;
    if (plan.outerShape.length === 1 && plan.outerStrides.every((st) => st[0]! >= 0)) {
      // Two batch levels (e.g. attention's [B, H] over permuted heads): one call, one job.
      const [osA, osB, osC] = plan.outerStrides.map((st) => st[0]!);
      this.matmul.run({
        m, n, k, batch: plan.rowLength, outerBatch: plan.outerShape[0]!,
        a: { ptr: aPtr + eb * a.offset, rowStride: a.strides[r - 2]!, colStride: a.strides[r - 1]!, batchStride: plan.innerStrides[0]!, outerStride: osA },
        b: { ptr: bPtr + eb * b.offset, rowStride: b.strides[r - 2]!, colStride: b.strides[r - 1]!, batchStride: plan.innerStrides[1]!, outerStride: osB },
        c: { ptr: cPtr, rowStride: n, colStride: 1, batchStride: plan.innerStrides[2]!, outerStride: osC },
        bias: biasPtr, relu, operands,
      });
      return c;
    }
    forEachRow(plan, [a.offset, b.offset, 0], ([ao, bo, co]) => {
      this.matmul.run({
        m, n, k, batch: plan.rowLength,
        a: { ptr: aPtr + eb * ao!, rowStride: a.strides[r - 2]!, colStride: a.strides[r - 1]!, batchStride: plan.innerStrides[0]! },
        b: { ptr: bPtr + eb * bo!, rowStride: b.strides[r - 2]!, colStride: b.strides[r - 1]!, batchStride: plan.innerStrides[1]! },
        c: { ptr: cPtr + 4 * co!, rowStride: n, colStride: 1, batchStride: plan.innerStrides[2]! },
        bias: biasPtr, relu, operands,
      });
    });
    return c;
  }

  /**
   * Elementwise primitives with a wasm kernel (elementwise-kernel.ts), as 2-D blocks: the last
   * outer dimension loops inside wasm, any further ones here. Undefined when the dtypes do not fit.
   */
  private elementwiseKernel(prim: PrimitiveName, inputs: readonly KernelInput[], out: OutputInfo): Storage | undefined {
    const sig = this.elementwise.signature(prim)!;
    // float16/bfloat16 values sit in float32 words here, exactly: the float32 kernel computes on them and a
    // half-format result is rounded to its format once (autocast's elementwise ops stay on SIMD).
    if (wordType(out.dtype) !== sig.output || inputs.length !== sig.inputs.length || inputs.some((t, i) => wordType(t.dtype) !== sig.inputs[i])) {
      return undefined;
    }
    const n = sizeOf(out.shape);
    const outStrides = contiguousStridesOf(out.shape);
    const plan = planRows(out.shape, [outStrides, ...inputs.map((t) => t.strides)]);
    const storage = this.allocWords(out.dtype, n);
    if (n === 0) return storage;
    const bytes = [out.dtype === 'bool' ? 1 : 4, ...inputs.map((t) => (t.dtype === 'bool' ? 1 : 4))];
    const ptrs = [this.addressOf(storage), ...inputs.map((t) => this.addressOf(t.storage))];
    const inner = plan.innerStrides.slice(1);
    const strides = inner.map((s, i) => s * bytes[i + 1]!);
    const run = this.elementwise.blockFunction(prim, inner);
    const last = plan.outerShape.length - 1;
    const rows = last >= 0 ? plan.outerShape[last]! : 1;
    const rowStrides = inputs.map((_, i) => (last >= 0 ? plan.outerStrides[i + 1]![last]! * bytes[i + 1]! : 0));
    const rest = {
      rowLength: plan.rowLength, innerStrides: plan.innerStrides,
      outerShape: plan.outerShape.slice(0, Math.max(last, 0)), outerStrides: plan.outerStrides.map((s) => s.slice(0, Math.max(last, 0))),
    };
    forEachRow(rest, [0, ...inputs.map((t) => t.offset)], (offsets) => {
      run(plan.rowLength, rows, ptrs.map((p, i) => p + bytes[i]! * offsets[i]!), strides, rowStrides);
    });
    return storage;
  }

}

/**
 * The inputs as float32 words when the float32 kernels may run on them: all float32 with a
 * float32 output, or all one half format with an output of that format (float32 words inside the kernels,
 * rounded once after the kernel). Undefined otherwise.
 */
function asFloat32Words(inputs: readonly KernelInput[], out: OutputInfo): KernelInput[] | undefined {
  const dtype = out.dtype;
  if (!inputs.every((t) => t.dtype === dtype)) return undefined;
  if (dtype === 'float32') return [...inputs];
  if (dtype !== 'float16' && dtype !== 'bfloat16') return undefined;
  return inputs.map((t) => ({ ...t, dtype: 'float32' as const }));
}

/** The element type the kernels see a dtype's elements as: float16/bfloat16 as float32 words (packed-half.ts). */
function wordType(dtype: DType): DType {
  return dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype;
}

/** A wasm backend (threads as given; see node.ts for Node's defaults). */
export function createWasmBackend(options: WasmBackendOptions = {}): WasmBackend {
  return new WasmBackend(options);
}

/**
 * The registered 'wasm' backend. In Node it has TESSERA_THREADS threads, else one per CPU (the
 * workers start with the first kernel large enough to share), and runs a garbage collection
 * each time the heap fills by another step (see WasmHeapOptions.onPressure); elsewhere one
 * thread until a WorkerSpawner is given through setThreads.
 */
export const wasmBackend: WasmBackend = createWasmBackend(nodeRuntime() === undefined ? {} : nodeDefaults());

function nodeDefaults(): WasmBackendOptions {
  const gc = nodeGarbageCollector();
  return {
    threads: defaultThreadCount(),
    spawner: nodeWorkerSpawner,
    // Collect when the heap fills, so tensors dropped without dispose() return their blocks (and
    // warn once when a synchronous loop keeps growing it: heap-pressure.ts).
    ...(gc === undefined ? {} : { heap: { onPressure: heapPressureHandler({ collect: gc }) } }),
  };
}
registerBackend(wasmBackend);
