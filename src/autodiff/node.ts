// One recorded op on the autodiff tape: enough to call its vjp rule during backward().
import type { Tensor } from '../core/tensor.js';
import type { PrimitiveAttrs, PrimitiveName } from '../ops/primitives.js';

let nextNodeId = 1;

export class GradNode<P extends PrimitiveName = PrimitiveName> {
  readonly id = nextNodeId++;
  /** Set once backward() ran through this node without retainGraph: its saved tensors are gone. */
  freed = false;
  /** Storage versions of the inputs and the output when the op ran (see Storage.version). */
  readonly savedVersions: number[];
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
}
