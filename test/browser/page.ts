// The page's script in the browser test (browser.test.ts bundles it with esbuild, as a user's
// bundler would bundle an app that imports tessera). On the page's main thread it checks the
// default backend, trains the small MLP on one thread and computes a few ops; then it starts a
// dedicated Worker (training-worker.ts) that trains the same MLP on two threads. Everything is
// sent back to the test's server in one POST to /results.
import * as t from '../../src/index.js';
import { opResults, trainSmallMlp } from './workload.js';
import type { WorkerReport } from './training-worker.js';

export interface PageReport {
  crossOriginIsolated: boolean;
  userAgent: string;
  defaultBackend: string;
  simd: boolean;
  heapShared: boolean;
  mainThreadPoolThreads: number;
  mainLosses: number[];
  /** Calls of the float32 matmul served by the generated SGEMM (not the cpu reference). */
  wasmMatmulCalls: number;
  ops: Record<string, number[]>;
  /** The error enableWasmThreadsInBrowser(2) gives on the main thread. */
  mainThreadRefusal: string;
  worker: WorkerReport;
}

async function post(body: unknown): Promise<void> {
  await fetch('/results', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error);
}

function runTrainingWorker(): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./training-worker.js', import.meta.url), { type: 'module', name: 'training' });
    worker.addEventListener('message', (event: MessageEvent<WorkerReport>) => {
      worker.terminate();
      resolve(event.data);
    });
    worker.addEventListener('error', (event) => {
      event.preventDefault();
      worker.terminate();
      reject(new Error(`training worker failed: ${event.message || 'its script could not be loaded'}`));
    });
  });
}

async function main(): Promise<PageReport> {
  const mainLosses = trainSmallMlp();
  const ops = opResults();
  let mainThreadRefusal = 'no error';
  try {
    await t.enableWasmThreadsInBrowser(2);
  } catch (error) {
    mainThreadRefusal = String(error);
  }
  return {
    crossOriginIsolated: globalThis.crossOriginIsolated,
    userAgent: navigator.userAgent,
    defaultBackend: t.currentBackendName(),
    simd: t.wasmSimdSupported(),
    heapShared: t.wasmBackend.heap.shared,
    mainThreadPoolThreads: t.wasmBackend.pool.threads,
    mainLosses,
    wasmMatmulCalls: t.wasmBackend.kernelCalls.get('matmul')?.wasm ?? 0,
    ops,
    mainThreadRefusal,
    worker: await runTrainingWorker(),
  };
}

window.addEventListener('error', (event) => void post({ error: `uncaught: ${event.message} at ${event.filename}:${event.lineno}` }));
window.addEventListener('unhandledrejection', (event) => void post({ error: `unhandled rejection: ${errorText(event.reason)}` }));
main().then((report) => post(report), (error: unknown) => post({ error: errorText(error) }));
