// The wasm backend's public surface (platform-neutral). Node's worker threads: ./node.ts.
export { WasmBackend, createWasmBackend, wasmBackend, type WasmBackendOptions, type WasmBuffer } from './backend.js';
export { WasmHeap, sharedMemoryAvailable, type WasmHeapOptions, type WasmHeapStats } from './memory.js';
export { ThreadPool, type ThreadPoolOptions, type WorkerSpawner, type WorkerHandle, type KernelModule } from './threads.js';
export { runWorkerLoop, type WorkerInit } from './worker-loop.js';
// Browsers' Web Workers (platform-neutral to load; the worker script is ./web-worker-entry.ts).
export {
  enableWasmThreadsInBrowser, webWorkerSpawner,
  type EnableWasmThreadsInBrowserOptions, type WebWorkerSpawner, type WebWorkerSpawnerOptions,
} from './web-workers.js';
export { WasmMatmul, rowMajorOperand, type MatmulArgs, type MatmulOperand } from './matmul.js';
export {
  DEFAULT_MATMUL_CONFIG, validateMatmulConfig, matmulConfigKey, type MatmulConfig,
} from './matmul-config.js';
export { buildMatmulModule } from './matmul-kernel.js';
export { ModuleBuilder, FunctionBuilder, ValType, Op, MemOp, MiscOp, SimdOp, SimdMemOp, SimdLaneOp } from './encoder.js';
