// The safetensors checkpoint format, on plain bytes (no fs), so it runs in browsers too.
//
// Layout (as the format's specification defines it):
//   8 bytes      N, the header's length, an unsigned 64-bit little-endian integer
//   N bytes      a UTF-8 JSON object that starts with '{' and may be padded at the end with spaces:
//                  { "__metadata__"?: { string: string },
//                    "<name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }, ... }
//   the rest     the data region: every tensor's bytes, little-endian, row-major ("C" order).
//                data_offsets are relative to the start of this region; the tensors must cover it
//                exactly, without holes or overlaps.
//
// The writer sorts tensors by decreasing element size, then by name, and pads the header with spaces so
// that the data region starts at a multiple of 8: every tensor is then aligned to its element size, so
// the reader can hand out zero-copy typed-array views of the file's bytes.

/** The element types of safetensors that this module reads and writes. */
export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'U64'
  | 'I32'
  | 'U32'
  | 'I16'
  | 'U16'
  | 'I8'
  | 'U8'
  | 'BOOL'
  | 'F8_E4M3'
  | 'F8_E5M2';

/**
 * The typed array that holds each dtype's elements. F16, BF16 and the 8-bit floats have no native
 * JavaScript array, so they hold the raw bit patterns (Uint16Array / Uint8Array); BOOL is 0/1 in a
 * Uint8Array; I64/U64 are BigInt arrays.
 */
export interface SafetensorsArrayOf {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  U64: BigUint64Array;
  I32: Int32Array;
  U32: Uint32Array;
  I16: Int16Array;
  U16: Uint16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
  F8_E4M3: Uint8Array;
  F8_E5M2: Uint8Array;
}

export type SafetensorsArray = SafetensorsArrayOf[SafetensorsDtype];

/** One tensor as raw data: its dtype, its shape and its elements in row-major order. */
export type RawTensor = {
  [D in SafetensorsDtype]: { dtype: D; shape: readonly number[]; data: SafetensorsArrayOf[D] };
}[SafetensorsDtype];

/** A tensor's entry in the header, with offsets relative to the data region. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** First byte of the tensor in the data region. */
  begin: number;
  /** One past the last byte of the tensor in the data region. */
  end: number;
}

/** What the header of a safetensors file says, after validation. */
export interface SafetensorsHeader {
  /** The header's length N as stored in the first 8 bytes (padding included). */
  headerLength: number;
  /** Byte offset of the data region in the file: 8 + N. */
  dataStart: number;
  /** The tensors in the order of their data (by begin offset). */
  entries: SafetensorsEntry[];
  /** The optional `__metadata__` string map; undefined when the file has none. */
  metadata: Record<string, string> | undefined;
}

export interface ParsedSafetensors {
  /** Tensors by name, in the order of their data in the file. */
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string> | undefined;
}

export interface ParseSafetensorsOptions {
  /**
   * When false (the default), a tensor whose bytes are aligned to its element size is returned as a
   * view of `bytes` (no copy; it keeps the whole buffer alive and sees later writes to it). When true,
   * every tensor gets its own copy.
   */
  copy?: boolean;
}

/** Thrown for every malformed file and every invalid tensor given to the writer. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** The largest header accepted (the reference implementation uses the same limit). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const METADATA_KEY = '__metadata__';

interface DtypeInfo {
  itemSize: number;
  make: (buffer: ArrayBufferLike, byteOffset: number, length: number) => SafetensorsArray;
  isInstance: (data: unknown) => boolean;
}

const DTYPES: Record<SafetensorsDtype, DtypeInfo> = {
  F64: info(8, Float64Array),
  F32: info(4, Float32Array),
  F16: info(2, Uint16Array),
  BF16: info(2, Uint16Array),
  I64: info(8, BigInt64Array),
  U64: info(8, BigUint64Array),
  I32: info(4, Int32Array),
  U32: info(4, Uint32Array),
  I16: info(2, Int16Array),
  U16: info(2, Uint16Array),
  I8: info(1, Int8Array),
  U8: info(1, Uint8Array),
  BOOL: info(1, Uint8Array),
  F8_E4M3: info(1, Uint8Array),
  F8_E5M2: info(1, Uint8Array),
};

type TypedArrayClass = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsArray;
};

function info(itemSize: number, ctor: TypedArrayClass): DtypeInfo {
  return {
    itemSize,
    make: (buffer, byteOffset, length) => new ctor(buffer, byteOffset, length),
    isInstance: (data) => data instanceof ctor,
  };
}

const DTYPE_NAMES = Object.keys(DTYPES) as SafetensorsDtype[];

export function isSafetensorsDtype(name: unknown): name is SafetensorsDtype {
  return typeof name === 'string' && Object.hasOwn(DTYPES, name);
}

/** Bytes per element of a safetensors dtype. */
export function safetensorsItemSize(dtype: SafetensorsDtype): number {
  return DTYPES[dtype].itemSize;
}

/** True on every platform JavaScript runs on today; the byte swaps below keep big-endian hosts correct. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytesInPlace(bytes: Uint8Array, itemSize: number): void {
  if (itemSize === 1) return;
  for (let i = 0; i < bytes.length; i += itemSize) {
    for (let a = i, b = i + itemSize - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

function elementCount(shape: readonly number[], what: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError(
        `safetensors: ${what} has shape ${JSON.stringify(shape)}; every dimension must be a non-negative integer.`,
      );
    }
    n *= d;
    if (!Number.isSafeInteger(n)) {
      throw new SafetensorsError(
        `safetensors: ${what} has shape ${JSON.stringify(shape)}, whose element count exceeds 2^53; such a tensor cannot be held in memory.`,
      );
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Serializes tensors (and an optional string→string metadata map) into the bytes of a safetensors
 * file. Throws SafetensorsError when a tensor's data does not match its dtype or shape.
 */
export function serializeSafetensors(
  tensors: Record<string, RawTensor> | Map<string, RawTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list: Array<[string, RawTensor]> = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [name, t] of list) validateForWriting(name, t);
  if (metadata !== undefined) validateMetadata(metadata, 'the metadata given to serializeSafetensors');

  // Largest element size first keeps every tensor aligned once the data region starts at a multiple of 8.
  list.sort(([na, a], [nb, b]) => DTYPES[b.dtype].itemSize - DTYPES[a.dtype].itemSize || (na < nb ? -1 : na > nb ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header[METADATA_KEY] = { ...metadata };
  let offset = 0;
  for (const [name, t] of list) {
    const size = t.data.length * DTYPES[t.dtype].itemSize;
    // defineProperty rather than assignment, so that a tensor named "__proto__" stays an ordinary key.
    Object.defineProperty(header, name, {
      value: { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + size] },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    offset += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);

  let at = 8 + headerLength;
  for (const [, t] of list) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(bytes, at);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(out.subarray(at, at + bytes.length), DTYPES[t.dtype].itemSize);
    at += bytes.length;
  }
  return out;
}

function validateForWriting(name: string, t: RawTensor): void {
  if (name.length === 0) throw new SafetensorsError('safetensors: a tensor has an empty name; give every tensor a non-empty name.');
  if (name === METADATA_KEY) {
    throw new SafetensorsError(`safetensors: "${METADATA_KEY}" is reserved for the metadata map; rename that tensor.`);
  }
  if (!isSafetensorsDtype(t.dtype)) {
    throw new SafetensorsError(
      `safetensors: tensor "${name}" has dtype ${JSON.stringify(t.dtype)}; use one of ${DTYPE_NAMES.join(', ')}.`,
    );
  }
  const dtype = DTYPES[t.dtype];
  if (!dtype.isInstance(t.data)) {
    throw new SafetensorsError(
      `safetensors: tensor "${name}" has dtype ${t.dtype} but its data is a ${t.data?.constructor?.name ?? typeof t.data}; ` +
        `pass the typed array for ${t.dtype} (see SafetensorsArrayOf).`,
    );
  }
  const n = elementCount(t.shape, `tensor "${name}"`);
  if (t.data.length !== n) {
    throw new SafetensorsError(
      `safetensors: tensor "${name}" has shape ${JSON.stringify(t.shape)} (${n} elements) but ${t.data.length} data elements; ` +
        `make the shape and the data agree.`,
    );
  }
  if (t.dtype === 'BOOL') checkBools(name, t.data);
}

function checkBools(name: string, data: Uint8Array): void {
  for (let i = 0; i < data.length; i++) {
    if (data[i]! > 1) {
      throw new SafetensorsError(
        `safetensors: tensor "${name}" is BOOL but element ${i} is ${data[i]}; BOOL elements must be 0 or 1.`,
      );
    }
  }
}

function validateMetadata(metadata: unknown, where: string): asserts metadata is Record<string, string> {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new SafetensorsError(`safetensors: ${where} must be an object mapping strings to strings, got ${JSON.stringify(metadata)}.`);
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') {
      throw new SafetensorsError(
        `safetensors: ${where} maps "${k}" to ${JSON.stringify(v)}; metadata values must be strings (JSON.stringify structured values).`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

const CORRUPT_HINT = 'The file is corrupt, truncated or not a safetensors file; save or download it again.';

function fail(message: string): never {
  throw new SafetensorsError(`safetensors: ${message} ${CORRUPT_HINT}`);
}

/** Reads and validates the header of a safetensors file (the data region is checked for size only). */
export function parseSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (bytes.length < 8) fail(`the file is ${bytes.length} bytes long, shorter than the 8-byte header length.`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storedLength = view.getBigUint64(0, true);
  if (storedLength > BigInt(MAX_HEADER_BYTES)) {
    fail(`the header length is ${storedLength} bytes, more than the limit of ${MAX_HEADER_BYTES}.`);
  }
  const headerLength = Number(storedLength);
  if (8 + headerLength > bytes.length) {
    fail(`the header length is ${headerLength} bytes but only ${bytes.length - 8} bytes follow the length field.`);
  }
  if (headerLength < 2 || bytes[8] !== 0x7b) {
    fail(`the header must be a JSON object starting with '{' (byte 0x7b), but it starts with byte ${headerLength === 0 ? '(none)' : `0x${bytes[8]!.toString(16)}`}.`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    fail(`the ${headerLength}-byte header is not valid UTF-8.`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`the ${headerLength}-byte header is not valid JSON (${(e as Error).message}).`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is JSON but not an object.');
  const duplicate = firstDuplicateTopLevelKey(text);
  if (duplicate !== undefined) fail(`the header names "${duplicate}" twice; every name must be unique.`);

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  let metadata: Record<string, string> | undefined;
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      try {
        validateMetadata(value, `the header's "${METADATA_KEY}"`);
      } catch (e) {
        fail((e as Error).message.replace(/^safetensors: /, ''));
      }
      metadata = { ...value };
      continue;
    }
    entries.push(parseEntry(name, value, dataLength, bytes.length, dataStart));
  }

  // The tensors must tile the data region: sorted by offset, each starts where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous: SafetensorsEntry | undefined;
  for (const e of entries) {
    if (e.begin < expected) {
      fail(`tensor "${e.name}" (bytes [${e.begin}, ${e.end})) overlaps tensor "${previous!.name}" (bytes [${previous!.begin}, ${previous!.end})).`);
    }
    if (e.begin > expected) {
      fail(
        `bytes [${expected}, ${e.begin}) of the data region belong to no tensor (a hole ${previous ? `after tensor "${previous.name}"` : 'at the start'}, before tensor "${e.name}").`,
      );
    }
    expected = e.end;
    previous = e;
  }
  if (expected !== dataLength) {
    fail(`the tensors cover ${expected} bytes of data but the data region is ${dataLength} bytes; the trailing ${dataLength - expected} bytes belong to no tensor.`);
  }
  return { headerLength, dataStart, entries, metadata };
}

function parseEntry(name: string, value: unknown, dataLength: number, fileLength: number, dataStart: number): SafetensorsEntry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(`tensor "${name}" has header entry ${JSON.stringify(value)}; it must be an object with dtype, shape and data_offsets.`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isSafetensorsDtype(dtype)) {
    fail(`tensor "${name}" has dtype ${JSON.stringify(dtype)}, which is not one of ${DTYPE_NAMES.join(', ')}.`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`tensor "${name}" has shape ${JSON.stringify(shape)}; it must be an array of non-negative integers.`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    fail(`tensor "${name}" has data_offsets ${JSON.stringify(offsets)}; they must be two non-negative integers [begin, end].`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`tensor "${name}" has data_offsets [${begin}, ${end}], whose end is before its begin.`);
  let n: number;
  try {
    n = elementCount(shape as number[], `tensor "${name}"`);
  } catch (e) {
    fail((e as Error).message.replace(/^safetensors: /, ''));
  }
  const itemSize = DTYPES[dtype].itemSize;
  if (n * itemSize !== end - begin) {
    fail(
      `tensor "${name}" has dtype ${dtype} (${itemSize} bytes) and shape ${JSON.stringify(shape)} = ${n * itemSize} bytes, ` +
        `but its data_offsets [${begin}, ${end}] span ${end - begin} bytes.`,
    );
  }
  if (end > dataLength) {
    fail(
      `tensor "${name}" ends at byte ${end} of the data region, which is only ${dataLength} bytes long ` +
        `(the file is ${fileLength} bytes; it needs at least ${dataStart + end}).`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], begin, end };
}

/**
 * The first top-level key that occurs twice in a JSON object's text, or undefined. JSON.parse keeps the
 * last of duplicate keys silently; the format forbids them, so we look. The text is valid JSON already.
 */
function firstDuplicateTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1 && c === '{';
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

/** Parses and validates a whole safetensors file. Throws SafetensorsError naming the first problem. */
export function parseSafetensors(bytes: Uint8Array, options: ParseSafetensorsOptions = {}): ParsedSafetensors {
  const header = parseSafetensorsHeader(bytes);
  const tensors = new Map<string, RawTensor>();
  for (const e of header.entries) {
    tensors.set(e.name, readTensor(bytes, header.dataStart, e, options.copy ?? false));
  }
  return { tensors, metadata: header.metadata };
}

/** Reads one tensor described by a validated header entry. */
export function readTensor(bytes: Uint8Array, dataStart: number, entry: SafetensorsEntry, copy = false): RawTensor {
  const dtype = DTYPES[entry.dtype];
  const length = (entry.end - entry.begin) / dtype.itemSize;
  const at = bytes.byteOffset + dataStart + entry.begin;
  let data: SafetensorsArray;
  if (!copy && HOST_IS_LITTLE_ENDIAN && at % dtype.itemSize === 0) {
    data = dtype.make(bytes.buffer, at, length);
  } else {
    const own = bytes.slice(dataStart + entry.begin, dataStart + entry.end);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(own, dtype.itemSize);
    data = dtype.make(own.buffer, 0, length);
  }
  if (entry.dtype === 'BOOL') {
    try {
      checkBools(entry.name, data as Uint8Array);
    } catch (e) {
      fail((e as Error).message.replace(/^safetensors: /, ''));
    }
  }
  return { dtype: entry.dtype, shape: entry.shape, data } as RawTensor;
}
