// The cpu reference backend: storages are plain typed arrays managed by the JS garbage collector.
import { Storage, type Backend, type KernelInput, type OutputInfo, registerBackend } from '../backend.js';
import { allocStorage, roundBFloat16, roundFloat16, type DType, type TypedArray } from '../../core/dtype.js';
import type { PrimitiveName } from '../../ops/primitives.js';
import { cpuKernels, setStorageWrapper } from './kernels.js';
import { scatterStrided } from './strided.js';

/**
 * float16/bfloat16 live in Float32Arrays; every write is rounded to the format. The values are
 * float32 already, so the rounding works on their bits (the same results as roundFloat16 and
 * roundBFloat16 on each element, several times faster: mixed-precision training rounds every
 * activation).
 */
export function roundToFormat(dtype: DType, data: TypedArray): void {
  if (dtype !== 'float16' && dtype !== 'bfloat16') return;
  if (!(data instanceof Float32Array)) {
    const round = dtype === 'float16' ? roundFloat16 : roundBFloat16;
    for (let i = 0; i < data.length; i++) data[i] = round(data[i]!);
    return;
  }
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  if (dtype === 'bfloat16') {
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i]!;
      if ((b & 0x7f800000) === 0x7f800000) continue; // inf and NaN stay
      // Round to nearest even on the upper 16 bits (a carry into the exponent gives the next binade, or inf).
      bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
    }
    return;
  }
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    const abs = b & 0x7fffffff;
    if (abs >= 0x7f800000) continue; // inf and NaN stay
    const sign = b & 0x80000000;
    if (abs >= 0x477ff000) {
      bits[i] = (sign | 0x7f800000) >>> 0; // >= 65520 rounds past the largest half (65504): inf
    } else if (abs >= 0x38800000) {
      // A normal half (>= 2^-14): keep 10 of the 23 mantissa bits, to nearest even.
      bits[i] = (sign | ((abs + 0xfff + ((abs >>> 13) & 1)) & 0xffffe000)) >>> 0;
    } else {
      // Subnormal halves are multiples of 2^-24.
      const q = Math.abs(data[i]!) * 16777216;
      let r = Math.round(q);
      if (r - q === 0.5 && (r & 1) === 1) r -= 1;
      data[i] = (sign !== 0 ? -r : r) / 16777216;
    }
  }
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
