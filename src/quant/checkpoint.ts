// Saving and loading quantized models in the safetensors checkpoint format.
//
// A quantized model's state dict holds, per QuantizedLinear, `<name>.weight_q` (I8 codes, or U8 for
// affine int8 and for packed int4), `<name>.weight_scale` (F32), `<name>.weight_zero_point` (I32,
// affine only), `<name>.bias` (F32) and, for AWQ layers, `<name>.input_scale` (F32, the factor the
// input is multiplied by before the product). The codes alone do not say how they were packed, so a
// QuantizationConfig (which layers, with which bits/scheme/axis/group size/symmetry) travels with
// them: in the file's metadata under "tessera.quantization" (saveQuantized), or as a plain value in
// a training-state tree (tessera quantize). To load, build the float model, call
// prepareQuantized(model, config) to swap the listed Linear layers for empty QuantizedLinear
// layers of the right geometry, then loadStateDict as usual.
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { Linear } from '../nn/layers/linear.js';
import type { AnyModule } from '../nn/module.js';
import { parseStateDict, serializeStateDict, type LoadOptions } from '../io/checkpoint.js';
import { loadFile, saveFile } from '../io/file.js';
import { QuantizedLinear } from './quantized-linear.js';
import { replaceChild } from './quantize-model.js';
import { specFromJson, specToJson, type QuantSpecJson } from './scheme.js';

export const QUANTIZATION_METADATA_KEY = 'tessera.quantization';

/** Which layers of a model are quantized, and how: plain JSON. */
export interface QuantizationConfig {
  version: 1;
  /**
   * `activations` is present only for dynamic int8 layers ('dynamic-int8'), `inputScale` only for
   * layers with an input scale (AWQ; true). Configs written before input scales existed lack it and
   * load as they did.
   */
  layers: Record<string, QuantSpecJson & { inFeatures: number; outFeatures: number; bias: boolean; activations?: 'dynamic-int8'; inputScale?: true }>;
}

/** The QuantizationConfig of a model's QuantizedLinear layers. */
export function quantizationConfig(model: AnyModule): QuantizationConfig {
  const layers: QuantizationConfig['layers'] = {};
  for (const [name, m] of model.namedModules()) {
    if (m instanceof QuantizedLinear) {
      layers[name] = { ...specToJson(m.spec), inFeatures: m.inFeatures, outFeatures: m.outFeatures, bias: m.bias !== undefined };
      if (m.activations === 'dynamic-int8') layers[name]!.activations = 'dynamic-int8';
      if (m.input_scale !== undefined) layers[name]!.inputScale = true;
    }
  }
  return { version: 1, layers };
}

/**
 * Swaps the Linear layers named in `config` for empty QuantizedLinear layers (on the Linear's
 * backend) so that a quantized state dict loads into the model. Returns the model (a new
 * QuantizedLinear when the root itself is listed, under the name '').
 */
export function prepareQuantized<M extends AnyModule>(model: M, config: QuantizationConfig): M | QuantizedLinear {
  if (config === null || typeof config !== 'object' || config.version !== 1 || typeof config.layers !== 'object') {
    throw new TesseraError(`prepareQuantized: not a quantization config (expected { version: 1, layers: {...} }, got ${JSON.stringify(config)?.slice(0, 80)}).`);
  }
  const modules = new Map(model.namedModules());
  const parents = new Map<string, [AnyModule, string]>();
  for (const [prefix, m] of modules) for (const [name] of m.namedChildren()) parents.set(prefix ? `${prefix}.${name}` : name, [m, name]);
  let root: M | QuantizedLinear = model;
  for (const [name, layer] of Object.entries(config.layers)) {
    const m = modules.get(name);
    if (m === undefined) {
      throw new TesseraError(`prepareQuantized: the config quantizes layer '${name}', which this model lacks; build the model the checkpoint was made from.`);
    }
    if (m instanceof QuantizedLinear) continue;
    if (!(m instanceof Linear)) throw new TesseraError(`prepareQuantized: layer '${name}' is a ${m.constructor.name}, not a Linear; only Linear layers are quantized.`);
    if (m.inFeatures !== layer.inFeatures || m.outFeatures !== layer.outFeatures) {
      throw new TesseraError(`prepareQuantized: layer '${name}' is Linear ${m.inFeatures} → ${m.outFeatures} here but ${layer.inFeatures} → ${layer.outFeatures} in the config.`);
    }
    const spec = specFromJson('prepareQuantized', layer, [layer.outFeatures, layer.inFeatures]);
    if (layer.activations !== undefined && layer.activations !== 'dynamic-int8') {
      throw new TesseraError(`prepareQuantized: layer '${name}' has activations ${JSON.stringify(layer.activations)} in the config; only 'dynamic-int8' (or none) is known.`);
    }
    if (layer.inputScale !== undefined && layer.inputScale !== true) {
      throw new TesseraError(`prepareQuantized: layer '${name}' has inputScale ${JSON.stringify(layer.inputScale)} in the config; expected true (an AWQ input scale) or no entry.`);
    }
    const q = QuantizedLinear.empty(layer.inFeatures, layer.outFeatures, spec,
      { bias: layer.bias, backend: m.weight.backend, activations: layer.activations ?? 'none', inputScale: layer.inputScale === true });
    q.training = m.training;
    if (name === '') root = q;
    else {
      const [parent, local] = parents.get(name)!;
      replaceChild(parent, local, q as unknown as AnyModule);
    }
  }
  return root;
}

/** The bytes of a safetensors file with a quantized model's state dict and its config. */
export function serializeQuantized(model: AnyModule, metadata?: Record<string, string>): Uint8Array {
  return serializeStateDict(model.stateDict(), { format: 'pt', ...metadata, [QUANTIZATION_METADATA_KEY]: JSON.stringify(quantizationConfig(model)) });
}

/** Loads bytes written by serializeQuantized into a float model of the same architecture (swapping its layers). */
export function parseQuantizedInto<M extends AnyModule>(model: M, bytes: Uint8Array, options: LoadOptions = {}): M | QuantizedLinear {
  const { tensors, metadata } = parseStateDict(bytes, options);
  const text = metadata?.[QUANTIZATION_METADATA_KEY];
  if (text === undefined) {
    throw new TesseraError(`loadQuantized: the file has no "${QUANTIZATION_METADATA_KEY}" metadata, so it is not a quantized model written by saveQuantized; load it with io.load and Module.loadStateDict.`);
  }
  const root = prepareQuantized(model, JSON.parse(text) as QuantizationConfig);
  (root as AnyModule).loadStateDict(tensors as Record<string, Tensor>);
  return root;
}

/** Saves a quantized model (state dict + config) as a safetensors file, atomically. */
export async function saveQuantized(path: string, model: AnyModule, metadata?: Record<string, string>): Promise<void> {
  await saveFile(path, serializeQuantized(model, metadata));
}

/** Loads a file written by saveQuantized into a float model of the same architecture; returns the model. */
export async function loadQuantized<M extends AnyModule>(path: string, model: M, options: LoadOptions = {}): Promise<M | QuantizedLinear> {
  return parseQuantizedInto(model, await loadFile(path), options);
}
