// The backward pass in two halves, for zero-bubble pipeline schedules (Qi et al. 2024,
// arXiv:2401.10241 §2): B computes the gradients with respect to given inputs (a pipeline stage's
// received activation) so they can be sent upstream at once; W, run later, computes every other
// leaf's gradient (the stage's parameters) into .grad and frees the graph.
//
// Together they run each node's vjp once, as one backward() would. B walks only the nodes between
// the root and the inputs and asks their rules for the input-side gradients alone (matmul then
// skips its weight GEMM, which is W's work). Of a node that also has weight-side inputs, B keeps
// the output's cotangent (and any weight-side gradient the rule returned anyway, such as add's);
// W finishes those gradients from the kept cotangents and walks the weight-only nodes (Wᵀ, a
// bias's expand). Between the two, the graph keeps what W needs: the nodes B will not revisit are
// freed by B. A custom node (checkpoint, cond) returns all its gradients at once, so its weight
// gradients are computed in B (and stored in W). A rule that ignores the mask and drops what was
// not asked for (attention's) runs again in W if one of its own inputs is on the weight side.
//
// Memory as in backward(): the cotangents only the two halves made and saw are disposed as soon as
// each is used (cotangent-owner.ts): B's as it walks, the ones it keeps for W (a mixed node's
// output cotangent, weight-side gradients B's rule returned) when W has used them. What B returns
// and what a hook saw belong to the caller.
import type { Tensor } from '../core/tensor.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import type { GradNode } from './node.js';
import { noGrad } from './mode.js';
import { onesLike } from '../ops/creation.js';
import { innermostDispatchObserver, withAutocastHook } from '../ops/dispatch.js';
import { CotangentOwner } from './cotangent-owner.js';
import { checkNotModified, depositGrad, freeNode, runNodeVjp, topoOrder } from './backward.js';
import { checkGradShape } from './hooks.js';

export interface SplitBackward {
  /** The root's gradients with respect to the inputs (undefined where no path leads), as gradientsUpTo gives them. */
  readonly inputGrads: readonly (Tensor | undefined)[];
  /** Adds the gradients of every other leaf that requires grad to its .grad and frees the graph. Call once. */
  weights(): void;
}

/** What W needs of a node that has inputs on both sides. */
interface Kept {
  /** The cotangent of the node's output, when W must still run the rule on it (then held for W). */
  grad: Tensor | undefined;
  /** Weight-side gradients B's rule already returned. */
  done: (Tensor | undefined)[];
  /** Weight-side inputs W must still ask the rule for (then the node is kept intact until W). */
  missing: boolean[];
  inputs: Tensor[];
}

function assertUsable(node: GradNode): void {
  if (node.freed || node.output === undefined) {
    throw new TesseraError(`backwardSplit: trying to run backward through the graph a second time (op '${node.opName}'); its saved tensors were freed. ` +
      'Run the forward pass again, or pass { retainGraph: true } to the earlier backward().');
  }
}

/**
 * Runs B now: the gradients of `root` with respect to `inputs` (treated as leaves, as in
 * gradientsUpTo; nothing is added to their .grad). The returned `weights()` runs W: the rest of
 * the backward pass, into .grad. `gradient` defaults to ones for a one-element root. Between the
 * two calls the graph must not be used by another backward pass.
 */
export function backwardSplit(root: Tensor, inputs: readonly Tensor[], gradient?: Tensor): SplitBackward {
  root.assertAlive('backwardSplit');
  if (!root.requiresGrad) {
    throw new TesseraError(`backwardSplit: the tensor (shape ${fmtShape(root.shape)}) does not require grad and has no grad function; ` +
      'make sure some input or parameter has requiresGrad = true and that the computation did not run under noGrad.');
  }
  if (gradient === undefined && root.size !== 1) {
    throw new TesseraError(`backwardSplit: a gradient can be implied only for one-element outputs; this one has shape ${fmtShape(root.shape)}. Pass the gradient.`);
  }
  // Disposes the cotangents only this pass made and saw (taken before the seed is made: it is one).
  const owner = new CotangentOwner(innermostDispatchObserver() === undefined);
  const seed = gradient ?? onesLike(root);
  checkGradShape(root, seed, 'the gradient');
  // Like backward(), vjp rules run without recording and without autocast.
  const quietly = <T>(fn: () => T): T => withAutocastHook(undefined, () => noGrad(fn));
  const targets = new Set(inputs);
  let ranW = false;
  const once = (w: () => void) => (): void => {
    if (ranW) throw new TesseraError('backwardSplit: weights() was already called; it frees the graph, so it runs once per backward pass.');
    ranW = true;
    quietly(w);
  };
  const hooked = (t: Tensor, g: Tensor): Tensor => owner.hooked(t, g);
  const accumulate = (cot: Map<Tensor, Tensor>, x: Tensor, g: Tensor): void => owner.accumulate(cot, x, g);
  /** Runs a node's rule; the result list holds a reference to each gradient until `release`. */
  const runRule = (node: GradNode, g: Tensor, needs: readonly boolean[], lastUse: boolean): (Tensor | undefined)[] => {
    const grads = owner.runRule(() => runNodeVjp(node, g, needs, lastUse));
    for (const gi of grads) if (gi !== undefined) owner.hold(gi);
    return grads;
  };
  const release = (grads: readonly (Tensor | undefined)[]): void => {
    for (const gi of grads) if (gi !== undefined) owner.release(gi);
  };

  if (root.gradNode === undefined) {
    const g = quietly(() => hooked(root, seed));
    owner.escape(g);
    if (targets.has(root)) return { inputGrads: inputs.map((x) => (x === root ? g : undefined)), weights: once(() => {}) };
    return { inputGrads: inputs.map(() => undefined), weights: once(() => depositGrad(root, g, false)) };
  }

  const order = topoOrder(root.gradNode, targets);
  // The nodes between the root and the inputs (children come first in `order`).
  const onPath = new Set<GradNode>();
  const leadsToInput = (x: Tensor): boolean => targets.has(x) || (x.gradNode !== undefined && onPath.has(x.gradNode));
  for (const node of order) if (node.inputs.some((x, i) => node.needsGrad[i] && leadsToInput(x))) onPath.add(node);
  const weightSideOf = (node: GradNode): boolean[] => node.inputs.map((x, i) => node.needsGrad[i]! && !leadsToInput(x));
  // The seed is B's when a path leads from the root to an input, else the whole pass is W's.
  const rootOnPath = onPath.has(root.gradNode);
  owner.hold(seed);

  // ---- B ----
  const kept = new Map<GradNode, Kept>();
  const inputGrads = quietly(() => {
    const cot = new Map<Tensor, Tensor>(rootOnPath ? [[root, seed]] : []);
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k]!;
      if (!onPath.has(node)) continue;
      assertUsable(node);
      const out = node.output!;
      const weightSide = weightSideOf(node);
      const held = cot.get(out);
      cot.delete(out);
      const done: (Tensor | undefined)[] = [];
      let g: Tensor | undefined;
      if (held !== undefined) {
        checkNotModified(node);
        g = hooked(out, held);
        if (out.retainsGrad) depositGrad(out, g, false);
        const inputSide = node.inputs.map((x, i) => node.needsGrad[i]! && !weightSide[i]!);
        const grads = runRule(node, g, inputSide, false);
        node.inputs.forEach((x, i) => {
          const gi = grads[i];
          if (!node.needsGrad[i] || gi === undefined) return;
          checkGradShape(x, gi, `the vjp of '${node.opName}' produced a gradient for input ${i} that`);
          if (weightSide[i]) {
            done[i] = gi;
            owner.hold(gi); // W's reference
          } else accumulate(cot, x, gi);
        });
        release(grads);
      }
      const missing = weightSide.map((w, i) => w && g !== undefined && done[i] === undefined);
      const needsRule = missing.some(Boolean);
      if (needsRule) owner.hold(g!); // W runs the rule on it
      if (weightSide.some(Boolean)) kept.set(node, { grad: needsRule ? g : undefined, done, missing, inputs: [...node.inputs] });
      if (held !== undefined) owner.release(held);
      if (!needsRule) freeNode(node);
    }
    const grads = inputs.map((x) => {
      const g = cot.get(x);
      if (g === undefined) return undefined;
      cot.delete(x);
      const out = hooked(x, g);
      owner.escape(out); // the caller's now
      return out;
    });
    for (const left of cot.values()) owner.release(left);
    return grads;
  });

  // ---- W ----
  const weights = once(() => {
    const cot = new Map<Tensor, Tensor>(rootOnPath ? [] : [[root, seed]]);
    for (let k = order.length - 1; k >= 0; k--) {
      const node = order[k]!;
      const mixed = kept.get(node);
      if (mixed !== undefined) {
        let computed: (Tensor | undefined)[] = [];
        if (mixed.grad !== undefined) {
          checkNotModified(node);
          computed = runRule(node, mixed.grad, mixed.missing, true);
        }
        mixed.inputs.forEach((x, i) => {
          const gi = mixed.done[i] ?? (mixed.missing[i] ? computed[i] : undefined);
          if (gi === undefined) return;
          checkGradShape(x, gi, `the vjp of '${node.opName}' produced a gradient for input ${i} that`);
          accumulate(cot, x, gi);
        });
        release(computed);
        release(mixed.done);
        if (mixed.grad !== undefined) owner.release(mixed.grad);
      } else if (!onPath.has(node)) {
        // A weight-only node (Wᵀ, a bias's expand, a cast of a weight): the plain backward step.
        assertUsable(node);
        const out = node.output!;
        const held = cot.get(out);
        cot.delete(out);
        if (held === undefined) { freeNode(node); continue; }
        checkNotModified(node);
        const g = hooked(out, held);
        if (out.retainsGrad) depositGrad(out, g, false);
        const grads = runRule(node, g, node.needsGrad, true);
        node.inputs.forEach((x, i) => {
          const gi = grads[i];
          if (!node.needsGrad[i] || gi === undefined) return;
          checkGradShape(x, gi, `the vjp of '${node.opName}' produced a gradient for input ${i} that`);
          accumulate(cot, x, gi);
        });
        release(grads);
        owner.release(held);
      }
      freeNode(node);
    }
    // What is left are the leaves' gradients (every other tensor's was consumed by its node).
    for (const [x, g] of cot) {
      if (x.gradNode === undefined) depositGrad(x, hooked(x, g), false);
      owner.release(g);
    }
  });
  return { inputGrads, weights };
}
