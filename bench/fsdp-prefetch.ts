// FSDP (ZeRO-3) step time with and without prefetching the next unit's parameters, on thread ranks
// of this machine (wasm backend, one kernel thread per rank). Each unit is an MLP block (d → 4d → d
// with GELU); the two settings alternate step by step, so a change in the machine's speed hits
// both alike.
//
//   node --import tsx bench/fsdp-prefetch.ts [--ranks=2] [--d=512] [--units=4] [--batch=64] [--steps=12]
//
// Expected before measuring: on one host the all-gather is a memory copy (~1-3 ms for a unit's
// 8 MB at d = 512) next to ~10-20 ms of compute per unit, and the gather only progresses while the
// rank waits; prefetching should hide part of it: a few percent of the step.
import { fileURLToPath } from 'node:url';
import * as t from '../src/index.js';
import { FullyShardedDataParallel, initProcessGroup, runThreadRanks, type ThreadRankContext } from '../src/dist/index.js';

interface Args { d: number; units: number; batch: number; steps: number }

export async function rank({ rank: r, args }: ThreadRankContext<Args>): Promise<{ on: number[]; off: number[] }> {
  t.setBackend('wasm');
  const group = await initProcessGroup({ timeoutMs: 120_000 });
  const make = () => {
    t.manualSeed(1);
    return Array.from({ length: args.units }, () => new t.nn.Sequential(new t.nn.Linear(args.d, 4 * args.d), new t.nn.GELU(), new t.nn.Linear(4 * args.d, args.d)));
  };
  const runs = {
    on: await FullyShardedDataParallel.create(make(), group, (s) => new t.optim.Adam(s, { lr: 1e-4 }), { prefetch: true }),
    off: await FullyShardedDataParallel.create(make(), group, (s) => new t.optim.Adam(s, { lr: 1e-4 }), { prefetch: false }),
  };
  t.manualSeed(10 + r);
  const x = t.randn([args.batch, args.d]);
  const times: { on: number[]; off: number[] } = { on: [], off: [] };
  for (let step = 0; step < args.steps; step++) {
    for (const key of ['on', 'off'] as const) {
      const fsdp = runs[key];
      await group.barrier();
      const started = performance.now();
      fsdp.zeroGrad();
      const out = await fsdp.forward(x);
      await fsdp.backward(out.square().mean());
      fsdp.step();
      await group.barrier();
      if (step >= 2) times[key].push(performance.now() - started);
    }
  }
  await group.destroy();
  return times;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const opts = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v!] as const; }));
  const ranks = Number(opts.get('ranks') ?? 2);
  const args: Args = { d: Number(opts.get('d') ?? 512), units: Number(opts.get('units') ?? 4), batch: Number(opts.get('batch') ?? 64), steps: Number(opts.get('steps') ?? 12) };
  process.env.TESSERA_THREADS = '1';
  const results = await runThreadRanks<Args, { on: number[]; off: number[] }>({ worldSize: ranks, module: new URL(import.meta.url), exportName: 'rank', args });
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const on = median(results[0]!.on), off = median(results[0]!.off);
  console.log(`FSDP ${ranks} thread ranks, ${args.units} units of d=${args.d} (MLP 4x), batch ${args.batch}: step median prefetch ${on.toFixed(1)} ms, no prefetch ${off.toFixed(1)} ms (${((1 - on / off) * 100).toFixed(1)}% faster)`);
}
