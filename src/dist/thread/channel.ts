// One direction of a thread-to-thread link: a ring of slots in a SharedArrayBuffer. The sender
// fills slot (head mod slots) and bumps `head`; the receiver consumes slot (tail mod slots) and
// bumps `tail`; each side sleeps on the other's counter with Atomics.waitAsync and is woken
// with Atomics.notify. A slot holds either a chunk of a message (copied in), or a reference to
// the sender's own shared memory (zero-copy: the receiver reads it in place, and the sender
// waits until `tail` has passed that slot before it may reuse the memory). Large in-place
// messages are posted in pieces so that the receiver starts on the first piece at once and
// neither side waits for the other to get through the whole message.

export const HEAD = 0;
export const TAIL = 1;
/** How many threads sleep on HEAD / TAIL: a writer calls Atomics.notify only when some do. */
const WAITERS_OFFSET = 2;
const CTRL_BYTES = 64;
const META_FIELDS = 6;

export const SlotKind = {
  /** First chunk of a copied message (meta: tag, message length, chunk length). */
  First: 1,
  /** A following chunk of the same message. */
  Next: 2,
  /** First piece of a message left in the sender's shared buffer `bufferId` at `byteOffset`. */
  InPlace: 3,
  /** A following piece of the same in-place message. */
  InPlaceNext: 4,
} as const;
export type SlotKind = (typeof SlotKind)[keyof typeof SlotKind];

export interface ChannelView {
  readonly ctrl: Int32Array;
  readonly meta: Float64Array;
  readonly data: Uint8Array;
  readonly slots: number;
  readonly slotBytes: number;
}

export function channelBytes(slots: number, slotBytes: number): number {
  return dataStart(slots) + slots * slotBytes;
}

function dataStart(slots: number): number {
  return Math.ceil((CTRL_BYTES + slots * META_FIELDS * 8) / 64) * 64;
}

export function viewChannel(sab: SharedArrayBuffer, slots: number, slotBytes: number): ChannelView {
  return {
    ctrl: new Int32Array(sab, 0, CTRL_BYTES / 4),
    meta: new Float64Array(sab, CTRL_BYTES, slots * META_FIELDS),
    data: new Uint8Array(sab, dataStart(slots), slots * slotBytes),
    slots,
    slotBytes,
  };
}

export interface SlotMeta {
  kind: SlotKind;
  tag: number;
  messageLength: number;
  chunkLength: number;
  bufferId: number;
  byteOffset: number;
}

export function writeMeta(ch: ChannelView, slot: number, m: SlotMeta): void {
  const o = slot * META_FIELDS;
  ch.meta[o] = m.kind;
  ch.meta[o + 1] = m.tag;
  ch.meta[o + 2] = m.messageLength;
  ch.meta[o + 3] = m.chunkLength;
  ch.meta[o + 4] = m.bufferId;
  ch.meta[o + 5] = m.byteOffset;
}

export function readMeta(ch: ChannelView, slot: number): SlotMeta {
  const o = slot * META_FIELDS;
  return {
    kind: ch.meta[o] as SlotKind,
    tag: ch.meta[o + 1]!,
    messageLength: ch.meta[o + 2]!,
    chunkLength: ch.meta[o + 3]!,
    bufferId: ch.meta[o + 4]!,
    byteOffset: ch.meta[o + 5]!,
  };
}

export function slotData(ch: ChannelView, slot: number, length: number): Uint8Array {
  return ch.data.subarray(slot * ch.slotBytes, slot * ch.slotBytes + length);
}

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
// Atomics.waitAsync exists in Node ≥ 16 but is not in the es2023 type library.
const waitAsyncFn = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t?: number): WaitAsyncResult }).waitAsync;

/**
 * Resolves when ctrl[index] may differ from `value`, or after `timeoutMs` (false = timed out).
 * The sleeper registers itself first, so that a writer that sees no sleepers may skip the
 * notify: with sequentially consistent atomics either the writer sees the registration, or the
 * sleeper's wait sees the new value and returns at once.
 */
export async function waitForChange(ctrl: Int32Array, index: number, value: number, timeoutMs: number): Promise<boolean> {
  Atomics.add(ctrl, index + WAITERS_OFFSET, 1);
  try {
    const r = waitAsyncFn(ctrl, index, value, timeoutMs);
    const outcome = r.async ? await r.value : r.value;
    return outcome !== 'timed-out';
  } finally {
    Atomics.sub(ctrl, index + WAITERS_OFFSET, 1);
  }
}

/** Stores a new counter value and wakes its sleepers, if any. */
export function storeAndWake(ctrl: Int32Array, index: number, value: number): void {
  Atomics.store(ctrl, index, value);
  if (Atomics.load(ctrl, index + WAITERS_OFFSET) > 0) Atomics.notify(ctrl, index);
}

/** Shared by all ranks: per-rank state, plus the first rank that was lost (+1; 0 = none). */
export const RANK_RUNNING = 0;
export const RANK_CLOSED = 1;
export const RANK_DEAD = 2;

export function markDead(status: Int32Array, rank: number): void {
  const worldSize = status.length - 1;
  if (Atomics.compareExchange(status, rank, RANK_RUNNING, RANK_DEAD) === RANK_RUNNING) {
    Atomics.compareExchange(status, worldSize, 0, rank + 1);
  }
}

export function firstLostRank(status: Int32Array): number {
  return Atomics.load(status, status.length - 1) - 1;
}

/** Wakes every waiter on every channel so that it re-reads the rank states. */
export function wakeAll(channels: readonly (readonly (SharedArrayBuffer | undefined)[])[]): void {
  for (const row of channels) {
    for (const sab of row) {
      if (!sab) continue;
      const ctrl = new Int32Array(sab, 0, CTRL_BYTES / 4);
      Atomics.notify(ctrl, HEAD);
      Atomics.notify(ctrl, TAIL);
    }
  }
}
