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
import { fromValues, zeros } from '../../ops/creation.js';
import { add, div, mul } from '../../ops/elementwise.js';
import { gather, indexSelect, scatterAdd } from '../../ops/indexing.js';
import { mean, sum } from '../../ops/reduce.js';
import { expand, reshape } from '../../ops/shape.js';
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
  lastRouting: RoutingStats | undefined = undefined;

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

  /** x [..., dim] → [..., dim]: the gate-weighted sum of the chosen experts' outputs (0 for dropped tokens). */
  override forward(x: Tensor): Tensor {
    check(x.shape[x.rank - 1] === this.dim, 'MoE', () => `input's last dimension must be ${this.dim}, got shape ${fmtShape(x.shape)}.`);
    const flat = reshape(x, [-1, this.dim]);
    const N = flat.shape[0]!;
    const E = this.numExperts, k = this.topK;
    const probs = softmax(this.router.call(flat), 1);
    const { choice, gates } = routeTopK(probs, k);
    const flatGates = reshape(gates, [N * k]);

    // Capacity: first choices before second choices, each in token order.
    const capacity = Math.ceil((this.capacityFactor * N * k) / E);
    const served: number[][] = Array.from({ length: E }, () => []);
    let dropped = 0;
    for (let r = 0; r < k; r++) {
      for (let n = 0; n < N; n++) {
        const e = choice[n * k + r]!;
        if (served[e]!.length < capacity) served[e]!.push(n * k + r);
        else dropped++;
      }
    }

    let out = zeros([N, this.dim], { dtype: flat.dtype, backend: flat.backend });
    served.forEach((slots, e) => {
      if (slots.length === 0) return;
      const tokens = fromValues(Int32Array.from(slots, (s) => Math.floor(s / k)), [slots.length], 'int32', { backend: x.backend });
      const slotIdx = fromValues(Int32Array.from(slots), [slots.length], 'int32', { backend: x.backend });
      const y = (this.experts.get(e) as Module).call(indexSelect(flat, 0, tokens));
      const weighted = mul(y, reshape(indexSelect(flatGates, 0, slotIdx), [slots.length, 1]));
      out = scatterAdd(out, 0, expand(reshape(tokens, [slots.length, 1]), [slots.length, this.dim]), weighted);
    });

    // Switch's load-balancing loss from first choices (before capacity) and mean probabilities.
    const firstChoice = new Float64Array(E);
    for (let n = 0; n < N; n++) firstChoice[choice[n * k]!]! += 1 / N;
    const f = fromValues(firstChoice, [E], 'float64', { backend: x.backend });
    this.auxLoss = mul(sum(mul(mean(probs, 0), f.cast(probs.dtype))), E);
    this.lastRouting = { tokensPerExpert: served.map((s) => s.length), dropped, capacity };
    return reshape(out, x.shape);
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
