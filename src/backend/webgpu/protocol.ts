// The messages between the calling thread and the device thread of the webgpu backend.
//
// WebGPU reads results back only asynchronously (GPUBuffer.mapAsync), but the Backend contract is
// synchronous (readAll returns the values), as autodiff, the cpu fallback and every test expect.
// So the GPU device lives on a thread of its own (device-server.ts) and the calling thread talks to
// it with messages: launches are posted and not waited for (the GPU runs while JS goes on), and a
// read blocks the caller in Atomics.wait until the device thread has copied the values into shared
// memory. Errors raised on the device thread (WGSL, validation, out of memory) are recorded in the
// control block and thrown by the caller's next wait, naming the command that failed.

/** Int32 slots of the control block (a SharedArrayBuffer). */
export const enum Ctl {
  /** The sequence number of the last answered request (ready = 1, then one per read). */
  answered = 0,
  /** Set to 1 once the first error is recorded (later ones are dropped). */
  failed = 1,
  /** Bytes of UTF-8 text in the message area. */
  messageLength = 2,
  /** Bytes of UTF-8 text (in the message area) of an error that belongs to the last answer only. */
  answerErrorLength = 3,
}
/** Byte offset of the message area in the control block, and its size. */
export const CTL_MESSAGE_OFFSET = 16;
export const CTL_MESSAGE_BYTES = 4096;
export const CTL_BYTES = CTL_MESSAGE_OFFSET + CTL_MESSAGE_BYTES;

/** Handed to the device thread when it starts. */
export interface DeviceInit {
  readonly control: SharedArrayBuffer;
  /** `create()` options of the Node `webgpu` package (Dawn), e.g. ['backend=vulkan']. */
  readonly dawnOptions: readonly string[];
  /** Adapter options: 'high-performance' prefers a discrete GPU. */
  readonly powerPreference?: 'low-power' | 'high-performance';
}

/** What the device thread reports once ready: the answer to request 1, as JSON in the message area. */
export interface DeviceInfo {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  readonly isFallbackAdapter: boolean;
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  /** Storage buffers one shader may bind (output, inputs and params count alike); WebGPU guarantees 8. */
  readonly maxStorageBuffersPerShaderStage: number;
}

/** One compute dispatch of a WGSL module over buffers (binding i = buffers[i]), as the backend asks for it. */
export interface RunRequest {
  readonly op: 'run';
  readonly wgsl: string;
  readonly buffers: readonly number[];
  readonly meta?: Int32Array;
  readonly grid: readonly [number, number] | readonly [number, number, number];
  readonly label: string;
}

/**
 * A dispatch as sent: the module by a number, its text only with its first use (the device thread
 * keeps the compiled pipeline under that number), so a kernel's text crosses threads once.
 */
export interface RunCommand {
  readonly op: 'run';
  readonly shader: number;
  readonly wgsl?: string;
  /** Storage ids in binding order; `meta` (when given) is bound after them. */
  readonly buffers: readonly number[];
  /** Small int32 parameters (shapes, strides, offsets), bound as a read-only storage buffer. */
  readonly meta?: Int32Array;
  /** Workgroups in x, y (and z). */
  readonly grid: readonly [number, number] | readonly [number, number, number];
  /** What the caller was doing, for error messages. */
  readonly label: string;
}

export type DeviceCommand =
  | { readonly op: 'create'; readonly id: number; readonly bytes: number; readonly data?: Uint8Array }
  | { readonly op: 'write'; readonly id: number; readonly byteOffset: number; readonly data: Uint8Array }
  | { readonly op: 'copy'; readonly src: number; readonly srcOffset: number; readonly dst: number; readonly dstOffset: number; readonly bytes: number }
  | { readonly op: 'free'; readonly id: number }
  | RunCommand
  | { readonly op: 'read'; readonly id: number; readonly byteOffset: number; readonly bytes: number; readonly reply: SharedArrayBuffer; readonly seq: number }
  | { readonly op: 'sync'; readonly seq: number };

/**
 * Commands travel in batches (one message each): the calling thread sends what it has collected at a
 * read or sync, every BATCH_COMMANDS commands, and when its current task ends; the device thread
 * records a batch's dispatches into one compute pass and submits it once. A message per command
 * and a submit per dispatch cost ~0.7 ms per kernel on an H100 (bench/webgpu.ts before batching).
 */
export const BATCH_COMMANDS = 64;
/** Bytes of one dispatch's params in the device thread's params buffer (WebGPU's binding offset alignment). */
export const PARAMS_SLOT_BYTES = 256;

/** The device's status buffer (4 int32 words, see wgsl-typed.ts STATUS_WORDS), created with the device. */
export const STATUS_BUFFER_ID = 0;

/** Buffers are sized in whole 4-byte words (WebGPU copies and storage arrays work on them). */
export function paddedBytes(bytes: number): number {
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}
