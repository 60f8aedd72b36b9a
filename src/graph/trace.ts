// The tracer: runs a function eagerly on example inputs while a dispatch observer records every
// primitive application, then turns that record into a Graph.
//
// Tensors the function did not compute and did not receive become graph constants, except leaf
// tensors that require grad (model parameters the function closes over), which become parameters:
// a compiled function reads them live on every call. Tensors that are merely new objects over a
// traced tensor's memory (`detach`, the leaf aliases `grad()` makes) are recognized by storage and
// layout and resolve to the traced value. Reading a traced tensor's values (item, toArray, data)
// records a guard: the rest of the trace assumed the value read, so the compiled function checks it.
import { getBackend, listBackends, type Backend, type KernelInput, type Storage } from '../backend/backend.js';
import type { TypedArray } from '../core/dtype.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import { Tensor, nextTensorId } from '../core/tensor.js';
import { keep } from '../core/memory.js';
import { addDispatchObserver } from '../ops/dispatch.js';
import { registerTracingHooks } from '../autodiff/checkpoint.js';
import type { PrimitiveName } from '../ops/primitives.js';
import { Graph, type ValueId } from './graph.js';

interface TraceEvent {
  op: string;
  inputs: Tensor[];
  attrs: unknown;
  outputs: Tensor[];
  /** The recomputation tag active when it was recorded (GraphNode.remat). */
  remat?: number;
}

export interface TraceOptions {
  /** What a read of a traced value does: record a guard (default) or throw. */
  onRead?: 'guard' | 'error';
}

/** A finished trace: the graph plus the concrete results of the eager run. */
export interface TraceResult<R> {
  graph: Graph;
  /** What fn returned on the example inputs (the tensors are real). */
  result: R;
  /** The output tensors, in the order of graph.outputs. */
  outputTensors: Tensor[];
  /** Tensors of an enclosing trace that this (nested) trace used; they are the graph's trailing inputs. */
  captures: Tensor[];
}

const stack: Tracer[] = [];
let readsSuspended = 0;
let recordingPaused = 0;

/** Runs fn without recording its primitives in any trace (used to execute control-flow ops). */
export function withoutRecording<T>(fn: () => T): T {
  recordingPaused++;
  readsSuspended++;
  try {
    return fn();
  } finally {
    recordingPaused--;
    readsSuspended--;
  }
}

/** The innermost tracer currently recording, if any. */
export function activeTracer(): Tracer | undefined {
  return stack[stack.length - 1];
}

export function isTracing(): boolean {
  return stack.length > 0;
}

// While a checkpointed block is recomputed inside a traced backward, its nodes carry this tag
// (GraphNode.remat): see autodiff/checkpoint.ts.
let rematTag: number | undefined;

/** Runs fn with the primitives it records tagged as recomputation `tag`. */
export function withRematTag<T>(tag: number, fn: () => T): T {
  const previous = rematTag;
  rematTag = tag;
  try {
    return fn();
  } finally {
    rematTag = previous;
  }
}
registerTracingHooks({ isTracing, withRematTag });

/** Runs fn with value reads not recorded as guards (for reads the graph layer makes itself). */
export function untracedRead<T>(fn: () => T): T {
  readsSuspended++;
  try {
    return fn();
  } finally {
    readsSuspended--;
  }
}

export class Tracer {
  readonly events: TraceEvent[] = [];
  private readonly known = new Map<Tensor, true>();
  /** Tensors rebound by assign: later uses of the target mean the assigned value. */
  private readonly rebound = new Map<Tensor, Tensor>();
  private readonly byStorage = new Map<Storage, Tensor[]>();
  readonly writes: { kind: 'data' | 'grad'; target: Tensor; value: Tensor }[] = [];
  /** Reads of traced values; `at` = how many events were recorded before the read (where a piecewise trace breaks). */
  readonly reads: { tensor: Tensor; observed: Float64Array; array: unknown; at: number }[] = [];
  /** The `.grad` a parameter had when the trace first used it (to detect accumulation). */
  readonly gradAtFirstUse = new Map<Tensor, Tensor | undefined>();
  /**
   * Tensors the graph must read live on every run (graph parameters, never folded as constants):
   * host-updated scalars (a traced optimizer's learning rate and bias corrections).
   */
  readonly liveTensors = new Set<Tensor>();
  /**
   * Host code a compiled function runs before every replay (it refreshes live tensors from JS
   * state); each returns an undo, called when the replay is abandoned (a failed guard) so the
   * retrace does not see the JS state advanced twice.
   */
  readonly replayHooks: (() => () => void)[] = [];
  /** Leaves used only inside nested graphs (a differentiable cond's branches) whose `.grad` a traced backward may set. */
  readonly nestedGradLeaves = new Set<Tensor>();

  /** Values of the constants the traced code made after its first value read (see record). */
  readonly constantValues = new Map<Tensor, Float64Array>();

  /** Tensors with ids from here on were made while this trace recorded. */
  private readonly firstTensorId = nextTensorId();

  constructor(readonly inputs: readonly Tensor[], readonly opts: TraceOptions, readonly parent: Tracer | undefined) {
    for (const t of inputs) this.note(t);
  }

  /** Whether the traced code made `t` (a scalar operand, a tensor built from host values) rather than receiving or capturing it. */
  madeDuringTrace(t: Tensor): boolean {
    return t.id >= this.firstTensorId;
  }

  private note(t: Tensor): void {
    this.known.set(t, true);
    const list = this.byStorage.get(t.storage);
    if (list === undefined) this.byStorage.set(t.storage, [t]);
    else list.push(t);
  }

  /** The traced tensor `t` stands for (itself, the value assigned to it, or the tensor it aliases). */
  resolve(t: Tensor): Tensor | undefined {
    const r = this.rebound.get(t);
    if (r !== undefined) return r;
    if (this.known.has(t)) return t;
    const list = this.byStorage.get(t.storage);
    if (list !== undefined) {
      for (let i = list.length - 1; i >= 0; i--) {
        const c = list[i]!;
        if (c.offset === t.offset && c.dtype === t.dtype && shapesEqual(c.shape, t.shape) && shapesEqual(c.strides, t.strides)) {
          return this.rebound.get(c) ?? c;
        }
      }
    }
    return undefined;
  }

  record(op: string, inputs: readonly Tensor[], attrs: unknown, outputs: readonly Tensor[]): void {
    // Inputs resolve now (aliases and assigned tensors mean what they meant at this point); inputs
    // not known yet may be produced later (a tangent rule runs before its primal op is reported).
    const ins = inputs.map((t) => this.resolve(t) ?? t);
    for (const t of inputs) {
      if (this.resolve(t) !== undefined) continue;
      if (t.isLeaf && t.requiresGrad && !this.gradAtFirstUse.has(t)) this.gradAtFirstUse.set(t, t.grad);
      // A tensor the traced code made outside any traced op (a scalar operand, a tensor built
      // from host values) becomes a constant of the graph: keep it out of the scopes open now,
      // which would free it when the traced code leaves them, before the graph is built.
      if (this.madeDuringTrace(t)) {
        keep(t);
        // After a value read, plain code may have built this constant from the value read: its
        // values now, for a piecewise replay to check (the code may dispose it before the plan is built).
        if (this.reads.length > 0 && !this.constantValues.has(t)) {
          this.constantValues.set(t, Float64Array.from(withoutRecording(() => t.data()) as ArrayLike<number>));
        }
      }
    }
    this.events.push({ op, inputs: ins, attrs, outputs: [...outputs], ...(rematTag === undefined ? {} : { remat: rematTag }) });
    for (const o of outputs) this.note(o);
  }

  recordWrite(kind: 'data' | 'grad', target: Tensor, value: Tensor): void {
    this.writes.push({ kind, target, value: this.resolve(value) ?? value });
  }

  /** After assign(target, value): `target` now means `value` for the rest of the trace. */
  rebind(target: Tensor, value: Tensor): void {
    this.rebound.set(target, this.resolve(value) ?? value);
  }

  /**
   * A read whose values were then written into a tensor (copy_, fill_-like helpers, assignValues):
   * not a guard but a graph write of the tensor read, and the target now means that value.
   */
  readBecameWrite(values: unknown, target: Tensor): boolean {
    const k = this.reads.findIndex((r) => r.array === values);
    if (k < 0) return false;
    const [r] = this.reads.splice(k, 1);
    this.writes.push({ kind: 'data', target, value: r!.tensor });
    this.rebind(target, r!.tensor);
    return true;
  }

  recordRead(t: Tensor, values: ArrayLike<number>): void {
    const r = this.resolve(t);
    if (r === undefined) return; // a constant or parameter: reading it does not depend on traced inputs
    if (this.opts.onRead === 'error') {
      throw new TesseraError(`trace: the traced function read the values of a traced tensor (shape ${fmtShape(t.shape)}) with item/toArray/data; ` +
        "with onRead: 'error' this is not allowed. Use cond/whileLoop for data-dependent control flow, or allow guards.");
    }
    this.reads.push({ tensor: r, observed: Float64Array.from(values), array: values, at: this.events.length });
  }

  /** Turns the record into a graph whose outputs are `outputs` (tensors of this trace or external). */
  finish(outputs: readonly Tensor[]): { graph: Graph; outputTensors: Tensor[]; captures: Tensor[] } {
    const g = new Graph();
    const ids = new Map<Tensor, ValueId>();
    // The same tensor passed twice becomes two inputs; its uses resolve to the last one.
    for (const t of this.inputs) ids.set(t, g.addInput(t.shape, t.dtype));
    const producer = new Map<Tensor, TraceEvent>();
    for (const e of this.events) for (const o of e.outputs) producer.set(o, e);
    const captures: Tensor[] = [];
    const external = (t: Tensor): ValueId => {
      if (this.parent !== undefined && this.parent.resolve(t) !== undefined) {
        captures.push(t);
        return g.addInput(t.shape, t.dtype);
      }
      if (t.requiresGrad && t.isLeaf) return g.addParameter(t);
      // Host-updated tensors and targets of data writes (optimizer state) change between runs.
      if (this.liveTensors.has(t) || this.writes.some((w) => w.kind === 'data' && w.target === t)) return g.addParameter(t);
      return g.addConstant(t);
    };
    const emitted = new Set<TraceEvent>();
    // Event inputs were resolved when recorded; only outputs resolve at the end (their final meaning).
    const valueOf = (t: Tensor): ValueId => {
      const have = ids.get(t);
      if (have !== undefined) return have;
      const e = producer.get(t);
      if (e !== undefined && !emitted.has(e)) {
        emit(e);
        return ids.get(t)!;
      }
      const v = external(t);
      ids.set(t, v);
      return v;
    };
    const emit = (e: TraceEvent): void => {
      emitted.add(e);
      const ins = e.inputs.map(valueOf);
      const outs = g.addNode(e.op, ins, e.attrs, e.outputs.map((o) => ({ shape: o.shape, dtype: o.dtype })));
      if (e.remat !== undefined) g.nodes[g.nodes.length - 1]!.remat = e.remat;
      e.outputs.forEach((o, k) => ids.set(o, outs[k]!));
    };
    for (const e of this.events) if (!emitted.has(e)) emit(e);
    g.outputs = outputs.map((o) => valueOf(this.resolve(o) ?? o));
    g.writes = this.writes.map((w) => ({ kind: w.kind, target: w.target, value: valueOf(w.value) }));
    g.guards = this.reads.map((r) => ({ value: valueOf(r.tensor), observed: r.observed }));
    // Captured tensors became inputs when first seen, after the declared inputs.
    return { graph: g, outputTensors: outputs.map((o) => this.resolve(o) ?? o), captures };
  }
}

// One observer for all tracers: only the innermost one records (a nested trace of a cond branch
// must not also land in the enclosing graph).
let removeObserver: (() => void) | undefined;
function ensureObserver(): void {
  if (removeObserver !== undefined) return;
  removeObserver = addDispatchObserver({
    onPrimitive(prim: PrimitiveName, inputs: readonly Tensor[], attrs: unknown, output: Tensor) {
      if (recordingPaused === 0) stack[stack.length - 1]?.record(prim, inputs, attrs, [output]);
    },
  });
}
function releaseObserver(): void {
  if (stack.length === 0 && removeObserver !== undefined) {
    removeObserver();
    removeObserver = undefined;
  }
}

// Value reads go through Tensor.prototype.data (item and toArray call it). While tracing, the
// prototype method is wrapped to report reads of traced tensors to the innermost tracer.
const originalData = Tensor.prototype.data;
function patchedData(this: Tensor): ReturnType<Tensor['data']> {
  const out = originalData.call(this);
  const tr = stack[stack.length - 1];
  if (tr !== undefined && readsSuspended === 0) tr.recordRead(this, out);
  return out;
}

// In-place writes (copy_, assignValues, ...) end in backend.writeStrided with values just read
// from a tensor; while tracing, each backend's writeStrided is wrapped to turn such a read into a
// graph write (see Tracer.readBecameWrite).
const originalWrites = new Map<Backend, Backend['writeStrided']>();
function patchWrites(): void {
  for (const name of listBackends()) {
    const b = getBackend(name);
    if (originalWrites.has(b)) continue;
    const orig = b.writeStrided;
    originalWrites.set(b, orig);
    b.writeStrided = function (dst: KernelInput, src: TypedArray): void {
      orig.call(this, dst, src);
      const tr = stack[stack.length - 1];
      if (tr !== undefined && readsSuspended === 0 && dst instanceof Tensor) tr.readBecameWrite(src, dst);
    };
  }
}
function unpatchWrites(): void {
  for (const [b, orig] of originalWrites) b.writeStrided = orig;
  originalWrites.clear();
}

/** Runs fn as a trace: pushes a tracer, runs, pops. */
export function withTracer<R>(inputs: readonly Tensor[], opts: TraceOptions, fn: (tracer: Tracer) => R): { tracer: Tracer; result: R } {
  const tracer = new Tracer(inputs, opts, stack[stack.length - 1]);
  ensureObserver();
  stack.push(tracer);
  if (stack.length === 1) {
    Tensor.prototype.data = patchedData;
    patchWrites();
  }
  try {
    return { tracer, result: fn(tracer) };
  } finally {
    const i = stack.lastIndexOf(tracer);
    if (i >= 0) stack.splice(i, 1);
    if (stack.length === 0) {
      Tensor.prototype.data = originalData;
      unpatchWrites();
    }
    releaseObserver();
  }
}

/** The tensors in a (possibly nested) result: arrays and plain objects are walked in key order. */
export function flattenTensors(value: unknown, out: Tensor[] = []): Tensor[] {
  if (value instanceof Tensor) out.push(value);
  else if (Array.isArray(value)) for (const v of value) flattenTensors(v, out);
  else if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value as Record<string, unknown>)) flattenTensors(v, out);
  }
  return out;
}

/** Rebuilds a result of the same structure as `template` with the tensors replaced in order. */
export function unflattenTensors<R>(template: R, tensors: readonly Tensor[]): R {
  let k = 0;
  const build = (v: unknown): unknown => {
    if (v instanceof Tensor) return tensors[k++]!;
    if (Array.isArray(v)) return v.map(build);
    if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      const o: Record<string, unknown> = {};
      for (const [key, x] of Object.entries(v as Record<string, unknown>)) o[key] = build(x);
      return o;
    }
    return v;
  };
  return build(template) as R;
}

/**
 * Traces `fn` on `exampleInputs`: runs it once (eagerly, with real values) and returns the graph of
 * every primitive it applied. The outputs are the tensors of fn's result (a tensor, or arrays /
 * plain objects of them, flattened in order). Parameters' new `.grad` (from a backward() inside
 * fn) become graph writes.
 */
export function trace<R>(fn: (...inputs: Tensor[]) => R, exampleInputs: readonly Tensor[], opts: TraceOptions = {}): TraceResult<R> {
  const { tracer, result } = withTracer(exampleInputs, opts, () => fn(...exampleInputs));
  const outs = flattenTensors(result);
  const { graph, outputTensors, captures } = finishWithGrads(tracer, outs);
  return { graph, result, outputTensors, captures };
}

/** finish(), plus `.grad` writes for parameters whose gradient the trace computed. */
export function finishWithGrads(tracer: Tracer, outs: readonly Tensor[]): { graph: Graph; outputTensors: Tensor[]; captures: Tensor[] } {
  const first = tracer.finish(outs);
  const constants = new Set(first.graph.constants.values());
  for (const [p, g0] of tracer.gradAtFirstUse) {
    if (g0 !== undefined && p.grad !== g0 && constants.has(g0)) {
      throw new TesseraError(`trace: backward() inside the traced function added to the existing .grad of a parameter (shape ${fmtShape(p.shape)}); ` +
        'a compiled function would keep adding to that first gradient. Clear gradients inside the function before backward() ' +
        '(p.grad = undefined, or optimizer.zeroGrad()).');
    }
  }
  const gradWrites: { target: Tensor; value: Tensor }[] = [];
  for (const p of new Set([...first.graph.parameters.values(), ...tracer.nestedGradLeaves])) {
    const g = p.grad;
    if (g !== undefined && tracer.resolve(g) !== undefined) gradWrites.push({ target: p, value: g });
  }
  if (gradWrites.length === 0) return first;
  for (const w of gradWrites) tracer.recordWrite('grad', w.target, w.value);
  return tracer.finish(outs);
}
