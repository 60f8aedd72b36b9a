// Entry point of the webgpu backend's device thread in Node (see device-client.ts): loads the
// `webgpu` package (Google's Dawn built for Node) and serves the calling thread's commands.
import { parentPort, workerData } from 'node:worker_threads';
import { recordDeviceError, runDeviceServer } from './device-server.js';
import type { DeviceCommand, DeviceInit } from './protocol.js';

const init = workerData as DeviceInit;
process.on('uncaughtException', (e) => recordDeviceError(init.control, `webgpu device thread failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`));

/** The package's entry: `create(options)` gives a GPU object. */
interface DawnPackage { create(options: string[]): GPU }

// Kept reachable for the life of the thread: dawn.node frees its instance when the object `create()`
// returned is collected, even while a device from it is in use (research/spikes.md §A.2).
let keepAlive: GPU | undefined;
try {
  const dawn = (await import('webgpu')) as unknown as DawnPackage;
  keepAlive = dawn.create([...init.dawnOptions]);
  (globalThis as { __tesseraGpu?: GPU }).__tesseraGpu = keepAlive;
} catch (e) {
  recordDeviceError(init.control, `the 'webgpu' package (Dawn for Node) could not be loaded: ${String(e)}. Install it with npm install webgpu.`);
}
if (keepAlive !== undefined) {
  await runDeviceServer(init, keepAlive, {
    onCommands(handler) { parentPort!.on('message', (batch: DeviceCommand[]) => handler(batch)); },
  }).catch((e: unknown) => recordDeviceError(init.control, `webgpu device start failed: ${e instanceof Error ? e.message : String(e)}`));
}
