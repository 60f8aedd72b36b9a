// The time limit of one operation, carried down to every send and receive it makes so that a
// timeout can say which operation and which peer it was waiting for.

export interface Deadline {
  /** performance.now() value at which the operation fails. */
  readonly at: number;
  readonly timeoutMs: number;
  /** A description of the operation for error messages, e.g. "allReduce(ring) on group [0,1]". */
  readonly operation: string;
}

export function deadlineIn(timeoutMs: number, operation: string): Deadline {
  if (!(timeoutMs > 0)) {
    throw new RangeError(`${operation}: timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  }
  return { at: performance.now() + timeoutMs, timeoutMs, operation };
}

export function remainingMs(deadline: Deadline): number {
  return Math.max(0, deadline.at - performance.now());
}
