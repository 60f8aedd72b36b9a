// What both real transports share: one mailbox per peer, and a failure state that, once set,
// rejects every pending and later operation with the same error (the one that names the lost
// rank), so that a fault on one connection never leaves another operation waiting.
import type { Deadline } from './deadline.js';
import { DistError, GroupClosedError } from './errors.js';
import { Mailbox } from './mailbox.js';
import type { Sink, Transport, TransportKind } from './transport.js';

export abstract class PeerTransport implements Transport {
  abstract readonly kind: TransportKind;
  protected readonly mailboxes: Mailbox[];
  private failureError: Error | undefined;
  private readonly pendingSends = new Set<(err: Error) => void>();

  constructor(
    readonly rank: number,
    readonly worldSize: number,
  ) {
    this.mailboxes = [];
    for (let peer = 0; peer < worldSize; peer++) {
      this.mailboxes.push(new Mailbox(peer, rank, (err) => this.fail(err)));
    }
  }

  get failure(): Error | undefined {
    return this.failureError;
  }

  /** Puts the transport in its failed state; the first failure wins. */
  fail(err: Error): void {
    if (this.failureError) return;
    this.failureError = err;
    for (const m of this.mailboxes) m.failAll(err);
    for (const reject of [...this.pendingSends]) reject(err);
    this.pendingSends.clear();
    this.onFail(err);
  }

  protected onFail(_err: Error): void {}

  recv(peer: number, tag: number, byteLength: number, sink: Sink, deadline: Deadline, placeIn?: Uint8Array): Promise<void> {
    this.checkPeer(peer, deadline);
    if (this.failureError) return Promise.reject(this.failureError);
    return this.mailboxes[peer]!.post(tag, byteLength, sink, deadline, placeIn);
  }

  send(peer: number, tag: number, bytes: Uint8Array, deadline: Deadline): Promise<void> {
    this.checkPeer(peer, deadline);
    if (this.failureError) return Promise.reject(this.failureError);
    // Races the real send against the failure state so that a send blocked on a dead peer ends.
    return new Promise<void>((resolve, reject) => {
      const onFailure = (err: Error) => reject(err);
      this.pendingSends.add(onFailure);
      this.sendBytes(peer, tag, bytes, deadline).then(
        () => {
          this.pendingSends.delete(onFailure);
          resolve();
        },
        (err: unknown) => {
          this.pendingSends.delete(onFailure);
          reject(err instanceof Error ? err : new DistError(String(err)));
        },
      );
    });
  }

  protected abstract sendBytes(peer: number, tag: number, bytes: Uint8Array, deadline: Deadline): Promise<void>;

  allocate(byteLength: number): ArrayBufferLike {
    return new ArrayBuffer(byteLength);
  }

  abstract close(): Promise<void>;

  protected closedError(): GroupClosedError {
    return new GroupClosedError(`rank ${this.rank}: the process group was closed; create a new one to communicate`);
  }

  private checkPeer(peer: number, deadline: Deadline): void {
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.worldSize || peer === this.rank) {
      throw new RangeError(
        `${deadline.operation}: peer rank ${peer} is not another rank of this world (size ${this.worldSize}, this is rank ${this.rank})`,
      );
    }
  }
}
