// The transport of a world of one rank: there is no peer to talk to.
import type { Deadline } from './deadline.js';
import type { Sink, Transport } from './transport.js';

export class LocalTransport implements Transport {
  readonly kind = 'local' as const;
  readonly rank = 0;
  readonly worldSize = 1;
  readonly failure = undefined;

  send(peer: number, _tag: number, _bytes: Uint8Array, deadline: Deadline): Promise<void> {
    return Promise.reject(new RangeError(`${deadline.operation}: rank ${peer} does not exist in a world of size 1`));
  }

  recv(peer: number, _tag: number, _n: number, _sink: Sink, deadline: Deadline): Promise<void> {
    return Promise.reject(new RangeError(`${deadline.operation}: rank ${peer} does not exist in a world of size 1`));
  }

  allocate(byteLength: number): ArrayBufferLike {
    return new ArrayBuffer(byteLength);
  }

  async close(): Promise<void> {}
}
