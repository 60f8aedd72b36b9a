// Which primitives an op binds: tests that check how an op is lowered (e.g. which convolution
// path ran) watch the dispatch observer instead of timing anything.
import * as t from '../../src/index.js';

/** The names of the primitives bound while `f` runs. */
export function primitivesIn(f: () => void): Set<string> {
  const seen = new Set<string>();
  const stop = t.addDispatchObserver({ onPrimitive: (prim) => { seen.add(prim); } });
  try {
    f();
  } finally {
    stop();
  }
  return seen;
}
