// In-place writes: copy_, fill_, zero_. They write through the tensor's strided view into its
// storage, so a write through a view is visible in its base and in every other view of it.
//
// Autodiff does not differentiate through in-place writes, so they are refused on tensors that
// require grad while grad mode is on (PyTorch refuses them on leaves that require grad). Under noGrad
// (optimizer updates, initialisation) they are allowed. Each write bumps the storage's version, and
// backward() refuses an op whose saved inputs were overwritten after it ran (PyTorch's version check).
import { castScalar } from '../core/dtype.js';
import { check, fmtShape } from '../core/errors.js';
import { broadcastShapes, shapesEqual } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { isGradEnabled } from '../autodiff/mode.js';
import { broadcastTo, cast } from './elementwise.js';
import { full } from './creation.js';

function checkWritable(x: Tensor, op: string): void {
  x.assertAlive(op);
  check(!(x.requiresGrad && isGradEnabled()), op, () =>
    `cannot write in place into a tensor that requires grad (shape ${fmtShape(x.shape)}${x.isLeaf ? ', a leaf' : ''}): ` +
    'autodiff would silently use the overwritten values. Do it inside noGrad(() => ...), or use the out-of-place op.');
  const hasOverlap = x.strides.some((s, i) => s === 0 && x.shape[i]! > 1);
  check(!hasOverlap, op, () =>
    `the tensor (shape ${fmtShape(x.shape)}, strides ${fmtShape(x.strides)}) is an expanded view in which several elements share memory; ` +
    'write into a contiguous() copy instead.');
}

/** Writes `src` (broadcast to x's shape, cast to x's dtype) into x in place and returns x. */
export function copy_(x: Tensor, src: Tensor): Tensor {
  checkWritable(x, 'copy_');
  src.assertAlive('copy_');
  const shape = broadcastShapes('copy_', x.shape, src.shape);
  check(shapesEqual(shape, x.shape), 'copy_', () =>
    `source of shape ${fmtShape(src.shape)} cannot be broadcast to the destination's shape ${fmtShape(x.shape)}.`);
  check(src.backend === x.backend, 'copy_', () => `source lives on '${src.backend}' and destination on '${x.backend}'; move the source first.`);
  const values = broadcastTo(cast(src, x.dtype), x.shape).data();
  x.storage.backend.writeStrided(x, values);
  x.storage.version++;
  return x;
}

/** Sets every element of x to `value` in place and returns x. */
export function fill_(x: Tensor, value: number | boolean): Tensor {
  checkWritable(x, 'fill_');
  const v = castScalar(Number(value), x.dtype);
  const values = full(x.shape, v, { dtype: x.dtype, backend: x.backend }).data();
  x.storage.backend.writeStrided(x, values);
  x.storage.version++;
  return x;
}

/** Sets every element of x to zero in place and returns x. */
export const zero_ = (x: Tensor): Tensor => fill_(x, 0);

declare module '../core/tensor.js' {
  interface Tensor {
    /** In-place copy (broadcasting, casting) from `src`; see ops/inplace.ts for the autodiff rule. */
    copy_(src: Tensor): Tensor;
    fill_(value: number | boolean): Tensor;
    zero_(): Tensor;
  }
}

const P = Tensor.prototype;
P.copy_ = function (s) { return copy_(this, s); };
P.fill_ = function (v) { return fill_(this, v); };
P.zero_ = function () { return zero_(this); };
