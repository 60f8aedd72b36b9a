// Piecewise compilation (graph breaks): when traced code reads a tensor's value (item, toArray,
// data), the trace breaks there. The events before and after each read become separate graphs
// (segments), compiled separately; a replay runs the user's function again, and the plain JS
// between the segments (logging, branching on the value read) runs for real on every call, while
// every primitive the function applies is served from the compiled segments instead of computed.
//
// Replay mechanics: during a replay each backend's `kernel(prim)` is wrapped. The first kernel
// call that falls in segment s runs segment s's compiled graph (its inputs: the function's tensor
// arguments and values of earlier segments). A primitive whose output something outside the
// segment needs (a later segment, a value read, the function's result) gets a copy of that
// output; the others get an uninitialized buffer of the right size, as nothing observes them.
// Views need no kernel: they are views of served buffers.
//
// Guards: each served primitive must be the one the trace recorded at that position (same op,
// attrs, output shape and dtype, and inputs coming from the same producers). The first mismatch
// (the control path changed, e.g. the other side of `if (x.sum().item() > 0)`) is a divergence:
// the uninitialized buffers of the segments run so far are filled by interpreting those segments
// in full, the rest of the call runs eagerly (so its results are right and its side effects run
// once), and the next call traces again.
import { getBackend, listBackends, type Backend, type KernelInput, type Storage } from '../backend/backend.js';
import { TesseraError } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import type { TypedArray } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';
import { addDispatchObserver } from '../ops/dispatch.js';
import { isRandomPrimitive, primitives, type PrimitiveName, type ValueInfo } from '../ops/primitives.js';
import type { Graph } from './graph.js';
import { interpret } from './interpret.js';
import { Tracer, untracedRead, withoutRecording } from './trace.js';

type TraceEvent = Tracer['events'][number];

interface EventRecord {
  op: string;
  attrsKey: string;
  shape: readonly number[];
  dtype: string;
  /** Where each input's memory came from: 'e<event>' (a non-view event), 'a<arg>' or '' (constants, parameters). */
  origins: string[];
  isView: boolean;
  /**
   * After a graph break, the inputs that are neither arguments nor values of the trace (origin
   * ''), by position: the tensor the trace used and, when the traced code made it, its values.
   * Plain code after a read may build them from the value read (`mul(x, s)` with s = y.item()),
   * and the compiled segment holds the trace's values, so a replay must see the same tensor or
   * the same values (else it diverges: the call finishes eagerly and the next one traces again).
   */
  constants?: (ConstantUse | undefined)[];
}

/** A constant input after a graph break (see EventRecord.constants). */
interface ConstantUse {
  tensor: Tensor;
  values: Float64Array | undefined;
  /**
   * Its value changed between calls before (a scalar built from a value read, such as a running
   * count): the segments take it as an input instead of holding the trace's value, and a replay
   * feeds them the tensor the call made, checking only its dtype and shape.
   */
  dynamic: boolean;
}

interface Segment {
  start: number;
  end: number;
  /** Events of earlier segments whose outputs this segment reads (after the tensor arguments). */
  boundary: number[];
  /** Dynamic constants (ConstantUse.dynamic) this segment reads: its last inputs, trace-time tensors. */
  dynamic: Tensor[];
  /** The optimized graph: outputs are the values of `outputEvents` only. */
  graph: Graph;
  outputEvents: number[];
  /** The same segment with every non-view event as an output (to fill buffers after a divergence). */
  full: Graph;
  fullEvents: number[];
  run: (inputs: readonly Tensor[]) => Tensor[];
}

/** A traced function split at its value reads. */
export interface PiecewisePlan {
  events: EventRecord[];
  segments: Segment[];
  /** Segment index of each event. */
  segmentOf: number[];
  /** Positions (event counts) where the trace broke. */
  breaks: number[];
}

/** Why a traced function cannot be split (undefined when it can). */
export function piecewiseObstacle(tracer: Tracer, graph: Graph): string | undefined {
  if (graph.writes.length > 0) return 'it writes tensors (assign/.grad)';
  const other = tracer.events.find((e) => !(e.op in primitives));
  if (other !== undefined) return `it contains a '${other.op}' node (only primitives can be served during a replay)`;
  // A replay that leaves the traced path re-runs the segments so far in full: their draws would be
  // taken twice, and the eager rest of the call would continue from the wrong generator state.
  const draw = tracer.events.find((e) => isRandomPrimitive(e.op));
  if (draw !== undefined) return `it draws random numbers ('${draw.op}'), which a replay that leaves the traced path could not keep in the generator's order`;
  return undefined;
}

function attrsKey(attrs: unknown): string {
  return JSON.stringify(attrs) ?? '';
}

function isViewPrim(op: string): boolean {
  return primitives[op as PrimitiveName].view !== undefined;
}

/**
 * A reshape whose input layout cannot take the new shape copies (like torch.reshape): dispatch
 * runs the `contiguous` kernel inside it. Such an event owns a buffer, so the plan treats it as
 * a kernel event: a replay serves that inner copy with the reshape's value (the same elements in
 * the same row-major order), instead of seeing an unrecorded 'contiguous' and tracing again.
 */
function isCopyingReshape(e: { op: string; inputs: readonly Tensor[]; outputs: readonly Tensor[] }): boolean {
  return e.op === 'reshape' && e.outputs[0]!.storage !== e.inputs[0]!.storage;
}

/**
 * Splits a finished trace at its reads into compiled segments. `results` are the function's
 * output tensors; `compile` turns a segment graph into a runner.
 */
export function buildPiecewise(
  tracer: Tracer, results: readonly Tensor[], compile: (g: Graph) => (inputs: readonly Tensor[]) => Tensor[],
  dynamicHints: ReadonlySet<string> = new Set(),
): PiecewisePlan {
  const events = tracer.events;
  const producer = new Map<Tensor, number>();
  events.forEach((e, i) => e.outputs.forEach((o) => producer.set(o, i)));
  // Memory roots: the non-view event (or argument) whose buffer a tensor lives in.
  const rootOfStorage = new Map<Storage, string>();
  tracer.inputs.forEach((t, k) => { if (!rootOfStorage.has(t.storage)) rootOfStorage.set(t.storage, `a${k}`); });
  const isView = events.map((e) => isViewPrim(e.op) && !isCopyingReshape(e));
  events.forEach((e, i) => { if (!isView[i]) for (const o of e.outputs) rootOfStorage.set(o.storage, `e${i}`); });
  const records: EventRecord[] = events.map((e, i) => ({
    op: e.op, attrsKey: attrsKey(e.attrs), shape: e.outputs[0]!.shape, dtype: e.outputs[0]!.dtype,
    origins: e.inputs.map((t) => rootOfStorage.get(t.storage) ?? ''), isView: isView[i]!,
  }));

  const breaks = [...new Set(tracer.reads.map((r) => r.at))].filter((p) => p > 0 && p < events.length).sort((a, b) => a - b);
  // Before the first break no value has been read, so constants there cannot depend on one (they
  // are baked as in a plain trace).
  const firstBreak = breaks[0] ?? events.length;
  records.forEach((r, i) => {
    if (i < firstBreak || !r.origins.includes('')) return;
    r.constants = events[i]!.inputs.map((t, k) => {
      // (A view of a constant has origin '' too, but an event made it: its own input is checked there.)
      if (r.origins[k] !== '' || producer.has(t)) return undefined;
      const values = tracer.constantValues.get(t);
      return { tensor: t, values, dynamic: values !== undefined && dynamicHints.has(`${i}:${k}`) };
    });
  });
  // A segment starts where a dynamic constant is first used, so that a replay has the call's
  // tensor in hand when that segment runs (at its first kernel, at or after that event).
  const dynamicFirstUse = new Map<Tensor, number>();
  records.forEach((r, i) => r.constants?.forEach((c) => { if (c?.dynamic === true && !dynamicFirstUse.has(c.tensor)) dynamicFirstUse.set(c.tensor, i); }));
  const bounds = [...new Set([0, ...breaks, ...dynamicFirstUse.values(), events.length])].sort((a, b) => a - b);
  const segmentOf: number[] = [];
  for (let s = 0; s + 1 < bounds.length; s++) for (let i = bounds[s]!; i < bounds[s + 1]!; i++) segmentOf[i] = s;

  // Which non-view events must hold real data: those read, returned or used by a later segment;
  // a needed view needs the event whose buffer it views.
  const needed = new Set<number>();
  const need = (t: Tensor, fromSegment: number): void => {
    let i = producer.get(tracer.resolve(t) ?? t);
    while (i !== undefined) {
      if (segmentOf[i]! >= fromSegment) return;
      const e = events[i]!;
      if (!records[i]!.isView) { needed.add(i); return; }
      i = producer.get(e.inputs[0]!);
    }
  };
  const needAlways = (t: Tensor): void => {
    let i = producer.get(tracer.resolve(t) ?? t);
    while (i !== undefined) {
      if (!records[i]!.isView) { needed.add(i); return; }
      i = producer.get(events[i]!.inputs[0]!);
    }
  };
  events.forEach((e, i) => e.inputs.forEach((x) => need(x, segmentOf[i]!)));
  for (const r of tracer.reads) needAlways(r.tensor);
  for (const t of results) needAlways(t);

  const segments: Segment[] = [];
  for (let s = 0; s + 1 < bounds.length; s++) {
    const start = bounds[s]!, end = bounds[s + 1]!;
    const boundary: number[] = [];
    for (let i = start; i < end; i++) {
      for (const x of events[i]!.inputs) {
        const j = producer.get(x);
        if (j !== undefined && j < start && !boundary.includes(j)) boundary.push(j);
      }
    }
    const dynamic = [...new Set(records.slice(start, end).flatMap((r) => (r.constants ?? []).filter((c) => c?.dynamic === true).map((c) => c!.tensor)))];
    const build = (outs: number[]): Graph => {
      const tr = new Tracer([...tracer.inputs, ...boundary.map((j) => events[j]!.outputs[0]!), ...dynamic], {}, undefined);
      for (let i = start; i < end; i++) {
        const e: TraceEvent = events[i]!;
        tr.record(e.op, e.inputs, e.attrs, e.outputs);
      }
      return tr.finish(outs.map((i) => events[i]!.outputs[0]!)).graph;
    };
    const outputEvents: number[] = [];
    const fullEvents: number[] = [];
    for (let i = start; i < end; i++) {
      if (records[i]!.isView) continue;
      fullEvents.push(i);
      if (needed.has(i)) outputEvents.push(i);
    }
    const graph = build(outputEvents);
    segments.push({ start, end, boundary, dynamic, graph, outputEvents, full: build(fullEvents), fullEvents, run: compile(graph) });
  }
  return { events: records, segments, segmentOf, breaks };
}

/** Whether a replay's input is the constant the trace used: the same tensor, or one with the same type and values. */
function sameConstant(c: ConstantUse, t: Tensor): boolean {
  if (t === c.tensor) return true;
  if (c.values === undefined || t.dtype !== c.tensor.dtype || !shapesEqual(t.shape, c.tensor.shape)) return false;
  const now = untracedRead(() => withoutRecording(() => t.data())) as ArrayLike<number>;
  for (let i = 0; i < now.length; i++) if (!Object.is(now[i], c.values[i])) return false;
  return true;
}

/** What a piecewise replay gave: fn's own result, and why it diverged from the plan (if it did). */
export interface PiecewiseReplay<R> {
  result: R;
  divergence: string | undefined;
  /**
   * When it diverged on a constant made after a read: every such constant that changed ('<event>:<input>',
   * while the rest of the call kept to the plan), hints for the next plan (buildPiecewise's dynamicHints).
   */
  changedConstants?: string[];
}

class ReplayState {
  counter = 0;
  busy = 0;
  divergence: string | undefined;
  readonly ran: boolean[] = [];
  readonly segInputs: Tensor[][] = [];
  readonly served = new Map<number, Tensor>();
  /** Replay tensor of each event, and each buffer's root ('e<i>' / 'a<k>'). */
  readonly byEvent: Tensor[] = [];
  readonly rootOfStorage = new Map<Storage, string>();
  /** Events given an uninitialized buffer: filled on a divergence. */
  readonly placeholders = new Set<number>();
  /** This call's tensor for each dynamic constant (by the trace's tensor), taken as the ops use them. */
  readonly dynamicValues = new Map<Tensor, Tensor>();
  /** Constants found changed (see PiecewiseReplay.changedConstants); learning goes on after such a divergence while the ops keep to the plan. */
  readonly changedConstants = new Set<string>();
  learning = false;

  constructor(readonly plan: PiecewisePlan, readonly args: readonly Tensor[]) {
    args.forEach((t, k) => { if (!this.rootOfStorage.has(t.storage)) this.rootOfStorage.set(t.storage, `a${k}`); });
  }

  /** The recorded event at the current position, if `prim(inputs) -> out` matches it. */
  expected(prim: string, inputs: readonly Tensor[], attrs: unknown, out: ValueInfo): string | undefined {
    const i = this.counter;
    const ev = this.plan.events[i];
    if (ev === undefined) return `the function applied '${prim}' after the ${this.plan.events.length} traced ops`;
    if (prim === 'contiguous' && ev.op === 'reshape' && !ev.isView) {
      // The copy inside a copying reshape (isCopyingReshape): the reshape itself is checked when
      // the observer sees it; here the elements copied must be the ones the trace copied.
      if (ev.dtype !== out.dtype || ev.shape.reduce((p, d) => p * d, 1) !== out.shape.reduce((p, d) => p * d, 1)) return `op #${i} ('reshape') changed its output type`;
      return (this.rootOfStorage.get(inputs[0]!.storage) ?? '') === ev.origins[0] ? undefined : `op #${i} ('reshape') reads different values than in the trace`;
    }
    if (ev.op !== prim) return `op #${i} is '${prim}' but the trace has '${ev.op}'`;
    if (ev.attrsKey !== attrsKey(attrs)) return `op #${i} ('${prim}') has attrs ${attrsKey(attrs)} but the trace has ${ev.attrsKey}`;
    if (!shapesEqual(ev.shape, out.shape) || ev.dtype !== out.dtype) return `op #${i} ('${prim}') changed its output type`;
    const origins = inputs.map((t) => this.rootOfStorage.get(t.storage) ?? '');
    if (origins.some((o, k) => o !== ev.origins[k])) return `op #${i} ('${prim}') reads different values than in the trace`;
    const k = ev.constants?.findIndex((c, j) => c !== undefined && !this.takeConstant(c, inputs[j]!)) ?? -1;
    if (k >= 0) {
      this.changedConstants.add(`${i}:${k}`);
      this.learning = true;
      return `op #${i} ('${prim}') reads a different constant (input ${k}) than in the trace, made after a value read`;
    }
    return undefined;
  }

  /**
   * After a divergence on a changed constant the call runs eagerly; while its ops still match the
   * plan, their changed constants are noted too, so one retrace learns them all.
   */
  learn(prim: string, inputs: readonly Tensor[], attrs: unknown): void {
    const ev = this.plan.events[this.counter];
    if (ev === undefined || ev.op !== prim || ev.attrsKey !== attrsKey(attrs)) { this.learning = false; return; }
    ev.constants?.forEach((c, k) => { if (c !== undefined && !c.dynamic && !sameConstant(c, inputs[k]!)) this.changedConstants.add(`${this.counter}:${k}`); });
    this.counter++;
  }

  /** Checks a constant input; a dynamic one is taken as this call's value when its type matches. */
  private takeConstant(c: ConstantUse, t: Tensor): boolean {
    if (!c.dynamic) return sameConstant(c, t);
    if (t.dtype !== c.tensor.dtype || !shapesEqual(t.shape, c.tensor.shape)) return false;
    this.dynamicValues.set(c.tensor, t);
    return true;
  }

  runSegment(s: number): void {
    const seg = this.plan.segments[s]!;
    const dynamic = seg.dynamic.map((c) => {
      const t = this.dynamicValues.get(c);
      if (t === undefined) throw new TesseraError('jit: internal error: a piecewise segment ran before the call made its dynamic constant.');
      return t;
    });
    const inputs = [...this.args, ...seg.boundary.map((j) => this.byEvent[j]!), ...dynamic];
    this.segInputs[s] = inputs;
    this.ran[s] = true;
    this.busy++;
    try {
      const outs = seg.run(inputs);
      seg.outputEvents.forEach((i, k) => this.served.set(i, outs[k]!));
    } finally {
      this.busy--;
    }
  }

  /** The storage the kernel of event i returns. */
  serve(i: number, backend: Backend, out: ValueInfo): Storage {
    const s = this.plan.segmentOf[i]!;
    if (!this.ran[s]) this.runSegment(s);
    const t = this.served.get(i);
    const size = out.shape.reduce((p, d) => p * d, 1);
    if (t === undefined) {
      this.placeholders.add(i);
      return backend.alloc(out.dtype, size);
    }
    const data = untracedRead(() => withoutRecording(() => t.data()));
    return backend.fromArray(out.dtype, data as TypedArray);
  }

  /** The control path left the plan: give every uninitialized buffer its real value. */
  diverge(reason: string): void {
    if (this.divergence !== undefined) return;
    this.divergence = reason;
    this.busy++;
    try {
      this.plan.segments.forEach((seg, s) => {
        if (!this.ran[s]) return;
        if (!seg.fullEvents.some((i) => this.placeholders.has(i))) return;
        const outs = interpret(seg.full, this.segInputs[s]!, { applyWrites: false });
        seg.fullEvents.forEach((i, k) => {
          const dst = this.byEvent[i];
          // A placeholder the function already disposed (eager code may free what it no longer
          // needs) cannot be observed any more: nothing to fill.
          if (!this.placeholders.has(i) || dst === undefined || dst.isDisposed) return;
          const src = untracedRead(() => outs[k]!.data());
          dst.storage.backend.writeStrided(dst as KernelInput, src as TypedArray);
        });
      });
    } finally {
      this.busy--;
    }
  }
}

let active: ReplayState | undefined;

/** True while a piecewise replay runs the function (its kernels return placeholders, not values). */
export function piecewiseReplayActive(): boolean {
  return active !== undefined;
}
const originalKernels = new Map<Backend, Backend['kernel']>();

function patchKernels(): void {
  for (const name of listBackends()) {
    const b = getBackend(name);
    if (originalKernels.has(b)) continue;
    const orig = b.kernel;
    originalKernels.set(b, orig);
    const lookup = orig as (this: Backend, prim: PrimitiveName) => ((inputs: readonly KernelInput[], attrs: unknown, out: ValueInfo) => Storage) | undefined;
    b.kernel = function (this: Backend, prim: PrimitiveName) {
      const own = lookup.call(this, prim);
      const st = active;
      if (st === undefined || st.busy > 0 || st.divergence !== undefined) return own;
      const backend = this;
      const served = (inputs: readonly KernelInput[], attrs: unknown, out: ValueInfo): Storage => {
        const why = st.expected(prim, inputs as Tensor[], attrs, out);
        if (why === undefined) return st.serve(st.counter, backend, out);
        st.diverge(why);
        if (own !== undefined) return own(inputs, attrs, out);
        // No own kernel: let dispatch's cpu fallback run (the cpu backend is not serving now).
        const cpu = getBackend('cpu');
        const viaCpu = inputs.map((t) => ({ ...t, storage: cpu.fromArray(t.storage.dtype, this.readAll(t.storage)) }));
        const r = cpu.kernel(prim)!(viaCpu as never, attrs as never, out);
        return this.fromArray(out.dtype, cpu.readAll(r));
      };
      return served;
    } as unknown as Backend['kernel'];
  }
}

function unpatchKernels(): void {
  for (const [b, orig] of originalKernels) b.kernel = orig;
  originalKernels.clear();
}

/** Runs fn(...args) with its primitives served from the plan's compiled segments. */
export function replayPiecewise<R>(plan: PiecewisePlan, fn: () => R, tensorArgs: readonly Tensor[]): PiecewiseReplay<R> {
  if (active !== undefined) throw new TesseraError('jit: a piecewise-compiled function called itself while replaying; call it outside, or disable piecewise.');
  const st = new ReplayState(plan, tensorArgs);
  const stop = addDispatchObserver({
    onPrimitive(prim, inputs, attrs, output) {
      if (st.busy > 0) return;
      if (st.divergence !== undefined) {
        if (st.learning) st.learn(prim, inputs, attrs);
        return;
      }
      // Views are checked here (they run no kernel); served kernels were checked already.
      const ev = plan.events[st.counter];
      if (ev === undefined || ev.op !== prim) {
        st.diverge(st.expected(prim, inputs, attrs, output) ?? `op #${st.counter} differs`);
        return;
      }
      if (ev.isView || primitives[prim].view !== undefined) {
        const why = ev.isView === (output.storage === inputs[0]!.storage)
          ? st.expected(prim, inputs, attrs, output)
          : `op #${st.counter} ('${prim}') ${ev.isView ? 'copied, but was a view in the trace' : 'is a view, but copied in the trace'}`;
        if (why !== undefined) {
          st.diverge(why);
          if (st.learning) st.counter++; // this view was checked: learning goes on from the next op
          return;
        }
      }
      if (!ev.isView) st.rootOfStorage.set(output.storage, `e${st.counter}`);
      st.byEvent[st.counter] = output;
      st.counter++;
    },
  });
  active = st;
  patchKernels();
  let result: R;
  try {
    result = fn();
    if (st.divergence === undefined && st.counter !== plan.events.length) {
      st.diverge(`the function applied ${st.counter} ops but the trace has ${plan.events.length}`);
    }
  } finally {
    active = undefined;
    unpatchKernels();
    stop();
  }
  return { result, divergence: st.divergence, ...(st.divergence !== undefined && st.changedConstants.size > 0 ? { changedConstants: [...st.changedConstants] } : {}) };
}
