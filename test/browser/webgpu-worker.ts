// The dedicated Worker of the browser WebGPU test's page: starts the webgpu backend on the
// browser's navigator.gpu (enableWebGPUInBrowser), first with a device script that does not exist
// (to see that error reach the caller), then for real, and trains the small MLP and computes the
// ops of workload.ts on it.
import * as t from '../../src/index.js';
import { enableWebGPUInBrowser } from '../../src/backend/webgpu/browser.js';
import { opResults, trainSmallMlp } from './workload.js';

export type WebgpuWorkerReport =
  | {
    ok: true; adapter: string; backend: string; tensorBackend: string; losses: number[]; ops: Record<string, number[]>;
    /** Kernel launches the device ran for the training (so it did not all fall back to the cpu). */
    gpuRuns: number;
    missingScript: string;
  }
  | { ok: false; error: string };

async function run(): Promise<WebgpuWorkerReport> {
  let missingScript = 'no error';
  try {
    await enableWebGPUInBrowser({ workerUrl: new URL('./no-such-device.js', import.meta.url), name: 'webgpu-missing', startTimeoutMs: 10_000 });
  } catch (error) {
    missingScript = String(error);
  }
  const backend = await enableWebGPUInBrowser();
  t.setBackend('webgpu');
  const runsBefore = backend.device.launches;
  const losses = trainSmallMlp();
  const gpuRuns = backend.device.launches - runsBefore;
  const ops = opResults();
  const info = backend.device.info;
  return {
    ok: true, adapter: `${info.vendor} ${info.architecture}`.trim(), backend: t.currentBackendName(), tensorBackend: t.zeros([1]).backend,
    losses, ops, gpuRuns, missingScript,
  };
}

const scope = globalThis as unknown as { postMessage(message: WebgpuWorkerReport): void };
run().then(
  (report) => scope.postMessage(report),
  (error: unknown) => scope.postMessage({ ok: false, error: error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error) }),
);
