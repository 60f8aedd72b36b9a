// Errors a user can cause. Each names the op, the offending shapes/dtypes/values and what to do.

export class TesseraError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TesseraError';
  }
}

/** Throws a TesseraError "<op>: <what>" when `cond` is false. */
export function check(cond: unknown, op: string, what: () => string): asserts cond {
  if (!cond) throw new TesseraError(`${op}: ${what()}`);
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
