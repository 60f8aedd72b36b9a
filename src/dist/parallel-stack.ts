// Runs blocks whose forward and backward passes communicate (tensor-parallel blocks, the
// expert-parallel MoE layer) in sequence with ordinary modules every rank runs whole. Autodiff is
// synchronous and the collectives are not, so each block cuts its own computation at its
// collectives into separately differentiated pieces; between blocks, the stack cuts the
// activation into a fresh leaf, so each block's backward pass can finish, with its collectives,
// before the previous block's starts. Forward and backward are awaited.
import type { Tensor } from '../core/tensor.js';
import { backward } from '../autodiff/backward.js';
import { TesseraError } from '../core/errors.js';
import type { AnyModule, Parameter } from '../nn/module.js';
import { cut } from './tensor-sync.js';

/** A block whose passes may communicate: the unit ParallelStack runs. */
export interface ParallelBlock {
  parameters(): Parameter[];
  /** `x` is a leaf that requires grad; the result stays connected to the block's last piece. */
  forward(x: Tensor): Promise<Tensor>;
  /**
   * Called after autodiff has run back through the block's last piece (from its output): runs
   * the earlier pieces' backward passes, with their collectives, so that x.grad is complete.
   */
  finishBackward(): Promise<void>;
}

/** A module every rank runs whole (embeddings, final norms, heads): no communication. */
class ReplicatedBlock implements ParallelBlock {
  constructor(readonly module: AnyModule) {}
  parameters(): Parameter[] { return this.module.parameters(); }
  async forward(x: Tensor): Promise<Tensor> { return this.module.call(x) as Tensor; }
  async finishBackward(): Promise<void> {}
}

/** Blocks (and modules every rank runs whole) in sequence; see the top of the file. */
export class ParallelStack {
  readonly blocks: readonly ParallelBlock[];
  private inputs: Tensor[] = [];
  private outputs: Tensor[] = [];

  constructor(blocks: readonly (ParallelBlock | AnyModule)[]) {
    this.blocks = blocks.map((b) => ('finishBackward' in b ? b : new ReplicatedBlock(b as AnyModule)));
  }

  /** Every rank's own parameters: its slices, and the replicated ones. */
  parameters(): Parameter[] {
    return this.blocks.flatMap((b) => b.parameters());
  }

  async forward(x: Tensor): Promise<Tensor> {
    this.inputs = [];
    this.outputs = [];
    let h = x;
    for (const block of this.blocks) {
      // Token ids (integers) enter as they are; activations are cut into fresh leaves.
      const input = h.dtype === 'int32' || h.dtype === 'bool' || h.dtype === 'int8' || h.dtype === 'uint8' ? h : cut(h);
      const output = await block.forward(input);
      this.inputs.push(input);
      this.outputs.push(output);
      h = output;
    }
    return h;
  }

  /** Back from `loss` (computed from forward's result) through every block; returns the input's gradient (none for token ids). */
  async backward(loss: Tensor): Promise<Tensor | undefined> {
    if (this.outputs.length === 0) throw new TesseraError('ParallelStack.backward: call forward first.');
    backward(loss);
    for (let i = this.blocks.length - 1; i >= 0; i--) {
      await this.blocks[i]!.finishBackward();
      if (i > 0) backward(this.outputs[i - 1]!, this.inputs[i]!.grad!);
    }
    const g = this.inputs[0]!.grad;
    this.inputs = [];
    this.outputs = [];
    return g;
  }
}
