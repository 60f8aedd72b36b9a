// ONNX recurrent layers: RNN, GRU, LSTM.
//
// All three share one driver (runRecurrent): X @ W^T (+ Wb) is computed for every time step in a
// single product, then each direction walks the sequence (forward, reverse, or both for
// 'bidirectional') applying the layer's cell. With sequence_lens, a batch entry whose sequence has
// ended keeps its state and writes zeros to Y (so Y_h/Y_c hold the last valid step; a reverse
// direction effectively starts at step len-1). layout 0 is [seq, batch, ...]; layout 1 is
// [batch, seq, ...] for X, Y, initial_h/c and Y_h/c. Gate orders follow ONNX: LSTM i, o, f, c;
// GRU z, r, h; RNN a single gate.

import * as ops from '../../ops/index.js';
import type { Tensor } from '../../core/tensor.js';
import type { NodeContext } from '../node-context.js';
import { registerOnnxOp, type OpResult } from '../registry.js';

type Activation = (x: Tensor) => Tensor;

/**
 * An activation function by its ONNX name, with alpha/beta taken (in order) from the activation
 * lists when the function uses them, else the ONNX operator's own defaults.
 */
function makeActivation(ctx: NodeContext, name: string, alphas: number[], betas: number[]): Activation {
  const alpha = (fallback: number): number => alphas.shift() ?? fallback;
  const beta = (fallback: number): number => betas.shift() ?? fallback;
  switch (name.toLowerCase()) {
    case 'sigmoid': return ops.sigmoid;
    case 'tanh': return ops.tanh;
    case 'relu': return ops.relu;
    case 'affine': {
      const [a, b] = [alpha(1), beta(0)];
      return (x) => ops.add(ops.mul(x, a), b);
    }
    case 'leakyrelu': {
      const a = alpha(0.01);
      return (x) => ops.leakyRelu(x, a);
    }
    case 'thresholdedrelu': {
      const a = alpha(1);
      return (x) => ops.where(ops.gt(x, a), x, 0);
    }
    case 'scaledtanh': {
      const [a, b] = [alpha(1), beta(1)];
      return (x) => ops.mul(ops.tanh(ops.mul(x, b)), a);
    }
    case 'hardsigmoid': {
      const [a, b] = [alpha(0.2), beta(0.5)];
      return (x) => ops.clamp(ops.add(ops.mul(x, a), b), 0, 1);
    }
    case 'elu': {
      const a = alpha(1);
      return (x) => ops.where(ops.gt(x, 0), x, ops.mul(ops.expm1(x), a));
    }
    case 'softsign': return (x) => ops.div(x, ops.add(ops.abs(x), 1));
    case 'softplus': return (x) => ops.softplus(x);
    default:
      return ctx.fail(`activation '${name}' is not supported; supported: Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus`);
  }
}

/** What a cell sees at one step: the precomputed input projection and the previous state. */
interface CellStep {
  /** X_t @ W^T + Wb: [batch, gates·hidden]. */
  readonly xw: Tensor;
  /** The previous hidden state [batch, hidden] (and cell state for LSTM). */
  readonly h: Tensor;
  readonly c?: Tensor;
}

/** One direction's weights, each a tessera tensor without the num_directions axis. */
interface DirectionWeights {
  readonly r: Tensor; // [gates·hidden, hidden]
  readonly rb?: Tensor; // [gates·hidden]
  readonly p?: Tensor; // LSTM peepholes [3·hidden]
  readonly f: Activation[]; // this direction's activations, in the layer's order
}

interface CellSpec {
  readonly gates: number;
  /** Activations per direction and their ONNX defaults. */
  readonly defaultActivations: string[];
  readonly hasCellState: boolean;
  step(s: CellStep, w: DirectionWeights, hidden: number, clip: (x: Tensor) => Tensor): { h: Tensor; c?: Tensor };
}

/** Gate k (of width `hidden`) along the last axis. */
function gate(x: Tensor, k: number, hidden: number): Tensor {
  return ops.slice(x, -1, k * hidden, (k + 1) * hidden);
}

/** H @ R^T (+ Rb). */
function recurrent(h: Tensor, w: DirectionWeights): Tensor {
  const hr = ops.matmul(h, ops.transpose(w.r, 0, 1));
  return w.rb === undefined ? hr : ops.add(hr, w.rb);
}

const RNN: CellSpec = {
  gates: 1,
  defaultActivations: ['Tanh'],
  hasCellState: false,
  // H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)
  step: (s, w, _hidden, clip) => ({ h: w.f[0]!(clip(ops.add(s.xw, recurrent(s.h, w)))) }),
};

function gruSpec(linearBeforeReset: boolean): CellSpec {
  return {
    gates: 3,
    defaultActivations: ['Sigmoid', 'Tanh'],
    hasCellState: false,
    step: (s, w, hidden, clip) => {
      const [f, g] = [w.f[0]!, w.f[1]!];
      const hr = ops.matmul(s.h, ops.transpose(w.r, 0, 1)); // [batch, 3·hidden], no bias yet
      const rb = (k: number): Tensor | undefined => (w.rb === undefined ? undefined : gate(w.rb, k, hidden));
      const plus = (x: Tensor, b: Tensor | undefined): Tensor => (b === undefined ? x : ops.add(x, b));
      const z = f(clip(ops.add(gate(s.xw, 0, hidden), plus(gate(hr, 0, hidden), rb(0)))));
      const r = f(clip(ops.add(gate(s.xw, 1, hidden), plus(gate(hr, 1, hidden), rb(1)))));
      // linear_before_reset: r ⊙ (H R_h^T + Rb_h); otherwise (r ⊙ H) R_h^T + Rb_h.
      const rh = linearBeforeReset
        ? ops.mul(r, plus(gate(hr, 2, hidden), rb(2)))
        : plus(ops.matmul(ops.mul(r, s.h), ops.transpose(ops.slice(w.r, 0, 2 * hidden, 3 * hidden), 0, 1)), rb(2));
      const hTilde = g(clip(ops.add(gate(s.xw, 2, hidden), rh)));
      // H_t = (1 - z) ⊙ h~ + z ⊙ H_{t-1}
      return { h: ops.add(ops.mul(ops.sub(1, z), hTilde), ops.mul(z, s.h)) };
    },
  };
}

function lstmSpec(inputForget: boolean): CellSpec {
  return {
    gates: 4,
    defaultActivations: ['Sigmoid', 'Tanh', 'Tanh'],
    hasCellState: true,
    step: (s, w, hidden, clip) => {
      const [f, g, h] = [w.f[0]!, w.f[1]!, w.f[2]!];
      const pre = ops.add(s.xw, recurrent(s.h, w)); // [batch, 4·hidden] in the order i, o, f, c
      const c = s.c!;
      const peep = (k: number, state: Tensor, x: Tensor): Tensor => (w.p === undefined ? x : ops.add(x, ops.mul(gate(w.p, k, hidden), state)));
      const i = f(clip(peep(0, c, gate(pre, 0, hidden))));
      // input_forget couples the gates: f = 1 - i.
      const fg = inputForget ? ops.sub(1, i) : f(clip(peep(2, c, gate(pre, 2, hidden))));
      const cTilde = g(clip(gate(pre, 3, hidden)));
      const cNew = ops.add(ops.mul(fg, c), ops.mul(i, cTilde));
      const o = f(clip(peep(1, cNew, gate(pre, 1, hidden))));
      return { h: ops.mul(o, h(cNew)), c: cNew };
    },
  };
}

/** The shared RNN/GRU/LSTM driver (see the file comment). Returns [Y, Y_h] or [Y, Y_h, Y_c]. */
function runRecurrent(ctx: NodeContext, spec: CellSpec): OpResult[] {
  const layout = ctx.int('layout', 0);
  if (layout !== 0 && layout !== 1) ctx.fail(`layout ${layout} is not valid; 0 ([seq, batch, ...]) or 1 ([batch, seq, ...])`);
  const direction = ctx.string('direction', 'forward');
  if (direction !== 'forward' && direction !== 'reverse' && direction !== 'bidirectional') {
    ctx.fail(`direction '${direction}' is not valid; forward, reverse or bidirectional`);
  }
  const numDirections = direction === 'bidirectional' ? 2 : 1;
  // Tensors with a batch axis, in layout 0 order.
  const toLayout0 = (t: Tensor, perm: number[]): Tensor => (layout === 1 ? ops.permute(t, perm) : t);
  if (ctx.tensor(0).rank !== 3) ctx.fail(`X must be 3-D, got shape [${ctx.tensor(0).shape.join(', ')}]`);
  const x = toLayout0(ctx.tensor(0), [1, 0, 2]); // [seq, batch, input]
  const w = ctx.tensor(1); // [dirs, gates·hidden, input]
  const r = ctx.tensor(2); // [dirs, gates·hidden, hidden]
  const hidden = ctx.int('hidden_size') ?? r.shape[2] ?? 0;
  const width = spec.gates * hidden; // the gates side by side
  if (w.rank !== 3 || w.shape[0] !== numDirections || w.shape[1] !== width || w.shape[2] !== x.shape[2]) {
    ctx.fail(`W must be [${numDirections}, ${width}, ${x.shape[2]}] (directions, gates·hidden_size, input_size) for direction '${direction}' and hidden_size ${hidden}, got [${w.shape.join(', ')}]`);
  }
  if (r.rank !== 3 || r.shape[0] !== numDirections || r.shape[1] !== width || r.shape[2] !== hidden) {
    ctx.fail(`R must be [${numDirections}, ${width}, ${hidden}], got [${r.shape.join(', ')}]`);
  }
  const [seqLength, batch] = [x.shape[0]!, x.shape[1]!];
  const b = ctx.optionalTensor(3); // [dirs, 2·gates·hidden]: Wb then Rb
  const seqLens = ctx.has(4) ? ctx.ints(4) : undefined;
  const initialH = ctx.has(5) ? toLayout0(ctx.tensor(5), [1, 0, 2]) : undefined;
  const initialC = spec.hasCellState && ctx.has(6) ? toLayout0(ctx.tensor(6), [1, 0, 2]) : undefined;
  const peepholes = spec.hasCellState ? ctx.optionalTensor(7) : undefined;

  const clipValue = ctx.float('clip');
  const clip = (t: Tensor): Tensor => (clipValue === undefined ? t : ops.clamp(t, -clipValue, clipValue));
  const names = ctx.stringList('activations') ?? [];
  const perDirection = spec.defaultActivations.length;
  if (names.length !== 0 && names.length !== perDirection * numDirections) {
    ctx.fail(`activations lists ${names.length} functions; ${ctx.node.opType} with direction '${direction}' takes ${perDirection * numDirections}`);
  }
  const alphas = [...ctx.floatList('activation_alpha', [])];
  const betas = [...ctx.floatList('activation_beta', [])];

  // Which batch entries are still running at step t (undefined: all are, at every step).
  const active = seqLens === undefined || seqLens.every((n) => n === seqLength)
    ? undefined
    : (t: number): Tensor => ops.reshape(ops.tensor(seqLens.map((n) => n > t), { dtype: 'bool', backend: x.backend }), [batch, 1]);

  const ys: Tensor[] = [];
  const yh: Tensor[] = [];
  const yc: Tensor[] = [];
  for (let d = 0; d < numDirections; d++) {
    const acts = (names.length === 0 ? spec.defaultActivations : names.slice(d * perDirection, (d + 1) * perDirection))
      .map((n) => makeActivation(ctx, n, alphas, betas));
    const bias = b === undefined ? undefined : ops.at(b, d);
    const weights: DirectionWeights = {
      r: ops.at(r, d),
      rb: bias === undefined ? undefined : ops.slice(bias, 0, width),
      p: peepholes === undefined ? undefined : ops.at(peepholes, d),
      f: acts,
    };
    // X @ W^T + Wb for every step at once: [seq, batch, gates·hidden].
    let xw = ops.matmul(x, ops.transpose(ops.at(w, d), 0, 1));
    if (bias !== undefined) xw = ops.add(xw, ops.slice(bias, 0, 0, width));
    let h = initialH !== undefined ? ops.at(initialH, d) : ops.zeros([batch, hidden], { dtype: x.dtype, backend: x.backend });
    let c = !spec.hasCellState ? undefined : initialC !== undefined ? ops.at(initialC, d) : ops.zeros([batch, hidden], { dtype: x.dtype, backend: x.backend });
    const reverse = direction === 'reverse' || d === 1;
    const outputs: Tensor[] = new Array<Tensor>(seqLength);
    for (let k = 0; k < seqLength; k++) {
      const t = reverse ? seqLength - 1 - k : k;
      const next = spec.step({ xw: ops.at(xw, t), h, c }, weights, hidden, clip);
      const mask = active?.(t);
      if (mask === undefined) {
        h = next.h;
        c = next.c;
        outputs[t] = h;
      } else {
        h = ops.where(mask, next.h, h);
        if (c !== undefined) c = ops.where(mask, next.c!, c);
        outputs[t] = ops.where(mask, next.h, 0);
      }
    }
    ys.push(seqLength === 0 ? ops.zeros([0, batch, hidden], { dtype: x.dtype, backend: x.backend }) : ops.stack(outputs, 0)); // [seq, batch, hidden]
    yh.push(h);
    if (c !== undefined) yc.push(c);
  }
  const y = ops.stack(ys, 1); // [seq, dirs, batch, hidden]
  const states = (list: Tensor[]): Tensor => toLayout0(ops.stack(list, 0), [1, 0, 2]); // [dirs, batch, hidden] in layout 0
  const results: OpResult[] = [layout === 1 ? ops.permute(y, [2, 0, 1, 3]) : y, states(yh)];
  if (spec.hasCellState) results.push(states(yc));
  return results;
}

// RNN (opset 1, 7, 14): a simple recurrent layer, activation f (default Tanh).
registerOnnxOp('RNN', (ctx) => runRecurrent(ctx, RNN));

// GRU (opset 1, 3, 7, 14): gates z, r, h; linear_before_reset picks where the reset gate applies.
registerOnnxOp('GRU', (ctx) => runRecurrent(ctx, gruSpec(ctx.int('linear_before_reset', 0) !== 0)));

// LSTM (opset 1, 7, 14): gates i, o, f, c with optional peepholes P [dirs, 3·hidden] (i, o, f)
// and input_forget (f = 1 - i).
registerOnnxOp('LSTM', (ctx) => runRecurrent(ctx, lstmSpec(ctx.int('input_forget', 0) !== 0)));
