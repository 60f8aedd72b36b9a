// gradcheck: compares the analytical Jacobian of a function (reverse mode: one vjp per output
// element with a basis cotangent; forward mode: one jvp per input element with a basis tangent)
// against central finite differences in float64, like torch.autograd.gradcheck.
// gradgradcheck applies the same check to the function's vjp, which tests second derivatives
// (reverse-over-reverse and forward-over-reverse).
import { Tensor } from '../core/tensor.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import { isFloating } from '../core/dtype.js';
import { tensor } from '../ops/creation.js';
import { bind } from '../ops/dispatch.js';
import { reshape, detach } from '../ops/shape.js';
import { gradientsOf } from './backward.js';
import { jvp } from './forward.js';
import { vjp } from './functional.js';
import { enableGrad } from './mode.js';
import { Generator } from '../core/random.js';

export type GradcheckFn = (...xs: Tensor[]) => Tensor | readonly Tensor[];

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Relative tolerance, against the numerical value (default 1e-3). */
  rtol?: number;
  /** Which analytical Jacobians to check (default 'both'). */
  mode?: 'vjp' | 'jvp' | 'both';
  /** Name used in the failure message (default: the function's name). */
  name?: string;
  /** Throw a TesseraError describing the worst mismatch when the check fails (default true). */
  throwOnFailure?: boolean;
}

export interface GradcheckMismatch {
  mode: 'vjp' | 'jvp';
  /** Which argument of f. */
  input: number;
  /** Position in the (flattened, concatenated) output and in the input. */
  outputIndex: number;
  inputIndex: number[];
  analytical: number;
  numerical: number;
  /** |analytical - numerical| - (atol + rtol * |numerical|): positive means a failure. */
  excess: number;
}

export interface GradcheckReport {
  ok: boolean;
  /** Which arguments were differentiated (the floating ones). */
  inputs: number[];
  /** Largest |analytical - numerical| per checked mode. */
  maxAbsError: { vjp?: number; jvp?: number };
  /** The entry closest to (or furthest past) the tolerance, whether or not the check failed. */
  worst: GradcheckMismatch | undefined;
  /** Finite-difference Jacobians per differentiated input, [outputSize x inputSize] row-major. */
  numerical: Float64Array[];
}

/** f's outputs flattened and concatenated into one 1-D tensor. */
function flatOutput(f: GradcheckFn, name: string): (...xs: Tensor[]) => Tensor {
  return (...xs) => {
    const out = f(...xs);
    const list = out instanceof Tensor ? [out] : [...out];
    if (list.length === 0) throw new TesseraError(`gradcheck: ${name} returned no tensors.`);
    for (const o of list) {
      if (!isFloating(o.dtype)) {
        throw new TesseraError(`gradcheck: ${name} returned a ${o.dtype} tensor of shape ${fmtShape(o.shape)}; only floating outputs have derivatives.`);
      }
    }
    const flat = list.map((o) => reshape(o, [-1]));
    return flat.length === 1 ? flat[0]! : bind('cat', flat, { axis: 0 });
  };
}

function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

function basis(n: number, i: number, shape: readonly number[], backend: string): Tensor {
  const v = new Float64Array(n);
  v[i] = 1;
  return tensor(v, { dtype: 'float64', shape: [...shape], backend });
}

function asFloat64Array(t: Tensor): Float64Array {
  return Float64Array.from(t.data());
}

/**
 * Checks f's derivatives at `inputs` (every floating input must be float64; integer inputs such as
 * indices are passed through unchanged). Returns a report; throws on failure unless
 * `throwOnFailure: false`.
 */
export function gradcheck(f: GradcheckFn, inputs: readonly Tensor[], opts: GradcheckOptions = {}): GradcheckReport {
  const eps = opts.eps ?? 1e-6, atol = opts.atol ?? 1e-5, rtol = opts.rtol ?? 1e-3;
  const mode = opts.mode ?? 'both';
  const name = opts.name ?? (f.name || 'f');
  const diff = inputs.map((x, i) => (isFloating(x.dtype) ? i : -1)).filter((i) => i >= 0);
  for (const i of diff) {
    const x = inputs[i]!;
    x.assertAlive('gradcheck');
    if (x.dtype !== 'float64') {
      throw new TesseraError(`gradcheck: input ${i} of ${name} is ${x.dtype} (shape ${fmtShape(x.shape)}); finite differences need float64 inputs. Cast with .double().`);
    }
  }
  if (diff.length === 0) throw new TesseraError(`gradcheck: ${name} has no floating inputs to differentiate.`);
  const g = flatOutput(f, name);
  const base = inputs.map((x) => detach(x));
  const out0 = g(...base);
  const m = out0.size;

  // Numerical Jacobians by central differences.
  const numerical = diff.map((i) => {
    const x = inputs[i]!;
    const n = x.size;
    const values = asFloat64Array(x);
    const jac = new Float64Array(m * n);
    for (let j = 0; j < n; j++) {
      const at = (delta: number): Float64Array => {
        const v = values.slice();
        v[j] = v[j]! + delta;
        const xs = base.slice();
        xs[i] = tensor(v, { dtype: 'float64', shape: [...x.shape], backend: x.backend });
        return asFloat64Array(g(...xs));
      };
      const plus = at(eps), minus = at(-eps);
      for (let k = 0; k < m; k++) jac[k * n + j] = (plus[k]! - minus[k]!) / (2 * eps);
    }
    return jac;
  });

  let worst: GradcheckMismatch | undefined;
  const maxAbsError: { vjp?: number; jvp?: number } = {};
  const compare = (which: 'vjp' | 'jvp', d: number, k: number, j: number, analytical: number): void => {
    const x = inputs[diff[d]!]!;
    const numericalValue = numerical[d]![k * x.size + j]!;
    const err = Math.abs(analytical - numericalValue);
    const excess = (Number.isNaN(err) ? Infinity : err) - (atol + rtol * Math.abs(numericalValue));
    maxAbsError[which] = Math.max(maxAbsError[which] ?? 0, Number.isNaN(err) ? Infinity : err);
    if (worst === undefined || excess > worst.excess) {
      worst = { mode: which, input: diff[d]!, outputIndex: k, inputIndex: unravel(j, x.shape), analytical, numerical: numericalValue, excess };
    }
  };

  if (mode === 'vjp' || mode === 'both') {
    enableGrad(() => {
      const leaves = base.map((x, i) => (diff.includes(i) ? detach(x).requiresGrad_() : x));
      const out = g(...leaves);
      const diffLeaves = diff.map((i) => leaves[i]!);
      for (let k = 0; k < m; k++) {
        const gs = out.requiresGrad ? gradientsOf(out, diffLeaves, basis(m, k, out.shape, out.backend), { retainGraph: true }) : diffLeaves.map(() => undefined);
        gs.forEach((gi, d) => {
          const row = gi === undefined ? new Float64Array(diffLeaves[d]!.size) : asFloat64Array(gi);
          row.forEach((a, j) => compare('vjp', d, k, j, a));
        });
      }
    });
  }
  if (mode === 'jvp' || mode === 'both') {
    diff.forEach((i, d) => {
      const x = base[i]!;
      for (let j = 0; j < x.size; j++) {
        const only = (xi: Tensor): Tensor => { const xs = base.slice(); xs[i] = xi; return g(...xs); };
        const [, t] = jvp(only, [x], [basis(x.size, j, x.shape, x.backend)]);
        asFloat64Array(t).forEach((a, k) => compare('jvp', d, k, j, a));
      }
    });
  }

  const ok = worst === undefined || worst.excess <= 0;
  const report: GradcheckReport = { ok, inputs: diff, maxAbsError, worst, numerical };
  if (!ok && (opts.throwOnFailure ?? true)) {
    const w = worst!;
    const x = inputs[w.input]!;
    throw new TesseraError(
      `gradcheck: the ${w.mode === 'vjp' ? 'reverse-mode (vjp)' : 'forward-mode (jvp)'} derivative of ${name} does not match finite differences: ` +
      `d output[${w.outputIndex}] / d input ${w.input}${fmtShape(w.inputIndex)} (input shape ${fmtShape(x.shape)}, output size ${m}) ` +
      `is ${w.analytical} analytically but ${w.numerical} numerically (|difference| ${Math.abs(w.analytical - w.numerical)} > ` +
      `atol ${atol} + rtol ${rtol} * |numerical|). Check the op's ${w.mode} rule, or move the inputs away from non-differentiable points.`);
  }
  return report;
}

export interface GradgradcheckOptions extends GradcheckOptions {
  /** Seed of the random cotangent the first derivative is taken with (default 0). */
  seed?: number;
}

/**
 * Second-order check: gradcheck of x ↦ vjp(f, x)(u) for a fixed random cotangent u, so both the
 * reverse-over-reverse and the forward-over-reverse derivatives of f are compared with finite
 * differences of its (analytical) gradient.
 */
export function gradgradcheck(f: GradcheckFn, inputs: readonly Tensor[], opts: GradgradcheckOptions = {}): GradcheckReport {
  const name = opts.name ?? (f.name || 'f');
  const g = flatOutput(f, name);
  const diff = inputs.map((x, i) => (isFloating(x.dtype) ? i : -1)).filter((i) => i >= 0);
  const m = g(...inputs.map((x) => detach(x))).size;
  const gen = new Generator(opts.seed ?? 0);
  const u = tensor(Float64Array.from({ length: m }, () => gen.normal()), { dtype: 'float64', shape: [m], ...(inputs.length > 0 ? { backend: inputs[0]!.backend } : {}) });
  const firstDerivative = (...xs: Tensor[]): Tensor[] => {
    const dxs = diff.map((i) => xs[i]!);
    const [, pullback] = vjp((...ds: Tensor[]) => {
      const all = xs.slice();
      diff.forEach((i, d) => { all[i] = ds[d]!; });
      return g(...all);
    }, ...dxs);
    return pullback(u);
  };
  return gradcheck(firstDerivative, inputs, { ...opts, name: `the gradient of ${name}` });
}
