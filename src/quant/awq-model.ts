// awqQuantizeModel: AWQ (awq.ts) on every Linear layer of a module tree, calibrated by running the
// model itself, sequentially through the already-quantized earlier layers by default (the driver,
// calibrated-model.ts, is GPTQ's too). Each layer becomes a QuantizedLinear holding Q(W diag(s))
// and the input scale 1/s.
import type { AnyModule } from '../nn/module.js';
import { ActivationStats } from './activation-stats.js';
import { awqQuantize, type AwqOptions } from './awq.js';
import { calibratedQuantizeModel, type CalibratedModelOptions, type ModelCalibration } from './calibrated-model.js';
import type { QuantizeModelResult } from './quantize-model.js';

export interface AwqModelOptions extends Omit<AwqOptions, 'name'>, CalibratedModelOptions {}

/**
 * AWQ-quantizes the Linear layers of `model` (or those `include` picks) in place, calibrating on
 * `calibration` (input tensors, or a function that runs the model), and returns the model and
 * quantizeModel's report with each layer's output error for AWQ and for round to nearest and its
 * α. Options are awqQuantize's (default 8-bit symmetric per-channel, as quantizeModel; AWQ is mostly
 * used at `bits: 4` with `scheme: 'group'`). If a layer fails (an error naming it), the layers
 * quantized before it stay swapped.
 */
export function awqQuantizeModel<M extends AnyModule>(model: M, calibration: ModelCalibration, options: AwqModelOptions = {}): QuantizeModelResult<M> {
  const { include, activations, sequential, ...aopts } = options;
  return calibratedQuantizeModel(model, calibration, { include, activations, sequential }, {
    op: 'awqQuantizeModel',
    method: 'AWQ',
    report: 'awq',
    stats: (linear) => new ActivationStats(linear.inFeatures),
    quantize: (linear, stats) => {
      const r = awqQuantize(linear.weight.detach(), stats, aopts);
      return { weight: r.quantized, inputScale: r.inputScale, report: { outputError: r.outputError, rtnOutputError: r.rtnOutputError, alpha: r.alpha } };
    },
  });
}
