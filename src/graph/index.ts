// The graph layer's public surface: the IR, tracing, the interpreter, jit, control flow, state.
export { Graph, type GraphNode, type GraphValue, type GraphWrite, type GraphGuard, type ValueId, type ValueKind } from './graph.js';
export { registerGraphOp, opDef, isPrimitive, isElementwisePrimitive, isImpureNode, graphDrawsRandom, type GraphOpDef } from './graph-ops.js';
export { validateGraph } from './validate.js';
export { interpret, GuardFailure, setNodeTimer, type InterpretOptions, type NodeTimer } from './interpret.js';
export { trace, isTracing, type TraceOptions, type TraceResult } from './trace.js';
export { jit, setGraphCompiler, type JitOptions, type JitStats, type JitFunction, type CompiledGraph, type GraphCompiler } from './jit.js';
export { nextPowerOfTwo, type DynamicSpec } from './dynamic.js';
export { cond, whileLoop, type WhileOptions } from './control-flow.js';
export { assign } from './state.js';
// Optimizer steps traced with ops while a trace is active (side effect: installs the step() hook).
import './traced-optimizers.js';
