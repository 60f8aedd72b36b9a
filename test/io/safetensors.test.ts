import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import {
  parseSafetensors,
  parseSafetensorsHeader,
  serializeSafetensors,
  SafetensorsError,
  type RawTensor,
} from '../../src/io/safetensors.js';

const fixtureDir = fileURLToPath(new URL('../fixtures/safetensors/', import.meta.url));

/** One tensor of every dtype, with awkward values (extremes, negative zero, NaN bit patterns). */
function everyDtype(): Record<string, RawTensor> {
  return {
    f64: { dtype: 'F64', shape: [2, 2], data: Float64Array.from([Math.PI, -0, Number.MAX_VALUE, Number.MIN_VALUE]) },
    f32: { dtype: 'F32', shape: [3], data: Float32Array.from([1.5, -2.25, NaN]) },
    f16: { dtype: 'F16', shape: [2], data: Uint16Array.from([0x3c00, 0xfbff]) },
    bf16: { dtype: 'BF16', shape: [1, 2], data: Uint16Array.from([0x3f80, 0x7fc0]) },
    i64: { dtype: 'I64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n]) },
    u64: { dtype: 'U64', shape: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
    i32: { dtype: 'I32', shape: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) },
    u32: { dtype: 'U32', shape: [1], data: Uint32Array.from([2 ** 32 - 1]) },
    i16: { dtype: 'I16', shape: [2], data: Int16Array.from([-32768, 32767]) },
    u16: { dtype: 'U16', shape: [1], data: Uint16Array.from([65535]) },
    i8: { dtype: 'I8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
    u8: { dtype: 'U8', shape: [2, 1], data: Uint8Array.from([0, 255]) },
    bool: { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
    f8: { dtype: 'F8_E4M3', shape: [1], data: Uint8Array.from([0x38]) },
    scalar: { dtype: 'F32', shape: [], data: Float32Array.from([7]) },
    empty: { dtype: 'F64', shape: [0, 5], data: new Float64Array(0) },
  };
}

function assertSameTensor(actual: RawTensor | undefined, expected: RawTensor, name: string): void {
  assert.ok(actual, `tensor ${name} missing`);
  assert.equal(actual.dtype, expected.dtype, name);
  assert.deepEqual([...actual.shape], [...expected.shape], name);
  assert.equal(actual.data.constructor, expected.data.constructor, name);
  // Compare bytes, so NaN payloads and -0 count too.
  const bytes = (a: RawTensor) => [...new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength)];
  assert.deepEqual(bytes(actual), bytes(expected), name);
}

test('every dtype round-trips bit-exactly, with metadata', () => {
  const tensors = everyDtype();
  const metadata = { format: 'pt', epoch: '3', 'unicode ✓': 'naïve' };
  const bytes = serializeSafetensors(tensors, metadata);
  const parsed = parseSafetensors(bytes);
  assert.deepEqual(parsed.metadata, metadata);
  assert.deepEqual([...parsed.tensors.keys()].sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) assertSameTensor(parsed.tensors.get(name), t, name);
  // Copies and views agree.
  const copied = parseSafetensors(bytes, { copy: true });
  for (const [name, t] of Object.entries(tensors)) assertSameTensor(copied.tensors.get(name), t, name);
});

test('the written layout follows the spec: LE length, padded header, aligned data', () => {
  const bytes = serializeSafetensors(everyDtype());
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0, 'header length is a multiple of 8');
  assert.equal(bytes[8], 0x7b, 'header starts with {');
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(headerText, /\}\s*$/);
  assert.equal(headerText.trimEnd().length + (headerText.length - headerText.trimEnd().length), n);
  assert.ok(/^ *$/.test(headerText.slice(headerText.lastIndexOf('}') + 1)), 'padding is spaces');
  const header = parseSafetensorsHeader(bytes);
  for (const e of header.entries) {
    const itemSize = e.dtype === 'F64' || e.dtype === 'I64' || e.dtype === 'U64' ? 8 : e.dtype.endsWith('32') ? 4 : /16/.test(e.dtype) ? 2 : 1;
    assert.equal((header.dataStart + e.begin) % itemSize, 0, `${e.name} aligned`);
  }
  // Without metadata the key is absent, not empty.
  assert.ok(!headerText.includes('__metadata__'));
  assert.equal(parseSafetensors(bytes).metadata, undefined);
});

test('zero-copy views share the buffer; copy: true does not', () => {
  const bytes = serializeSafetensors({ w: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } });
  const view = parseSafetensors(bytes).tensors.get('w')!;
  assert.equal(view.data.buffer, bytes.buffer);
  const copy = parseSafetensors(bytes, { copy: true }).tensors.get('w')!;
  assert.notEqual(copy.data.buffer, bytes.buffer);
  // A buffer whose data sits at an odd offset still parses (by copying).
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const odd = parseSafetensors(shifted.subarray(1)).tensors.get('w')!;
  assert.deepEqual([...odd.data], [1, 2]);
});

// --- An independent reader, written from the spec in a few lines, reads what we write. ---------------

function specReader(bytes: Uint8Array): Record<string, { dtype: string; shape: number[]; values: Array<number | bigint> }> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out: Record<string, { dtype: string; shape: number[]; values: Array<number | bigint> }> = {};
  for (const [name, { dtype, shape, data_offsets }] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const values: Array<number | bigint> = [];
    for (let p = 8 + n + data_offsets[0]; p < 8 + n + data_offsets[1]; ) {
      switch (dtype) {
        case 'F64': values.push(dv.getFloat64(p, true)); p += 8; break;
        case 'F32': values.push(dv.getFloat32(p, true)); p += 4; break;
        case 'I64': values.push(dv.getBigInt64(p, true)); p += 8; break;
        case 'I32': values.push(dv.getInt32(p, true)); p += 4; break;
        case 'F16': case 'BF16': values.push(dv.getUint16(p, true)); p += 2; break;
        case 'I8': values.push(dv.getInt8(p)); p += 1; break;
        case 'U8': case 'BOOL': values.push(dv.getUint8(p)); p += 1; break;
        default: throw new Error(`spec reader: dtype ${dtype} not covered`);
      }
    }
    out[name] = { dtype, shape, values };
  }
  return out;
}

test('a file we write is read correctly by an independent reader written from the spec', () => {
  const bytes = serializeSafetensors({
    'layer.0.weight': { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, -2, 3.5, 0.25]) },
    'layer.0.bias': { dtype: 'F64', shape: [2], data: Float64Array.from([0.1, -0.2]) },
    step: { dtype: 'I64', shape: [], data: BigInt64Array.from([42n]) },
    ids: { dtype: 'I32', shape: [3], data: Int32Array.from([5, -6, 7]) },
    half: { dtype: 'F16', shape: [1], data: Uint16Array.from([0x3c00]) },
    flags: { dtype: 'BOOL', shape: [2], data: Uint8Array.from([0, 1]) },
    small: { dtype: 'I8', shape: [1], data: Int8Array.from([-3]) },
  });
  const read = specReader(bytes);
  assert.deepEqual(read['layer.0.weight'], { dtype: 'F32', shape: [2, 2], values: [1, -2, 3.5, 0.25] });
  assert.deepEqual(read['layer.0.bias'], { dtype: 'F64', shape: [2], values: [0.1, -0.2] });
  assert.deepEqual(read['step'], { dtype: 'I64', shape: [], values: [42n] });
  assert.deepEqual(read['ids'], { dtype: 'I32', shape: [3], values: [5, -6, 7] });
  assert.deepEqual(read['half'], { dtype: 'F16', shape: [1], values: [0x3c00] });
  assert.deepEqual(read['flags'], { dtype: 'BOOL', shape: [2], values: [0, 1] });
  assert.deepEqual(read['small'], { dtype: 'I8', shape: [1], values: [-3] });
});

test('reads the reference file written by make_reference.py (stdlib-only, from the spec)', () => {
  const bytes = new Uint8Array(readFileSync(fixtureDir + 'reference.safetensors'));
  const expected = JSON.parse(readFileSync(fixtureDir + 'reference.json', 'utf8')) as {
    metadata: Record<string, string>;
    tensors: Record<string, { dtype: string; shape: number[]; values: Array<number | string> }>;
  };
  const parsed = parseSafetensors(bytes);
  assert.deepEqual(parsed.metadata, expected.metadata);
  assert.deepEqual([...parsed.tensors.keys()].sort(), Object.keys(expected.tensors).sort());
  for (const [name, want] of Object.entries(expected.tensors)) {
    const got = parsed.tensors.get(name)!;
    assert.equal(got.dtype, want.dtype, name);
    assert.deepEqual([...got.shape], want.shape, name);
    const values = Array.from(got.data as ArrayLike<number | bigint>).map((v) => (typeof v === 'bigint' ? String(v) : v));
    assert.deepEqual(values, want.values, name);
  }
  // Re-serializing what we read and parsing again gives the same tensors.
  const again = parseSafetensors(serializeSafetensors(parsed.tensors, parsed.metadata));
  for (const [name, t] of parsed.tensors) assertSameTensor(again.tensors.get(name), t, name);
});

// --- Malformed files ---------------------------------------------------------------------------------

/** Builds a file from a header object and a data region, padding like a real writer. */
function fileOf(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const text = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

const good = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => parseSafetensors(bytes),
    (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${String(e)}`);
      assert.match(e.message, pattern);
      assert.match(e.message, /save or download it again/);
      return true;
    },
  );
}

test('a well-formed hand-built file parses (control for the rejections below)', () => {
  const t = parseSafetensors(fileOf(good, new Uint8Array(12)));
  assert.deepEqual([...t.tensors.keys()], ['a', 'b']);
});

test('rejects files shorter than the length field and headers longer than the file', () => {
  rejects(new Uint8Array(5), /5 bytes long, shorter than the 8-byte header length/);
  const f = fileOf(good, new Uint8Array(12));
  new DataView(f.buffer).setBigUint64(0, 10_000n, true);
  rejects(f, /header length is 10000 bytes but only \d+ bytes follow/);
  new DataView(f.buffer).setBigUint64(0, 2n ** 40n, true);
  rejects(f, /header length is 1099511627776 bytes, more than the limit/);
});

test('rejects headers that are not a JSON object, not UTF-8, or repeat a name', () => {
  rejects(fileOf(null, new Uint8Array(0), '[1, 2]  '), /must be a JSON object starting with '\{'/);
  rejects(fileOf(null, new Uint8Array(0), '{"a": '), /not valid JSON/);
  const bad = fileOf(null, new Uint8Array(0), '{"\u00e9":1}');
  bad[10] = 0xff; // break the UTF-8 of the é
  rejects(bad, /not valid UTF-8/);
  rejects(
    fileOf(null, new Uint8Array(8), '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'),
    /names "a" twice/,
  );
});

test('rejects unknown dtypes, bad shapes and offsets, and size mismatches, naming the tensor', () => {
  rejects(fileOf({ w: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, new Uint8Array(16)), /tensor "w" has dtype "F128", which is not one of F64/);
  rejects(fileOf({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "w" has shape \[-1\]/);
  rejects(fileOf({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, new Uint8Array(4)), /tensor "w" has data_offsets \[0\]/);
  rejects(fileOf({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, new Uint8Array(4)), /end is before its begin/);
  rejects(
    fileOf({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, new Uint8Array(20)),
    /tensor "w" has dtype F32 \(4 bytes\) and shape \[2,3\] = 24 bytes, but its data_offsets \[0, 20\] span 20 bytes/,
  );
  rejects(fileOf({ w: 5 }), /tensor "w" has header entry 5/);
  rejects(fileOf({ __metadata__: { epoch: 3 } }), /maps "epoch" to 3; metadata values must be strings/);
});

test('rejects overlapping tensors, holes and unindexed trailing bytes', () => {
  rejects(
    fileOf({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)),
    /tensor "b" \(bytes \[4, 8\)\) overlaps tensor "a" \(bytes \[0, 8\)\)/,
  );
  rejects(
    fileOf({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, new Uint8Array(12)),
    /bytes \[4, 8\) of the data region belong to no tensor \(a hole after tensor "a", before tensor "b"\)/,
  );
  rejects(fileOf({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /hole at the start/);
  rejects(fileOf(good, new Uint8Array(16)), /cover 12 bytes of data but the data region is 16 bytes/);
});

test('rejects truncated files, saying how long the file should be', () => {
  const full = serializeSafetensors({ w: { dtype: 'F64', shape: [4], data: new Float64Array(4) } });
  rejects(full.subarray(0, full.length - 3), /tensor "w" ends at byte 32 of the data region, which is only 29 bytes long \(the file is \d+ bytes; it needs at least \d+\)/);
  rejects(full.subarray(0, 12), /only 4 bytes follow the length field/);
});

test('rejects BOOL bytes other than 0 and 1', () => {
  const bytes = serializeSafetensors({ m: { dtype: 'BOOL', shape: [2], data: Uint8Array.from([0, 1]) } });
  bytes[bytes.length - 1] = 7;
  rejects(bytes, /tensor "m" is BOOL but element 1 is 7/);
});

test('the writer refuses data that does not match the dtype or shape', () => {
  assert.throws(
    () => serializeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }),
    /tensor "w" has shape \[2,2\] \(4 elements\) but 3 data elements/,
  );
  assert.throws(
    () => serializeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } as unknown as RawTensor }),
    /tensor "w" has dtype F32 but its data is a Float64Array/,
  );
  assert.throws(() => serializeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }), /reserved/);
  assert.throws(() => serializeSafetensors({}, { n: 1 } as unknown as Record<string, string>), /metadata values must be strings/);
});

test('a tensor named __proto__ is an ordinary name', () => {
  const tensors = new Map<string, RawTensor>([['__proto__', { dtype: 'U8', shape: [1], data: Uint8Array.from([9]) }]]);
  const parsed = parseSafetensors(serializeSafetensors(tensors));
  assert.deepEqual([...parsed.tensors.get('__proto__')!.data], [9]);
});
