// The substitution generator (TASO, Jia et al. SOSP'19, section 3): enumerate every graph of up to
// `maxOps` pattern ops over a fixed vocabulary of symbolic input tensors, fingerprint each graph by
// evaluating it on fixed random inputs, group graphs with equal fingerprints, confirm each group's
// members pairwise on many random inputs and sizes, turn every verified pair into a rule (both
// directions) and prune the redundant ones.
//
// Verification is randomized testing, with this argument for its strength: every op but relu and
// exp computes a polynomial in the input entries, of degree <= maxOps. Those rules are checked on
// random integers in [-R, R] (R = 1024) with float64 arithmetic that stays exact (|values| < 2^53),
// so two different polynomials agree on one trial with probability <= degree / (2R + 1)
// (Schwartz-Zippel), and on all T independent trials with probability <= (3 / 2049)^T, ~1e-23 for
// T = 8, for each size assignment. Sizes vary per trial (1 included, so degenerate shapes are tried).
// Rules with relu or exp are checked on random floats with a relative tolerance of 1e-9: strong
// evidence, not a proof. No rule is taken from the fingerprint alone.
import {
  canonicalRule, dimSymbols, dimValue, evalGraph, evalPattern, expressionTexts, inferPattern, isPolynomial,
  outputCount, patternShapes, ruleKey, subDims,
  type Dim, type Mat, type PatternGraph, type PatternNode, type PatternOp, type PatternVar, type Rule,
} from './pattern.js';

export interface GeneratorConfig {
  /** The symbolic input tensors graphs are built over (TASO's input tensors). */
  vars: PatternVar[];
  ops: readonly PatternOp[];
  maxOps: number;
  /** Graphs with more outputs than this are not collected (default 2). */
  maxOutputs?: number;
  /** Most reads of one variable by the nodes of a graph (unbounded when undefined). */
  maxVarUses?: number;
  /** Concrete sizes of the symbols when fingerprinting (distinct, so unrelated shapes rarely alias). */
  fingerprintSizes: Record<string, number>;
  /** Size assignments the verifier cycles through. */
  verifySizes: Record<string, number>[];
  /** Random trials per verified pair (default 8). */
  trials?: number;
  seed?: number;
}

export interface GeneratorStats {
  /** Distinct graphs enumerated (up to maxOps ops, at most maxOutputs outputs), plus the 0-op graphs (variables). */
  graphs: number;
  /** Graphs left after dropping those with an inner value a smaller graph computes. */
  irreducible: number;
  /** Fingerprint groups with at least two graphs. */
  groups: number;
  /** Ordered pairs in a fingerprint group whose target reads only the source's variables and sizes. */
  candidates: number;
  /** Of those, pairs that failed verification (equal fingerprints, different functions). */
  rejected: number;
  verified: number;
  /** Verified pairs kept: member -> representative and back (the others are their compositions). */
  throughRepresentative: number;
  /** Distinct up to renaming of variables and sizes. */
  afterRenaming: number;
  /** Rules left after dropping those implied by a smaller verified rule (common subgraphs). */
  afterPruning: number;
  seconds: number;
}

export interface GeneratedRules {
  rules: Rule[];
  stats: GeneratorStats;
}

/** A small deterministic generator (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Expr {
  key: string;
  node: Omit<PatternNode, 'in'>;
  inKeys: string[];
  outKeys: string[];
  depth: number;
}

interface ValueInfo {
  shape: Dim[];
  value: Mat;
  fp: string;
}

const fingerprintOf = (shape: readonly Dim[], m: Mat): string => {
  // 10 significant digits: exact for the integer-valued polynomial graphs; exp/relu graphs whose
  // values round differently land in different groups (a missed candidate, never a wrong rule).
  let h = 2166136261;
  for (const x of m.data) {
    const s = Number.isFinite(x) ? x.toPrecision(10) : String(x);
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
    h = Math.imul(h ^ 44, 16777619);
  }
  return `${shape.join(',')}:${(h >>> 0).toString(36)}`;
};

function randomMat(shape: number[], r: () => number, integers: boolean): Mat {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(size);
  for (let i = 0; i < size; i++) data[i] = integers ? Math.floor(r() * 2049) - 1024 : r() * 4 - 2;
  return { shape, data };
}

/** Enumerates graphs, fingerprints them, verifies candidates and prunes; see the file comment. */
export function generateRules(cfg: GeneratorConfig): GeneratedRules {
  const started = performance.now();
  const maxOutputs = cfg.maxOutputs ?? 2;
  const maxVarUses = cfg.maxVarUses;
  const r = rng(cfg.seed ?? 1);
  const values = new Map<string, ValueInfo>();
  for (const v of cfg.vars) {
    const m = randomMat(v.shape.map((d) => dimValue(d, cfg.fingerprintSizes)), r, true);
    values.set(v.name, { shape: [...v.shape], value: m, fp: fingerprintOf(v.shape, m) });
  }
  const rowChoices = [...new Set(cfg.vars.flatMap((v) => v.shape.flatMap(dimSymbols)))].sort();
  const exprs = new Map<string, Expr>();

  /** The expression of op(attrs) on the given values, evaluated once and cached; undefined when ill-typed. */
  const makeExpr = (node: Omit<PatternNode, 'in'>, inKeys: string[]): Expr | undefined => {
    const key = `${node.op}${node.axis !== undefined ? `[${node.axis}${node.at !== undefined ? `,at=${node.at}` : ''}]` : ''}${node.rows !== undefined ? `[rows=${node.rows}]` : ''}(${inKeys.join(',')})`;
    const known = exprs.get(key);
    if (known !== undefined) return known;
    const ins = inKeys.map((k) => values.get(k)!);
    const shapes = inferPattern(node, ins.map((v) => v.shape));
    if (shapes === undefined) return undefined;
    const outs = evalPattern(node, ins.map((v) => v.value), cfg.fingerprintSizes);
    const outKeys = shapes.length === 1 ? [key] : shapes.map((_, i) => `${key}#${i}`);
    outKeys.forEach((k, i) => values.set(k, { shape: shapes[i]!, value: outs[i]!, fp: fingerprintOf(shapes[i]!, outs[i]!) }));
    const depth = 1 + Math.max(0, ...inKeys.map((k) => exprs.get(k.split('#')[0]!)?.depth ?? 0));
    const e: Expr = { key, node, inKeys, outKeys, depth };
    exprs.set(key, e);
    return e;
  };

  /** Every node that can be added to a graph whose values are `avail`. */
  const candidates = (avail: readonly string[]): Expr[] => {
    const out: Expr[] = [];
    const push = (e: Expr | undefined): void => { if (e !== undefined) out.push(e); };
    for (const op of cfg.ops) {
      for (const a of avail) {
        const sa = values.get(a)!.shape;
        switch (op) {
          case 'transpose': case 'relu': case 'exp':
            push(makeExpr({ op }, [a]));
            break;
          case 'sum':
            if (sa.length === 2) for (const axis of [0, 1]) push(makeExpr({ op, axis }, [a]));
            break;
          case 'bcast':
            if (sa.length === 1) for (const rows of rowChoices) push(makeExpr({ op, rows }, [a]));
            break;
          case 'split':
            for (let axis = 0; axis < sa.length; axis++) for (const at of subDims(sa[axis]!)) push(makeExpr({ op, axis, at }, [a]));
            break;
          case 'matmul': case 'add': case 'mul':
            for (const b of avail) {
              const sb = values.get(b)!.shape;
              // add and mul are commutative: one operand order is enumerated, and the matcher tries both.
              if (op !== 'matmul' && b < a) continue;
              if (op === 'matmul' ? sa.length === 2 && sb.length === 2 && sa[1] === sb[0] : sa.join() === sb.join()) push(makeExpr({ op }, [a, b]));
            }
            break;
          case 'cat':
            for (const b of avail) {
              const sb = values.get(b)!.shape;
              if (sa.length !== sb.length) continue;
              for (let axis = 0; axis < sa.length; axis++) if (sa.every((d, i) => i === axis || d === sb[i])) push(makeExpr({ op, axis }, [a, b]));
            }
            break;
        }
      }
    }
    return out;
  };

  // Graphs are sets of expressions (a graph never holds two equal nodes, so the set is canonical);
  // its outputs are the values no node of the graph reads.
  const groups = new Map<string, string[][]>();
  let graphCount = 0;
  const collect = (nodes: string[], outs: string[]): void => {
    graphCount++;
    const sorted = [...outs].sort((a, b) => (values.get(a)!.fp < values.get(b)!.fp ? -1 : 1));
    const fp = sorted.map((o) => values.get(o)!.fp).join('|');
    let g = groups.get(fp);
    if (g === undefined) groups.set(fp, (g = []));
    g.push([...nodes, "=>", ...sorted]);
  };
  const varNames = cfg.vars.map((v) => v.name);
  for (const v of varNames) collect([], [v]);
  if (maxOutputs >= 2) for (let i = 0; i < varNames.length; i++) for (let j = i + 1; j < varNames.length; j++) collect([], [varNames[i]!, varNames[j]!]);
  let level: string[][] = [[]];
  for (let size = 1; size <= cfg.maxOps; size++) {
    const seen = new Set<string>();
    const next: string[][] = [];
    for (const g of level) {
      const avail = [...varNames, ...g.flatMap((k) => exprs.get(k)!.outKeys)];
      for (const e of candidates(avail)) {
        if (g.includes(e.key)) continue;
        const ng = [...g, e.key].sort();
        const id = ng.join('|');
        if (seen.has(id)) continue;
        seen.add(id);
        const reads = ng.flatMap((k) => exprs.get(k)!.inKeys);
        if (maxVarUses !== undefined && varNames.some((v) => reads.filter((x) => x === v).length > maxVarUses)) continue;
        const used = new Set(reads);
        const sinks = ng.flatMap((k) => exprs.get(k)!.outKeys).filter((o) => !used.has(o));
        // Each further node lowers the number of outputs by at most one.
        if (sinks.length - (cfg.maxOps - size) > maxOutputs) continue;
        if (size < cfg.maxOps) next.push(ng);
        if (sinks.length >= 1 && sinks.length <= maxOutputs) collect(ng, sinks);
      }
    }
    level = next;
  }

  // Pattern graphs over the whole vocabulary (unused variables are dropped by canonicalRule).
  const toPattern = (entry: string[]): PatternGraph => {
    const split = entry.indexOf('=>');
    const nodeKeys = entry.slice(0, split).sort((a, b) => exprs.get(a)!.depth - exprs.get(b)!.depth || (a < b ? -1 : 1));
    const id = new Map(varNames.map((v, i) => [v, i]));
    const nodes: PatternNode[] = [];
    for (const k of nodeKeys) {
      const e = exprs.get(k)!;
      nodes.push({ ...e.node, in: e.inKeys.map((i) => id.get(i)!) });
      for (const o of e.outKeys) id.set(o, id.size);
    }
    return { nodes, outputs: entry.slice(split + 1).map((o) => id.get(o)!) };
  };
  const symbolsOf = (g: PatternGraph, withAttrs: boolean): Set<string> => {
    const s = new Set<string>();
    const vs = usedVars(g, cfg.vars.length);
    for (const v of vs) for (const d of cfg.vars[v]!.shape) dimSymbols(d).forEach((x) => s.add(x));
    if (withAttrs) for (const n of g.nodes) for (const d of [n.at, n.rows]) if (d !== undefined) dimSymbols(d).forEach((x) => s.add(x));
    return s;
  };
  const canTarget = (src: PatternGraph, tgt: PatternGraph): boolean => {
    const sv = usedVars(src, cfg.vars.length);
    if (![...usedVars(tgt, cfg.vars.length)].every((v) => sv.has(v))) return false;
    const ss = symbolsOf(src, true);
    return [...symbolsOf(tgt, true)].every((x) => ss.has(x));
  };

  const trials = cfg.trials ?? 8;
  const vr = rng((cfg.seed ?? 1) + 1);

  // A value is reducible when a smaller graph computes it (verified, not only fingerprinted). A graph
  // with a reducible inner value (not an output) is dropped: its rules are implied by
  // the reduction followed by the rules of the smaller graph (TASO's pruning by common subgraphs
  // carried to the enumeration).
  const exprOf = (valueKey: string): Expr | undefined => exprs.get(valueKey.split('#')[0]!);
  const closure = (valueKey: string): string[] => {
    const out = new Set<string>();
    const visit = (k: string): void => {
      const e = exprOf(k);
      if (e === undefined || out.has(e.key)) return;
      out.add(e.key);
      e.inKeys.forEach(visit);
    };
    visit(valueKey);
    return [...out];
  };
  const reducibleMemo = new Map<string, boolean>();
  const reducible = (valueKey: string): boolean => {
    let res = reducibleMemo.get(valueKey);
    if (res !== undefined) return res;
    const nodes = closure(valueKey);
    const mine = toPattern([...nodes, '=>', valueKey]);
    res = (groups.get(values.get(valueKey)!.fp) ?? []).some((m) => {
      const split = m.indexOf('=>');
      return split < nodes.length && m.length - split - 1 === 1 && verifyPair(cfg.vars, mine, toPattern(m), cfg.verifySizes, trials, vr);
    });
    reducibleMemo.set(valueKey, res);
    return res;
  };
  const irreducible = (entry: string[]): boolean => {
    const split = entry.indexOf('=>');
    const outs = entry.slice(split + 1);
    for (const k of entry.slice(0, split)) {
      for (const o of exprs.get(k)!.outKeys) if (!outs.includes(o) && reducible(o)) return false;
    }
    return true;
  };
  let irreducibleGraphs = 0;
  let candidatePairs = 0, rejected = 0, verifiedPairs = 0;
  const verifiedRules: Rule[] = [];
  for (const members of groups.values()) {
    const kept = members.filter(irreducible);
    irreducibleGraphs += kept.length;
    if (kept.length < 2) continue;
    const graphs = kept.map(toPattern);
    for (let i = 0; i < graphs.length; i++) for (let j = 0; j < graphs.length; j++) if (i !== j && canTarget(graphs[i]!, graphs[j]!)) candidatePairs++;
    // Equivalence is transitive: verify each member against a representative of each class found so far.
    const classes: number[][] = [];
    for (let i = 0; i < graphs.length; i++) {
      const home = classes.find((c) => verifyPair(cfg.vars, graphs[c[0]!]!, graphs[i]!, cfg.verifySizes, trials, vr));
      if (home !== undefined) home.push(i);
      else classes.push([i]);
    }
    for (const c of classes) {
      for (const i of c) for (const j of c) if (i !== j && canTarget(graphs[i]!, graphs[j]!)) verifiedPairs++;
      // Any pair of a class is the composition of member -> representative -> member; keep those two
      // directions only (the representative has the fewest ops: the groups list smaller graphs first).
      const rep = c[0]!;
      for (const i of c) {
        for (const j of c) {
          if (i === j || (i !== rep && j !== rep) || !canTarget(graphs[i]!, graphs[j]!)) continue;
          const poly = isPolynomial(graphs[i]!) && isPolynomial(graphs[j]!);
          verifiedRules.push({ vars: cfg.vars, src: graphs[i]!, tgt: graphs[j]!, verified: poly ? 'polynomial' : 'randomized' });
        }
      }
    }
    rejected += countRejected(classes, graphs, canTarget);
  }
  const byKey = new Map<string, Rule>();
  for (const rule of verifiedRules) {
    const k = ruleKey(rule);
    if (!byKey.has(k)) byKey.set(k, canonicalRule(rule));
  }
  const pruned = pruneRules([...byKey.values()]);
  return {
    rules: pruned,
    stats: {
      graphs: graphCount, irreducible: irreducibleGraphs, groups: [...groups.values()].filter((m) => m.length >= 2).length,
      candidates: candidatePairs, rejected, verified: verifiedPairs, throughRepresentative: verifiedRules.length, afterRenaming: byKey.size, afterPruning: pruned.length,
      seconds: (performance.now() - started) / 1000,
    },
  };
}

function countRejected(classes: number[][], graphs: PatternGraph[], canTarget: (a: PatternGraph, b: PatternGraph) => boolean): number {
  let n = 0;
  for (const c of classes) for (const d of classes) {
    if (c === d) continue;
    for (const i of c) for (const j of d) if (canTarget(graphs[i]!, graphs[j]!)) n++;
  }
  return n;
}

/** Variables (ids) that `g`'s outputs depend on. */
export function usedVars(g: PatternGraph, varCount: number): Set<number> {
  const s = new Set<number>();
  const producers: PatternNode[] = [];
  for (const n of g.nodes) for (let k = 0; k < outputCount(n.op); k++) producers.push(n);
  const visit = (v: number): void => {
    if (v < varCount) s.add(v);
    else producers[v - varCount]!.in.forEach(visit);
  };
  g.outputs.forEach(visit);
  return s;
}

/**
 * Whether `a` and `b` (same variables, outputs in order) compute the same values: `trials` random
 * inputs, cycling through `sizes`; exact comparison on integers when both are polynomial, else a
 * relative tolerance of 1e-9 on floats.
 */
export function verifyPair(vars: readonly PatternVar[], a: PatternGraph, b: PatternGraph, sizes: readonly Record<string, number>[], trials: number, r: () => number): boolean {
  if (a.outputs.length !== b.outputs.length) return false;
  const sa = patternShapes(vars, a), sb = patternShapes(vars, b);
  if (sa === undefined || sb === undefined) return false;
  for (let k = 0; k < a.outputs.length; k++) if (sa[a.outputs[k]!]!.join() !== sb[b.outputs[k]!]!.join()) return false;
  const exact = isPolynomial(a) && isPolynomial(b);
  for (let t = 0; t < trials; t++) {
    const sz = sizes[t % sizes.length]!;
    const ins = vars.map((v) => randomMat(v.shape.map((d) => dimValue(d, sz)), r, exact));
    const oa = evalGraph(a, ins, sz), ob = evalGraph(b, ins, sz);
    for (let k = 0; k < oa.length; k++) {
      const x = oa[k]!.data, y = ob[k]!.data;
      if (x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) {
        if (exact ? x[i] !== y[i] : !(Math.abs(x[i]! - y[i]!) <= 1e-9 * (1 + Math.abs(y[i]!)))) return false;
      }
    }
  }
  return true;
}

// ---- pruning ----

/**
 * Rebuilds a side of a rule keeping only what `outputs` need, with values in `subst` read from new
 * variables instead (their producers dropped when nothing else needs them).
 */
function rebuild(varCount: number, g: PatternGraph, newVarCount: number, subst: ReadonlyMap<number, number>, outputs: readonly number[]): PatternGraph {
  const producers: { node: PatternNode; first: number }[] = [];
  let id = varCount;
  for (const n of g.nodes) {
    for (let k = 0; k < outputCount(n.op); k++) producers.push({ node: n, first: id });
    id += outputCount(n.op);
  }
  const needed = new Set<PatternNode>();
  const visit = (v: number): void => {
    if (subst.has(v) || v < varCount) return;
    const p = producers[v - varCount]!;
    if (needed.has(p.node)) return;
    needed.add(p.node);
    p.node.in.forEach(visit);
  };
  outputs.forEach(visit);
  const map = new Map<number, number>();
  for (let v = 0; v < varCount; v++) map.set(v, v);
  for (const [v, nv] of subst) map.set(v, nv);
  const nodes: PatternNode[] = [];
  let next = newVarCount;
  let first = varCount;
  for (const n of g.nodes) {
    if (needed.has(n)) {
      nodes.push({ ...n, in: n.in.map((v) => map.get(v)!) });
      for (let k = 0; k < outputCount(n.op); k++) if (!map.has(first + k)) map.set(first + k, next + k);
      next += outputCount(n.op);
    }
    first += outputCount(n.op);
  }
  return { nodes, outputs: outputs.map((v) => map.get(v)!) };
}

/**
 * Drops rules implied by smaller verified ones (TASO section 3.3):
 * - a common subgraph on the input side (the same expression of the variables in source and target):
 *   the rule with that expression replaced by a new variable is in the set;
 * - a common output of a two-output rule: the one-output rule on the other output is in the set;
 * - the same top op in source and target: every pair of differing operands is a rule in the set.
 * `rules` must be canonical and distinct; the result keeps their order.
 */
export function pruneRules(rules: readonly Rule[]): Rule[] {
  const keys = new Set(rules.map(ruleKey));
  const has = (r: Rule): boolean => keys.has(ruleKey(r));
  return rules.filter((rule) => !isImplied(rule, has));
}

function isImplied(rule: Rule, has: (r: Rule) => boolean): boolean {
  const n = rule.vars.length;
  const st = expressionTexts(rule.vars, rule.src), tt = expressionTexts(rule.vars, rule.tgt);
  // Two outputs computed independently on both sides: each output pair is a smaller rule (or equal).
  if (rule.src.outputs.length === 2 && independentOutputs(n, rule.src) && independentOutputs(n, rule.tgt)) return true;
  const shapes = patternShapes(rule.vars, rule.src)!;
  // Common subexpressions (node values present in both sides).
  const tgtIndex = new Map<string, number>();
  tt.forEach((t, v) => { if (v >= n) tgtIndex.set(t, v); });
  for (let v = n; v < st.length; v++) {
    const w = tgtIndex.get(st[v]!);
    if (w === undefined) continue;
    const vars = [...rule.vars, { name: `v${n}`, shape: shapes[v]! }];
    const reduced: Rule = {
      vars, verified: rule.verified,
      src: rebuild(n, rule.src, n + 1, new Map([[v, n]]), rule.src.outputs),
      tgt: rebuild(n, rule.tgt, n + 1, new Map([[w, n]]), rule.tgt.outputs),
    };
    if (reduced.src.nodes.length === rule.src.nodes.length && reduced.tgt.nodes.length === rule.tgt.nodes.length) continue;
    if (has(canonicalRule(reduced))) return true;
  }
  // A common output of a two-output rule.
  if (rule.src.outputs.length === 2) {
    for (let k = 0; k < 2; k++) {
      if (st[rule.src.outputs[k]!] !== tt[rule.tgt.outputs[k]!]) continue;
      const other = 1 - k;
      const reduced: Rule = {
        vars: rule.vars, verified: rule.verified,
        src: rebuild(n, rule.src, n, new Map(), [rule.src.outputs[other]!]),
        tgt: rebuild(n, rule.tgt, n, new Map(), [rule.tgt.outputs[other]!]),
      };
      if (has(canonicalRule(reduced))) return true;
    }
  }
  // The same top op: implied by the rules on the operands that differ.
  if (rule.src.outputs.length === 1) {
    const so = rule.src.outputs[0]!, to = rule.tgt.outputs[0]!;
    if (so >= n && to >= n) {
      const sn = producerOf(n, rule.src, so), tn = producerOf(n, rule.tgt, to);
      if (sn.op === tn.op && outputCount(sn.op) === 1 && sn.axis === tn.axis && sn.at === tn.at && sn.rows === tn.rows && sn.in.length === tn.in.length) {
        let differing = 0, implied = true;
        sn.in.forEach((a, i) => {
          const b = tn.in[i]!;
          if (st[a] === tt[b]) return;
          differing++;
          const sub: Rule = { vars: rule.vars, verified: rule.verified, src: rebuild(n, rule.src, n, new Map(), [a]), tgt: rebuild(n, rule.tgt, n, new Map(), [b]) };
          if (!has(canonicalRule(sub))) implied = false;
        });
        if (differing > 0 && implied) return true;
      }
    }
  }
  return false;
}

/** Whether the two outputs of `g` share no node. */
function independentOutputs(varCount: number, g: PatternGraph): boolean {
  const nodesOf = (v: number): Set<PatternNode> => {
    const out = new Set<PatternNode>();
    const visit = (x: number): void => {
      if (x < varCount) return;
      const node = producerOf(varCount, g, x);
      if (out.has(node)) return;
      out.add(node);
      node.in.forEach(visit);
    };
    visit(v);
    return out;
  };
  const a = nodesOf(g.outputs[0]!);
  return ![...nodesOf(g.outputs[1]!)].some((x) => a.has(x));
}

function producerOf(varCount: number, g: PatternGraph, v: number): PatternNode {
  let id = varCount;
  for (const node of g.nodes) {
    if (v < id + outputCount(node.op)) return node;
    id += outputCount(node.op);
  }
  throw new Error(`substitutions: value ${v} has no producer.`);
}

// ---- the vocabulary used for the committed rule set ----

/**
 * TASO's generator runs over a handful of input tensors. These cover the shapes real layers have:
 * activations X [n, k] and Y [n, j] with the same rows, weights W, V [k, m] (equal shapes, for
 * distributivity), U [k, p] (another output width, for merging), Z [j, m] (for sums of products) and
 * a bias b [m].
 */
export function defaultVocabulary(): PatternVar[] {
  return [
    { name: 'X', shape: ['n', 'k'] },
    { name: 'Y', shape: ['n', 'j'] },
    { name: 'W', shape: ['k', 'm'] },
    { name: 'V', shape: ['k', 'm'] },
    { name: 'U', shape: ['k', 'p'] },
    { name: 'Z', shape: ['j', 'm'] },
    { name: 'b', shape: ['m'] },
  ];
}

/** The configuration of the committed rule set (bench/substitution-rules.ts regenerates it). */
export function defaultGeneratorConfig(): GeneratorConfig {
  return {
    vars: defaultVocabulary(),
    ops: ['matmul', 'add', 'mul', 'transpose', 'relu', 'cat', 'split', 'sum', 'bcast'],
    maxOps: 3,
    // A variable read three times or more in three ops makes rules like cat(cat(x, x), x) -> ...: a
    // vocabulary restriction (like TASO's), not a pruning argument.
    maxVarUses: 2,
    fingerprintSizes: { n: 3, k: 4, j: 5, m: 6, p: 7 },
    verifySizes: [
      { n: 2, k: 3, j: 4, m: 5, p: 6 },
      { n: 1, k: 1, j: 2, m: 1, p: 3 },
      { n: 4, k: 2, j: 1, m: 3, p: 1 },
      { n: 3, k: 5, j: 3, m: 2, p: 2 },
    ],
    trials: 8,
    seed: 1,
  };
}
