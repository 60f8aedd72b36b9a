// The element types and reductions the communication layer moves. It works on plain typed
// arrays so that it does not depend on the tensor core; tensors hand it their buffers.

export type DType = 'float32' | 'float64' | 'int32';
export type CommArray = Float32Array | Float64Array | Int32Array;
export type ReduceOp = 'sum' | 'prod' | 'min' | 'max' | 'avg';

export const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'prod', 'min', 'max', 'avg'];
export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32'];

export function dtypeOf(array: CommArray): DType {
  if (array instanceof Float32Array) return 'float32';
  if (array instanceof Float64Array) return 'float64';
  if (array instanceof Int32Array) return 'int32';
  throw new TypeError(
    `dist: expected a Float32Array, Float64Array or Int32Array, got ${Object.prototype.toString.call(array)}; ` +
      'convert the data to one of these types first',
  );
}

export function elementBytes(dtype: DType): number {
  return dtype === 'float64' ? 8 : 4;
}

/** A new array of `dtype` with `length` elements, over `buffer` when given (at offset 0). */
export function allocArray(dtype: DType, length: number, buffer?: ArrayBufferLike): CommArray {
  switch (dtype) {
    case 'float32':
      return buffer ? new Float32Array(buffer, 0, length) : new Float32Array(length);
    case 'float64':
      return buffer ? new Float64Array(buffer, 0, length) : new Float64Array(length);
    case 'int32':
      return buffer ? new Int32Array(buffer, 0, length) : new Int32Array(length);
  }
}

/** A typed view of `dtype` over bytes that start at an offset aligned for that dtype. */
export function viewAs(dtype: DType, bytes: Uint8Array): CommArray {
  const n = bytes.byteLength / elementBytes(dtype);
  switch (dtype) {
    case 'float32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case 'float64':
      return new Float64Array(bytes.buffer, bytes.byteOffset, n);
    case 'int32':
      return new Int32Array(bytes.buffer, bytes.byteOffset, n);
  }
}

export function bytesOf(array: CommArray): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/**
 * A typed array whose memory is a SharedArrayBuffer. With the thread transport, sending such an
 * array costs no copy: the receiving thread reads it in place.
 */
export function sharedArray(dtype: DType, length: number): CommArray {
  return allocArray(dtype, length, new SharedArrayBuffer(length * elementBytes(dtype)));
}
