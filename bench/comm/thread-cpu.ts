// CPU time of the calling thread (a worker thread's own, not the whole process's): Linux
// /proc/thread-self/stat, user + system, in 10 ms ticks. Lets the benchmark report how busy a
// rank was next to the wall time, which on a shared machine also counts waiting for a core.
import { readFileSync } from 'node:fs';

/** Milliseconds of CPU used by this thread so far; NaN where /proc is not available. */
export function threadCpuMs(): number {
  try {
    const fields = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}
