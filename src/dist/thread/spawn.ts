// Starts N ranks as worker threads of this process, each running an exported function of a
// module, with the shared memory that the thread transport needs. Used by tests, benchmarks
// and, later, single-machine data-parallel training.
import type { MessagePort, Worker } from 'node:worker_threads';
import { channelBytes, markDead, wakeAll } from './channel.js';
import type { ThreadWorld } from './world.js';
import { THREAD_WORLD_KEY } from './world.js';

/** What each rank's function receives. */
export interface ThreadRankContext<A> {
  readonly rank: number;
  readonly worldSize: number;
  readonly args: A;
}

export interface SpawnThreadRanksOptions<A> {
  readonly worldSize: number;
  /** Module to run in every rank: a file URL or path (.js, or .ts when run through tsx). */
  readonly module: string | URL;
  /** Exported function called as fn({ rank, worldSize, args }); defaults to 'default'. */
  readonly exportName?: string;
  /** Structured-cloneable arguments passed to every rank. */
  readonly args?: A;
  /** Bytes per channel slot (4 slots per direction and pair); default 256 KiB. */
  readonly slotBytes?: number;
}

export type RankOutcome<R> = { rank: number; ok: true; value: R } | { rank: number; ok: false; error: string };

export interface ThreadRanks<R> {
  /** Settles when every rank has finished, in rank order; never rejects. */
  readonly outcomes: Promise<RankOutcome<R>[]>;
  /** Stops every rank now. */
  terminate(): Promise<void>;
}

/**
 * The worker's first code: registers tsx when the entry or the user's module is TypeScript
 * (running from source), then imports the entry.
 */
function bootstrap(entryUrl: string, userModuleUrl: string): string {
  if (!entryUrl.endsWith('.ts') && !userModuleUrl.endsWith('.ts')) return `import(${JSON.stringify(entryUrl)});`;
  let tsxApi: string;
  try {
    tsxApi = import.meta.resolve('tsx/esm/api');
  } catch {
    throw new Error(`spawnThreadRanks: ${userModuleUrl} is TypeScript but tsx is not installed; install tsx or pass a compiled .js module`);
  }
  return `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entryUrl)}); });`;
}

/**
 * Starts the ranks. Node-only: the node modules are loaded here, on first use, so that
 * importing the library never requires them.
 */
export async function spawnThreadRanks<A, R>(options: SpawnThreadRanksOptions<A>): Promise<ThreadRanks<R>> {
  const { MessageChannel, Worker } = await import('node:worker_threads');
  const { pathToFileURL } = await import('node:url');
  const toUrl = (path: string) => pathToFileURL(path).href;
  const moduleUrl = (m: string | URL): string => (m instanceof URL ? m.href : /^[a-z]+:/i.test(m) ? m : toUrl(m));
  const { worldSize } = options;
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new RangeError(`spawnThreadRanks: worldSize must be a positive integer, got ${worldSize}`);
  const slots = 4;
  const slotBytes = options.slotBytes ?? 256 * 1024;
  if (!Number.isInteger(slotBytes) || slotBytes < 64 || slotBytes % 8 !== 0) {
    throw new RangeError(`spawnThreadRanks: slotBytes must be a multiple of 8 of at least 64, got ${slotBytes}`);
  }
  const channels: (SharedArrayBuffer | undefined)[][] = [];
  for (let s = 0; s < worldSize; s++) {
    const row: (SharedArrayBuffer | undefined)[] = [];
    for (let d = 0; d < worldSize; d++) row.push(s === d ? undefined : new SharedArrayBuffer(channelBytes(slots, slotBytes)));
    channels.push(row);
  }
  const status = new SharedArrayBuffer(4 * (worldSize + 1));
  const statusView = new Int32Array(status);
  const ports: (MessagePort | undefined)[][] = Array.from({ length: worldSize }, () => new Array<MessagePort | undefined>(worldSize).fill(undefined));
  for (let a = 0; a < worldSize; a++) {
    for (let b = a + 1; b < worldSize; b++) {
      const { port1, port2 } = new MessageChannel();
      ports[a]![b] = port1;
      ports[b]![a] = port2;
    }
  }
  const entryUrl = new URL(`./rank-entry${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;
  const code = bootstrap(entryUrl, moduleUrl(options.module));
  const workers: Worker[] = [];
  const outcomes: Promise<RankOutcome<R>>[] = [];
  for (let rank = 0; rank < worldSize; rank++) {
    const world: ThreadWorld = { rank, worldSize, channels, status, ports: ports[rank]!, slots, slotBytes };
    const transfer = ports[rank]!.filter((p): p is MessagePort => p !== undefined);
    const worker = new Worker(code, {
      eval: true,
      workerData: { [THREAD_WORLD_KEY]: world, entry: { module: moduleUrl(options.module), exportName: options.exportName ?? 'default', args: options.args } },
      transferList: transfer,
    });
    workers.push(worker);
    outcomes.push(
      new Promise<RankOutcome<R>>((resolve) => {
        let outcome: RankOutcome<R> | undefined;
        worker.on('message', (m: { kind: 'result'; value: R } | { kind: 'error'; message: string; stack: string }) => {
          outcome = m.kind === 'result' ? { rank, ok: true, value: m.value } : { rank, ok: false, error: m.stack };
        });
        worker.on('error', (err) => {
          outcome ??= { rank, ok: false, error: err.stack ?? err.message };
        });
        worker.on('exit', (code) => {
          // A rank that stops without saying goodbye is lost; wake the others so they notice.
          markDead(statusView, rank);
          wakeAll(channels);
          resolve(outcome ?? { rank, ok: false, error: `rank ${rank} exited with code ${code} before returning` });
        });
      }),
    );
  }
  return {
    outcomes: Promise.all(outcomes),
    async terminate() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** Runs the ranks and returns their values in rank order; throws naming the first rank that failed. */
export async function runThreadRanks<A, R>(options: SpawnThreadRanksOptions<A>): Promise<R[]> {
  const outcomes = await (await spawnThreadRanks<A, R>(options)).outcomes;
  const failed = outcomes.filter((o): o is { rank: number; ok: false; error: string } => !o.ok);
  if (failed.length > 0) {
    throw new Error(`thread ranks failed:\n${failed.map((f) => `rank ${f.rank}: ${f.error}`).join('\n')}`);
  }
  return outcomes.map((o) => (o as { value: R }).value);
}

