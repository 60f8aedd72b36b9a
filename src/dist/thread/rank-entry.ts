// Runs inside each worker thread started by spawnThreadRanks: imports the user's module, calls
// the chosen export with this rank's context, and reports its value or error to the spawner.
// Imported for its side effect only.
import { parentPort, workerData } from 'node:worker_threads';
import { OPEN_TRANSPORTS, THREAD_WORLD_KEY } from './world.js';
import type { ThreadWorld } from './world.js';
import type { ThreadTransport } from './thread-transport.js';
import { markDead, RANK_CLOSED, RANK_RUNNING, wakeAll } from './channel.js';

interface EntryData {
  readonly module: string;
  readonly exportName: string;
  readonly args: unknown;
}

function openTransports(): Set<ThreadTransport> {
  const g = globalThis as unknown as Record<symbol, Set<ThreadTransport> | undefined>;
  return g[OPEN_TRANSPORTS] ?? new Set<ThreadTransport>();
}

async function main(): Promise<void> {
  const data = workerData as { entry: EntryData } & Record<string, ThreadWorld>;
  const world = data[THREAD_WORLD_KEY]!;
  try {
    const mod = (await import(data.entry.module)) as Record<string, unknown>;
    const fn = mod[data.entry.exportName];
    if (typeof fn !== 'function') {
      throw new TypeError(`${data.entry.module} has no exported function '${data.entry.exportName}' (exports: ${Object.keys(mod).join(', ')})`);
    }
    const value: unknown = await (fn as (ctx: unknown) => unknown)({ rank: world.rank, worldSize: world.worldSize, args: data.entry.args });
    for (const t of [...openTransports()]) await t.close();
    // A rank that returns normally has left cleanly, whether or not it opened a group.
    Atomics.compareExchange(new Int32Array(world.status), world.rank, RANK_RUNNING, RANK_CLOSED);
    parentPort!.postMessage({ kind: 'result', value });
  } catch (err) {
    // Tell the other ranks at once, so that their pending operations fail now and name us.
    markDead(new Int32Array(world.status), world.rank);
    wakeAll(world.channels);
    for (const t of [...openTransports()]) await t.close();
    const e = err instanceof Error ? err : new Error(String(err));
    parentPort!.postMessage({ kind: 'error', message: e.message, stack: e.stack ?? e.message });
  }
}

void main();
