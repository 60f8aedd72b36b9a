// ONNX training operators (domain ai.onnx.preview.training, version 1): Adagrad, Adam, Momentum.
//
// Each takes the learning rate R (a float scalar), the update count T (an INT64 scalar), then a
// variadic list of tensors in groups: the optimized tensors X_1..X_k, their gradients G_1..G_k,
// then the optimizer's state tensors (H for Adagrad; V for Momentum; V, H for Adam), and returns
// the new X_1..X_k followed by the new states in the same order. Every tensor is updated
// independently by the pseudo code of the ONNX spec. R and T stay tensors (T is not read to the
// host), so a jitted training step does not bake in the iteration count, and the updates are
// differentiable like any other tessera op.

import { isFloating } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { registerOnnxOp } from '../registry.js';

const DOMAIN = 'ai.onnx.preview.training';

/** The scalar inputs R and T, T as a float of R's dtype, and `T > 0` as a bool scalar. */
interface Schedule {
  readonly r: Tensor;
  readonly t: Tensor;
  readonly started: Tensor;
}

function schedule(ctx: NodeContext): Schedule {
  const r = ctx.tensor(0);
  const t = ctx.tensor(1);
  if (!isFloating(r.dtype) || r.size !== 1) ctx.fail(`R must be a float scalar, got a ${r.dtype} tensor of shape [${r.shape.join(', ')}]`);
  if (isFloating(t.dtype) || t.size !== 1) ctx.fail(`T must be an integer scalar, got a ${t.dtype} tensor of shape [${t.shape.join(', ')}]`);
  return { r: ops.reshape(r, []), t: ops.cast(ops.reshape(t, []), r.dtype), started: ops.gt(ops.reshape(t, []), 0) };
}

/**
 * The variadic inputs after R and T as `groups` lists of k tensors each: [X_1..X_k], [G_1..G_k],
 * then the states. Each tensor of a group must have its X's shape.
 */
function tensorGroups(ctx: NodeContext, groups: number, names: string): Tensor[][] {
  const count = ctx.inputCount - 2;
  if (count < groups || count % groups !== 0) {
    ctx.fail(`takes R, T, then ${groups} groups of equally many tensors (${names}); got ${count} tensors after R and T`);
  }
  const k = count / groups;
  const out = Array.from({ length: groups }, (_, g) => Array.from({ length: k }, (_, i) => ctx.tensor(2 + g * k + i)));
  out[0]!.forEach((x, i) => {
    if (!isFloating(x.dtype)) ctx.fail(`the optimized tensors must be float tensors, got ${x.dtype} for input ${2 + i}`);
    for (let g = 1; g < groups; g++) {
      const y = out[g]![i]!;
      if (y.shape.length !== x.shape.length || y.shape.some((d, a) => d !== x.shape[a])) {
        ctx.fail(`input ${2 + g * k + i} has shape [${y.shape.join(', ')}], but the tensor it belongs to (input ${2 + i}) has shape [${x.shape.join(', ')}]`);
      }
    }
  });
  return out;
}

/** The gradient of the loss plus 0.5·norm_coefficient·‖X‖²: norm_coefficient·X + G. */
function regularized(x: Tensor, g: Tensor, normCoefficient: number): Tensor {
  return normCoefficient === 0 ? g : ops.add(ops.mul(x, normCoefficient), g);
}

/** A result in the dtype of the input it replaces (R may be wider than X). */
const like = (y: Tensor, x: Tensor): Tensor => ops.cast(y, x.dtype);

// Adagrad: r = R / (1 + T·decay_factor); G' = norm_coefficient·X + G; H_new = H + G'²;
// X_new = X - r·G' / (√H_new + epsilon). Defaults: decay_factor 0, epsilon 1e-6, norm_coefficient 0.
registerOnnxOp('Adagrad', (ctx) => {
  const { r: rate, t } = schedule(ctx);
  const [xs, gs, hs] = tensorGroups(ctx, 3, 'X..., G..., H...');
  const decay = ctx.float('decay_factor', 0);
  const epsilon = ctx.float('epsilon', 1e-6);
  const norm = ctx.float('norm_coefficient', 0);
  const r = ops.div(rate, ops.add(ops.mul(t, decay), 1));
  const xNew: Tensor[] = [];
  const hNew: Tensor[] = [];
  xs!.forEach((x, i) => {
    const g = regularized(x, gs![i]!, norm);
    const h = ops.add(hs![i]!, ops.mul(g, g));
    xNew.push(like(ops.sub(x, ops.div(ops.mul(r, g), ops.add(ops.sqrt(h), epsilon))), x));
    hNew.push(like(h, hs![i]!));
  });
  return [...xNew, ...hNew];
}, DOMAIN);

// Adam: G' = norm_coefficient·X + G; V_new = alpha·V + (1 - alpha)·G';
// H_new = beta·H + (1 - beta)·G'²; R' = T > 0 ? R·√(1 - beta^T) / (1 - alpha^T) : R;
// X_new = (1 - norm_coefficient_post)·(X - R'·V_new / (√H_new + epsilon)).
// Defaults: alpha 0.9, beta 0.999, epsilon 1e-6, norm_coefficient and norm_coefficient_post 0.
registerOnnxOp('Adam', (ctx) => {
  const { r, t, started } = schedule(ctx);
  const [xs, gs, vs, hs] = tensorGroups(ctx, 4, 'X..., G..., V..., H...');
  const alpha = ctx.float('alpha', 0.9);
  const beta = ctx.float('beta', 0.999);
  const epsilon = ctx.float('epsilon', 1e-6);
  const norm = ctx.float('norm_coefficient', 0);
  const normPost = ctx.float('norm_coefficient_post', 0);
  // The bias correction, with 1 in both factors at T = 0 (so no 0/0 ever enters the graph).
  const numerator = ops.where(started, ops.sqrt(ops.sub(1, ops.pow(beta, t))), 1);
  const denominator = ops.where(started, ops.sub(1, ops.pow(alpha, t)), 1);
  const rAdjusted = ops.div(ops.mul(r, numerator), denominator);
  const xNew: Tensor[] = [];
  const vNew: Tensor[] = [];
  const hNew: Tensor[] = [];
  xs!.forEach((x, i) => {
    const g = regularized(x, gs![i]!, norm);
    const v = ops.add(ops.mul(vs![i]!, alpha), ops.mul(g, 1 - alpha));
    const h = ops.add(ops.mul(hs![i]!, beta), ops.mul(ops.mul(g, g), 1 - beta));
    const stepped = ops.sub(x, ops.div(ops.mul(rAdjusted, v), ops.add(ops.sqrt(h), epsilon)));
    xNew.push(like(normPost === 0 ? stepped : ops.mul(stepped, 1 - normPost), x));
    vNew.push(like(v, vs![i]!));
    hNew.push(like(h, hs![i]!));
  });
  return [...xNew, ...vNew, ...hNew];
}, DOMAIN);

// Momentum: G' = norm_coefficient·X + G; beta' = T > 0 ? beta : 1; V_new = alpha·V + beta'·G';
// mode 'standard': X_new = X - R·V_new; mode 'nesterov': X_new = X - R·(G' + alpha·V_new).
// alpha, beta, norm_coefficient and mode are required.
registerOnnxOp('Momentum', (ctx) => {
  const { r, started } = schedule(ctx);
  const [xs, gs, vs] = tensorGroups(ctx, 3, 'X..., G..., V...');
  const required = (name: string): number => ctx.float(name) ?? ctx.fail(`the required attribute '${name}' is missing`);
  const alpha = required('alpha');
  const beta = required('beta');
  const norm = required('norm_coefficient');
  const mode = ctx.string('mode') ?? ctx.fail(`the required attribute 'mode' is missing ('standard' or 'nesterov')`);
  if (mode !== 'standard' && mode !== 'nesterov') ctx.fail(`mode must be 'standard' or 'nesterov', got '${mode}'`);
  const betaAdjusted = ops.where(started, beta, 1);
  const xNew: Tensor[] = [];
  const vNew: Tensor[] = [];
  xs!.forEach((x, i) => {
    const g = regularized(x, gs![i]!, norm);
    const v = ops.add(ops.mul(vs![i]!, alpha), ops.mul(ops.cast(betaAdjusted, g.dtype), g));
    const direction = mode === 'standard' ? v : ops.add(g, ops.mul(v, alpha));
    xNew.push(like(ops.sub(x, ops.mul(r, direction)), x));
    vNew.push(like(v, vs![i]!));
  });
  return [...xNew, ...vNew];
}, DOMAIN);
