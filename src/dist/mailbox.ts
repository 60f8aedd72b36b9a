// Matches incoming messages to posted receives. Messages from one peer arrive in order; a
// message whose receive is not posted yet is kept (copied) until it is, so that concurrent
// operations, or a peer that runs ahead, never block the connection.
import type { Deadline } from './deadline.js';
import { DistError, DistTimeoutError } from './errors.js';
import type { Sink } from './transport.js';
import { describeTag } from './transport.js';

/** Where the reading side of a connection writes the body of one message, in order. */
export interface Inbound {
  /** `inPeerMemory`: the chunk is the sender's own memory, not a copy (see Sink). */
  write(chunk: Uint8Array, inPeerMemory?: boolean): void;
  end(): void;
  /**
   * Where the rest of the body may be read to directly, if anywhere: the part of the posted
   * receive's `placeIn` not written yet. A chunk written afterwards that is a view of this
   * memory at its own place is not copied again.
   */
  rest?(): Uint8Array | undefined;
}

interface PostedRecv {
  readonly byteLength: number;
  readonly sink: Sink;
  readonly placeIn: Uint8Array | undefined;
  readonly deadline: Deadline;
  received: number;
  resolve(): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface Unexpected {
  readonly byteLength: number;
  readonly data: Uint8Array;
  received: number;
  complete: boolean;
  /** A receive posted while the message was still arriving; later chunks go straight to it. */
  attached: PostedRecv | undefined;
}

function pushTo<V>(map: Map<number, V[]>, key: number, value: V): void {
  const q = map.get(key);
  if (q) q.push(value);
  else map.set(key, [value]);
}

function shiftFrom<V>(map: Map<number, V[]>, key: number): V | undefined {
  const q = map.get(key);
  if (!q) return undefined;
  const v = q.shift();
  if (q.length === 0) map.delete(key);
  return v;
}

const DISCARD: Inbound = { write() {}, end() {} };

export class Mailbox {
  private readonly posted = new Map<number, PostedRecv[]>();
  private readonly unexpected = new Map<number, Unexpected[]>();
  private unexpectedBytes = 0;
  /** Set when the peer left: receives that no buffered message can satisfy fail with it. */
  private closedWith: Error | undefined;
  /** Receives whose message is arriving right now (no longer queued, not yet complete). */
  private readonly streaming = new Set<PostedRecv>();
  /** Wakes a reader that holds back a message until its receive is posted (see whenPosted). */
  private postedWaiter: { tag: number; wake: () => void } | undefined;

  constructor(
    private readonly peer: number,
    private readonly selfRank: number,
    /** Called when a receive times out, so that the transport can fail every other operation. */
    private readonly onTimeout: (err: DistTimeoutError) => void,
    private readonly maxUnexpectedBytes = 2 ** 31,
  ) {}

  post(tag: number, byteLength: number, sink: Sink, deadline: Deadline, placeIn?: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const recv: PostedRecv = { byteLength, sink, placeIn, deadline, received: 0, resolve, reject, timer: undefined };
      const early = shiftFrom(this.unexpected, tag);
      if (early) {
        if (early.byteLength !== byteLength) {
          this.unexpectedBytes -= early.byteLength;
          reject(this.sizeMismatch(tag, early.byteLength, byteLength, deadline));
          return;
        }
        if (early.received > 0) sink(early.data.subarray(0, early.received), 0, false);
        recv.received = early.received;
        if (early.complete) {
          this.unexpectedBytes -= early.byteLength;
          resolve();
          return;
        }
        early.attached = recv;
        // Its message is still arriving: a failure or a closed peer must reach it too. (Taken
        // off the unexpected queue above, it was in no set that failAll visits, so a
        // connection lost mid-message left it waiting for its timeout.)
        this.streaming.add(recv);
      } else if (this.closedWith) {
        reject(this.closedWith);
        return;
      } else {
        pushTo(this.posted, tag, recv);
        if (this.postedWaiter?.tag === tag) this.wakePostedWaiter();
      }
      const ms = Math.max(0, deadline.at - performance.now());
      recv.timer = setTimeout(() => {
        recv.timer = undefined;
        const err = new DistTimeoutError(this.peer, deadline.operation, deadline.timeoutMs);
        this.remove(tag, recv);
        this.streaming.delete(recv);
        reject(err);
        this.onTimeout(err);
      }, ms);
    });
  }

  /** Whether a receive for `tag` is posted now, so that begin(tag) streams straight into it. */
  hasPosted(tag: number): boolean {
    return this.posted.has(tag);
  }

  /**
   * Resolves when a receive for `tag` is posted, when the mailbox fails or closes, or after
   * `graceMs`, whichever comes first. A reader whose message costs nothing to keep where it is
   * (the thread transport's in-place messages, still in the sender's memory) waits here
   * instead of copying it into an unexpected buffer that the receive then copies again; the
   * grace bounds how long the connection is held up for a receive that comes late.
   */
  whenPosted(tag: number, graceMs: number): Promise<void> {
    if (this.posted.has(tag) || this.closedWith) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.wakePostedWaiter(), graceMs);
      this.postedWaiter = {
        tag,
        wake: () => {
          clearTimeout(timer);
          resolve();
        },
      };
    });
  }

  private wakePostedWaiter(): void {
    const w = this.postedWaiter;
    this.postedWaiter = undefined;
    w?.wake();
  }

  /** The reading side announces a message of `byteLength` bytes with `tag`. */
  begin(tag: number, byteLength: number): Inbound {
    const recv = shiftFrom(this.posted, tag);
    if (recv) {
      if (recv.byteLength !== byteLength) {
        this.settle(recv, this.sizeMismatch(tag, byteLength, recv.byteLength, recv.deadline));
        return DISCARD;
      }
      return this.streamInto(recv);
    }
    if (this.unexpectedBytes + byteLength > this.maxUnexpectedBytes) {
      throw new DistError(
        `rank ${this.peer} sent ${byteLength} bytes (${describeTag(tag)}) that rank ${this.selfRank} did not ask for, ` +
          `over the limit of ${this.maxUnexpectedBytes} buffered bytes; the ranks are calling different operations`,
      );
    }
    const u: Unexpected = { byteLength, data: new Uint8Array(byteLength), received: 0, complete: false, attached: undefined };
    this.unexpectedBytes += byteLength;
    pushTo(this.unexpected, tag, u);
    return {
      write: (chunk) => {
        if (u.attached) {
          u.attached.sink(chunk, u.received, false);
        } else {
          u.data.set(chunk, u.received);
        }
        u.received += chunk.byteLength;
      },
      end: () => {
        u.complete = true;
        if (u.attached) {
          this.unexpectedBytes -= u.byteLength;
          this.settle(u.attached, undefined);
        }
      },
    };
  }

  /** The peer will send nothing more. */
  close(err: Error): void {
    this.closedWith = err;
    this.wakePostedWaiter();
    for (const q of this.posted.values()) for (const r of q) this.settle(r, err);
    this.posted.clear();
    for (const r of [...this.streaming]) this.settle(r, err);
  }

  failAll(err: Error): void {
    this.wakePostedWaiter();
    for (const q of this.posted.values()) for (const r of q) this.settle(r, err);
    this.posted.clear();
    // A message cut off half-way must fail its receive too, or that receive would wait forever.
    for (const r of [...this.streaming]) this.settle(r, err);
    for (const q of this.unexpected.values()) for (const u of q) if (u.attached) this.settle(u.attached, err);
    this.unexpected.clear();
    this.unexpectedBytes = 0;
  }

  get pendingReceives(): number {
    let n = 0;
    for (const q of this.posted.values()) n += q.length;
    return n;
  }

  private streamInto(recv: PostedRecv): Inbound {
    this.streaming.add(recv);
    return {
      write: (chunk, inPeerMemory = false) => {
        recv.sink(chunk, recv.received, inPeerMemory);
        recv.received += chunk.byteLength;
      },
      end: () => this.settle(recv, undefined),
      // Nothing more lands in the caller's memory once its receive has failed.
      rest: () => (this.streaming.has(recv) ? recv.placeIn?.subarray(recv.received) : undefined),
    };
  }

  private settle(recv: PostedRecv, err: Error | undefined): void {
    this.streaming.delete(recv);
    if (recv.timer !== undefined) clearTimeout(recv.timer);
    recv.timer = undefined;
    if (err) recv.reject(err);
    else recv.resolve();
  }

  private remove(tag: number, recv: PostedRecv): void {
    const q = this.posted.get(tag);
    if (!q) return;
    const i = q.indexOf(recv);
    if (i >= 0) q.splice(i, 1);
    if (q.length === 0) this.posted.delete(tag);
  }

  private sizeMismatch(tag: number, announced: number, expected: number, deadline: Deadline): DistError {
    return new DistError(
      `${deadline.operation}: rank ${this.peer} announced a message of ${announced} bytes (${describeTag(tag)}) ` +
        `but rank ${this.selfRank} expected ${expected} bytes; every rank must pass arrays of matching lengths and dtypes`,
    );
  }
}
