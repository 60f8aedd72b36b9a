// Errors raised inside a composite (by a primitive's kernel) re-raised under the composite's name.
import { TesseraError } from '../../core/errors.js';

/** Runs fn; a TesseraError it throws comes back prefixed with the op's name and a hint. */
export function withContext<T>(op: string, hint: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TesseraError) throw new TesseraError(`${op}: ${hint}; ${e.message}`);
    throw e;
  }
}
