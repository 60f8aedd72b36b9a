// The webgpu backend in a browser (the package's `tessera/webgpu/browser` entry). As in Node, the
// GPUDevice lives on a thread of its own (web-device-entry.ts, a module Web Worker) and the thread
// that runs tessera blocks in Atomics.wait for the values it reads back (protocol.ts says why). A
// page's main thread may not block, so tessera runs in a dedicated Worker of a cross-origin-
// isolated page (SharedArrayBuffer), the same place that wasm threads need (wasm/web-workers.ts).
//
//   // inside a dedicated Worker:
//   import * as t from 'tessera';
//   import { enableWebGPUInBrowser } from 'tessera/webgpu/browser';
//   await enableWebGPUInBrowser();   // starts the device, registers 'webgpu'
//   t.setBackend('webgpu');
import { registerBackend } from '../backend.js';
import { TesseraError } from '../../core/errors.js';
import { DeviceClient, type DeviceClientOptions } from './device-client.js';
import { recordDeviceError } from './device-server.js';
import { Ctl, type DeviceCommand, type DeviceInit } from './protocol.js';
import { WebGPUBackend } from './webgpu-backend.js';

export { WebGPUBackend } from './webgpu-backend.js';

export interface EnableWebGPUInBrowserOptions extends DeviceClientOptions {
  /**
   * The device worker's script (default `./web-device-entry.js` next to this module; a bundler must
   * emit it, e.g. as an entry point of its own, as for the wasm pool's web-worker-entry.js).
   */
  workerUrl?: string | URL;
  /** Registry name (default 'webgpu'). */
  name?: string;
  /** Adapter preference: 'high-performance' asks for a discrete GPU. */
  powerPreference?: 'low-power' | 'high-performance';
  /** How long the device may take to start (default 30 s). */
  startTimeoutMs?: number;
}

const refuse = (why: string): TesseraError => new TesseraError(`enableWebGPUInBrowser: ${why}`);

/**
 * Starts a WebGPU device on a Web Worker and registers a backend on it (as 'webgpu' unless named
 * otherwise); resolves once the device is ready. Call it inside a dedicated Worker of a
 * cross-origin-isolated page; it rejects, saying what is missing, elsewhere or without a GPU adapter.
 */
export async function enableWebGPUInBrowser(options: EnableWebGPUInBrowserOptions = {}): Promise<WebGPUBackend> {
  const scope = globalThis as { document?: unknown; crossOriginIsolated?: boolean };
  if (scope.document !== undefined) {
    throw refuse('called on a page\'s main thread, where Atomics.wait (which every read from the GPU needs) is not allowed; ' +
      'run tessera inside a dedicated Worker and call it there');
  }
  if (typeof Worker !== 'function') {
    throw refuse('this environment has no Web Workers (Worker is undefined); in Node, import \'tessera/webgpu\' instead');
  }
  if (typeof SharedArrayBuffer !== 'function' || scope.crossOriginIsolated === false) {
    throw refuse(`no shared memory (crossOriginIsolated = ${String(scope.crossOriginIsolated)}); serve the page with ` +
      'Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp');
  }
  const control = DeviceClient.newControl();
  // Written out in full so that bundlers recognise `new Worker(new URL('…', import.meta.url), { type: 'module' })`.
  const worker = options.workerUrl === undefined
    ? new Worker(new URL('./web-device-entry.js', import.meta.url), { type: 'module', name: 'tessera-webgpu-device' })
    : new Worker(options.workerUrl, { type: 'module', name: 'tessera-webgpu-device' });
  const where = options.workerUrl === undefined ? `./web-device-entry.js relative to ${import.meta.url}` : String(options.workerUrl);
  worker.addEventListener('error', (event: Event) => {
    event.preventDefault();
    const detail = event instanceof ErrorEvent && event.message !== '' ? event.message : 'its script could not be loaded or failed at start';
    recordDeviceError(control, `the webgpu device worker (${where}) failed: ${detail}`);
  });
  worker.addEventListener('messageerror', () => recordDeviceError(control, `the webgpu device worker (${where}) could not receive the shared control block`));
  const init: DeviceInit = { control, dawnOptions: [], powerPreference: options.powerPreference };
  worker.postMessage(init);

  // Wait without blocking: the browser starts the worker only while this thread runs its event loop.
  const ctl = new Int32Array(control);
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  while (Atomics.load(ctl, Ctl.answered) < 1 && Atomics.load(ctl, Ctl.failed) === 0) {
    if (Date.now() > deadline) {
      worker.terminate();
      throw refuse(`the device worker (${where}) did not start a device within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  let client: DeviceClient;
  try {
    // Reads the device's answer, or throws the error the worker recorded.
    client = new DeviceClient(control, {
      post: (commands: readonly DeviceCommand[], transfer?: ArrayBuffer[]) => worker.postMessage(commands, transfer ?? []),
      terminate: () => worker.terminate(),
    }, options);
  } catch (e) {
    worker.terminate();
    throw e;
  }
  // No garbage-collector hook in a browser: dispose() and scopes return GPU memory promptly.
  const backend = new WebGPUBackend(client, options.name ?? 'webgpu');
  registerBackend(backend);
  return backend;
}
