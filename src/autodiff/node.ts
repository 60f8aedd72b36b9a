// One recorded op on the autodiff tape: enough to call its vjp rule during backward(). Most nodes
// are primitives (their rule is in vjp-rules.ts); a custom node (recordCustom) carries its own vjp
// closure, for ops the tape cannot see inside of, such as a traced `cond` whose branches are graphs.
import type { Tensor } from '../core/tensor.js';
import type { PrimitiveAttrs, PrimitiveName } from '../ops/primitives.js';

let nextNodeId = 1;

/**
 * A custom node's backward: the cotangent of its output → one gradient per input (undefined = none).
 * `info.lastUse` is true when backward frees the graph after this call (no retainGraph): what the
 * node keeps only for its backward can be released then.
 */
export type CustomVjp = (grad: Tensor, info: { lastUse: boolean }) => (Tensor | undefined)[];

export class GradNode<P extends PrimitiveName = PrimitiveName> {
  readonly id = nextNodeId++;
  /** Set once backward() ran through this node without retainGraph: its saved tensors are gone. */
  freed = false;
  /** Storage versions of the inputs and the output when the op ran (see Storage.version). */
  readonly savedVersions: number[];
  /** For a custom node: its name (shown as gradFn and in errors) and vjp; the vjp is dropped when the graph is freed. */
  custom: { name: string; vjp: CustomVjp | undefined } | undefined = undefined;
  constructor(
    readonly prim: P,
    /** The op's inputs (saved for the vjp rule; emptied when the graph is freed). */
    public inputs: Tensor[],
    readonly attrs: PrimitiveAttrs[P],
    /** The op's output (some rules use it, e.g. exp's derivative is its output). */
    public output: Tensor | undefined,
    /** Which inputs need a gradient. */
    readonly needsGrad: boolean[],
  ) {
    this.savedVersions = [...inputs, ...(output === undefined ? [] : [output])].map((t) => t.storage.version);
  }

  /** The op's name: the primitive, or a custom node's own name. */
  get opName(): string {
    return this.custom?.name ?? this.prim;
  }
}

/**
 * Records `output = op(inputs)` on the tape with `vjp` as its backward (when some input requires
 * grad): backward() calls vjp(cotangent of output) and routes its i-th result to inputs[i].
 * retainGraph, createGraph (vjp runs with grad mode on, so it may be differentiated again), hooks
 * and freeing behave as for primitives. For several outputs, record one node per output.
 * Returns whether a node was recorded.
 */
export function recordCustom(name: string, inputs: readonly Tensor[], output: Tensor, vjp: CustomVjp): boolean {
  const needsGrad = inputs.map((t) => t.requiresGrad);
  if (!needsGrad.some(Boolean)) return false;
  output._setRequiresGradFromOp(true);
  // The node's prim is never used to look up a rule: backward() calls `custom.vjp` instead.
  const node = new GradNode('add', [...inputs], {} as PrimitiveAttrs['add'], output, needsGrad);
  node.custom = { name, vjp };
  output.gradNode = node;
  return true;
}
