// The cost of any computation, composite ops included: run it and add up the declared cost
// (FLOPs, bytes read, bytes written) of every primitive it applies. Composites (softmax, einsum,
// layerNorm, conv2d) have no cost table of their own; this is how their FLOPs and bytes are known.
import type { Tensor } from '../core/tensor.js';
import { addDispatchObserver } from './dispatch.js';
import { primitives, type Cost, type PrimitiveAttrs, type PrimitiveName, type ValueInfo } from './primitives.js';

export interface CostReport extends Cost {
  /** Number of primitive applications (views included; they cost nothing). */
  primitives: number;
  /** The same totals per primitive, with how many times it ran. */
  byPrimitive: Partial<Record<PrimitiveName, Cost & { count: number }>>;
}

const info = (t: Tensor): ValueInfo => ({ shape: t.shape, dtype: t.dtype });

/**
 * Runs `fn` and returns its result with the summed cost of every primitive it applied (a backward
 * pass inside `fn` counts too, since vjp rules are ops).
 */
export function measureCost<T>(fn: () => T): { result: T; cost: CostReport } {
  const cost: CostReport = { flops: 0, bytesRead: 0, bytesWritten: 0, primitives: 0, byPrimitive: {} };
  const stop = addDispatchObserver({
    onPrimitive(prim, inputs, attrs, output) {
      const def = primitives[prim] as { cost(i: readonly ValueInfo[], a: PrimitiveAttrs[PrimitiveName], o: ValueInfo): Cost };
      const c = def.cost(inputs.map(info), attrs as PrimitiveAttrs[PrimitiveName], info(output));
      cost.flops += c.flops;
      cost.bytesRead += c.bytesRead;
      cost.bytesWritten += c.bytesWritten;
      cost.primitives++;
      const entry = (cost.byPrimitive[prim] ??= { flops: 0, bytesRead: 0, bytesWritten: 0, count: 0 });
      entry.flops += c.flops;
      entry.bytesRead += c.bytesRead;
      entry.bytesWritten += c.bytesWritten;
      entry.count++;
    },
  });
  try {
    return { result: fn(), cost };
  } finally {
    stop();
  }
}
