// What every thread rank receives from the spawner: the shared memory of all channels, the
// rank states, and one MessagePort per peer (used only to hand over SharedArrayBuffers for
// zero-copy sends).
import type { MessagePort } from 'node:worker_threads';

export interface ThreadWorld {
  readonly rank: number;
  readonly worldSize: number;
  /** channels[src][dst], undefined where src === dst. */
  readonly channels: (SharedArrayBuffer | undefined)[][];
  readonly status: SharedArrayBuffer;
  readonly ports: (MessagePort | undefined)[];
  readonly slots: number;
  readonly slotBytes: number;
}

export const THREAD_WORLD_KEY = 'tesseraThreadWorld';
/** Open thread transports of this worker, so that the rank entry can close what user code left open. */
export const OPEN_TRANSPORTS = Symbol.for('tessera.dist.openThreadTransports');
