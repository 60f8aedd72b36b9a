// `tessera advise`: the parallelization decision procedure, step by step with its numbers.
import * as plan from '../plan/index.js';
import { Options, clusterFrom, conventionsFrom, modelFrom, overlapsFrom } from './plan.js';

const usageText = `usage: tessera advise --model M --cluster C [--tokens N] [--max-days D] [--seq S] [overlaps] [--json]
  Walks the decision procedure: fits on one device? fast enough? → data parallel; else memory
  techniques (recomputation, ZeRO/FSDP, offload); else tensor + pipeline parallelism (search).
  Overlaps (for the search; see tessera plan --help): --overlap-grad-reduce --overlap-param-gather
  --tp-comm-overlap --ep-comm-overlap [--ep-overlap-chunks C] --overlap-p2p-comm [--overlap-slowdown F]
  Conventions: --bytes-per-param 16|18 --flops matmul|palm-6n --unit GB|GiB --attention full|causal --flash`;

export async function run(args: string[]): Promise<number> {
  try {
    const o = new Options(args);
    if (o.flag('help')) { console.log(usageText); return 0; }
    const m = modelFrom(o), conv = conventionsFrom(o), c = clusterFrom(o);
    const a = plan.advise(m, conv, c, { tokens: o.number('tokens'), maxDays: o.number('max-days'), overlaps: overlapsFrom(o) });
    if (o.flag('json')) {
      const { search, ...rest } = a;
      console.log(JSON.stringify({ model: m.name, cluster: plan.describeCluster(c), conventions: conv, ...rest, searchTop: search?.ranked.slice(0, 3).map((r) => ({ config: r.config, seconds: r.step.seconds, mfu: r.step.mfu, memory: r.memory.total })) }, null, 2));
      return 0;
    }
    const lines = [`advise: ${m.name} on ${plan.describeCluster(c)}`, `conventions: ${plan.describeConventions(conv)}`, ''];
    a.steps.forEach((s, i) => {
      lines.push(`${i + 1}. ${s.question} ${s.answer}`);
      for (const [k, v] of Object.entries(s.numbers)) lines.push(`     ${k}: ${v}`);
    });
    lines.push('', `recommendation: ${a.summary}`);
    console.log(lines.join('\n'));
    return 0;
  } catch (e) {
    console.error(`tessera advise: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
