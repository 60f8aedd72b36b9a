// Inverted dropout: zero each element with probability p and scale the survivors by 1/(1−p), so
// the expected value is unchanged and evaluation needs no rescaling. The mask comes from `rand`,
// i.e. the randomUniform primitive: under jit it is a graph node that draws a new mask on every
// call (from the same generator stream as eager calls), not a constant of the trace.
import { isFloating } from '../../core/dtype.js';
import { check } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import type { Generator } from '../../core/random.js';
import { rand } from '../creation.js';
import { lt, mul, where } from '../elementwise.js';

export interface DropoutOptions {
  /** Identity when false (default true, like torch.nn.functional.dropout). */
  training?: boolean;
  /**
   * Source of randomness (default: the global generator seeded by manualSeed). Under jit the graph
   * draws from the generator object given at trace time on every call.
   */
  generator?: Generator;
}

/** Zeroes elements with probability p and scales the rest by 1/(1−p); identity when not training or p = 0. */
export function dropout(x: Tensor, p = 0.5, opts: DropoutOptions = {}): Tensor {
  check(typeof p === 'number' && p >= 0 && p <= 1, 'dropout', () => `probability p must be in [0, 1], got ${p}.`);
  check(isFloating(x.dtype), 'dropout', () => `needs a floating input, got ${x.dtype}.`);
  if (!(opts.training ?? true) || p === 0) return x;
  if (p === 1) return mul(x, 0);
  // The draws are float32 for every input but float64 ones: the comparison then runs as a SIMD kernel
  // on the wasm backend (a float64 one falls back to the cpu kernel, ~10x slower) and the draws take
  // half the memory; the mask can differ from a float64 draw's only where a draw is within float32
  // rounding (2^-24) of 1 - p.
  const drawType = x.dtype === 'float64' ? 'float64' : 'float32';
  const u = rand(x.shape, { dtype: drawType, backend: x.backend, ...(opts.generator ? { generator: opts.generator } : {}) });
  const keep = lt(u, 1 - p);
  return where(keep, mul(x, 1 / (1 - p)), 0);
}
