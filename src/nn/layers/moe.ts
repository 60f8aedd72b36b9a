// Mixture of experts (Switch Transformer / GShard style): a softmax router picks the top-k experts of
// each token, experts have a capacity (tokens beyond it are dropped and pass through the residual
// path), and a load-balancing auxiliary loss pushes the router towards an even split.
//
// Routing, in order: probabilities p = softmax(x W_r) over E experts; each token's k largest (ties go
// to the lower index); gates = those probabilities (top-1, as Switch) or renormalised to sum to 1
// (k > 1, as GShard and Mixtral). Capacity C = ceil(capacityFactor · tokens · k / E); first choices are
// served before second choices (GShard), each in token order. Auxiliary loss (Switch, eq. 4):
// E · Σ_i f_i · P_i, where f_i is the fraction of tokens whose first choice is expert i and P_i the
// mean router probability of expert i.
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { keep } from '../../core/memory.js';
import { fromValues, zeros } from '../../ops/creation.js';
import { add, cast, div, lt, mul, sub, where } from '../../ops/elementwise.js';
import { gather, oneHot, scatterAdd } from '../../ops/indexing.js';
import { cumsum, mean, sum } from '../../ops/reduce.js';
import { expand, narrow, reshape, transpose } from '../../ops/shape.js';
import { cat } from '../../ops/combine.js';
import { topk } from '../../ops/sort.js';
import { softmax } from '../../ops/nn/index.js';
import { ModuleList, Sequential } from '../containers.js';
import { Module, type AnyModule } from '../module.js';
import { GELU } from './activation.js';
import { Linear, type LayerOptions } from './linear.js';

export interface MoEOptions extends LayerOptions {
  /** Experts per token (default 2). */
  topK?: number;
  /** Slack over an even split of the token-expert assignments (default 1.25). */
  capacityFactor?: number;
  /** Hidden size of each expert's MLP (default 4 × dim). */
  hiddenDim?: number;
}

/** What the last forward pass routed (for monitoring). */
export interface RoutingStats {
  /** Assignments served by each expert. */
  tokensPerExpert: number[];
  /** Token-expert assignments dropped for lack of capacity. */
  dropped: number;
  capacity: number;
}

export class MoE extends Module {
  router: Linear;
  experts: ModuleList<Module>;
  readonly topK: number;
  readonly capacityFactor: number;
  /** Load-balancing loss of the last forward pass (add a small multiple of it to the training loss). */
  auxLoss: Tensor | undefined = undefined;

  constructor(readonly dim: number, readonly numExperts: number, options: MoEOptions = {}) {
    super();
    this.topK = options.topK ?? 2;
    this.capacityFactor = options.capacityFactor ?? 1.25;
    check(Number.isInteger(numExperts) && numExperts > 0 && Number.isInteger(this.topK) && this.topK >= 1 && this.topK <= numExperts, 'MoE', () =>
      `topK ${this.topK} must be between 1 and numExperts ${numExperts}.`);
    check(this.capacityFactor > 0, 'MoE', () => `capacityFactor must be positive, got ${this.capacityFactor}.`);
    const layer = { dtype: options.dtype, backend: options.backend, generator: options.generator };
    this.router = new Linear(dim, numExperts, { ...layer, bias: false });
    const hidden = options.hiddenDim ?? 4 * dim;
    this.experts = new ModuleList<Module>(Array.from({ length: numExperts }, () => new Sequential(new Linear(dim, hidden, layer), new GELU(), new Linear(hidden, dim, layer))));
  }

  /**
   * x [..., dim] → [..., dim]: the gate-weighted sum of the chosen experts' outputs (0 for dropped
   * tokens). Routing is computed with tensor ops only (no value is read), so a jitted training step
   * traces once and the layer exports to ONNX; every expert runs on its `capacity` slots.
   *
   * Assignments a = r·N + n (choice r of token n: first choices before second choices, each in
   * token order) get a position in their expert's queue (an exclusive cumulative count of one-hot
   * rows); those with position < capacity take slot e·capacity + position, the others a spare
   * last slot. Token rows are scattered into the slots, each expert runs on its slots, and the
   * outputs are gathered back per assignment (the spare slot reads zeros) and summed with the gates.
   */
  override forward(x: Tensor): Tensor {
    check(x.shape[x.rank - 1] === this.dim, 'MoE', () => `input's last dimension must be ${this.dim}, got shape ${fmtShape(x.shape)}.`);
    const flat = reshape(x, [-1, this.dim]);
    const N = flat.shape[0]!, D = this.dim;
    const E = this.numExperts, k = this.topK;
    const probs = softmax(this.router.call(flat), 1);
    const top = topk(probs, k, 1); // stable: ties go to the lower expert index
    const gates = k > 1 ? div(top.values, sum(top.values, 1, true)) : top.values;
    const capacity = Math.ceil((this.capacityFactor * N * k) / E);

    const expertOf = reshape(transpose(top.indices), [k * N]); // [kN], assignment order
    const hot = oneHot(expertOf, E); // [kN, E] int32
    const position = sum(mul(sub(cumsum(hot, 0), hot), hot), 1); // [kN]: earlier assignments to the same expert
    const served = lt(position, capacity);
    const slot = where(served, add(mul(expertOf, capacity), position), E * capacity);
    const slotRows = expand(reshape(slot, [k * N, 1]), [k * N, D]);
    const tokens = k === 1 ? flat : cat(Array.from({ length: k }, () => flat), 0); // token n of assignment a = a mod N
    const slots = scatterAdd(zeros([E * capacity + 1, D], { dtype: flat.dtype, backend: flat.backend }), 0, slotRows, tokens);
    const outputs = Array.from({ length: E }, (_, e) => (this.experts.get(e) as Module).call(narrow(slots, 0, e * capacity, capacity)) as Tensor);
    outputs.push(zeros([1, D], { dtype: flat.dtype, backend: flat.backend })); // the spare slot of dropped assignments
    const perAssignment = gather(cat(outputs, 0), 0, slotRows); // [kN, D]
    const weighted = mul(perAssignment, reshape(transpose(gates), [k * N, 1]));
    const out = sum(reshape(weighted, [k, N, D]), 0);

    // Switch's load-balancing loss from first choices (before capacity) and mean probabilities.
    const firstChoice = mean(cast(oneHot(narrow(expertOf, 0, 0, N), E), probs.dtype), 0);
    this.auxLoss = mul(sum(mul(mean(probs, 0), firstChoice)), E);
    this.routingCounts?.dispose();
    this.routingCounts = keep(sum(mul(hot, reshape(cast(served, 'int32'), [k * N, 1])), 0));
    this.routingCapacity = capacity;
    this.routingAssignments = k * N;
    return reshape(out, x.shape);
  }

  /** Assignments each expert served in the last forward pass ([E] int32; read by lastRouting). */
  private routingCounts: Tensor | undefined = undefined;
  private routingCapacity = 0;
  private routingAssignments = 0;

  /**
   * What the last forward pass routed (reads the counts: call it outside a jitted function, whose
   * replays do not run this layer's JavaScript; there it describes the traced call).
   */
  get lastRouting(): RoutingStats | undefined {
    if (this.routingCounts === undefined || this.routingCounts.isDisposed) return undefined;
    const tokensPerExpert = Array.from(this.routingCounts.data(), Number);
    const assigned = tokensPerExpert.reduce((a, b) => a + b, 0);
    return { tokensPerExpert, dropped: this.routingAssignments - assigned, capacity: this.routingCapacity };
  }
}

/**
 * The router's decision for router probabilities `probs` [N, E]: every token's k most probable
 * experts (`choice`, [N·k] row-major; stable, ties go to the lower index) and their gates [N, k]
 * (the probabilities, renormalised to sum to 1 when k > 1). Shared with the expert-parallel layer.
 */
export function routeTopK(probs: Tensor, k: number): { choice: Int32Array; gates: Tensor } {
  const [N, E] = [probs.shape[0]!, probs.shape[1]!];
  const p = probs.data();
  const choice = new Int32Array(N * k);
  const order = Array.from({ length: E }, (_, i) => i);
  for (let n = 0; n < N; n++) {
    const row = order.slice().sort((a, b) => p[n * E + b]! - p[n * E + a]! || a - b);
    for (let r = 0; r < k; r++) choice[n * k + r] = row[r]!;
  }
  let gates = gather(probs, 1, fromValues(choice, [N, k], 'int32', { backend: probs.backend }));
  if (k > 1) gates = div(gates, sum(gates, 1, true));
  return { choice, gates };
}

/** Adds `weight` × the auxiliary losses of every MoE layer in `model` to `loss`. */
export function withAuxLoss(model: AnyModule, loss: Tensor, weight = 0.01): Tensor {
  let total = loss;
  for (const m of model.modules()) if (m instanceof MoE && m.auxLoss !== undefined) total = add(total, mul(m.auxLoss, weight));
  return total;
}
