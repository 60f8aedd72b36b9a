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
// Inside a jvp, checkpoint simply runs fn (forward mode saves no activations). Under a tracer (jit),
// too: the traced graph's lifetimes are the memory planner's business, and a recomputation recorded
// in the graph would be merged back into the forward by common-subexpression elimination.
import { TesseraError, fmtShape } from '../core/errors.js';
import { scope } from '../core/memory.js';
import { snapshotGenerators } from '../core/random.js';
import { Tensor } from '../core/tensor.js';
import { addDispatchObserver, currentAutocastHook, withAutocastHook, type AutocastHook } from '../ops/dispatch.js';
import { detach } from '../ops/shape.js';
import { gradientsUpTo } from './backward.js';
import { forwardModeActive } from './forward.js';
import { enableGrad, isGradEnabled, noGrad } from './mode.js';
import { recordCustom } from './node.js';

// Whether a tracer is recording. The graph layer sits above autodiff, so it registers this probe when
// it loads (graph/trace.ts) rather than autodiff importing it; without the graph layer nothing traces.
let isTracing: () => boolean = () => false;
export function registerTracingProbe(probe: () => boolean): void {
  isTracing = probe;
}

/** Whether a tracer is recording (for offload.ts, which runs its block plainly then too). */
export function activeTracing(): boolean {
  return isTracing();
}

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
  // Run fn plainly when there is nothing to save memory on (no tape would be recorded), when the
  // tracer decides lifetimes, or inside a jvp (forward mode keeps no activations for backward, and
  // the tangents fn computes must outlive it).
  if (!isGradEnabled() || isTracing() || forwardModeActive()) return fn(...args);

  const generators = snapshotGenerators();
  // The recomputation runs inside backward, which suspends autocast: it must cast as the forward did.
  const autocast = currentAutocastHook();
  const inputs = new Set<Tensor>();
  const stop = addDispatchObserver({
    onPrimitive(_prim, ins) {
      for (const t of ins) if (t.requiresGrad) inputs.add(t);
    },
  });
  let result: R;
  try {
    result = scope(() => noGrad(() => {
      const r = fn(...args);
      checkResult(r);
      // Fresh tensors over the outputs' storages: the tape node goes on these, never on a tensor that
      // fn merely passed through (an input returned as is must keep its own history).
      return (Array.isArray(r) ? r.map((t: Tensor) => detach(t)) : detach(r as Tensor)) as unknown as R;
    }));
  } finally {
    stop();
  }
  const saved = [...inputs];
  if (saved.length === 0) return result;

  const outputs: Tensor[] = Array.isArray(result) ? [...(result as readonly Tensor[])] : [result as Tensor];
  outputs.forEach((out, k) => {
    recordCustom('checkpoint', saved, out, (grad) => recompute(fn, args, generators, autocast, saved, outputs.length > 1 ? k : undefined, out, grad));
  });
  return result;
}

function checkResult(r: unknown): void {
  const ok = r instanceof Tensor || (Array.isArray(r) && r.length > 0 && r.every((t) => t instanceof Tensor));
  if (!ok) {
    throw new TesseraError('checkpoint: the function must return a tensor or a non-empty array of tensors; ' +
      'return the tensors that later code uses (other values can be computed outside the checkpointed block).');
  }
}

/** The vjp of one checkpointed output: rerun fn with recording on and differentiate up to its inputs. */
function recompute<A extends unknown[]>(
  fn: (...args: A) => CheckpointResult,
  args: A,
  atForward: ReturnType<typeof snapshotGenerators>,
  autocast: AutocastHook | undefined,
  saved: readonly Tensor[],
  index: number | undefined,
  original: Tensor,
  grad: Tensor,
): (Tensor | undefined)[] {
  // backward() runs vjps with grad mode on exactly when it records the backward pass (createGraph).
  const createGraph = isGradEnabled();
  const now = snapshotGenerators();
  atForward.restore();
  const run = (): (Tensor | undefined)[] => {
    const r = withAutocastHook(autocast, () => enableGrad(() => fn(...args)));
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
    // pass is itself being recorded (then the gradients' graph needs them).
    return createGraph ? run() : scope(run);
  } finally {
    now.restore();
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
