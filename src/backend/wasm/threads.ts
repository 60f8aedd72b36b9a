// A pool of worker threads that share the wasm heap's memory and run generated kernels
// together with the calling thread (research/spikes.md §B.3: one shared memory, one instance
// per thread, Atomics.wait/notify signalling, a private scratch per thread).
//
// Platform specifics (how a worker is started) come in through a WorkerSpawner:
// node-workers.ts provides one over worker_threads; a browser can provide one over Web Workers.
// Without a spawner, without shared memory, or with threads = 1, everything runs on the calling
// thread through the same `task` protocol. The calling thread blocks in Atomics.wait while the
// workers finish, which Node allows everywhere but a browser only off the main thread: in a page,
// run a multithreaded backend inside a Web Worker (or use threads: 1 on the main thread).

import type { WasmHeap } from './memory.js';
import {
  Ctl, CTL_BYTES, CTL_ERROR_OFFSET, JOB_ACTIVE_MASK, JOB_OPEN, claimUnits, instantiateTask, jobTag,
  type TaskFunction, type WorkerInit,
} from './worker-loop.js';

export interface WorkerHandle {
  terminate(): void;
}

export interface WorkerSpawner {
  /** Starts a worker that calls `runWorkerLoop(init)`. */
  spawn(init: WorkerInit): WorkerHandle;
}

export interface ThreadPoolOptions {
  /** Threads including the calling one; 1 = no workers. */
  threads: number;
  spawner?: WorkerSpawner;
  /** How long the caller waits for a worker inside a job to finish before reporting it as stuck. Default 120 s. */
  workerTimeoutMs?: number;
}

/** A kernel module known to the pool; workers compile it from the heap on first use. */
export interface KernelModule {
  readonly id: number;
  readonly bytesPtr: number;
  readonly bytesLen: number;
}

export class ThreadPool {
  /** Threads that take part in a job, the calling thread included. */
  readonly threads: number;
  private readonly heap: WasmHeap;
  private readonly control: SharedArrayBuffer | undefined;
  private readonly ctl: Int32Array;
  private readonly workers: WorkerHandle[] = [];
  private readonly mainTasks = new Map<number, TaskFunction>();
  private readonly workerTimeoutMs: number;
  private readonly spawner: WorkerSpawner | undefined;
  private workersStarted = false;
  private nextModuleId = 1;
  private running = false;
  private disposed = false;

  constructor(heap: WasmHeap, options: ThreadPoolOptions) {
    const requested = options.threads;
    if (!Number.isInteger(requested) || requested < 1) {
      throw new RangeError(`ThreadPool: threads = ${requested} must be a positive integer (1 = no worker threads)`);
    }
    if (requested > 1 && options.spawner === undefined) {
      throw new Error(`ThreadPool: ${requested} threads requested but no WorkerSpawner was given `
        + '(use createNodeThreadPool from node-workers.ts in Node, webWorkerSpawner from web-workers.ts in a browser '
        + 'Worker, or pass threads: 1)');
    }
    // Without shared memory the workers could not see the tensors: fall back to one thread.
    this.threads = heap.shared ? requested : 1;
    this.heap = heap;
    this.workerTimeoutMs = options.workerTimeoutMs ?? 120_000;
    this.spawner = options.spawner;
    if (this.threads > 1) {
      this.control = new SharedArrayBuffer(CTL_BYTES);
      this.ctl = new Int32Array(this.control);
    } else {
      this.ctl = new Int32Array(CTL_BYTES / 4);
    }
  }

  /**
   * Starts the workers, once: on the first parallel job (or waitUntilReady), so that a process
   * that never runs a large kernel never pays for them. Jobs posted while they boot run on the
   * calling thread (workers join only jobs posted after they started).
   */
  private ensureWorkers(): void {
    if (this.workersStarted || this.threads === 1) return;
    this.workersStarted = true;
    for (let t = 1; t < this.threads; t++) {
      this.workers.push(this.spawner!.spawn({ memory: this.heap.memory, control: this.control!, thread: t }));
    }
  }

  /** Copies a module's bytes into the heap (workers read them from there) and compiles it here. */
  register(bytes: Uint8Array<ArrayBuffer>): KernelModule {
    this.assertUsable();
    const id = this.nextModuleId++;
    this.mainTasks.set(id, instantiateTask(bytes, this.heap.memory));
    if (this.threads === 1) return { id, bytesPtr: 0, bytesLen: bytes.length };
    const bytesPtr = this.heap.alloc(bytes.length);
    this.heap.u8.set(bytes, bytesPtr);
    return { id, bytesPtr, bytesLen: bytes.length };
  }

  /**
   * Runs `task(unit, params, thread)` for every unit in [0, units) and returns when all are
   * done. With `parallel` false (small jobs that do not pay for waking workers) the calling
   * thread runs every unit itself.
   */
  run(module: KernelModule, params: number, units: number, parallel = true): void {
    this.assertUsable();
    if (this.running) throw new Error('ThreadPool.run: called while a job is running (kernels must not re-enter the pool)');
    const task = this.mainTasks.get(module.id);
    if (task === undefined) throw new Error(`ThreadPool.run: module ${module.id} was not registered with this pool`);
    if (units <= 0) return;
    if (this.threads === 1 || !parallel || units === 1) {
      for (let u = 0; u < units; u++) task(u, params, 0);
      return;
    }
    this.running = true;
    try {
      this.ensureWorkers();
      const ctl = this.ctl;
      if (Atomics.load(ctl, Ctl.errors) !== 0) {
        // A worker failed to boot or died between jobs (reported by the spawner).
        const message = this.takeWorkerError();
        this.dispose();
        throw new Error(`ThreadPool.run: a worker thread is gone (${message}); create a new pool`);
      }
      const generation = (Atomics.load(ctl, Ctl.generation) + 1) | 0;
      Atomics.store(ctl, Ctl.nextUnit, 0);
      Atomics.store(ctl, Ctl.units, units);
      Atomics.store(ctl, Ctl.moduleId, module.id);
      Atomics.store(ctl, Ctl.moduleBytesPtr, module.bytesPtr | 0);
      Atomics.store(ctl, Ctl.moduleBytesLen, module.bytesLen);
      Atomics.store(ctl, Ctl.params, params | 0);
      Atomics.store(ctl, Ctl.jobState, jobTag(generation));
      Atomics.store(ctl, Ctl.generation, generation);
      Atomics.notify(ctl, Ctl.generation);
      let mainError: unknown;
      try {
        claimUnits(ctl, task, params, 0);
      } catch (error) {
        // Stop handing out units, but let the workers inside finish before the parameters can be reused.
        Atomics.store(ctl, Ctl.nextUnit, units);
        mainError = error;
      }
      this.closeJobAndWait();
      if (mainError !== undefined) {
        if (Atomics.load(ctl, Ctl.errors) !== 0) this.takeWorkerError();
        throw mainError;
      }
      if (Atomics.load(ctl, Ctl.errors) !== 0) {
        throw new Error(`ThreadPool.run: a worker failed: ${this.takeWorkerError()}`);
      }
    } finally {
      this.running = false;
    }
  }

  /** Stops workers from joining, then waits for those inside the job to leave. */
  private closeJobAndWait(): void {
    const ctl = this.ctl;
    for (;;) {
      const state = Atomics.load(ctl, Ctl.jobState);
      if (Atomics.compareExchange(ctl, Ctl.jobState, state, state & ~JOB_OPEN) === state) break;
    }
    const deadline = Date.now() + this.workerTimeoutMs;
    for (let spin = 0; spin < 20000 && (Atomics.load(ctl, Ctl.jobState) & JOB_ACTIVE_MASK) !== 0; spin++);
    for (;;) {
      const state = Atomics.load(ctl, Ctl.jobState);
      const active = state & JOB_ACTIVE_MASK;
      if (active === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.disposed = true; // the pool's state is unknown now; refuse further jobs
        throw new Error(`ThreadPool.run: ${active} worker thread(s) did not finish within ${this.workerTimeoutMs} ms; `
          + 'a worker is stuck or died. Create a new pool (or use threads: 1)');
      }
      Atomics.wait(ctl, Ctl.jobState, state, Math.min(left, 1000));
    }
  }

  /**
   * Blocks until every worker has started (at most `timeoutMs`); returns how many did. Jobs do
   * not need this (workers that are not up yet simply do not join); tests and benchmarks use it
   * so that the first timed jobs already have every thread.
   */
  waitUntilReady(timeoutMs = 60_000): number {
    this.assertUsable();
    this.ensureWorkers();
    const ctl = this.ctl;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = Atomics.load(ctl, Ctl.ready);
      if (ready >= this.workers.length || Atomics.load(ctl, Ctl.errors) !== 0) return ready;
      const left = deadline - Date.now();
      if (left <= 0) return ready;
      Atomics.wait(ctl, Ctl.ready, ready, Math.min(left, 100));
    }
  }

  private takeWorkerError(): string {
    const length = Atomics.load(this.ctl, Ctl.errorLength);
    const message = new TextDecoder().decode(new Uint8Array(this.control!, CTL_ERROR_OFFSET, length).slice());
    Atomics.store(this.ctl, Ctl.errors, 0);
    return message;
  }

  private assertUsable(): void {
    if (this.disposed) throw new Error('ThreadPool: used after dispose() (or after a worker timed out)');
  }

  /** Stops the workers. Safe to call twice. */
  dispose(): void {
    if (this.disposed && this.workers.length === 0) return;
    this.disposed = true;
    if (this.control !== undefined) {
      Atomics.store(this.ctl, Ctl.shutdown, 1);
      Atomics.add(this.ctl, Ctl.generation, 1);
      Atomics.notify(this.ctl, Ctl.generation);
    }
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}

