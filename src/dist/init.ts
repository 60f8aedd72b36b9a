// initProcessGroup: picks the transport, finds rank and world size (options first, then the
// launcher's environment variables), connects, and measures the cost model.
import { measureCostModel } from './calibrate.js';
import type { CostModel } from './cost-model.js';
import { DEFAULT_COST_MODEL } from './cost-model.js';
import { readLaunchEnv } from './env.js';
import { LocalTransport } from './local-transport.js';
import type { World } from './process-group.js';
import { ProcessGroup } from './process-group.js';
import type { Transport } from './transport.js';

export interface InitOptions {
  /** 'thread' inside ranks started by spawnThreadRanks (the default there), else 'tcp'. */
  transport?: 'thread' | 'tcp';
  rank?: number;
  worldSize?: number;
  /** Where rank 0 serves the rendezvous store (env MASTER_ADDR; default 127.0.0.1). */
  masterAddr?: string;
  /** Port of the rendezvous store (env MASTER_PORT; default 29500). */
  masterPort?: number;
  /** Address this rank listens on for peers; default loopback, or the interface that reaches a non-loopback master. */
  bindAddr?: string;
  /** Shared secret peers prove they know (env TESSERA_SECRET). */
  secret?: string;
  /** Default timeout of every operation, ms (default 120000). */
  timeoutMs?: number;
  /** Use these α/β/γ instead of measuring them. */
  costModel?: CostModel;
  /** Where refused connections and other transport events are reported (default console.warn). */
  log?: (message: string) => void;
  /** Environment to read launcher variables from (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

function processEnv(): Readonly<Record<string, string | undefined>> {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env ?? {};
}

async function threadWorldOrUndefined(): Promise<import('./thread/world.js').ThreadWorld | undefined> {
  try {
    const wt = await import('node:worker_threads');
    const { THREAD_WORLD_KEY } = await import('./thread/world.js');
    const data = wt.workerData as Record<string, unknown> | null;
    return (data?.[THREAD_WORLD_KEY] as import('./thread/world.js').ThreadWorld | undefined) ?? undefined;
  } catch {
    return undefined;
  }
}

export async function initProcessGroup(options: InitOptions = {}): Promise<ProcessGroup> {
  const env = readLaunchEnv(options.env ?? processEnv());
  const threadWorld = await threadWorldOrUndefined();
  const kind = options.transport ?? (threadWorld ? 'thread' : 'tcp');
  const timeoutMs = options.timeoutMs ?? 120_000;
  let transport: Transport;
  if (kind === 'thread') {
    if (!threadWorld) {
      throw new Error("initProcessGroup: transport 'thread' only works inside ranks started by spawnThreadRanks/runThreadRanks; use 'tcp' for processes");
    }
    for (const [name, value, actual] of [['rank', options.rank, threadWorld.rank], ['worldSize', options.worldSize, threadWorld.worldSize]] as const) {
      if (value !== undefined && value !== actual) {
        throw new RangeError(`initProcessGroup: options.${name} is ${value} but this thread rank was spawned as ${name} ${actual}; leave it out`);
      }
    }
    const { ThreadTransport } = await import('./thread/thread-transport.js');
    transport = threadWorld.worldSize === 1 ? new LocalTransport() : new ThreadTransport(threadWorld);
  } else {
    const rank = options.rank ?? env.rank;
    const worldSize = options.worldSize ?? env.worldSize;
    if (rank === undefined || worldSize === undefined) {
      throw new Error(
        'initProcessGroup: rank and world size are unknown; pass { rank, worldSize }, or start the script with ' +
          '`tessera run --nproc-per-node N script.js` (or torchrun, mpirun, srun, which set RANK/WORLD_SIZE, OMPI_COMM_WORLD_RANK/SIZE, SLURM_PROCID/NTASKS)',
      );
    }
    if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
      throw new RangeError(`initProcessGroup: rank must be in [0, worldSize) and worldSize ≥ 1; got rank ${rank}, worldSize ${worldSize}`);
    }
    if (worldSize === 1) transport = new LocalTransport();
    else {
      const secret = options.secret ?? env.secret;
      if (!secret) {
        throw new Error(
          'initProcessGroup: the tcp transport needs a shared secret so that only this job can connect; set TESSERA_SECRET ' +
            'to the same random string on every rank (`tessera run` generates one) or pass { secret }',
        );
      }
      const { connectTcpTransport } = await import('./tcp/tcp-transport.js');
      transport = await connectTcpTransport({
        rank,
        worldSize,
        masterAddr: options.masterAddr ?? env.masterAddr ?? '127.0.0.1',
        masterPort: options.masterPort ?? env.masterPort ?? 29500,
        bindAddr: options.bindAddr ?? processEnv()['TESSERA_BIND_ADDR'],
        secret,
        timeoutMs,
        log: options.log ?? ((m) => console.warn(m)),
      });
    }
  }
  const world: World = { transport, costModel: options.costModel ?? DEFAULT_COST_MODEL, timeoutMs, nextGroupId: 1, closed: false };
  const ranks = Array.from({ length: transport.worldSize }, (_, i) => i);
  const group = new ProcessGroup(world, ranks, transport.rank, 0);
  if (!options.costModel && transport.worldSize > 1) {
    try {
      world.costModel = await measureCostModel(group, (bytes) => transport.allocate(bytes));
    } catch (err) {
      await group.destroy();
      throw err;
    }
  }
  return group;
}
