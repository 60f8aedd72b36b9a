// gptqQuantizeModel: GPTQ (gptq.ts) on every Linear layer of a module tree, with calibration inputs
// collected by running the model itself, and the layers swapped for QuantizedLinear as
// quantizeModel does.
//
// Sequential, as GPTQ: layers are quantized in the order the model first calls them, and each one's
// Hessian comes from a calibration pass through the model whose earlier layers are already
// quantized, so a layer's rounding also compensates for the error the layers before it introduced.
// That is one forward pass over the calibration data per layer (the first pass also records the
// call order). `sequential: false` instead takes every layer's inputs from one pass through the
// float model (faster; the errors of earlier layers are then not seen).
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
import { gptqQuantize, type GptqOptions, type GptqResult } from './gptq.js';
import { Hessian } from './hessian.js';
import { QuantizedLinear } from './quantized-linear.js';
import {
  linearTargets, modelBytes, parentsOf, swapLinear, swapReport, withLayer,
  type QuantizedLayerReport, type QuantizeModelOptions, type QuantizeModelResult,
} from './quantize-model.js';

export interface GptqModelOptions extends Omit<GptqOptions, 'name'>, Pick<QuantizeModelOptions, 'include' | 'activations'> {
  /**
   * true (default): quantize layer after layer, each calibrated through the already-quantized
   * earlier layers (one pass over the calibration data per layer). false: all from one pass
   * through the float model.
   */
  sequential?: boolean;
}

/**
 * The calibration forward passes: tensors, each given to `model.call(x)`, or a function that runs
 * the model over its calibration data (e.g. a training recipe's loss on a few batches). Either runs
 * without gradients, once per layer (sequential) or once.
 */
export type ModelCalibration = readonly Tensor[] | (() => void);

/**
 * GPTQ-quantizes the Linear layers of `model` (or those `include` picks) in place, calibrating on
 * `calibration`, and returns the model and quantizeModel's report with each layer's output error
 * for GPTQ and for round to nearest. Options are gptqQuantize's (default 8-bit symmetric per-channel,
 * as quantizeModel; GPTQ is mostly used at `bits: 4` with `scheme: 'group'`). If a layer fails
 * (an error naming it), the layers quantized before it stay swapped.
 */
export function gptqQuantizeModel<M extends AnyModule>(model: M, calibration: ModelCalibration, options: GptqModelOptions = {}): QuantizeModelResult<M> {
  const { include, activations, sequential = true, ...gopts } = options;
  const targets = linearTargets('gptqQuantizeModel', model, include);
  if (typeof calibration !== 'function' && (!Array.isArray(calibration) || calibration.length === 0)) {
    throw new TesseraError('gptqQuantizeModel: give calibration data: a non-empty list of input tensors, or a function that runs the model over its calibration batches.');
  }
  const forward = model as unknown as { call(x: Tensor): unknown };
  const run = typeof calibration === 'function' ? calibration : () => { for (const x of calibration) scope(() => { forward.call(x); }); };
  const modelBytesBefore = modelBytes(model);
  const parents = parentsOf(model);
  const names = new Map(targets.map(([name, linear]) => [linear, name]));
  const layers: QuantizedLayerReport[] = [];
  let root: M | QuantizedLinear = model;

  noGrad(() => {
    // Pass 1 (float model): the call order; the Hessians of all layers, or (sequential) of the first one called.
    const order: Linear[] = [];
    const first = capture(targets.map(([, l]) => l), run, order, sequential ? 'first' : 'all');
    const missing = targets.filter(([, l]) => !order.includes(l)).map(([n]) => n || '(root)');
    if (missing.length > 0) {
      throw new TesseraError(`gptqQuantizeModel: the calibration pass never called layer${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')}; ` +
        'GPTQ needs each layer\'s inputs. Leave them out with include, or quantize them with quantizeModel (round to nearest).');
    }
    order.forEach((linear, index) => {
      const name = names.get(linear)!;
      const hessian = index === 0 || !sequential ? first.get(linear) : capture([linear], run, [], 'all').get(linear);
      if (hessian === undefined) {
        throw new TesseraError(`gptqQuantizeModel: layer '${name || '(root)'}' was called in the first calibration pass but not in a later one; ` +
          'the calibration function must run the same forward passes every time it is called.');
      }
      let q: QuantizedLinear;
      let result: GptqResult;
      try {
        result = gptqQuantize(linear.weight.detach(), hessian, gopts);
        const bias = linear.bias?.detach();
        q = new QuantizedLinear(linear.inFeatures, linear.outFeatures, result.quantized,
          bias === undefined || bias.dtype === 'float32' || bias.dtype === 'float64' ? bias : cast(bias, 'float32'), { activations });
      } catch (e) {
        throw withLayer('gptqQuantizeModel', name, linear, e);
      }
      const report = { ...swapReport(name, linear, q), outputError: result.outputError, rtnOutputError: result.rtnOutputError };
      layers.push(report);
      if (swapLinear(parents, name, linear, q)) root = q;
    });
  });
  // In call order; list them as quantizeModel does, in the model's order.
  const position = new Map(targets.map(([name], i) => [name, i]));
  layers.sort((a, b) => position.get(a.name)! - position.get(b.name)!);
  return { model: root, report: { layers, modelBytesBefore, modelBytesAfter: modelBytes(root as AnyModule) } };
}

/**
 * Runs `run` once with the forward of each layer wrapped to record the call order (into `order`)
 * and accumulate the inputs' Hessian: of every layer ('all') or of the first one called ('first').
 */
function capture(linears: Linear[], run: () => void, order: Linear[], which: 'all' | 'first'): Map<Linear, Hessian> {
  const hessians = new Map<Linear, Hessian>();
  const restore: Array<() => void> = [];
  try {
    for (const linear of linears) {
      const own = Object.prototype.hasOwnProperty.call(linear, 'forward');
      const previous = linear.forward;
      const wrapped = (x: Tensor): Tensor => {
        if (!order.includes(linear)) order.push(linear);
        if (which === 'all' || order[0] === linear) {
          let h = hessians.get(linear);
          if (h === undefined) hessians.set(linear, h = new Hessian(linear.inFeatures));
          h.add(x);
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
  return hessians;
}
