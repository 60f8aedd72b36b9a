// Recurrent layers RNN, LSTM and GRU: multi-layer, bidirectional, batchFirst, with PyTorch's
// parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..._reverse), gate order
// (LSTM: input, forget, cell, output; GRU: reset, update, new) and initialisation U(-1/sqrt(H), 1/sqrt(H)).
import { defaultFloatDType } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { zeros } from '../../ops/creation.js';
import { add, mul, relu, sigmoid, sub, tanh } from '../../ops/elementwise.js';
import { cat, stack } from '../../ops/combine.js';
import { matmul } from '../../ops/linalg.js';
import { narrow, permute, reshape } from '../../ops/shape.js';
import { uniform_ } from '../init.js';
import { Module, Parameter } from '../module.js';
import type { LayerOptions } from './linear.js';

export interface RecurrentOptions extends LayerOptions {
  numLayers?: number;
  bias?: boolean;
  /** Inputs and outputs are [batch, seq, feature] (default false: [seq, batch, feature], as PyTorch). */
  batchFirst?: boolean;
  bidirectional?: boolean;
  /** RNN only: 'tanh' (default) or 'relu'. */
  nonlinearity?: 'tanh' | 'relu';
}

type Mode = 'RNN' | 'LSTM' | 'GRU';
const GATES: Record<Mode, number> = { RNN: 1, LSTM: 4, GRU: 3 };

/** The recurrence of one cell: new hidden (and cell) state from the input projection and the previous state. */
type Cell = (xProj: Tensor, h: Tensor, c: Tensor | undefined, whh: Tensor, bhh: Tensor | undefined) => [Tensor, Tensor | undefined];

abstract class RecurrentBase extends Module<[Tensor, (Tensor | [Tensor, Tensor])?], [Tensor, Tensor | [Tensor, Tensor]]> {
  readonly numLayers: number;
  readonly bidirectional: boolean;
  readonly batchFirst: boolean;
  readonly hasBias: boolean;

  constructor(readonly mode: Mode, readonly inputSize: number, readonly hiddenSize: number, options: RecurrentOptions) {
    super();
    check(Number.isInteger(inputSize) && inputSize > 0 && Number.isInteger(hiddenSize) && hiddenSize > 0, mode, () =>
      `inputSize and hiddenSize must be positive integers, got ${inputSize} and ${hiddenSize}.`);
    this.numLayers = options.numLayers ?? 1;
    this.bidirectional = options.bidirectional ?? false;
    this.batchFirst = options.batchFirst ?? false;
    this.hasBias = options.bias ?? true;
    const create = { dtype: options.dtype ?? defaultFloatDType(), backend: options.backend } as const;
    const gates = GATES[mode] * hiddenSize;
    const bound = 1 / Math.sqrt(hiddenSize);
    const dirs = this.bidirectional ? 2 : 1;
    for (let layer = 0; layer < this.numLayers; layer++) {
      for (let d = 0; d < dirs; d++) {
        const suffix = `_l${layer}${d === 1 ? '_reverse' : ''}`;
        const inSize = layer === 0 ? inputSize : hiddenSize * dirs;
        const names: Array<[string, number[]]> = [[`weight_ih${suffix}`, [gates, inSize]], [`weight_hh${suffix}`, [gates, hiddenSize]]];
        if (this.hasBias) names.push([`bias_ih${suffix}`, [gates]], [`bias_hh${suffix}`, [gates]]);
        for (const [name, shape] of names) {
          const p = this.registerParameter(name, new Parameter(zeros(shape, create)));
          uniform_(p, -bound, bound, options.generator);
        }
      }
    }
  }

  protected abstract cell: Cell;

  #param(name: string): Tensor | undefined {
    return (this as unknown as Record<string, Parameter | undefined>)[name];
  }

  /**
   * input [seq, batch, inputSize] (or [batch, seq, ...] with batchFirst); optional initial state
   * [layers·dirs, batch, hidden] (LSTM: [h0, c0]). Returns [output, final state] like PyTorch.
   */
  override forward(input: Tensor, state?: Tensor | [Tensor, Tensor]): [Tensor, Tensor | [Tensor, Tensor]] {
    check(input.rank === 3 && input.shape[2] === this.inputSize, this.mode, () =>
      `input must be [${this.batchFirst ? 'batch, seq' : 'seq, batch'}, ${this.inputSize}], got ${fmtShape(input.shape)}.`);
    let x = this.batchFirst ? permute(input, [1, 0, 2]) : input;
    const [T, B] = [x.shape[0]!, x.shape[1]!];
    const dirs = this.bidirectional ? 2 : 1;
    const H = this.hiddenSize;
    const h0 = state === undefined ? undefined : Array.isArray(state) ? state[0] : state;
    const c0 = Array.isArray(state) ? state[1] : undefined;
    for (const [name, s] of [['h0', h0], ['c0', c0]] as const) {
      if (s !== undefined) check(s.rank === 3 && s.shape[0] === this.numLayers * dirs && s.shape[1] === B && s.shape[2] === H, this.mode, () =>
        `${name} must be [${this.numLayers * dirs}, ${B}, ${H}], got ${fmtShape(s.shape)}.`);
    }
    const finalH: Tensor[] = [], finalC: Tensor[] = [];
    for (let layer = 0; layer < this.numLayers; layer++) {
      const outputs: Tensor[] = [];
      for (let d = 0; d < dirs; d++) {
        const suffix = `_l${layer}${d === 1 ? '_reverse' : ''}`;
        const wih = this.#param(`weight_ih${suffix}`)!, whh = this.#param(`weight_hh${suffix}`)!;
        const bih = this.#param(`bias_ih${suffix}`), bhh = this.#param(`bias_hh${suffix}`);
        // The input projection of every time step at once: [T, B, gates].
        let proj = matmul(x, wih.mT);
        if (bih !== undefined) proj = add(proj, bih);
        const k = layer * dirs + d;
        let h = h0 === undefined ? zeros([B, H], { dtype: x.dtype, backend: x.backend }) : reshape(narrow(h0, 0, k, 1), [B, H]);
        let c: Tensor | undefined = this.mode === 'LSTM' ? (c0 === undefined ? zeros([B, H], { dtype: x.dtype, backend: x.backend }) : reshape(narrow(c0, 0, k, 1), [B, H])) : undefined;
        const steps: Tensor[] = new Array<Tensor>(T);
        for (let s = 0; s < T; s++) {
          const t = d === 0 ? s : T - 1 - s;
          [h, c] = this.cell(reshape(narrow(proj, 0, t, 1), [B, -1]), h, c, whh, bhh);
          steps[t] = h;
        }
        outputs.push(stack(steps, 0));
        finalH.push(h);
        if (c !== undefined) finalC.push(c);
      }
      x = dirs === 1 ? outputs[0]! : cat(outputs, 2);
    }
    const output = this.batchFirst ? permute(x, [1, 0, 2]) : x;
    const hN = stack(finalH, 0);
    return [output, this.mode === 'LSTM' ? [hN, stack(finalC, 0)] : hN];
  }
}

function hiddenProjection(h: Tensor, whh: Tensor, bhh: Tensor | undefined): Tensor {
  const p = matmul(h, whh.mT);
  return bhh === undefined ? p : add(p, bhh);
}

/** Elman RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh). */
export class RNN extends RecurrentBase {
  readonly nonlinearity: 'tanh' | 'relu';
  constructor(inputSize: number, hiddenSize: number, options: RecurrentOptions = {}) {
    super('RNN', inputSize, hiddenSize, options);
    this.nonlinearity = options.nonlinearity ?? 'tanh';
  }
  protected cell: Cell = (xp, h, _c, whh, bhh) => {
    const pre = add(xp, hiddenProjection(h, whh, bhh));
    return [this.nonlinearity === 'tanh' ? tanh(pre) : relu(pre), undefined];
  };
}

/** LSTM with gates (i, f, g, o): c' = f·c + i·g, h' = o·tanh(c'). */
export class LSTM extends RecurrentBase {
  constructor(inputSize: number, hiddenSize: number, options: RecurrentOptions = {}) {
    super('LSTM', inputSize, hiddenSize, options);
  }
  protected cell: Cell = (xp, h, c, whh, bhh) => {
    const H = this.hiddenSize;
    const gates = add(xp, hiddenProjection(h, whh, bhh));
    const i = sigmoid(narrow(gates, 1, 0, H));
    const f = sigmoid(narrow(gates, 1, H, H));
    const g = tanh(narrow(gates, 1, 2 * H, H));
    const o = sigmoid(narrow(gates, 1, 3 * H, H));
    const c2 = add(mul(f, c!), mul(i, g));
    return [mul(o, tanh(c2)), c2];
  };
}

/** GRU with gates (r, z, n): n = tanh(W_in x + b_in + r·(W_hn h + b_hn)), h' = (1 − z)·n + z·h. */
export class GRU extends RecurrentBase {
  constructor(inputSize: number, hiddenSize: number, options: RecurrentOptions = {}) {
    super('GRU', inputSize, hiddenSize, options);
  }
  protected cell: Cell = (xp, h, _c, whh, bhh) => {
    const H = this.hiddenSize;
    const hp = hiddenProjection(h, whh, bhh);
    const r = sigmoid(add(narrow(xp, 1, 0, H), narrow(hp, 1, 0, H)));
    const z = sigmoid(add(narrow(xp, 1, H, H), narrow(hp, 1, H, H)));
    const n = tanh(add(narrow(xp, 1, 2 * H, H), mul(r, narrow(hp, 1, 2 * H, H))));
    return [add(mul(sub(1, z), n), mul(z, h)), undefined];
  };
}
