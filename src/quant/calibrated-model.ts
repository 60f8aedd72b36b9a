// The model-level driver shared by the calibrated rounding methods (GPTQ, AWQ): run the model on
// calibration data, collect each Linear layer's inputs into a per-layer accumulator (a Hessian for
// GPTQ, ActivationStats for AWQ), quantize the layer from it, and swap it for a QuantizedLinear as
// quantizeModel does.
//
// Sequential by default: layers are quantized in the order the model first calls them, and each
// one's inputs come from a calibration pass through the model whose earlier layers are already
// quantized, so a layer's rounding also sees the error the layers before it introduced. That is one
// forward pass over the calibration data per layer (the first pass also records the call order).
// `sequential: false` instead takes every layer's inputs from one pass through the float model
// (faster; the errors of earlier layers are then not seen).
//
// Inputs are captured by wrapping the Linear's forward for the duration of a pass (an own
// `forward` on the instance, removed afterwards): Module has no forward hooks, and this needs no
// change to the model's code. A layer called several times per pass (shared weights, a decoder
// step loop) accumulates every call's inputs.
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { scope } from '../core/memory.js';
import type { Linear } from '../nn/layers/linear.js';
import type { AnyModule } from '../nn/module.js';
import { cast } from '../ops/elementwise.js';
import type { QuantizedTensor } from './quantized-tensor.js';
import { QuantizedLinear, type QuantizedLinearCallOptions } from './quantized-linear.js';
import {
  linearTargets, modelBytes, parentsOf, swapLinear, swapReport, withLayer,
  type QuantizedLayerReport, type QuantizeModelOptions, type QuantizeModelResult,
} from './quantize-model.js';

/**
 * The calibration forward passes: tensors, each given to `model.call(x)`, or a function that runs
 * the model over its calibration data (e.g. a training recipe's loss on a few batches). Either runs
 * without gradients, once per layer (sequential) or once.
 */
export type ModelCalibration = readonly Tensor[] | (() => void);

/** What a calibrated model-level quantization takes besides its method's own options. */
export interface CalibratedModelOptions extends Pick<QuantizeModelOptions, 'include' | 'activations'> {
  /**
   * true (default): quantize layer after layer, each calibrated through the already-quantized
   * earlier layers (one pass over the calibration data per layer). false: all from one pass
   * through the float model.
   */
  sequential?: boolean;
}

/** One method: how a layer's inputs are accumulated, and how the layer is quantized from them. */
export interface CalibratedMethod<S extends { add(x: Tensor): void }> {
  /** The public function's name, for errors ('gptqQuantizeModel'). */
  readonly op: string;
  /** The method's name in errors ('GPTQ'). */
  readonly method: string;
  readonly report: NonNullable<QuantizeModelResult<AnyModule>['report']['method']>;
  /** An empty accumulator for a layer's inputs. */
  stats(linear: Linear): S;
  /** The layer's quantized weight (and input scale, for AWQ) and the report fields it adds. */
  quantize(linear: Linear, stats: S): { weight: QuantizedTensor; inputScale?: Tensor; report: Partial<QuantizedLayerReport> };
}

/** Runs `method` over the Linear layers of `model` (see the module comment); returns quantizeModel's result. */
export function calibratedQuantizeModel<M extends AnyModule, S extends { add(x: Tensor): void }>(
  model: M, calibration: ModelCalibration, options: CalibratedModelOptions, method: CalibratedMethod<S>,
): QuantizeModelResult<M> {
  const { op } = method;
  const { include, activations, sequential = true } = options;
  const targets = linearTargets(op, model, include);
  if (typeof calibration !== 'function' && (!Array.isArray(calibration) || calibration.length === 0)) {
    throw new TesseraError(`${op}: give calibration data: a non-empty list of input tensors, or a function that runs the model over its calibration batches.`);
  }
  const forward = model as unknown as { call(x: Tensor): unknown };
  const run = typeof calibration === 'function' ? calibration : () => { for (const x of calibration) scope(() => { forward.call(x); }); };
  const modelBytesBefore = modelBytes(model);
  const parents = parentsOf(model);
  const names = new Map(targets.map(([name, linear]) => [linear, name]));
  const layers: QuantizedLayerReport[] = [];
  let root: M | QuantizedLinear = model;

  noGrad(() => {
    // Pass 1 (float model): the call order; the inputs of all layers, or (sequential) of the first one called.
    const order: Linear[] = [];
    const first = capture(targets.map(([, l]) => l), run, order, sequential ? 'first' : 'all', method);
    const missing = targets.filter(([, l]) => !order.includes(l)).map(([n]) => n || '(root)');
    if (missing.length > 0) {
      throw new TesseraError(`${op}: the calibration pass never called layer${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')}; ` +
        `${method.method} needs each layer's inputs. Leave them out with include, or quantize them with quantizeModel (round to nearest).`);
    }
    order.forEach((linear, index) => {
      const name = names.get(linear)!;
      const stats = index === 0 || !sequential ? first.get(linear) : capture([linear], run, [], 'all', method).get(linear);
      if (stats === undefined) {
        throw new TesseraError(`${op}: layer '${name || '(root)'}' was called in the first calibration pass but not in a later one; ` +
          'the calibration function must run the same forward passes every time it is called.');
      }
      let q: QuantizedLinear;
      let extra: Partial<QuantizedLayerReport>;
      try {
        const r = method.quantize(linear, stats);
        extra = r.report;
        q = quantizedLinearOf(linear, r.weight, { activations, inputScale: r.inputScale });
      } catch (e) {
        throw withLayer(op, name, linear, e);
      }
      layers.push({ ...swapReport(name, linear, q), ...extra });
      if (swapLinear(parents, name, linear, q)) root = q;
    });
  });
  // In call order; list them as quantizeModel does, in the model's order.
  const position = new Map(targets.map(([name], i) => [name, i]));
  layers.sort((a, b) => position.get(a.name)! - position.get(b.name)!);
  return { model: root, report: { layers, modelBytesBefore, modelBytesAfter: modelBytes(root as AnyModule), method: method.report } };
}

/** A QuantizedLinear with `linear`'s geometry and bias (kept in float32, or float64 if it was). */
function quantizedLinearOf(linear: Linear, weight: QuantizedTensor, options: QuantizedLinearCallOptions & { inputScale?: Tensor }): QuantizedLinear {
  const bias = linear.bias?.detach();
  return new QuantizedLinear(linear.inFeatures, linear.outFeatures, weight,
    bias === undefined || bias.dtype === 'float32' || bias.dtype === 'float64' ? bias : cast(bias, 'float32'), options);
}

/**
 * Runs `run` once with the forward of each layer wrapped to record the call order (into `order`)
 * and accumulate the inputs: of every layer ('all') or of the first one called ('first').
 */
function capture<S extends { add(x: Tensor): void }>(linears: Linear[], run: () => void, order: Linear[], which: 'all' | 'first', method: CalibratedMethod<S>): Map<Linear, S> {
  const stats = new Map<Linear, S>();
  const restore: Array<() => void> = [];
  try {
    for (const linear of linears) {
      const own = Object.prototype.hasOwnProperty.call(linear, 'forward');
      const previous = linear.forward;
      const wrapped = (x: Tensor): Tensor => {
        if (!order.includes(linear)) order.push(linear);
        if (which === 'all' || order[0] === linear) {
          let s = stats.get(linear);
          if (s === undefined) stats.set(linear, s = method.stats(linear));
          s.add(x);
        }
        return previous.call(linear, x);
      };
      linear.forward = wrapped;
      restore.push(() => {
        if (own) linear.forward = previous;
        else delete (linear as { forward?: unknown }).forward;
      });
    }
    run();
  } finally {
    for (const undo of restore) undo();
  }
  return stats;
}
