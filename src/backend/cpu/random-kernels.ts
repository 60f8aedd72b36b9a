// Reference kernels of the random primitives: they fill a new array element by element, in
// row-major order, from the generator named in the attrs, exactly as the eager rand/randn/randint/
// uniform loops did before they became primitives (same draws, same rounding through castScalar),
// so seeded results did not change. Every backend runs these (the wasm backend falls back to
// them): the stream is defined by core/random.ts, not by a backend.
import type { Kernel, OutputInfo, Storage } from '../backend.js';
import { allocStorage, castScalar, type DType, type TypedArray } from '../../core/dtype.js';
import { sizeOf } from '../../core/shape.js';
import type { PrimitiveAttrs, RandomOp } from '../../ops/primitives.js';

type Wrap = (out: OutputInfo, data: TypedArray) => Storage;

/** Draws the values of one application of a random primitive into `dst` (contiguous, out's dtype). */
export function drawRandomInto<P extends RandomOp>(op: P, attrs: PrimitiveAttrs[P], dst: TypedArray, dtype: DType): void {
  const g = attrs.generator;
  if (op === 'randomNormal') {
    for (let i = 0; i < dst.length; i++) dst[i] = castScalar(g.normal(), dtype);
    return;
  }
  const { low, high } = attrs as PrimitiveAttrs['randomUniform'];
  if (op === 'randomInteger') {
    for (let i = 0; i < dst.length; i++) dst[i] = castScalar(g.integer(low, high), dtype);
    return;
  }
  // float32/float64 arrays round on store exactly as castScalar does: the bulk draw gives the same values.
  if ((dtype === 'float32' || dtype === 'float64') && (dst instanceof Float32Array || dst instanceof Float64Array)) {
    g.fillUniform(dst, low, high);
    return;
  }
  for (let i = 0; i < dst.length; i++) dst[i] = castScalar(low + (high - low) * g.uniform(), dtype);
}

function randomKernel<P extends RandomOp>(op: P, wrap: Wrap): Kernel<P> {
  return (_inputs, attrs, out) => {
    const values = allocStorage(out.dtype, sizeOf(out.shape));
    drawRandomInto(op, attrs, values, out.dtype);
    return wrap(out, values);
  };
}

export function makeRandomKernels(wrap: Wrap): { [P in RandomOp]: Kernel<P> } {
  return {
    randomUniform: randomKernel('randomUniform', wrap),
    randomNormal: randomKernel('randomNormal', wrap),
    randomInteger: randomKernel('randomInteger', wrap),
  };
}
