// The page's script in the browser WebGPU test (webgpu-browser.test.ts): checks that the main
// thread is refused with a reason, then runs webgpu-worker.ts and sends its report to /results.
import { enableWebGPUInBrowser } from '../../src/backend/webgpu/browser.js';
import type { WebgpuWorkerReport } from './webgpu-worker.js';

export interface WebgpuPageReport {
  crossOriginIsolated: boolean;
  userAgent: string;
  mainThreadRefusal: string;
  worker: WebgpuWorkerReport;
}

async function post(body: unknown): Promise<void> {
  await fetch('/results', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

function runWorker(): Promise<WebgpuWorkerReport> {
  return new Promise((resolve) => {
    const worker = new Worker(new URL('./webgpu-worker.js', import.meta.url), { type: 'module', name: 'webgpu-training' });
    worker.addEventListener('message', (event: MessageEvent<WebgpuWorkerReport>) => resolve(event.data));
    worker.addEventListener('error', (event) => {
      event.preventDefault();
      resolve({ ok: false, error: `webgpu worker failed: ${event.message || 'its script could not be loaded'}` });
    });
  });
}

async function main(): Promise<WebgpuPageReport> {
  let mainThreadRefusal = 'no error';
  try {
    await enableWebGPUInBrowser();
  } catch (error) {
    mainThreadRefusal = String(error);
  }
  return { crossOriginIsolated: globalThis.crossOriginIsolated, userAgent: navigator.userAgent, mainThreadRefusal, worker: await runWorker() };
}

window.addEventListener('unhandledrejection', (event) => void post({ error: `unhandled rejection: ${String(event.reason)}` }));
main().then((report) => post(report), (error: unknown) => post({ error: String(error) }));
