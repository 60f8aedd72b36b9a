// A reader for the protobuf wire format, enough to decode ONNX files: varints (int32/int64/enum/
// bool), 32- and 64-bit fixed fields, length-delimited fields (strings, bytes, sub-messages) and
// packed repeated scalars. Schema-less: the ONNX decoders (proto.ts) know which field number holds
// what. int64 values come back as JavaScript numbers, exact up to 2^53 and rounded beyond (ONNX
// uses 2^63 − 1 as "to the end" in Slice, where rounding is harmless).

import { TesseraError } from '../core/errors.js';

/** The wire types of protobuf: how the bytes of a field's value are laid out. */
export enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

const textDecoder = new TextDecoder();

export class ProtoReader {
  private pos: number;
  private readonly end: number;

  constructor(
    private readonly bytes: Uint8Array,
    start = 0,
    end = bytes.length,
    /** What is being decoded, for error messages ("ModelProto.graph.node[3]"). */
    readonly what = 'message',
  ) {
    this.pos = start;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  private fail(problem: string): never {
    throw new TesseraError(`onnx: cannot decode ${this.what} at byte ${this.pos}: ${problem}; the file is truncated or not an ONNX protobuf`);
  }

  /** Reads a field key; returns its field number and wire type. */
  key(): { field: number; wire: WireType } {
    const k = this.varint();
    const wire = k % 8;
    if (wire !== 0 && wire !== 1 && wire !== 2 && wire !== 5) this.fail(`unsupported wire type ${wire} (groups are not used by ONNX)`);
    return { field: Math.floor(k / 8), wire: wire as WireType };
  }

  /** An unsigned or two's-complement varint as a number (int64 beyond 2^53 rounds). */
  varint(): number {
    const b = this.bytes;
    let result = 0;
    let shift = 0;
    // Fast path: up to four bytes (values below 2^28) in plain arithmetic.
    while (shift < 28) {
      if (this.pos >= this.end) this.fail('a varint runs past the end');
      const byte = b[this.pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return result;
      shift += 7;
    }
    let big = BigInt(result);
    let bigShift = BigInt(shift);
    for (let i = 0; i < 6; i++) {
      if (this.pos >= this.end) this.fail('a varint runs past the end');
      const byte = b[this.pos++]!;
      big |= BigInt(byte & 0x7f) << bigShift;
      if (byte < 0x80) return Number(BigInt.asIntN(64, big));
      bigShift += 7n;
    }
    return this.fail('a varint is longer than 10 bytes');
  }

  /** A varint read as a signed 32-bit int (enums and int32 fields; negative ones take 10 bytes). */
  int32(): number {
    return this.varint() | 0;
  }

  fixed32Float(): number {
    if (this.pos + 4 > this.end) this.fail('a 32-bit field runs past the end');
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  fixed64Double(): number {
    if (this.pos + 8 > this.end) this.fail('a 64-bit field runs past the end');
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }

  /** The bytes of a length-delimited field, as a view (no copy). */
  bytesField(): Uint8Array {
    const length = this.varint();
    if (this.pos + length > this.end) this.fail(`a length-delimited field of ${length} bytes runs past the end`);
    const view = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return view;
  }

  string(): string {
    return textDecoder.decode(this.bytesField());
  }

  /** A reader over a length-delimited sub-message. */
  message(what: string): ProtoReader {
    const length = this.varint();
    if (this.pos + length > this.end) this.fail(`the sub-message ${what} of ${length} bytes runs past the end`);
    const sub = new ProtoReader(this.bytes, this.pos, this.pos + length, `${this.what}.${what}`);
    this.pos += length;
    return sub;
  }

  /**
   * Appends the values of a repeated scalar field to `out`, packed (one length-delimited run) or
   * not (one value per key), as protobuf parsers must accept both; `read` reads one value.
   */
  private repeated(wire: WireType, out: number[], read: (r: ProtoReader) => number): void {
    if (wire === WireType.LengthDelimited) {
      const sub = this.message('packed');
      while (!sub.done) out.push(read(sub));
    } else {
      out.push(read(this));
    }
  }

  repeatedVarint(wire: WireType, out: number[]): void {
    this.repeated(wire, out, (r) => r.varint());
  }

  repeatedFloat(wire: WireType, out: number[]): void {
    this.repeated(wire, out, (r) => r.fixed32Float());
  }

  repeatedDouble(wire: WireType, out: number[]): void {
    this.repeated(wire, out, (r) => r.fixed64Double());
  }

  /** Skips a field this decoder does not use. */
  skip(wire: WireType): void {
    switch (wire) {
      case WireType.Varint: this.varint(); return;
      case WireType.Fixed64: this.advance(8); return;
      case WireType.Fixed32: this.advance(4); return;
      case WireType.LengthDelimited: this.bytesField(); return;
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) this.fail(`a fixed field runs past the end`);
    this.pos += n;
  }
}

/** Writes the protobuf wire format (for ONNX export and for tests that build models). */
export class ProtoWriter {
  // Bytes so far: finished parts, and the small values (keys, varints) being collected in `pending`.
  private readonly parts: Uint8Array[] = [];
  private pending: number[] = [];
  private length = 0;

  private byte(b: number): void {
    this.pending.push(b);
    this.length++;
  }

  private flushPending(): void {
    if (this.pending.length === 0) return;
    this.parts.push(Uint8Array.from(this.pending));
    this.pending = [];
  }

  /** A varint; negative numbers take ten bytes (two's complement over 64 bits), as protobuf's int64. */
  varint(value: number): this {
    if (!Number.isInteger(value)) throw new TesseraError(`onnx: cannot encode ${value} as a protobuf varint; it is not an integer`);
    if (value >= 0 && value < 2 ** 31) {
      let v = value;
      while (v >= 0x80) {
        this.byte((v & 0x7f) | 0x80);
        v >>>= 7;
      }
      this.byte(v);
      return this;
    }
    let big = BigInt.asUintN(64, BigInt(value));
    while (big >= 0x80n) {
      this.byte(Number(big & 0x7fn) | 0x80);
      big >>= 7n;
    }
    this.byte(Number(big));
    return this;
  }

  key(field: number, wire: WireType): this {
    return this.varint(field * 8 + wire);
  }

  varintField(field: number, value: number): this {
    return this.key(field, WireType.Varint).varint(value);
  }

  floatField(field: number, value: number): this {
    this.key(field, WireType.Fixed32);
    this.rawBytes(new Uint8Array(new Float32Array([value]).buffer));
    return this;
  }

  bytesField(field: number, bytes: Uint8Array): this {
    this.key(field, WireType.LengthDelimited).varint(bytes.length);
    this.rawBytes(bytes);
    return this;
  }

  stringField(field: number, value: string): this {
    return this.bytesField(field, new TextEncoder().encode(value));
  }

  messageField(field: number, build: (w: ProtoWriter) => void): this {
    const sub = new ProtoWriter();
    build(sub);
    return this.bytesField(field, sub.finish());
  }

  packedVarints(field: number, values: readonly number[]): this {
    const sub = new ProtoWriter();
    for (const v of values) sub.varint(v);
    return this.bytesField(field, sub.finish());
  }

  packedFloats(field: number, values: readonly number[]): this {
    return this.bytesField(field, new Uint8Array(new Float32Array(values).buffer));
  }

  private rawBytes(bytes: Uint8Array): void {
    this.flushPending();
    this.parts.push(bytes.slice());
    this.length += bytes.length;
  }

  finish(): Uint8Array {
    this.flushPending();
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}
