// The device thread of the webgpu backend: owns the GPUDevice and every buffer, and carries out the
// calling thread's commands in order (protocol.ts says why the device lives on its own thread).
//
// Platform-neutral: the entry (node-device-entry.ts in Node) finds the GPU object and the message
// port and hands them in.
import {
  Ctl, CTL_MESSAGE_BYTES, CTL_MESSAGE_OFFSET, STATUS_BUFFER_ID, paddedBytes,
  type DeviceCommand, type DeviceInfo, type DeviceInit, type RunCommand,
} from './protocol.js';

/** Where commands arrive: a worker's parentPort (Node) or its global scope (Web Worker). */
export interface CommandSource {
  onCommand(handler: (command: DeviceCommand) => void): void;
}

// WebGPU's usage flags, spelled out so this file needs no GPUBufferUsage global (Node has none).
const USAGE = { MAP_READ: 0x0001, COPY_SRC: 0x0004, COPY_DST: 0x0008, STORAGE: 0x0080 } as const;
const MAP_MODE_READ = 0x0001;

/** Records the first error in the control block and wakes a waiting caller. */
export function recordDeviceError(control: SharedArrayBuffer, text: string): void {
  const ctl = new Int32Array(control);
  if (Atomics.compareExchange(ctl, Ctl.failed, 0, 1) === 0) {
    const bytes = new TextEncoder().encode(text).slice(0, CTL_MESSAGE_BYTES);
    new Uint8Array(control, CTL_MESSAGE_OFFSET, CTL_MESSAGE_BYTES).set(bytes);
    Atomics.store(ctl, Ctl.messageLength, bytes.length);
  }
  Atomics.notify(ctl, Ctl.answered);
}

/** Answers request `seq`, with a message (the device info) or an error that concerns this answer alone. */
function answer(control: SharedArrayBuffer, seq: number, message?: string, error?: string): void {
  const ctl = new Int32Array(control);
  const text = message ?? error;
  if (text !== undefined) {
    const bytes = new TextEncoder().encode(text).slice(0, CTL_MESSAGE_BYTES);
    new Uint8Array(control, CTL_MESSAGE_OFFSET, CTL_MESSAGE_BYTES).set(bytes);
    Atomics.store(ctl, error !== undefined ? Ctl.answerErrorLength : Ctl.messageLength, bytes.length);
  }
  Atomics.store(ctl, Ctl.answered, seq);
  Atomics.notify(ctl, Ctl.answered);
}

export async function runDeviceServer(init: DeviceInit, gpu: GPU, source: CommandSource): Promise<void> {
  const { control } = init;
  const adapter = await gpu.requestAdapter(init.powerPreference === undefined ? {} : { powerPreference: init.powerPreference });
  if (adapter === null) {
    recordDeviceError(control, 'no WebGPU adapter was found (in Node: install libvulkan1 and a Vulkan driver; without a GPU, Mesa lavapipe or the SwiftShader of the chromium package, see docs/webgpu.md)');
    return;
  }
  // Ask for the adapter's own limits: the defaults (128 MiB bindings, 256 invocations) are lower than most GPUs allow.
  const limits: Record<string, number> = {};
  for (const key of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage'] as const) {
    limits[key] = adapter.limits[key];
  }
  const device = await adapter.requestDevice({ requiredLimits: limits });
  device.addEventListener('uncapturederror', (event) => {
    recordDeviceError(control, `webgpu device error: ${(event as GPUUncapturedErrorEvent).error.message}`);
  });
  void device.lost.then((info) => recordDeviceError(control, `webgpu device lost (${info.reason}): ${info.message}`));

  const buffers = new Map<number, GPUBuffer>();
  // Kernels that find a bad index (gather, scatterAdd) record it here; each read reports and clears it.
  const STATUS_BYTES = 16;
  buffers.set(STATUS_BUFFER_ID, device.createBuffer({ size: STATUS_BYTES, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST }));
  const STATUS_OPS = ['', 'gather', 'scatterAdd'];
  const pipelines = new Map<string, GPUComputePipeline>();
  const info = adapter.info;
  const deviceInfo: DeviceInfo = {
    vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
    isFallbackAdapter: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
    maxBufferSize: device.limits.maxBufferSize,
    maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
  };

  function bufferOf(id: number, what: string): GPUBuffer {
    const b = buffers.get(id);
    if (b === undefined) throw new Error(`${what}: storage ${id} does not exist on the device (freed already?)`);
    return b;
  }

  function pipelineFor(wgsl: string, label: string): GPUComputePipeline {
    let p = pipelines.get(wgsl);
    if (p === undefined) {
      const module = device.createShaderModule({ code: wgsl, label });
      p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label });
      pipelines.set(wgsl, p);
    }
    return p;
  }

  function run(c: RunCommand): void {
    const pipeline = pipelineFor(c.wgsl, c.label);
    const entries: GPUBindGroupEntry[] = c.buffers.map((id, i) => ({ binding: i, resource: { buffer: bufferOf(id, c.label) } }));
    let meta: GPUBuffer | undefined;
    if (c.meta !== undefined) {
      meta = device.createBuffer({ size: paddedBytes(c.meta.byteLength), usage: USAGE.STORAGE, mappedAtCreation: true });
      new Int32Array(meta.getMappedRange()).set(c.meta);
      meta.unmap();
      entries.push({ binding: c.buffers.length, resource: { buffer: meta } });
    }
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(c.grid[0], c.grid[1], c.grid[2] ?? 1);
    pass.end();
    device.queue.submit([encoder.finish()]);
    // Destroying a buffer that submitted work still uses is allowed: its memory goes once that work is done.
    meta?.destroy();
  }

  // The copy is submitted at once, in order with everything before it; the caller is blocked until
  // the answer, so nothing it sends can overtake the read.
  function read(c: Extract<DeviceCommand, { op: 'read' }>): void {
    const size = paddedBytes(c.bytes);
    const staging = device.createBuffer({ size: size + STATUS_BYTES, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(bufferOf(c.id, 'read'), c.byteOffset, staging, 0, size);
    encoder.copyBufferToBuffer(buffers.get(STATUS_BUFFER_ID)!, 0, staging, size, STATUS_BYTES);
    device.queue.submit([encoder.finish()]);
    staging.mapAsync(MAP_MODE_READ).then(() => {
      const mapped = staging.getMappedRange();
      new Uint8Array(c.reply).set(new Uint8Array(mapped, 0, c.bytes));
      const [code, index, axisSize, axis] = new Int32Array(mapped, size, 4);
      staging.unmap();
      staging.destroy();
      let error: string | undefined;
      if (code !== 0) {
        const op = STATUS_OPS[code!] ?? `kernel ${code}`;
        error = `${op}: index ${index} is out of bounds for axis ${axis} of size ${axisSize}. Indices must be in [0, ${axisSize}). (Found on the GPU: the ${op} ran earlier, its output is not valid, and this read is the first to report it.)`;
        device.queue.writeBuffer(buffers.get(STATUS_BUFFER_ID)!, 0, new Int32Array(4));
      }
      answer(control, c.seq, undefined, error);
    }, (e: unknown) => recordDeviceError(control, `webgpu read of storage ${c.id}: ${String(e)}`));
  }

  function handle(c: DeviceCommand): void {
    switch (c.op) {
      case 'create': {
        const b = device.createBuffer({ size: paddedBytes(c.bytes), usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
        buffers.set(c.id, b);
        if (c.data !== undefined && c.data.byteLength > 0) writeWords(b, 0, c.data);
        return;
      }
      case 'write': writeWords(bufferOf(c.id, 'write'), c.byteOffset, c.data); return;
      case 'copy': {
        const encoder = device.createCommandEncoder();
        encoder.copyBufferToBuffer(bufferOf(c.src, 'copy'), c.srcOffset, bufferOf(c.dst, 'copy'), c.dstOffset, c.bytes);
        device.queue.submit([encoder.finish()]);
        return;
      }
      case 'free': buffers.get(c.id)?.destroy(); buffers.delete(c.id); return;
      case 'run': run(c); return;
      case 'read': read(c); return;
      case 'sync':
        device.queue.onSubmittedWorkDone().then(() => answer(control, c.seq), (e: unknown) => recordDeviceError(control, `webgpu sync: ${String(e)}`));
        return;
    }
  }

  function writeWords(b: GPUBuffer, byteOffset: number, data: Uint8Array): void {
    // writeBuffer takes whole words; a storage of 1-byte elements is padded with zeros.
    const bytes = data.byteLength % 4 === 0 ? data : (() => { const p = new Uint8Array(paddedBytes(data.byteLength)); p.set(data); return p; })();
    device.queue.writeBuffer(b, byteOffset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  source.onCommand((c) => {
    try {
      handle(c);
    } catch (e) {
      recordDeviceError(control, `webgpu ${c.op}${c.op === 'run' ? ` (${c.label})` : ''}: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  answer(control, 1, JSON.stringify(deviceInfo));
}
