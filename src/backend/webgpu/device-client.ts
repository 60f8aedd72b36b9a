// The calling thread's side of the webgpu backend: starts the device thread, posts commands to it
// and waits (Atomics.wait) for the answers that carry values back (protocol.ts says why).
//
// Waiting blocks the thread, which Node allows everywhere; a browser allows it only off the main
// thread, so in a page the backend runs inside a dedicated Worker (browser.ts).
import { TesseraError } from '../../core/errors.js';
import { BATCH_COMMANDS, Ctl, CTL_BYTES, CTL_MESSAGE_OFFSET, type DeviceCommand, type DeviceInfo, type RunRequest } from './protocol.js';

/** How a device thread is started and spoken to (Node: worker_threads; see startNodeDeviceThread). */
export interface DeviceThread {
  post(commands: readonly DeviceCommand[], transfer?: ArrayBuffer[]): void;
  terminate(): void;
}

export interface DeviceClientOptions {
  /** How long a read may take before it is reported as stuck (default 120 s). */
  timeoutMs?: number;
}

export class DeviceClient {
  readonly info: DeviceInfo;
  private readonly ctl: Int32Array;
  private nextSeq = 2;
  private nextId = 1;
  private readonly timeoutMs: number;
  private closed = false;
  private pending: DeviceCommand[] = [];
  private pendingTransfers: ArrayBuffer[] = [];
  private flushScheduled = false;
  private readonly shaders = new Map<string, number>();
  /** Kernel launches posted so far (tests use it to see that work ran on the GPU). */
  launches = 0;

  constructor(private readonly control: SharedArrayBuffer, private readonly thread: DeviceThread, options: DeviceClientOptions = {}) {
    this.ctl = new Int32Array(control);
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.info = JSON.parse(this.waitFor(1, 'starting the device')) as DeviceInfo;
  }

  /** A control block for a new device thread. */
  static newControl(): SharedArrayBuffer {
    return new SharedArrayBuffer(CTL_BYTES);
  }

  newId(): number {
    return this.nextId++;
  }

  /** Queues a command; it reaches the device thread with its batch (see BATCH_COMMANDS). */
  post(request: DeviceCommand | RunRequest, transfer?: ArrayBuffer[]): void {
    if (this.closed) throw new TesseraError(`webgpu: the device was closed; ${request.op} cannot run.`);
    this.throwIfFailed();
    let command: DeviceCommand;
    if (request.op === 'run') this.launches++;
    if (request.op === 'run' && 'wgsl' in request && typeof request.wgsl === 'string' && !('shader' in request)) {
      let shader = this.shaders.get(request.wgsl);
      const first = shader === undefined;
      if (shader === undefined) this.shaders.set(request.wgsl, shader = this.shaders.size + 1);
      command = { op: 'run', shader, wgsl: first ? request.wgsl : undefined, buffers: request.buffers, meta: request.meta, grid: request.grid, label: request.label };
    } else {
      command = request as DeviceCommand;
    }
    this.pending.push(command);
    if (transfer !== undefined) this.pendingTransfers.push(...transfer);
    if (this.pending.length >= BATCH_COMMANDS) this.flush();
    else if (!this.flushScheduled) {
      // Work queued by code that then waits for something else reaches the GPU when this task ends.
      this.flushScheduled = true;
      queueMicrotask(() => { this.flushScheduled = false; this.flush(); });
    }
  }

  /** Sends the queued commands to the device thread. */
  flush(): void {
    if (this.pending.length === 0 || this.closed) return;
    const commands = this.pending, transfers = this.pendingTransfers;
    this.pending = [];
    this.pendingTransfers = [];
    this.thread.post(commands, transfers);
  }

  /** Copies `bytes` bytes of a storage, from `byteOffset`, back to this thread. */
  read(id: number, byteOffset: number, bytes: number): Uint8Array {
    const reply = new SharedArrayBuffer(Math.max(4, Math.ceil(bytes / 4) * 4));
    const seq = this.nextSeq++;
    this.post({ op: 'read', id, byteOffset, bytes, reply, seq });
    this.flush();
    this.waitFor(seq, `reading storage ${id}`);
    return new Uint8Array(reply, 0, bytes);
  }

  /** Waits until the GPU has finished everything submitted so far (for timing). */
  sync(): void {
    const seq = this.nextSeq++;
    this.post({ op: 'sync', seq });
    this.flush();
    this.waitFor(seq, 'waiting for the GPU');
  }

  /**
   * Waits (at most `timeoutMs`) for the device thread to finish what it was sent, ignoring errors,
   * and closes. Used as the process exits: a device thread stopped in the middle of a Dawn call
   * aborts the whole process.
   */
  drainAndClose(timeoutMs: number): void {
    if (this.closed) return;
    try {
      this.flush();
      const seq = this.nextSeq++;
      this.thread.post([{ op: 'sync', seq }]);
      const deadline = Date.now() + timeoutMs;
      // Also after a device error: the thread still answers, and must be idle when it is stopped.
      while (Atomics.load(this.ctl, Ctl.answered) < seq && Date.now() < deadline) {
        Atomics.wait(this.ctl, Ctl.answered, Atomics.load(this.ctl, Ctl.answered), 100);
      }
    } catch {
      // Exiting anyway.
    }
    this.closed = true;
  }

  /** Stops the device thread once it has finished its work (at most 10 s). */
  close(): void {
    if (this.closed) return;
    this.drainAndClose(10_000);
    this.thread.terminate();
  }

  private throwIfFailed(): void {
    if (Atomics.load(this.ctl, Ctl.failed) !== 0) throw new TesseraError(this.message());
  }

  private message(): string {
    const n = Atomics.load(this.ctl, Ctl.messageLength);
    return new TextDecoder().decode(new Uint8Array(this.control, CTL_MESSAGE_OFFSET, n).slice());
  }

  /** Blocks until request `seq` is answered; returns the message area's text. */
  private waitFor(seq: number, what: string): string {
    const deadline = Date.now() + this.timeoutMs;
    while (Atomics.load(this.ctl, Ctl.answered) < seq) {
      this.throwIfFailed();
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new TesseraError(`webgpu: the device thread did not answer within ${this.timeoutMs / 1000} s while ${what}; the GPU may be hung or the thread dead.`);
      }
      Atomics.wait(this.ctl, Ctl.answered, Atomics.load(this.ctl, Ctl.answered), Math.min(left, 1000));
    }
    this.throwIfFailed();
    const errorLength = Atomics.exchange(this.ctl, Ctl.answerErrorLength, 0);
    if (errorLength > 0) throw new TesseraError(new TextDecoder().decode(new Uint8Array(this.control, CTL_MESSAGE_OFFSET, errorLength).slice()));
    return seq === 1 ? this.message() : '';
  }
}
