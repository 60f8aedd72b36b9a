// The compiled replay (the CUDA-graph analog) for the cpu backend: every buffer of the graph gets
// its offset in one arena allocated at compile time, views are compile-time layouts, and each node
// is a prepared step running a generated kernel (fused elementwise/reduction, matmul + epilogue,
// copies). A call binds the inputs, runs the steps, checks value guards, writes back parameter
// updates and copies out the results: no buffer is allocated per call (with reuseOutputs, not
// even the results). Ops without a generated kernel run the cpu reference kernel and copy its
// result into the arena (counted in stats().fallbackAllocations).
import { Storage, type KernelInput } from '../backend/backend.js';
import { cpuBackend } from '../backend/cpu/backend.js';
import { allocStorage, type DType, type TypedArray } from '../core/dtype.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import { contiguousStrides, isContiguousLayout, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { keep } from '../core/memory.js';
import type { Graph, ValueId } from '../graph/graph.js';
import { isPrimitive, opDef } from '../graph/graph-ops.js';
import { GuardFailure, checkInputs } from '../graph/interpret.js';
import type { CompiledGraph } from '../graph/jit.js';
import { isRandomPrimitive, type Layout, type PrimitiveAttrs, type PrimitiveName, type RandomAttrs, type RandomOp } from '../ops/primitives.js';
import { drawRandomInto } from '../backend/cpu/random-kernels.js';
import { softmaxLine } from '../backend/cpu/kernels.js';
import { compileJsKernel, isScalarOp, type CompiledKernel } from './codegen/js.js';
import type { KernelInputLayout, KernelSpec, ScalarExpr } from './codegen/kernel-ir.js';
import { compileMatmulKernel } from './codegen/matmul-js.js';
import { composeViews, type FusedSpec, type MatmulEpilogueAttrs } from './fused-ops.js';
import { isViewOp } from './layouts.js';
import { memoryPlan, type MemoryPlan } from './memory-plan.js';
import { OFFLOAD_FETCH_OP, OFFLOAD_STORE_OP } from '../graph/offload-ops.js';

const SUPPORTED: ReadonlySet<DType> = new Set<DType>(['float32', 'float64', 'int32', 'int8', 'uint8', 'bool']);
const REDUCE = new Set(['sum', 'prod', 'max', 'min']);

export interface ExecutorStats {
  runs: number;
  /** Buffers allocated by calls (outputs when not reused, fallback kernels). 0 per call = fully planned. */
  allocations: number;
  fallbackAllocations: number;
  arenaBytes: number;
  kernels: number;
  fallbackOps: string[];
}

/** Why a graph cannot run on the planned executor (undefined when it can). */
export function executorUnsupportedReason(g: Graph): string | undefined {
  for (const v of g.values.values()) if (!SUPPORTED.has(v.dtype)) return `dtype ${v.dtype} (value %${v.id}) has no generated kernels`;
  for (const t of [...g.constants.values(), ...g.parameters.values()]) {
    if (t.storage.backend !== cpuBackend) return `a constant/parameter lives on backend '${t.backend}' (the planned executor is cpu-only)`;
  }
  for (const n of g.nodes) {
    if (n.op === OFFLOAD_STORE_OP || n.op === OFFLOAD_FETCH_OP) return `it moves activations to the host and back (${n.op}), and the planned executor's arena is host memory already`;
    const backend = isRandomPrimitive(n.op) ? (n.attrs as RandomAttrs).backend : 'cpu';
    if (backend !== 'cpu') return `a random draw (${n.op}, value %${n.outputs[0]}) is made on backend '${backend}' (the planned executor is cpu-only)`;
  }
  return undefined;
}

interface Step {
  op: string;
  run: () => void;
  /** Guards to check right after this step. */
  guards: { value: ValueId; observed: Float64Array }[];
}

export class PlannedExecutor implements CompiledGraph {
  readonly plan: MemoryPlan;
  readonly arena: ArrayBuffer;
  private readonly slots = new Map<ValueId, TypedArray>();
  private readonly steps: Step[] = [];
  private readonly inputSlots: { value: ValueId; staging: TypedArray }[] = [];
  private reusedOutputs: Tensor[] | undefined;
  private reusedGrads: Tensor[] | undefined;
  private readonly outCopies: CompiledKernel[];
  private readonly writeCopies: CompiledKernel[];
  readonly stats: ExecutorStats;

  constructor(readonly graph: Graph, readonly opts: { reuseOutputs: boolean }) {
    const why = executorUnsupportedReason(graph);
    if (why !== undefined) throw new TesseraError(`compile: cannot plan this graph: ${why}.`);
    this.plan = memoryPlan(graph);
    this.arena = new ArrayBuffer(Math.max(this.plan.arenaBytes, 16));
    this.stats = { runs: 0, allocations: 0, fallbackAllocations: 0, arenaBytes: this.plan.arenaBytes, kernels: 0, fallbackOps: [] };
    for (const b of this.plan.buffers) {
      const v = graph.value(b.value);
      const Ctor = allocStorage(v.dtype, 0).constructor as { new (buf: ArrayBuffer, off: number, n: number): TypedArray };
      this.slots.set(b.value, new Ctor(this.arena, b.offset, sizeOf(v.shape)));
    }
    for (const id of graph.inputs) {
      const v = graph.value(id);
      const staging = allocStorage(v.dtype, sizeOf(v.shape));
      this.inputSlots.push({ value: id, staging });
      this.slots.set(id, staging);
    }
    for (const [id, t] of [...graph.constants, ...graph.parameters]) this.slots.set(id, t.storage.handle as TypedArray);
    const guardsAt = new Map<number, { value: ValueId; observed: Float64Array }[]>();
    for (const gd of graph.guards) {
      const p = graph.value(this.base(gd.value)).producer ?? -1;
      guardsAt.set(p, [...(guardsAt.get(p) ?? []), gd]);
    }
    this.preGuards = guardsAt.get(-1) ?? [];
    graph.nodes.forEach((n, i) => {
      const run = this.prepare(i);
      this.steps.push({ op: n.op, run: run ?? (() => {}), guards: guardsAt.get(i) ?? [] });
    });
    this.outCopies = graph.outputs.map((o) => this.copyKernel(o, undefined));
    this.writeCopies = graph.writes.map((w) => (w.kind === 'data' ? this.copyKernel(w.value, w.target) : this.copyKernel(w.value, undefined)));
  }

  private readonly preGuards: { value: ValueId; observed: Float64Array }[];

  private base(v: ValueId): ValueId {
    return this.plan.layouts.get(v)!.base;
  }
  private layout(v: ValueId): Layout {
    return this.plan.layouts.get(v)!.layout;
  }
  private slot(v: ValueId): TypedArray {
    return this.slots.get(this.base(v))!;
  }

  /** A copy of value v into a fresh contiguous array, or into `target`'s own layout. */
  private copyKernel(v: ValueId, target: Tensor | undefined): CompiledKernel {
    const l = this.layout(v);
    const spec: KernelSpec = {
      shape: [...l.shape],
      inputs: [{ dtype: this.graph.value(v).dtype, strides: [...l.strides], offset: l.offset }],
      body: [{ kind: 'load', input: 0 }],
      outDtype: target?.dtype ?? this.graph.value(v).dtype,
      ...(target !== undefined ? { outStrides: [...target.strides], outOffset: target.offset } : {}),
    };
    return compileJsKernel(spec);
  }

  private kernelStep(spec: KernelSpec, inputs: readonly ValueId[], out: ValueId): () => void {
    const k = compileJsKernel(spec);
    this.stats.kernels++;
    const ins: TypedArray[] = new Array(inputs.length);
    const bases = inputs.map((v) => this.base(v));
    const dst = this.slot(out);
    return () => {
      for (let j = 0; j < bases.length; j++) ins[j] = this.slots.get(bases[j]!)!;
      k(ins, dst);
    };
  }

  /** Layout of node input v seen through views, as a kernel input over the iteration space. */
  private inputLayout(v: ValueId, views: FusedSpec['inputs'][number]['views']): KernelInputLayout | undefined {
    const l = composeViews(this.layout(v), views);
    if (l === undefined) return undefined;
    return { dtype: this.graph.value(v).dtype, strides: [...l.strides], offset: l.offset };
  }

  private fusedSpec(spec: FusedSpec, inputs: readonly ValueId[]): KernelSpec | undefined {
    const layouts = inputs.map((v, j) => this.inputLayout(v, spec.inputs[j]!.views));
    if (layouts.some((l) => l === undefined)) return undefined;
    return {
      shape: [...spec.shape],
      inputs: layouts as KernelInputLayout[],
      body: spec.body,
      outDtype: spec.outDtype,
      ...(spec.reduce !== undefined ? { reduce: { op: spec.reduce.op, axes: [...spec.reduce.axes] } } : {}),
    };
  }

  private prepare(i: number): (() => void) | undefined {
    const g = this.graph;
    const n = g.nodes[i]!;
    const out = n.outputs[0]!;
    if (isViewOp(n.op) && this.base(out) !== out) return undefined; // a compile-time layout
    if (n.op === 'reshape' || n.op === 'contiguous') {
      // A materializing copy (reshape of a layout that cannot be viewed).
      const l = this.layout(n.inputs[0]!);
      const spec: KernelSpec = { shape: [...l.shape], inputs: [{ dtype: g.value(n.inputs[0]!).dtype, strides: [...l.strides], offset: l.offset }], body: [{ kind: 'load', input: 0 }], outDtype: g.value(out).dtype };
      return this.kernelStep(spec, [n.inputs[0]!], out);
    }
    if (n.op === 'fusedElementwise') {
      const spec = this.fusedSpec((n.attrs as { spec: FusedSpec }).spec, n.inputs);
      if (spec !== undefined) return this.kernelStep(spec, n.inputs, out);
    }
    if (isScalarOp(n.op) || REDUCE.has(n.op)) {
      const ins = REDUCE.has(n.op) ? [n.inputs[0]!] : n.inputs;
      const layouts = ins.map((v) => this.inputLayout(v, [])!);
      const outV = g.value(out);
      const body: ScalarExpr[] = ins.map((_, k) => ({ kind: 'load', input: k }));
      if (!REDUCE.has(n.op)) body.push({ kind: 'op', op: n.op, args: ins.map((_, k) => k), dtype: outV.dtype });
      const shape = REDUCE.has(n.op) ? [...g.value(ins[0]!).shape] : [...outV.shape];
      if (REDUCE.has(n.op)) body.splice(0, body.length, { kind: 'load', input: 0 });
      const spec: KernelSpec = {
        shape, inputs: layouts, body, outDtype: outV.dtype,
        ...(REDUCE.has(n.op) ? { reduce: { op: n.op as 'sum', axes: [...(n.attrs as { axes: number[] }).axes] } } : {}),
      };
      return this.kernelStep(spec, ins, out);
    }
    if (isRandomPrimitive(n.op)) {
      // Straight into the arena, from the generator in the attrs: one draw per run, in node order.
      const dst = this.slot(out), dtype = g.value(out).dtype;
      return () => drawRandomInto(n.op as RandomOp, n.attrs as PrimitiveAttrs[RandomOp], dst, dtype);
    }
    if (n.op === 'matmul' || n.op === 'matmulEpilogue') return this.matmulStep(n.op, n.inputs, n.attrs, out);
    if (n.op === 'cat' || n.op === 'pad' || n.op === 'sliceBackward') return this.placementStep(n.op, n.inputs, n.attrs, out);
    if (n.op === 'gather' || n.op === 'scatterAdd' || n.op === 'argmax' || n.op === 'argmin') return this.indexStep(n.op, n.inputs, n.attrs, out);
    if (n.op === 'softmax' || n.op === 'logSoftmax') return this.softmaxStep(n.op === 'logSoftmax', n.inputs[0]!, (n.attrs as { axis: number }).axis, out);
    return this.fallbackStep(i);
  }

  private matmulStep(op: string, inputs: readonly ValueId[], attrs: unknown, out: ValueId): (() => void) | undefined {
    const g = this.graph;
    const la = this.layout(inputs[0]!), lb = this.layout(inputs[1]!);
    const r = la.shape.length;
    let epilogue: { body: ScalarExpr[]; inputs: KernelInputLayout[]; outDtype: DType } | undefined;
    if (op === 'matmulEpilogue') {
      const ep = (attrs as MatmulEpilogueAttrs).epilogue;
      const extra = inputs.slice(2).map((v, j) => this.inputLayout(v, ep.inputs[j + 1]!.views));
      if (extra.some((l) => l === undefined)) return this.fallbackStep(g.value(out).producer!);
      epilogue = { body: ep.body, inputs: [{ dtype: ep.outDtype, strides: [], offset: 0 }, ...(extra as KernelInputLayout[])], outDtype: ep.outDtype };
    }
    const k = compileMatmulKernel({
      batch: la.shape.slice(0, -2), m: la.shape[r - 2]!, k: la.shape[r - 1]!, n: lb.shape[r - 1]!,
      a: { strides: [...la.strides], offset: la.offset }, b: { strides: [...lb.strides], offset: lb.offset },
      dtype: g.value(inputs[0]!).dtype, ...(epilogue ? { epilogue } : {}),
    });
    this.stats.kernels++;
    const bases = inputs.map((v) => this.base(v));
    const ins: TypedArray[] = new Array(bases.length);
    const dst = this.slot(out);
    return () => {
      for (let j = 0; j < bases.length; j++) ins[j] = this.slots.get(bases[j]!)!;
      k(ins, dst);
    };
  }

  /**
   * cat / pad / sliceBackward: the output is filled (pad value or zeros) and each input is copied
   * into its region of the output by a kernel whose output layout is that region.
   */
  private placementStep(op: string, inputs: readonly ValueId[], attrs: unknown, out: ValueId): () => void {
    const g = this.graph;
    const outShape = g.value(out).shape;
    const cs = contiguousStrides(outShape);
    const regions: { strides: number[]; offset: number }[] = [];
    let fill: number | undefined;
    if (op === 'cat') {
      const axis = (attrs as { axis: number }).axis;
      let start = 0;
      for (const v of inputs) {
        regions.push({ strides: cs, offset: start * cs[axis]! });
        start += g.value(v).shape[axis]!;
      }
    } else if (op === 'pad') {
      const a = attrs as { pads: [number, number][]; value: number };
      fill = a.value;
      regions.push({ strides: cs, offset: a.pads.reduce((o, [before], d) => o + before * cs[d]!, 0) });
    } else {
      const a = attrs as { starts: number[]; steps: number[] };
      fill = 0;
      regions.push({ strides: cs.map((s, d) => s * a.steps[d]!), offset: a.starts.reduce((o, st, d) => o + st * cs[d]!, 0) });
    }
    const kernels = inputs.map((v, j) => {
      const l = this.layout(v);
      return compileJsKernel({
        shape: [...l.shape], inputs: [{ dtype: g.value(v).dtype, strides: [...l.strides], offset: l.offset }],
        body: [{ kind: 'load', input: 0 }], outDtype: g.value(out).dtype, outStrides: regions[j]!.strides, outOffset: regions[j]!.offset,
      });
    });
    this.stats.kernels += kernels.length;
    const bases = inputs.map((v) => this.base(v));
    const dst = this.slot(out);
    const one: TypedArray[] = [dst];
    return () => {
      if (fill !== undefined) dst.fill(fill);
      for (let j = 0; j < bases.length; j++) {
        one[0] = this.slots.get(bases[j]!)!;
        kernels[j]!(one, dst);
      }
    };
  }

  /**
   * gather, scatterAdd, argmax/argmin on strided operands, straight into the arena (the reference
   * kernels' loops and orders, so the same results; no temporaries per call).
   */
  private indexStep(op: string, inputs: readonly ValueId[], attrs: unknown, out: ValueId): () => void {
    const g = this.graph;
    const dst = this.slot(out);
    const bases = inputs.map((v) => this.base(v));
    const ls = inputs.map((v) => this.layout(v));
    const outShape = g.value(out).shape;
    const outStrides = contiguousStrides(outShape);
    const badIndex = (v: number, n: number, axis: number): never => {
      throw new TesseraError(`${op}: index ${v} is out of range for axis ${axis} of size ${n} (valid: 0..${n - 1}).`);
    };
    if (op === 'argmax' || op === 'argmin') {
      const { axis } = attrs as { axis: number };
      const l = ls[0]!;
      const rank = l.shape.length;
      const wantMax = op === 'argmax';
      const outer = rank === 0 ? [] : [...Array(rank).keys()].filter((d) => d !== axis);
      const outerShape = outer.map((d) => l.shape[d]!);
      const len = rank === 0 ? 1 : l.shape[axis]!;
      const step = rank === 0 ? 0 : l.strides[axis]!;
      const idx = new Array<number>(outer.length).fill(0);
      const rows = outerShape.reduce((p, d) => p * d, 1);
      return () => {
        const x = this.slots.get(bases[0]!)!;
        idx.fill(0);
        for (let r = 0; r < rows; r++) {
          let base = l.offset;
          for (let k = 0; k < outer.length; k++) base += idx[k]! * l.strides[outer[k]!]!;
          let best = 0;
          let bestV = x[base]!;
          if (!Number.isNaN(bestV)) {
            for (let j = 1; j < len; j++) {
              const v = x[base + j * step]!;
              if (Number.isNaN(v)) { best = j; break; }
              if (wantMax ? v > bestV : v < bestV) { best = j; bestV = v; }
            }
          }
          dst[r] = best;
          for (let k = outer.length - 1; k >= 0; k--) { if (++idx[k]! < outerShape[k]!) break; idx[k] = 0; }
        }
      };
    }
    const { axis } = attrs as { axis: number };
    if (op === 'gather') {
      const [lx, li] = [ls[0]!, ls[1]!];
      const rank = li.shape.length;
      const n = lx.shape[axis]!;
      const count = sizeOf(li.shape);
      const idx = new Array<number>(rank).fill(0);
      return () => {
        const x = this.slots.get(bases[0]!)!, index = this.slots.get(bases[1]!)!;
        idx.fill(0);
        for (let i = 0; i < count; i++) {
          let ip = li.offset;
          for (let d = 0; d < rank; d++) ip += idx[d]! * li.strides[d]!;
          const v = index[ip]!;
          if (v < 0 || v >= n) badIndex(v, n, axis);
          let pos = lx.offset;
          for (let d = 0; d < rank; d++) pos += (d === axis ? v : idx[d]!) * lx.strides[d]!;
          dst[i] = x[pos]!;
          for (let d = rank - 1; d >= 0; d--) { if (++idx[d]! < li.shape[d]!) break; idx[d] = 0; }
        }
      };
    }
    // scatterAdd: out = base, then out[index] += src in row-major order of index/src.
    const copyBase = this.copyKernel(inputs[0]!, undefined);
    const [li, lsrc] = [ls[1]!, ls[2]!];
    const rank = li.shape.length;
    const n = outShape[axis]!;
    const count = sizeOf(li.shape);
    const idx = new Array<number>(rank).fill(0);
    const one: TypedArray[] = [dst];
    return () => {
      one[0] = this.slots.get(bases[0]!)!;
      copyBase(one, dst);
      const index = this.slots.get(bases[1]!)!, src = this.slots.get(bases[2]!)!;
      idx.fill(0);
      for (let i = 0; i < count; i++) {
        let ip = li.offset, sp = lsrc.offset, pos = 0;
        for (let d = 0; d < rank; d++) {
          ip += idx[d]! * li.strides[d]!;
          sp += idx[d]! * lsrc.strides[d]!;
        }
        const v = index[ip]!;
        if (v < 0 || v >= n) badIndex(v, n, axis);
        for (let d = 0; d < rank; d++) pos += (d === axis ? v : idx[d]!) * outStrides[d]!;
        dst[pos] = dst[pos]! + src[sp]!;
        for (let d = rank - 1; d >= 0; d--) { if (++idx[d]! < li.shape[d]!) break; idx[d] = 0; }
      }
    };
  }

  /** softmax / logSoftmax along `axis` of a strided input, line by line into the arena (the reference kernels' arithmetic). */
  private softmaxStep(log: boolean, input: ValueId, axis: number, out: ValueId): () => void {
    const dst = this.slot(out);
    const base = this.base(input);
    const l = this.layout(input);
    const outStrides = contiguousStrides(l.shape);
    const outer = [...l.shape.keys()].filter((d) => d !== axis);
    const length = l.shape[axis]!;
    const lines = outer.reduce((p, d) => p * l.shape[d]!, 1);
    const idx = new Array<number>(outer.length).fill(0);
    const scratch = new Float64Array(length);
    return () => {
      const src = this.slots.get(base)!;
      idx.fill(0);
      for (let r = 0; r < lines; r++) {
        let at = l.offset, to = 0;
        for (let k = 0; k < outer.length; k++) {
          at += idx[k]! * l.strides[outer[k]!]!;
          to += idx[k]! * outStrides[outer[k]!]!;
        }
        softmaxLine(src, at, l.strides[axis]!, dst, to, outStrides[axis]!, length, log, scratch);
        for (let k = outer.length - 1; k >= 0; k--) { if (++idx[k]! < l.shape[outer[k]!]!) break; idx[k] = 0; }
      }
    };
  }

  /** Runs the op's reference implementation on views of the arena and copies the result in. */
  private fallbackStep(i: number): () => void {
    const g = this.graph;
    const n = g.nodes[i]!;
    this.stats.fallbackOps.push(n.op);
    const inputs = n.inputs.map((v) => ({ base: this.base(v), layout: this.layout(v), dtype: g.value(v).dtype }));
    const outs = n.outputs.map((o) => ({ id: o, dst: this.slot(o), info: g.value(o) }));
    return () => {
      const kin: KernelInput[] = inputs.map((x) => {
        const arr = this.slots.get(x.base)!;
        return { storage: new Storage(cpuBackend, arr, x.dtype, arr.length), dtype: x.dtype, shape: x.layout.shape, strides: x.layout.strides, offset: x.layout.offset };
      });
      let results: TypedArray[];
      if (isPrimitive(n.op)) {
        const kernel = cpuBackend.kernel(n.op as PrimitiveName)! as (i: readonly KernelInput[], a: unknown, o: { shape: readonly number[]; dtype: DType }) => Storage;
        results = [kernel(kin, n.attrs, outs[0]!.info).handle as TypedArray];
      } else {
        const ts = kin.map((k) => new Tensor(k.storage, k.shape, k.strides, k.offset, k.dtype));
        const rs = opDef(n.op).execute(ts, n.attrs);
        results = rs.map((t) => t.data());
        ts.forEach((t) => t.dispose());
        rs.forEach((t) => t.dispose());
      }
      this.stats.fallbackAllocations += results.length;
      this.stats.allocations += results.length;
      outs.forEach((o, k) => o.dst.set(results[k]!));
    };
  }

  private checkGuards(gs: readonly { value: ValueId; observed: Float64Array }[]): void {
    for (const gd of gs) {
      const l = this.layout(gd.value);
      const arr = this.slot(gd.value);
      const n = sizeOf(l.shape);
      const actual = new Float64Array(n);
      const idx = new Array<number>(l.shape.length).fill(0);
      for (let e = 0; e < n; e++) {
        let pos = l.offset;
        for (let d = 0; d < idx.length; d++) pos += idx[d]! * l.strides[d]!;
        actual[e] = arr[pos]!;
        for (let d = idx.length - 1; d >= 0; d--) {
          if (++idx[d]! < l.shape[d]!) break;
          idx[d] = 0;
        }
      }
      const same = actual.length === gd.observed.length && actual.every((x, k) => Object.is(x, gd.observed[k]) || x === gd.observed[k]);
      if (!same) throw new GuardFailure(gd.value, gd.observed, actual);
    }
  }

  run(inputs: readonly Tensor[]): Tensor[] {
    checkInputs(this.graph, inputs, 'compiled graph');
    this.inputSlots.forEach((s, k) => {
      const t = inputs[k]!;
      if (t.storage.backend !== cpuBackend) throw new TesseraError(`compiled graph: input ${k} lives on backend '${t.backend}'; this executor runs on cpu tensors.`);
      const arr = t.storage.handle as TypedArray;
      // Contiguous inputs are read in place; others are gathered into the preallocated staging buffer.
      if (isContiguousLayout(t.shape, t.strides)) this.slots.set(s.value, t.offset === 0 && arr.length === s.staging.length ? arr : arr.subarray(t.offset, t.offset + s.staging.length) as TypedArray);
      else {
        this.slots.set(s.value, s.staging);
        s.staging.set(t.data());
      }
    });
    this.checkGuards(this.preGuards);
    for (const st of this.steps) {
      st.run();
      if (st.guards.length > 0) this.checkGuards(st.guards);
    }
    this.stats.runs++;
    // Write-backs after every step (so reads of a parameter saw its old value), then results.
    const grads: Tensor[] = [];
    this.graph.writes.forEach((w, k) => {
      const src = [this.slot(w.value)];
      if (w.kind === 'data') this.writeCopies[k]!(src, w.target.storage.handle as TypedArray);
      else grads.push(this.materialize(w.value, this.writeCopies[k]!, this.reusedGrads?.[grads.length]));
    });
    let gi = 0;
    for (const w of this.graph.writes) if (w.kind === 'grad') w.target.grad = keep(grads[gi++]!);
    const outs = this.graph.outputs.map((o, k) => this.materialize(o, this.outCopies[k]!, this.reusedOutputs?.[k]));
    if (this.opts.reuseOutputs) {
      this.reusedOutputs ??= outs;
      this.reusedGrads ??= grads;
    }
    return outs;
  }

  private materialize(v: ValueId, copy: CompiledKernel, reuse: Tensor | undefined): Tensor {
    const info = this.graph.value(v);
    let t = reuse;
    if (t === undefined || t.isDisposed) {
      t = Tensor.fromStorage(cpuBackend.alloc(info.dtype, sizeOf(info.shape)), info.shape, info.dtype);
      this.stats.allocations++;
    }
    copy([this.slot(v)], t.storage.handle as TypedArray);
    return t;
  }
}

/** Shape check helper for error messages. */
export function describeValue(g: Graph, v: ValueId): string {
  const x = g.value(v);
  return `%${v} ${fmtShape(x.shape)} ${x.dtype}`;
}

export { contiguousStrides };
