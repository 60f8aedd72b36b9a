// Is this machine idle enough for a benchmark to mean something? The machines are shared, and
// a busy neighbour halves what a thread gets (research/spikes.md §B.3). Two measurements:
//  - /proc/loadavg (Linux), as a hint;
//  - a fixed spin loop timed alone, then in two worker threads at once: on two free cores the
//    pair takes as long as one alone; on one free core it takes about twice as long.
// The spin is a dependent float multiply chain, so ns/iteration also gives a rough clock.

import { Worker } from 'node:worker_threads';
import { availableParallelism, cpus } from 'node:os';
import { readFileSync } from 'node:fs';

export interface IdleCheck {
  loadavg1: number | undefined;
  cpus: number;
  spinAloneMs: number;
  /** The slowest of `threads` spin loops started together (each timed in its own worker). */
  spinParallelMs: number;
  threads: number;
  /** spinParallelMs / spinAloneMs: ~1 when `threads` cores are free. */
  ratio: number;
  /** Rough core clock, assuming a 3-cycle float multiply latency (true of recent x86 cores). */
  estimatedGHz: number;
  idle: boolean;
  verdict: string;
}

const SPIN_ITERATIONS = 250_000_000;
// Each worker announces itself, waits for the start signal, spins, and reports its own time, so
// that worker start-up (tens of ms) is not counted as contention.
const workerSource = `
  const { parentPort, workerData } = require('node:worker_threads');
  function spin(n) { let x = 1.0; for (let i = 0; i < n; i++) x = x * 1.0000001; return x; }
  spin(100000);
  const flag = new Int32Array(workerData.flag);
  parentPort.postMessage('ready');
  Atomics.wait(flag, 0, 0);
  const t = performance.now();
  const r = spin(${SPIN_ITERATIONS});
  parentPort.postMessage(r > 0 ? performance.now() - t : -1);
`;

/** Spin loops in `count` workers started together; returns each one's own time in ms. */
async function spinInWorkers(count: number): Promise<number[]> {
  const flag = new SharedArrayBuffer(4);
  const workers = Array.from({ length: count }, () => new Worker(workerSource, { eval: true, workerData: { flag } }));
  const ready = workers.map((w) => new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  }));
  await Promise.all(ready);
  const times = workers.map((w) => new Promise<number>((resolve) => w.once('message', (ms: number) => resolve(ms))));
  const f = new Int32Array(flag);
  Atomics.store(f, 0, 1);
  Atomics.notify(f, 0);
  const result = await Promise.all(times);
  await Promise.all(workers.map((w) => w.terminate()));
  return result;
}

function readLoadavg(): number | undefined {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

export async function checkIdle(threads = 2): Promise<IdleCheck> {
  const loadavg1 = readLoadavg();
  const spinAloneMs = Math.min(...(await spinInWorkers(1)), ...(await spinInWorkers(1)));
  const spinParallelMs = Math.max(...(await spinInWorkers(threads)));
  const ratio = spinParallelMs / spinAloneMs;
  const estimatedGHz = (3 * SPIN_ITERATIONS) / (spinAloneMs * 1e6);
  const idle = ratio < 1.25;
  const verdict = idle
    ? `idle: ${threads} spin loops together took ${ratio.toFixed(2)}× one alone`
    : `BUSY: ${threads} spin loops together took ${ratio.toFixed(2)}× one alone (another process holds a core); `
      + 'multi-thread numbers (and maybe single-thread ones) are low';
  return { loadavg1, cpus: availableParallelism(), spinAloneMs, spinParallelMs, threads, ratio, estimatedGHz, idle, verdict };
}

export function machineDescription(): { cpu: string; cores: number; node: string; platform: string } {
  const list = cpus();
  return { cpu: list[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version, platform: `${process.platform}-${process.arch}` };
}
