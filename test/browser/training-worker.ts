// The dedicated Worker of the browser test's page: here tessera may block in Atomics.wait, so it
// gets two threads over nested Web Workers (enableWasmThreadsInBrowser), proves that a worker
// takes part in a job, and trains the same MLP as the page did on one thread. First it asks for
// threads with a worker script that does not exist, to see that error reach the caller.
import * as t from '../../src/index.js';
import { handshakeModule } from '../helpers/handshake-module.js';
import { trainSmallMlp } from './workload.js';

export type WorkerReport =
  | {
    ok: true; threadsBefore: number; threads: number; poolThreads: number; handshakeJobs: number; losses: number[];
    /** What enableWasmThreadsInBrowser said for a worker script that does not exist, and the threads after it. */
    missingScript: { error: string; threadsAfter: number };
  }
  | { ok: false; error: string };

/** Runs the handshake job (test/helpers/handshake-module.ts: finishes only if a Web Worker runs a unit) `jobs` times; returns how many ended with the worker's flag set. */
function handshakeJobs(jobs: number): number {
  const backend = t.wasmBackend;
  const module = backend.pool.register(handshakeModule(backend.heap.maxPages));
  const flag = backend.heap.alloc(64);
  let done = 0;
  try {
    for (let job = 0; job < jobs; job++) {
      backend.heap.i32[flag / 4] = 0;
      backend.pool.run(module, flag, 2);
      if (backend.heap.i32[flag / 4] === 1) done++;
    }
  } finally {
    backend.heap.free(flag);
  }
  return done;
}

async function run(): Promise<WorkerReport> {
  const threadsBefore = t.wasmBackend.pool.threads;
  let missingError = 'no error';
  try {
    await t.enableWasmThreadsInBrowser(2, { workerUrl: new URL('./no-such-worker.js', import.meta.url) });
  } catch (error) {
    missingError = String(error);
  }
  const missingScript = { error: missingError, threadsAfter: t.wasmBackend.pool.threads };
  const threads = await t.enableWasmThreadsInBrowser(2);
  const handshakes = handshakeJobs(5);
  const losses = trainSmallMlp();
  const poolThreads = t.wasmBackend.pool.threads;
  t.wasmBackend.stopThreads();
  return { ok: true, threadsBefore, threads, poolThreads, handshakeJobs: handshakes, losses, missingScript };
}

const scope = globalThis as unknown as { postMessage(message: WorkerReport): void };
run().then(
  (report) => scope.postMessage(report),
  (error: unknown) => scope.postMessage({ ok: false, error: error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error) }),
);
