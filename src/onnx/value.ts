// The values an ONNX graph passes between nodes: tensors (a tessera Tensor plus the ONNX element
// type it stands for), sequences of tensors, and the empty optional.
//
// tessera has no 64-bit or unsigned 16/32-bit integers, so INT64, INT16, UINT16, UINT32 and UINT64
// live in int32 storage. The ONNX type travels with the tensor so that an output keeps the type
// the model declares (a Shape output is INT64 even though its storage is int32) and so that ops
// whose meaning depends on it (Cast's wrap-around, integer Div) can look at it.

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
      `onnx: ${where} has element type ${elemTypeName(type)}, which tessera cannot hold; supported: FLOAT, DOUBLE, FLOAT16, BFLOAT16, INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64 (integers wider than 32 bits are kept in int32), BOOL`,
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
