// Wire formats. Control messages (handshakes, store requests) are JSON in frames with a 4-byte
// big-endian length prefix. Data messages have a 24-byte header (magic, kind, tag, length)
// followed by the body; the reader checks the magic and the announced length before it accepts
// a single body byte.
import type { Socket } from 'node:net';
import type { Inbound } from '../mailbox.js';

export const MAX_JSON_FRAME = 64 * 1024;
export const DATA_MAGIC = 0x54535231; // "TSR1"
export const KIND_DATA = 1;
export const KIND_BYE = 2;
/** Sent when a rank's group fails; its tag carries the lost rank, so every rank names the same one. */
export const KIND_ABORT = 3;
export const DATA_HEADER_BYTES = 24;
/** Bodies with less left than this are read into the reusable buffer: one read either way. */
const DIRECT_READ_MIN_BYTES = 4096;

export function encodeJson(value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Splits a byte stream into JSON frames; rejects frames over MAX_JSON_FRAME. */
export class JsonFrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  /** Appends bytes without parsing them. */
  append(chunk: Buffer): void {
    if (chunk.length > 0) this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
  }

  /** The next complete frame, or undefined if it has not fully arrived. */
  next(): unknown {
    if (this.buffered.length < 4) return undefined;
    const n = this.buffered.readUInt32BE(0);
    if (n > MAX_JSON_FRAME) throw new Error(`control frame of ${n} bytes announced, over the limit of ${MAX_JSON_FRAME}`);
    if (this.buffered.length < 4 + n) return undefined;
    const value: unknown = JSON.parse(this.buffered.subarray(4, 4 + n).toString('utf8'));
    this.buffered = this.buffered.subarray(4 + n);
    return value;
  }

  /** Appends bytes and returns the complete frames now available. */
  push(chunk: Buffer): unknown[] {
    this.append(chunk);
    const out: unknown[] = [];
    for (let f = this.next(); f !== undefined; f = this.next()) out.push(f);
    return out;
  }

  /** Bytes received after the last complete frame (the start of the binary stream). */
  rest(): Buffer {
    return this.buffered;
  }
}

/** Calls `onData` with each chunk read from a connection until the returned function is called. */
export type ByteSubscription = (onData: (chunk: Buffer) => void) => () => void;

/** A socket's 'data' events (a socket read the ordinary way, into Buffers Node allocates). */
export function socketData(socket: Socket): ByteSubscription {
  return (onData) => {
    socket.on('data', onData);
    return () => socket.off('data', onData);
  };
}

/**
 * Reads exactly one JSON frame from a socket (with a time limit), keeping any extra bytes.
 * `subscribe` says where the socket's bytes come from: its 'data' events unless it reads into
 * memory of its own (see ChosenReads).
 */
export function readOneJson(socket: Socket, reader: JsonFrameReader, timeoutMs: number, what: string, subscribe: ByteSubscription = socketData(socket)): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let unsubscribe = () => {};
    const done = (err: Error | undefined, value?: unknown) => {
      clearTimeout(timer);
      unsubscribe();
      socket.off('close', onClose);
      socket.off('error', onError);
      if (err) reject(err);
      else resolve(value);
    };
    // Parses only one frame: whatever follows may already be the binary stream.
    const onData = (chunk: Buffer) => {
      try {
        reader.append(chunk);
        const frame = reader.next();
        if (frame !== undefined) done(undefined, frame);
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)));
      }
    };
    const onClose = () => done(new Error(`${what}: the connection closed during the handshake`));
    const onError = (err: Error) => done(new Error(`${what}: ${err.message}`));
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    try {
      const early = reader.next();
      if (early !== undefined) {
        clearTimeout(timer);
        resolve(early);
        return;
      }
    } catch (err) {
      clearTimeout(timer);
      reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    unsubscribe = subscribe(onData);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}

export function encodeDataHeader(kind: number, tag: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(DATA_HEADER_BYTES);
  h.writeUInt32LE(DATA_MAGIC, 0);
  h.writeUInt32LE(kind, 4);
  h.writeDoubleLE(tag, 8);
  h.writeDoubleLE(length, 16);
  return h;
}

export interface DataFrameHandlers {
  /** A message header arrived; returns where its body goes. */
  begin(tag: number, length: number): Inbound;
  bye(): void;
  abort(lostRank: number): void;
}

/**
 * Parses the data stream of one connection. Bodies are handed on in pieces whose lengths are
 * multiples of 8 (except a message's last piece), as the Sink contract requires.
 */
export class DataFrameReader {
  private readonly header = Buffer.alloc(DATA_HEADER_BYTES);
  private headerFill = 0;
  private inbound: Inbound | undefined;
  private remaining = 0;
  private readonly carry = new Uint8Array(8);
  private carryFill = 0;
  /** The memory nextReadTarget handed out for the coming read, if any. */
  private handedOut: Uint8Array | undefined;
  /**
   * Bytes (fewer than 8) already read into the receive's own memory but not yet delivered,
   * because they do not make up a multiple of 8; the next direct read continues right after
   * them and is delivered together with them, so they need no carry.
   */
  private placed: Uint8Array | undefined;

  constructor(
    private readonly handlers: DataFrameHandlers,
    private readonly maxMessageBytes: number,
    private readonly peerName: string,
  ) {}

  /**
   * Where, modulo 8, the next chunk should start in memory for the body bytes in it to be
   * delivered at 8-byte-aligned addresses (so that a sink can view them as float64, float32 or
   * int32 without copying them first). A reader that chooses its read buffers (ChosenReads)
   * starts each read at this offset of an aligned buffer. Body pieces are delivered from the
   * first multiple of 8 after the carried bytes, and a header is 24 bytes long, so what matters
   * is how many bytes of the current header or body were consumed, modulo 8.
   */
  nextChunkOffset(): number {
    if (!this.inbound) return this.headerFill % 8;
    return (this.carryFill + (this.placed?.length ?? 0)) % 8;
  }

  /**
   * Memory that the next read may go to directly: the rest of the current message's final
   * home, when its receive offered one (Inbound.rest) and enough of the body is left. Reading
   * there makes the kernel's copy the only one; the chunk then arrives as a view of that memory
   * and the receive does not copy it again. At most the body's remaining bytes, so that a read
   * never runs into the next frame. The next push must be of (a prefix of) this memory or of
   * memory this reader did not hand out.
   */
  nextReadTarget(): Uint8Array | undefined {
    this.handedOut = undefined;
    if (!this.inbound || this.remaining < DIRECT_READ_MIN_BYTES) return undefined;
    const rest = this.inbound.rest?.();
    const pending = this.carryFill + (this.placed?.length ?? 0);
    if (!rest || rest.byteLength !== this.remaining + pending) return undefined;
    if (this.carryFill > 0) {
      // Bytes carried from a read elsewhere go to their place (under 8 bytes), so that the
      // read can follow them there; otherwise most reads after one into the reusable buffer
      // would leave a carry and go there too.
      rest.set(this.carry.subarray(0, this.carryFill));
      this.placed = rest.subarray(0, this.carryFill);
      this.carryFill = 0;
    }
    this.handedOut = rest.subarray(pending);
    return this.handedOut;
  }

  push(chunk: Uint8Array): void {
    const target = this.handedOut;
    this.handedOut = undefined;
    if (target && chunk.buffer === target.buffer && chunk.byteOffset === target.byteOffset && chunk.byteLength <= this.remaining) {
      this.pushPlaced(chunk);
      return;
    }
    if (this.placed) {
      // The read went elsewhere after all: the placed bytes continue as carried ones.
      this.carry.set(this.placed, this.carryFill);
      this.carryFill += this.placed.length;
      this.placed = undefined;
    }
    let pos = 0;
    while (pos < chunk.length) {
      if (!this.inbound) {
        const take = Math.min(DATA_HEADER_BYTES - this.headerFill, chunk.length - pos);
        this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
        this.headerFill += take;
        pos += take;
        if (this.headerFill === DATA_HEADER_BYTES) {
          this.headerFill = 0;
          this.startMessage();
        }
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - pos);
      this.deliver(chunk.subarray(pos, pos + take));
      pos += take;
      this.remaining -= take;
      if (this.remaining === 0) this.finishMessage();
    }
  }

  /** A read that landed in the receive's own memory, right after any bytes placed before it. */
  private pushPlaced(chunk: Uint8Array): void {
    const before = this.placed?.length ?? 0;
    const piece = new Uint8Array(chunk.buffer, chunk.byteOffset - before, before + chunk.byteLength);
    this.remaining -= chunk.byteLength;
    const last = this.remaining === 0;
    const whole = last ? piece.length : piece.length - (piece.length % 8);
    if (whole > 0) this.inbound!.write(piece.subarray(0, whole));
    this.placed = whole < piece.length ? piece.subarray(whole) : undefined;
    if (last) this.finishMessage();
  }

  private startMessage(): void {
    const magic = this.header.readUInt32LE(0);
    const kind = this.header.readUInt32LE(4);
    const tag = this.header.readDoubleLE(8);
    const length = this.header.readDoubleLE(16);
    if (magic !== DATA_MAGIC) throw new Error(`${this.peerName} sent a frame with a bad magic number 0x${magic.toString(16)}`);
    if (kind === KIND_BYE) {
      this.handlers.bye();
      return;
    }
    if (kind === KIND_ABORT) {
      this.handlers.abort(tag);
      return;
    }
    if (kind !== KIND_DATA) throw new Error(`${this.peerName} sent a frame of unknown kind ${kind}`);
    if (!Number.isInteger(length) || length < 0 || length > this.maxMessageBytes) {
      throw new Error(`${this.peerName} announced a message of ${length} bytes, over the limit of ${this.maxMessageBytes}`);
    }
    this.inbound = this.handlers.begin(tag, length);
    this.remaining = length;
    if (length === 0) this.finishMessage();
  }

  private deliver(piece: Uint8Array): void {
    const inbound = this.inbound!;
    if (this.carryFill > 0) {
      const t = Math.min(8 - this.carryFill, piece.length);
      this.carry.set(piece.subarray(0, t), this.carryFill);
      this.carryFill += t;
      piece = piece.subarray(t);
      if (this.carryFill < 8) return;
      inbound.write(this.carry);
      this.carryFill = 0;
    }
    const whole = piece.length - (piece.length % 8);
    if (whole > 0) inbound.write(piece.subarray(0, whole));
    const rest = piece.length - whole;
    if (rest > 0) {
      this.carry.set(piece.subarray(whole), 0);
      this.carryFill = rest;
    }
  }

  private finishMessage(): void {
    const inbound = this.inbound!;
    if (this.carryFill > 0) inbound.write(this.carry.subarray(0, this.carryFill));
    this.carryFill = 0;
    this.inbound = undefined;
    inbound.end();
  }
}
