// Entry point of the webgpu backend's device thread in a browser: a module Web Worker started by
// browser.ts. Its first message is the DeviceInit (the shared control block); every later one is a
// batch of commands, served by the same device-server.ts as in Node, on the browser's navigator.gpu.
import { recordDeviceError, runDeviceServer } from './device-server.js';
import type { DeviceCommand, DeviceInit } from './protocol.js';

interface WorkerScope {
  onmessage: ((event: MessageEvent) => void) | null;
  navigator: { gpu?: GPU };
  addEventListener(type: 'unhandledrejection', listener: (event: PromiseRejectionEvent) => void): void;
}
const scope = globalThis as unknown as WorkerScope;

scope.onmessage = (first: MessageEvent) => {
  const init = first.data as DeviceInit;
  // Batches can arrive before the device exists (the caller does not wait for it to post): keep
  // them, in order, until the server takes over.
  const early: DeviceCommand[][] = [];
  let handler: ((commands: readonly DeviceCommand[]) => void) | undefined;
  scope.onmessage = (event: MessageEvent) => {
    const batch = event.data as DeviceCommand[];
    if (handler === undefined) early.push(batch);
    else handler(batch);
  };
  scope.addEventListener('unhandledrejection', (event) => recordDeviceError(init.control, `webgpu device worker failed: ${String(event.reason)}`));
  const gpu = scope.navigator.gpu;
  if (gpu === undefined) {
    recordDeviceError(init.control, 'this browser offers no WebGPU in a Worker (navigator.gpu is undefined): use a browser with WebGPU ' +
      '(Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows), served over https or from localhost');
    return;
  }
  runDeviceServer(init, gpu, {
    onCommands(h) {
      handler = h;
      for (const batch of early.splice(0)) h(batch);
    },
  }).catch((e: unknown) => recordDeviceError(init.control, `webgpu device start failed: ${e instanceof Error ? e.message : String(e)}`));
};
