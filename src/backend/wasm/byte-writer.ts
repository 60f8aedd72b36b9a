// A growable byte buffer with the WebAssembly primitive encodings (LEB128, IEEE floats, names).
// Kernels are emitted at run time, often many per second, so the writer appends into a
// preallocated Uint8Array that doubles when full instead of building arrays by spreading.

const textEncoder = new TextEncoder();

export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  /** Number of bytes written so far. */
  length = 0;

  constructor(initialCapacity = 256) {
    this.buffer = new Uint8Array(Math.max(16, initialCapacity));
    this.view = new DataView(this.buffer.buffer);
  }

  private ensure(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  byte(b: number): this {
    this.ensure(1);
    this.buffer[this.length++] = b & 0xff;
    return this;
  }

  bytes(src: ArrayLike<number>): this {
    this.ensure(src.length);
    this.buffer.set(src, this.length);
    this.length += src.length;
    return this;
  }

  /** Unsigned LEB128 of a value in [0, 2^32). */
  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`u32 LEB128: ${value} is not an integer in [0, 2^32)`);
    }
    this.ensure(5);
    let v = value >>> 0;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.buffer[this.length++] = b;
    } while (v !== 0);
    return this;
  }

  /** Signed LEB128 of a value in [-2^31, 2^32); values ≥ 2^31 are taken as their i32 bit pattern. */
  s32(value: number): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) {
      throw new RangeError(`s32 LEB128: ${value} is not a 32-bit integer`);
    }
    this.ensure(5);
    let v = value | 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      const done = (v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0);
      this.buffer[this.length++] = done ? b : b | 0x80;
      if (done) return this;
    }
  }

  /** Signed LEB128 of a 64-bit integer. */
  s64(value: bigint): this {
    let v = BigInt.asIntN(64, value);
    this.ensure(10);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
      this.buffer[this.length++] = done ? b : b | 0x80;
      if (done) return this;
    }
  }

  f32(value: number): this {
    this.ensure(4);
    this.view.setFloat32(this.length, value, true);
    this.length += 4;
    return this;
  }

  f64(value: number): this {
    this.ensure(8);
    this.view.setFloat64(this.length, value, true);
    this.length += 8;
    return this;
  }

  /** A length-prefixed UTF-8 name. */
  name(text: string): this {
    const encoded = textEncoder.encode(text);
    this.u32(encoded.length);
    return this.bytes(encoded);
  }

  /** Appends another writer's bytes prefixed by their length (a section or function body). */
  sized(inner: ByteWriter): this {
    this.u32(inner.length);
    this.ensure(inner.length);
    this.buffer.set(inner.buffer.subarray(0, inner.length), this.length);
    this.length += inner.length;
    return this;
  }

  /** A copy of the bytes written so far. */
  toBytes(): Uint8Array<ArrayBuffer> {
    return this.buffer.slice(0, this.length);
  }
}
