// Starts the webgpu backend's device thread in Node (worker_threads running node-device-entry).
import { TesseraError } from '../../core/errors.js';
import { DeviceClient, type DeviceClientOptions } from './device-client.js';
import type { DeviceCommand, DeviceInit } from './protocol.js';
import { recordDeviceError } from './device-server.js';

export interface NodeDeviceOptions extends DeviceClientOptions {
  /** Options for Dawn's `create()`, e.g. ['backend=vulkan'] (default none). */
  dawnOptions?: string[];
  powerPreference?: 'low-power' | 'high-performance';
}

const runningFromSource = import.meta.url.endsWith('.ts');
const entry = new URL(`./node-device-entry${runningFromSource ? '.ts' : '.js'}`, import.meta.url);

/** Chromium's SwiftShader (a CPU Vulkan driver), used when no other Vulkan driver gives an adapter. */
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

function nodeProcess(): NodeJS.Process {
  const proc = (globalThis as { process?: NodeJS.Process }).process;
  if (proc?.versions?.node === undefined || typeof proc.getBuiltinModule !== 'function') {
    throw new TesseraError('webgpu: starting the device from this thread needs Node ≥ 20.16 (worker_threads); in a browser the backend is not available yet.');
  }
  return proc;
}

function startThread(init: DeviceInit): { post(c: readonly DeviceCommand[], t?: ArrayBuffer[]): void; terminate(): void } {
  const proc = nodeProcess();
  const { Worker } = proc.getBuiltinModule('node:worker_threads');
  // A worker inherits the process's execArgv; --input-type (node --input-type=module -e ...) is
  // refused for a file entry, and the thread would die before it could report anything.
  const execArgv = proc.execArgv.filter((a) => !a.startsWith('--input-type'));
  let worker;
  if (!runningFromSource) {
    worker = new Worker(entry, { workerData: init, execArgv });
  } else {
    // Under tsx (tests, benches) a worker does not inherit the loader: register it inside first.
    const tsxApi = import.meta.resolve('tsx/esm/api');
    worker = new Worker(`
      const { workerData } = require('node:worker_threads');
      import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); })
        .catch((error) => {
          const ctl = new Int32Array(workerData.control);
          if (Atomics.compareExchange(ctl, 1, 0, 1) === 0) {
            const text = new TextEncoder().encode('webgpu device thread failed to boot: ' + error).slice(0, 4096);
            new Uint8Array(workerData.control, 16, 4096).set(text);
            Atomics.store(ctl, 2, text.length);
          }
          Atomics.notify(ctl, 0);
        });`, { eval: true, workerData: init, execArgv });
  }
  // A thread that dies (its module failed to load, say) is reported by the caller's next wait.
  worker.on('error', (e: unknown) => recordDeviceError(init.control, `webgpu device thread died: ${e instanceof Error ? e.stack ?? e.message : String(e)}`));
  // The device thread must not keep the process alive once the program is done.
  worker.unref();
  return { post: (c, t) => worker.postMessage(c, t ?? []), terminate: () => void worker.terminate() };
}

/**
 * Starts a device thread and waits until it has a GPUDevice. Without VK_ICD_FILENAMES/VK_DRIVER_FILES
 * set and without an adapter from the system's drivers, tries chromium's SwiftShader once more.
 */
export function startNodeDevice(options: NodeDeviceOptions = {}): DeviceClient {
  const proc = nodeProcess();
  const start = (): DeviceClient => {
    const control = DeviceClient.newControl();
    const init: DeviceInit = { control, dawnOptions: options.dawnOptions ?? [], powerPreference: options.powerPreference };
    return new DeviceClient(control, startThread(init), options);
  };
  if (proc.env.XDG_RUNTIME_DIR === undefined) {
    // The Vulkan loader prints an error per instance without it; an empty private folder silences it.
    const { mkdtempSync } = proc.getBuiltinModule('node:fs');
    const { tmpdir } = proc.getBuiltinModule('node:os');
    proc.env.XDG_RUNTIME_DIR = mkdtempSync(`${tmpdir()}/tessera-xdg-`);
  }
  const started = (client: DeviceClient): DeviceClient => {
    proc.on('exit', () => client.drainAndClose(10_000));
    return client;
  };
  try {
    return started(start());
  } catch (e) {
    const { existsSync } = proc.getBuiltinModule('node:fs');
    const driverChosen = proc.env.VK_ICD_FILENAMES !== undefined || proc.env.VK_DRIVER_FILES !== undefined;
    if (driverChosen || !existsSync(SWIFTSHADER_ICD) || !String(e).includes('no WebGPU adapter')) throw e;
    proc.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    return started(start());
  }
}
