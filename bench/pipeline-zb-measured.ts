// Pipeline step time on thread ranks of this machine with one stage much heavier than the others:
// 1F1B, ZB-H1 in its default (equal F/B/W times) order, twice, and ZB-H1 with `order: 'measured'`
// (timed for 2 steps after 1 warm-up step, then switched to the simulator's order for the measured
// times). The pipelines train copies of the same model and take turns step by step (the turn order
// rotating), so a change in the machine's speed hits all alike. Wasm backend in float32 with one
// kernel thread per rank (or --backend=cpu). Stage 0: Linear(d, wide) GELU Linear(wide, d); every
// other stage: two Linear(d, d) + tanh; the last stage's loss is the mean square of its output.
//
//   node --import tsx bench/pipeline-zb-measured.ts [--ranks=2] [--d=256] [--wide=2048] [--batch=64] [--micro=8] [--steps=32] [--backend=wasm|cpu]
//
// Expected before measuring (the planner's simulator with stage 0 k = 2-3 times the others, B of
// stage 0 ≈ 0, W = its whole backward, p2p ≈ 1/20 of a pass, 2 ranks, 8 micro-batches): ZB-H1's
// measured order equals its default order's step time (0%: on 2 ranks the rule's order moves W
// passes on rank 0 but never shortened the step in 300 random trials), and ZB-H1 is 0-2% faster
// than 1F1B (the heavy stage sets the pace; W can fill only the light stage's bubbles). On 4 thread
// ranks the simulator's premise (a device per rank) is false: 4 threads share 2 cores here.
import { fileURLToPath } from 'node:url';
import * as t from '../src/index.js';
import { PipelineParallel, initProcessGroup, runThreadRanks, type MeasuredPipelineSchedule, type PipelineOptions, type ThreadRankContext } from '../src/dist/index.js';

interface Args { d: number; wide: number; batch: number; micro: number; steps: number; backend: 'wasm' | 'cpu' }
// 'zb-h1 equal (copy)' is a second, identical default-order pipeline: the spread between the two
// copies is what this machine's noise does to pipelines that run the same order.
const KINDS = ['1f1b', 'zb-h1 equal', 'zb-h1 equal (copy)', 'zb-h1 measured'] as const;
type Kind = typeof KINDS[number];
interface RankResult { times: Record<Kind, number[]>; measured: MeasuredPipelineSchedule | undefined }

function stageOf(rank: number, args: Args): t.nn.Module {
  t.manualSeed(100 + rank);
  if (rank === 0) return new t.nn.Sequential(new t.nn.Linear(args.d, args.wide), new t.nn.GELU(), new t.nn.Linear(args.wide, args.d));
  return new t.nn.Sequential(new t.nn.Linear(args.d, args.d), new t.nn.Tanh(), new t.nn.Linear(args.d, args.d), new t.nn.Tanh());
}

export async function rank({ rank: r, args }: ThreadRankContext<Args>): Promise<RankResult> {
  t.setBackend(args.backend);
  const group = await initProcessGroup({ timeoutMs: 300_000 });
  const options: Record<Kind, PipelineOptions> = {
    '1f1b': { microBatches: args.micro, schedule: '1f1b' },
    'zb-h1 equal': { microBatches: args.micro, schedule: 'zb-h1' },
    'zb-h1 equal (copy)': { microBatches: args.micro, schedule: 'zb-h1' },
    'zb-h1 measured': { microBatches: args.micro, schedule: 'zb-h1', order: 'measured', warmUpSteps: 1, profileSteps: 2 },
  };
  const runs = KINDS.map((kind) => {
    const stage = stageOf(r, args);
    return { kind, stage, pipe: new PipelineParallel(stage, group, options[kind]), optimizer: new t.optim.SGD(stage.parameters(), { lr: 1e-3 }) };
  });
  t.manualSeed(7);
  const rows = args.batch / args.micro;
  const inputs = Array.from({ length: args.micro }, () => t.randn([rows, args.d]));
  const times = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
  for (let step = 0; step < args.steps; step++) {
    for (let j = 0; j < runs.length; j++) {
      const run = runs[(step + j) % runs.length]!;
      await group.barrier();
      const started = performance.now();
      run.optimizer.zeroGrad();
      await run.pipe.step({
        inputs: run.pipe.isFirst ? inputs : undefined,
        loss: run.pipe.isLast ? (out) => out.square().mean() : undefined,
      });
      run.optimizer.step();
      await group.barrier();
      // From step 4 on: the measured pipeline switched at step 3 (1 warm-up + 2 timed steps).
      if (step >= 4) times[run.kind].push(performance.now() - started);
    }
  }
  const measured = runs[3]!.pipe.measured;
  await group.destroy();
  return { times, measured };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const opts = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v!] as const; }));
  const ranks = Number(opts.get('ranks') ?? 2);
  const args: Args = { d: Number(opts.get('d') ?? 256), wide: Number(opts.get('wide') ?? 2048), batch: Number(opts.get('batch') ?? 64), micro: Number(opts.get('micro') ?? 8), steps: Number(opts.get('steps') ?? 32), backend: opts.get('backend') === 'cpu' ? 'cpu' : 'wasm' };
  process.env.TESSERA_THREADS = '1';
  const results = await runThreadRanks<Args, RankResult>({ worldSize: ranks, module: new URL(import.meta.url), exportName: 'rank', args });
  const median = (v: number[]): number => { const s = [...v].sort((a, b) => a - b); const h = s.length >> 1; return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2; };
  const m = results[0]!.measured!;
  const ms = (x: number): string => (x * 1e3).toFixed(2);
  console.log(`${ranks} thread ranks, ${args.backend}, stage 0 Linear(${args.d}, ${args.wide}) GELU Linear(${args.wide}, ${args.d}), others 2 × Linear(${args.d}, ${args.d}) + tanh; batch ${args.batch} in ${args.micro} micro-batches; ${args.steps - 4} timed steps each`);
  console.log(`measured per micro-batch (ms): F ${m.times.forward.map(ms).join(' / ')}; B ${m.times.inputGrad.map(ms).join(' / ')}; W ${m.times.weightGrad.map(ms).join(' / ')}; p2p ${ms(m.times.p2p)}`);
  console.log(`chosen: ${m.chosen}; ranks whose order changed: [${m.changedRanks.join(', ')}]`);
  m.simulatedOrders.forEach((o, d) => console.log(`  rank ${d}: ${o.map((x) => `${x.kind}${x.microBatch}`).join(' ')}`));
  console.log(`predicted step (ms): 1f1b ${ms(m.predicted.oneFOneB)}, zb-h1 equal ${ms(m.predicted.equalTimesOrder)}, zb-h1 measured ${ms(m.predicted.measuredOrder)}`);
  const rank0 = results[0]!.times;
  const line = KINDS.map((k) => `${k} ${median(rank0[k]).toFixed(2)}`).join(', ');
  console.log(`step median on rank 0 (ms): ${line}`);
  console.log(JSON.stringify({ ranks, args, medians: Object.fromEntries(KINDS.map((k) => [k, median(rank0[k])])), samples: rank0, times: m.times, predicted: m.predicted, chosen: m.chosen, changedRanks: m.changedRanks }));
}
