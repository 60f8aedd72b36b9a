// Function transformations over tensors, JAX-style: grad, valueAndGrad, vjp, jacobian (reverse and
// forward), hessian. They run on the same tape as Tensor.backward(), without touching users' .grad.
import { Tensor } from '../core/tensor.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import { isFloating } from '../core/dtype.js';
import { bind } from '../ops/dispatch.js';
import { zerosLike, zeros, tensor } from '../ops/creation.js';
import { reshape } from '../ops/shape.js';
import { gradientsOf } from './backward.js';
import { enableGrad } from './mode.js';
import { jvp, copyTangents } from './forward.js';
import { stack } from './stack-helper.js';

/** A fresh differentiable alias of x: its own tape leaf-to-graph link, sharing data. */
function track(x: Tensor, i: number, op: string): Tensor {
  if (!isFloating(x.dtype)) throw new TesseraError(`${op}: argument ${i} is ${x.dtype}; only floating tensors can be differentiated. Cast it with .float() or .double().`);
  if (x.requiresGrad) return bind('reshape', [x], { shape: [...x.shape] });
  const leaf = new Tensor(x.storage, x.shape, x.strides, x.offset, x.dtype);
  leaf.requiresGrad = true;
  copyTangents(x, leaf);
  return leaf;
}

/** Gradients of `out` w.r.t. `inputs` into fresh tensors (zeros where no path), never touching .grad. */
export function gradients(out: Tensor, inputs: readonly Tensor[], cotangent?: Tensor, createGraph = false): Tensor[] {
  const gs = gradientsOf(out, inputs, cotangent, { createGraph, retainGraph: true });
  return gs.map((g, i) => g ?? zerosLike(inputs[i]!));
}

type Fn = (...xs: Tensor[]) => Tensor;

function normalizeArgnums(argnums: number | readonly number[], n: number, op: string): number[] {
  const list = typeof argnums === 'number' ? [argnums] : [...argnums];
  for (const a of list) if (!Number.isInteger(a) || a < 0 || a >= n) throw new TesseraError(`${op}: argnum ${a} is out of range for ${n} argument(s).`);
  return list;
}

export interface GradOptions {
  /** Which arguments to differentiate (default 0). A list returns a list of gradients. */
  argnums?: number | readonly number[];
  /** Keep the gradient connected to the graph so it can be differentiated again (default true, as JAX composes). */
  createGraph?: boolean;
}

/** `argnums` given directly (grad(f, 1), grad(f, [0, 1])) or inside options. */
export type ArgnumsOrOptions = number | readonly number[] | GradOptions;

function gradOptions(a: ArgnumsOrOptions): GradOptions {
  return typeof a === 'number' || Array.isArray(a) ? { argnums: a as number | readonly number[] } : (a as GradOptions);
}

/** valueAndGrad(f)(...xs) → [f(...xs), df/dx]; f must return a one-element tensor. */
export function valueAndGrad(f: Fn, argnumsOrOpts: ArgnumsOrOptions = {}): (...xs: Tensor[]) => [Tensor, Tensor | Tensor[]] {
  const opts = gradOptions(argnumsOrOpts);
  return (...xs) => {
    const argnums = normalizeArgnums(opts.argnums ?? 0, xs.length, 'grad');
    return enableGrad(() => {
      const tracked = xs.map((x, i) => (argnums.includes(i) ? track(x, i, 'grad') : x));
      const out = f(...tracked);
      if (!(out instanceof Tensor) || out.size !== 1) {
        throw new TesseraError(`grad: the function must return a one-element tensor, got ${out instanceof Tensor ? `shape ${fmtShape(out.shape)}` : typeof out}; use vjp or jacobian for other outputs.`);
      }
      const gs = gradients(out, argnums.map((i) => tracked[i]!), undefined, opts.createGraph ?? true);
      return [out, typeof (opts.argnums ?? 0) === 'number' ? gs[0]! : gs];
    });
  };
}

/** grad(f)(...xs) → df/dx (like jax.grad). */
export function grad(f: Fn, argnumsOrOpts: ArgnumsOrOptions = {}): (...xs: Tensor[]) => Tensor | Tensor[] {
  const vg = valueAndGrad(f, argnumsOrOpts);
  return (...xs) => vg(...xs)[1];
}

/** vjp(f, ...primals) → [f(primals), cotangent => gradients w.r.t. every primal]. */
export function vjp(f: Fn, ...primals: Tensor[]): [Tensor, (cotangent: Tensor) => Tensor[]] {
  return enableGrad(() => {
    const tracked = primals.map((x, i) => track(x, i, 'vjp'));
    const out = f(...tracked);
    return [out, (cotangent: Tensor) => enableGrad(() => gradients(out, tracked, cotangent, true))];
  });
}

/** The i-th standard basis tensor shaped like `like` (built on the host, so it works on every backend). */
function basisTensor(like: Tensor, i: number): Tensor {
  const values = new Float64Array(like.size);
  values[i] = 1;
  return tensor(values, { dtype: like.dtype, shape: [...like.shape], backend: like.backend });
}

/** Jacobian of f at x (shape [...out.shape, ...x.shape]) by reverse mode: one vjp per output element. */
export function jacrev(f: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  return (x) => {
    const [out, pullback] = vjp(f, x);
    const rows: Tensor[] = [];
    for (let i = 0; i < out.size; i++) {
      rows.push(pullback(basisTensor(out, i))[0]!);
    }
    if (rows.length === 0) return zeros([...out.shape, ...x.shape], { dtype: x.dtype });
    return reshape(stack(rows), [...out.shape, ...x.shape]);
  };
}

/** Jacobian of f at x by forward mode: one jvp per input element. */
export function jacfwd(f: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  return (x) => {
    const cols: Tensor[] = [];
    let outShape: readonly number[] = [];
    for (let j = 0; j < x.size; j++) {
      const [out, t] = jvp(f, [x], [basisTensor(x, j)]);
      outShape = out.shape;
      cols.push(reshape(t, [-1]));
    }
    if (cols.length === 0) return zeros([...f(x).shape, ...x.shape], { dtype: x.dtype });
    // cols[j] is column j: stack on the last axis to get [out.size, x.size].
    const jac = stack(cols, 1);
    return reshape(jac, [...outShape, ...x.shape]);
  };
}

export const jacobian = jacrev;

/** Hessian of a scalar function: forward-over-reverse (jacfwd of grad). */
export function hessian(f: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  const g = grad(f) as (x: Tensor) => Tensor;
  return jacfwd(g);
}
