// The TASO-style substitution search on graphs traced from real models: estimated cost (the search's
// roofline + per-kernel model) before/after, and the measured replay time of the default pipeline
// with and without the opt-in search (`defaultPasses({ substitutions })`), on the cpu planned executor.
// Inference graphs have their parameters frozen into constants (freezeParameters first), so
// concatenated weights are folded at compile time; the training graph keeps live parameters.
// Usage: npx tsx bench/substitutions.ts [--runs N] [--expansions N]
// Writes bench/results/substitutions.json and bench/results/substitutions.md.
import { writeFileSync } from 'node:fs';
import * as t from '../src/index.js';
import { trace, type Graph } from '../src/index.js';
import * as C from '../src/compiler/index.js';
import { graphCost, substitutionSearch } from '../src/compiler/substitutions/index.js';
import { mlpParams, mlp, gptParams, gptBlock, lstmParams, lstmCell, mse } from '../test/graph/models.js';
import { checkIdle, machineDescription } from './idle-check.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const runs = Number(args.get('runs') ?? 200);
const expansions = Number(args.get('expansions') ?? 20);
t.setBackend('cpu');
t.manualSeed(0);

interface Case { name: string; graph: Graph; inputs: t.Tensor[]; frozen: boolean }
const cases: Case[] = [];
const add = (name: string, fn: (...xs: t.Tensor[]) => unknown, inputs: t.Tensor[], frozen: boolean): void => {
  const { graph } = trace(fn, inputs);
  cases.push({ name, graph: frozen ? C.freezeParameters.run(graph).graph : graph, inputs, frozen });
};
const mp = mlpParams(256, 128, 10);
add('MLP 256-128-10, batch 32 (inference)', (x) => mlp(mp, x), [t.randn([32, 256])], true);
const lp = lstmParams(64, 128);
add('LSTM cell 64->128, batch 32 (inference)', (x, h, c) => lstmCell(lp, x, h, c), [t.randn([32, 64]), t.randn([32, 128]), t.randn([32, 128])], true);
const gp = gptParams(64, 4);
add('GPT block C=64, 4 heads, B=4, S=16 (inference)', (x) => gptBlock(gp, x), [t.randn([4, 16, 64])], true);
const gp2 = gptParams(64, 4);
add('GPT block forward+backward, live weights (training)', (x, y) => {
  for (const p of Object.values(gp2)) if (p instanceof t.Tensor) p.grad = undefined;
  const l = mse(gptBlock(gp2, x), y);
  l.backward();
  return [l, gp2.wq.grad!, gp2.w1.grad!];
}, [t.randn([4, 16, 64]), t.randn([4, 16, 64])], false);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(run: () => unknown): number {
  for (let i = 0; i < 10; i++) run();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    run();
    ms.push(performance.now() - s);
  }
  return median(ms);
}

function maxDiff(a: t.Tensor[], b: t.Tensor[]): number {
  let d = 0;
  a.forEach((x, k) => { const p = x.data(), q = b[k]!.data(); for (let i = 0; i < p.length; i++) d = Math.max(d, Math.abs(p[i]! - q[i]!)); });
  return d;
}

const idleBefore = await checkIdle(2);
console.log(`idle check: ${idleBefore.verdict}`);
const results = [];
for (const c of cases) {
  // The graph the search sees in the pipeline: after simplify, constant folding, CSE and DCE.
  const pre = C.runPipeline(c.graph, [C.simplify, C.constantFold, C.cse, C.dce]).graph;
  const search = substitutionSearch(C.cse.run(pre).graph, { maxExpansions: expansions });
  const opts = { substitutions: { maxExpansions: expansions } };
  const base = C.compile(c.graph, { passes: C.defaultPasses() });
  const withSearch = C.compile(c.graph, { passes: C.defaultPasses(opts) });
  const ref = C.compile(c.graph, { passes: [] });
  const diff = maxDiff(ref.run(c.inputs), withSearch.run(c.inputs));
  const handOnly = C.runPipeline(pre, [C.mergeMatmuls, C.dce]).graph;
  const row = {
    model: c.name,
    nodes: c.graph.nodes.length,
    estBeforeUs: graphCost(pre) * 1e6,
    estAfterSearchUs: search.cost * 1e6,
    estHandMergeOnlyUs: graphCost(handOnly) * 1e6,
    rulesApplied: search.applied,
    searchMs: search.milliseconds,
    expanded: search.expanded,
    generated: search.generated,
    stopped: search.stopped,
    nodesDefault: base.graph.nodes.length,
    nodesWithSearch: withSearch.graph.nodes.length,
    replayMsDefault: time(() => base.run(c.inputs)),
    replayMsWithSearch: time(() => withSearch.run(c.inputs)),
    replayMsUnoptimized: time(() => ref.run(c.inputs)),
    maxAbsDiffVsUnoptimized: diff,
  };
  console.log(JSON.stringify(row));
  results.push(row);
}
const idleAfter = await checkIdle(2);
const out = { date: new Date().toISOString(), machine: machineDescription(), runs, expansions, idleBefore, idleAfter, results };
writeFileSync('bench/results/substitutions.json', JSON.stringify(out, null, 2) + '\n');
const md = [
  `# Substitution search (bench/substitutions.ts, ${out.date}, ${runs} runs, median; idle check ${idleBefore.verdict} / ${idleAfter.verdict})`,
  '',
  '| model | est. µs before | est. µs after search | est. µs hand merge only | rules applied | search ms | nodes default → with search | replay ms default | replay ms with search | replay ms unoptimized | max diff |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.map((r) => `| ${r.model} | ${r.estBeforeUs.toFixed(2)} | ${r.estAfterSearchUs.toFixed(2)} | ${r.estHandMergeOnlyUs.toFixed(2)} | ${r.rulesApplied.length} | ${r.searchMs.toFixed(0)} | ${r.nodesDefault} → ${r.nodesWithSearch} | ${r.replayMsDefault.toFixed(3)} | ${r.replayMsWithSearch.toFixed(3)} | ${r.replayMsUnoptimized.toFixed(3)} | ${r.maxAbsDiffVsUnoptimized.toExponential(1)} |`),
  '',
  ...results.map((r) => `- ${r.model}: ${r.rulesApplied.length === 0 ? 'no rule applied' : r.rulesApplied.map((a) => `\`${a}\``).join('; ')}`),
].join('\n');
writeFileSync('bench/results/substitutions.md', md + '\n');
console.log(md);
