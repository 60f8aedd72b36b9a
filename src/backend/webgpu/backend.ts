// The webgpu backend in Node (the package's `tessera/webgpu` entry): importing this module starts
// the device thread (the `webgpu` package, Dawn, on a worker thread; node-device.ts) and registers
// the backend as 'webgpu'. It throws, naming what is missing, when no GPU adapter is found.
// In a browser, use `tessera/webgpu/browser` (browser.ts) from a Web Worker instead.
import { registerBackend } from '../backend.js';
import { nodeGarbageCollector } from '../wasm/node-gc.js';
import { startNodeDevice, type NodeDeviceOptions } from './node-device.js';
import { WebGPUBackend } from './webgpu-backend.js';

export { WebGPUBackend, type GpuBuffer } from './webgpu-backend.js';

/** Starts a device and returns a backend on it (not registered; see the module's registration below). */
export function createWebGPUBackend(options: NodeDeviceOptions & { name?: string } = {}): WebGPUBackend {
  return new WebGPUBackend(startNodeDevice(options), options.name, nodeGarbageCollector());
}

/** The registered 'webgpu' backend. */
export const webgpuBackend: WebGPUBackend = createWebGPUBackend();
registerBackend(webgpuBackend);
