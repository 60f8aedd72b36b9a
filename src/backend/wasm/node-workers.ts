// Node adapter for the thread pool: starts worker_threads running the shared worker loop.
// Node's modules are looked up when first needed (process.getBuiltinModule) rather than imported,
// so this file also loads in a browser, where `nodeRuntime()` is simply undefined and a page
// supplies a WorkerSpawner over Web Workers instead.

import type { Worker } from 'node:worker_threads';
import type { WasmHeap } from './memory.js';
import { ThreadPool, type ThreadPoolOptions, type WorkerSpawner } from './threads.js';
import { Ctl, CTL_ERROR_BYTES, CTL_ERROR_OFFSET, recordWorkerError, type WorkerInit } from './worker-loop.js';

const ERRORS_SLOT = Ctl.errors;
const ERROR_LENGTH_SLOT = Ctl.errorLength;
const READY_SLOT = Ctl.ready;
const ERROR_OFFSET = CTL_ERROR_OFFSET;
const ERROR_BYTES = CTL_ERROR_BYTES;

/** Environment variable that overrides the default thread count. */
export const THREADS_ENV = 'TESSERA_THREADS';

interface NodeRuntime {
  readonly Worker: typeof Worker;
  readonly availableParallelism: () => number;
  readonly env: Record<string, string | undefined>;
}

/** Node's worker_threads and os, or undefined outside Node (or on a Node without getBuiltinModule, < 20.16). */
export function nodeRuntime(): NodeRuntime | undefined {
  const proc = (globalThis as { process?: NodeJS.Process }).process;
  if (proc?.versions?.node === undefined || typeof proc.getBuiltinModule !== 'function') return undefined;
  const threads = proc.getBuiltinModule('node:worker_threads');
  const os = proc.getBuiltinModule('node:os');
  return { Worker: threads.Worker, availableParallelism: os.availableParallelism, env: proc.env };
}

function requireNode(): NodeRuntime {
  const node = nodeRuntime();
  if (node === undefined) throw new Error('node-workers: worker_threads are only available in Node ≥ 20.16; pass threads: 1 or a WorkerSpawner');
  return node;
}

/** `TESSERA_THREADS` if set, else the number of CPUs this process may use. */
export function defaultThreadCount(): number {
  const node = requireNode();
  const fromEnv = node.env[THREADS_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`${THREADS_ENV}=${JSON.stringify(fromEnv)} must be a positive integer (1 = no worker threads)`);
    }
    return n;
  }
  return node.availableParallelism();
}

// Run the worker entry in the same flavour as this file: .js from dist/, or .ts from src/ under
// tsx (tests, benches). A worker does not inherit the `--import tsx` loader hooks in Node 20, so
// the .ts entry is reached through a small bootstrap that registers tsx inside the worker first.
const runningFromSource = import.meta.url.endsWith('.ts');
const workerEntry = new URL(`./node-worker-entry${runningFromSource ? '.ts' : '.js'}`, import.meta.url);

function startWorker(init: WorkerInit): Worker {
  const { Worker } = requireNode();
  if (!runningFromSource) return new Worker(workerEntry, { workerData: init });
  let tsxApi: string;
  try {
    tsxApi = import.meta.resolve('tsx/esm/api');
  } catch {
    throw new Error('wasm worker threads from TypeScript sources need the tsx package; build (npm run build) or install tsx');
  }
  // Eval'd worker code is CommonJS, or ES module code when the process runs with
  // --input-type=module (inherited): dynamic import() works in both, require only in the first.
  const bootstrap = `
    import('node:worker_threads').then(({ workerData }) => import(${JSON.stringify(tsxApi)})
      .then((api) => { api.register(); return import(${JSON.stringify(workerEntry.href)}); })
      .catch((error) => {
        const ctl = new Int32Array(workerData.control);
        // Same layout as recordWorkerError in worker-loop.ts (that module could not be loaded).
        if (Atomics.add(ctl, ${ERRORS_SLOT}, 1) === 0) {
          const text = new TextEncoder().encode('worker ' + workerData.thread + ' failed to boot: ' + error).slice(0, ${ERROR_BYTES});
          new Uint8Array(workerData.control, ${ERROR_OFFSET}, ${ERROR_BYTES}).set(text);
          Atomics.store(ctl, ${ERROR_LENGTH_SLOT}, text.length);
        }
        Atomics.notify(ctl, ${READY_SLOT});
      }));`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

export const nodeWorkerSpawner: WorkerSpawner = {
  spawn(init) {
    const worker = startWorker(init);
    // A worker blocked in Atomics.wait must not keep the process alive.
    worker.unref();
    worker.on('error', (error) => recordWorkerError(init.control, `worker thread ${init.thread} died: ${String(error)}`));
    return { terminate: () => void worker.terminate() };
  },
};

/** A pool with `threads` (default: defaultThreadCount()) threads over Node worker_threads. */
export function createNodeThreadPool(heap: WasmHeap, options: Partial<ThreadPoolOptions> = {}): ThreadPool {
  return new ThreadPool(heap, { spawner: nodeWorkerSpawner, ...options, threads: options.threads ?? defaultThreadCount() });
}
