// tessera's public surface: `import * as t from 'tessera'`.
export const version = '0.1.0';
export { Tensor, type NestedArray } from './core/tensor.js';
export { type DType, DTYPES, promoteTypes, setDefaultFloatDType, defaultFloatDType, itemsize } from './core/dtype.js';
export { TesseraError } from './core/errors.js';
export { scope, memoryScope, keep, memoryStats, resetPeakMemory, type MemoryStats } from './core/memory.js';
export { Generator, manualSeed, defaultGenerator } from './core/random.js';
export { setBackend, getBackend, listBackends, currentBackendName, registerBackend, type Backend } from './backend/backend.js';
// What a backend's optional fused optimizer hook (Backend.optimizerUpdate) receives.
export { type OptimizerRule, type OptimizerUpdate } from './backend/backend.js';
// Registers 'wasm' next to 'cpu' and makes it the default where WebAssembly SIMD runs (TESSERA_BACKEND overrides).
export { defaultBackendName, wasmSimdSupported, BACKEND_ENV } from './backend/default.js';
export { wasmBackend, type WasmBackend } from './backend/wasm/backend.js';
export { enableWasmThreads } from './backend/wasm/node.js';
// The same in a browser, over Web Workers (inside a dedicated Worker of a cross-origin-isolated page).
export { enableWasmThreadsInBrowser, webWorkerSpawner, type EnableWasmThreadsInBrowserOptions } from './backend/wasm/web-workers.js';
export * from './ops/index.js';
export * from './autodiff/index.js';
export * as data from './data/index.js';
export * as io from './io/index.js';
export * as plan from './plan/index.js';
export * as viz from './viz/index.js';
export * as compiler from './compiler/index.js';
export { jit, trace, cond, whileLoop, assign, Graph, interpret, setNodeTimer, type NodeTimer, type JitOptions, type JitStats, type JitFunction } from './graph/index.js';
export * as dist from './dist/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export * as quant from './quant/index.js';
export * as onnx from './onnx/index.js';
