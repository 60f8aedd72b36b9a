// Browser adapter for the thread pool: starts Web Workers running the shared worker loop
// (web-worker-entry.ts), the counterpart of node-workers.ts. Uses only the web platform's
// globals (Worker, SharedArrayBuffer), looked up when called, so this module also loads in Node.
//
// Two browser rules shape it. Workers see the wasm heap only through a SharedArrayBuffer, which a
// page gets only when cross-origin isolated (served with Cross-Origin-Opener-Policy: same-origin
// and Cross-Origin-Embedder-Policy: require-corp). And the thread that runs tessera blocks in
// Atomics.wait while the workers finish a job, which a browser refuses on a page's main thread:
// so a page runs a multithreaded tessera inside a dedicated Worker of its own, and the pool's
// workers are nested workers started from there. A new worker starts only when the thread that
// created it returns to its event loop, hence the asynchronous enableWasmThreadsInBrowser.

import { wasmBackend, type WasmBackend } from './backend.js';
import type { WorkerSpawner } from './threads.js';
import { recordWorkerError } from './worker-loop.js';

export interface WebWorkerSpawnerOptions {
  /**
   * The worker script: web-worker-entry.js as your bundler emits it. Default: the URL
   * `new URL('./web-worker-entry.js', import.meta.url)`, which unbundled ES modules and bundlers
   * that document that pattern (webpack 5, Vite, Parcel) resolve by themselves; with esbuild, add
   * `src/backend/wasm/web-worker-entry.ts` (or `dist/backend/wasm/web-worker-entry.js`) as an
   * entry point written next to the chunk that holds this module, or pass its URL here.
   */
  workerUrl?: string | URL;
}

export interface EnableWasmThreadsInBrowserOptions extends WebWorkerSpawnerOptions {
  /** The backend to give threads to (default: the registered 'wasm' backend). */
  backend?: WasmBackend;
  /** How long to wait for every worker to start before giving up (default 15 s). */
  timeoutMs?: number;
}

/** A WorkerSpawner over module Web Workers; `failures` lists the workers that failed to load or died. */
export interface WebWorkerSpawner extends WorkerSpawner {
  readonly failures: readonly string[];
}

/** A spawner that starts each pool worker as a module Web Worker running web-worker-entry. */
export function webWorkerSpawner(options: WebWorkerSpawnerOptions = {}): WebWorkerSpawner {
  const failures: string[] = [];
  return {
    failures,
    spawn(init) {
      if (typeof Worker !== 'function') {
        throw new Error('webWorkerSpawner: this environment has no Web Workers (Worker is undefined); use threads: 1');
      }
      // Written out in full, with static options, so that bundlers recognise the pattern
      // `new Worker(new URL('…', import.meta.url), { type: 'module' })` (Vite insists on both).
      const worker = options.workerUrl === undefined
        ? new Worker(new URL('./web-worker-entry.js', import.meta.url), { type: 'module' })
        : new Worker(options.workerUrl, { type: 'module', name: `tessera-wasm-${init.thread}` });
      const where = options.workerUrl === undefined ? `./web-worker-entry.js relative to ${import.meta.url}` : String(options.workerUrl);
      const fail = (text: string): void => {
        failures.push(text);
        // The pool reads this on its next job and turns it into an error there.
        recordWorkerError(init.control, text);
      };
      worker.addEventListener('error', (event: Event) => {
        event.preventDefault();
        const detail = event instanceof ErrorEvent && event.message !== '' ? event.message : 'its script could not be loaded or failed at start';
        fail(`web worker ${init.thread} (${where}) failed: ${detail}`);
      });
      worker.addEventListener('messageerror', () => {
        fail(`web worker ${init.thread} (${where}) could not receive the shared memory (is the page cross-origin isolated?)`);
      });
      worker.postMessage(init);
      return { terminate: () => worker.terminate() };
    },
  };
}

/**
 * Gives the wasm backend `threads` threads (the calling one included) over Web Workers and
 * resolves, with the thread count in use, once every worker runs. Call it inside a dedicated
 * Worker of a cross-origin-isolated page (see the top of this file); `threads: 1` stops them.
 */
export async function enableWasmThreadsInBrowser(threads: number, options: EnableWasmThreadsInBrowserOptions = {}): Promise<number> {
  const backend = options.backend ?? wasmBackend;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`enableWasmThreadsInBrowser: threads = ${threads} must be a positive integer (1 = no worker threads)`);
  }
  if (threads === 1) {
    backend.setThreads(1);
    return 1;
  }
  const scope = globalThis as { document?: unknown; crossOriginIsolated?: boolean };
  if (scope.document !== undefined) {
    throw new Error(`enableWasmThreadsInBrowser(${threads}): called on a page's main thread, where Atomics.wait (which the `
      + 'pool needs) is not allowed; run tessera inside a dedicated Worker and call it there, or use 1 thread here');
  }
  if (typeof Worker !== 'function') {
    throw new Error(`enableWasmThreadsInBrowser(${threads}): this environment has no Web Workers (Worker is undefined); `
      + 'in Node use enableWasmThreads, elsewhere 1 thread');
  }
  if (typeof SharedArrayBuffer !== 'function' || !backend.heap.shared) {
    throw new Error(`enableWasmThreadsInBrowser(${threads}): no shared memory (crossOriginIsolated = ${String(scope.crossOriginIsolated)}); `
      + 'serve the page with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp');
  }
  const spawner = webWorkerSpawner(options);
  backend.setThreads(threads, spawner);
  const pool = backend.pool;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  try {
    // waitUntilReady(0) starts the workers and counts them without blocking; between checks this
    // thread returns to its event loop, which is what lets the browser start them.
    for (let ready = pool.waitUntilReady(0); ready < threads - 1; ready = pool.waitUntilReady(0)) {
      if (spawner.failures.length > 0 || Date.now() > deadline) {
        const why = spawner.failures.length > 0 ? spawner.failures.join('; ') : `only ${ready} of ${threads - 1} workers started within ${timeoutMs} ms`;
        throw new Error(`enableWasmThreadsInBrowser(${threads}): ${why}. Check that the worker script loads (workerUrl) `
          + 'and that it is served with the same cross-origin isolation headers as the page; the backend is back on 1 thread');
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } catch (error) {
    // Never leave a pool that counts threads it does not have.
    backend.setThreads(1);
    throw error;
  }
  return pool.threads;
}
