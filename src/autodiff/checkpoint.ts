// Activation checkpointing (gradient checkpointing, "rematerialization"): run a block of the forward
// pass without keeping its intermediate tensors, and recompute them when backward reaches the block.
// Memory for the block's activations drops to its inputs and outputs; the price is one more forward
// of the block during backward (about a third more compute for a whole network, Chen et al. 2016).
//
// How it works, in eager mode:
// - forward: fn runs under noGrad inside a memory scope, so no tape is recorded and every tensor fn
//   creates, except what it returns, is disposed when it returns. A dispatch observer notes every
//   tensor that fn's ops read and that requires grad: the block's inputs, whether passed as arguments
//   or captured by the closure (parameters, or activations from outside the block). The output gets
//   one tape node whose inputs are exactly those tensors.
// - backward: that node's vjp restores the random generators to their state at the forward, runs fn
//   again with recording on (and the forward's autocast state, which backward otherwise suspends), differentiates the recomputed output up to the noted tensors (treating
//   them as leaves, so the outer graph is left to the outer backward) and disposes the recomputed
//   activations. Dropout therefore draws the same mask both times.
//
// Inside a jvp, checkpoint simply runs fn (forward mode saves no activations).
//
// Under a tracer (jit) the same happens symbolically: the forward's nodes are recorded without a
// tape, and the traced backward records the recomputation's nodes, tagged (GraphNode.remat) so that
// common-subexpression elimination and matmul merging keep them apart from their forward twins.
// The memory planner then frees the forward's activations after their last forward use, and the
// planned graph recomputes them in backward (rematerialization). Random draws are not redrawn in
// the graph (a replayed graph draws anew each time): the recomputation reuses the forward's draws.
import { TesseraError, fmtShape } from '../core/errors.js';
import { scope } from '../core/memory.js';
import { snapshotGenerators } from '../core/random.js';
import { Tensor } from '../core/tensor.js';
import { addDispatchObserver, currentAutocastHook, withAutocastHook, withRandomReplay, type AutocastHook } from '../ops/dispatch.js';
import { isRandomPrimitive } from '../ops/primitives.js';
import { detach } from '../ops/shape.js';
import { gradientsUpTo } from './backward.js';
import { forwardModeActive } from './forward.js';
import { enableGrad, isGradEnabled, noGrad } from './mode.js';
import { recordCustom } from './node.js';

/** What the graph layer lends autodiff: whether a tracer records, and tagging recorded nodes. */
export interface TracingHooks {
  isTracing(): boolean;
  withRematTag<T>(tag: number, fn: () => T): T;
  /** Copies a traced tensor to host memory, recorded as a graph node (offload.ts under jit). */
  storeOnHost(x: Tensor): Tensor;
  /** Copies a host copy back onto `backend`, recorded as a graph node. */
  fetchFromHost(h: Tensor, backend: string): Tensor;
}

// The graph layer sits above autodiff, so it registers these when it loads (graph/trace.ts,
// graph/offload-ops.ts) rather than autodiff importing it; without the graph layer nothing traces.
const untraced = (what: string) => (): never => {
  throw new TesseraError(`${what}: no tracer is recording (internal error).`);
};
let tracing: TracingHooks = {
  isTracing: () => false,
  withRematTag: (_tag, fn) => fn(),
  storeOnHost: untraced('storeOnHost'),
  fetchFromHost: untraced('fetchFromHost'),
};
export function registerTracingHooks(hooks: Partial<TracingHooks>): void {
  tracing = { ...tracing, ...hooks };
}

/** The graph layer's hooks (for offload.ts). */
export function tracingHooks(): TracingHooks {
  return tracing;
}

/** Whether a tracer is recording (for offload.ts, which runs its block plainly then too). */
export function activeTracing(): boolean {
  return tracing.isTracing();
}

let nextRematTag = 1;

/** How a recomputation reproduces the forward's random draws. */
type Draws =
  | { kind: 'generators'; atForward: ReturnType<typeof snapshotGenerators> }
  | { kind: 'replay'; tensors: Tensor[]; tag: number };

/** What a checkpointed function may return: one tensor, or an array of tensors. */
export type CheckpointResult = Tensor | readonly Tensor[];

/**
 * Runs `fn(...args)` without saving its intermediate activations for backward; backward recomputes
 * them (like torch.utils.checkpoint.checkpoint with use_reentrant=False). Gradients reach every
 * tensor fn reads that requires grad: arguments, module parameters and captured activations.
 *
 * fn must be a function of its inputs and the random generators' state: it runs twice, so it must not
 * depend on, or change, other state (a BatchNorm in training mode would update its running statistics
 * twice, as in PyTorch). Tensors fn creates and keeps elsewhere (not in its result) are disposed.
 * An array result costs one recomputation per output that receives a gradient.
 */
export function checkpoint<A extends unknown[], R extends CheckpointResult>(fn: (...args: A) => R, ...args: A): R {
  // Run fn plainly when there is nothing to save memory on (no tape would be recorded) or inside a
  // jvp (forward mode keeps no activations for backward, and the tangents fn computes must outlive it).
  if (!isGradEnabled() || forwardModeActive()) return fn(...args);

  const traced = tracing.isTracing();
  const draws: Draws = traced ? { kind: 'replay', tensors: [], tag: nextRematTag++ } : { kind: 'generators', atForward: snapshotGenerators() };
  // The recomputation runs inside backward, which suspends autocast: it must cast as the forward did.
  const autocast = currentAutocastHook();
  const inputs = new Set<Tensor>();
  const stop = addDispatchObserver({
    onPrimitive(prim, ins, _attrs, out) {
      for (const t of ins) if (t.requiresGrad) inputs.add(t);
      if (draws.kind === 'replay' && isRandomPrimitive(prim)) draws.tensors.push(out);
    },
  });
  let result: R;
  try {
    const forward = (): R => noGrad(() => {
      const r = fn(...args);
      blockOutputs('checkpoint', r);
      // Fresh tensors over the outputs' storages: the tape node goes on these, never on a tensor that
      // fn merely passed through (an input returned as is must keep its own history).
      return (Array.isArray(r) ? r.map((t: Tensor) => detach(t)) : detach(r as Tensor)) as unknown as R;
    });
    // Eagerly the intermediates are disposed at once; a trace keeps its tensors (its graph decides).
    result = traced ? forward() : scope(forward);
  } finally {
    stop();
  }
  const saved = [...inputs];
  if (saved.length === 0) return result;

  const outputs: Tensor[] = Array.isArray(result) ? [...(result as readonly Tensor[])] : [result as Tensor];
  outputs.forEach((out, k) => {
    recordCustom('checkpoint', saved, out, (grad) => recompute(fn, args, draws, autocast, saved, outputs.length > 1 ? k : undefined, out, grad));
  });
  return result;
}

/** A block's result as its output tensors; `op` (checkpoint, offload) names the caller in the error. */
export function blockOutputs(op: string, r: unknown): Tensor[] {
  if (r instanceof Tensor) return [r];
  if (Array.isArray(r) && r.length > 0 && r.every((t) => t instanceof Tensor)) return [...r] as Tensor[];
  throw new TesseraError(`${op}: the function must return a tensor or a non-empty array of tensors; ` +
    `return the tensors that later code uses (other values can be computed outside the ${op === 'offload' ? 'offloaded' : 'checkpointed'} block).`);
}

/** The vjp of one checkpointed output: rerun fn with recording on and differentiate up to its inputs. */
function recompute<A extends unknown[]>(
  fn: (...args: A) => CheckpointResult,
  args: A,
  draws: Draws,
  autocast: AutocastHook | undefined,
  saved: readonly Tensor[],
  index: number | undefined,
  original: Tensor,
  grad: Tensor,
): (Tensor | undefined)[] {
  // backward() runs vjps with grad mode on exactly when it records the backward pass (createGraph).
  const createGraph = isGradEnabled();
  const now = draws.kind === 'generators' ? snapshotGenerators() : undefined;
  if (draws.kind === 'generators') draws.atForward.restore();
  const again = (): CheckpointResult => withAutocastHook(autocast, () => enableGrad(() => fn(...args)));
  const run = (): (Tensor | undefined)[] => {
    const r = draws.kind === 'replay' ? tracing.withRematTag(draws.tag, () => withRandomReplay(draws.tensors, again)) : again();
    const outs = r instanceof Tensor ? [r] : [...r];
    const out = outs[index ?? 0];
    if (out === undefined || outs.length !== (index === undefined ? 1 : outs.length) ||
        out.shape.length !== original.shape.length || out.shape.some((d, i) => d !== original.shape[i])) {
      throw new TesseraError(`checkpoint: the recomputation returned ${out === undefined ? 'a different number of outputs' : `shape ${fmtShape(out.shape)}`} ` +
        `where the forward returned shape ${fmtShape(original.shape)}; the checkpointed function must compute the same thing each time it runs.`);
    }
    // An output that is one of the inputs, returned as is: its gradient passes straight through.
    if (saved.includes(out)) return saved.map((t) => (t === out ? grad : undefined));
    if (!out.requiresGrad) return saved.map(() => undefined);
    return gradientsUpTo(out, saved, grad, { createGraph });
  };
  try {
    // The recomputed activations live only until their gradients are computed, unless the backward
    // pass is itself being recorded (then the gradients' graph needs them) or traced.
    return createGraph || draws.kind === 'replay' ? run() : scope(run);
  } finally {
    now?.restore();
  }
}

/**
 * Runs `modules` in sequence on `x`, checkpointing them in `segments` consecutive groups (like
 * torch.utils.checkpoint.checkpoint_sequential): only the segments' boundary activations are kept.
 * The last segment is not checkpointed, since backward needs its activations straight away.
 */
export function checkpointSequential(modules: readonly ((x: Tensor) => Tensor)[], segments: number, x: Tensor): Tensor {
  if (!Number.isInteger(segments) || segments < 1) {
    throw new TesseraError(`checkpointSequential: segments must be a positive integer, got ${segments}.`);
  }
  const n = modules.length;
  const size = Math.ceil(n / Math.min(segments, Math.max(n, 1)));
  let h = x;
  for (let start = 0; start < n; start += size) {
    const group = modules.slice(start, start + size);
    const runGroup = (input: Tensor): Tensor => group.reduce((acc, f) => f(acc), input);
    h = start + size >= n ? runGroup(h) : checkpoint(runGroup, h);
  }
  return h;
}
