// Parameter initialisations with PyTorch's formulas (torch.nn.init), drawn from the core Generator so
// that a seed fixes a model's starting point. Each function fills the tensor in place and returns it.
import { check, fmtShape } from '../core/errors.js';
import { defaultGenerator, type Generator } from '../core/random.js';
import type { Tensor } from '../core/tensor.js';
import { assignValues } from './inplace.js';

export type Nonlinearity = 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear': case 'conv1d': case 'conv2d': case 'conv3d': case 'sigmoid': return 1;
    case 'tanh': return 5 / 3;
    case 'relu': return Math.SQRT2;
    case 'leaky_relu': { const a = param ?? 0.01; return Math.sqrt(2 / (1 + a * a)); }
    case 'selu': return 3 / 4;
  }
}

/** fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (weights are [out, in, ...kernel]). */
export function fanInAndFanOut(shape: readonly number[]): { fanIn: number; fanOut: number } {
  check(shape.length >= 2, 'init', () => `fan in and fan out need a tensor with at least 2 dimensions, got shape ${fmtShape(shape)}.`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

function fill(t: Tensor, sample: () => number): Tensor {
  const values = new Float64Array(t.size);
  for (let i = 0; i < values.length; i++) values[i] = sample();
  assignValues(t, values, 'init');
  return t;
}

export function uniform_(t: Tensor, low = 0, high = 1, generator: Generator = defaultGenerator): Tensor {
  return fill(t, () => low + (high - low) * generator.uniform());
}

export function normal_(t: Tensor, mean = 0, std = 1, generator: Generator = defaultGenerator): Tensor {
  return fill(t, () => mean + std * generator.normal());
}

/** Normal values redrawn until they fall in [a, b] (PyTorch's truncated normal, bounds in absolute units). */
export function truncNormal_(t: Tensor, mean = 0, std = 1, a = -2, b = 2, generator: Generator = defaultGenerator): Tensor {
  check(a < b, 'truncNormal_', () => `the bounds must satisfy a < b, got a=${a}, b=${b}.`);
  return fill(t, () => {
    for (;;) {
      const v = mean + std * generator.normal();
      if (v >= a && v <= b) return v;
    }
  });
}

export function constant_(t: Tensor, value: number): Tensor {
  return fill(t, () => value);
}
export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);

export interface KaimingOptions {
  /** The negative slope of the rectifier after this layer (leaky_relu only); default 0. */
  a?: number;
  mode?: 'fanIn' | 'fanOut';
  nonlinearity?: Nonlinearity;
  generator?: Generator;
}

/** He initialisation, uniform: bound = gain * sqrt(3 / fan). */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  const fan = (opts.mode ?? 'fanIn') === 'fanIn' ? fanIn : fanOut;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  const bound = fan === 0 ? 0 : gain * Math.sqrt(3 / fan);
  return uniform_(t, -bound, bound, opts.generator);
}

/** He initialisation, normal: std = gain / sqrt(fan). */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  const fan = (opts.mode ?? 'fanIn') === 'fanIn' ? fanIn : fanOut;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  return normal_(t, 0, fan === 0 ? 0 : gain / Math.sqrt(fan), opts.generator);
}

/** Glorot initialisation, uniform: bound = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, gain = 1, generator: Generator = defaultGenerator): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound, generator);
}

export function xavierNormal_(t: Tensor, gain = 1, generator: Generator = defaultGenerator): Tensor {
  const { fanIn, fanOut } = fanInAndFanOut(t.shape);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), generator);
}

/**
 * PyTorch's default for Linear and Conv layers: weight ~ kaiming_uniform(a = sqrt(5)), which is
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 */
export function defaultLayerInit_(weight: Tensor, bias: Tensor | undefined, generator: Generator = defaultGenerator, fanIn?: number): void {
  kaimingUniform_(weight, { a: Math.sqrt(5), generator });
  if (bias !== undefined) {
    const fan = fanIn ?? fanInAndFanOut(weight.shape).fanIn;
    const bound = fan > 0 ? 1 / Math.sqrt(fan) : 0;
    uniform_(bias, -bound, bound, generator);
  }
}
