// The one path every op takes: infer → (observers, e.g. the tracer) → kernel or view → tape → tangents.
import { getBackend, type Backend, type Storage } from '../backend/backend.js';
import '../backend/cpu/backend.js';
import { runOnCpu } from '../backend/cpu-fallback.js';
import { isFloating } from '../core/dtype.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import { viewStrides } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { GradNode } from '../autodiff/node.js';
import { isGradEnabled } from '../autodiff/mode.js';
import { primitives, type PrimitiveAttrs, type PrimitiveName, type ValueInfo } from './primitives.js';
import { forwardTangents } from '../autodiff/forward.js';

/** Something that wants to see every primitive application (the tracer, profilers, the graph capture). */
export interface DispatchObserver {
  onPrimitive(prim: PrimitiveName, inputs: readonly Tensor[], attrs: unknown, output: Tensor): void;
}

const observers: DispatchObserver[] = [];

/** Registers an observer until the returned function is called. Observers nest (a stack). */
export function addDispatchObserver(o: DispatchObserver): () => void {
  observers.push(o);
  return () => {
    const i = observers.lastIndexOf(o);
    if (i >= 0) observers.splice(i, 1);
  };
}

function commonBackend(prim: string, inputs: readonly Tensor[]): Backend {
  const b = inputs[0]!.storage.backend;
  for (const t of inputs) {
    if (t.storage.backend !== b) {
      throw new TesseraError(`${prim}: inputs live on different backends (${b.name} and ${t.storage.backend.name}); move them with .to('${b.name}') first.`);
    }
  }
  return b;
}

/** Runs a backend's kernel, or the cpu kernel on its storage read as typed arrays. */
function runKernel<P extends PrimitiveName>(backend: Backend, prim: P, inputs: readonly Tensor[], attrs: PrimitiveAttrs[P], out: ValueInfo): Storage {
  const own = backend.kernel(prim);
  if (own !== undefined) return own(inputs, attrs, out);
  return runOnCpu(backend, prim, inputs, attrs, out);
}

/**
 * Applies a primitive. All user-facing ops end here: eager execution, tracing (observers see each
 * application) and the backward pass (vjp rules are written with ops, so they come through here too).
 */
export function bind<P extends PrimitiveName>(prim: P, inputs: readonly Tensor[], attrs: PrimitiveAttrs[P]): Tensor {
  const def = primitives[prim];
  if (def.arity !== undefined && inputs.length !== def.arity) {
    throw new TesseraError(`${prim}: expects ${def.arity} input(s), got ${inputs.length}.`);
  }
  for (const t of inputs) t.assertAlive(prim);
  const info = def.infer(inputs, attrs);
  // A primitive without inputs (a random draw) names its backend in its attrs.
  const backend = inputs.length > 0 ? commonBackend(prim, inputs) : getBackend((attrs as { backend?: string }).backend);

  let output: Tensor;
  if (def.view !== undefined) {
    let src = inputs[0]!;
    if (prim === 'reshape' && viewStrides(src.shape, src.strides, info.shape) === undefined) {
      // The layout cannot be viewed with the new shape: reshape copies, like torch.reshape.
      src = Tensor.fromStorage(runKernel(backend, 'contiguous', [src], {}, { shape: src.shape, dtype: src.dtype }), src.shape, src.dtype);
    }
    const layout = def.view({ shape: [...src.shape], strides: [...src.strides], offset: src.offset }, attrs);
    output = new Tensor(src.storage, layout.shape, layout.strides, layout.offset, info.dtype);
    // The copied temporary's storage now belongs to the output view alone.
    if (src !== inputs[0]) src.dispose();
  } else {
    const storage = runKernel(backend, prim, inputs, attrs, info);
    output = Tensor.fromStorage(storage, info.shape, info.dtype);
  }

  if (isGradEnabled() && isFloating(info.dtype)) {
    const needsGrad = inputs.map((t) => t.requiresGrad);
    if (needsGrad.some(Boolean)) {
      output._setRequiresGradFromOp(true);
      output.gradNode = new GradNode(prim, [...inputs], attrs, output, needsGrad);
    }
  }
  // Observers first, so a tracer sees the primal op before the ops of its tangent rule.
  for (const o of observers) o.onPrimitive(prim, inputs, attrs, output);
  forwardTangents(prim, inputs, attrs, output);
  return output;
}

/** Describes a tensor for error messages. */
export function describe(t: Tensor): string {
  return `${fmtShape(t.shape)} ${t.dtype}`;
}

