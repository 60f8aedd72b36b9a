// TensorProto ↔ tessera tensors: decoding an initializer, a Constant's value or a test's
// input_N.pb into a Tensor, and encoding a Tensor for ONNX export.
//
// INT64 and UINT64 values beyond int32 are saturated into its range: the values ONNX models put
// there beyond ±2^31 are sentinels (2^63 − 1 as "to the end" in Slice, INT64_MIN as "from the
// start"), whose meaning saturation keeps. UINT32 keeps all its bits instead, stored as the int32
// of the same pattern (values from 2^31 up read as negative; Cast to a float and BitCast read them
// back as unsigned).
//
// The 8-bit floats are one byte per element; the 4- and 2-bit types are packed two (four) to a
// byte, the first element in the low bits. Without raw data, int32_data holds those bytes, one per
// entry (the float8 bit patterns, or the packed sub-byte pairs).

import type { Tensor } from '../core/tensor.js';
import type { TypedArray } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import { fromValues } from '../ops/creation.js';
import { float16FromBits, bfloat16FromBits, float16Bits, bfloat16Bits } from '../io/half.js';
import { ElemType, elemTypeName, type TensorProto } from './proto.js';
import { ProtoWriter } from './protobuf.js';
import { NewElemType, e8m0Value, onnxTensor, requireStorageDType, smallFloatFormat, smallFloatValue, type OnnxTensor } from './value.js';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

function saturateInt32(v: number): number {
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : v;
}

/** Bytes per element in raw_data. */
export function rawItemSize(type: number): number {
  switch (type) {
    case ElemType.DOUBLE: case ElemType.INT64: case ElemType.UINT64: return 8;
    case ElemType.FLOAT: case ElemType.INT32: case ElemType.UINT32: return 4;
    case ElemType.FLOAT16: case ElemType.BFLOAT16: case ElemType.INT16: case ElemType.UINT16: return 2;
    case ElemType.INT8: case ElemType.UINT8: case ElemType.BOOL: return 1;
    default: return 0;
  }
}

/** Bits per element of the types packed below a byte (INT4, UINT4, FLOAT4E2M1, INT2, UINT2), else 0. */
function subByteBits(type: number): number {
  switch (type) {
    case ElemType.INT4: case ElemType.UINT4: case NewElemType.FLOAT4E2M1: return 4;
    case NewElemType.INT2: case NewElemType.UINT2: return 2;
    default: return 0;
  }
}

/** Decodes the one-byte floats and the packed sub-byte types (low bits first), or undefined for other types. */
function smallValues(raw: Uint8Array, type: number, count: number, where: string): number[] | undefined {
  const bits = subByteBits(type) || (type === NewElemType.FLOAT8E8M0 || smallFloatFormat(type) !== undefined ? 8 : 0);
  if (bits === 0) return undefined;
  const bytes = Math.ceil((count * bits) / 8);
  if (raw.length !== bytes) {
    throw new TesseraError(`onnx: ${where} has ${raw.length} bytes of data, but ${count} ${elemTypeName(type)} elements need ${bytes}`);
  }
  const perByte = 8 / bits, mask = (1 << bits) - 1;
  const format = smallFloatFormat(type);
  const signed = type === ElemType.INT4 || type === NewElemType.INT2;
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const b = (raw[Math.floor(i / perByte)]! >> (bits * (i % perByte))) & mask;
    if (format !== undefined) out[i] = smallFloatValue(b, format);
    else if (type === NewElemType.FLOAT8E8M0) out[i] = e8m0Value(b);
    else out[i] = signed && b >> (bits - 1) ? b - (1 << bits) : b;
  }
  return out;
}

/** Decodes raw little-endian bytes into numbers of the element type. */
export function rawValues(raw: Uint8Array, type: number, count: number, where: string): ArrayLike<number> {
  const small = smallValues(raw, type, count, where);
  if (small !== undefined) return small;
  const item = rawItemSize(type);
  if (raw.length !== item * count) {
    throw new TesseraError(`onnx: ${where} has ${raw.length} bytes of raw data, but ${count} ${elemTypeName(type)} elements need ${item * count}`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Array<number>(count);
  switch (type) {
    case ElemType.FLOAT: for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true); break;
    case ElemType.DOUBLE: for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true); break;
    case ElemType.INT32: for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true); break;
    case ElemType.UINT32: for (let i = 0; i < count; i++) out[i] = view.getUint32(4 * i, true); break;
    case ElemType.INT64: for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(8 * i, true)); break;
    case ElemType.UINT64: for (let i = 0; i < count; i++) out[i] = Number(view.getBigUint64(8 * i, true)); break;
    case ElemType.INT16: for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, true); break;
    case ElemType.UINT16: for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, true); break;
    case ElemType.FLOAT16: for (let i = 0; i < count; i++) out[i] = float16FromBits(view.getUint16(2 * i, true)); break;
    case ElemType.BFLOAT16: for (let i = 0; i < count; i++) out[i] = bfloat16FromBits(view.getUint16(2 * i, true)); break;
    case ElemType.INT8: for (let i = 0; i < count; i++) out[i] = view.getInt8(i); break;
    case ElemType.UINT8: for (let i = 0; i < count; i++) out[i] = view.getUint8(i); break;
    case ElemType.BOOL: for (let i = 0; i < count; i++) out[i] = view.getUint8(i) !== 0 ? 1 : 0; break;
  }
  return out;
}

/** The numbers a TensorProto holds, in row-major order, before any conversion to storage. */
export function tensorProtoValues(p: TensorProto, where = `tensor '${p.name}'`): ArrayLike<number> {
  if (p.externalLocation !== undefined) {
    throw new TesseraError(`onnx: ${where} keeps its data in the external file '${p.externalLocation}'; tessera loads single-file models only: re-save the model with all tensors inside (onnx.save_model(m, path, save_as_external_data=False))`);
  }
  const count = p.dims.reduce((a, d) => a * d, 1);
  if (p.rawData !== undefined) return rawValues(p.rawData, p.dataType, count, where);
  const small = smallValues(Uint8Array.from(p.int32Data, (b) => b & 0xff), p.dataType, count, where);
  if (small !== undefined) return small;
  let values: number[];
  switch (p.dataType) {
    case ElemType.FLOAT: values = p.floatData; break;
    case ElemType.DOUBLE: values = p.doubleData; break;
    case ElemType.INT64: values = p.int64Data; break;
    case ElemType.UINT32: case ElemType.UINT64: values = p.uint64Data; break;
    case ElemType.FLOAT16: values = p.int32Data.map((b) => float16FromBits(b & 0xffff)); break;
    case ElemType.BFLOAT16: values = p.int32Data.map((b) => bfloat16FromBits(b & 0xffff)); break;
    case ElemType.UINT8: values = p.int32Data.map((b) => b & 0xff); break;
    case ElemType.UINT16: values = p.int32Data.map((b) => b & 0xffff); break;
    default: values = p.int32Data;
  }
  if (values.length !== count) {
    throw new TesseraError(`onnx: ${where} of shape [${p.dims.join(', ')}] holds ${values.length} values, expected ${count}`);
  }
  return values;
}

/** Decodes a TensorProto into a tessera tensor tagged with its ONNX element type. */
export function tensorFromProto(p: TensorProto, where = `tensor '${p.name}'`): OnnxTensor {
  const dtype = requireStorageDType(p.dataType, where);
  const values = tensorProtoValues(p, where);
  let storage: TypedArray;
  switch (dtype) {
    case 'float32': case 'float16': case 'bfloat16': storage = Float32Array.from(values); break;
    case 'float64': storage = Float64Array.from(values); break;
    case 'int8': storage = Int8Array.from(values); break;
    case 'uint8': case 'bool': storage = Uint8Array.from(values); break;
    case 'int32': {
      const a = new Int32Array(values.length);
      if (p.dataType === ElemType.UINT32) for (let i = 0; i < a.length; i++) a[i] = values[i]! | 0;
      else for (let i = 0; i < a.length; i++) a[i] = saturateInt32(values[i]!);
      storage = a;
      break;
    }
  }
  return onnxTensor(fromValues(storage, p.dims, dtype), p.dataType);
}

/** Encodes values as a TensorProto (raw data, little-endian), as ONNX export writes initializers. */
export function encodeTensorProto(name: string, type: number, dims: readonly number[], values: ArrayLike<number>): Uint8Array {
  const raw = rawBytes(type, values);
  const w = new ProtoWriter();
  if (dims.length > 0) w.packedVarints(1, dims);
  w.varintField(2, type);
  if (name !== '') w.stringField(8, name);
  w.bytesField(9, raw);
  return w.finish();
}

/**
 * Values of an element type as the little-endian bytes of TensorProto's raw data (the types of a
 * byte or more, not the FLOAT8 ones); rawValues reads them back. BitCast reinterprets through these.
 */
export function rawBytes(type: number, values: ArrayLike<number>): Uint8Array {
  const item = rawItemSize(type);
  if (item === 0) throw new TesseraError(`onnx: cannot encode a tensor of element type ${elemTypeName(type)}`);
  const raw = new Uint8Array(item * values.length);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    switch (type) {
      case ElemType.FLOAT: view.setFloat32(4 * i, v, true); break;
      case ElemType.DOUBLE: view.setFloat64(8 * i, v, true); break;
      case ElemType.INT32: view.setInt32(4 * i, v, true); break;
      case ElemType.UINT32: view.setUint32(4 * i, v, true); break;
      case ElemType.INT64: view.setBigInt64(8 * i, BigInt(v), true); break;
      case ElemType.UINT64: view.setBigUint64(8 * i, BigInt(v), true); break;
      case ElemType.INT16: view.setInt16(2 * i, v, true); break;
      case ElemType.UINT16: view.setUint16(2 * i, v, true); break;
      case ElemType.FLOAT16: view.setUint16(2 * i, float16Bits(v), true); break;
      case ElemType.BFLOAT16: view.setUint16(2 * i, bfloat16Bits(v), true); break;
      case ElemType.INT8: view.setInt8(i, v); break;
      case ElemType.UINT8: case ElemType.BOOL: view.setUint8(i, v); break;
    }
  }
  return raw;
}

/** A tessera tensor as a TensorProto of the given element type (its values read to the host). */
export function tensorToProto(name: string, tensor: Tensor, type: number): Uint8Array {
  return encodeTensorProto(name, type, tensor.shape, tensor.data());
}
