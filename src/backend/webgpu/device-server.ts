// The device thread of the webgpu backend: owns the GPUDevice and every buffer, and carries out the
// calling thread's commands in order (protocol.ts says why the device lives on its own thread).
//
// Platform-neutral: the entry (node-device-entry.ts in Node) finds the GPU object and the message
// port and hands them in.
import {
  Ctl, CTL_MESSAGE_BYTES, CTL_MESSAGE_OFFSET, PARAMS_SLOT_BYTES, STATUS_BUFFER_ID, paddedBytes,
  type DeviceCommand, type DeviceInfo, type DeviceInit, type RunCommand,
} from './protocol.js';

/** Where batches of commands arrive: a worker's parentPort (Node) or its global scope (Web Worker). */
export interface CommandSource {
  onCommands(handler: (commands: readonly DeviceCommand[]) => void): void;
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
  const pipelines = new Map<number, GPUComputePipeline>();
  const info = adapter.info;
  const deviceInfo: DeviceInfo = {
    vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
    isFallbackAdapter: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
    maxBufferSize: device.limits.maxBufferSize,
    maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
    maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
  };

  function bufferOf(id: number, what: string): GPUBuffer {
    const b = buffers.get(id);
    if (b === undefined) throw new Error(`${what}: storage ${id} does not exist on the device (freed already?)`);
    return b;
  }

  function pipelineFor(c: RunCommand): GPUComputePipeline {
    let p = pipelines.get(c.shader);
    if (p === undefined) {
      if (c.wgsl === undefined) throw new Error(`${c.label}: shader ${c.shader} was never sent`);
      const module = device.createShaderModule({ code: c.wgsl, label: c.label });
      p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: c.label });
      pipelines.set(c.shader, p);
    }
    return p;
  }

  // A batch's dispatches are recorded into one compute pass and submitted together. Their params go
  // to slots of one buffer, written (queue.writeBuffer) just before the submit: queue operations run
  // in order, so the previous batch has read its params by then. Buffers freed while their batch is
  // open are destroyed after its submit.
  const PARAM_SLOTS = 1024;
  const SLOT_INTS = PARAMS_SLOT_BYTES / 4;
  const paramsBuffer = device.createBuffer({ size: PARAM_SLOTS * PARAMS_SLOT_BYTES, usage: USAGE.STORAGE | USAGE.COPY_DST });
  const paramsData = new Int32Array(PARAM_SLOTS * SLOT_INTS);
  let slots = 0;
  let encoder: GPUCommandEncoder | undefined;
  let pass: GPUComputePassEncoder | undefined;
  let toDestroy: GPUBuffer[] = [];

  function submit(): void {
    if (encoder === undefined) return;
    pass!.end();
    if (slots > 0) device.queue.writeBuffer(paramsBuffer, 0, paramsData.buffer, 0, slots * PARAMS_SLOT_BYTES);
    device.queue.submit([encoder.finish()]);
    encoder = undefined;
    pass = undefined;
    slots = 0;
    for (const b of toDestroy) b.destroy();
    toDestroy = [];
  }

  function run(c: RunCommand): void {
    const pipeline = pipelineFor(c);
    const entries: GPUBindGroupEntry[] = c.buffers.map((id, i) => ({ binding: i, resource: { buffer: bufferOf(id, c.label) } }));
    if (c.meta !== undefined) {
      if (c.meta.length > SLOT_INTS) throw new Error(`${c.label}: ${c.meta.length} params exceed a slot of ${SLOT_INTS}`);
      if (slots === PARAM_SLOTS) submit();
      paramsData.set(c.meta, slots * SLOT_INTS);
      entries.push({ binding: c.buffers.length, resource: { buffer: paramsBuffer, offset: slots * PARAMS_SLOT_BYTES, size: PARAMS_SLOT_BYTES } });
      slots++;
    }
    if (encoder === undefined) {
      encoder = device.createCommandEncoder();
      pass = encoder.beginComputePass();
    }
    pass!.setPipeline(pipeline);
    pass!.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    pass!.dispatchWorkgroups(c.grid[0], c.grid[1], c.grid[2] ?? 1);
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
    // Everything but a dispatch, a new buffer and a free goes through the queue, which must see the
    // recorded dispatches first.
    if (c.op !== 'run' && c.op !== 'create' && c.op !== 'free') submit();
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
      case 'free': {
        const b = buffers.get(c.id);
        buffers.delete(c.id);
        if (b !== undefined) { if (encoder !== undefined) toDestroy.push(b); else b.destroy(); }
        return;
      }
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

  source.onCommands((batch) => {
    for (const c of batch) {
      try {
        handle(c);
      } catch (e) {
        recordDeviceError(control, `webgpu ${c.op}${c.op === 'run' ? ` (${c.label})` : ''}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    try {
      submit();
    } catch (e) {
      recordDeviceError(control, `webgpu submit: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  answer(control, 1, JSON.stringify(deviceInfo));
}
