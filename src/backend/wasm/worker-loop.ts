// The shared protocol between the calling thread and the worker threads of a ThreadPool, and the
// loop each worker runs. Platform-neutral: a Node worker (node-workers.ts) or a Web Worker calls
// `runWorkerLoop` with the init data it was started with.
//
// A job is "call the export `task(unit, params, thread)` of module `id` for every unit in
// [0, units)". The caller posts it (parameters, then an open job state, then a new generation),
// claims units itself, then closes the job and waits only for the workers that joined it. A
// worker joins by incrementing the active count inside the job state, which only succeeds while
// that job is open; so a worker that is asleep or descheduled (a busy machine) never holds the
// caller up, and one that wakes late finds the job closed and reads nothing. Units are claimed
// with an atomic counter. Modules travel as bytes inside the shared wasm memory: a worker compiles
// one the first time a job names it, synchronously, without any message passing.

/** Int32 slots of the control block (a SharedArrayBuffer separate from the wasm memory). */
export const Ctl = {
  generation: 0, // bumped by the caller to post a job
  nextUnit: 1, // claim counter
  units: 2,
  jobState: 3, // (generation & 0x7fff) << 16 | OPEN | active workers, see jobTag()
  moduleId: 4,
  moduleBytesPtr: 5,
  moduleBytesLen: 6,
  params: 7,
  shutdown: 8,
  errors: 9,
  errorLength: 10,
  ready: 11, // workers that have started their loop
} as const;
export const CTL_WORDS = 16;

/** Bit of the job state that says the job still accepts workers. */
export const JOB_OPEN = 0x8000;
/** Bits of the job state that count the workers inside the job. */
export const JOB_ACTIVE_MASK = 0x7fff;

/** The job state of generation `generation` while open with no worker inside. */
export function jobTag(generation: number): number {
  return ((generation & 0x7fff) << 16) | JOB_OPEN;
}
/** Bytes after the int32 slots where the first worker error message is stored (UTF-8). */
export const CTL_ERROR_OFFSET = CTL_WORDS * 4;
export const CTL_ERROR_BYTES = 1024;
export const CTL_BYTES = CTL_ERROR_OFFSET + CTL_ERROR_BYTES;

export interface WorkerInit {
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  /** Thread index passed to `task`; the calling thread is 0, workers are 1..n-1. */
  readonly thread: number;
}

export type TaskFunction = (unit: number, params: number, thread: number) => void;

export function instantiateTask(bytes: Uint8Array<ArrayBuffer>, memory: WebAssembly.Memory): TaskFunction {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const task = instance.exports.task;
  if (typeof task !== 'function') throw new Error('kernel module does not export a function named "task"');
  return task as TaskFunction;
}

/** Records the first error of any thread in the control block (the caller rethrows it). */
export function recordWorkerError(control: SharedArrayBuffer, text: string): void {
  const ctl = new Int32Array(control);
  if (Atomics.add(ctl, Ctl.errors, 1) === 0) {
    const bytes = new TextEncoder().encode(text).slice(0, CTL_ERROR_BYTES);
    new Uint8Array(control, CTL_ERROR_OFFSET, CTL_ERROR_BYTES).set(bytes);
    Atomics.store(ctl, Ctl.errorLength, bytes.length);
  }
  Atomics.notify(ctl, Ctl.ready);
}

/** Claims units until none are left; returns how many this thread ran. */
export function claimUnits(ctl: Int32Array, task: TaskFunction, params: number, thread: number): number {
  const units = Atomics.load(ctl, Ctl.units);
  let ran = 0;
  for (;;) {
    const unit = Atomics.add(ctl, Ctl.nextUnit, 1);
    if (unit >= units) return ran;
    task(unit, params, thread);
    ran++;
  }
}

const SPIN_ITERATIONS = 20000;

export function runWorkerLoop(init: WorkerInit): void {
  const ctl = new Int32Array(init.control);
  const tasks = new Map<number, TaskFunction>();
  let seen = Atomics.load(ctl, Ctl.generation);
  Atomics.add(ctl, Ctl.ready, 1);
  Atomics.notify(ctl, Ctl.ready);
  for (;;) {
    // Spin briefly (a job often follows the previous one within microseconds), then sleep.
    for (let i = 0; i < SPIN_ITERATIONS && Atomics.load(ctl, Ctl.generation) === seen; i++);
    Atomics.wait(ctl, Ctl.generation, seen);
    const generation = Atomics.load(ctl, Ctl.generation);
    if (generation === seen) continue;
    seen = generation;
    if (Atomics.load(ctl, Ctl.shutdown) !== 0) return;
    if (!joinJob(ctl, generation)) continue;
    try {
      const id = Atomics.load(ctl, Ctl.moduleId);
      let task = tasks.get(id);
      if (task === undefined) {
        const ptr = Atomics.load(ctl, Ctl.moduleBytesPtr) >>> 0;
        const len = Atomics.load(ctl, Ctl.moduleBytesLen);
        // slice() copies out of the shared buffer: module compilation wants an unshared source.
        task = instantiateTask(new Uint8Array(init.memory.buffer, ptr, len).slice(), init.memory);
        tasks.set(id, task);
      }
      claimUnits(ctl, task, Atomics.load(ctl, Ctl.params), init.thread);
    } catch (error) {
      recordWorkerError(init.control, `worker thread ${init.thread}: ${String(error)}`);
    }
    Atomics.sub(ctl, Ctl.jobState, 1);
    Atomics.notify(ctl, Ctl.jobState);
  }
}

/** Enters job `generation` if it is still open; false if it closed or a newer one replaced it. */
function joinJob(ctl: Int32Array, generation: number): boolean {
  const tag = jobTag(generation);
  for (;;) {
    const state = Atomics.load(ctl, Ctl.jobState);
    if ((state & ~JOB_ACTIVE_MASK) !== tag) return false;
    if (Atomics.compareExchange(ctl, Ctl.jobState, state, state + 1) === state) return true;
  }
}
