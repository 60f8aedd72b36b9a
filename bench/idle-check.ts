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
  /** Wall time of `threads` spin loops started together. */
  spinParallelMs: number;
  threads: number;
  /** spinParallelMs / spinAloneMs: ~1 when `threads` cores are free. */
  ratio: number;
  /** Rough core clock, assuming a 3-cycle float multiply latency (true of recent x86 cores). */
  estimatedGHz: number;
  idle: boolean;
  verdict: string;
}

const SPIN_ITERATIONS = 60_000_000;
const spinSource = `
  function spin(n) { let x = 1.0; for (let i = 0; i < n; i++) x = x * 1.0000001; return x; }
  spin(100000);
  const t = performance.now();
  const r = spin(${SPIN_ITERATIONS});
  const ms = performance.now() - t;
`;

function spinHere(): number {
  return new Function(`${spinSource}; return r > 0 ? ms : -1;`)() as number;
}

function spinInWorker(): Promise<number> {
  return new Promise((resolve, reject) => {
    const w = new Worker(`${spinSource}; require('node:worker_threads').parentPort.postMessage(ms);`, { eval: true });
    w.once('message', (ms: number) => { resolve(ms); void w.terminate(); });
    w.once('error', reject);
  });
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
  const spinAloneMs = Math.min(spinHere(), spinHere());
  const start = performance.now();
  await Promise.all(Array.from({ length: threads }, () => spinInWorker()));
  // Worker start-up (~30-60 ms) is included; the spin is long enough for that not to matter much.
  const spinParallelMs = performance.now() - start;
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
