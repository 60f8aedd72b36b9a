// The IDX format of MNIST and Fashion-MNIST: a 4-byte magic number (two zero bytes, an element-type code,
// the number of dimensions), then each dimension as a big-endian uint32, then the elements, big-endian,
// row-major. Files are usually gzipped; decodeIdx detects that from the gzip magic bytes.

import { maybeGunzip } from '../io/gzip.js';

/** IDX element types by their type code (byte 2 of the magic number). */
const IDX_TYPES = {
  0x08: { name: 'u8', itemSize: 1 },
  0x09: { name: 'i8', itemSize: 1 },
  0x0b: { name: 'i16', itemSize: 2 },
  0x0c: { name: 'i32', itemSize: 4 },
  0x0d: { name: 'f32', itemSize: 4 },
  0x0e: { name: 'f64', itemSize: 8 },
} as const;

export type IdxDtype = (typeof IDX_TYPES)[keyof typeof IDX_TYPES]['name'];

export interface IdxArrayOf {
  u8: Uint8Array;
  i8: Int8Array;
  i16: Int16Array;
  i32: Int32Array;
  f32: Float32Array;
  f64: Float64Array;
}

/** An IDX file's content: its element type, its dimensions and its elements in row-major order. */
export type IdxArray = { [D in IdxDtype]: { dtype: D; shape: number[]; data: IdxArrayOf[D] } }[IdxDtype];

export class IdxError extends Error {
  override name = 'IdxError';
}

function fail(what: string, message: string): never {
  throw new IdxError(`idx${what ? ` (${what})` : ''}: ${message}`);
}

/**
 * Parses the bytes of an uncompressed IDX file. `what` (a file name, say) goes into error messages.
 * u8 data is returned as a view of `bytes` without a copy; wider types are converted from big-endian.
 */
export function parseIdx(bytes: Uint8Array, what = ''): IdxArray {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    fail(what, 'the data is gzip-compressed; use decodeIdx (which inflates it) or inflate it first.');
  }
  if (bytes.length < 4) fail(what, `the file is ${bytes.length} bytes long, too short for the 4-byte magic number; it is truncated.`);
  const code = bytes[2]!;
  const rank = bytes[3]!;
  if (bytes[0] !== 0 || bytes[1] !== 0 || !Object.hasOwn(IDX_TYPES, code)) {
    const magic = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    fail(
      what,
      `bad magic number ${magic}; an IDX file starts with 00 00, a type code (08 u8, 09 i8, 0b i16, 0c i32, 0d f32, 0e f64) and the rank. ` +
        'This is not an IDX file (or it is corrupt).',
    );
  }
  const type = IDX_TYPES[code as keyof typeof IDX_TYPES];
  const headerSize = 4 + 4 * rank;
  if (bytes.length < headerSize) {
    fail(what, `the header declares ${rank} dimensions (${headerSize} header bytes) but the file has only ${bytes.length} bytes; it is truncated.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    count *= d;
  }
  const expected = headerSize + count * type.itemSize;
  if (bytes.length !== expected) {
    fail(
      what,
      `shape ${JSON.stringify(shape)} of ${type.name} needs ${count * type.itemSize} data bytes (file size ${expected}), ` +
        `but the file is ${bytes.length} bytes; it is ${bytes.length < expected ? 'truncated' : 'followed by extra bytes'}.`,
    );
  }
  const at = headerSize;
  switch (type.name) {
    case 'u8':
      return { dtype: 'u8', shape, data: bytes.subarray(at) };
    case 'i8':
      return { dtype: 'i8', shape, data: new Int8Array(bytes.buffer, bytes.byteOffset + at, count) };
    case 'i16': {
      const data = new Int16Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getInt16(at + 2 * i, false);
      return { dtype: 'i16', shape, data };
    }
    case 'i32': {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getInt32(at + 4 * i, false);
      return { dtype: 'i32', shape, data };
    }
    case 'f32': {
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(at + 4 * i, false);
      return { dtype: 'f32', shape, data };
    }
    case 'f64': {
      const data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat64(at + 8 * i, false);
      return { dtype: 'f64', shape, data };
    }
  }
}

/** Parses IDX bytes that may be gzipped (detected from the gzip magic bytes). Browser-safe. */
export async function decodeIdx(bytes: Uint8Array, what = ''): Promise<IdxArray> {
  let raw: Uint8Array;
  try {
    raw = await maybeGunzip(bytes);
  } catch (e) {
    fail(what, (e as Error).message);
  }
  return parseIdx(raw, what);
}

/** Encodes an array as IDX bytes (uncompressed), the inverse of parseIdx. */
export function encodeIdx(array: IdxArray): Uint8Array {
  const entry = Object.entries(IDX_TYPES).find(([, t]) => t.name === array.dtype);
  if (entry === undefined) fail('', `unknown dtype ${JSON.stringify(array.dtype)}; use one of u8, i8, i16, i32, f32, f64.`);
  const [codeText, type] = entry;
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (count !== array.data.length) {
    fail('', `shape ${JSON.stringify(array.shape)} has ${count} elements but the data has ${array.data.length}; make them agree.`);
  }
  if (array.shape.length > 255) fail('', `rank ${array.shape.length} exceeds the format's limit of 255 dimensions.`);
  const at = 4 + 4 * array.shape.length;
  const out = new Uint8Array(at + count * type.itemSize);
  const view = new DataView(out.buffer);
  out[2] = Number(codeText);
  out[3] = array.shape.length;
  array.shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const data = array.data;
  for (let i = 0; i < count; i++) {
    const v = data[i]!;
    switch (array.dtype) {
      case 'u8': view.setUint8(at + i, v); break;
      case 'i8': view.setInt8(at + i, v); break;
      case 'i16': view.setInt16(at + 2 * i, v, false); break;
      case 'i32': view.setInt32(at + 4 * i, v, false); break;
      case 'f32': view.setFloat32(at + 4 * i, v, false); break;
      case 'f64': view.setFloat64(at + 8 * i, v, false); break;
    }
  }
  return out;
}
