// stack() used by the jacobian helpers, written here with primitives so autodiff does not depend on
// the full shape-op module.
import type { Tensor } from '../core/tensor.js';
import { bind } from '../ops/dispatch.js';
import { unsqueeze } from '../ops/shape.js';

export function stack(ts: readonly Tensor[], axis = 0): Tensor {
  return bind('cat', ts.map((t) => unsqueeze(t, axis)), { axis });
}
