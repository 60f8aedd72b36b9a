// The one interface the collective algorithms talk to: ordered, tagged byte messages between
// ranks. Both transports (threads over shared memory, TCP between processes) implement it, so
// every algorithm runs, and is tested, on each of them.
import type { Deadline } from './deadline.js';

export type TransportKind = 'thread' | 'tcp' | 'local';

/**
 * Consumes one incoming message piece by piece. `offset` is where `chunk` starts within the
 * message. Transports promise that offsets are multiples of 8 and that every chunk but the last
 * has a length that is a multiple of 8, so a sink can view chunks as float64/float32/int32
 * elements (the chunk's own byteOffset may still be unaligned).
 *
 * `inPeerMemory` is true when `chunk` is a view of the sender's own memory (the thread
 * transport reading a shared array in place) rather than a copy. That memory stays the
 * sender's to leave alone until its send resolves, which happens only after the sink has
 * returned, so a sink may write into it to hand a result back (the 2-rank all-reduce writes the
 * reduced half into the sender's array this way, saving the all-gather copy).
 */
export type Sink = (chunk: Uint8Array, offset: number, inPeerMemory: boolean) => void;

export interface Transport {
  readonly kind: TransportKind;
  /** Global rank of this process/thread. */
  readonly rank: number;
  readonly worldSize: number;
  /** Resolves once `bytes` may be modified again. */
  send(peer: number, tag: number, bytes: Uint8Array, deadline: Deadline): Promise<void>;
  /**
   * Receives exactly `byteLength` bytes from `peer` with `tag`; a different announced size is an
   * error. `placeIn`, where given, is the message's final home (`byteLength` bytes): a transport
   * that can have the bytes land there directly (TCP reads into it) may do so, and then hands
   * the sink views of `placeIn` itself at their own offsets, which the sink need not copy.
   */
  recv(peer: number, tag: number, byteLength: number, sink: Sink, deadline: Deadline, placeIn?: Uint8Array): Promise<void>;
  /** Memory for scratch buffers that this transport sends cheaply (shared memory for threads). */
  allocate(byteLength: number): ArrayBufferLike;
  /** Set once a peer is lost or an operation timed out; every later operation fails with it. */
  readonly failure: Error | undefined;
  close(): Promise<void>;
}

// Tags keep the messages of concurrent operations apart. A tag packs (kind, group, sequence)
// into an integer below 2^53 so it travels exactly as a float64.
const KIND_SCALE = 2 ** 48;
const GROUP_SCALE = 2 ** 32;
export const TAG_COLLECTIVE = 1;
export const TAG_P2P = 2;

export function makeTag(kind: number, groupId: number, sequence: number): number {
  if (groupId >= 2 ** 16) throw new RangeError(`dist: too many process groups (${groupId}); at most 65535 are supported`);
  return kind * KIND_SCALE + groupId * GROUP_SCALE + (sequence % GROUP_SCALE);
}

export function describeTag(tag: number): string {
  const kind = Math.floor(tag / KIND_SCALE);
  const group = Math.floor((tag % KIND_SCALE) / GROUP_SCALE);
  const seq = tag % GROUP_SCALE;
  return `${kind === TAG_P2P ? 'p2p tag' : 'collective #'}${seq} of group ${group}`;
}
