// TASO's cost-based backtracking search (Jia et al. SOSP'19, Algorithm 2): a priority queue of
// graphs ordered by estimated cost; the cheapest is expanded by applying every rule at every match;
// a new graph is queued when it costs less than alpha times the best cost found so far (alpha > 1
// lets the search pass through slightly worse graphs on the way to better ones), and every graph is
// visited once (structural hash). The budget bounds expansions, generated graphs and time.
//
// Cost: the roofline time of every node (analyze.ts: max(FLOPs / peak, bytes / bandwidth), from each
// op's `cost`) plus a fixed overhead per kernel (a node that is not a view), which is what makes one
// larger matmul cheaper than two smaller ones reading the same input.
import type { Graph, ValueId } from '../../graph/graph.js';
import { formatAttrs } from '../../graph/graph.js';
import { isImpureNode } from '../../graph/graph-ops.js';
import { analyze, type Hardware } from '../analyze.js';
import { eliminateCommonSubexpressions } from '../passes/cse.js';
import { eliminateDeadCode } from '../passes/dce.js';
import type { Pass, PassResult } from '../passes/pass.js';
import { applyMatch, findMatches, rootOp, valuesByOp } from './match.js';
import { ruleText, type Rule } from './pattern.js';
import { loadRules } from './rules.js';

export interface CostModel {
  hardware: Hardware;
  /** Seconds added per kernel (a node that moves data or computes). */
  kernelOverhead: number;
}

/** A laptop-CPU-like roofline (100 GFLOP/s, 20 GB/s, as the pass reports use) and 2 µs per kernel. */
export const DEFAULT_COST_MODEL: CostModel = { hardware: { peakFlops: 1e11, memoryBandwidth: 2e10 }, kernelOverhead: 2e-6 };

/**
 * Estimated seconds of one run of `g`. Nodes computed from constants only cost nothing: constant
 * folding evaluates them once at compile time (so with frozen parameters, inference, concatenated
 * weights are free; with live parameters, training, their concatenation is paid on every call).
 */
export function graphCost(g: Graph, model: CostModel = DEFAULT_COST_MODEL): number {
  const a = analyze(g, model.hardware);
  const folded = new Set<ValueId>(g.constants.keys());
  let seconds = 0;
  g.nodes.forEach((n, i) => {
    if (!isImpureNode(n) && n.inputs.length > 0 && n.inputs.every((v) => folded.has(v))) {
      n.outputs.forEach((o) => folded.add(o));
      return;
    }
    const node = a.nodes[i]!;
    seconds += node.seconds + (node.bound === 'free' ? 0 : model.kernelOverhead);
  });
  return seconds;
}

export interface SearchOptions {
  /** Rules to apply (default: the committed rule set, rules.json). */
  rules?: readonly Rule[];
  /** Relaxation factor (default 1.05). */
  alpha?: number;
  /** Most graphs taken off the queue and expanded (default 40). */
  maxExpansions?: number;
  /** Most graphs generated in all (default 4000). */
  maxGraphs?: number;
  /** Wall-clock limit in milliseconds (default 20000). */
  timeLimitMs?: number;
  cost?: CostModel;
}

export interface SearchResult {
  graph: Graph;
  initialCost: number;
  cost: number;
  /** Rules applied on the way from the input to the returned graph, in order. */
  applied: string[];
  expanded: number;
  generated: number;
  stopped: 'exhausted' | 'expansions' | 'graphs' | 'time';
  milliseconds: number;
}

const attrKeys = new WeakMap<object, string>();
function attrKey(attrs: unknown): string {
  if (attrs === null || typeof attrs !== 'object') return String(attrs);
  let k = attrKeys.get(attrs);
  if (k === undefined) attrKeys.set(attrs, (k = formatAttrs(attrs)));
  return k;
}

/** A structural hash of the graph's computation (equal for graphs that differ only in value ids and node order). */
export function graphHash(g: Graph): string {
  const h = new Map<ValueId, number>();
  const mix = (a: number, s: string): number => {
    let x = a;
    for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
    return x >>> 0;
  };
  const of = (v: ValueId): number => h.get(v) ?? mix(2166136261, `leaf${v}`);
  for (const n of g.nodes) {
    let x = mix(2166136261, isImpureNode(n) ? `impure${n.outputs[0]}` : `${n.op}[${attrKey(n.attrs)}]`);
    for (const i of n.inputs) x = mix(x, `,${of(i)}`);
    n.outputs.forEach((o, k) => h.set(o, mix(x, `#${k}`)));
  }
  return [...g.outputs.map(of), ...g.writes.map((w) => `w${w.target.id}:${of(w.value)}`), ...g.guards.map((x) => `g${of(x.value)}`)].join(' ');
}

/** Rules worth searching with: a source with at least one op and no variable among its outputs. */
function searchable(rules: readonly Rule[]): Rule[] {
  return rules.filter((r) => r.src.nodes.length > 0 && r.src.outputs.every((o) => o >= r.vars.length));
}

interface Entry {
  graph: Graph;
  cost: number;
  applied: string[];
}

/** Runs the search on `input` (which is not modified); returns the cheapest graph found. */
export function substitutionSearch(input: Graph, opts: SearchOptions = {}): SearchResult {
  const started = performance.now();
  const model = opts.cost ?? DEFAULT_COST_MODEL;
  const alpha = opts.alpha ?? 1.05;
  const maxExpansions = opts.maxExpansions ?? 40;
  const maxGraphs = opts.maxGraphs ?? 4000;
  const timeLimit = opts.timeLimitMs ?? 20000;
  const rules = searchable(opts.rules ?? loadRules());
  const texts = new Map(rules.map((r) => [r, ruleText(r)]));
  const ops = new Set(rules.map(rootOp));
  const start: Entry = { graph: input, cost: graphCost(input, model), applied: [] };
  let best = start;
  const queue: Entry[] = [start];
  const seen = new Set<string>([graphHash(input)]);
  let expanded = 0, generated = 0;
  let stopped: SearchResult['stopped'] = 'exhausted';
  outer:
  while (queue.length > 0) {
    if (expanded >= maxExpansions) { stopped = 'expansions'; break; }
    const cur = queue.shift()!;
    expanded++;
    const byOp = valuesByOp(cur.graph);
    for (const rule of rules) {
      const op = rootOp(rule);
      if (op === undefined || !ops.has(op) || !byOp.has(op)) continue;
      for (const m of findMatches(cur.graph, rule, byOp)) {
        if (performance.now() - started > timeLimit) { stopped = 'time'; break outer; }
        if (generated >= maxGraphs) { stopped = 'graphs'; break outer; }
        const next = applyMatch(cur.graph, m);
        if (next === undefined) continue;
        const key = graphHash(next);
        if (seen.has(key)) continue;
        seen.add(key);
        generated++;
        const entry: Entry = { graph: next, cost: graphCost(next, model), applied: [...cur.applied, texts.get(rule)!] };
        // A relative margin, so that rounding in the cost sum never counts as a win.
        if (entry.cost < best.cost * (1 - 1e-9)) best = entry;
        if (entry.cost < alpha * best.cost) {
          const at = queue.findIndex((e) => e.cost > entry.cost);
          queue.splice(at < 0 ? queue.length : at, 0, entry);
        }
      }
    }
  }
  return {
    graph: best.graph, initialCost: start.cost, cost: best.cost, applied: best.applied, expanded, generated, stopped,
    milliseconds: performance.now() - started,
  };
}

/**
 * The search as a pass (opt-in: `defaultPasses({ substitutions: true })`): common subexpressions
 * are merged first (so equal reshapes of one value count as one operand), then the search runs, then
 * dead code is removed. Its changes list the rules applied and the estimated cost before and after.
 */
export function substitutionPass(opts: SearchOptions = {}): Pass {
  return {
    name: 'substitutions',
    run(g: Graph): PassResult {
      const merged = eliminateCommonSubexpressions(g).graph;
      const r = substitutionSearch(merged, opts);
      if (r.applied.length === 0) return { graph: g.clone(), changes: [] };
      const out = eliminateDeadCode(eliminateCommonSubexpressions(r.graph).graph).graph;
      return {
        graph: out,
        changes: [
          ...r.applied.map((t) => `substitutions: ${t}`),
          `substitutions: estimated cost ${(r.initialCost * 1e6).toFixed(2)} µs -> ${(graphCost(out, opts.cost) * 1e6).toFixed(2)} µs (${r.expanded} expanded, ${r.generated} graphs, stopped: ${r.stopped})`,
        ],
      };
    },
  };
}
