// The compiler's fused ops on the webgpu backend: when a compiled graph's fused node reads tensors
// of one webgpu backend, the interpreter asks this runner first (interpret's `execute` option), so
//   - a `fusedElementwise` node whose body the WGSL emitter handles (codegen/wgsl.ts: float32 math,
//     comparisons and where with bool intermediates, casts, int32 arithmetic, a trailing
//     sum/max/min) runs as ONE generated compute shader: one dispatch, no intermediate buffers.
//     A prod, or a reduction of non-float32 values, runs the body's shader into a temporary and
//     then the backend's reduction through `bind` (two dispatches);
//   - a `matmulEpilogue` node runs the backend's matmul through `bind`, then its epilogue as one
//     generated shader (two dispatches instead of one plus one per epilogue op);
//   - any other fused node on webgpu (nothing to fuse: a bare load or reduction; an op or dtype the
//     emitter lacks; more inputs than the GPU binds) runs through `bind` op by op, its
//     intermediates freed at their last use, and counts as a fallback;
//   - nodes of other ops, and fused nodes over other backends, are left to the next runner
//     (undefined).
//
// The shader text is cached by kernel structure (kernel-ir.ts kernelKey) and storage sharing; the
// device thread compiles each distinct text once into a pipeline and names it by a number after
// that (device-client.ts), so a replay sends only dispatches. Each node keeps its prepared runner
// per input layout, as WasmGraphKernels does.
import type { Tensor } from '../core/tensor.js';
import { Tensor as TensorClass } from '../core/tensor.js';
import { contiguousStrides, sizeOf } from '../core/shape.js';
import type { WebGPUBackend } from '../backend/webgpu/webgpu-backend.js';
import type { GraphNode } from '../graph/graph.js';
import { scope } from '../core/memory.js';
import { noGrad } from '../autodiff/mode.js';
import { bind } from '../ops/dispatch.js';
import { primitives, type ValueInfo } from '../ops/primitives.js';
import { canEmitWgsl, emitWgslKernel, type WgslKernel } from './codegen/wgsl.js';
import { kernelKey, simplifyKernel, type KernelSpec } from './codegen/kernel-ir.js';
import { composeViews, evaluateFusedNodeFreeing, fusedOutputInfo, type FusedSpec, type MatmulEpilogueAttrs } from './fused-ops.js';

export interface WebGPUKernelStats {
  /** fusedElementwise nodes run as one generated shader (a prod or non-float32 reduction: then the backend's reduce). */
  fusedKernels: number;
  /** matmulEpilogue nodes run as the backend's matmul, then the epilogue's generated shader. */
  matmulThenKernel: number;
  /** Fused nodes on webgpu run through `bind` op by op: nothing to fuse, ops or dtypes the emitter lacks, or too many inputs to bind. */
  fallbacks: number;
}

type Runner = (inputs: readonly Tensor[]) => Tensor;
type Layout = Pick<Tensor, 'shape' | 'strides' | 'offset' | 'dtype'>;

// Generated kernels by structure (backend-independent text), and how many were generated.
const kernels = new Map<string, WgslKernel>();

/** How many distinct fused WGSL kernels were generated (all backends). */
export function webgpuKernelCacheStats(): { generated: number } {
  return { generated: kernels.size };
}

function generatedKernel(spec: KernelSpec, bindings: readonly number[]): WgslKernel {
  // Specs that simplify to the same index arithmetic share a text (and so a pipeline).
  const key = `${kernelKey(simplifyKernel(spec))}|${bindings.join(',')}`;
  let k = kernels.get(key);
  if (k === undefined) kernels.set(key, (k = emitWgslKernel(spec, { bindings })));
  return k;
}

/** The webgpu backend all the tensors live on, or undefined (another backend, mixed, or none). */
function webgpuBackendOf(inputs: readonly Tensor[]): WebGPUBackend | undefined {
  // Recognized by its generated-kernel entry point rather than `instanceof`, so the compiler does
  // not pull the webgpu backend's kernels into every bundle.
  const b = inputs[0]?.storage.backend as Partial<WebGPUBackend> | undefined;
  if (b === undefined || b.name === undefined || typeof b.runGenerated !== 'function' || typeof b.maxStorageBindings !== 'number') return undefined;
  return inputs.every((t) => t.storage.backend === b) ? b as WebGPUBackend : undefined;
}

/** For each tensor, the index of the first tensor over the same storage (those share one binding). */
function sharingOf(inputs: readonly Tensor[]): number[] {
  return inputs.map((t, k) => inputs.findIndex((u, j) => j <= k && u.storage === t.storage));
}

const layoutKey = (inputs: readonly Tensor[], sharing: readonly number[]): string =>
  `${inputs.map((t) => `${t.strides.join(',')}@${t.offset}`).join(';')}|${sharing.join(',')}`;

/**
 * Runs the compiled graph's fused nodes over webgpu tensors as generated WGSL. One per compiled
 * graph: each node's runner is kept per input layout (a graph's layouts rarely change).
 */
export class WebGPUGraphKernels {
  readonly stats: WebGPUKernelStats = { fusedKernels: 0, matmulThenKernel: 0, fallbacks: 0 };
  private readonly plans = new Map<GraphNode, Map<string, Runner | null>>();

  /** The node's output (a generated kernel, or `bind` with intermediates freed), or undefined to let the next runner or the interpreter run it. */
  execute = (node: GraphNode, inputs: readonly Tensor[]): Tensor[] | undefined => {
    if (node.op !== 'fusedElementwise' && node.op !== 'matmulEpilogue') return undefined;
    const backend = webgpuBackendOf(inputs);
    if (backend === undefined) return undefined;
    let perLayout = this.plans.get(node);
    if (perLayout === undefined) this.plans.set(node, (perLayout = new Map()));
    const sharing = sharingOf(inputs);
    const key = `${backend.name}|${layoutKey(inputs, sharing)}`;
    let run = perLayout.get(key);
    if (run === undefined) {
      if (node.op === 'fusedElementwise') {
        const fused = fusedRunner((node.attrs as { spec: FusedSpec }).spec, inputs, sharing, backend);
        run = fused === null ? null : (xs) => {
          this.stats.fusedKernels++;
          return fused(xs);
        };
      } else {
        run = this.planMatmul(node.attrs as MatmulEpilogueAttrs, inputs, backend);
      }
      perLayout.set(key, run);
    }
    if (run === null) {
      this.stats.fallbacks++;
      return [scope(() => noGrad(() => evaluateFusedNodeFreeing(node, inputs)))];
    }
    return [run(inputs)];
  };

  private planMatmul(attrs: MatmulEpilogueAttrs, inputs: readonly Tensor[], backend: WebGPUBackend): Runner | null {
    const [a, b] = inputs as [Tensor, Tensor];
    const product = primitives.matmul.infer([a, b], {});
    // The product is a fresh contiguous tensor of its own storage: the epilogue is planned for that.
    const productLayout: Layout = { shape: product.shape, strides: contiguousStrides(product.shape), offset: 0, dtype: product.dtype };
    const rest = inputs.slice(2);
    const sharing = [0, ...sharingOf(rest).map((j) => j + 1)];
    const epilogue = fusedRunner(attrs.epilogue, [productLayout, ...rest], sharing, backend);
    if (epilogue === null) return null;
    return (xs) => {
      this.stats.matmulThenKernel++;
      const y = noGrad(() => bind('matmul', [xs[0]!, xs[1]!], {}));
      const out = epilogue([y, ...xs.slice(2)]);
      y.dispose();
      return out;
    };
  }
}

/**
 * A runner for a fused spec over inputs of these layouts (`sharing[k]`: the first input over input
 * k's storage), or null when the node has nothing to fuse or the emitter cannot produce it.
 */
function fusedRunner(spec: FusedSpec, inputs: readonly Layout[], sharing: readonly number[], backend: WebGPUBackend): Runner | null {
  // A bare load (a reduction of a view, a copy) has nothing to fuse: the backend's kernel does it.
  if (sizeOf(spec.shape) === 0 || !spec.body.some((e) => e.kind === 'op')) return null;
  const layouts = inputs.map((t, j) => composeViews({ shape: [...t.shape], strides: [...t.strides], offset: t.offset }, spec.inputs[j]!.views));
  if (layouts.some((l) => l === undefined)) return null;
  // One binding per distinct storage, in order of first use.
  const bound = [...new Set(sharing)];
  const literals = spec.body.some((e) => e.kind === 'literal') ? 1 : 0;
  if (bound.length + 1 + literals > backend.maxStorageBindings) return null;
  const bindings = sharing.map((j) => bound.indexOf(j));
  const last = spec.body[spec.body.length - 1]!;
  const bodyDtype = last.kind === 'load' ? inputs[last.input]!.dtype : last.dtype;
  const kspec: KernelSpec = {
    shape: [...spec.shape],
    inputs: layouts.map((l, j) => ({ dtype: inputs[j]!.dtype, strides: [...l!.strides], offset: l!.offset })),
    body: spec.body,
    outDtype: bodyDtype,
  };
  const reduce = spec.reduce;
  const out = fusedOutputInfo(spec);
  const label = `fused ${[...new Set(spec.body.flatMap((e) => (e.kind === 'op' ? [e.op] : [])))].join('+')}${reduce ? ` | ${reduce.op}` : ''}`;
  const launch = (k: WgslKernel, xs: readonly Tensor[], result: ValueInfo): Tensor => {
    const storage = backend.runGenerated(k.wgsl, bound.map((j) => xs[j]!.storage), { dtype: result.dtype, size: k.outputSize }, k.workgroups, label, k.params);
    return TensorClass.fromStorage(storage, result.shape, result.dtype);
  };
  if (reduce !== undefined) {
    const withReduce: KernelSpec = { ...kspec, outDtype: out.dtype, reduce: { op: reduce.op, axes: [...reduce.axes] } };
    if (canEmitWgsl(withReduce)) {
      const k = generatedKernel(withReduce, bindings);
      return (xs) => launch(k, xs, out);
    }
  }
  if (!canEmitWgsl(kspec)) return null;
  const k = generatedKernel(kspec, bindings);
  if (reduce === undefined) return (xs) => launch(k, xs, out);
  // The body's values once, then the backend's reduction of them: what the unfused graph computes,
  // with one temporary instead of one per body op.
  const body: ValueInfo = { shape: [...spec.shape], dtype: bodyDtype };
  return (xs) => {
    const tmp = launch(k, xs, body);
    const result = bind(reduce.op, [tmp], { axes: [...reduce.axes], keepdim: reduce.keepdim });
    tmp.dispose();
    return result;
  };
}
