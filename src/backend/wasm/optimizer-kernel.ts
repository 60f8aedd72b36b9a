// Generated SIMD kernels for optimizer updates (SGD, Adam/AdamW, RMSprop, Adagrad): one pass over
// a parameter that reads its gradient and state and writes the new parameter and state in place,
// in the wasm heap. Before these, a training step's optimizer ran a JS loop per parameter (~9 ns
// per element, a third of an MLP step); here it is a few instructions per four elements.
//
// Arithmetic is float32, one rounding per operation, as PyTorch computes a float32 parameter's
// update on the CPU; the operations and their order are src/optim's formulas (documented on
// OptimizerRule in backend/backend.ts). The scalars that depend on the step (bias corrections, a
// decayed learning rate) are computed by the optimizer in float64 and arrive here as f32 arguments;
// the structure (which options are on) selects a module, generated once per combination.
//
// Parameter and state must be contiguous float32; the gradient may have any strides: the update
// walks the parameter in memory order and reads the gradient through its strides (f32x4 loads
// where it is contiguous along a row, four scalar loads gathered into a vector otherwise), so a
// transposed or broadcast gradient costs no copy. It still costs memory time: Adam on a [512, 784]
// weight measured 1.1 ns per element with a contiguous gradient, 4.0 with a transposed one (reads
// 2 KiB apart; blocking the columns did not help), against ~25 (copy, then the JS loop) before.
//
// Large parameters with a contiguous gradient can be split into chunks over the thread pool (the
// module's `task` export; from parallelMinElements elements on); every element is computed the same
// way wherever it runs, so the result does not depend on the thread count.

import type { OptimizerRule, OptimizerUpdate, KernelInput, Storage } from '../backend.js';
import { contiguousStrides, isContiguousLayout, sizeOf } from '../../core/shape.js';
import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, type FunctionBuilder, type MemoryImport } from './encoder.js';
import { SimdLaneOp } from './opcodes.js';
import { planRows, forEachRow } from './strided-rows.js';
import type { WasmHeap } from './memory.js';
import type { KernelModule, ThreadPool } from './threads.js';
import { PoolModules } from './pool-modules.js';

const { i32, f32, v128 } = ValType;

export const OPTIMIZER_EXPORT = 'update';

/**
 * The pool's entry point, task(unit, params, thread): unit u updates elements [u·chunk, (u+1)·chunk)
 * of one contiguous row described by the parameter block at `params` (OptimizerParam).
 */
export const OPTIMIZER_TASK_EXPORT = 'task';

/** Word offsets in the parameter block a task reads: byte addresses, counts, then the f32 scalars. */
export const OptimizerParam = { param: 0, grad: 1, states: 2, n: 5, chunk: 6, scalars: 7 } as const;
/** Words in the parameter block (7 + up to 8 scalars). */
const PARAM_WORDS = 16;

/**
 * A size from which splitting an update over the pool could pay (waking workers costs tens of µs;
 * Adam's update is bound by its divisions and square root, ~1.2 ns per element on one thread).
 */
export const SUGGESTED_PARALLEL_MIN_ELEMENTS = 1 << 16;
/** Elements per task unit at least (a multiple of 4, so that only the last unit has a scalar tail). */
const MIN_CHUNK = 1 << 14;

/** Up to three state tensors per parameter (Adam with amsgrad, centered RMSprop with momentum). */
const MAX_STATES = 3;

/**
 * Emits the same update for four lanes (f32x4) or one (f32): rule bodies are written once against
 * this, so the vector loop and the scalar tail compute bit-identical values.
 */
export class LaneEmitter {
  constructor(
    private readonly f: FunctionBuilder,
    readonly vector: boolean,
    /** Pushes scalar argument k (splatted for the vector form). */
    private readonly scalar: (k: number) => void,
    /** Pushes the gradient at the current element. */
    private readonly gradient: () => void,
    /** Pushes the byte address of the current element of stream s (0 = parameter, 1.. = state). */
    private readonly address: (s: number) => void,
  ) {}

  tmp(): number {
    return this.f.local(this.vector ? v128 : f32);
  }
  get(l: number): this { this.f.localGet(l); return this; }
  set(l: number): this { this.f.localSet(l); return this; }
  c(k: number): this { this.scalar(k); return this; }
  grad(): this { this.gradient(); return this; }
  load(s: number): this {
    this.address(s);
    if (this.vector) this.f.simdMem(SimdMemOp.v128Load, 0, 2);
    else this.f.mem(MemOp.f32Load);
    return this;
  }
  store(s: number, value: () => void): this {
    this.address(s);
    value();
    if (this.vector) this.f.simdMem(SimdMemOp.v128Store, 0, 2);
    else this.f.mem(MemOp.f32Store);
    return this;
  }
  private bin(v: SimdOp, s: Op): this {
    if (this.vector) this.f.simd(v);
    else this.f.op(s);
    return this;
  }
  add(): this { return this.bin(SimdOp.f32x4Add, Op.f32Add); }
  sub(): this { return this.bin(SimdOp.f32x4Sub, Op.f32Sub); }
  mul(): this { return this.bin(SimdOp.f32x4Mul, Op.f32Mul); }
  div(): this { return this.bin(SimdOp.f32x4Div, Op.f32Div); }
  /** NaN-propagating, -0 < +0: Math.max's semantics. */
  max(): this { return this.bin(SimdOp.f32x4Max, Op.f32Max); }
  sqrt(): this { return this.bin(SimdOp.f32x4Sqrt, Op.f32Sqrt); }
  neg(): this { return this.bin(SimdOp.f32x4Neg, Op.f32Neg); }
}

/** What a rule compiles to: its module key, state order, per-call scalars and element body. */
interface RuleSpec {
  readonly key: string;
  readonly states: readonly string[];
  readonly scalars: readonly number[];
  readonly body: (e: LaneEmitter) => void;
}

const PARAM = 0;

/** g = ±grad (+ weightDecay·p with `decayIndex`), into a new temp; p is the parameter's temp. */
function direction(e: LaneEmitter, maximize: boolean, p: number, decayIndex: number | undefined): number {
  const g = e.tmp();
  e.grad();
  if (maximize) e.neg();
  if (decayIndex !== undefined) e.c(decayIndex).get(p).mul().add();
  e.set(g);
  return g;
}

/**
 * What selects a rule's module: its kind and every option that changes the emitted code (the body
 * in ruleSpec reads no other flag). Cheap, so that an update finds its compiled kernel without
 * building the body.
 */
export function ruleKey(rule: OptimizerRule): string {
  switch (rule.kind) {
    case 'adam': return `adam ams=${rule.amsgrad} max=${rule.maximize} l2=${rule.weightDecay !== 0} decay=${rule.decay !== 1}`;
    case 'sgd': return `sgd max=${rule.maximize} l2=${rule.weightDecay !== 0} mom=${rule.momentum !== 0} nesterov=${rule.nesterov} first=${rule.momentum !== 0 && rule.firstStep}`;
    case 'rmsprop': return `rmsprop max=${rule.maximize} l2=${rule.weightDecay !== 0} mom=${rule.momentum > 0} centered=${rule.centered}`;
    case 'adagrad': return `adagrad max=${rule.maximize} l2=${rule.weightDecay !== 0}`;
  }
}

/** The f32 arguments of a rule's kernel, in the order its body indexes them (at most 8). */
export function ruleScalars(rule: OptimizerRule): number[] {
  switch (rule.kind) {
    case 'adam': return [rule.stepSize, rule.biasCorrection2Sqrt, rule.decay, rule.weightDecay, 1 - rule.beta1, rule.beta2, 1 - rule.beta2, rule.eps];
    case 'sgd': return [rule.lr, rule.momentum, 1 - rule.dampening, rule.weightDecay];
    case 'rmsprop': return [rule.lr, rule.alpha, 1 - rule.alpha, rule.eps, rule.weightDecay, rule.momentum];
    case 'adagrad': return [rule.lr, rule.weightDecay, rule.eps];
  }
}

/** The module key, state order, scalars and body of a rule (see OptimizerRule for the formulas). */
export function ruleSpec(rule: OptimizerRule): RuleSpec {
  const key = ruleKey(rule), scalars = ruleScalars(rule);
  switch (rule.kind) {
    case 'adam': {
      const coupled = rule.weightDecay !== 0, decoupled = rule.decay !== 1;
      const [STEP, BC2, DECAY, WD, OMB1, B2, OMB2, EPS] = [0, 1, 2, 3, 4, 5, 6, 7];
      return {
        key, scalars,
        states: rule.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq'] : ['expAvg', 'expAvgSq'],
        body: (e) => {
          const p = e.tmp(), m = e.tmp(), v = e.tmp(), d = e.tmp();
          e.load(PARAM);
          if (decoupled) e.c(DECAY).mul();
          e.set(p);
          const g = direction(e, rule.maximize, p, coupled ? WD : undefined);
          // m ← m + (g − m)(1 − β1);  v ← v·β2 + (1 − β2)·g·g
          e.load(1).set(m).get(m).get(g).get(m).sub().c(OMB1).mul().add().set(m).store(1, () => e.get(m));
          e.load(2).c(B2).mul().c(OMB2).get(g).mul().get(g).mul().add().set(v).store(2, () => e.get(v));
          if (rule.amsgrad) e.load(3).get(v).max().set(v).store(3, () => e.get(v));
          // p ← p − stepSize·(m / (√v / √(1 − β2^t) + eps))
          e.get(v).sqrt().c(BC2).div().c(EPS).add().set(d);
          e.store(PARAM, () => e.get(p).c(STEP).get(m).get(d).div().mul().sub());
        },
      };
    }
    case 'sgd': {
      const l2 = rule.weightDecay !== 0, momentum = rule.momentum !== 0;
      const [LR, MOM, OMD, WD] = [0, 1, 2, 3];
      return {
        key, scalars,
        states: momentum ? ['momentumBuffer'] : [],
        body: (e) => {
          const p = e.tmp();
          e.load(PARAM).set(p);
          const d = direction(e, rule.maximize, p, l2 ? WD : undefined);
          if (momentum) {
            // The buffer starts as the first step's direction (no dampening on that step).
            const buf = e.tmp();
            if (rule.firstStep) e.get(d).set(buf);
            else e.load(1).c(MOM).mul().c(OMD).get(d).mul().add().set(buf);
            e.store(1, () => e.get(buf));
            if (rule.nesterov) e.get(d).c(MOM).get(buf).mul().add().set(d);
            else e.get(buf).set(d);
          }
          e.store(PARAM, () => e.get(p).c(LR).get(d).mul().sub());
        },
      };
    }
    case 'rmsprop': {
      const l2 = rule.weightDecay !== 0, momentum = rule.momentum > 0;
      const [LR, ALPHA, OMA, EPS, WD, MOM] = [0, 1, 2, 3, 4, 5];
      const states = ['squareAvg', ...(momentum ? ['momentumBuffer'] : []), ...(rule.centered ? ['gradAvg'] : [])];
      const BUF = states.indexOf('momentumBuffer') + 1, GA = states.indexOf('gradAvg') + 1;
      return {
        key, scalars, states,
        body: (e) => {
          const p = e.tmp(), sq = e.tmp(), avg = e.tmp();
          e.load(PARAM).set(p);
          const g = direction(e, rule.maximize, p, l2 ? WD : undefined);
          // sq ← sq·α + (1 − α)·g·g
          e.load(1).c(ALPHA).mul().c(OMA).get(g).mul().get(g).mul().add().set(sq).store(1, () => e.get(sq));
          if (rule.centered) {
            // ga ← ga + (g − ga)(1 − α);  avg = √(sq − ga²) + eps
            const ga = e.tmp();
            e.load(GA).set(ga).get(ga).get(g).get(ga).sub().c(OMA).mul().add().set(ga).store(GA, () => e.get(ga));
            e.get(sq).get(ga).get(ga).mul().sub().sqrt().c(EPS).add().set(avg);
          } else {
            e.get(sq).sqrt().c(EPS).add().set(avg);
          }
          if (momentum) {
            const buf = e.tmp();
            e.load(BUF).c(MOM).mul().get(g).get(avg).div().add().set(buf).store(BUF, () => e.get(buf));
            e.store(PARAM, () => e.get(p).c(LR).get(buf).mul().sub());
          } else {
            e.store(PARAM, () => e.get(p).c(LR).get(g).get(avg).div().mul().sub());
          }
        },
      };
    }
    case 'adagrad': {
      const l2 = rule.weightDecay !== 0;
      const [LR, WD, EPS] = [0, 1, 2];
      return {
        key, scalars,
        states: ['sum'],
        body: (e) => {
          const p = e.tmp(), acc = e.tmp();
          e.load(PARAM).set(p);
          const g = direction(e, rule.maximize, p, l2 ? WD : undefined);
          // acc ← acc + g·g;  p ← p − lr·(g / (√acc + eps))
          e.load(1).get(g).get(g).mul().add().set(acc).store(1, () => e.get(acc));
          e.store(PARAM, () => e.get(p).c(LR).get(g).get(acc).sqrt().c(EPS).add().div().mul().sub());
        },
      };
    }
  }
}

/**
 * The module of one rule structure, exporting
 *   update(param, grad, state0, state1, state2, n, rows, gradStride, gradRowStride, scalars…)
 * over `rows` rows of `n` elements: parameter and state contiguous (rows follow each other), the
 * gradient at gradStride bytes between elements of a row and gradRowStride bytes between rows.
 * Addresses and strides are in bytes.
 */
export function buildOptimizerModule(spec: RuleSpec, memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().named(`optimizer ${spec.key}`).importMemory(memory);
  const scalarCount = spec.scalars.length;
  const f = m.function({ params: [...Array.from({ length: 9 }, () => i32), ...Array.from({ length: scalarCount }, () => f32)], results: [] }, OPTIMIZER_EXPORT);
  const [PARAM_PTR, GRAD_PTR, N, ROWS, G_STRIDE, G_ROW_STRIDE] = [0, 1, 5, 6, 7, 8];
  const base = [PARAM_PTR, 2, 3, 4];
  const scalarParam = (k: number) => 9 + k;
  const o = f.local(i32), r = f.local(i32), gp = f.local(i32), gRow = f.local(i32), ga = f.local(i32);
  const vecEnd = f.local(i32), rowEnd = f.local(i32), gVecStep = f.local(i32);
  const splat = spec.scalars.map(() => f.local(v128));
  spec.scalars.forEach((_, k) => f.localGet(scalarParam(k)).simd(SimdOp.f32x4Splat).localSet(splat[k]!));
  const address = (s: number) => f.localGet(base[s]!).localGet(o).op(Op.i32Add);
  const contiguousGrad = () => f.localGet(gp).simdMem(SimdMemOp.v128Load, 0, 2);
  const gatheredGrad = () => {
    f.localGet(gp).mem(MemOp.f32Load).simd(SimdOp.f32x4Splat);
    f.localGet(gp).localSet(ga);
    for (let lane = 1; lane < 4; lane++) {
      f.localGet(ga).localGet(G_STRIDE).op(Op.i32Add).localTee(ga).mem(MemOp.f32Load).simdLane(SimdLaneOp.f32x4ReplaceLane, lane);
    }
  };
  const emitter = (vector: boolean, gradient: () => void) =>
    new LaneEmitter(f, vector, (k) => f.localGet(vector ? splat[k]! : scalarParam(k)), gradient, address);
  const vectorLoop = (gradient: () => void) => {
    const e = emitter(true, gradient);
    f.forRange(o, () => f.localGet(o), () => f.localGet(vecEnd), 16, () => {
      spec.body(e);
      f.localGet(gp).localGet(gVecStep).op(Op.i32Add).localSet(gp);
    });
  };
  f.localGet(G_STRIDE).i32Const(2).op(Op.i32Shl).localSet(gVecStep);
  f.i32Const(0).localSet(o);
  f.localGet(GRAD_PTR).localSet(gRow);
  f.forRange(r, () => f.i32Const(0), () => f.localGet(ROWS), 1, () => {
    f.localGet(gRow).localSet(gp);
    f.localGet(o).localGet(N).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(rowEnd);
    f.localGet(o).localGet(N).i32Const(-4).op(Op.i32And).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(vecEnd);
    f.localGet(G_STRIDE).i32Const(4).op(Op.i32Eq).if();
    vectorLoop(contiguousGrad);
    f.else();
    vectorLoop(gatheredGrad);
    f.end();
    const tail = emitter(false, () => f.localGet(gp).mem(MemOp.f32Load));
    f.forRange(o, () => f.localGet(o), () => f.localGet(rowEnd), 4, () => {
      spec.body(tail);
      f.localGet(gp).localGet(G_STRIDE).op(Op.i32Add).localSet(gp);
    });
    f.localGet(gRow).localGet(G_ROW_STRIDE).op(Op.i32Add).localSet(gRow);
  });
  emitTask(m, f.index, scalarCount);
  return m.encode();
}

/** task(unit, params, thread): update() over unit's chunk of the contiguous row in the parameter block. */
function emitTask(m: ModuleBuilder, updateIndex: number, scalarCount: number): void {
  const f = m.function({ params: [i32, i32, i32], results: [] }, OPTIMIZER_TASK_EXPORT);
  const [UNIT, PARAMS] = [0, 1];
  const start = f.local(i32), len = f.local(i32), offset = f.local(i32);
  const word = (w: number) => f.localGet(PARAMS).mem(MemOp.i32Load, 4 * w);
  f.localGet(UNIT);
  word(OptimizerParam.chunk);
  f.op(Op.i32Mul).localTee(start).i32Const(2).op(Op.i32Shl).localSet(offset);
  // len = min(chunk, n − start)
  word(OptimizerParam.n);
  f.localGet(start).op(Op.i32Sub).localSet(len);
  word(OptimizerParam.chunk);
  f.localGet(len);
  word(OptimizerParam.chunk);
  f.localGet(len).op(Op.i32LtS).op(Op.select).localSet(len);
  for (const w of [OptimizerParam.param, OptimizerParam.grad, OptimizerParam.states, OptimizerParam.states + 1, OptimizerParam.states + 2]) {
    word(w);
    f.localGet(offset).op(Op.i32Add);
  }
  f.localGet(len).i32Const(1).i32Const(4).i32Const(0);
  for (let k = 0; k < scalarCount; k++) f.localGet(PARAMS).mem(MemOp.f32Load, 4 * (OptimizerParam.scalars + k));
  f.call(updateIndex);
}

type UpdateFunction = (...args: number[]) => void;

/** A rule structure's compiled kernel and what its updates need. */
interface CompiledRule {
  readonly spec: RuleSpec;
  readonly fn: UpdateFunction;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The wasm backend's fused optimizer updates: one compiled module per rule structure. */
export class WasmOptimizerKernels {
  private readonly compiled = new Map<string, CompiledRule>();
  /** The same modules registered with the current pool, for updates split over its threads. */
  private readonly poolModules = new PoolModules();
  private params: number | undefined;
  /** Updates run by a kernel (tests check that the fused path was taken). */
  updates = 0;
  /** Of those, updates split over the thread pool. */
  parallelUpdates = 0;
  /**
   * Parameters with fewer elements run on the calling thread; larger ones with a contiguous
   * gradient are split over the pool. Measured on the 2-core development machine (2026-11-26,
   * host busy), the two settings alternated in one process: Adam's step over the MLP's parameters
   * took 0.79 ms split against 1.13 ms on one thread (median of 300 pairs), and the whole MLP
   * training step 1.03-1.04x less time (150 pairs). An earlier throwaway loop under heavy load had
   * measured the split slower (2.3 vs 1.4 ms), so it was opt-in until then. Infinity turns it off.
   */
  parallelMinElements = SUGGESTED_PARALLEL_MIN_ELEMENTS;

  constructor(private readonly heap: WasmHeap, private readonly currentPool: () => ThreadPool | undefined = () => undefined) {}

  private bytesFor(spec: RuleSpec): Uint8Array<ArrayBuffer> {
    return buildOptimizerModule(spec, { module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared });
  }

  private compiledFor(rule: OptimizerRule): CompiledRule {
    const key = ruleKey(rule);
    let c = this.compiled.get(key);
    if (c === undefined) {
      const spec = ruleSpec(rule);
      const instance = new WebAssembly.Instance(new WebAssembly.Module(this.bytesFor(spec)), { env: { memory: this.heap.memory } });
      c = { spec, fn: instance.exports[OPTIMIZER_EXPORT] as UpdateFunction };
      this.compiled.set(key, c);
    }
    return c;
  }

  /** The pool to split an update of `n` contiguous elements over, with the rule's module registered; undefined to run here. */
  private parallelModule(spec: RuleSpec, n: number): { pool: ThreadPool; module: KernelModule } | undefined {
    const pool = this.currentPool();
    if (pool === undefined || pool.threads === 1 || n < this.parallelMinElements) return undefined;
    return { pool, module: this.poolModules.get(pool, spec.key, () => this.bytesFor(spec)) };
  }

  /**
   * Runs the update when every tensor is float32 in this heap (`addressOf` gives undefined for a
   * storage elsewhere) with the parameter's shape, and parameter and state are contiguous. Returns
   * false, having written nothing, otherwise. Written with plain loops: for models with many small
   * parameters this host code, not the kernel, is most of an update's time.
   */
  run(update: OptimizerUpdate, addressOf: (s: Storage) => number | undefined): boolean {
    const { spec, fn } = this.compiledFor(update.rule);
    const { param, grad } = update;
    const shape = param.shape;
    const gradAddress = addressOf(grad.storage);
    if (grad.dtype !== 'float32' || !sameShape(grad.shape, shape) || gradAddress === undefined) return false;
    // Parameter, then state (absent states: address 0, never read; offsetting it is harmless).
    const pointers = [0, 0, 0, 0];
    for (let k = 0; k <= spec.states.length; k++) {
      const t: KernelInput | undefined = k === 0 ? param : update.state[spec.states[k - 1]!];
      if (t === undefined || t.dtype !== 'float32' || !sameShape(t.shape, shape) || !isContiguousLayout(t.shape, t.strides)) return false;
      // A gradient viewing memory the update writes would be read after parts of it changed.
      if (t.storage === grad.storage) return false;
      const address = addressOf(t.storage);
      if (address === undefined) return false;
      pointers[k] = address + 4 * t.offset;
    }
    const n = sizeOf(shape);
    this.updates++;
    if (n === 0) return true;
    const s = ruleScalars(update.rule);
    const gradPtr = gradAddress + 4 * grad.offset;
    if (isContiguousLayout(grad.shape, grad.strides)) {
      const parallel = this.parallelModule(spec, n);
      if (parallel !== undefined) this.runParallel(parallel.pool, parallel.module, s, pointers, gradPtr, n);
      else fn(pointers[0]!, gradPtr, pointers[1]!, pointers[2]!, pointers[3]!, n, 1, 4, 0, s[0]!, s[1]!, s[2]!, s[3]!, s[4]!, s[5]!, s[6]!, s[7]!);
      return true;
    }
    // Collapse to rows: a transposed gradient becomes rows of the parameter with the gradient
    // strided along them; dimensions beyond the last two collapsed ones loop here.
    const plan = planRows(shape, [contiguousStrides(shape), grad.strides]);
    const last = plan.outerShape.length - 1;
    const rows = last >= 0 ? plan.outerShape[last]! : 1;
    const gradRowStride = last >= 0 ? 4 * plan.outerStrides[1]![last]! : 0;
    const outer = {
      rowLength: plan.rowLength, innerStrides: plan.innerStrides,
      outerShape: plan.outerShape.slice(0, Math.max(last, 0)), outerStrides: plan.outerStrides.map((st) => st.slice(0, Math.max(last, 0))),
    };
    const gradStride = 4 * plan.innerStrides[1]!;
    forEachRow(outer, [0, 0], ([po, go]) => {
      const at = 4 * po!;
      fn(pointers[0]! + at, gradPtr + 4 * go!, pointers[1]! + at, pointers[2]! + at, pointers[3]! + at,
        plan.rowLength, rows, gradStride, gradRowStride, s[0]!, s[1]!, s[2]!, s[3]!, s[4]!, s[5]!, s[6]!, s[7]!);
    });
    return true;
  }

  /** One contiguous row of `n` elements in chunks over the pool's threads (a few chunks per thread, for balance). */
  private runParallel(pool: ThreadPool, module: KernelModule, scalars: readonly number[], pointers: readonly number[], gradPtr: number, n: number): void {
    this.params ??= this.heap.alloc(PARAM_WORDS * 4);
    const chunk = Math.max(MIN_CHUNK, Math.ceil(n / (4 * pool.threads) / 16) * 16);
    const w = this.params >>> 2;
    const i32 = this.heap.i32, f32 = this.heap.f32;
    i32[w + OptimizerParam.param] = pointers[0]!;
    i32[w + OptimizerParam.grad] = gradPtr;
    for (let k = 0; k < MAX_STATES; k++) i32[w + OptimizerParam.states + k] = pointers[1 + k]!;
    i32[w + OptimizerParam.n] = n;
    i32[w + OptimizerParam.chunk] = chunk;
    scalars.forEach((v, k) => { f32[w + OptimizerParam.scalars + k] = v; });
    this.parallelUpdates++;
    pool.run(module, this.params, Math.ceil(n / chunk), true);
  }
}
