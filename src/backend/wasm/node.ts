// Node-specific set-up of the wasm backend: worker threads (worker_threads) for its kernels.
import { wasmBackend, type WasmBackend } from './backend.js';
import { defaultThreadCount, nodeWorkerSpawner } from './node-workers.js';

/**
 * Gives the wasm backend `threads` threads (default: TESSERA_THREADS, else the CPU count),
 * the calling thread included. Returns the thread count in use.
 */
export function enableWasmThreads(threads: number = defaultThreadCount(), backend: WasmBackend = wasmBackend): number {
  backend.setThreads(threads, threads > 1 ? nodeWorkerSpawner : undefined);
  return backend.pool.threads;
}
