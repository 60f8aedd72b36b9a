// The dataflow-graph IR: nodes (op, input values, attrs, output values) over values (shape, dtype,
// producer). Ops are primitives (src/ops/primitives.ts) or graph-level ops registered in
// graph-ops.ts (fused kernels, cond, whileLoop, split). A graph also records where its non-input
// values come from: constants (tensors baked in), parameters (leaf tensors read live at every call,
// so a compiled training step sees updated weights), and side effects the caller applies after a
// run: writes of new data into a tensor (`assign`) and of a new `.grad`.
import type { DType } from '../core/dtype.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';

export type ValueId = number;

export type ValueKind = 'input' | 'constant' | 'parameter' | 'node';

export interface GraphValue {
  readonly id: ValueId;
  readonly shape: readonly number[];
  readonly dtype: DType;
  kind: ValueKind;
  /** Index into graph.nodes of the producing node (kind 'node'). */
  producer?: number;
}

export interface GraphNode {
  op: string;
  inputs: ValueId[];
  attrs: unknown;
  outputs: ValueId[];
  /**
   * Set on the nodes a checkpointed block's recomputation recorded (traced backward): equal to
   * forward nodes, but kept apart by common-subexpression elimination and matmul merging, so that
   * the forward's activations die early and backward recomputes them (rematerialization).
   */
  remat?: number;
}

/** A side effect applied after a run: copy `value` into `target`'s data, or set `target.grad`. */
export interface GraphWrite {
  kind: 'data' | 'grad';
  target: Tensor;
  value: ValueId;
}

/** A value the traced code read (item/toArray/data): the rest of the graph assumed `observed`. */
export interface GraphGuard {
  value: ValueId;
  observed: Float64Array;
}

export class Graph {
  readonly values = new Map<ValueId, GraphValue>();
  nodes: GraphNode[] = [];
  inputs: ValueId[] = [];
  outputs: ValueId[] = [];
  readonly constants = new Map<ValueId, Tensor>();
  readonly parameters = new Map<ValueId, Tensor>();
  writes: GraphWrite[] = [];
  guards: GraphGuard[] = [];
  private nextId = 0;

  /** A fresh value id (ids are never reused, so printouts stay stable across passes). */
  newValue(shape: readonly number[], dtype: DType, kind: ValueKind): ValueId {
    const id = this.nextId++;
    this.values.set(id, { id, shape: [...shape], dtype, kind });
    return id;
  }

  value(id: ValueId): GraphValue {
    const v = this.values.get(id);
    if (v === undefined) throw new TesseraError(`graph: value %${id} does not exist in this graph.`);
    return v;
  }

  addInput(shape: readonly number[], dtype: DType): ValueId {
    const id = this.newValue(shape, dtype, 'input');
    this.inputs.push(id);
    return id;
  }

  addConstant(t: Tensor): ValueId {
    const id = this.newValue(t.shape, t.dtype, 'constant');
    this.constants.set(id, t);
    return id;
  }

  addParameter(t: Tensor): ValueId {
    const id = this.newValue(t.shape, t.dtype, 'parameter');
    this.parameters.set(id, t);
    return id;
  }

  /** Appends a node producing new values of the given types; returns their ids. */
  addNode(op: string, inputs: readonly ValueId[], attrs: unknown, outTypes: readonly { shape: readonly number[]; dtype: DType }[]): ValueId[] {
    const index = this.nodes.length;
    const outputs = outTypes.map((t) => {
      const id = this.newValue(t.shape, t.dtype, 'node');
      this.values.get(id)!.producer = index;
      return id;
    });
    this.nodes.push({ op, inputs: [...inputs], attrs, outputs });
    return outputs;
  }

  /** Recomputes producer indices after nodes were reordered, removed or inserted. */
  reindex(): void {
    this.nodes.forEach((n, i) => {
      for (const o of n.outputs) this.value(o).producer = i;
    });
  }

  /** Every value id used as an input of a node, an output, a write or a guard. */
  uses(): Map<ValueId, number> {
    const count = new Map<ValueId, number>();
    const bump = (v: ValueId): void => { count.set(v, (count.get(v) ?? 0) + 1); };
    for (const n of this.nodes) n.inputs.forEach(bump);
    this.outputs.forEach(bump);
    for (const w of this.writes) bump(w.value);
    for (const g of this.guards) bump(g.value);
    return count;
  }

  /** Replaces every use of `from` by `to` (node inputs, outputs, writes, guards). */
  replaceAllUses(from: ValueId, to: ValueId): void {
    if (from === to) return;
    for (const n of this.nodes) n.inputs = n.inputs.map((v) => (v === from ? to : v));
    this.outputs = this.outputs.map((v) => (v === from ? to : v));
    for (const w of this.writes) if (w.value === from) w.value = to;
    for (const g of this.guards) if (g.value === from) g.value = to;
  }

  /** A deep copy of the structure (tensors of constants and parameters are shared, not copied). */
  clone(): Graph {
    const g = new Graph();
    for (const [id, v] of this.values) g.values.set(id, { ...v, shape: [...v.shape] });
    g.nodes = this.nodes.map((n) => ({ op: n.op, inputs: [...n.inputs], attrs: n.attrs, outputs: [...n.outputs], ...(n.remat === undefined ? {} : { remat: n.remat }) }));
    g.inputs = [...this.inputs];
    g.outputs = [...this.outputs];
    for (const [k, t] of this.constants) g.constants.set(k, t);
    for (const [k, t] of this.parameters) g.parameters.set(k, t);
    g.writes = this.writes.map((w) => ({ ...w }));
    g.guards = this.guards.map((x) => ({ value: x.value, observed: x.observed }));
    g.nextId = this.nextId;
    return g;
  }

  /** Drops values that are neither defined by a node nor an input/constant/parameter in use. */
  pruneValues(): void {
    const live = new Set<ValueId>([...this.inputs, ...this.outputs]);
    for (const n of this.nodes) {
      n.inputs.forEach((v) => live.add(v));
      n.outputs.forEach((v) => live.add(v));
    }
    for (const w of this.writes) live.add(w.value);
    for (const x of this.guards) live.add(x.value);
    for (const id of [...this.values.keys()]) {
      if (!live.has(id)) {
        this.values.delete(id);
        this.constants.delete(id);
        this.parameters.delete(id);
      }
    }
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** One node a line, like a jaxpr: `%3 = matmul %1 %2 : [32,10] float32`. */
  toString(): string {
    const typeOf = (id: ValueId): string => {
      const v = this.value(id);
      return `${fmtShape(v.shape)} ${v.dtype}`;
    };
    const lines: string[] = [];
    lines.push(`graph(${this.inputs.map((i) => `%${i}: ${typeOf(i)}`).join(', ')}) {`);
    for (const [id] of this.parameters) lines.push(`  param %${id} : ${typeOf(id)}`);
    for (const [id, t] of this.constants) lines.push(`  const %${id} = ${constantText(t)} : ${typeOf(id)}`);
    for (const n of this.nodes) {
      const attrs = formatAttrs(n.attrs);
      const lhs = n.outputs.map((o) => `%${o}`).join(', ');
      const types = n.outputs.map(typeOf).join(', ');
      lines.push(`  ${lhs} = ${n.op}${attrs ? `[${attrs}]` : ''} ${n.inputs.map((i) => `%${i}`).join(' ')} : ${types}`);
    }
    for (const w of this.writes) lines.push(`  write ${w.kind} of tensor #${w.target.id} <- %${w.value}`);
    for (const x of this.guards) lines.push(`  guard %${x.value} == ${formatObserved(x.observed)}`);
    lines.push(`  return ${this.outputs.map((o) => `%${o}`).join(', ')}`);
    lines.push('}');
    return lines.join('\n');
  }

  /** Graphviz DOT: values as edges, nodes as boxes, inputs/params/constants as ellipses. */
  toDot(name = 'graph'): string {
    const lines = [`digraph ${JSON.stringify(name)} {`, '  rankdir=TB;', '  node [fontname="monospace", fontsize=10];'];
    const source = new Map<ValueId, string>();
    for (const id of this.inputs) {
      lines.push(`  v${id} [label="input %${id}\\n${fmtShape(this.value(id).shape)}", shape=ellipse, style=filled, fillcolor="#dbeafe"];`);
      source.set(id, `v${id}`);
    }
    for (const [id] of this.parameters) {
      lines.push(`  v${id} [label="param %${id}\\n${fmtShape(this.value(id).shape)}", shape=ellipse, style=filled, fillcolor="#fef3c7"];`);
      source.set(id, `v${id}`);
    }
    for (const [id] of this.constants) {
      lines.push(`  v${id} [label="const %${id}\\n${fmtShape(this.value(id).shape)}", shape=ellipse];`);
      source.set(id, `v${id}`);
    }
    this.nodes.forEach((n, i) => {
      lines.push(`  n${i} [label="${n.op}\\n${n.outputs.map((o) => fmtShape(this.value(o).shape)).join(' ')}", shape=box];`);
      for (const o of n.outputs) source.set(o, `n${i}`);
    });
    this.nodes.forEach((n, i) => {
      for (const v of n.inputs) {
        const from = source.get(v);
        if (from !== undefined) lines.push(`  ${from} -> n${i} [label="%${v}"];`);
      }
    });
    this.outputs.forEach((o, k) => {
      lines.push(`  out${k} [label="output ${k}", shape=plaintext];`);
      const from = source.get(o);
      if (from !== undefined) lines.push(`  ${from} -> out${k} [label="%${o}"];`);
    });
    lines.push('}');
    return lines.join('\n');
  }
}

function formatObserved(a: Float64Array): string {
  return a.length === 1 ? String(a[0]) : `[${Array.from(a.slice(0, 4)).join(', ')}${a.length > 4 ? ', ...' : ''}]`;
}

function constantText(t: Tensor): string {
  if (t.size === 1 && !t.isDisposed) return String(t.data()[0]);
  return `tensor#${t.id}`;
}

/** Attributes as `k=v` pairs; nested graphs (cond/while bodies) print as their node counts. */
export function formatAttrs(attrs: unknown): string {
  if (attrs === null || typeof attrs !== 'object') return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(attrs as Record<string, unknown>)) {
    if (v instanceof Graph) parts.push(`${k}=<graph ${v.nodes.length} nodes>`);
    else if (typeof v === 'object' && v !== null && Array.isArray((v as { body?: unknown }).body)) parts.push(`${k}=${formatKernel(v as KernelLike)}`);
    else parts.push(`${k}=${JSON.stringify(v)}`);
  }
  return parts.join(', ');
}

interface KernelLike {
  body: { kind: string; op?: string; input?: number; value?: number }[];
  reduce?: { op: string; axes: number[] };
}

/** A fused kernel's body in one line: `in0 in1 add relu` (postfix), then the reduction if any. */
function formatKernel(k: KernelLike): string {
  const terms = k.body.map((e) => (e.kind === 'load' ? `in${e.input}` : e.kind === 'literal' ? String(e.value) : e.op ?? '?'));
  return `<${terms.join(' ')}${k.reduce ? ` | ${k.reduce.op}(${k.reduce.axes.join(',')})` : ''}>`;
}
