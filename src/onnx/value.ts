// The values an ONNX graph passes between nodes: tensors (a tessera Tensor plus the ONNX element
// type it stands for), sequences of tensors, and the empty optional.
//
// tessera has no 64-bit or unsigned 16/32-bit integers, so INT64, INT16, UINT16, UINT32 and UINT64
// live in int32 storage. The sub-byte integers live in 8-bit storage (INT4, INT2 in int8; UINT4,
// UINT2 in uint8), and the 8- and 4-bit floats (FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2,
// FLOAT8E5M2FNUZ, FLOAT8E8M0, FLOAT4E2M1) in float32, holding values the small format can
// represent exactly (Cast rounds to them). The ONNX type travels with the tensor so that an output
// keeps the type the model declares (a Shape output is INT64 even though its storage is int32) and
// so that ops whose meaning depends on it (Cast's wrap-around, integer Div) can look at it.

import type { Tensor } from '../core/tensor.js';
import type { DType } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import { ElemType, elemTypeName } from './proto.js';

export interface OnnxTensor {
  readonly kind: 'tensor';
  readonly tensor: Tensor;
  readonly type: number;
}

export interface OnnxSequence {
  readonly kind: 'sequence';
  readonly items: readonly OnnxTensor[];
  /** The element type of the items (known even when the sequence is empty). */
  readonly elemType: number;
}

/** An optional with no value (OptionalProto without one, or `Optional()` with no input). */
export interface OnnxNone {
  readonly kind: 'none';
}

export type OnnxValue = OnnxTensor | OnnxSequence | OnnxNone;

export const NONE: OnnxNone = { kind: 'none' };

/** ONNX element types newer than proto.ts's ElemType (TensorProto.DataType 23-26). */
export const NewElemType = { FLOAT4E2M1: 23, FLOAT8E8M0: 24, UINT2: 25, INT2: 26 } as const;

/**
 * A small binary float format: 1 sign bit, `exponentBits`, `mantissaBits`, exponent bias. Its
 * special values: 'ieee' has ±inf (exponent all ones, mantissa 0) and NaNs (exponent all ones);
 * 'fn' has no inf, and NaN is only exponent and mantissa all ones; 'fnuz' has no inf and no −0, the
 * pattern of −0 (0x80) being NaN; 'none' (FLOAT4E2M1) has neither inf nor NaN. `max` is the
 * largest finite value.
 */
export interface SmallFloatFormat {
  readonly exponentBits: number;
  readonly mantissaBits: number;
  readonly bias: number;
  readonly special: 'ieee' | 'fn' | 'fnuz' | 'none';
  readonly max: number;
}

/** The format of a FLOAT8 or FLOAT4E2M1 type (FLOAT8E8M0, exponent only, is not one), else undefined. */
export function smallFloatFormat(type: number): SmallFloatFormat | undefined {
  switch (type) {
    case ElemType.FLOAT8E4M3FN: return { exponentBits: 4, mantissaBits: 3, bias: 7, special: 'fn', max: 448 };
    case ElemType.FLOAT8E4M3FNUZ: return { exponentBits: 4, mantissaBits: 3, bias: 8, special: 'fnuz', max: 240 };
    case ElemType.FLOAT8E5M2: return { exponentBits: 5, mantissaBits: 2, bias: 15, special: 'ieee', max: 57344 };
    case ElemType.FLOAT8E5M2FNUZ: return { exponentBits: 5, mantissaBits: 2, bias: 16, special: 'fnuz', max: 57344 };
    case NewElemType.FLOAT4E2M1: return { exponentBits: 2, mantissaBits: 1, bias: 1, special: 'none', max: 6 };
    default: return undefined;
  }
}

/** The value of a small float's bit pattern (the low 1 + exponentBits + mantissaBits bits of `bits`). */
export function smallFloatValue(bits: number, f: SmallFloatFormat): number {
  const width = 1 + f.exponentBits + f.mantissaBits;
  const sign = (bits >> (width - 1)) & 1 ? -1 : 1;
  const exponent = (bits >> f.mantissaBits) & ((1 << f.exponentBits) - 1);
  const mantissa = bits & ((1 << f.mantissaBits) - 1);
  const allOnes = (1 << f.exponentBits) - 1;
  if (f.special === 'fnuz' && sign < 0 && exponent === 0 && mantissa === 0) return NaN;
  if (f.special === 'fn' && exponent === allOnes && mantissa === (1 << f.mantissaBits) - 1) return NaN;
  if (f.special === 'ieee' && exponent === allOnes) return mantissa === 0 ? sign * Infinity : NaN;
  const magnitude = exponent === 0
    ? mantissa * 2 ** (1 - f.bias - f.mantissaBits)
    : (1 + mantissa / 2 ** f.mantissaBits) * 2 ** (exponent - f.bias);
  return sign * magnitude;
}

/** The value of a FLOAT8E8M0 byte: 2^(bits − 127), 0xFF being NaN. */
export function e8m0Value(bits: number): number {
  return bits === 0xff ? NaN : 2 ** (bits - 127);
}

/**
 * Element types held in a wider tessera storage than their own values need (the 8- and 4-bit
 * floats in float32, the 4- and 2-bit integers in int8/uint8): a result computed from one is not
 * of that type unless an op says so (Cast, QuantizeLinear).
 */
export function isNarrowElemType(type: number): boolean {
  return smallFloatFormat(type) !== undefined || type === ElemType.INT4 || type === ElemType.UINT4 || type === NewElemType.INT2 || type === NewElemType.UINT2;
}

/** The tessera dtype that stores values of an ONNX element type, or undefined where none can. */
export function storageDType(type: number): DType | undefined {
  switch (type) {
    case ElemType.FLOAT: return 'float32';
    case ElemType.DOUBLE: return 'float64';
    case ElemType.FLOAT16: return 'float16';
    case ElemType.BFLOAT16: return 'bfloat16';
    case ElemType.INT8: return 'int8';
    case ElemType.UINT8: return 'uint8';
    case ElemType.BOOL: return 'bool';
    case ElemType.INT4:
    case NewElemType.INT2:
      return 'int8';
    case ElemType.UINT4:
    case NewElemType.UINT2:
      return 'uint8';
    case ElemType.FLOAT8E4M3FN:
    case ElemType.FLOAT8E4M3FNUZ:
    case ElemType.FLOAT8E5M2:
    case ElemType.FLOAT8E5M2FNUZ:
    case NewElemType.FLOAT8E8M0:
    case NewElemType.FLOAT4E2M1:
      return 'float32';
    case ElemType.INT32:
    case ElemType.INT64:
    case ElemType.INT16:
    case ElemType.UINT16:
    case ElemType.UINT32:
    case ElemType.UINT64:
      return 'int32';
    default:
      return undefined;
  }
}

/** Like storageDType, but throws an error naming the type and what tessera supports. */
export function requireStorageDType(type: number, where: string): DType {
  const dtype = storageDType(type);
  if (dtype === undefined) {
    throw new TesseraError(
      `onnx: ${where} has element type ${elemTypeName(type)}, which tessera cannot hold; supported: FLOAT, DOUBLE, FLOAT16, BFLOAT16, the FLOAT8 and FLOAT4 types (kept in float32), INT2, UINT2, INT4, UINT4, INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64 (integers wider than 32 bits are kept in int32), BOOL`,
    );
  }
  return dtype;
}

/** The ONNX element type a tessera dtype stands for when nothing more specific is known. */
export function defaultElemType(dtype: DType): number {
  switch (dtype) {
    case 'float32': return ElemType.FLOAT;
    case 'float64': return ElemType.DOUBLE;
    case 'float16': return ElemType.FLOAT16;
    case 'bfloat16': return ElemType.BFLOAT16;
    case 'int8': return ElemType.INT8;
    case 'uint8': return ElemType.UINT8;
    case 'bool': return ElemType.BOOL;
    case 'int32': return ElemType.INT64;
  }
}

/** The range of values an integer element type holds (for Cast's wrap-around and saturation). */
export function integerRange(type: number): { min: number; max: number } | undefined {
  switch (type) {
    case ElemType.INT8: return { min: -128, max: 127 };
    case ElemType.UINT8: return { min: 0, max: 255 };
    case ElemType.INT4: return { min: -8, max: 7 };
    case ElemType.UINT4: return { min: 0, max: 15 };
    case NewElemType.INT2: return { min: -2, max: 1 };
    case NewElemType.UINT2: return { min: 0, max: 3 };
    case ElemType.INT16: return { min: -32768, max: 32767 };
    case ElemType.UINT16: return { min: 0, max: 65535 };
    case ElemType.INT32:
    case ElemType.INT64:
    case ElemType.UINT32:
    case ElemType.UINT64:
      // Stored in int32: the storage's range is what is held.
      return { min: -(2 ** 31), max: 2 ** 31 - 1 };
    default: return undefined;
  }
}

export function isFloatElemType(type: number): boolean {
  return type === ElemType.FLOAT || type === ElemType.DOUBLE || type === ElemType.FLOAT16 || type === ElemType.BFLOAT16;
}

export function onnxTensor(tensor: Tensor, type: number = defaultElemType(tensor.dtype)): OnnxTensor {
  return { kind: 'tensor', tensor, type };
}

/** Every tessera Tensor a value holds (to keep them out of a scope, or to dispose them). */
export function tensorsOf(value: OnnxValue | undefined): Tensor[] {
  if (value === undefined || value.kind === 'none') return [];
  if (value.kind === 'tensor') return [value.tensor];
  return value.items.map((i) => i.tensor);
}
