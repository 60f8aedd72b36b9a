// Shared by the dynamic int8 tests (dynamic-int8.test.ts, dynamic-int8-kernel.test.ts).
import * as t from '../../src/index.js';
import { quant } from '../../src/index.js';

/** Shapes [m, k, n]: tails of the 4-row blocks, of the 8-element k steps and of the 2/4/8-feature tiles. */
export const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [1, 8, 1], [1, 13, 5], [2, 7, 3], [3, 17, 9], [4, 16, 8], [5, 64, 33], [6, 9, 2], [7, 100, 17],
  [9, 31, 40], [33, 257, 19], [64, 120, 70],
];

/** A random Linear's dynamic-int8 layer (per channel unless perTensor), with or without bias. */
export function layerFor(k: number, n: number, options: { bias?: boolean; perTensor?: boolean } = {}): quant.QuantizedLinear {
  const linear = new t.nn.Linear(k, n, { bias: options.bias ?? true });
  return quant.QuantizedLinear.fromLinear(linear, { bits: 8, scheme: options.perTensor ? 'per-tensor' : 'per-channel', activations: 'dynamic-int8' });
}

/** The reference formula on the layer's own codes and scales. */
export function referenceOf(layer: quant.QuantizedLinear, x: t.Tensor): Float32Array {
  const k = layer.inFeatures, m = x.size / k;
  return quant.dynamicInt8Reference(Float32Array.from(x.data()), m, k, quant.codesOf(layer.weight), layer.outFeatures, layer.weight_scale.data(), layer.bias?.data());
}

