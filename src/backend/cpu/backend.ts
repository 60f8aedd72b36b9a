// The cpu reference backend: storages are plain typed arrays managed by the JS garbage collector.
import { Storage, type Backend, type KernelInput, type OutputInfo, registerBackend } from '../backend.js';
import { allocStorage, roundBFloat16, roundFloat16, type DType, type TypedArray } from '../../core/dtype.js';
import type { PrimitiveName } from '../../ops/primitives.js';
import { cpuKernels, setStorageWrapper } from './kernels.js';
import { scatterStrided } from './strided.js';

/** float16/bfloat16 live in Float32Arrays; every write is rounded to the format. */
export function roundToFormat(dtype: DType, data: TypedArray): void {
  if (dtype === 'float16') for (let i = 0; i < data.length; i++) data[i] = roundFloat16(data[i]!);
  else if (dtype === 'bfloat16') for (let i = 0; i < data.length; i++) data[i] = roundBFloat16(data[i]!);
}

export const cpuBackend: Backend = {
  name: 'cpu',
  alloc(dtype: DType, size: number): Storage {
    return new Storage(cpuBackend, allocStorage(dtype, size), dtype, size);
  },
  fromArray(dtype: DType, data: TypedArray): Storage {
    const copy = allocStorage(dtype, data.length);
    copy.set(data);
    roundToFormat(dtype, copy);
    return new Storage(cpuBackend, copy, dtype, data.length);
  },
  readAll(storage: Storage): TypedArray {
    return storage.handle as TypedArray;
  },
  writeStrided(dst: KernelInput, src: TypedArray): void {
    const arr = dst.storage.handle as TypedArray;
    const rounded = dst.dtype === 'float16' || dst.dtype === 'bfloat16' ? Float32Array.from(src) : src;
    roundToFormat(dst.dtype, rounded);
    scatterStrided(arr, dst.shape, dst.strides, dst.offset, rounded);
  },
  free(): void {
    // The garbage collector reclaims typed arrays.
  },
  kernel<P extends PrimitiveName>(prim: P) {
    return cpuKernels[prim];
  },
};

setStorageWrapper((out: OutputInfo, data: TypedArray) => {
  roundToFormat(out.dtype, data);
  return new Storage(cpuBackend, data, out.dtype, data.length);
});

registerBackend(cpuBackend);
