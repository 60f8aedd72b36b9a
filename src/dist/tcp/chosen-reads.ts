// Reads of a connection into memory that this side chooses, through Node's `onread` socket
// option, instead of Node's default of one freshly allocated Buffer (up to 64 KiB) per read.
// In a 64 MB 2-rank all-reduce those reads cost ~40 ms of CPU per call per rank: allocation and
// GC, and kernel time faulting in the fresh pages. Reading into one reused buffer leaves the
// kernel's copy and a callback per read. The reused buffer is small, so that the data read into
// it is still in cache when the reduction reads it; where a message has a final home (a receive
// into an array), the reads go straight there instead. Node offers `onread` only on sockets
// it connects (`net.connect`), not on sockets a server accepts, which is why every rank reads
// its peers' data only from connections it opened itself (see tcp-transport.ts).
import type { OnReadOpts } from 'node:net';
import type { ByteSubscription } from './frames.js';
import { SimdReducer } from '../simd-reduce.js';

/** 64 KiB: the size of Node's own reads; fits in L2 with room for the reduction's other operand. */
export const CHOSEN_READ_BYTES = 64 * 1024;

export class ChosenReads {
  /**
   * 8 bytes of slack so that a read can start at any offset modulo 8 and still be full size.
   * It is the staging area of a SIMD reducer (simd-reduce.ts) where WebAssembly is available, so
   * that a reduction of what was read here needs no copy of it.
   */
  private readonly memory = SimdReducer.create(CHOSEN_READ_BYTES + 8)?.staging ?? new Uint8Array(CHOSEN_READ_BYTES + 8);
  /** Reads that arrive while nobody takes them (between the handshake and deliverTo), copied. */
  private pending: Buffer[] = [];
  private readonly keep = (bytes: Uint8Array) => {
    this.pending.push(Buffer.from(bytes));
  };
  private consume: (bytes: Uint8Array) => void = this.keep;
  private nextOffset: () => number = () => 0;
  private nextTarget: () => Uint8Array | undefined = () => undefined;

  /** For `net.connect({ ..., onread })`. Node asks for the next read's memory after each read. */
  readonly onread: OnReadOpts = {
    buffer: () => {
      const target = this.nextTarget();
      if (target) return target;
      const offset = this.nextOffset();
      return this.memory.subarray(offset, offset + CHOSEN_READ_BYTES);
    },
    callback: (bytesRead, buffer) => {
      this.consume(buffer.subarray(0, bytesRead));
      return true;
    },
  };

  /**
   * For the handshake, which keeps what it reads: hands on a copy of every read, since the read
   * memory is reused by the next read.
   */
  readonly copies: ByteSubscription = (onData) => {
    this.consume = (bytes) => onData(Buffer.from(bytes));
    return () => {
      this.consume = this.keep;
    };
  };

  /**
   * From now on every read goes to `consume`, which must be done with the bytes when it returns.
   * `nextOffset` tells where (modulo 8) the following read should start, so that the reader
   * can have message bodies land aligned (DataFrameReader.nextChunkOffset); `nextTarget`, where
   * it returns memory, is read into instead (DataFrameReader.nextReadTarget).
   */
  deliverTo(consume: (bytes: Uint8Array) => void, nextOffset: () => number, nextTarget: () => Uint8Array | undefined): void {
    for (const bytes of this.pending.splice(0)) consume(bytes);
    this.consume = consume;
    this.nextOffset = nextOffset;
    this.nextTarget = nextTarget;
  }
}
