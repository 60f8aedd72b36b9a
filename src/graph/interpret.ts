// The reference executor: runs a graph node by node through `bind` (so on any backend, with the
// tape recorded when grad mode is on), checks value guards as soon as the guarded value exists
// (the graph's pieces between reads), and applies the graph's writes at the end.
import { TesseraError, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import type { Graph, GraphNode, GraphWrite, ValueId } from './graph.js';
import { opDef, type GraphOpDef } from './graph-ops.js';
import { applyWrites } from './state.js';
import { untracedRead } from './trace.js';
import { withAutocastHook } from '../ops/dispatch.js';
// Registers the offload graph ops (a traced offload() records them) and their tracing hooks.
import './offload-ops.js';

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

/** Called after each node an interpreted graph runs, with its inputs and its wall time in ms. */
export type NodeTimer = (node: GraphNode, inputs: readonly Tensor[], ms: number) => void;
let nodeTimer: NodeTimer | undefined;

/**
 * Times every node of every interpreted graph (compiled jit replays on the wasm backend included;
 * not the cpu backend's planned executor) until called with undefined: where a step's time goes,
 * node by node (bench/step-nodes.ts). Returns the previous timer.
 */
export function setNodeTimer(timer: NodeTimer | undefined): NodeTimer | undefined {
  const previous = nodeTimer;
  nodeTimer = timer;
  return previous;
}

/** One node of a prepared run: its op and the slots it reads and writes. */
interface PlannedStep {
  readonly node: GraphNode;
  readonly def: GraphOpDef;
  readonly ins: readonly number[];
  readonly outs: readonly number[];
  /** Slots of node values that are dead after this step (unused outputs, inputs read last here); never outputs or written values. */
  readonly dead: readonly number[];
}

/** What a run of a graph needs that does not depend on its inputs: each value has a slot in a flat array. */
interface RunPlan {
  readonly slots: number;
  readonly valueOf: readonly ValueId[];
  readonly inputSlots: readonly number[];
  readonly fixed: readonly { slot: number; tensor: Tensor }[];
  readonly steps: readonly PlannedStep[];
  readonly guards: ReadonlyMap<number, readonly Float64Array[]>;
  /** Graph outputs and written values: never disposed here, the caller owns them. */
  readonly pinned: ReadonlySet<number>;
  readonly outputSlots: readonly number[];
  readonly writes: readonly { write: GraphWrite; slot: number }[];
}

function planRun(g: Graph): RunPlan {
  const slotOf = new Map<ValueId, number>();
  const valueOf: ValueId[] = [];
  const slot = (id: ValueId): number => {
    let s = slotOf.get(id);
    if (s === undefined) {
      s = valueOf.length;
      slotOf.set(id, s);
      valueOf.push(id);
    }
    return s;
  };
  const inputSlots = g.inputs.map(slot);
  const fixed = [...g.constants, ...g.parameters].map(([id, tensor]) => ({ slot: slot(id), tensor }));
  const lastUse = new Map<ValueId, number>();
  g.nodes.forEach((n, i) => n.inputs.forEach((v) => lastUse.set(v, i)));
  const pinnedIds = new Set<ValueId>([...g.outputs, ...g.writes.map((w) => w.value)]);
  const steps = g.nodes.map((node, i): PlannedStep => {
    const dead: number[] = [];
    for (const o of node.outputs) if (!lastUse.has(o) && !pinnedIds.has(o)) dead.push(slot(o));
    for (const v of new Set(node.inputs)) {
      if (lastUse.get(v) === i && g.value(v).kind === 'node' && !pinnedIds.has(v)) dead.push(slot(v));
    }
    return { node, def: opDef(node.op), ins: node.inputs.map(slot), outs: node.outputs.map(slot), dead };
  });
  const guards = new Map<number, Float64Array[]>();
  for (const x of g.guards) guards.set(slot(x.value), [...(guards.get(slot(x.value)) ?? []), x.observed]);
  return {
    slots: valueOf.length, valueOf, inputSlots, fixed, steps, guards,
    pinned: new Set([...pinnedIds].map(slot)),
    outputSlots: g.outputs.map(slot),
    writes: g.writes.map((write) => ({ write, slot: slot(write.value) })),
  };
}

/** Runs `g` on `inputs`; returns the graph's outputs (in order). */
export function interpret(g: Graph, inputs: readonly Tensor[], opts: InterpretOptions = {}): Tensor[] {
  checkInputs(g, inputs, 'interpret');
  return runPlan(planRun(g), inputs, opts);
}

/**
 * interpret() for a graph that no longer changes (a compiled or cached one): the run's structure
 * (value slots, last uses, guards) is computed once here rather than on every call, which for a
 * replayed training step of a few dozen nodes was a measurable part of its host overhead.
 */
export function prepareInterpret(g: Graph): (inputs: readonly Tensor[], opts?: InterpretOptions) => Tensor[] {
  const plan = planRun(g);
  return (inputs, opts = {}) => {
    checkInputs(g, inputs, 'interpret');
    return runPlan(plan, inputs, opts);
  };
}

/**
 * A graph already holds the casts autocast made while it was traced (and its traced backward none),
 * so its nodes run as recorded, never cast again by an enclosing autocast region.
 */
function runPlan(plan: RunPlan, inputs: readonly Tensor[], opts: InterpretOptions): Tensor[] {
  return withAutocastHook(undefined, () => runPlanAsRecorded(plan, inputs, opts));
}

function runPlanAsRecorded(plan: RunPlan, inputs: readonly Tensor[], opts: InterpretOptions): Tensor[] {
  const env: Tensor[] = new Array<Tensor>(plan.slots);
  plan.inputSlots.forEach((s, i) => { env[s] = inputs[i]!; });
  for (const { slot, tensor } of plan.fixed) env[slot] = tensor;
  const checkGuardsOf = (s: number): void => {
    const expected = plan.guards.get(s);
    if (expected !== undefined) for (const e of expected) checkGuard(plan.valueOf[s]!, e, env[s]!);
  };
  if (plan.guards.size > 0) {
    for (const s of plan.inputSlots) checkGuardsOf(s);
    for (const { slot } of plan.fixed) checkGuardsOf(slot);
  }

  const disposeDead = opts.disposeDead === true;
  // An op may hand back a tensor object it was given (or one another value holds): such an object
  // is disposed only once every value naming it is dead, and never when the caller owns it.
  const external = disposeDead ? new Set<Tensor>(env.filter((t) => t !== undefined)) : undefined;
  const names = new Map<Tensor, number>();
  for (const step of plan.steps) {
    const ins = step.ins.map((s) => env[s]!);
    const started = nodeTimer === undefined ? 0 : performance.now();
    const outs = opts.execute?.(step.node, ins) ?? step.def.execute(ins, step.node.attrs);
    if (nodeTimer !== undefined) nodeTimer(step.node, ins, performance.now() - started);
    for (let k = 0; k < step.outs.length; k++) {
      const s = step.outs[k]!;
      const out = outs[k]!;
      env[s] = out;
      checkGuardsOf(s);
      if (disposeDead) {
        names.set(out, (names.get(out) ?? 0) + 1);
        if (plan.pinned.has(s)) external!.add(out);
      }
    }
    if (disposeDead) {
      for (const s of step.dead) {
        const obj = env[s]!;
        const left = names.get(obj)! - 1;
        names.set(obj, left);
        if (left === 0 && !external!.has(obj)) obj.dispose();
      }
    }
  }
  const outputs = plan.outputSlots.map((s) => env[s]!);
  if (opts.applyWrites ?? true) {
    const writes = plan.writes.map(({ write, slot }) => ({ write, value: env[slot]! }));
    if (opts.writer !== undefined) opts.writer(writes, outputs);
    else applyWrites(writes);
  }
  return outputs;
}
