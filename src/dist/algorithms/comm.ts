// The view one collective call has of its group: group-local ranks, typed send/receive, fused
// receive-and-reduce, and scratch memory. Algorithms see only this, never a transport.
import type { Deadline } from '../deadline.js';
import { reduceInto, reduceIntoBoth } from '../reduce-kernels.js';
import type { Transport, TransportKind } from '../transport.js';
import type { CommArray, DType, ReduceOp } from '../types.js';
import { allocArray, bytesOf, elementBytes, viewAs } from '../types.js';

/** Reuses scratch buffers between calls so that shared memory is registered with peers once. */
export class ScratchPool {
  private readonly free: ArrayBufferLike[] = [];
  constructor(private readonly transport: Transport) {}

  take(byteLength: number): ArrayBufferLike {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i]!;
      if (b.byteLength >= byteLength && (best < 0 || b.byteLength < this.free[best]!.byteLength)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0]!;
    // Round up so that the buffers of slightly different sizes can be reused.
    const size = byteLength <= 64 ? 64 : 2 ** Math.ceil(Math.log2(byteLength));
    return this.transport.allocate(size);
  }

  give(buffer: ArrayBufferLike): void {
    this.free.push(buffer);
    if (this.free.length > 8) this.free.sort((a, b) => b.byteLength - a.byteLength).pop();
  }

  /** Bytes of the buffers kept for the next calls (not those lent to a call under way). */
  get keptBytes(): number {
    return this.free.reduce((n, b) => n + b.byteLength, 0);
  }
}

export class Comm {
  private readonly taken: ArrayBufferLike[] = [];
  /** Reused to realign socket chunks for typed views; grown to the largest chunk seen. */
  private staging = new Uint8Array(0);

  constructor(
    private readonly transport: Transport,
    /** Global rank of each group rank. */
    readonly ranks: readonly number[],
    /** This caller's rank within the group. */
    readonly rank: number,
    readonly dtype: DType,
    private readonly tag: number,
    readonly deadline: Deadline,
    private readonly pool: ScratchPool,
  ) {}

  get size(): number {
    return this.ranks.length;
  }

  /** Which transport carries this call: algorithms may take a form that suits it (see pair.ts). */
  get transportKind(): TransportKind {
    return this.transport.kind;
  }

  send(peer: number, data: CommArray): Promise<void> {
    return this.transport.send(this.ranks[peer]!, this.tag, bytesOf(data), this.deadline);
  }

  recvInto(peer: number, dst: CommArray): Promise<void> {
    const bytes = bytesOf(dst);
    const sink = (chunk: Uint8Array, offset: number) => {
      // Already in place where the transport read it straight into `dst` (see Transport.recv).
      if (chunk.buffer === bytes.buffer && chunk.byteOffset === bytes.byteOffset + offset) return;
      bytes.set(chunk, offset);
    };
    return this.transport.recv(this.ranks[peer]!, this.tag, bytes.byteLength, sink, this.deadline, bytes);
  }

  /** Receives a message of dst.length elements and folds it into dst with `op` as it arrives. */
  recvReduce(peer: number, dst: CommArray, op: ReduceOp): Promise<void> {
    const es = elementBytes(this.dtype);
    const dtype = this.dtype;
    return this.transport.recv(
      this.ranks[peer]!,
      this.tag,
      dst.byteLength,
      (chunk, offset) => {
        const aligned = this.aligned(chunk, es);
        const start = offset / es;
        reduceInto(dst.subarray(start, start + aligned.byteLength / es), viewAs(dtype, aligned), op);
      },
      this.deadline,
    );
  }

  /**
   * Like recvReduce, but where the message is read in the sender's own memory (the thread
   * transport with shared arrays), also writes the result back there, so that the sender's
   * array holds it once the sender's send resolves. Resolves to whether every element was
   * written back; where it was not (a copied message: TCP, non-shared arrays), the sender has to
   * be sent the result.
   */
  async recvReduceWriteBack(peer: number, dst: CommArray, op: ReduceOp): Promise<boolean> {
    const es = elementBytes(this.dtype);
    const dtype = this.dtype;
    let wroteBack = true;
    await this.transport.recv(
      this.ranks[peer]!,
      this.tag,
      dst.byteLength,
      (chunk, offset, inPeerMemory) => {
        const start = offset / es;
        const into = dst.subarray(start, start + chunk.byteLength / es);
        if (inPeerMemory && chunk.byteOffset % es === 0) {
          reduceIntoBoth(into, viewAs(dtype, chunk), op);
          return;
        }
        wroteBack = false;
        const aligned = this.aligned(chunk, es);
        reduceInto(into, viewAs(dtype, aligned), op);
      },
      this.deadline,
    );
    return wroteBack;
  }

  /**
   * `chunk` itself where typed views of it are possible, else a copy in the reused staging
   * buffer. Typed views need aligned memory, and after the first socket read whose length is
   * not a multiple of 8 (most are not), nearly every chunk of a TCP message starts unaligned;
   * a fresh copy per chunk cost an allocation each and much of the receive time in GC.
   */
  private aligned(chunk: Uint8Array, elementSize: number): Uint8Array {
    if (chunk.byteOffset % elementSize === 0) return chunk;
    if (this.staging.byteLength < chunk.byteLength) this.staging = new Uint8Array(Math.max(chunk.byteLength, 1 << 16));
    const copy = this.staging.subarray(0, chunk.byteLength);
    copy.set(chunk);
    return copy;
  }

  /** Sends `out` to `peer` and receives `into` from it at the same time. */
  async exchange(peer: number, out: CommArray, into: CommArray): Promise<void> {
    await Promise.all([this.send(peer, out), this.recvInto(peer, into)]);
  }

  scratch(length: number): CommArray {
    const buffer = this.pool.take(length * elementBytes(this.dtype));
    this.taken.push(buffer);
    return allocArray(this.dtype, length, buffer);
  }

  copyToScratch(src: CommArray): CommArray {
    const s = this.scratch(src.length);
    s.set(src);
    return s;
  }

  /** Returns the scratch buffers of this call to the pool. */
  release(): void {
    for (const b of this.taken.splice(0)) this.pool.give(b);
  }
}
