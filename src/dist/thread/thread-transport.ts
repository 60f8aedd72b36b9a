// Ranks as worker threads of one process, talking through shared memory (see channel.ts).
// Data that already lives in a SharedArrayBuffer (tessera's scratch buffers, or arrays made
// with sharedArray()) is read by the receiver in place, so it crosses threads in one copy (or
// is reduced straight out of the sender's memory); other data is copied through the channel's
// slots in chunks, which pipelines the sender's and the receiver's copies.
import type { MessagePort } from 'node:worker_threads';
import type { Deadline } from '../deadline.js';
import { remainingMs } from '../deadline.js';
import { DistError, DistTimeoutError, PeerLostError } from '../errors.js';
import type { Inbound } from '../mailbox.js';
import { PeerTransport } from '../peer-transport.js';
import type { ChannelView } from './channel.js';
import {
  firstLostRank, HEAD, RANK_CLOSED, RANK_DEAD, readMeta, SlotKind, slotData, storeAndWake, TAIL, viewChannel, waitForChange, wakeAll, writeMeta,
} from './channel.js';
import type { ThreadWorld } from './world.js';
import { OPEN_TRANSPORTS } from './world.js';

/** Below this size a copy through the slots is cheaper than the in-place handshake. */
const IN_PLACE_MIN_BYTES = 16 * 1024;
/**
 * In-place messages are posted in pieces of this size (a multiple of 8). The data is all in
 * the sender's memory already, so smaller pieces pipeline nothing: they only add a slot
 * handshake (an Atomics wake-up and a promise on each side) per piece. One piece per message
 * lets the receiver reduce or copy it in one pass; measured on a 2-rank 64 MB all-reduce, 1 MiB
 * pieces cost ~5 ms of the ~25 ms per call (bench/comm/profile-allreduce.ts).
 */
const IN_PLACE_PIECE_BYTES = 1 << 30;
/**
 * How long the reader holds an in-place message whose receive is not posted yet before it
 * falls back to copying it into an unexpected buffer. A peer that runs a little ahead (the next
 * collective's first message, sent while this rank still finishes the current one) is thus read
 * straight from its memory instead of being copied twice; a receive posted much later, or
 * never, costs at most this delay on the connection.
 */
const IN_PLACE_HOLD_MS = 200;
/** Shared buffers registered per peer at a time; past this, further buffers are copied instead. */
const MAX_SHARED_PER_PEER = 64;

function openSet(): Set<ThreadTransport> {
  const g = globalThis as unknown as Record<symbol, Set<ThreadTransport> | undefined>;
  return (g[OPEN_TRANSPORTS] ??= new Set<ThreadTransport>());
}

export class ThreadTransport extends PeerTransport {
  readonly kind = 'thread' as const;
  private readonly outgoing: (ChannelView | undefined)[] = [];
  private readonly incoming: (ChannelView | undefined)[] = [];
  private readonly status: Int32Array;
  private readonly sendChains: Promise<void>[] = [];
  private closed = false;
  // Zero-copy bookkeeping: ids of our shared buffers, which peers know them, and theirs.
  private readonly bufferIds = new WeakMap<SharedArrayBuffer, number>();
  private nextBufferId = 1;
  private readonly sharedWith: Set<number>[] = [];
  private readonly peerBuffers: Map<number, SharedArrayBuffer>[] = [];
  private readonly bufferWaiters: Map<number, (b: SharedArrayBuffer) => void>[] = [];
  // When one of our shared buffers is garbage-collected, peers are told to drop their handle
  // too, so that a loop that makes a new shared array each step does not pile them up there.
  private readonly releases = new FinalizationRegistry<number>((id) => this.releaseBuffer(id));

  constructor(private readonly world: ThreadWorld) {
    super(world.rank, world.worldSize);
    this.status = new Int32Array(world.status);
    for (let peer = 0; peer < world.worldSize; peer++) {
      const out = world.channels[world.rank]![peer];
      const inc = world.channels[peer]![world.rank];
      this.outgoing.push(out ? viewChannel(out, world.slots, world.slotBytes) : undefined);
      this.incoming.push(inc ? viewChannel(inc, world.slots, world.slotBytes) : undefined);
      this.sendChains.push(Promise.resolve());
      this.sharedWith.push(new Set());
      this.peerBuffers.push(new Map());
      this.bufferWaiters.push(new Map());
      const port = world.ports[peer];
      if (port) port.on('message', (m: { id: number; buffer: SharedArrayBuffer } | { release: number }) => this.onPortMessage(peer, m));
    }
    openSet().add(this);
    for (let peer = 0; peer < world.worldSize; peer++) if (peer !== world.rank) void this.pump(peer);
  }

  override allocate(byteLength: number): ArrayBufferLike {
    return new SharedArrayBuffer(byteLength);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.compareExchange(this.status, this.rank, 0, RANK_CLOSED);
    this.fail(this.closedError());
    wakeAll(this.world.channels);
    for (const port of this.world.ports) port?.close();
    openSet().delete(this);
  }

  /** Marks this rank dead (its user code failed), waking the others so they fail too. */
  abandon(): void {
    if (Atomics.compareExchange(this.status, this.rank, 0, RANK_DEAD) === 0) {
      Atomics.compareExchange(this.status, this.worldSize, 0, this.rank + 1);
    }
    void this.close();
  }

  /** Throws the error that describes why `peer` cannot be waited for any more, if any. */
  private checkPeers(peer: number): void {
    if (this.failure) throw this.failure;
    const lost = firstLostRank(this.status);
    if (lost >= 0) {
      const err = new PeerLostError(lost, 'its worker thread stopped before closing the process group');
      this.fail(err);
      throw err;
    }
    if (Atomics.load(this.status, peer) === RANK_CLOSED) {
      throw new PeerLostError(peer, 'it closed its process group');
    }
  }

  protected sendBytes(peer: number, tag: number, bytes: Uint8Array, deadline: Deadline): Promise<void> {
    // Messages to one peer go out one after another so that their chunks never interleave.
    const next = this.sendChains[peer]!.then(() => this.writeMessage(peer, tag, bytes, deadline));
    this.sendChains[peer] = next.catch(() => {});
    return next;
  }

  private async writeMessage(peer: number, tag: number, bytes: Uint8Array, deadline: Deadline): Promise<void> {
    const ch = this.outgoing[peer]!;
    const inPlaceId = this.inPlaceId(peer, bytes);
    if (inPlaceId !== undefined) {
      const piece = IN_PLACE_PIECE_BYTES;
      let offset = 0;
      let last = 0;
      do {
        const n = Math.min(piece, bytes.byteLength - offset);
        last = await this.claimSlot(ch, peer, deadline);
        writeMeta(ch, last % ch.slots, {
          kind: offset === 0 ? SlotKind.InPlace : SlotKind.InPlaceNext,
          tag,
          messageLength: bytes.byteLength,
          chunkLength: n,
          bufferId: inPlaceId,
          byteOffset: bytes.byteOffset + offset,
        });
        this.publish(ch, last);
        offset += n;
      } while (offset < bytes.byteLength);
      // The receiver reads our memory; we may not touch it until it has moved past the last piece.
      for (;;) {
        const tail = Atomics.load(ch.ctrl, TAIL);
        if (((tail - last - 1) | 0) >= 0) return;
        await this.waitOn(ch, TAIL, tail, peer, deadline);
      }
    }
    let offset = 0;
    do {
      const n = Math.min(ch.slotBytes, bytes.byteLength - offset);
      const seq = await this.claimSlot(ch, peer, deadline);
      const slot = seq % ch.slots;
      writeMeta(ch, slot, {
        kind: offset === 0 ? SlotKind.First : SlotKind.Next, tag, messageLength: bytes.byteLength, chunkLength: n, bufferId: 0, byteOffset: 0,
      });
      slotData(ch, slot, n).set(bytes.subarray(offset, offset + n));
      this.publish(ch, seq);
      offset += n;
    } while (offset < bytes.byteLength);
  }

  /** Waits for a free slot and returns its sequence number (the current head). */
  private async claimSlot(ch: ChannelView, peer: number, deadline: Deadline): Promise<number> {
    this.checkPeers(peer);
    for (;;) {
      const head = Atomics.load(ch.ctrl, HEAD);
      const tail = Atomics.load(ch.ctrl, TAIL);
      if (((head - tail) | 0) < ch.slots) return head;
      await this.waitOn(ch, TAIL, tail, peer, deadline);
    }
  }

  private publish(ch: ChannelView, seq: number): void {
    storeAndWake(ch.ctrl, HEAD, (seq + 1) | 0);
  }

  /** Waits until ctrl[index] differs from `value`; fails if the peer is gone or the deadline passes. */
  private async waitOn(ch: ChannelView, index: number, value: number, peer: number, deadline: Deadline): Promise<void> {
    for (;;) {
      // Read the peer's state before the counter: a peer moves the counter before it marks
      // itself closed, so a closed mark with an unchanged counter means it will never move.
      let gone: Error | undefined;
      try {
        this.checkPeers(peer);
      } catch (err) {
        gone = err as Error;
      }
      if (Atomics.load(ch.ctrl, index) !== value) return;
      if (gone) throw gone;
      const ms = remainingMs(deadline);
      if (ms <= 0) {
        const err = new DistTimeoutError(peer, deadline.operation, deadline.timeoutMs);
        this.fail(err);
        throw err;
      }
      await waitForChange(ch.ctrl, index, value, ms);
    }
  }

  private inPlaceId(peer: number, bytes: Uint8Array): number | undefined {
    const buffer = bytes.buffer;
    if (!(buffer instanceof SharedArrayBuffer) || bytes.byteLength < IN_PLACE_MIN_BYTES) return undefined;
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
      this.releases.register(buffer, id);
    }
    const known = this.sharedWith[peer]!;
    if (!known.has(id)) {
      if (known.size >= MAX_SHARED_PER_PEER) return undefined;
      known.add(id);
      this.world.ports[peer]!.postMessage({ id, buffer });
    }
    return id;
  }

  private releaseBuffer(id: number): void {
    if (this.closed) return;
    for (let peer = 0; peer < this.worldSize; peer++) {
      if (this.sharedWith[peer]?.delete(id)) this.world.ports[peer]?.postMessage({ release: id });
    }
  }

  private onPortMessage(peer: number, m: { id: number; buffer: SharedArrayBuffer } | { release: number }): void {
    if ('release' in m) {
      this.peerBuffers[peer]!.delete(m.release);
      return;
    }
    this.peerBuffers[peer]!.set(m.id, m.buffer);
    const waiter = this.bufferWaiters[peer]!.get(m.id);
    if (waiter) {
      this.bufferWaiters[peer]!.delete(m.id);
      waiter(m.buffer);
    }
  }

  private sharedBufferOf(peer: number, id: number): SharedArrayBuffer | Promise<SharedArrayBuffer> {
    const b = this.peerBuffers[peer]!.get(id);
    if (b) return b;
    return new Promise((resolve) => this.bufferWaiters[peer]!.set(id, resolve));
  }

  /** Drains the channel from `peer` for as long as the transport is open. */
  private async pump(peer: number): Promise<void> {
    const ch = this.incoming[peer]!;
    const mailbox = this.mailboxes[peer]!;
    let current: Inbound | undefined;
    let remaining = 0;
    try {
      while (!this.closed && !this.failure) {
        const tail = Atomics.load(ch.ctrl, TAIL);
        if (Atomics.load(ch.ctrl, HEAD) === tail) {
          if (firstLostRank(this.status) >= 0) {
            this.checkPeers(peer);
          }
          // A peer publishes its last message before it marks itself closed, so the channel
          // must be re-checked after seeing the mark.
          if (Atomics.load(this.status, peer) === RANK_CLOSED && Atomics.load(ch.ctrl, HEAD) === tail) {
            mailbox.close(new PeerLostError(peer, 'it closed its process group'));
            return;
          }
          await waitForChange(ch.ctrl, HEAD, tail, Infinity);
          continue;
        }
        const slot = tail % ch.slots;
        const m = readMeta(ch, slot);
        if (m.kind === SlotKind.InPlace || m.kind === SlotKind.InPlaceNext) {
          if (m.kind === SlotKind.InPlace && !mailbox.hasPosted(m.tag)) {
            await mailbox.whenPosted(m.tag, IN_PLACE_HOLD_MS);
            if (this.closed || this.failure) return;
          }
          const shared = await this.sharedBufferOf(peer, m.bufferId);
          if (m.kind === SlotKind.InPlace) {
            current = mailbox.begin(m.tag, m.messageLength);
            remaining = m.messageLength;
          }
          if (!current) throw new DistError(`thread channel from rank ${peer}: an in-place piece arrived without a message start`);
          if (m.chunkLength > 0) current.write(new Uint8Array(shared, m.byteOffset, m.chunkLength), true);
          remaining -= m.chunkLength;
          if (remaining <= 0) {
            current.end();
            current = undefined;
          }
        } else {
          if (m.kind === SlotKind.First) {
            current = mailbox.begin(m.tag, m.messageLength);
            remaining = m.messageLength;
          }
          if (!current) throw new DistError(`thread channel from rank ${peer}: a continuation chunk arrived without a message start`);
          if (m.chunkLength > 0) current.write(slotData(ch, slot, m.chunkLength));
          remaining -= m.chunkLength;
          if (remaining <= 0) {
            current.end();
            current = undefined;
          }
        }
        storeAndWake(ch.ctrl, TAIL, (tail + 1) | 0);
      }
    } catch (err) {
      this.fail(err instanceof Error ? err : new DistError(String(err)));
    }
  }
}
