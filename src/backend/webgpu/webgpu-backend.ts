// The webgpu backend: tensor storages are GPU buffers owned by a device thread (protocol.ts), and the
// primitives that pay on a GPU run generated WGSL (wgsl.ts): float32 elementwise math over any
// strides and broadcasts, sum/max/min over any axes, batched matmul (tiled in workgroup memory),
// softmax/logSoftmax, strided copies, and the SGD/Adam updates. Every other primitive, and every
// dtype but float32, runs the cpu reference kernel on a copy read back from the GPU (dispatch's
// fallback), so every op works, some only at the speed of the round trip.
//
// This file is the backend over a running device thread, whatever the platform; backend.ts starts
// one in Node and registers it, browser.ts does the same from a Web Worker of a page.
import { Storage, type Backend, type Kernel, type KernelInput, type OptimizerUpdate, type OutputInfo } from '../backend.js';
import { roundToFormat } from '../cpu/backend.js';
import { runOnCpu } from '../cpu-fallback.js';
import { scatterStrided } from '../cpu/strided.js';
import { allocStorage, type DType, type TypedArray } from '../../core/dtype.js';
import { TesseraError } from '../../core/errors.js';
import { contiguousStrides, isContiguousLayout, sizeOf } from '../../core/shape.js';
import type { PrimitiveAttrs, PrimitiveName } from '../../ops/primitives.js';
import type { DeviceClient } from './device-client.js';
import {
  FLOAT_EXPRESSIONS, MATMUL_LARGE_MIN_BLOCKS, MATMUL_MAX_BATCH_RANK, MAX_RANK, WORKGROUP,
  elementwiseWgsl, matmulLargeWgsl, matmulWgsl, optimizerWgsl, reduceWgsl, softmaxWgsl,
} from './wgsl.js';
import {
  ELEMENT_TYPE, castExpression, compareExpression, gatherWgsl, logicalExpression, scatterAddWgsl, sliceBackwardWgsl, stridedCopyWgsl,
  typedElementwiseWgsl, typedInvocations, type ElementType,
} from './wgsl-typed.js';
import { LAYER_NORM_PARAMS, layerNormWgsl } from './wgsl-rows.js';
import { QUANTIZED_MATMUL_PARAMS, quantizedMatmulWgsl } from './wgsl-quantized.js';
import {
  ATTENTION_MAX_BATCH_RANK, ATTENTION_PARAMS, MAX_HEAD, MAX_KEYS,
  attentionGradColumnsWgsl, attentionGradRowsWgsl, attentionWgsl,
} from './wgsl-attention.js';
import { STATUS_BUFFER_ID } from './protocol.js';
import { WINDOW_PARAMS, col2imWgsl, im2colWgsl, maxPoolIndicesWgsl } from './wgsl-window.js';
import { sweep3 } from '../cpu/window-kernels.js';
import type { WindowSweep } from '../../ops/patch-shape.js';

/** What a webgpu storage's `handle` holds. */
export interface GpuBuffer {
  readonly id: number;
  /** Bytes of the storage (elements × the storage class's item size). */
  readonly bytes: number;
}

/** Bytes per element as stored (float16/bfloat16 live in float32 words, as on the cpu backend). */
function storedItemsize(dtype: DType): number {
  return allocStorage(dtype, 0).BYTES_PER_ELEMENT;
}

function typedArrayOver(dtype: DType, bytes: Uint8Array): TypedArray {
  const n = bytes.byteLength / storedItemsize(dtype);
  const out = allocStorage(dtype, n);
  new Uint8Array(out.buffer, out.byteOffset, bytes.byteLength).set(bytes);
  return out;
}

/** Workgroups for `n` units on a 2-D grid (one dimension holds at most `maxPerDim`). */
function grid2d(n: number, maxPerDim: number): [number, number] {
  if (n <= maxPerDim) return [Math.max(1, n), 1];
  return [maxPerDim, Math.ceil(n / maxPerDim)];
}

const float32 = (inputs: readonly KernelInput[], out: OutputInfo): boolean =>
  out.dtype === 'float32' && inputs.every((x) => x.dtype === 'float32');

/** A view's dims and strides padded to MAX_RANK with size-1 dims (they add nothing to offsets). */
function padded(values: readonly number[], fill: number): number[] {
  return [...values, ...new Array<number>(MAX_RANK - values.length).fill(fill)];
}

export class WebGPUBackend implements Backend {
  readonly name: string;
  private liveBytes = 0;
  private bytesAtLastCollect = 0;
  private readonly collectGarbage: (() => void) | undefined;

  constructor(readonly device: DeviceClient, name = 'webgpu', collectGarbage?: () => void) {
    this.name = name;
    this.collectGarbage = collectGarbage;
  }

  alloc(dtype: DType, size: number): Storage {
    // WebGPU buffers start zero-filled.
    return this.newStorage(dtype, size);
  }

  fromArray(dtype: DType, data: TypedArray): Storage {
    const copy = allocStorage(dtype, data.length);
    copy.set(data);
    roundToFormat(dtype, copy);
    return this.newStorage(dtype, data.length, new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength));
  }

  readAll(storage: Storage): TypedArray {
    const h = this.handle(storage, 'readAll');
    return typedArrayOver(storage.dtype, this.device.read(h.id, 0, h.bytes));
  }

  writeStrided(dst: KernelInput, src: TypedArray): void {
    const h = this.handle(dst.storage, 'writeStrided');
    const item = storedItemsize(dst.dtype);
    const values = allocStorage(dst.dtype, src.length);
    values.set(src);
    roundToFormat(dst.dtype, values);
    if (item >= 4 && isContiguousLayout(dst.shape, dst.strides)) {
      this.device.post({ op: 'write', id: h.id, byteOffset: dst.offset * item, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) }, [values.buffer as ArrayBuffer]);
      return;
    }
    // Scattered or sub-word elements: update the whole storage on this thread and write it back.
    const all = this.readAll(dst.storage);
    scatterStrided(all, dst.shape, dst.strides, dst.offset, values);
    this.device.post({ op: 'write', id: h.id, byteOffset: 0, data: new Uint8Array(all.buffer, all.byteOffset, all.byteLength) }, [all.buffer as ArrayBuffer]);
  }

  free(storage: Storage): void {
    const h = storage.handle as GpuBuffer;
    this.liveBytes -= h.bytes;
    this.device.post({ op: 'free', id: h.id });
  }

  kernel<P extends PrimitiveName>(prim: P): Kernel<P> | undefined {
    return (this.kernels as Partial<Record<PrimitiveName, Kernel<PrimitiveName>>>)[prim] as Kernel<P> | undefined;
  }

  copyStrided(dst: KernelInput, src: KernelInput): boolean {
    if (dst.storage.backend !== this || src.storage.backend !== this || dst.storage === src.storage) return false;
    const item = storedItemsize(dst.dtype);
    if (item !== 4 || dst.dtype !== src.dtype || dst.shape.length > MAX_RANK) return false;
    const n = sizeOf(dst.shape);
    if (n === 0) return true;
    if (isContiguousLayout(dst.shape, dst.strides) && isContiguousLayout(src.shape, src.strides)) {
      this.device.post({ op: 'copy', src: this.handle(src.storage, 'copy').id, srcOffset: src.offset * 4, dst: this.handle(dst.storage, 'copy').id, dstOffset: dst.offset * 4, bytes: n * 4 });
      return true;
    }
    // Binding 0 (written) is the destination view, addressed through its strides like an input.
    this.launch(stridedCopyWgsl(), [dst.storage, src.storage], this.stridedParams(dst.shape, [dst, src]), Math.ceil(n / WORKGROUP), 'copy into a view');
    return true;
  }

  /** Storage buffers one kernel may bind, its output included (the adapter's limit; WebGPU guarantees 8). */
  get maxStorageBindings(): number {
    return this.device.info.maxStorageBuffersPerShaderStage ?? 8;
  }

  /**
   * Runs a kernel generated outside this backend (the compiler's fused nodes, compiler/codegen/wgsl.ts)
   * as one dispatch: binding 0 is a fresh output of `out.size` elements of `out.dtype`, bindings
   * 1.. are `inputs` in order, then `params` (at most one slot, PARAMS_SLOT_BYTES) when given.
   * The device thread compiles each distinct text once and names it by a number afterwards, so
   * callers should hand in the same text object for the same structure (the compiler caches it).
   */
  runGenerated(wgsl: string, inputs: readonly Storage[], out: { dtype: DType; size: number }, workgroups: number, label: string, params?: Int32Array): Storage {
    const bindings = inputs.length + 1 + (params === undefined ? 0 : 1);
    if (bindings > this.maxStorageBindings) {
      throw new TesseraError(`webgpu ${label}: a generated kernel binds ${inputs.length} inputs, its output${params === undefined ? '' : ' and its params'}, more than this GPU's ${this.maxStorageBindings} storage buffers per shader; run the node op by op (the compiler checks maxStorageBindings first).`);
    }
    const result = this.newStorage(out.dtype, out.size);
    if (out.size === 0 || workgroups === 0) return result;
    this.launch(wgsl, [result, ...inputs], params, workgroups, label);
    return result;
  }

  /** Waits until the GPU has finished all work submitted so far (for timing). */
  synchronize(): void {
    this.device.sync();
  }

  optimizerUpdate(u: OptimizerUpdate): boolean {
    const { rule, param, grad } = u;
    const contiguousF32 = (x: KernelInput): boolean => x.dtype === 'float32' && isContiguousLayout(x.shape, x.strides);
    if (!contiguousF32(param) || grad.dtype !== 'float32' || grad.shape.length > MAX_RANK) return false;
    const n = sizeOf(param.shape);
    if (n === 0) return true;
    let wgsl: string, scalars: number[], states: KernelInput[];
    if (rule.kind === 'adam' && !rule.amsgrad) {
      states = [u.state.expAvg!, u.state.expAvgSq!];
      wgsl = optimizerWgsl('adam', { maximize: rule.maximize, coupledDecay: rule.weightDecay !== 0, momentum: false, nesterov: false, firstStep: false });
      scalars = [rule.stepSize, rule.biasCorrection2Sqrt, rule.decay, rule.weightDecay, 1 - rule.beta1, rule.beta2, 1 - rule.beta2, rule.eps];
    } else if (rule.kind === 'sgd') {
      const momentum = rule.momentum > 0;
      states = momentum ? [u.state.momentumBuffer!] : [];
      wgsl = optimizerWgsl('sgd', { maximize: rule.maximize, coupledDecay: false, momentum, nesterov: rule.nesterov, firstStep: rule.firstStep });
      scalars = [rule.lr, rule.momentum, 1 - rule.dampening, rule.weightDecay];
    } else {
      return false;
    }
    // The kernel indexes parameter and state from element 0 (a parameter is normally a whole storage).
    if (param.offset !== 0 || !states.every((s) => s !== undefined && contiguousF32(s) && s.offset === 0)) return false;
    const meta = new Int32Array(2 + 2 * MAX_RANK + 1 + scalars.length);
    meta[0] = n;
    meta[1] = grad.shape.length;
    meta.set(padded(grad.shape, 1), 2);
    meta.set(padded(grad.strides, 0), 2 + MAX_RANK);
    meta[2 + 2 * MAX_RANK] = grad.offset;
    new Float32Array(meta.buffer).set(scalars, 3 + 2 * MAX_RANK);
    const ids = [param, grad, ...states].map((x) => this.handle(x.storage, 'optimizerUpdate').id);
    this.device.post({ op: 'run', wgsl, buffers: ids, meta, grid: grid2d(Math.ceil(n / WORKGROUP), this.maxGrid()), label: `${rule.kind} update` });
    return true;
  }

  private readonly kernels: Partial<{ [P in PrimitiveName]: Kernel<P> }> = this.buildKernels();

  private buildKernels(): Partial<{ [P in PrimitiveName]: Kernel<P> }> {
    const table: Partial<Record<PrimitiveName, Kernel<PrimitiveName>>> = {};
    for (const [op, expression] of Object.entries(FLOAT_EXPRESSIONS)) {
      table[op as PrimitiveName] = (inputs, attrs, out) => this.elementwise(op as PrimitiveName, expression, inputs, attrs, out);
    }
    table.contiguous = (inputs, attrs, out) => this.contiguous(inputs, attrs, out);
    for (const op of ['sum', 'max', 'min'] as const) {
      table[op] = (inputs, attrs, out) => this.reduce(op, inputs, attrs as PrimitiveAttrs['sum'], out);
    }
    table.matmul = (inputs, attrs, out) => this.matmul(inputs, attrs, out);
    for (const op of ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const) {
      table[op] = (inputs, attrs, out) => {
        const type = ELEMENT_TYPE[inputs[0]!.dtype];
        return type === undefined || inputs[1]!.dtype !== inputs[0]!.dtype ? this.viaCpu(op, inputs, attrs, out) : this.typed(op, inputs, attrs, out, compareExpression(op, type));
      };
    }
    table.logicalAnd = (inputs, attrs, out) => this.logical('logicalAnd', inputs, attrs, out);
    table.logicalOr = (inputs, attrs, out) => this.logical('logicalOr', inputs, attrs, out);
    table.logicalNot = (inputs, attrs, out) => this.logical('logicalNot', inputs, attrs, out);
    table.isnan = (inputs, attrs, out) => inputs[0]!.dtype === 'float32' ? this.typed('isnan', inputs, attrs, out, 'select(0u, 1u, isnan_(a))') : this.viaCpu('isnan', inputs, attrs, out);
    table.where = (inputs, attrs, out) => inputs[1]!.dtype === 'float32' || inputs[1]!.dtype === 'int32' ? this.typed('where', inputs, attrs, out, 'select(c, b, a != 0u)') : this.viaCpu('where', inputs, attrs, out);
    table.cast = (inputs, attrs, out) => {
      const from = ELEMENT_TYPE[inputs[0]!.dtype];
      const expression = from === undefined ? undefined : castExpression(from, (attrs as PrimitiveAttrs['cast']).dtype);
      return expression === undefined ? this.viaCpu('cast', inputs, attrs, out) : this.typed('cast', inputs, attrs, out, expression);
    };
    table.gather = (inputs, attrs, out) => this.gather(inputs, attrs as PrimitiveAttrs['gather'], out);
    table.scatterAdd = (inputs, attrs, out) => this.scatterAdd(inputs, attrs as PrimitiveAttrs['scatterAdd'], out);
    table.sliceBackward = (inputs, attrs, out) => this.sliceBackward(inputs, attrs as PrimitiveAttrs['sliceBackward'], out);
    table.layerNormCore = (inputs, attrs, out) => this.layerNorm('core', inputs, attrs as PrimitiveAttrs['layerNormCore'], out);
    table.layerNormRstd = (inputs, attrs, out) => this.layerNorm('rstd', inputs, attrs as PrimitiveAttrs['layerNormRstd'], out);
    table.layerNormCoreGrad = (inputs, attrs, out) => this.layerNorm('grad', inputs, attrs as PrimitiveAttrs['layerNormCoreGrad'], out);
    table.attention = (inputs, attrs, out) => this.attention(false, inputs, attrs as PrimitiveAttrs['attention'], out);
    table.attentionGrad = (inputs, attrs, out) => this.attention(true, inputs, attrs as PrimitiveAttrs['attention'], out);
    table.cat = (inputs, attrs, out) => this.cat(inputs, attrs as PrimitiveAttrs['cat'], out);
    table.im2col = (inputs, attrs, out) => this.window('im2col', inputs, attrs as PrimitiveAttrs['im2col'], out);
    table.col2im = (inputs, attrs, out) => this.window('col2im', inputs, attrs as PrimitiveAttrs['col2im'], out);
    table.maxPoolIndices = (inputs, attrs, out) => this.window('maxPoolIndices', inputs, attrs as PrimitiveAttrs['maxPoolIndices'], out);
    table.quantizedMatmul = (inputs, attrs, out) => this.quantizedMatmul(inputs, attrs as PrimitiveAttrs['quantizedMatmul'], out);
    table.softmax = (inputs, attrs, out) => this.softmax(false, inputs, attrs as PrimitiveAttrs['softmax'], out);
    table.logSoftmax = (inputs, attrs, out) => this.softmax(true, inputs, attrs as PrimitiveAttrs['softmax'], out);
    return table as Partial<{ [P in PrimitiveName]: Kernel<P> }>;
  }

  // ---- kernels ----

  private elementwise(op: PrimitiveName, expression: string, inputs: readonly KernelInput[], attrs: unknown, out: OutputInfo): Storage {
    if (!float32(inputs, out) || out.shape.length > MAX_RANK) return this.viaCpu(op, inputs, attrs, out);
    const n = sizeOf(out.shape);
    const result = this.newStorage(out.dtype, n);
    if (n === 0) return result;
    const flat = inputs.every((x) => isContiguousLayout(x.shape, x.strides));
    let meta: Int32Array;
    if (flat) {
      meta = Int32Array.from([n, ...inputs.map((x) => x.offset)]);
    } else {
      meta = new Int32Array(2 + MAX_RANK + inputs.length * (MAX_RANK + 1));
      meta[0] = n;
      meta[1] = out.shape.length;
      meta.set(padded(out.shape, 1), 2);
      inputs.forEach((x, k) => {
        const base = 2 + MAX_RANK + k * (MAX_RANK + 1);
        meta.set(padded(x.strides, 0), base);
        meta[base + MAX_RANK] = x.offset;
      });
    }
    this.launch(elementwiseWgsl(expression, inputs.length, flat), [result, ...inputs.map((x) => x.storage)], meta, Math.ceil(n / WORKGROUP), op);
    return result;
  }

  private contiguous(inputs: readonly KernelInput[], attrs: unknown, out: OutputInfo): Storage {
    const x = inputs[0]!;
    const item = storedItemsize(x.dtype);
    const n = sizeOf(out.shape);
    if (isContiguousLayout(x.shape, x.strides) && (x.offset * item) % 4 === 0 && (n * item) % 4 === 0) {
      const result = this.newStorage(out.dtype, n);
      if (n > 0) {
        this.device.post({ op: 'copy', src: this.handle(x.storage, 'contiguous').id, srcOffset: x.offset * item, dst: (result.handle as GpuBuffer).id, dstOffset: 0, bytes: n * item });
      }
      return result;
    }
    if (item !== 4 || out.shape.length > MAX_RANK) return this.viaCpu('contiguous', inputs, attrs, out);
    const result = this.newStorage(out.dtype, n);
    if (n === 0) return result;
    const meta = new Int32Array(2 + MAX_RANK + MAX_RANK + 1);
    meta[0] = n;
    meta[1] = out.shape.length;
    meta.set(padded(out.shape, 1), 2);
    meta.set(padded(x.strides, 0), 2 + MAX_RANK);
    meta[2 + 2 * MAX_RANK] = x.offset;
    // Moved as 32-bit words, so float32, int32 and the 16-bit floats (kept in float32 words) share one kernel.
    this.launch(elementwiseWgsl('a', 1, false, 'u32'), [result, x.storage], meta, Math.ceil(n / WORKGROUP), 'contiguous');
    return result;
  }

  private reduce(op: 'sum' | 'max' | 'min', inputs: readonly KernelInput[], attrs: PrimitiveAttrs['sum'], out: OutputInfo): Storage {
    const x = inputs[0]!;
    if (!float32(inputs, out) || x.shape.length > MAX_RANK) return this.viaCpu(op, inputs, attrs, out);
    const axes = new Set(attrs.axes.map((a) => (a < 0 ? a + x.shape.length : a)));
    const keptDims = x.shape.map((_, d) => d).filter((d) => !axes.has(d));
    const redDims = x.shape.map((_, d) => d).filter((d) => axes.has(d));
    const nOut = keptDims.reduce((p, d) => p * x.shape[d]!, 1);
    const count = redDims.reduce((p, d) => p * x.shape[d]!, 1);
    const result = this.newStorage(out.dtype, nOut);
    if (nOut === 0) return result;
    if (count === 0 && op !== 'sum') return this.viaCpu(op, inputs, attrs, out);
    const R = MAX_RANK;
    const meta = new Int32Array(5 + 4 * R);
    meta[0] = nOut;
    meta[1] = keptDims.length;
    meta.set(padded(keptDims.map((d) => x.shape[d]!), 1), 2);
    meta.set(padded(keptDims.map((d) => x.strides[d]!), 0), 2 + R);
    meta[2 + 2 * R] = redDims.length;
    meta.set(padded(redDims.map((d) => x.shape[d]!), 1), 3 + 2 * R);
    meta.set(padded(redDims.map((d) => x.strides[d]!), 0), 3 + 3 * R);
    meta[3 + 4 * R] = count;
    meta[4 + 4 * R] = x.offset;
    this.launch(reduceWgsl(op), [result, x.storage], meta, nOut, op);
    return result;
  }

  private matmul(inputs: readonly KernelInput[], attrs: unknown, out: OutputInfo): Storage {
    const [a, b] = inputs as [KernelInput, KernelInput];
    const rank = a.shape.length;
    const batchRank = rank - 2;
    const batch = sizeOf(out.shape.slice(0, batchRank));
    if (!float32(inputs, out) || batchRank > MATMUL_MAX_BATCH_RANK || batch > 65535) return this.viaCpu('matmul', inputs, attrs, out);
    const M = a.shape[rank - 2]!, K = a.shape[rank - 1]!, N = b.shape[rank - 1]!;
    const result = this.newStorage(out.dtype, batch * M * N);
    if (batch * M * N === 0) return result;
    const meta = new Int32Array(28);
    meta.set([M, N, K, batchRank]);
    const six = (v: readonly number[], fill: number): number[] => [...v, ...new Array<number>(6 - v.length).fill(fill)];
    meta.set(six(a.shape.slice(0, batchRank), 1), 4);
    meta.set(six(a.strides.slice(0, batchRank), 0), 10);
    meta.set(six(b.strides.slice(0, batchRank), 0), 16);
    meta.set([a.strides[rank - 2]!, a.strides[rank - 1]!, b.strides[rank - 2]!, b.strides[rank - 1]!, a.offset, b.offset], 22);
    const buffers = [result, a.storage, b.storage].map((s) => this.handle(s, 'matmul').id);
    const label = `matmul ${M}×${K}·${K}×${N}`;
    const large = Math.ceil(M / 128) * Math.ceil(N / 128);
    if (large >= MATMUL_LARGE_MIN_BLOCKS && large <= this.maxGrid() && batch <= this.maxGrid()) {
      this.device.post({ op: 'run', wgsl: matmulLargeWgsl(), buffers, meta, grid: [large, batch], label });
      return result;
    }
    const tiles: [number, number, number] = [Math.ceil(N / 64), Math.ceil(M / 64), batch];
    if (tiles[0] > this.maxGrid() || tiles[1] > this.maxGrid()) return this.viaCpu('matmul', inputs, attrs, out);
    this.device.post({ op: 'run', wgsl: matmulWgsl(), buffers, meta, grid: tiles, label });
    return result;
  }

  private softmax(log: boolean, inputs: readonly KernelInput[], attrs: PrimitiveAttrs['softmax'], out: OutputInfo): Storage {
    const x = inputs[0]!;
    const prim = log ? 'logSoftmax' : 'softmax';
    if (!float32(inputs, out) || x.shape.length > MAX_RANK + 1) return this.viaCpu(prim, inputs, attrs, out);
    const rank = x.shape.length;
    const axis = attrs.axis < 0 ? attrs.axis + rank : attrs.axis;
    const n = sizeOf(x.shape);
    const result = this.newStorage(out.dtype, n);
    if (n === 0) return result;
    const outStrides = contiguousStrides(x.shape);
    const kept = x.shape.map((_, d) => d).filter((d) => d !== axis);
    const R = MAX_RANK;
    const meta = new Int32Array(6 + 3 * R);
    const rows = n / x.shape[axis]!;
    meta[0] = rows;
    meta[1] = x.shape[axis]!;
    meta[2] = kept.length;
    meta.set(padded(kept.map((d) => x.shape[d]!), 1), 3);
    meta.set(padded(kept.map((d) => x.strides[d]!), 0), 3 + R);
    meta.set(padded(kept.map((d) => outStrides[d]!), 0), 3 + 2 * R);
    meta[3 + 3 * R] = x.strides[axis]!;
    meta[4 + 3 * R] = outStrides[axis]!;
    meta[5 + 3 * R] = x.offset;
    this.launch(softmaxWgsl(log), [result, x.storage], meta, rows, prim);
    return result;
  }

  /** Elementwise over inputs of any element types (strided), output of any element type. */
  private typed(op: PrimitiveName, inputs: readonly KernelInput[], attrs: unknown, out: OutputInfo, expression: string): Storage {
    const types = inputs.map((x) => ELEMENT_TYPE[x.dtype]);
    const outType = ELEMENT_TYPE[out.dtype];
    if (outType === undefined || types.some((t) => t === undefined) || out.shape.length > MAX_RANK) return this.viaCpu(op, inputs, attrs, out);
    const n = sizeOf(out.shape);
    const result = this.newStorage(out.dtype, n);
    if (n === 0) return result;
    const meta = this.stridedParams(out.shape, inputs);
    this.launch(typedElementwiseWgsl(types as ElementType[], outType, expression), [result, ...inputs.map((x) => x.storage)], meta, Math.ceil(typedInvocations(n, outType) / WORKGROUP), op);
    return result;
  }

  private logical(op: 'logicalAnd' | 'logicalOr' | 'logicalNot', inputs: readonly KernelInput[], attrs: unknown, out: OutputInfo): Storage {
    const types = inputs.map((x) => ELEMENT_TYPE[x.dtype]);
    if (types.some((t) => t === undefined)) return this.viaCpu(op, inputs, attrs, out);
    const [ta, tb] = types as ElementType[];
    return this.typed(op, inputs, attrs, out, logicalExpression(op, ta!, tb));
  }

  /** params of the strided elementwise kernels: [n, rank, shape[8], per input: strides[8], offset]. */
  private stridedParams(shape: readonly number[], inputs: readonly KernelInput[]): Int32Array {
    const meta = new Int32Array(2 + MAX_RANK + inputs.length * (MAX_RANK + 1));
    meta[0] = sizeOf(shape);
    meta[1] = shape.length;
    meta.set(padded(shape, 1), 2);
    inputs.forEach((x, k) => {
      const base = 2 + MAX_RANK + k * (MAX_RANK + 1);
      meta.set(padded(x.strides, 0), base);
      meta[base + MAX_RANK] = x.offset;
    });
    return meta;
  }

  /** QuantizedLinear's product, weight-only, float32 (wgsl-quantized.ts); dynamic int8 and other dtypes via the cpu. */
  private quantizedMatmul(inputs: readonly KernelInput[], a: PrimitiveAttrs['quantizedMatmul'], out: OutputInfo): Storage {
    const [x, codes, scales] = inputs as [KernelInput, KernelInput, KernelInput];
    const zeroPoints = a.symmetric ? undefined : inputs[3];
    const bias = a.bias ? inputs[inputs.length - 1] : undefined;
    const dense = (t: KernelInput | undefined): boolean => t === undefined || isContiguousLayout(t.shape, t.strides);
    if (a.activations !== 'none' || x.dtype !== 'float32' || ![x, codes, scales, zeroPoints, bias].every(dense)) return this.viaCpu('quantizedMatmul', inputs, a, out);
    const total = sizeOf(out.shape);
    const result = this.newStorage('float32', total);
    if (total === 0) return result;
    const scheme = a.scheme === 'per-tensor' ? 0 : a.scheme === 'group' ? 3 : a.axis === 0 ? 1 : 2;
    const meta = new Int32Array(QUANTIZED_MATMUL_PARAMS);
    meta.set([
      total, total / (a.transposed ? a.k : a.n), a.n, a.k, a.bits, a.symmetric ? 1 : 0, scheme, a.groupSize,
      a.scheme === 'group' ? Math.max(1, Math.ceil(a.k / a.groupSize)) : 1, a.transposed ? 1 : 0, bias === undefined ? 0 : 1,
      zeroPoints === undefined ? 0 : 1, x.offset, codes.offset, scales.offset, zeroPoints?.offset ?? 0, bias?.offset ?? 0,
      a.bits === 4 ? (a.k + 1) >>> 1 : a.k,
    ]);
    // Absent zero points or bias: any buffer fills the binding (the kernel does not read it).
    this.launch(quantizedMatmulWgsl(), [result, x.storage, codes.storage, scales.storage, (zeroPoints ?? scales).storage, (bias ?? scales).storage], meta,
      Math.ceil(total / WORKGROUP), 'quantizedMatmul');
    return result;
  }

  private gather(inputs: readonly KernelInput[], attrs: PrimitiveAttrs['gather'], out: OutputInfo): Storage {
    const [x, index] = inputs as [KernelInput, KernelInput];
    if (storedItemsize(x.dtype) !== 4 || x.shape.length > MAX_RANK) return this.viaCpu('gather', inputs, attrs, out);
    const n = sizeOf(out.shape);
    const result = this.newStorage(out.dtype, n);
    if (n === 0) return result;
    const axis = attrs.axis;
    const xNoAxis: KernelInput = { ...x, strides: x.strides.map((s, d) => (d === axis ? 0 : s)) };
    const base = this.stridedParams(out.shape, [xNoAxis, index]);
    const meta = new Int32Array(base.length + 3);
    meta.set(base);
    meta.set([axis, x.shape[axis]!, x.strides[axis]!], base.length);
    this.launch(gatherWgsl(), [result, x.storage, index.storage, STATUS_BUFFER_ID], meta, Math.ceil(n / WORKGROUP), 'gather');
    return result;
  }

  private scatterAdd(inputs: readonly KernelInput[], attrs: PrimitiveAttrs['scatterAdd'], out: OutputInfo): Storage {
    const [base, index, src] = inputs as [KernelInput, KernelInput, KernelInput];
    if (!float32([base, src], out) || out.shape.length > MAX_RANK) return this.viaCpu('scatterAdd', inputs, attrs, out);
    const n = sizeOf(out.shape);
    const result = this.newStorage(out.dtype, n);
    if (n === 0) return result;
    const strided = this.stridedParams(out.shape, [base, index, src]);
    const meta = new Int32Array(strided.length + MAX_RANK + 1);
    meta.set(strided);
    meta.set(padded(index.shape, 1), strided.length);
    meta[strided.length + MAX_RANK] = attrs.axis;
    this.launch(scatterAddWgsl(), [result, base.storage, index.storage, src.storage, STATUS_BUFFER_ID], meta, Math.ceil(n / WORKGROUP), 'scatterAdd');
    return result;
  }

  private sliceBackward(inputs: readonly KernelInput[], attrs: PrimitiveAttrs['sliceBackward'], out: OutputInfo): Storage {
    const x = inputs[0]!;
    if (storedItemsize(x.dtype) !== 4 || out.shape.length > MAX_RANK) return this.viaCpu('sliceBackward', inputs, attrs, out);
    const n = sizeOf(out.shape);
    const result = this.newStorage(out.dtype, n);
    if (n === 0) return result;
    const strided = this.stridedParams(out.shape, [x]);
    const meta = new Int32Array(strided.length + 3 * MAX_RANK);
    meta.set(strided);
    meta.set(padded(attrs.starts, 0), strided.length);
    meta.set(padded(attrs.steps, 1), strided.length + MAX_RANK);
    meta.set(padded(x.shape, 1), strided.length + 2 * MAX_RANK);
    this.launch(sliceBackwardWgsl(), [result, x.storage], meta, Math.ceil(n / WORKGROUP), 'sliceBackward');
    return result;
  }

  private layerNorm(mode: 'core' | 'rstd' | 'grad', inputs: readonly KernelInput[], attrs: { eps: number }, out: OutputInfo): Storage {
    const prim = mode === 'core' ? 'layerNormCore' : mode === 'rstd' ? 'layerNormRstd' : 'layerNormCoreGrad';
    const x = inputs[0]!;
    const g = mode === 'grad' ? inputs[1]! : x;
    const rank = x.shape.length;
    if (!float32(inputs, out) || rank < 1 || rank > MAX_RANK + 1) return this.viaCpu(prim, inputs, attrs, out);
    const n = sizeOf(out.shape);
    const result = this.newStorage(out.dtype, n);
    const len = x.shape[rank - 1]!;
    const rows = sizeOf(x.shape.slice(0, -1));
    if (n === 0 || rows === 0) return result;
    if (len === 0) return this.viaCpu(prim, inputs, attrs, out);
    const R = MAX_RANK;
    const meta = new Int32Array(LAYER_NORM_PARAMS);
    meta[0] = rows;
    meta[1] = len;
    meta[2] = rank - 1;
    meta.set(padded(x.shape.slice(0, -1), 1), 3);
    meta.set(padded(x.strides.slice(0, -1), 0), 3 + R);
    meta[3 + 2 * R] = x.strides[rank - 1]!;
    meta[4 + 2 * R] = x.offset;
    meta.set(padded(g.strides.slice(0, -1), 0), 5 + 2 * R);
    meta[5 + 3 * R] = g.strides[rank - 1]!;
    meta[6 + 3 * R] = g.offset;
    new Float32Array(meta.buffer).set([attrs.eps], 7 + 3 * R);
    this.launch(layerNormWgsl(mode), mode === 'grad' ? [result, x.storage, g.storage] : [result, x.storage], meta, rows, prim);
    return result;
  }

  private attention(grad: boolean, inputs: readonly KernelInput[], attrs: PrimitiveAttrs['attention'], out: OutputInfo): Storage {
    const prim = grad ? 'attentionGrad' : 'attention';
    const [q, k, v] = inputs as [KernelInput, KernelInput, KernelInput];
    const g = grad ? inputs[3]! : q;
    const rank = q.shape.length;
    const L = q.shape[rank - 2]!, E = q.shape[rank - 1]!, S = k.shape[rank - 2]!, Ev = v.shape[rank - 1]!;
    const batchShape = q.shape.slice(0, -2);
    const Bt = sizeOf(batchShape);
    if (!float32(inputs, out) || rank - 2 > ATTENTION_MAX_BATCH_RANK || S > MAX_KEYS || E > MAX_HEAD || Ev > MAX_HEAD
      || Bt > this.maxGrid() || L > this.maxGrid() || S > this.maxGrid()) {
      return this.viaCpu(prim, inputs, attrs, out);
    }
    const n = sizeOf(out.shape);
    const result = this.newStorage(out.dtype, n);
    if (n === 0 || L === 0) return result;
    const meta = new Int32Array(ATTENTION_PARAMS);
    meta.set([Bt, L, S, E, Ev, attrs.causal ? 1 : 0, 0, rank - 2]);
    new Float32Array(meta.buffer).set([attrs.scale], 6);
    const six = (vals: readonly number[], fill: number): number[] => [...vals, ...new Array<number>(6 - vals.length).fill(fill)];
    meta.set(six(batchShape, 1), 8);
    [q, k, v, g].forEach((x, t) => meta.set(six(x.strides.slice(0, -2), 0), 14 + 6 * t));
    [q, k, v, g].forEach((x, t) => meta.set([x.strides[rank - 2]!, x.strides[rank - 1]!], 38 + 2 * t));
    meta.set([q.offset, k.offset, v.offset, g.offset], 46);
    if (!grad) {
      this.device.post({ op: 'run', wgsl: attentionWgsl(), buffers: [result, q.storage, k.storage, v.storage].map((s) => this.handle(s, prim).id), meta, grid: [L, Bt], label: prim });
      return result;
    }
    const rows = this.newStorage('float32', 2 * Bt * L);
    const ids = [result, q.storage, k.storage, v.storage, g.storage, rows].map((s) => this.handle(s, prim).id);
    this.device.post({ op: 'run', wgsl: attentionGradRowsWgsl(), buffers: ids, meta, grid: [L, Bt], label: `${prim} (dq)` });
    if (S > 0) this.device.post({ op: 'run', wgsl: attentionGradColumnsWgsl(), buffers: ids, meta, grid: [S, Bt], label: `${prim} (dk, dv)` });
    this.free(rows);
    return result;
  }

  /** cat of 4-byte elements: each input copied into its slice of the output (a strided view of it). */
  private cat(inputs: readonly KernelInput[], attrs: PrimitiveAttrs['cat'], out: OutputInfo): Storage {
    if (storedItemsize(out.dtype) !== 4 || inputs.some((x) => x.dtype !== out.dtype) || out.shape.length > MAX_RANK) return this.viaCpu('cat', inputs, attrs, out);
    const result = this.newStorage(out.dtype, sizeOf(out.shape));
    const strides = contiguousStrides(out.shape);
    const axis = attrs.axis < 0 ? attrs.axis + out.shape.length : attrs.axis;
    let start = 0;
    for (const x of inputs) {
      this.copyStrided({ storage: result, dtype: out.dtype, shape: x.shape, strides, offset: start * strides[axis]! }, x);
      start += x.shape[axis]!;
    }
    return result;
  }

  /** im2col, col2im and maxPoolIndices (1-3 spatial axes; see wgsl-window.ts for the params). */
  private window(prim: 'im2col' | 'col2im' | 'maxPoolIndices', inputs: readonly KernelInput[], attrs: WindowSweep & { pads?: [number, number][]; groups?: number; inputShape?: number[] }, out: OutputInfo): Storage {
    const x = inputs[0]!;
    const ok = prim === 'im2col' ? storedItemsize(x.dtype) === 4 : prim === 'col2im' ? x.dtype === 'float32' : x.dtype === 'float32';
    if (!ok || attrs.kernel.length > 3) return this.viaCpu(prim, inputs, attrs, out);
    const n = sizeOf(out.shape);
    const result = this.newStorage(out.dtype, n);
    if (n === 0) return result;
    // col2im sweeps the windows of its output (the convolution's input); the others of their input.
    const swept = prim === 'col2im' ? attrs.inputShape! : x.shape;
    const sweptStrides = prim === 'col2im' ? contiguousStrides(swept) : x.strides;
    const s = sweep3(swept, sweptStrides, attrs, prim === 'maxPoolIndices' ? undefined : attrs.pads);
    const meta = new Int32Array(WINDOW_PARAMS);
    meta.set([n, s.n, s.channels, attrs.groups ?? 1, ...s.size, ...s.out, ...s.kernel, ...s.stride, ...s.dilation, ...s.padBefore, ...s.strides, prim === 'col2im' ? 0 : x.offset]);
    if (prim === 'col2im') meta.set([...x.strides, x.offset], 28);
    const wgsl = prim === 'im2col' ? im2colWgsl() : prim === 'col2im' ? col2imWgsl() : maxPoolIndicesWgsl();
    this.launch(wgsl, [result, x.storage], meta, Math.ceil(n / WORKGROUP), prim);
    return result;
  }

  // ---- plumbing ----

  /** Runs the cpu reference kernel on copies read back from the GPU (for what has no GPU kernel here). */
  private viaCpu(prim: PrimitiveName, inputs: readonly KernelInput[], attrs: unknown, out: OutputInfo): Storage {
    return runOnCpu(this, prim, inputs, attrs as never, out);
  }

  /** Dispatches `wgsl` over storages (or raw buffer ids, e.g. the status buffer) with `meta` as params. */
  private launch(wgsl: string, storages: readonly (Storage | number)[], meta: Int32Array | undefined, workgroups: number, label: string): void {
    const ids = storages.map((s) => (typeof s === 'number' ? s : this.handle(s, label).id));
    this.device.post({ op: 'run', wgsl, buffers: ids, meta, grid: grid2d(workgroups, this.maxGrid()), label });
  }

  private maxGrid(): number {
    return this.device.info.maxComputeWorkgroupsPerDimension;
  }

  private handle(s: Storage, what: string): GpuBuffer {
    if (s.backend !== this) throw new TesseraError(`webgpu ${what}: a storage of backend '${s.backend.name}' reached the webgpu backend`);
    return s.handle as GpuBuffer;
  }

  private newStorage(dtype: DType, size: number, data?: Uint8Array): Storage {
    const bytes = size * storedItemsize(dtype);
    const limit = this.device.info.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new TesseraError(`webgpu: a ${dtype} tensor of ${size} elements (${bytes} bytes) is larger than this GPU's largest storage binding (${limit} bytes); split it or use the wasm backend.`);
    }
    const id = this.device.newId();
    this.device.post({ op: 'create', id, bytes, data }, data !== undefined && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? [data.buffer as ArrayBuffer] : undefined);
    this.liveBytes += bytes;
    // Tensors dropped without dispose() free their buffers only when collected; collect when GPU memory grows.
    if (this.collectGarbage !== undefined && this.liveBytes > this.bytesAtLastCollect + (256 << 20)) {
      this.bytesAtLastCollect = this.liveBytes;
      this.collectGarbage();
    }
    return new Storage(this, { id, bytes } satisfies GpuBuffer, dtype, size);
  }
}
