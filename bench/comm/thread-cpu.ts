// CPU time of the calling thread (a worker thread's own, not the whole process's): Linux
// /proc/thread-self/stat, user + system, in 10 ms ticks. Lets the benchmark report how busy a
// rank was next to the wall time, which on a shared machine also counts waiting for a core.
import { readFileSync } from 'node:fs';

/** Milliseconds of CPU used by this thread so far; NaN where /proc is not available. */
export function threadCpuMs(): number {
  const { userMs, systemMs } = threadCpuSplitMs();
  return userMs + systemMs;
}

/**
 * The same, split into user time (JavaScript, Node) and system time (the kernel: for a TCP
 * rank, mostly copying socket data in and out and the loopback's TCP processing).
 */
export function threadCpuSplitMs(): { userMs: number; systemMs: number } {
  try {
    const fields = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ');
    return { userMs: Number(fields[11]) * 10, systemMs: Number(fields[12]) * 10 };
  } catch {
    return { userMs: NaN, systemMs: NaN };
  }
}
