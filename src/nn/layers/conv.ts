// Convolution layers (Conv1d/2d/3d, ConvTranspose1d/2d/3d) over the functional ops, with PyTorch's
// weight layouts ([out, in/groups, ...kernel]; transposed: [in, out/groups, ...kernel]) and default init.
import { defaultFloatDType } from '../../core/dtype.js';
import { check } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { zeros } from '../../ops/creation.js';
import { convNd, convTransposeNd, type SpatialArg } from '../../ops/nn/index.js';
import { defaultLayerInit_ } from '../init.js';
import { Module, Parameter } from '../module.js';
import type { LayerOptions } from './linear.js';

export interface ConvLayerOptions extends LayerOptions {
  stride?: SpatialArg;
  padding?: SpatialArg | 'valid' | 'same';
  dilation?: SpatialArg;
  groups?: number;
  bias?: boolean;
}

export interface ConvTransposeLayerOptions extends LayerOptions {
  stride?: SpatialArg;
  padding?: SpatialArg;
  outputPadding?: SpatialArg;
  dilation?: SpatialArg;
  groups?: number;
  bias?: boolean;
}

function kernelTuple(op: string, k: SpatialArg, dims: number): number[] {
  const t = typeof k === 'number' ? new Array<number>(dims).fill(k) : [...k];
  check(t.length === dims && t.every((v) => Number.isInteger(v) && v > 0), op, () => `kernelSize must be a positive integer or ${dims} of them, got ${JSON.stringify(k)}.`);
  return t;
}

function checkChannels(op: string, inC: number, outC: number, groups: number): void {
  check(Number.isInteger(inC) && inC > 0 && Number.isInteger(outC) && outC > 0, op, () => `channel counts must be positive integers, got in ${inC}, out ${outC}.`);
  check(Number.isInteger(groups) && groups > 0 && inC % groups === 0 && outC % groups === 0, op, () =>
    `groups ${groups} must divide both inChannels ${inC} and outChannels ${outC}.`);
}

class ConvNd extends Module {
  weight: Parameter;
  bias: Parameter | undefined;
  readonly kernelSize: number[];

  constructor(readonly dims: number, readonly inChannels: number, readonly outChannels: number, kernelSize: SpatialArg, readonly options: ConvLayerOptions = {}) {
    super();
    const op = `Conv${dims}d`;
    const groups = options.groups ?? 1;
    checkChannels(op, inChannels, outChannels, groups);
    this.kernelSize = kernelTuple(op, kernelSize, dims);
    const create = { dtype: options.dtype ?? defaultFloatDType(), backend: options.backend } as const;
    this.weight = new Parameter(zeros([outChannels, inChannels / groups, ...this.kernelSize], create));
    this.bias = options.bias === false ? undefined : new Parameter(zeros([outChannels], create));
    defaultLayerInit_(this.weight, this.bias, options.generator);
  }

  override forward(x: Tensor): Tensor {
    const o = this.options;
    return convNd(`Conv${this.dims}d`, this.dims, x, this.weight, {
      ...(this.bias ? { bias: this.bias } : {}), stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1, groups: o.groups ?? 1,
    });
  }
}

export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: SpatialArg, options: ConvLayerOptions = {}) {
    super(1, inChannels, outChannels, kernelSize, options);
  }
}
export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: SpatialArg, options: ConvLayerOptions = {}) {
    super(2, inChannels, outChannels, kernelSize, options);
  }
}
export class Conv3d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: SpatialArg, options: ConvLayerOptions = {}) {
    super(3, inChannels, outChannels, kernelSize, options);
  }
}

class ConvTransposeNd extends Module {
  weight: Parameter;
  bias: Parameter | undefined;
  readonly kernelSize: number[];

  constructor(readonly dims: number, readonly inChannels: number, readonly outChannels: number, kernelSize: SpatialArg, readonly options: ConvTransposeLayerOptions = {}) {
    super();
    const op = `ConvTranspose${dims}d`;
    const groups = options.groups ?? 1;
    checkChannels(op, inChannels, outChannels, groups);
    this.kernelSize = kernelTuple(op, kernelSize, dims);
    const create = { dtype: options.dtype ?? defaultFloatDType(), backend: options.backend } as const;
    this.weight = new Parameter(zeros([inChannels, outChannels / groups, ...this.kernelSize], create));
    this.bias = options.bias === false ? undefined : new Parameter(zeros([outChannels], create));
    defaultLayerInit_(this.weight, this.bias, options.generator);
  }

  override forward(x: Tensor): Tensor {
    const o = this.options;
    return convTransposeNd(`ConvTranspose${this.dims}d`, this.dims, x, this.weight, {
      ...(this.bias ? { bias: this.bias } : {}), stride: o.stride ?? 1, padding: o.padding ?? 0, outputPadding: o.outputPadding ?? 0,
      dilation: o.dilation ?? 1, groups: o.groups ?? 1,
    });
  }
}

export class ConvTranspose1d extends ConvTransposeNd {
  constructor(inChannels: number, outChannels: number, kernelSize: SpatialArg, options: ConvTransposeLayerOptions = {}) {
    super(1, inChannels, outChannels, kernelSize, options);
  }
}
export class ConvTranspose2d extends ConvTransposeNd {
  constructor(inChannels: number, outChannels: number, kernelSize: SpatialArg, options: ConvTransposeLayerOptions = {}) {
    super(2, inChannels, outChannels, kernelSize, options);
  }
}
export class ConvTranspose3d extends ConvTransposeNd {
  constructor(inChannels: number, outChannels: number, kernelSize: SpatialArg, options: ConvTransposeLayerOptions = {}) {
    super(3, inChannels, outChannels, kernelSize, options);
  }
}
