// gptqQuantizeModel: GPTQ (gptq.ts) on every Linear layer of a module tree, with calibration inputs
// collected by running the model itself (sequentially through the already-quantized earlier layers
// by default), and the layers swapped for QuantizedLinear as quantizeModel does. The driver
// (capture of each layer's inputs, call order, swapping, report) is calibrated-model.ts, shared
// with AWQ; what is GPTQ's here is the accumulator (the inputs' Hessian) and the rounding.
import type { AnyModule } from '../nn/module.js';
import { calibratedQuantizeModel, type CalibratedModelOptions, type ModelCalibration } from './calibrated-model.js';
import { gptqQuantize, type GptqOptions } from './gptq.js';
import { Hessian } from './hessian.js';
import type { QuantizeModelResult } from './quantize-model.js';

export type { ModelCalibration } from './calibrated-model.js';

export interface GptqModelOptions extends Omit<GptqOptions, 'name'>, CalibratedModelOptions {}

/**
 * GPTQ-quantizes the Linear layers of `model` (or those `include` picks) in place, calibrating on
 * `calibration`, and returns the model and quantizeModel's report with each layer's output error
 * for GPTQ and for round to nearest. Options are gptqQuantize's (default 8-bit symmetric per-channel,
 * as quantizeModel; GPTQ is mostly used at `bits: 4` with `scheme: 'group'`). If a layer fails
 * (an error naming it), the layers quantized before it stay swapped.
 */
export function gptqQuantizeModel<M extends AnyModule>(model: M, calibration: ModelCalibration, options: GptqModelOptions = {}): QuantizeModelResult<M> {
  const { include, activations, sequential, ...gopts } = options;
  return calibratedQuantizeModel(model, calibration, { include, activations, sequential }, {
    op: 'gptqQuantizeModel',
    method: 'GPTQ',
    report: 'gptq',
    stats: (linear) => new Hessian(linear.inFeatures),
    quantize: (linear, hessian) => {
      const r = gptqQuantize(linear.weight.detach(), hessian, gopts);
      return { weight: r.quantized, report: { outputError: r.outputError, rtnOutputError: r.rtnOutputError } };
    },
  });
}
