// Node-specific control of the wasm backend's threads (the registered backend already starts with
// TESSERA_THREADS or one thread per CPU; this changes the count at run time).
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
