// Runs blocks whose forward and backward passes communicate (tensor-parallel blocks, the
// expert-parallel MoE layer) in sequence with ordinary modules every rank runs whole. Autodiff is
// synchronous and the collectives are not, so each block cuts its own computation at its
// collectives into separately differentiated pieces; between blocks, the stack cuts the
// activation into a fresh leaf, so each block's backward pass can finish, with its collectives,
// before the previous block's starts. Forward and backward are awaited. Blocks and the stack keep
// each forward pass's state under its output, so several passes may be in flight (a pipeline
// stage runs several micro-batches' forward passes before their backward passes).
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
   * Called, with the output of one of its forward passes, after autodiff has run back through
   * the block's last piece from that output: runs the earlier pieces' backward passes, with
   * their collectives, so that that pass's x.grad is complete.
   */
  finishBackward(output: Tensor): Promise<void>;
}

/** The state a block keeps for each forward pass in flight, found again by the pass's output. */
export class PassStates<S> {
  private readonly states = new Map<Tensor, S>();
  constructor(private readonly who: string) {}
  keep(output: Tensor, state: S): Tensor {
    this.states.set(output, state);
    return output;
  }
  take(output: Tensor): S {
    const s = this.states.get(output);
    if (s === undefined) throw new TesseraError(`${this.who}: finishBackward() for an output this block did not produce (or already finished).`);
    this.states.delete(output);
    return s;
  }
}

/** A module every rank runs whole (embeddings, final norms, heads): no communication. */
class ReplicatedBlock implements ParallelBlock {
  constructor(readonly module: AnyModule) {}
  parameters(): Parameter[] { return this.module.parameters(); }
  async forward(x: Tensor): Promise<Tensor> { return this.module.call(x) as Tensor; }
  async finishBackward(): Promise<void> {}
}

/** One forward pass of a stack: every block's input leaf and output. */
interface StackPass {
  inputs: Tensor[];
  outputs: Tensor[];
}

/** Blocks (and modules every rank runs whole) in sequence; see the top of the file. */
export class ParallelStack {
  readonly blocks: readonly ParallelBlock[];
  private readonly passes = new Map<Tensor, StackPass>();

  constructor(blocks: readonly (ParallelBlock | AnyModule)[]) {
    this.blocks = blocks.map((b) => ('finishBackward' in b ? b : new ReplicatedBlock(b as AnyModule)));
  }

  /** Every rank's own parameters: its slices, and the replicated ones. */
  parameters(): Parameter[] {
    return this.blocks.flatMap((b) => b.parameters());
  }

  async forward(x: Tensor): Promise<Tensor> {
    const pass: StackPass = { inputs: [], outputs: [] };
    let h = x;
    for (const block of this.blocks) {
      // Token ids (integers) enter as they are; activations are cut into fresh leaves.
      const input = h.dtype === 'int32' || h.dtype === 'bool' || h.dtype === 'int8' || h.dtype === 'uint8' ? h : cut(h);
      const output = await block.forward(input);
      pass.inputs.push(input);
      pass.outputs.push(output);
      h = output;
    }
    this.passes.set(h, pass);
    return h;
  }

  /** Back from `loss` (computed from one forward pass's result) through every block; returns that pass's input gradient (none for token ids). */
  async backward(loss: Tensor, output?: Tensor): Promise<Tensor | undefined> {
    const pass = this.passOf(output);
    // The loss may also reach into an earlier block's graph directly (an MoE layer's
    // load-balancing loss uses its router's probabilities): keep the graph for the second pass
    // that block's output gradient makes through the same nodes.
    backward(loss, undefined, { retainGraph: true });
    return this.finish(pass);
  }

  /** Back from the gradient of a forward pass's result (a pipeline stage's way in); returns its input's gradient. */
  async backwardFrom(output: Tensor, gradient: Tensor): Promise<Tensor | undefined> {
    const pass = this.passOf(output);
    backward(output, gradient);
    return this.finish(pass);
  }

  /** The pass that produced `output`, or the only one in flight. */
  private passOf(output: Tensor | undefined): StackPass {
    const key = output ?? (this.passes.size === 1 ? [...this.passes.keys()][0] : undefined);
    if (key === undefined) {
      throw new TesseraError(this.passes.size === 0 ? 'ParallelStack.backward: call forward first.'
        : `ParallelStack.backward: ${this.passes.size} forward passes are in flight; say which by passing its output.`);
    }
    const pass = this.passes.get(key);
    if (pass === undefined) throw new TesseraError('ParallelStack.backward: that output does not come from a forward pass in flight.');
    this.passes.delete(key);
    return pass;
  }

  private async finish(pass: StackPass): Promise<Tensor | undefined> {
    for (let i = this.blocks.length - 1; i >= 0; i--) {
      await this.blocks[i]!.finishBackward(pass.outputs[i]!);
      if (i > 0) backward(pass.outputs[i - 1]!, pass.inputs[i]!.grad!);
    }
    return pass.inputs[0]!.grad;
  }
}
