// The reference executor: runs a graph node by node through `bind` (so on any backend, with the
// tape recorded when grad mode is on), checks value guards as soon as the guarded value exists
// (the graph's pieces between reads), and applies the graph's writes at the end.
import { TesseraError, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import type { Graph, GraphNode, GraphWrite, ValueId } from './graph.js';
import { opDef } from './graph-ops.js';
import { applyWrites } from './state.js';
import { untracedRead } from './trace.js';

/** Thrown when a value the traced code read differs now: the caller retraces. */
export class GuardFailure extends TesseraError {
  constructor(readonly value: ValueId, readonly expected: Float64Array, readonly actual: Float64Array) {
    super(`guard failed: traced code read %${value} as ${preview(expected)} but it is now ${preview(actual)}; the function must be traced again.`);
  }
}

function preview(a: Float64Array): string {
  return a.length === 1 ? String(a[0]) : `[${Array.from(a.slice(0, 4)).join(', ')}${a.length > 4 ? ', ...' : ''}]`;
}

export function checkGuard(value: ValueId, expected: Float64Array, t: Tensor): void {
  const actual = Float64Array.from(untracedRead(() => t.data()));
  let same = actual.length === expected.length;
  for (let i = 0; same && i < actual.length; i++) same = Object.is(actual[i], expected[i]) || actual[i] === expected[i];
  if (!same) throw new GuardFailure(value, expected, actual);
}

export interface InterpretOptions {
  /** Apply the graph's writes (assign / .grad) after the run (default true). */
  applyWrites?: boolean;
  /** Dispose each intermediate right after its last use (to measure peak memory like the planner). */
  disposeDead?: boolean;
  /**
   * Runs a node in place of its op's `execute` (a backend's kernel for a compiler-fused op): the
   * node's outputs, or undefined to run the op as usual. Used by compiled, non-differentiable
   * replays; the outputs need not record a tape.
   */
  execute?: (node: GraphNode, inputs: readonly Tensor[]) => Tensor[] | undefined;
  /** Applies the graph's writes in place of `applyWrites` (e.g. as copies inside a backend's memory). */
  writer?: (writes: { write: GraphWrite; value: Tensor }[], outputs: readonly Tensor[]) => void;
}

export function checkInputs(g: Graph, inputs: readonly Tensor[], who: string): void {
  if (inputs.length !== g.inputs.length) {
    throw new TesseraError(`${who}: the graph takes ${g.inputs.length} input(s), got ${inputs.length}.`);
  }
  g.inputs.forEach((id, i) => {
    const v = g.value(id);
    const t = inputs[i]!;
    if (!shapesEqual(v.shape, t.shape) || v.dtype !== t.dtype) {
      throw new TesseraError(`${who}: input ${i} should be ${fmtShape(v.shape)} ${v.dtype}, got ${fmtShape(t.shape)} ${t.dtype}.`);
    }
  });
}

/** Runs `g` on `inputs`; returns the graph's outputs (in order). */
export function interpret(g: Graph, inputs: readonly Tensor[], opts: InterpretOptions = {}): Tensor[] {
  checkInputs(g, inputs, 'interpret');
  const env = new Map<ValueId, Tensor>();
  g.inputs.forEach((id, i) => env.set(id, inputs[i]!));
  for (const [id, t] of g.constants) env.set(id, t);
  for (const [id, t] of g.parameters) env.set(id, t);
  const guardsByValue = new Map<ValueId, Float64Array[]>();
  for (const x of g.guards) guardsByValue.set(x.value, [...(guardsByValue.get(x.value) ?? []), x.observed]);
  const checkGuardsOf = (id: ValueId): void => {
    for (const expected of guardsByValue.get(id) ?? []) checkGuard(id, expected, env.get(id)!);
  };
  for (const id of env.keys()) checkGuardsOf(id);

  const lastUse = new Map<ValueId, number>();
  const pinned = new Set<ValueId>([...g.outputs, ...g.writes.map((w) => w.value)]);
  if (opts.disposeDead) g.nodes.forEach((n, i) => n.inputs.forEach((v) => lastUse.set(v, i)));
  // An op may hand back a tensor object it was given (or one another value holds): such an object
  // is disposed only once every value naming it is dead, and never when the caller owns it.
  const external = new Set<Tensor>(env.values());
  const namedBy = new Map<Tensor, Set<ValueId>>();
  const die = (v: ValueId): void => {
    const obj = env.get(v)!;
    const names = namedBy.get(obj);
    names?.delete(v);
    if ((names === undefined || names.size === 0) && !external.has(obj)) obj.dispose();
  };
  g.nodes.forEach((n, i) => {
    const ins = n.inputs.map((v) => env.get(v)!);
    const outs = opts.execute?.(n, ins) ?? opDef(n.op).execute(ins, n.attrs);
    n.outputs.forEach((o, k) => {
      env.set(o, outs[k]!);
      checkGuardsOf(o);
      if (opts.disposeDead) {
        const names = namedBy.get(outs[k]!) ?? new Set<ValueId>();
        names.add(o);
        namedBy.set(outs[k]!, names);
        if (pinned.has(o)) external.add(outs[k]!);
      }
    });
    if (opts.disposeDead) {
      for (const o of n.outputs) if (!lastUse.has(o) && !pinned.has(o)) die(o);
      for (const v of new Set(n.inputs)) {
        if (lastUse.get(v) === i && g.value(v).kind === 'node' && !pinned.has(v)) die(v);
      }
    }
  });
  const outputs = g.outputs.map((o) => env.get(o)!);
  if (opts.applyWrites ?? true) {
    const writes = g.writes.map((w) => ({ write: w, value: env.get(w.value)! }));
    if (opts.writer !== undefined) opts.writer(writes, outputs);
    else applyWrites(writes);
  }
  return outputs;
}
