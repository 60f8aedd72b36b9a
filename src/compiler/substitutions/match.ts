// Applying a substitution to the IR: find where a rule's source pattern occurs in a Graph (binding
// its variables to IR values and its dimension symbols to sizes) and splice in the target.
// Pattern ops match these IR nodes (rank-2 matrices, rank-1 vectors, floating dtypes):
//   matmul/add/mul/relu/exp: the same primitive; transpose: permute [1, 0]; cat: a two-input cat;
//   split output k: a slice of unit steps taking [0, at) or [at, end) of one axis;
//   sum: sum over one axis of a matrix, keepdim false; bcast: expand of a vector [b] to [rows, b].
import type { Graph, GraphNode, ValueId } from '../../graph/graph.js';
import { opDef } from '../../graph/graph-ops.js';
import { eliminateDeadCode } from '../passes/dce.js';
import { topoSort } from '../passes/merge-matmuls.js';
import { dimParts, dimValue, outputCount, type Dim, type PatternGraph, type PatternNode, type Rule } from './pattern.js';

export interface Match {
  rule: Rule;
  /** IR value of each pattern variable (by variable index). */
  vars: Map<number, ValueId>;
  /** IR values of the source's outputs, in order. */
  outputs: ValueId[];
  sizes: Record<string, number>;
}

interface State {
  vars: Map<number, ValueId>;
  vals: Map<number, ValueId>;
  sizes: Record<string, number>;
  dtype: string | undefined;
}

const FLOATING = new Set(['float32', 'float64', 'float16', 'bfloat16']);

/** Pattern value -> (node, output index) for one side of a rule. */
function producers(varCount: number, g: PatternGraph): { node: PatternNode; k: number }[] {
  const out: { node: PatternNode; k: number }[] = [];
  for (const node of g.nodes) for (let k = 0; k < outputCount(node.op); k++) out.push({ node, k });
  void varCount;
  return out;
}

const IR_OP: Record<PatternNode['op'], string> = {
  matmul: 'matmul', add: 'add', mul: 'mul', relu: 'relu', exp: 'exp', transpose: 'permute', cat: 'cat', split: 'slice', sum: 'sum', bcast: 'expand',
};

/** The IR op a rule's first source output must be produced by (undefined for a variable output). */
export function rootOp(rule: Rule): string | undefined {
  const o = rule.src.outputs[0]!;
  if (o < rule.vars.length) return undefined;
  return IR_OP[producers(rule.vars.length, rule.src)[o - rule.vars.length]!.node.op];
}

function bindDim(st: State, d: Dim, size: number): boolean {
  const parts = dimParts(d);
  if (parts.length === 1 && parts[0] !== '1') {
    const known = st.sizes[parts[0]!];
    if (known === undefined) {
      st.sizes[parts[0]!] = size;
      return true;
    }
    return known === size;
  }
  if (parts.some((p) => p !== '1' && st.sizes[p] === undefined)) return false;
  return dimValue(d, st.sizes) === size;
}

function matchValue(g: Graph, rule: Rule, prods: { node: PatternNode; k: number }[], pv: number, iv: ValueId, st: State): boolean {
  const n = rule.vars.length;
  const info = g.value(iv);
  if (!FLOATING.has(info.dtype) || (st.dtype !== undefined && st.dtype !== info.dtype)) return false;
  if (info.shape.some((d) => d === 0)) return false;
  if (pv < n) {
    const bound = st.vars.get(pv);
    if (bound !== undefined) return bound === iv;
    const shape = rule.vars[pv]!.shape;
    if (shape.length !== info.shape.length || !shape.every((d, i) => bindDim(st, d, info.shape[i]!))) return false;
    st.vars.set(pv, iv);
    st.dtype = info.dtype;
    return true;
  }
  const seen = st.vals.get(pv);
  if (seen !== undefined) return seen === iv;
  const { node: pn, k } = prods[pv - n]!;
  const p = info.producer === undefined ? undefined : g.nodes[info.producer];
  if (p === undefined || p.op !== IR_OP[pn.op]) return false;
  const rank = info.shape.length;
  const attrs = p.attrs as Record<string, unknown>;
  const inputs = (ins: readonly ValueId[]): boolean => ins.length === pn.in.length && pn.in.every((q, i) => matchValue(g, rule, prods, q, ins[i]!, st));
  let ok: boolean;
  switch (pn.op) {
    case 'matmul':
      ok = rank === 2 && inputs(p.inputs);
      break;
    case 'relu': case 'exp':
      ok = rank <= 2 && inputs(p.inputs);
      break;
    case 'add': case 'mul': {
      // Commutative: the generator enumerates one operand order; try both here.
      if (rank > 2) { ok = false; break; }
      const saved = cloneState(st);
      ok = inputs(p.inputs);
      if (!ok && p.inputs[0] !== p.inputs[1]) {
        restoreState(st, saved);
        ok = inputs([p.inputs[1]!, p.inputs[0]!]);
      }
      break;
    }
    case 'transpose': {
      const perm = attrs['perm'] as number[];
      ok = rank === 2 && perm[0] === 1 && perm[1] === 0 && inputs(p.inputs);
      break;
    }
    case 'cat':
      ok = rank <= 2 && p.inputs.length === 2 && attrs['axis'] === pn.axis && inputs(p.inputs);
      break;
    case 'sum': {
      const axes = attrs['axes'] as number[];
      ok = rank === 1 && attrs['keepdim'] === false && axes.length === 1 && axes[0] === pn.axis && g.value(p.inputs[0]!).shape.length === 2 && inputs(p.inputs);
      break;
    }
    case 'bcast':
      ok = rank === 2 && g.value(p.inputs[0]!).shape.length === 1 && inputs(p.inputs) && bindDim(st, pn.rows!, info.shape[0]!);
      break;
    case 'split': {
      const { starts, steps, sizes } = attrs as { starts: number[]; steps: number[]; sizes: number[] };
      const whole = g.value(p.inputs[0]!).shape;
      const ax = pn.axis!;
      if (rank > 2 || whole.length !== rank || !steps.every((s) => s === 1) || !whole.every((d, i) => i === ax || (starts[i] === 0 && sizes[i] === d))) {
        ok = false;
        break;
      }
      if (!inputs(p.inputs) || dimParts(pn.at!).some((s) => s !== '1' && st.sizes[s] === undefined)) {
        ok = false;
        break;
      }
      const at = dimValue(pn.at!, st.sizes);
      ok = k === 0 ? starts[ax] === 0 && sizes[ax] === at : starts[ax] === at && sizes[ax] === whole[ax]! - at;
      break;
    }
  }
  if (ok) st.vals.set(pv, iv);
  return ok;
}

const cloneState = (st: State): State => ({ vars: new Map(st.vars), vals: new Map(st.vals), sizes: { ...st.sizes }, dtype: st.dtype });
const restoreState = (st: State, from: State): void => {
  st.vars = from.vars;
  st.vals = from.vals;
  st.sizes = from.sizes;
  st.dtype = from.dtype;
};

/**
 * Every occurrence of `rule`'s source in `g`. `byOp` lists the IR values produced by each op (see
 * valuesByOp). Multi-output sources match distinct IR values.
 */
export function findMatches(g: Graph, rule: Rule, byOp: ReadonlyMap<string, readonly ValueId[]>, limit = Infinity): Match[] {
  const n = rule.vars.length;
  const prods = producers(n, rule.src);
  const out: Match[] = [];
  const roots = rule.src.outputs.map((o) => (o < n ? undefined : byOp.get(IR_OP[prods[o - n]!.node.op]) ?? []));
  if (roots.some((r) => r === undefined)) return out;
  const extend = (k: number, st: State, chosen: ValueId[]): void => {
    if (out.length >= limit) return;
    if (k === rule.src.outputs.length) {
      out.push({ rule, vars: st.vars, outputs: chosen, sizes: st.sizes });
      return;
    }
    for (const iv of roots[k]!) {
      if (chosen.includes(iv)) continue;
      const next = cloneState(st);
      if (matchValue(g, rule, prods, rule.src.outputs[k]!, iv, next)) extend(k + 1, next, [...chosen, iv]);
    }
  };
  extend(0, { vars: new Map(), vals: new Map(), sizes: {}, dtype: undefined }, []);
  return out;
}

/** The IR values each op produces (first output of each node; slices included). */
export function valuesByOp(g: Graph): Map<string, ValueId[]> {
  const m = new Map<string, ValueId[]>();
  for (const node of g.nodes) {
    let l = m.get(node.op);
    if (l === undefined) m.set(node.op, (l = []));
    l.push(node.outputs[0]!);
  }
  return m;
}

/**
 * `g` with the match's source outputs computed by the rule's target instead (a new graph; dead
 * source nodes removed). Undefined when the rewrite would create a cycle (a variable of the target
 * depends on a replaced output).
 */
export function applyMatch(g: Graph, m: Match): Graph | undefined {
  const h = g.clone();
  const rule = m.rule;
  const n = rule.vars.length;
  const env = new Map<number, ValueId>(m.vars);
  const added: GraphNode[] = [];
  const emit = (op: string, inputs: ValueId[], attrs: unknown): ValueId => {
    const [t] = opDef(op).infer(inputs.map((v) => h.value(v)), attrs);
    const id = h.newValue(t!.shape, t!.dtype, 'node');
    added.push({ op, inputs, attrs, outputs: [id] });
    return id;
  };
  let next = n;
  for (const pn of rule.tgt.nodes) {
    const ins = pn.in.map((v) => env.get(v)!);
    const outs: ValueId[] = [];
    switch (pn.op) {
      case 'matmul': case 'add': case 'mul': case 'relu': case 'exp':
        outs.push(emit(pn.op, ins, {}));
        break;
      case 'transpose':
        outs.push(emit('permute', ins, { perm: [1, 0] }));
        break;
      case 'cat':
        outs.push(emit('cat', ins, { axis: pn.axis }));
        break;
      case 'sum':
        outs.push(emit('sum', ins, { axes: [pn.axis], keepdim: false }));
        break;
      case 'bcast': {
        const b = h.value(ins[0]!).shape[0]!;
        outs.push(emit('expand', ins, { shape: [dimValue(pn.rows!, m.sizes), b] }));
        break;
      }
      case 'split': {
        const whole = h.value(ins[0]!).shape;
        const at = dimValue(pn.at!, m.sizes);
        const ax = pn.axis!;
        for (const [start, size] of [[0, at], [at, whole[ax]! - at]] as const) {
          outs.push(emit('slice', ins, {
            starts: whole.map((_, i) => (i === ax ? start : 0)), steps: whole.map(() => 1), sizes: whole.map((d, i) => (i === ax ? size : d)),
          }));
        }
        break;
      }
    }
    outs.forEach((o, k) => env.set(next + k, o));
    next += outputCount(pn.op);
  }
  h.nodes.push(...added);
  m.outputs.forEach((src, k) => h.replaceAllUses(src, env.get(rule.tgt.outputs[k]!)!));
  try {
    h.nodes = topoSort(h, h.nodes);
  } catch {
    return undefined;
  }
  h.reindex();
  return eliminateDeadCode(h).graph;
}
