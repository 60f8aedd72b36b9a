// Entry point of a Web Worker of the wasm backend's pool in a browser (see web-workers.ts). The
// pool's init (shared memory, control block, thread index) arrives as the first message; the
// worker then stays in the shared worker loop (worker-loop.ts) until the pool shuts down, so it
// never returns to its event loop and handles no further messages.
import { recordWorkerError, runWorkerLoop, type WorkerInit } from './worker-loop.js';

interface WorkerScope {
  onmessage: ((event: MessageEvent<WorkerInit>) => void) | null;
}

const scope = globalThis as unknown as WorkerScope;
scope.onmessage = (event) => {
  scope.onmessage = null;
  const init = event.data;
  try {
    runWorkerLoop(init);
  } catch (error) {
    // E.g. Atomics.wait refused (this script was loaded on a page's main thread by mistake).
    recordWorkerError(init.control, `web worker ${init.thread} stopped: ${String(error)}`);
  }
};
