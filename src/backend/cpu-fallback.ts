// The fallback every faster backend shares: a primitive it has no kernel for (or not for these
// dtypes/layouts) runs the cpu reference kernel on copies of its inputs read back as typed arrays,
// and the result is copied into a new storage of the backend. Used by dispatch (a backend without
// the kernel) and by backends whose own kernel declines a case (webgpu).
import type { Backend, KernelInput, OutputInfo, Storage } from './backend.js';
import { cpuBackend } from './cpu/backend.js';
import type { TypedArray } from '../core/dtype.js';
import type { PrimitiveAttrs, PrimitiveName } from '../ops/primitives.js';

export function runOnCpu<P extends PrimitiveName>(backend: Backend, prim: P, inputs: readonly KernelInput[], attrs: PrimitiveAttrs[P], out: OutputInfo): Storage {
  const viaCpu: KernelInput[] = inputs.map((x) => ({
    storage: cpuBackend.fromArray(x.storage.dtype, backend.readAll(x.storage) as TypedArray),
    dtype: x.dtype, shape: x.shape, strides: x.strides, offset: x.offset,
  }));
  const result = cpuBackend.kernel(prim)!(viaCpu, attrs, out);
  return backend.fromArray(out.dtype, result.handle as TypedArray);
}
