// The measurement loop run inside every rank of the communication benchmark: for each
// collective x algorithm x size, time back-to-back calls between two barriers, NCCL-tests
// style, and return rank 0's rows. Also a point-to-point ping-pong sweep for the α-β fit.
import type { Algorithm, Collective, CommArray, ProcessGroup } from '../../src/dist/index.js';
import { ALGORITHMS, predictSeconds, sharedArray } from '../../src/dist/index.js';
import { threadCpuMs } from './thread-cpu.js';

export interface BenchPlan {
  sizes: number[];
  /** Sizes above this are measured for allReduce only. */
  maxSizeOtherCollectives: number;
  collectives: Collective[];
  /** Stop repeating a case after this many seconds (at least minIterations run). */
  secondsPerCase: number;
  minIterations: number;
  maxIterations: number;
  pingPongSizes: number[];
}

export interface Row {
  transport: string;
  ranks: number;
  collective: Collective;
  algorithm: Algorithm;
  bytes: number;
  iterations: number;
  seconds: number;
  algbwGBs: number;
  busbwGBs: number;
  predictedSeconds: number;
  /** CPU time of rank 0's thread per call (10 ms ticks over the timed calls): its busy time. */
  cpuSecondsRank0: number;
}

export interface PingPong {
  bytes: number;
  oneWaySeconds: number;
}

export interface RankReport {
  rows: Row[];
  pingPong: PingPong[];
  costModel: { alpha: number; beta: number; gamma: number };
}

/** NCCL's bus-bandwidth factors (nccl-tests doc/PERFORMANCE.md); scatter/gather like all-gather. */
export function busFactor(collective: Collective, n: number): number {
  switch (collective) {
    case 'allReduce':
      return (2 * (n - 1)) / n;
    case 'reduceScatter':
    case 'allGather':
    case 'allToAll':
    case 'scatter':
    case 'gather':
      return (n - 1) / n;
    case 'broadcast':
    case 'reduce':
      return 1;
    case 'barrier':
      return 0;
  }
}

function floats(shared: boolean, n: number): Float32Array {
  return shared ? (sharedArray('float32', n) as Float32Array) : new Float32Array(n);
}

/** Runs one call of `collective`; `bytes` is the NCCL "S" (total size for the gather family). */
function makeCall(pg: ProcessGroup, collective: Collective, algorithm: Algorithm, bytes: number, shared: boolean): () => Promise<unknown> {
  const p = pg.size;
  const n = Math.max(1, Math.floor(bytes / 4));
  const per = Math.max(1, Math.floor(n / p));
  const opts = { algorithm } as { algorithm: never };
  switch (collective) {
    case 'allReduce': {
      const a = floats(shared, n).fill(1);
      return () => pg.allReduce(a, opts).wait();
    }
    case 'broadcast': {
      const a = floats(shared, n);
      return () => pg.broadcast(a, opts).wait();
    }
    case 'reduce': {
      const a = floats(shared, n);
      return () => pg.reduce(a, opts).wait();
    }
    case 'reduceScatter': {
      const a = floats(shared, per * p);
      const out = floats(shared, per);
      return () => pg.reduceScatter(a, { ...opts, output: out }).wait();
    }
    case 'allGather': {
      const a = floats(shared, per);
      const out = floats(shared, per * p);
      return () => pg.allGather(a, { ...opts, output: out }).wait();
    }
    case 'allToAll': {
      const a = floats(shared, per * p);
      const out = floats(shared, per * p);
      return () => pg.allToAll(a, { ...opts, output: out }).wait();
    }
    case 'scatter': {
      const input = pg.rank === 0 ? floats(shared, per * p) : undefined;
      const out = floats(shared, per);
      return () => pg.scatter(out, { ...opts, ...(input ? { input } : {}) }).wait();
    }
    case 'gather': {
      const a = floats(shared, per);
      const output = pg.rank === 0 ? floats(shared, per * p) : undefined;
      return () => pg.gather(a, { ...opts, ...(output ? { output } : {}) }).wait();
    }
    case 'barrier':
      return () => pg.barrier(opts).wait();
  }
}

export async function runCases(pg: ProcessGroup, plan: BenchPlan, log: (line: string) => void): Promise<RankReport> {
  const shared = pg.transportKind === 'thread';
  const rows: Row[] = [];
  const pingPong: PingPong[] = [];
  if (pg.size >= 2) {
    for (const bytes of plan.pingPongSizes) {
      const m = floats(shared, Math.max(1, bytes / 4));
      const reps = bytes >= 1 << 22 ? 3 : 20;
      await pg.barrier();
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) {
        if (pg.rank === 0) {
          await pg.send(m, 1);
          await pg.recv(m, 1);
        } else if (pg.rank === 1) {
          await pg.recv(m, 0);
          await pg.send(m, 0);
        }
      }
      await pg.barrier();
      pingPong.push({ bytes: m.byteLength, oneWaySeconds: (performance.now() - t0) / 1000 / reps / 2 });
    }
  }
  for (const collective of plan.collectives) {
    for (const algorithm of ALGORITHMS[collective] as readonly Algorithm[]) {
      const sizes = collective === 'barrier' ? [0] : plan.sizes.filter((s) => collective === 'allReduce' || s <= plan.maxSizeOtherCollectives);
      for (const bytes of sizes) {
        const call = makeCall(pg, collective, algorithm, bytes, shared);
        await call(); // warm-up (also registers shared buffers with peers)
        // A short probe sizes the timed run; rank 0 decides so that all ranks call equally often.
        await pg.barrier();
        let t0 = performance.now();
        for (let i = 0; i < plan.minIterations; i++) await call();
        await pg.barrier();
        const probe = (performance.now() - t0) / 1000 / plan.minIterations;
        const count = new Int32Array([Math.min(plan.maxIterations, Math.max(plan.minIterations, Math.ceil(plan.secondsPerCase / probe)))]);
        await pg.broadcast(count, { root: 0, algorithm: 'tree' });
        const iterations = count[0]!;
        await pg.barrier();
        t0 = performance.now();
        const cpu0 = threadCpuMs();
        for (let i = 0; i < iterations; i++) await call();
        const cpuSecondsRank0 = (threadCpuMs() - cpu0) / 1000 / iterations;
        await pg.barrier();
        const seconds = (performance.now() - t0) / 1000 / iterations;
        const algbw = bytes / seconds / 1e9;
        const row: Row = {
          transport: pg.transportKind,
          ranks: pg.size,
          collective,
          algorithm,
          bytes,
          iterations,
          seconds,
          algbwGBs: algbw,
          busbwGBs: algbw * busFactor(collective, pg.size),
          predictedSeconds: predictSeconds(collective, algorithm as never, pg.size, bytes, pg.costModel),
          cpuSecondsRank0,
        };
        rows.push(row);
        if (pg.rank === 0) log(`${row.transport} p=${row.ranks} ${collective}/${algorithm} ${bytes} B: ${(seconds * 1e6).toFixed(1)} us, busbw ${row.busbwGBs.toFixed(3)} GB/s, rank 0 busy ${(cpuSecondsRank0 * 1e6).toFixed(0)} us`);
      }
    }
  }
  return { rows, pingPong, costModel: { ...pg.costModel } };
}
