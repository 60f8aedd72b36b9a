// `npx tsx bench/comm/profile-allreduce.ts [thread|tcp] [MB] [algorithm] [iterations]`
// Times a 2-rank float32 all-reduce call by call on each rank and prints, per rank, the
// median wall time and the busy (CPU) time of the rank's thread, so that the time spent
// waiting or in overhead shows next to the work itself (one reduction of half the array and
// one copy of the other half). Used to find where the thread and TCP paths lose time;
// run with `node --cpu-prof` through tsx for a function-level profile.
import { fileURLToPath } from 'node:url';
import { launch } from '../../src/cli/run.js';
import { initProcessGroup, runThreadRanks, sharedArray } from '../../src/dist/index.js';
import type { ThreadRankContext } from '../../src/dist/index.js';
import { threadCpuSplitMs } from './thread-cpu.js';

export interface ProfileArgs {
  megabytes: number;
  algorithm: string;
  iterations: number;
}

export interface ProfileResult {
  rank: number;
  medianMs: number;
  minMs: number;
  cpuMs: number;
  /** Of cpuMs, the kernel's part (system time). */
  systemMs: number;
  busbwGBs: number;
}

export async function profileRank({ args }: ThreadRankContext<ProfileArgs>): Promise<ProfileResult> {
  const pg = await initProcessGroup({ timeoutMs: 120_000 });
  const n = (args.megabytes * 1024 * 1024) / 4;
  const data = (pg.transportKind === 'thread' ? sharedArray('float32', n) : new Float32Array(n)) as Float32Array;
  data.fill(pg.rank + 1);
  const opts = { algorithm: args.algorithm as 'ring' };
  await pg.allReduce(data, opts).wait(); // warm-up
  const times: number[] = [];
  await pg.barrier().wait();
  const cpu0 = threadCpuSplitMs();
  for (let i = 0; i < args.iterations; i++) {
    const t0 = performance.now();
    await pg.allReduce(data, opts).wait();
    times.push(performance.now() - t0);
  }
  const cpu1 = threadCpuSplitMs();
  const systemMs = (cpu1.systemMs - cpu0.systemMs) / args.iterations;
  const cpuMs = (cpu1.userMs - cpu0.userMs) / args.iterations + systemMs;
  await pg.barrier().wait();
  await pg.destroy();
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)]!;
  return { rank: pg.rank, medianMs: med, minMs: times[0]!, cpuMs, systemMs, busbwGBs: (n * 4) / 1e9 / (med / 1000) };
}

async function main(): Promise<void> {
  const transport = process.argv[2] ?? 'thread';
  const args: ProfileArgs = { megabytes: Number(process.argv[3] ?? 64), algorithm: process.argv[4] ?? 'ring', iterations: Number(process.argv[5] ?? 10) };
  if (transport === 'thread') {
    const results = await runThreadRanks<ProfileArgs, ProfileResult>({ worldSize: 2, module: new URL(import.meta.url), exportName: 'profileRank', args });
    for (const r of results) console.log(JSON.stringify(r));
    return;
  }
  process.env['PROFILE_ARGS'] = JSON.stringify(args);
  const script = fileURLToPath(new URL('./profile-tcp-rank.ts', import.meta.url));
  const code = await launch({ nprocPerNode: 2, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: undefined, bindAddr: undefined, script, scriptArgs: [] });
  if (code !== 0) throw new Error(`profile: tcp ranks failed (exit ${code})`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
