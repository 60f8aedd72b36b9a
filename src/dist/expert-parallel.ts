// Expert parallelism for mixture-of-experts layers (GShard, Lepikhin et al. 2020; DeepSpeed-MoE;
// Megatron-Core): every rank routes its own tokens with a replicated router, but holds only
// E/W of the experts (rank r: experts [r·E/W, (r+1)·E/W)). Each token's k chosen slots travel
// to the ranks holding their experts by an all-to-all (dispatch), are run there, and come back
// by a second all-to-all (combine), where they are weighted by the gates and summed, as nn.MoE
// does on one process. The backward pass runs the same two exchanges in reverse.
//
// Like the tensor-parallel blocks, the layer is a ParallelBlock: its graph is cut at the two
// exchanges, so forward and backward are awaited (run it in a ParallelStack). After backward,
// syncGradients() averages the router's gradients over the ranks and scales the experts' (each
// got the contributions of every rank's tokens) to the average a data-parallel run would have.
//
// Capacity follows nn.MoE over the whole group's tokens: C = ⌈capacityFactor · N · k / E⌉ with N
// all ranks' tokens, first choices served before second choices, in token order (rank 0's tokens
// first). Every rank all-gathers the (small) expert choices to decide which of its slots are
// served, so the result is nn.MoE's on the concatenated batch. The same choices give the whole
// batch's first-choice fractions for the auxiliary load-balancing loss (auxLoss).
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { backward } from '../autodiff/backward.js';
import type { MoE, RoutingStats } from '../nn/layers/moe.js';
import { routeTopK } from '../nn/layers/moe.js';
import type { AnyModule, Parameter } from '../nn/module.js';
import { fromValues, tensor, zeros } from '../ops/creation.js';
import { mul } from '../ops/elementwise.js';
import { indexSelect, scatterAdd } from '../ops/indexing.js';
import { sum } from '../ops/reduce.js';
import { softmax } from '../ops/nn/index.js';
import { expand, reshape } from '../ops/shape.js';
import { PassStates, type ParallelBlock } from './parallel-stack.js';
import type { ProcessGroup } from './process-group.js';
import { averageGradients, commDType } from './tensor-sync.js';
import { allocArray, type CommArray } from './types.js';

/** What the layer keeps between its forward and backward passes. */
interface Exchange {
  /** This rank's token slots, in send order (a graph from the input). */
  dispatched: Tensor;
  /** The slots received for this rank's experts (a leaf). */
  received: Tensor;
  /** The experts' outputs for the received slots (a graph from `received`). */
  expertOut: Tensor;
  /** The experts' outputs for this rank's slots, back home (a leaf). */
  returned: Tensor;
  /** Slots sent to / received from each rank. */
  sendCounts: number[];
  recvCounts: number[];
}

export class ExpertParallelMoE implements ParallelBlock {
  private readonly passes = new PassStates<Exchange>('ExpertParallelMoE');
  /** What the last forward pass routed over the whole group (the same on every rank). */
  lastRouting: RoutingStats | undefined = undefined;
  /**
   * This rank's part of Switch's load-balancing loss over the whole batch, E · Σᵢ fᵢ · Pᵢ (fᵢ the
   * whole batch's first-choice fraction of expert i, Pᵢ its mean router probability), scaled by
   * the group size: the ranks' values average to nn.MoE's auxLoss on the whole batch, and their
   * router gradients, averaged by syncGradients(), to its gradient. Add weight × auxLoss to the
   * rank's loss, as withAuxLoss does on one process.
   */
  auxLoss: Tensor | undefined = undefined;

  private constructor(
    readonly group: ProcessGroup,
    readonly router: AnyModule,
    /** This rank's experts, by global index. */
    readonly experts: ReadonlyMap<number, AnyModule>,
    readonly numExperts: number,
    readonly topK: number,
    readonly dim: number,
    readonly capacityFactor: number,
  ) {}

  /**
   * The expert-parallel form of `moe` (every rank builds the same MoE, e.g. with the same seed):
   * its router (replicated) and this rank's E/W experts, used as they are.
   */
  static fromModule(moe: MoE, group: ProcessGroup): ExpertParallelMoE {
    const E = moe.numExperts, W = group.size;
    if (E % W !== 0) throw new TesseraError(`ExpertParallelMoE: ${E} experts do not split over ${W} ranks; use a multiple of the group size.`);
    const per = E / W;
    const experts = new Map<number, AnyModule>();
    for (let e = group.rank * per; e < (group.rank + 1) * per; e++) experts.set(e, moe.experts.get(e) as AnyModule);
    return new ExpertParallelMoE(group, moe.router, experts, E, moe.topK, moe.dim, moe.capacityFactor);
  }

  /** The router's parameters (replicated) and this rank's experts'. */
  parameters(): Parameter[] {
    return [...this.router.parameters(), ...[...this.experts.values()].flatMap((m) => m.parameters())];
  }

  private ownerOf(expert: number): number {
    return Math.floor(expert / (this.numExperts / this.group.size));
  }

  async forward(x: Tensor): Promise<Tensor> {
    if (x.shape[x.rank - 1] !== this.dim) throw new TesseraError(`ExpertParallelMoE: the input's last dimension must be ${this.dim}, got ${x.shape[x.rank - 1]}.`);
    const W = this.group.size, d = this.dim, k = this.topK;
    const flat = reshape(x, [-1, d]);
    const N = flat.shape[0]!;
    const probs = softmax(this.router.call(flat) as Tensor, 1);
    const { choice, gates } = routeTopK(probs, k);
    const { served, firstChoice, total } = await this.servedSlots(choice, N);
    const f = fromValues(firstChoice, [this.numExperts], 'float64', { backend: x.backend }).cast(probs.dtype);
    this.auxLoss = mul(sum(mul(sum(probs, 0), f)), (this.group.size * this.numExperts) / total);
    // Served slots (token n's r-th choice = slot n·k + r) grouped by the rank holding their expert.
    const slots = Array.from({ length: N * k }, (_, s) => s).filter((s) => served[s] === 1)
      .sort((a, b) => this.ownerOf(choice[a]!) - this.ownerOf(choice[b]!) || a - b);
    const sendCounts = new Array<number>(W).fill(0);
    for (const s of slots) sendCounts[this.ownerOf(choice[s]!)]!++;
    const tokenOf = fromValues(Int32Array.from(slots, (s) => Math.floor(s / k)), [slots.length], 'int32', { backend: x.backend });
    const dispatched = indexSelect(flat, 0, tokenOf);

    // How many slots every rank sends to every other: each rank tells each rank its count.
    const recvCounts = Array.from(await this.group.allToAll(Int32Array.from(sendCounts)));
    const received = await this.exchange(dispatched, sendCounts, recvCounts, true);
    const experts = await this.group.allToAll(Int32Array.from(slots, (s) => choice[s]!), { sendCounts, recvCounts }) as Int32Array;

    // Each local expert runs on the rows addressed to it; outputs go back to those rows. An expert
    // with no rows runs on an empty batch, as in nn.MoE (whose experts always run on their
    // capacity's slots): its parameters get a zero gradient rather than none, so optimizers
    // with momentum treat it alike in both.
    let expertOut = zeros([received.shape[0]!, d], { dtype: received.dtype, backend: received.backend });
    for (const [e, module] of this.experts) {
      const rows: number[] = [];
      experts.forEach((id, row) => { if (id === e) rows.push(row); });
      const index = fromValues(Int32Array.from(rows), [rows.length], 'int32', { backend: x.backend });
      const y = module.call(indexSelect(received, 0, index)) as Tensor;
      expertOut = scatterAdd(expertOut, 0, expand(reshape(index, [rows.length, 1]), [rows.length, d]), y);
    }

    const returned = await this.exchange(expertOut, recvCounts, sendCounts, true);
    const slotGates = indexSelect(reshape(gates, [N * k]), 0, fromValues(Int32Array.from(slots), [slots.length], 'int32', { backend: x.backend }));
    const weighted = mul(returned, reshape(slotGates, [slots.length, 1]));
    const zero = zeros([N, d], { dtype: flat.dtype, backend: flat.backend });
    const out = scatterAdd(zero, 0, expand(reshape(tokenOf, [slots.length, 1]), [slots.length, d]), weighted);
    return this.passes.keep(reshape(out, x.shape), { dispatched, received, expertOut, returned, sendCounts, recvCounts });
  }

  /**
   * Which of this rank's slots their experts serve: nn.MoE's capacity rule applied to every
   * rank's choices (all-gathered), tokens in rank order; also the whole batch's first-choice
   * fractions and token count. Records lastRouting.
   */
  private async servedSlots(choice: Int32Array, tokens: number): Promise<{ served: Uint8Array; firstChoice: Float64Array; total: number }> {
    const k = this.topK, E = this.numExperts;
    const perRank = Array.from(await this.group.allGather(Int32Array.of(tokens)));
    const all = await this.group.allGather(choice, { counts: perRank.map((n) => n * k) }) as Int32Array;
    const total = perRank.reduce((a, b) => a + b, 0);
    const first = perRank.slice(0, this.group.rank).reduce((a, b) => a + b, 0);
    const capacity = Math.ceil((this.capacityFactor * total * k) / E);
    const load = new Array<number>(E).fill(0);
    const served = new Uint8Array(tokens * k);
    let dropped = 0;
    for (let r = 0; r < k; r++) {
      for (let g = 0; g < total; g++) {
        const e = all[g * k + r]!;
        if (load[e]! >= capacity) { dropped++; continue; }
        load[e]!++;
        if (g >= first && g < first + tokens) served[(g - first) * k + r] = 1;
      }
    }
    this.lastRouting = { tokensPerExpert: load, dropped, capacity };
    const firstChoice = new Float64Array(E);
    for (let g = 0; g < total; g++) firstChoice[all[g * k]!]! += 1 / total;
    return { served, firstChoice, total };
  }

  async finishBackward(output: Tensor): Promise<void> {
    const k = this.passes.take(output);
    // The combine's gradient goes back to the experts' ranks, the dispatch's to the tokens'.
    const gReturned = k.returned.grad ?? zeros([...k.returned.shape], { dtype: k.returned.dtype, backend: k.returned.backend });
    const gExpertOut = await this.exchange(gReturned, k.sendCounts, k.recvCounts, false);
    if (k.expertOut.requiresGrad) backward(k.expertOut, gExpertOut);
    const gReceived = k.received.grad ?? zeros([...k.received.shape], { dtype: k.received.dtype, backend: k.received.backend });
    const gDispatched = await this.exchange(gReceived, k.recvCounts, k.sendCounts, false);
    if (k.dispatched.requiresGrad) backward(k.dispatched, gDispatched);
  }

  /**
   * Averages the router's gradients over the ranks and divides the experts' by the group size:
   * each expert's gradient holds the contributions of every rank's tokens, each rank's loss being
   * a mean over its own tokens. Call it after the backward pass, before the optimizer step.
   */
  async syncGradients(): Promise<void> {
    await averageGradients(this.router.parameters(), this.group);
    const scale = 1 / this.group.size;
    for (const m of this.experts.values()) {
      for (const p of m.parameters()) {
        const g = p._peekGrad(); // replaced without being marked seen: the old one goes unless the caller read it
        if (g !== undefined) p._replaceGrad(g.mul(scale), true);
      }
    }
  }

  /** An all-to-all of rows of `t` ([rows, dim]): `send[i]` rows to rank i, `recv[i]` rows from it. */
  private async exchange(t: Tensor, send: readonly number[], recv: readonly number[], requiresGrad: boolean): Promise<Tensor> {
    const d = this.dim;
    const dtype = commDType(t.dtype, 'ExpertParallelMoE');
    const input: CommArray = allocArray(dtype, t.size);
    input.set(t.data());
    const rows = recv.reduce((a, b) => a + b, 0);
    const output = allocArray(dtype, rows * d);
    await this.group.allToAll(input, { output, sendCounts: send.map((c) => c * d), recvCounts: recv.map((c) => c * d) });
    return tensor(output, { shape: [rows, d], dtype: t.dtype, backend: t.storage.backend.name, requiresGrad });
  }
}
