// The compiler's public surface: passes, the pass manager, code generation, memory planning, the
// planned executor and cost analysis. Importing it installs the compiler that jit uses.
import type { Graph, GraphNode } from '../graph/graph.js';
import { prepareInterpret } from '../graph/interpret.js';
import { setGraphCompiler, type CompiledGraph, type GraphCompiler } from '../graph/jit.js';
import { nextTensorId, type Tensor } from '../core/tensor.js';
import { keep } from '../core/memory.js';
import { cpuBackend } from '../backend/cpu/backend.js';
import './fused-ops.js';
import '../graph/control-flow.js';
import { PlannedExecutor, executorUnsupportedReason } from './executor.js';
import { runPipeline, defaultPasses } from './pipeline.js';
import type { Pass } from './passes/pass.js';
import { WasmGraphKernels } from './wasm-kernels.js';
import { WebGPUGraphKernels } from './webgpu-kernels.js';
import { heapWriter } from './wasm-writes.js';

export { runPipeline, defaultPasses, portablePasses, inferencePasses, formatReport, formatReports, type PassReport, type PipelineResult } from './pipeline.js';
export type { Pass, PassResult } from './passes/pass.js';
export { dce, eliminateDeadCode } from './passes/dce.js';
export { cse, eliminateCommonSubexpressions } from './passes/cse.js';
export { constantFold, foldConstants } from './passes/constant-fold.js';
export { simplify, simplifyAlgebra } from './passes/simplify.js';
export { fuseElementwise, fuseElementwiseOps } from './passes/fuse-elementwise.js';
export { matmulEpilogue, fuseMatmulEpilogues } from './passes/matmul-epilogue.js';
export { mergeMatmuls, mergeParallelMatmuls } from './passes/merge-matmuls.js';
export { layout, foldTransposes } from './passes/layout.js';
export { foldAffine, foldAffineIntoMatmul, freezeParameters, freezeParameterValues } from './passes/fold-affine.js';
export * as substitutions from './substitutions/index.js';
export { substitutionPass, substitutionSearch, type SearchOptions, type SearchResult } from './substitutions/search.js';
export { memoryPlan, type MemoryPlan, type PlannedBuffer, type MemoryPlanOptions } from './memory-plan.js';
export { PlannedExecutor, executorUnsupportedReason, type ExecutorStats } from './executor.js';
export { toOpGraph, type ToOpGraphOptions } from './to-op-graph.js';
export { analyze, type Hardware, type GraphAnalysis, type NodeAnalysis } from './analyze.js';
export { emitJs, compileJsKernel, kernelCacheStats } from './codegen/js.js';
export { emitMatmulJs } from './codegen/matmul-js.js';
export { emitWasmKernel, canEmitWasm, type WasmEmitOptions } from './codegen/wasm.js';
export { WasmGraphKernels, wasmKernelCacheStats, type WasmKernelStats } from './wasm-kernels.js';
export { emitWgslKernel, canEmitWgsl, type WgslKernel, type WgslEmitOptions } from './codegen/wgsl.js';
export { WebGPUGraphKernels, webgpuKernelCacheStats, type WebGPUKernelStats } from './webgpu-kernels.js';
export type { KernelSpec, ScalarExpr, KernelInputLayout } from './codegen/kernel-ir.js';
export type { FusedSpec, MatmulEpilogueAttrs } from './fused-ops.js';

export interface CompileOptions {
  passes?: readonly Pass[];
  reuseOutputs?: boolean;
  log?: (line: string) => void;
  /** Build the planned cpu executor (default true); false always interprets the optimized graph. */
  planned?: boolean;
  /**
   * Interpreted replays run fused nodes over wasm tensors as wasm kernels (wasm-kernels.ts) and
   * apply float32 parameter writes as copies inside the wasm heap (wasm-writes.ts); default true.
   * false runs fused nodes through `bind` (decomposed into primitives) and writes through JS arrays.
   */
  wasmKernels?: boolean;
  /**
   * Interpreted replays run fused nodes over webgpu tensors as generated WGSL, one dispatch each
   * (webgpu-kernels.ts); default true. false runs them through `bind`, a dispatch per body op.
   */
  webgpuKernels?: boolean;
}

type Execute = (node: GraphNode, inputs: readonly Tensor[]) => Tensor[] | undefined;

/** The first runner's answer, else the second's (either may be absent). */
function firstOf(a: Execute | undefined, b: Execute | undefined): Execute | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return (node, inputs) => a(node, inputs) ?? b(node, inputs);
}

function onCpu(t: Tensor): boolean {
  return t.storage.backend === cpuBackend;
}

/** A graph optimized by the pipeline and run by the planned executor (or the interpreter when it cannot be planned). */
export function compile(g: Graph, opts: CompileOptions = {}): CompiledGraph & {
  executor: PlannedExecutor | undefined; wasmKernels: WasmGraphKernels | undefined; webgpuKernels: WebGPUGraphKernels | undefined;
} {
  const firstNewTensor = nextTensorId();
  const { graph } = runPipeline(g, opts.passes ?? defaultPasses(), opts.log ? { log: opts.log } : {});
  // Constants the passes made (folded values) belong to the compiled graph: keep them out of the
  // scopes open now (a jitted call inside the caller's scope compiles there), which would free them
  // when the caller's scope ends, before the next replay reads them.
  for (const t of graph.constants.values()) if (t.id >= firstNewTensor) keep(t);
  const wasmKernels = (opts.wasmKernels ?? true) ? new WasmGraphKernels(graph) : undefined;
  const webgpuKernels = (opts.webgpuKernels ?? true) ? new WebGPUGraphKernels() : undefined;
  // webgpu's runner answers only for nodes over webgpu tensors; the wasm runner takes the rest.
  const execute = firstOf(webgpuKernels?.execute, wasmKernels?.execute);
  if ((opts.planned ?? true) && executorUnsupportedReason(graph) === undefined) {
    const executor = new PlannedExecutor(graph, { reuseOutputs: opts.reuseOutputs ?? false });
    // The executor plans typed arrays of the cpu backend; inputs on another backend (wasm, the
    // default) replay through the interpreter, which runs that backend's kernels.
    let interpretGraph: ReturnType<typeof prepareInterpret> | undefined; // made at the first replay off the cpu
    return {
      graph, executor, wasmKernels, webgpuKernels,
      run: (inputs: readonly Tensor[]) => (inputs.every(onCpu) ? executor.run(inputs) : (interpretGraph ??= prepareInterpret(graph))(inputs, execute ? { execute } : {})),
    };
  }
  // Interpreted replays free each intermediate after its last use, as the planner's arena would
  // reuse it (eager code frees them only when the garbage collector runs).
  const interpretGraph = prepareInterpret(graph);
  return {
    graph, executor: undefined, wasmKernels, webgpuKernels,
    run: (inputs: readonly Tensor[]) => interpretGraph(inputs, {
      disposeDead: true,
      ...(execute ? { execute } : {}),
      ...(wasmKernels ? { writer: heapWriter(graph, inputs, wasmKernels.stats) } : {}),
    }),
  };
}

// Graphs over cpu tensors get the full pipeline and the planned executor. Graphs over the wasm
// backend (the default) get the full pipeline too and run through the interpreter on the wasm
// backend's kernels, with the fused nodes as generated wasm kernels (wasm-kernels.ts); graphs over
// webgpu the same, with the fused nodes as generated WGSL (webgpu-kernels.ts).
export const jitGraphCompiler: GraphCompiler = {
  compile: (g, o) => compile(g, { reuseOutputs: o.reuseOutputs, ...(o.onCpu ? {} : { planned: false }) }),
};
setGraphCompiler(jitGraphCompiler);
