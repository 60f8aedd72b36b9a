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
import { isRandomPrimitive, primitives, type PrimitiveAttrs, type PrimitiveName, type ValueInfo } from './primitives.js';
import { forwardModeActive, forwardTangents } from '../autodiff/forward.js';

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

/** The innermost observer (a tracer, while one records), or undefined: autocast keys its cast cache on it. */
export function innermostDispatchObserver(): DispatchObserver | undefined {
  return observers[observers.length - 1];
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

/**
 * Mixed precision's entry point (autocast, src/quant/autocast.ts): while a region is active, every
 * primitive and the composites that ask (autocastOperands) see their floating inputs cast to the
 * dtype the region's policy names for the op. Undefined outside a region, so bind pays one check.
 */
export interface AutocastHook {
  /** Identifies the region's policy and dtype (part of jit's signature: a graph traced under autocast differs). */
  readonly key: string;
  /** The inputs op should run on: the same array when nothing needs a cast. */
  castInputs(op: string, inputs: readonly Tensor[]): readonly Tensor[];
}

let autocastHook: AutocastHook | undefined;

/** Installs (or with undefined removes) the autocast hook; returns the previous one, to restore. */
export function setAutocastHook(hook: AutocastHook | undefined): AutocastHook | undefined {
  const previous = autocastHook;
  autocastHook = hook;
  return previous;
}

/** The active autocast hook (a region's state, e.g. for a recomputation that must cast as its forward did). */
export function currentAutocastHook(): AutocastHook | undefined {
  return autocastHook;
}

/** '' outside autocast, else the active region's key (jit keys its cache on it). */
export function autocastKey(): string {
  return autocastHook === undefined ? '' : autocastHook.key;
}

/**
 * Runs fn with `hook` as the autocast state (undefined: without autocast), restoring the previous
 * state afterwards. backward() runs its vjp rules this way with no hook, so each rule computes in the
 * dtypes its forward op recorded (the casts' own vjp rules cast cotangents back).
 */
export function withAutocastHook<T>(hook: AutocastHook | undefined, fn: () => T): T {
  const previous = autocastHook;
  autocastHook = hook;
  try {
    return fn();
  } finally {
    autocastHook = previous;
  }
}

/**
 * A composite op's operands as autocast wants them for `op` (e.g. 'linear' casts input, weight and
 * bias to the region's dtype, so the bias add stays in it; 'crossEntropy' upcasts to float32).
 * Entries may be undefined (absent optional operands). Outside autocast: the same array.
 */
export function autocastOperands<T extends readonly (Tensor | undefined)[]>(op: string, operands: T): T {
  if (autocastHook === undefined) return operands;
  const present = operands.filter((t): t is Tensor => t !== undefined);
  const cast = autocastHook.castInputs(op, present);
  if (cast === present) return operands;
  let k = 0;
  return operands.map((t) => (t === undefined ? undefined : cast[k++])) as unknown as T;
}

/**
 * While set, random primitives return these tensors in order instead of drawing: a checkpointed
 * block recomputed in a traced backward gets the forward's draws (autodiff/checkpoint.ts), since a
 * replayed graph would draw new values. Undefined otherwise, so bind pays one check per draw.
 */
let randomReplay: { readonly draws: readonly Tensor[]; next: number } | undefined;

/** Runs fn with its random primitives answered by `draws`, in order. */
export function withRandomReplay<T>(draws: readonly Tensor[], fn: () => T): T {
  const previous = randomReplay;
  randomReplay = { draws, next: 0 };
  try {
    return fn();
  } finally {
    randomReplay = previous;
  }
}

function replayedDraw(prim: string, info: ValueInfo): Tensor {
  const replay = randomReplay!;
  const t = replay.draws[replay.next++];
  if (t === undefined || t.dtype !== info.dtype || t.shape.length !== info.shape.length || t.shape.some((d, i) => d !== info.shape[i])) {
    throw new TesseraError(`${prim}: a recomputed checkpoint block drew ${fmtShape(info.shape)} ${info.dtype} values where its forward drew ` +
      `${t === undefined ? 'nothing more' : `${fmtShape(t.shape)} ${t.dtype}`}; the checkpointed function must draw the same random numbers each time it runs.`);
  }
  return t;
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
  if (autocastHook !== undefined) inputs = autocastHook.castInputs(prim, inputs);
  const info = def.infer(inputs, attrs);
  if (randomReplay !== undefined && inputs.length === 0 && isRandomPrimitive(prim)) return replayedDraw(prim, info);
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

/**
 * Frees the tensors an op made for its own use (a number as a scalar tensor, a cast, a broadcast
 * view) once its `output` is computed, when nothing can refer to them any more: `output` has no
 * tape node (whose vjp would read them), no observer is watching (a tracer keeps them as graph
 * constants; checkpoint and offload record inputs) and no forward-mode level is active. Otherwise
 * they are left to the enclosing scope or the garbage collector. Without this, `t.mul(x, 2)` left
 * two tensors per call alive until a collection (wasm heap blocks included). Returns `output`.
 */
export function releaseTemporaries(made: readonly Tensor[], output: Tensor): Tensor {
  if (made.length === 0 || observers.length > 0 || output.gradNode !== undefined || forwardModeActive()) return output;
  for (const t of made) if (t !== output && !t.isDisposed) t.dispose();
  return output;
}

/** Describes a tensor for error messages. */
export function describe(t: Tensor): string {
  return `${fmtShape(t.shape)} ${t.dtype}`;
}

