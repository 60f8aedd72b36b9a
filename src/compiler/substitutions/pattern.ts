// Pattern graphs: the small graphs a substitution rewrites (TASO's "source" and "target"). A pattern
// is a DAG of pattern ops over variables whose shapes are symbolic: a dimension is a sum of symbols
// (`k`, `m+p`) or `1`, so one rule covers every size its symbols may take. Each pattern op stands for
// one tessera primitive on rank-1/rank-2 tensors (match.ts maps them onto the IR):
//   matmul -> matmul        add, mul, relu, exp -> the same primitive
//   transpose -> permute [1, 0]
//   cat(axis) -> cat        split(axis, at) -> two slices: [0, at) and [at, end)
//   sum(axis) -> sum over that axis of a matrix (keepdim false)
//   bcast(rows) -> expand of a vector [b] to [rows, b] (how the traced code broadcasts a bias)
// This file holds the op table (symbolic shape inference and a float64 reference evaluator), the
// serialization of a pattern as expression trees and the canonical form used to deduplicate rules.

export type Dim = string;
export type SymShape = readonly Dim[];

export const PATTERN_OPS = ['matmul', 'add', 'mul', 'transpose', 'relu', 'exp', 'cat', 'split', 'sum', 'bcast'] as const;
export type PatternOp = (typeof PATTERN_OPS)[number];

export interface PatternNode {
  op: PatternOp;
  /** Value ids of the inputs (variables are 0..vars.length-1, node outputs follow in node order). */
  in: number[];
  /** cat, split, sum: the axis. */
  axis?: number;
  /** split: the size of the first part. */
  at?: Dim;
  /** bcast: the number of rows. */
  rows?: Dim;
}

export interface PatternVar {
  name: string;
  shape: Dim[];
}

/** One side of a rule: nodes over the rule's variables; `outputs` are value ids. */
export interface PatternGraph {
  nodes: PatternNode[];
  outputs: number[];
}

/** A substitution: `src` and `tgt` compute the same outputs (in order) from the same variables. */
export interface Rule {
  vars: PatternVar[];
  src: PatternGraph;
  tgt: PatternGraph;
  /**
   * How it was verified: 'polynomial' rules (matmul, add, mul, transpose, cat, split, sum, bcast)
   * were checked exactly on random integers (a Schwartz-Zippel bound applies); 'randomized' ones
   * (relu, exp) on random floats within a relative tolerance.
   */
  verified: 'polynomial' | 'randomized';
}

export const outputCount = (op: PatternOp): number => (op === 'split' ? 2 : 1);

// ---- symbolic dimensions ----

export function dimParts(d: Dim): string[] {
  return d.split('+');
}

export function dimAdd(a: Dim, b: Dim): Dim {
  return [...dimParts(a), ...dimParts(b)].sort().join('+');
}

/** total - part as a multiset of symbols, or undefined when part is not a proper sub-sum. */
export function dimSub(total: Dim, part: Dim): Dim | undefined {
  const rest = dimParts(total);
  for (const p of dimParts(part)) {
    const i = rest.indexOf(p);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return rest.length === 0 ? undefined : rest.join('+');
}

/** The proper, non-empty sub-sums of a dimension (the split points of a concatenated axis). */
export function subDims(d: Dim): Dim[] {
  const parts = dimParts(d);
  const out = new Set<Dim>();
  for (let mask = 1; mask < (1 << parts.length) - 1; mask++) out.add(parts.filter((_, i) => mask & (1 << i)).sort().join('+'));
  return [...out];
}

export function dimSymbols(d: Dim): string[] {
  return dimParts(d).filter((p) => p !== '1');
}

export function dimValue(d: Dim, sizes: Readonly<Record<string, number>>): number {
  let s = 0;
  for (const p of dimParts(d)) {
    if (p === '1') s += 1;
    else {
      const v = sizes[p];
      if (v === undefined) throw new Error(`substitutions: dimension symbol '${p}' has no size.`);
      s += v;
    }
  }
  return s;
}

const sameShape = (a: SymShape, b: SymShape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** Output shapes of a pattern op, or undefined when the inputs do not type-check. */
export function inferPattern(n: Omit<PatternNode, 'in'>, ins: readonly SymShape[]): Dim[][] | undefined {
  const [a, b] = ins;
  switch (n.op) {
    case 'matmul':
      return a!.length === 2 && b!.length === 2 && a![1] === b![0] ? [[a![0]!, b![1]!]] : undefined;
    case 'add':
    case 'mul':
      return sameShape(a!, b!) ? [[...a!]] : undefined;
    case 'transpose':
      return a!.length === 2 ? [[a![1]!, a![0]!]] : undefined;
    case 'relu':
    case 'exp':
      return [[...a!]];
    case 'cat': {
      const ax = n.axis!;
      if (a!.length !== b!.length || ax >= a!.length || !a!.every((d, i) => i === ax || d === b![i])) return undefined;
      const s = [...a!];
      s[ax] = dimAdd(a![ax]!, b![ax]!);
      return [s];
    }
    case 'split': {
      const ax = n.axis!;
      if (ax >= a!.length) return undefined;
      const rest = dimSub(a![ax]!, n.at!);
      if (rest === undefined) return undefined;
      const s0 = [...a!], s1 = [...a!];
      s0[ax] = n.at!;
      s1[ax] = rest;
      return [s0, s1];
    }
    case 'sum':
      return a!.length === 2 && n.axis! < 2 ? [[a![1 - n.axis!]!]] : undefined;
    case 'bcast':
      return a!.length === 1 ? [[n.rows!, a![0]!]] : undefined;
  }
}

// ---- float64 reference evaluation ----

export interface Mat {
  shape: number[];
  data: Float64Array;
}

/** Evaluates one pattern op on float64 row-major tensors (the concrete sizes come from the inputs and `sizes`). */
export function evalPattern(n: Omit<PatternNode, 'in'>, ins: readonly Mat[], sizes: Readonly<Record<string, number>>): Mat[] {
  const [a, b] = ins;
  switch (n.op) {
    case 'matmul': {
      const [r, k] = a!.shape as [number, number];
      const c = b!.shape[1]!;
      const out = new Float64Array(r * c);
      for (let i = 0; i < r; i++) {
        for (let p = 0; p < k; p++) {
          const x = a!.data[i * k + p]!;
          for (let j = 0; j < c; j++) out[i * c + j]! += x * b!.data[p * c + j]!;
        }
      }
      return [{ shape: [r, c], data: out }];
    }
    case 'add':
    case 'mul': {
      const out = new Float64Array(a!.data.length);
      for (let i = 0; i < out.length; i++) out[i] = n.op === 'add' ? a!.data[i]! + b!.data[i]! : a!.data[i]! * b!.data[i]!;
      return [{ shape: [...a!.shape], data: out }];
    }
    case 'transpose': {
      const [r, c] = a!.shape as [number, number];
      const out = new Float64Array(r * c);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a!.data[i * c + j]!;
      return [{ shape: [c, r], data: out }];
    }
    case 'relu':
      return [{ shape: [...a!.shape], data: a!.data.map((x) => (x > 0 ? x : 0)) }];
    case 'exp':
      return [{ shape: [...a!.shape], data: a!.data.map(Math.exp) }];
    case 'cat': {
      if (a!.shape.length === 1) return [{ shape: [a!.shape[0]! + b!.shape[0]!], data: Float64Array.from([...a!.data, ...b!.data]) }];
      if (n.axis === 0) return [{ shape: [a!.shape[0]! + b!.shape[0]!, a!.shape[1]!], data: Float64Array.from([...a!.data, ...b!.data]) }];
      const [r, c1] = a!.shape as [number, number];
      const c2 = b!.shape[1]!;
      const out = new Float64Array(r * (c1 + c2));
      for (let i = 0; i < r; i++) {
        out.set(a!.data.subarray(i * c1, (i + 1) * c1), i * (c1 + c2));
        out.set(b!.data.subarray(i * c2, (i + 1) * c2), i * (c1 + c2) + c1);
      }
      return [{ shape: [r, c1 + c2], data: out }];
    }
    case 'split': {
      const at = dimValue(n.at!, sizes);
      if (a!.shape.length === 1) {
        return [{ shape: [at], data: a!.data.slice(0, at) }, { shape: [a!.shape[0]! - at], data: a!.data.slice(at) }];
      }
      const [r, c] = a!.shape as [number, number];
      if (n.axis === 0) return [{ shape: [at, c], data: a!.data.slice(0, at * c) }, { shape: [r - at, c], data: a!.data.slice(at * c) }];
      const o0 = new Float64Array(r * at), o1 = new Float64Array(r * (c - at));
      for (let i = 0; i < r; i++) {
        o0.set(a!.data.subarray(i * c, i * c + at), i * at);
        o1.set(a!.data.subarray(i * c + at, (i + 1) * c), i * (c - at));
      }
      return [{ shape: [r, at], data: o0 }, { shape: [r, c - at], data: o1 }];
    }
    case 'sum': {
      const [r, c] = a!.shape as [number, number];
      const out = new Float64Array(n.axis === 0 ? c : r);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[n.axis === 0 ? j : i]! += a!.data[i * c + j]!;
      return [{ shape: [out.length], data: out }];
    }
    case 'bcast': {
      const rows = dimValue(n.rows!, sizes);
      const c = a!.shape[0]!;
      const out = new Float64Array(rows * c);
      for (let i = 0; i < rows; i++) out.set(a!.data, i * c);
      return [{ shape: [rows, c], data: out }];
    }
  }
}

/** Shapes of every value of `g` (variables first), or undefined when a node does not type-check. */
export function patternShapes(vars: readonly PatternVar[], g: PatternGraph): Dim[][] | undefined {
  const shapes: Dim[][] = vars.map((v) => [...v.shape]);
  for (const n of g.nodes) {
    const outs = inferPattern(n, n.in.map((i) => shapes[i]!));
    if (outs === undefined) return undefined;
    shapes.push(...outs);
  }
  return shapes;
}

/** Evaluates `g`'s outputs for the given variable values. */
export function evalGraph(g: PatternGraph, inputs: readonly Mat[], sizes: Readonly<Record<string, number>>): Mat[] {
  const vals: Mat[] = [...inputs];
  for (const n of g.nodes) vals.push(...evalPattern(n, n.in.map((i) => vals[i]!), sizes));
  return g.outputs.map((o) => vals[o]!);
}

/** Whether `g` uses only ops whose results are polynomials in the inputs (exact on integers). */
export function isPolynomial(g: PatternGraph): boolean {
  return g.nodes.every((n) => n.op !== 'relu' && n.op !== 'exp');
}

// ---- serialization and canonical form ----

export function attrText(n: Omit<PatternNode, 'in'>): string {
  const parts: string[] = [];
  if (n.axis !== undefined) parts.push(String(n.axis));
  if (n.at !== undefined) parts.push(`at=${n.at}`);
  if (n.rows !== undefined) parts.push(`rows=${n.rows}`);
  return parts.length > 0 ? `[${parts.join(',')}]` : '';
}

/** Each value of `g` as an expression tree over variable names, e.g. `matmul(X,cat[1](W,U))`. */
export function expressionTexts(vars: readonly PatternVar[], g: PatternGraph): string[] {
  const texts = vars.map((v) => v.name);
  for (const n of g.nodes) {
    const body = `${n.op}${attrText(n)}(${n.in.map((i) => texts[i]).join(',')})`;
    if (outputCount(n.op) === 1) texts.push(body);
    else for (let k = 0; k < outputCount(n.op); k++) texts.push(`${body}#${k}`);
  }
  return texts;
}

/** A rule as readable text: `matmul(X,W), matmul(X,U) => split[1,at=m](matmul(X,cat[1](W,U)))#0, ...#1`. */
export function ruleText(r: Rule): string {
  const s = expressionTexts(r.vars, r.src), t = expressionTexts(r.vars, r.tgt);
  return `${r.src.outputs.map((o) => s[o]).join(', ')} => ${r.tgt.outputs.map((o) => t[o]).join(', ')}`;
}

/**
 * The rule with variables renamed v0, v1, ... and dimension symbols d0, d1, ... in order of first
 * appearance (source outputs first, then target), unused variables dropped: two rules equal up to
 * renaming have equal canonical forms (TASO's first pruning, "input tensor renaming").
 */
export function canonicalRule(r: Rule): Rule {
  const varOrder: number[] = [];
  const visit = (g: PatternGraph, v: number): void => {
    if (v < r.vars.length) {
      if (!varOrder.includes(v)) varOrder.push(v);
      return;
    }
    const n = nodeOf(r.vars.length, g, v);
    for (const i of n.in) visit(g, i);
  };
  for (const o of r.src.outputs) visit(r.src, o);
  for (const o of r.tgt.outputs) visit(r.tgt, o);
  const symOrder = new Map<string, string>();
  const sym = (s: string): string => {
    if (s === '1') return s;
    let c = symOrder.get(s);
    if (c === undefined) {
      c = `d${symOrder.size}`;
      symOrder.set(s, c);
    }
    return c;
  };
  const dim = (d: Dim): Dim => dimParts(d).map(sym).sort().join('+');
  const vars = varOrder.map((v, i) => ({ name: `v${i}`, shape: r.vars[v]!.shape.map(dim) }));
  const varMap = new Map(varOrder.map((v, i) => [v, i]));
  const mapGraph = (g: PatternGraph): PatternGraph => {
    const shift = vars.length - r.vars.length;
    const id = (v: number): number => (v < r.vars.length ? varMap.get(v)! : v + shift);
    return {
      nodes: g.nodes.map((n) => {
        const m: PatternNode = { op: n.op, in: n.in.map(id) };
        if (n.axis !== undefined) m.axis = n.axis;
        if (n.at !== undefined) m.at = dim(n.at);
        if (n.rows !== undefined) m.rows = dim(n.rows);
        return m;
      }),
      outputs: g.outputs.map(id),
    };
  };
  return { vars, src: mapGraph(r.src), tgt: mapGraph(r.tgt), verified: r.verified };
}

/** The node of `g` producing value `v` (v >= the number of variables). */
export function nodeOf(varCount: number, g: PatternGraph, v: number): PatternNode {
  let id = varCount;
  for (const n of g.nodes) {
    id += outputCount(n.op);
    if (v < id) return n;
  }
  throw new Error(`substitutions: value ${v} is not defined by the pattern.`);
}

/** A key equal for rules equal up to renaming of variables and dimension symbols. */
export function ruleKey(r: Rule): string {
  const c = canonicalRule(r);
  return `${c.vars.map((v) => `${v.name}:[${v.shape.join(',')}]`).join(' ')} | ${ruleText(c)}`;
}

export function opCount(g: PatternGraph): number {
  return g.nodes.length;
}
