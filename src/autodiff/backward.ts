// Reverse mode: backward() walks the tape from a tensor to the leaves in reverse topological order,
// calling each node's vjp rule and accumulating cotangents, with PyTorch's semantics (grads add up
// in .grad until zeroed; the graph is freed unless retainGraph; createGraph records the backward
// pass itself so it can be differentiated again).
import { Tensor } from '../core/tensor.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import { keep } from '../core/memory.js';
import type { GradNode } from './node.js';
import { enableGrad, noGrad } from './mode.js';
import { vjpRules } from './vjp-rules.js';
import { onesLike } from '../ops/creation.js';
import { add, cast } from '../ops/elementwise.js';
import { detach } from '../ops/shape.js';
import { innermostDispatchObserver, withAutocastHook } from '../ops/dispatch.js';
import { CotangentOwner } from './cotangent-owner.js';
import { checkGradShape } from './hooks.js';

export interface BackwardOptions {
  /** Keep the graph so backward can run through it again. */
  retainGraph?: boolean;
  /** Record the backward computation, for gradients of gradients. Implies retainGraph by default. */
  createGraph?: boolean;
}

interface InternalOptions extends BackwardOptions {
  /** Return the gradients of these tensors instead of accumulating into any .grad (torch.autograd.grad). */
  capture?: readonly Tensor[];
  /**
   * Treat these tensors as leaves: do not walk into the ops that made them. checkpoint() uses it to
   * differentiate a recomputed block up to the block's inputs without touching the outer graph.
   */
  boundary?: ReadonlySet<Tensor>;
}

// The walk's helpers are exported for split-backward.ts, which runs the same walk in two halves.

/** Nodes reachable from `root`, children before parents (so reversed, it is a valid processing order). */
export function topoOrder(root: GradNode, boundary: ReadonlySet<Tensor> | undefined): GradNode[] {
  const order: GradNode[] = [];
  const visited = new Set<GradNode>();
  const stack: [GradNode, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1]++;
      const x = node.inputs[i]!;
      const child = x.gradNode;
      if (child !== undefined && !visited.has(child) && node.needsGrad[i] && boundary?.has(x) !== true) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(node);
      stack.pop();
    }
  }
  return order;
}

/** Stores a finished gradient on a leaf (or a retainsGrad tensor), adding to what is there. */
export function depositGrad(t: Tensor, g: Tensor, createGraph: boolean): void {
  const value = createGraph ? g : detach(g);
  const prev = t._peekGrad();
  const next = prev === undefined ? (value.dtype === t.dtype ? value : cast(value, t.dtype)) : add(prev, value);
  // Outside a trace and createGraph, the objects made here are this function's own: .grad is a
  // view that keeps their memory, so they go now, as does a previous .grad nobody saw (tensor.ts).
  const tidy = !createGraph && innermostDispatchObserver() === undefined;
  t._replaceGrad(keep(createGraph ? next : detach(next)), tidy);
  if (tidy) {
    value.dispose();
    if (next !== value) next.dispose();
  }
  for (const h of t.postAccumulateHooks) h(t);
}

/**
 * Runs a node's vjp on its output's cotangent `g`: a primitive's rule computes the gradients of
 * the inputs `needs` marks; a custom vjp (checkpoint, offload, cond) returns all of its inputs'.
 * `lastUse`: no later backward will run through this node.
 */
export function runNodeVjp(node: GradNode, g: Tensor, needs: readonly boolean[], lastUse: boolean): (Tensor | undefined)[] {
  if (node.custom !== undefined) return node.custom.vjp!(g, { lastUse });
  const rule = vjpRules[node.prim] as (g: Tensor, i: readonly Tensor[], o: Tensor, a: unknown, needs: readonly boolean[]) => (Tensor | undefined)[];
  return rule(g, node.inputs, node.output!, node.attrs, needs);
}

/** Drops what a node saved for backward, after its last use. */
export function freeNode(node: GradNode): void {
  node.freed = true;
  node.inputs = [];
  node.output = undefined;
  // A custom vjp closes over its saved tensors; dropping it frees them too.
  if (node.custom !== undefined) node.custom.vjp = undefined;
}

/** Refuses to differentiate an op whose inputs or output were overwritten in place after it ran. */
export function checkNotModified(node: GradNode): void {
  const saved = [...node.inputs, ...(node.output === undefined ? [] : [node.output])];
  saved.forEach((t, i) => {
    if (t.storage.version === node.savedVersions[i]) return;
    const which = i < node.inputs.length ? `input ${i}` : 'output';
    throw new TesseraError(`backward: ${which} of '${node.opName}' (shape ${fmtShape(t.shape)}, ${t.dtype}) was modified in place (copy_/fill_) ` +
      'after the op used it, so its gradient would be computed from the new values. Modify a clone() instead, or finish backward first.');
  });
}

/**
 * Computes the gradient of `root` with respect to every leaf that requires grad and adds it to
 * their `.grad`. `gradient` defaults to ones for a one-element root (the usual scalar loss).
 */
export function backward(root: Tensor, gradient?: Tensor, opts: BackwardOptions = {}): void {
  runBackward(root, gradient, opts);
}

/**
 * The gradients of `root` with respect to `inputs` (leaves or intermediate tensors), returned
 * instead of accumulated into .grad (like torch.autograd.grad). Missing paths give undefined.
 */
export function gradientsOf(root: Tensor, inputs: readonly Tensor[], gradient?: Tensor, opts: BackwardOptions = {}): (Tensor | undefined)[] {
  const captured = runBackward(root, gradient, { ...opts, capture: inputs });
  return inputs.map((x) => captured.get(x));
}

/**
 * The gradients of `root` with respect to `inputs`, walking only the ops between them: `inputs` are
 * treated as leaves even when an op made them (their own producers are neither run nor freed).
 * For checkpoint(): the recomputed block is differentiated up to the block's inputs, and the outer
 * graph is left to the outer backward.
 */
export function gradientsUpTo(root: Tensor, inputs: readonly Tensor[], gradient: Tensor, opts: BackwardOptions = {}): (Tensor | undefined)[] {
  const captured = runBackward(root, gradient, { ...opts, capture: inputs, boundary: new Set(inputs) });
  return inputs.map((x) => captured.get(x));
}

function runBackward(root: Tensor, gradient: Tensor | undefined, opts: InternalOptions): Map<Tensor, Tensor> {
  const createGraph = opts.createGraph ?? false;
  const retainGraph = opts.retainGraph ?? createGraph;
  const capture = opts.capture === undefined ? undefined : new Set(opts.capture);
  const boundary = opts.boundary;
  /** A tensor whose gradient is final once its consumers ran: a true leaf, or one on the boundary. */
  const endsWalk = (x: Tensor): boolean => x.gradNode === undefined || boundary?.has(x) === true;
  const captured = new Map<Tensor, Tensor>();
  // Disposes the cotangents only this walk made and saw, once it is done with each (before the seed is made: it is one).
  const owner = new CotangentOwner(!createGraph && innermostDispatchObserver() === undefined);
  /** A tensor's gradient is complete: capture it, or store it in .grad. */
  const finish = (t: Tensor, g: Tensor, isLeaf: boolean): void => {
    if (capture !== undefined) {
      if (capture.has(t)) {
        captured.set(t, g);
        owner.escape(g);
      }
    } else if (isLeaf || t.retainsGrad) depositGrad(t, g, createGraph);
  };
  const hooked = (t: Tensor, g: Tensor): Tensor => owner.hooked(t, g);
  root.assertAlive('backward');
  if (!root.requiresGrad && opts.capture !== undefined) return captured;
  if (!root.requiresGrad) {
    throw new TesseraError(`backward: the tensor (shape ${fmtShape(root.shape)}) does not require grad and has no grad function; ` +
      'make sure some input has requiresGrad = true and that the computation did not run under noGrad.');
  }
  let seed = gradient;
  if (seed === undefined) {
    if (root.size !== 1) {
      throw new TesseraError(`backward: a gradient can be implied only for one-element outputs; this one has shape ${fmtShape(root.shape)}. ` +
        'Pass the gradient (e.g. onesLike(out)) or reduce the output first (e.g. out.sum()).');
    }
    seed = onesLike(root);
  }
  checkGradShape(root, seed, 'the gradient');

  const run = (): void => {
    if (root.gradNode === undefined) {
      owner.hold(seed!);
      finish(root, hooked(root, seed!), true);
      owner.release(seed!);
      return;
    }
    const cot = new Map<Tensor, Tensor>();
    cot.set(root, seed!);
    owner.hold(seed!);
    const order = topoOrder(root.gradNode, boundary);
    // How many pending consumers each leaf still has: a leaf's grad is final when it reaches zero,
    // which is when its hooks run (so gradient communication can start during backward).
    const pending = new Map<Tensor, number>();
    for (const node of order) node.inputs.forEach((x, i) => {
      if (node.needsGrad[i] && endsWalk(x)) pending.set(x, (pending.get(x) ?? 0) + 1);
    });
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k]!;
      const out = node.output;
      if (node.freed || out === undefined) {
        throw new TesseraError(`backward: trying to run backward through the graph a second time (op '${node.opName}'); its saved tensors were freed. ` +
          'Pass { retainGraph: true } to the first backward() if you need to call it again.');
      }
      // The walk's reference to the output's cotangent moves from `cot` to `held`.
      const held = cot.get(out);
      cot.delete(out);
      const inputs = node.inputs;
      if (held !== undefined) {
        checkNotModified(node);
        const g = hooked(out, held);
        finish(out, g, false);
        const grads = owner.runRule(() => runNodeVjp(node, g, node.needsGrad, !retainGraph));
        for (const gi of grads) if (gi !== undefined) owner.hold(gi); // the result list's references
        inputs.forEach((x, i) => {
          const gi = grads[i];
          if (!node.needsGrad[i] || gi === undefined) return;
          checkGradShape(x, gi, `the vjp of '${node.opName}' produced a gradient for input ${i} that`);
          owner.accumulate(cot, x, gi);
        });
        for (const gi of grads) if (gi !== undefined) owner.release(gi);
        owner.release(held);
      }
      inputs.forEach((x, i) => {
        if (!node.needsGrad[i] || !endsWalk(x)) return;
        const left = pending.get(x)! - 1;
        pending.set(x, left);
        if (left === 0) {
          const gx = cot.get(x);
          cot.delete(x);
          if (gx !== undefined) {
            finish(x, hooked(x, gx), x.gradNode === undefined);
            owner.release(gx);
          }
        }
      });
      if (!retainGraph) freeNode(node);
    }
    for (const left of cot.values()) owner.release(left);
  };
  // vjp rules run without autocast: each computes in the dtypes its forward op recorded (a cast's
  // rule casts the cotangent back), as PyTorch's backward does (see src/quant/autocast.ts).
  withAutocastHook(undefined, () => (createGraph ? enableGrad(run) : noGrad(run)));
  return captured;
}

declare module '../core/tensor.js' {
  interface Tensor {
    backward(gradient?: Tensor, opts?: BackwardOptions): void;
    /** Registers a hook called with this tensor's gradient during backward; it may return a replacement. Returns a remover. */
    registerHook(hook: (grad: Tensor) => Tensor | void): () => void;
    /** Registers a hook called on a leaf right after its .grad was accumulated. Returns a remover. */
    registerPostAccumulateGradHook(hook: (t: Tensor) => void): () => void;
    /** Keep .grad on this non-leaf tensor during backward. */
    retainGrad(): this;
  }
}

const P = Tensor.prototype;
P.backward = function (g, o) { backward(this, g, o); };
P.registerHook = function (hook) {
  if (!this.requiresGrad) throw new TesseraError("registerHook: cannot register a hook on a tensor that doesn't require gradient.");
  this.hooks.push(hook);
  return () => { const i = this.hooks.indexOf(hook); if (i >= 0) this.hooks.splice(i, 1); };
};
P.registerPostAccumulateGradHook = function (hook) {
  if (!this.isLeaf) throw new TesseraError('registerPostAccumulateGradHook: only leaf tensors accumulate gradients.');
  this.postAccumulateHooks.push(hook);
  return () => { const i = this.postAccumulateHooks.indexOf(hook); if (i >= 0) this.postAccumulateHooks.splice(i, 1); };
};
P.retainGrad = function () { this.retainsGrad = true; return this; };
