// Writing new values into an existing tensor's memory (like torch's `copy_` under no_grad).
//
// Parameters and buffers must keep their identity across optimizer steps and checkpoint loads:
// the optimizer holds references to them, and views (state-dict entries, tied weights) share their
// storage. So updates go into the storage instead of replacing the tensor.
import { allocStorage, type TypedArray } from '../core/dtype.js';
import { check, fmtShape } from '../core/errors.js';
import { sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';

/**
 * Overwrites the elements of `dst` (any strides, any backend) with `src` (a tensor of the same shape,
 * or row-major values). Values are converted to dst's dtype. Nothing is recorded for autodiff.
 */
export function assignValues(dst: Tensor, src: Tensor | ArrayLike<number>, op = 'assignValues'): void {
  dst.assertAlive(op);
  let values: ArrayLike<number>;
  if (src instanceof Tensor) {
    check(src.shape.length === dst.shape.length && src.shape.every((d, i) => d === dst.shape[i]), op, () =>
      `cannot copy a tensor of shape ${fmtShape(src.shape)} into one of shape ${fmtShape(dst.shape)}; the shapes must be equal.`);
    values = src.data();
  } else {
    values = src;
  }
  check(values.length === sizeOf(dst.shape), op, () => `${values.length} values do not fill shape ${fmtShape(dst.shape)}.`);
  // writeStrided wants the storage's own array class for the dtype.
  const like = allocStorage(dst.dtype, 0);
  let typed: TypedArray;
  if (values.constructor === like.constructor) typed = values as TypedArray;
  else {
    typed = allocStorage(dst.dtype, values.length);
    const integer = !(typed instanceof Float32Array || typed instanceof Float64Array);
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      typed[i] = integer ? (dst.dtype === 'bool' ? (v !== 0 ? 1 : 0) : Math.trunc(v)) : v;
    }
  }
  dst.storage.backend.writeStrided(dst.asKernelInput(op), typed);
}
