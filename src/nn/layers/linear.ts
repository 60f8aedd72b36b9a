// Linear (y = x W^T + b), Identity and Flatten.
import { defaultFloatDType } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Generator } from '../../core/random.js';
import type { DType } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import { zeros } from '../../ops/creation.js';
import { add } from '../../ops/elementwise.js';
import { matmul } from '../../ops/linalg.js';
import { flatten } from '../../ops/shape.js';
import { autocastOperands } from '../../ops/dispatch.js';
import { defaultLayerInit_ } from '../init.js';
import { Module, Parameter } from '../module.js';

export interface LayerOptions {
  dtype?: DType;
  backend?: string;
  /** Generator for the initial values (default: the global one, seeded by manualSeed). */
  generator?: Generator;
}

export interface LinearOptions extends LayerOptions {
  bias?: boolean;
}

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | undefined;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super();
    check(Number.isInteger(inFeatures) && inFeatures > 0 && Number.isInteger(outFeatures) && outFeatures > 0, 'Linear', () =>
      `inFeatures and outFeatures must be positive integers, got ${inFeatures} and ${outFeatures}.`);
    const create = { dtype: opts.dtype ?? defaultFloatDType(), backend: opts.backend } as const;
    this.weight = new Parameter(zeros([outFeatures, inFeatures], create));
    this.bias = opts.bias === false ? undefined : new Parameter(zeros([outFeatures], create));
    defaultLayerInit_(this.weight, this.bias, opts.generator);
  }

  override forward(x: Tensor): Tensor {
    check(x.shape[x.rank - 1] === this.inFeatures, 'Linear', () =>
      `input of shape ${fmtShape(x.shape)} has ${x.shape[x.rank - 1]} features in its last dimension; this layer expects ${this.inFeatures}.`);
    // Under autocast, input, weight and bias are cast together, so the bias add stays in the region's dtype.
    const [input, weight, bias] = autocastOperands('linear', [x, this.weight, this.bias] as const);
    const y = matmul(input, weight.mT);
    return bias === undefined ? y : add(y, bias);
  }
}

export class Identity extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }
}

/** Flattens dimensions startDim..endDim (default: all but the batch dimension). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}
