// Feeds for a model made from its declared inputs: symbolic dimensions given by name, float inputs
// drawn from a seeded normal distribution, integer and boolean inputs filled with a given value
// (default 0). For `tessera onnx` and benchmarks, where no real data is at hand.

import type { Tensor } from '../core/tensor.js';
import { TesseraError } from '../core/errors.js';
import { Generator } from '../core/random.js';
import { full, randn } from '../ops/creation.js';
import { cast } from '../ops/elementwise.js';
import { ElemType } from './proto.js';
import type { OnnxModel } from './model.js';
import { isFloatElemType, requireStorageDType } from './value.js';

const TYPE_BY_NAME: Record<string, number> = {
  FLOAT: ElemType.FLOAT, DOUBLE: ElemType.DOUBLE, FLOAT16: ElemType.FLOAT16, BFLOAT16: ElemType.BFLOAT16,
  INT8: ElemType.INT8, UINT8: ElemType.UINT8, INT16: ElemType.INT16, UINT16: ElemType.UINT16, INT32: ElemType.INT32,
  UINT32: ElemType.UINT32, INT64: ElemType.INT64, UINT64: ElemType.UINT64, BOOL: ElemType.BOOL,
};

export interface SampleFeedOptions {
  /** Sizes of symbolic (or unknown) dimensions by name; unnamed unknown dimensions need '?'. Missing ones are 1. */
  readonly dims?: Readonly<Record<string, number>>;
  /** A constant for an input (every element), instead of random values / zeros. */
  readonly values?: Readonly<Record<string, number>>;
  /** Whole shapes by input name, overriding the declared ones (for inputs with unnamed unknown dimensions). */
  readonly shapes?: Readonly<Record<string, readonly number[]>>;
  readonly seed?: number;
}

/** The shape an input will be fed with, symbolic dimensions resolved. */
export function resolveShape(name: string, shape: readonly (number | string | undefined)[] | undefined, dims: Readonly<Record<string, number>>): number[] {
  if (shape === undefined) throw new TesseraError(`onnx: input '${name}' declares no shape; feed it yourself`);
  return shape.map((d) => (typeof d === 'number' ? d : dims[d ?? '?'] ?? 1));
}

/** One tensor per declared input of `model`. */
export function sampleFeeds(model: OnnxModel, options: SampleFeedOptions = {}): Record<string, Tensor> {
  const generator = new Generator(options.seed ?? 0);
  const feeds: Record<string, Tensor> = {};
  for (const input of model.inputs) {
    if (input.kind !== 'tensor' || input.elemType === undefined) {
      throw new TesseraError(`onnx: input '${input.name}' is a ${input.kind}; only tensor inputs can be made up`);
    }
    const type = TYPE_BY_NAME[input.elemType];
    if (type === undefined) throw new TesseraError(`onnx: input '${input.name}' has element type ${input.elemType}, which tessera cannot hold`);
    const dtype = requireStorageDType(type, `input '${input.name}'`);
    const shape = options.shapes?.[input.name] !== undefined ? [...options.shapes[input.name]!] : resolveShape(input.name, input.shape, options.dims ?? {});
    const constant = options.values?.[input.name];
    if (constant !== undefined) feeds[input.name] = full(shape, constant, { dtype });
    else if (isFloatElemType(type)) feeds[input.name] = cast(randn(shape, { generator, dtype: 'float32' }), dtype);
    else feeds[input.name] = full(shape, 0, { dtype });
  }
  return feeds;
}
