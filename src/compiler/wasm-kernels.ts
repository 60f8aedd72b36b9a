// The compiler's fused ops on the wasm backend: when a compiled graph's nodes read tensors in the
// wasm heap, the interpreter asks this runner first (interpret's `execute` option), so
//   - a `fusedElementwise` node whose float32 body the wasm emitter handles (codegen/wasm.ts,
//     transcendentals included) runs as ONE generated SIMD module on the heap's memory (a
//     reduction after it: the body's kernel into a temporary, then the backend's reduce kernel);
//   - a `matmulEpilogue` node whose epilogue is a per-column bias add and/or ReLU runs as ONE call
//     of the backend's SGEMM with its fused epilogue (WasmBackend.matmulBiasRelu); any other
//     epilogue runs the SGEMM, then the epilogue's fused kernel;
//   - any other fused node runs through `bind` op by op (fused-ops.ts evaluateFused), its
//     intermediates freed at their last use; nodes of other ops (and fused nodes whose inputs are
//     not all in one wasm heap) are left to the interpreter (undefined);
//   - an `optimizerUpdate` node (graph/optimizer-update-op.ts) runs the backend's fused update in
//     place on the parameter and state tensors when the graph allows it (else on copies).
//
// Results equal the unfused graph run op by op on the wasm backend, bit for bit: the emitted body
// uses the same f32/f32x4 instructions as the backend's elementwise kernels (its transcendentals
// are the backend's own code; a scalar element runs the vector code on a splat), each value of the
// body is a float32 as it would be when stored, and the SGEMM's epilogue adds the bias to the same
// float32 accumulator the plain SGEMM would store (alpha = 1 is exact), then takes max(x, 0) as
// the backend's relu does. test/compiler/wasm-kernels.test.ts checks this against eager.
//
// Large kernels are split over the backend's thread pool by blocks of their outermost axis, as the
// backend splits its own elementwise kernels (same thresholds); the results do not change.
import type { Tensor } from '../core/tensor.js';
import { Tensor as TensorClass } from '../core/tensor.js';
import { contiguousStrides, sizeOf } from '../core/shape.js';
import type { KernelInput } from '../backend/backend.js';
import { WasmBackend } from '../backend/wasm/backend.js';
import type { Graph, GraphNode } from '../graph/graph.js';
import { OPTIMIZER_UPDATE_OP, optimizerUpdateInPlaceSafe, runOptimizerUpdateInPlace, type OptimizerUpdateAttrs } from '../graph/optimizer-update-op.js';
import { scope } from '../core/memory.js';
import { noGrad } from '../autodiff/mode.js';
import { bind } from '../ops/dispatch.js';
import { canEmitWasm, emitWasmKernel, fusedTaskLayout, fusedTaskWords, isWasmTranscendental } from './codegen/wasm.js';
import type { KernelModule, ThreadPool } from '../backend/wasm/threads.js';
import { kernelKey, simplifyKernel, type KernelSpec, type ScalarExpr } from './codegen/kernel-ir.js';
import { composeViews, evaluateFusedNodeFreeing, type FusedSpec, type MatmulEpilogueAttrs } from './fused-ops.js';

export interface WasmKernelStats {
  /** fusedElementwise nodes run as one generated wasm module. */
  fusedKernels: number;
  /** matmulEpilogue nodes run as one SGEMM call with its bias/ReLU epilogue. */
  matmulEpilogues: number;
  /** matmulEpilogue nodes run as the SGEMM, then the epilogue's generated kernel. */
  matmulThenKernel: number;
  /** Parameter writes applied as copies inside the wasm heap (wasm-writes.ts). */
  heapWrites: number;
  /** Fused nodes on wasm that ran through `bind` instead: a bare reduction or copy (nothing to fuse), or body ops/dtypes the emitter lacks. */
  fallbacks: number;
}

type KernelFunction = (...addresses: number[]) => void;
type Runner = (inputs: readonly Tensor[]) => Tensor;

/** A compiled fused module: its single-thread entry, and what splitting it over a pool needs. */
interface FusedModule {
  readonly kernel: KernelFunction;
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The module registered with a pool (registration copies it into the heap for the workers). */
  readonly registered: WeakMap<ThreadPool, KernelModule>;
  /** Heap block of task descriptors (grown on demand). */
  params: { ptr: number; units: number } | undefined;
}

// Modules per backend (each heap has its own memory to import), by kernel structure.
const modules = new WeakMap<WasmBackend, Map<string, FusedModule>>();
let modulesCompiled = 0;

/** How many distinct fused wasm modules were compiled (all backends). */
export function wasmKernelCacheStats(): { compiled: number } {
  return { compiled: modulesCompiled };
}

function fusedModule(backend: WasmBackend, spec: KernelSpec): FusedModule {
  let cache = modules.get(backend);
  if (cache === undefined) modules.set(backend, (cache = new Map()));
  // Specs that simplify to the same loop nest (merged axes) share a module.
  const key = kernelKey(simplifyKernel(spec));
  let entry = cache.get(key);
  if (entry === undefined) {
    const heap = backend.heap;
    const bytes = emitWasmKernel(spec, { module: 'env', name: 'memory', minPages: 1, maxPages: heap.maxPages, shared: heap.shared }, { transcendentals: true });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: heap.memory } });
    entry = { kernel: instance.exports.kernel as KernelFunction, bytes, registered: new WeakMap(), params: undefined };
    cache.set(key, entry);
    modulesCompiled++;
  }
  return entry;
}

/**
 * Elements from which a fused kernel is split over the backend's threads (as the backend splits
 * its own elementwise kernels: waking the workers costs about as much as ~50k elements of simple
 * arithmetic, ~5k of a transcendental), and units per thread (a late or slowed thread then
 * delays the whole by less).
 */
const PARALLEL_MIN_ELEMENTS = { simple: 1 << 16, transcendental: 1 << 13 } as const;
const UNITS_PER_THREAD = 2;

/**
 * Runs the module over the pool: the outermost (merged) axis cut into blocks, one unit each.
 * Results equal one call's bit for bit (an element's value does not depend on its block).
 */
function runSplit(backend: WasmBackend, pool: ThreadPool, mod: FusedModule, spec: KernelSpec, addresses: readonly number[]): void {
  const layout = fusedTaskLayout(spec);
  const target = pool.threads * UNITS_PER_THREAD;
  // Blocks of a single row are multiples of 4 elements, so vector stores stay 16-byte apart.
  const chunk = layout.rank === 1 ? Math.ceil(layout.outer / target / 4) * 4 : Math.ceil(layout.outer / target);
  const units = Math.ceil(layout.outer / chunk);
  const words = fusedTaskWords(spec.inputs.length);
  let module = mod.registered.get(pool);
  if (module === undefined) mod.registered.set(pool, (module = pool.register(mod.bytes)));
  if (mod.params === undefined || mod.params.units < units) {
    if (mod.params !== undefined) backend.heap.free(mod.params.ptr);
    mod.params = { ptr: backend.heap.alloc(units * words * 4), units };
  }
  const i32 = backend.heap.i32;
  for (let u = 0; u < units; u++) {
    const start = u * chunk;
    let w = (mod.params.ptr >>> 2) + u * words;
    i32[w++] = addresses[0]! + 4 * start * layout.outStride;
    layout.inputStrides.forEach((st, k) => { i32[w++] = addresses[k + 1]! + 4 * start * st; });
    i32[w] = Math.min(chunk, layout.outer - start);
  }
  pool.run(module, mod.params.ptr, units, true);
}

/** The wasm backend all the tensors live on, or undefined (another backend, mixed, or none). */
function wasmBackendOf(inputs: readonly Tensor[]): WasmBackend | undefined {
  const b = inputs[0]?.storage.backend;
  if (!(b instanceof WasmBackend)) return undefined;
  return inputs.every((t) => t.storage.backend === b) ? b : undefined;
}

const layoutKey = (inputs: readonly Tensor[]): string => inputs.map((t) => `${t.strides.join(',')}@${t.offset}`).join(';');

/** The dtype of a body expression's value. */
function exprDtype(spec: FusedSpec, inputs: readonly { dtype: string }[], e: ScalarExpr): string {
  return e.kind === 'load' ? inputs[e.input]!.dtype : e.dtype;
}

/**
 * Runs the compiled graph's fused nodes as wasm kernels. One per compiled graph: the prepared
 * kernel of each node is kept per input layout (a graph's layouts rarely change between calls).
 */
export class WasmGraphKernels {
  readonly stats: WasmKernelStats = { fusedKernels: 0, matmulEpilogues: 0, matmulThenKernel: 0, heapWrites: 0, fallbacks: 0 };
  private readonly plans = new Map<GraphNode, Map<string, Runner | null>>();
  private readonly inPlaceUpdates = new Map<GraphNode, boolean>();

  /**
   * `graph`: the graph this runner serves (compile() passes it). With it, an optimizerUpdate node
   * that optimizer-update-op.ts proves safe runs in place on the parameter and state tensors.
   */
  constructor(private readonly graph?: Graph) {}

  /** The node's outputs (from a wasm kernel, or from `bind` with intermediates freed), or undefined to let the interpreter run it. */
  execute = (node: GraphNode, inputs: readonly Tensor[]): Tensor[] | undefined => {
    if (node.op === OPTIMIZER_UPDATE_OP) return this.optimizerUpdate(node, inputs);
    if (node.op !== 'fusedElementwise' && node.op !== 'matmulEpilogue') return undefined;
    const backend = wasmBackendOf(inputs);
    // Off the wasm heap (cpu tensors the planned executor did not take; webgpu tensors when the
    // webgpu runner is off or absent, see webgpu-kernels.ts) the node runs through `bind`, its
    // intermediates freed at once rather than left to the garbage collector.
    if (backend === undefined) return [scope(() => noGrad(() => evaluateFusedNodeFreeing(node, inputs)))];
    let perLayout = this.plans.get(node);
    if (perLayout === undefined) this.plans.set(node, (perLayout = new Map()));
    const key = `${backend.name}|${layoutKey(inputs)}`;
    let run = perLayout.get(key);
    if (run === undefined) {
      run = node.op === 'fusedElementwise'
        ? counted(fusedRunner((node.attrs as { spec: FusedSpec }).spec, inputs, backend), () => this.stats.fusedKernels++)
        : this.planMatmul(node.attrs as MatmulEpilogueAttrs, inputs, backend);
      perLayout.set(key, run);
    }
    if (run === null) {
      // Through `bind`, op by op, freeing the body's intermediates at once (as the interpreter
      // frees unfused nodes' values) rather than when the garbage collector gets to them: a
      // compiled replay records no tape, so nothing else holds them.
      this.stats.fallbacks++;
      return [scope(() => noGrad(() => evaluateFusedNodeFreeing(node, inputs)))];
    }
    return [run(inputs)];
  };

  /**
   * A fused optimizer update in place when the graph allows it (nothing reads the old parameter or
   * state after the node, and the graph writes the new values back into those same tensors: the
   * heap writer's copies are then onto themselves and skipped); otherwise undefined, and the
   * interpreter runs the op on copies. The grad must not share the parameter's or state's memory.
   */
  private optimizerUpdate(node: GraphNode, inputs: readonly Tensor[]): Tensor[] | undefined {
    const g = this.graph;
    if (g === undefined) return undefined;
    let safe = this.inPlaceUpdates.get(node);
    if (safe === undefined) {
      const index = g.nodes.indexOf(node);
      safe = index >= 0 && optimizerUpdateInPlaceSafe(g, index);
      this.inPlaceUpdates.set(node, safe);
    }
    const grad = inputs[1]!;
    if (!safe || inputs.some((t, i) => i !== 1 && t.storage === grad.storage)) return undefined;
    return runOptimizerUpdateInPlace(inputs, node.attrs as OptimizerUpdateAttrs);
  }

  private planMatmul(attrs: MatmulEpilogueAttrs, inputs: readonly Tensor[], backend: WasmBackend): Runner | null {
    const [a, b] = inputs as [Tensor, Tensor];
    const rest = inputs.slice(2);
    const ep = attrs.epilogue;
    const r = a.shape.length;
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || r < 2 || b.shape.length !== r || ep.reduce !== undefined) return null;
    if (ep.inputs[0]!.views.length > 0) return null;
    const productShape = [...a.shape.slice(0, -1), b.shape[r - 1]!];
    const fused = matchBiasRelu(ep, rest, productShape);
    if (fused !== undefined) {
      return (xs) => {
        this.stats.matmulEpilogues++;
        const bias = fused.biasInput === undefined ? undefined : biasOperand(xs[2 + fused.biasInput]!, fused.biasOffset(xs[2 + fused.biasInput]!), productShape[r - 1]!);
        return TensorClass.fromStorage(backend.matmulBiasRelu(xs[0]!, xs[1]!, bias, fused.relu), productShape, 'float32');
      };
    }
    // The product is a fresh contiguous tensor: the epilogue kernel is planned for that layout.
    const productLayout = { shape: productShape, strides: contiguousStrides(productShape), offset: 0, dtype: 'float32' as const };
    const epilogue = fusedRunner(ep, [productLayout, ...rest], backend);
    if (epilogue === null) return null;
    return (xs) => {
      this.stats.matmulThenKernel++;
      const y = TensorClass.fromStorage(backend.matmulBiasRelu(xs[0]!, xs[1]!, undefined, false), productShape, 'float32');
      const out = epilogue([y, ...xs.slice(2)]);
      y.dispose();
      return out;
    };
  }
}

/** A runner for a fused elementwise spec over these inputs' layouts, or null when it cannot be emitted. */
function fusedRunner(spec: FusedSpec, inputs: readonly Pick<Tensor, 'shape' | 'strides' | 'offset' | 'dtype'>[], backend: WasmBackend): Runner | null {
  const n = sizeOf(spec.shape);
  const last = spec.body[spec.body.length - 1];
  // A bare load (a reduction of a view, a copy) has nothing to fuse: the backend's kernel does it.
  if (n === 0 || last === undefined || !spec.body.some((e) => e.kind === 'op')) return null;
  if (exprDtype(spec, inputs, last) !== 'float32') return null;
  const layouts = inputs.map((t, j) => composeViews({ shape: [...t.shape], strides: [...t.strides], offset: t.offset }, spec.inputs[j]!.views));
  if (layouts.some((l) => l === undefined)) return null;
  const kspec: KernelSpec = {
    shape: [...spec.shape],
    inputs: layouts.map((l, j) => ({ dtype: inputs[j]!.dtype, strides: [...l!.strides], offset: l!.offset })),
    body: spec.body,
    outDtype: 'float32',
  };
  if (!canEmitWasm(kspec, { transcendentals: true })) return null;
  const mod = fusedModule(backend, kspec);
  const splitFrom = kspec.body.some((e) => e.kind === 'op' && isWasmTranscendental(e.op))
    ? PARALLEL_MIN_ELEMENTS.transcendental : PARALLEL_MIN_ELEMENTS.simple;
  const splits = fusedTaskLayout(kspec).outer > 1;
  const elementwise = (xs: readonly Tensor[]): Tensor => {
    const out = backend.allocUninitialized('float32', n);
    const addresses = [backend.addressOf(out)];
    for (const x of xs) addresses.push(backend.addressOf(x.storage));
    const pool = backend.pool;
    if (splits && pool.threads > 1 && n >= splitFrom) runSplit(backend, pool, mod, kspec, addresses);
    else mod.kernel(...addresses);
    return TensorClass.fromStorage(out, spec.shape, 'float32');
  };
  const reduce = spec.reduce;
  if (reduce === undefined) return elementwise;
  // The body's values materialized once, then the backend's reduction of them: what the
  // unfused graph computes, with one temporary instead of one per body op.
  return (xs) => {
    const tmp = elementwise(xs);
    const out = bind(reduce.op, [tmp], { axes: [...reduce.axes], keepdim: reduce.keepdim });
    tmp.dispose();
    return out;
  };
}

function counted(run: Runner | null, count: () => void): Runner | null {
  return run === null ? null : (xs) => {
    count();
    return run(xs);
  };
}

/**
 * The epilogue as "ReLU? of (product + per-column bias?)": which extra input is the bias (its
 * index among the node's inputs 2..) and whether ReLU follows; undefined for any other body.
 */
function matchBiasRelu(ep: FusedSpec, rest: readonly Tensor[], productShape: readonly number[]):
  { biasInput: number | undefined; biasOffset: (t: Tensor) => number; relu: boolean } | undefined {
  const body = ep.body;
  if (ep.outDtype !== 'float32' || body.filter((e) => e.kind === 'op').length > 2) return undefined;
  let e = body[body.length - 1]!;
  let relu = false;
  if (e.kind === 'op' && e.op === 'relu' && e.dtype === 'float32') {
    relu = true;
    e = body[e.args[0]!]!;
  }
  const isProduct = (x: ScalarExpr): boolean => x.kind === 'load' && x.input === 0;
  if (isProduct(e)) return relu ? { biasInput: undefined, biasOffset: () => 0, relu } : undefined;
  if (e.kind !== 'op' || e.op !== 'add' || e.dtype !== 'float32' || e.args.length !== 2) return undefined;
  const [x, y] = e.args.map((i) => body[i]!) as [ScalarExpr, ScalarExpr];
  const other = isProduct(x) ? y : isProduct(y) ? x : undefined;
  if (other === undefined || other.kind !== 'load' || other.input === 0) return undefined;
  const j = other.input - 1;
  const t = rest[j]!;
  if (t.dtype !== 'float32') return undefined;
  // Per column: the bias, seen through its views over the product, walks the last axis with
  // stride 1 and repeats over every other axis (stride 0).
  const views = ep.inputs[other.input]!.views;
  const layoutOf = (u: Tensor) => composeViews({ shape: [...u.shape], strides: [...u.strides], offset: u.offset }, views);
  const l = layoutOf(t);
  const rank = productShape.length;
  if (l === undefined || l.shape.length !== rank || l.shape.some((d, i) => d !== productShape[i])) return undefined;
  if (l.strides[rank - 1] !== 1 || l.strides.slice(0, -1).some((s) => s !== 0)) return undefined;
  return { biasInput: j, biasOffset: (u) => layoutOf(u)!.offset, relu };
}

/** The bias as the contiguous [n] vector the SGEMM epilogue reads. */
function biasOperand(t: Tensor, offset: number, n: number): KernelInput {
  return { storage: t.storage, dtype: 'float32', shape: [n], strides: [1], offset };
}
