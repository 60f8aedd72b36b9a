// The WebAssembly emitter of the kernel IR (float32 elementwise kernels), through the wasm
// backend's encoder: the loop nest of the same KernelSpec the JS emitter reads, with the innermost
// axis vectorized as f32x4 when every input walks it contiguously or broadcasts it (stride 0), and
// a scalar loop for the remainder or for strided rows.
//
// By default only ops whose f32/f32x4 instruction gives the reference's result bit for bit are
// emitted (+ − × ÷, min/max with NaN propagation, neg, abs, relu, sqrt, floor, ceil,
// round-half-even; comparisons, isnan and logical ops as bool intermediates, and where);
// canEmitWasm says whether a spec qualifies. With `{ transcendentals: true }`
// exp, expm1, log, log1p, tanh, sigmoid, erf and rsqrt are emitted too, as the wasm backend's own
// float32 kernels compute them (transcendental-kernel.ts: within 2 ulp of the exact value, not
// bit-identical to the reference's rounded Math.*, but bit-identical to what the wasm backend
// gives for the same op run alone, since it is the same code and a scalar element runs the vector
// code on a splat). The function takes byte addresses in the imported memory: `(out, in0, in1, ...)`.
import { ModuleBuilder, Op, MemOp, SimdOp, SimdMemOp, ValType, type FunctionBuilder, type MemoryImport } from '../../backend/wasm/encoder.js';
import { simplifyKernel, type KernelSpec } from './kernel-ir.js';
import { BINARY as SIMD_BINARY_INSTRUCTIONS, UNARY as SIMD_UNARY_INSTRUCTIONS } from '../../backend/wasm/elementwise-kernel.js';
import { ConstantPool, TRANSCENDENTAL_OPS, emitTranscendentalScalar, emitTranscendentalVector, type TranscendentalOp } from '../../backend/wasm/transcendental-kernel.js';

const { i32, v128, f32 } = ValType;

// The instruction tables are the wasm backend's, so both emitters lower an op the same way.
const BINARY: Record<string, { simd: SimdOp; scalar: Op }> = SIMD_BINARY_INSTRUCTIONS;
const UNARY: Record<string, { simd: (f: FunctionBuilder) => void; scalar: (f: FunctionBuilder) => void }> = SIMD_UNARY_INSTRUCTIONS;

// The transcendentals both the generated JS kernels (which define the fusible scalar ops) and the
// wasm backend compute; gelu/geluGrad are primitives the fusion pass does not put in kernel bodies.
const TRANSCENDENTAL: ReadonlySet<string> = new Set<string>(TRANSCENDENTAL_OPS.filter((op) => op !== 'gelu' && op !== 'geluGrad'));

/** Whether `op` is one of the transcendentals emitted with `{ transcendentals: true }`. */
export function isWasmTranscendental(op: string): boolean {
  return TRANSCENDENTAL.has(op);
}

export interface WasmEmitOptions {
  /**
   * Also emit the float32 transcendentals (exp, expm1, log, log1p, tanh, sigmoid, erf, rsqrt) with
   * the wasm backend's own approximations (within 2 ulp; equal to the wasm backend's kernels, not
   * to the reference/JS kernels). Default false: only ops bit-identical to the JS kernels.
   */
  transcendentals?: boolean;
}

/**
 * Whether the wasm emitter can produce this kernel: by default with results identical to the JS
 * one; with `transcendentals`, identical to the wasm backend's kernels run op by op.
 */
export function canEmitWasm(spec: KernelSpec, opts: WasmEmitOptions = {}): boolean {
  if (spec.reduce !== undefined || spec.outStrides !== undefined || spec.outDtype !== 'float32') return false;
  if (spec.inputs.some((i) => i.dtype !== 'float32')) return false;
  const dtypeOf = (k: number): string => {
    const e = spec.body[k]!;
    return e.kind === 'load' ? spec.inputs[e.input]!.dtype : e.dtype;
  };
  if (spec.body.length === 0 || dtypeOf(spec.body.length - 1) !== 'float32') return false;
  return spec.body.every((e) => {
    if (e.kind === 'literal') return e.dtype === 'float32';
    if (e.kind !== 'op') return true;
    const args = e.args.map(dtypeOf);
    if (e.dtype === 'bool') {
      const want = BOOL_OPS[e.op]?.args;
      return want !== undefined && args.every((d) => d === want);
    }
    if (e.dtype !== 'float32') return false;
    if (e.op === 'where') return args[0] === 'bool' && args[1] === 'float32' && args[2] === 'float32';
    return args.every((d) => d === 'float32') && (e.op in BINARY || e.op in UNARY || (opts.transcendentals === true && TRANSCENDENTAL.has(e.op)));
  });
}

/**
 * Ops with a bool result, as intermediates of a body (inputs and the output stay float32): a lane
 * mask (all ones or zeros, as f32x4 comparisons give) in the vector loop, an i32 0/1 in the
 * scalar one; `where` selects with v128.bitselect / select. All exact, so bit-identical to the
 * ops run one by one. `args`: the dtype of every argument.
 */
const BOOL_OPS: Record<string, { args: 'float32' | 'bool'; simd: (f: FunctionBuilder) => void; scalar: (f: FunctionBuilder) => void }> = {
  eq: { args: 'float32', simd: (f) => f.simd(SimdOp.f32x4Eq), scalar: (f) => f.op(Op.f32Eq) },
  ne: { args: 'float32', simd: (f) => f.simd(SimdOp.f32x4Ne), scalar: (f) => f.op(Op.f32Ne) },
  lt: { args: 'float32', simd: (f) => f.simd(SimdOp.f32x4Lt), scalar: (f) => f.op(Op.f32Lt) },
  le: { args: 'float32', simd: (f) => f.simd(SimdOp.f32x4Le), scalar: (f) => f.op(Op.f32Le) },
  gt: { args: 'float32', simd: (f) => f.simd(SimdOp.f32x4Gt), scalar: (f) => f.op(Op.f32Gt) },
  ge: { args: 'float32', simd: (f) => f.simd(SimdOp.f32x4Ge), scalar: (f) => f.op(Op.f32Ge) },
  // x ≠ x only for NaN (its argument is pushed once; the emitter duplicates it).
  isnan: { args: 'float32', simd: (f) => f.simd(SimdOp.f32x4Ne), scalar: (f) => f.op(Op.f32Ne) },
  logicalNot: { args: 'bool', simd: (f) => f.simd(SimdOp.v128Not), scalar: (f) => f.op(Op.i32Eqz) },
  logicalAnd: { args: 'bool', simd: (f) => f.simd(SimdOp.v128And), scalar: (f) => f.op(Op.i32And) },
  logicalOr: { args: 'bool', simd: (f) => f.simd(SimdOp.v128Or), scalar: (f) => f.op(Op.i32Or) },
};

/**
 * A module for a float32 elementwise spec exporting
 *   kernel(out, in0, ...)        the whole iteration space;
 * and, for rank >= 1 (after merging axes: see fusedTaskLayout), for splitting over threads:
 *   rows(out, in0, ..., count)   the first `count` indices of the outermost axis, every pointer
 *                                at the start of that block;
 *   task(unit, params, thread)   the wasm backend's thread-pool entry: calls rows with unit u's
 *                                descriptor, FUSED_TASK_WORDS(nIn) i32 words at params + 4·u·words:
 *                                [out, in0, ..., count].
 * Addresses are bytes in the imported memory. An element's result does not depend on where a
 * block starts (exact f32 ops; a transcendental's scalar tail runs its vector code on a splat).
 */
export function emitWasmKernel(spec0: KernelSpec, memory: MemoryImport, opts: WasmEmitOptions = {}): Uint8Array<ArrayBuffer> {
  if (!canEmitWasm(spec0, opts)) {
    throw new Error('emitWasmKernel: the spec has ops, dtypes or a reduction the wasm emitter does not handle (see canEmitWasm); '
      + `ops: ${[...new Set(spec0.body.flatMap((e) => (e.kind === 'op' ? [`${e.op}:${e.dtype}`] : [])))].join(', ') || 'none'}.`);
  }
  const spec = simplifyKernel(spec0);
  const nIn = spec.inputs.length;
  const rank = spec.shape.length;
  const m = new ModuleBuilder().named(`fused ${[...new Set(spec.body.flatMap((e) => (e.kind === 'op' ? [e.op] : [])))].join('+')}`).importMemory(memory);
  // rank 0: `kernel` alone; otherwise `rows` with the outer extent as its last parameter.
  const f = m.function({ params: [i32, ...spec.inputs.map(() => i32), ...(rank > 0 ? [i32] : [])], results: [] }, rank > 0 ? 'rows' : 'kernel');
  const countParam = nIn + 1;
  const extent = (d: number): (() => void) => (d === 0 ? () => f.localGet(countParam) : () => f.i32Const(spec.shape[d]!));
  const po = f.local(i32);
  f.localGet(0).localSet(po);
  // Pointer locals per input per loop level: level d holds the address at the start of axis d.
  const ptr: number[][] = spec.inputs.map((inp, k) => {
    const locals = Array.from({ length: rank + 1 }, () => f.local(i32));
    f.localGet(k + 1).i32Const(inp.offset * 4).op(Op.i32Add).localSet(locals[0]!);
    return locals;
  });
  // Each body value in a v128 local (vector loop) and an f32 local (scalar loop; an i32 for bools).
  const vals = spec.body.map((e) => ({ v: f.local(v128), s: f.local(e.kind === 'op' && e.dtype === 'bool' ? i32 : f32) }));
  // The transcendentals' constants are set once in locals before the loops (as the wasm backend's
  // kernels do: materialized inside the loop they cost as much as the arithmetic).
  const transcendentals = [...new Set(spec.body.flatMap((e) => (e.kind === 'op' && TRANSCENDENTAL.has(e.op) ? [e.op as TranscendentalOp] : [])))];
  const pool = transcendentals.length === 0 ? undefined
    : ConstantPool.hoist(f, (scratch, p) => { for (const op of transcendentals) emitTranscendentalVector(scratch, op, p); });
  const emitBody = (vector: boolean, load: (k: number) => void): void => {
    const get = (a: number): void => { f.localGet(vector ? vals[a]!.v : vals[a]!.s); };
    spec.body.forEach((e, i) => {
      if (e.kind === 'load') load(e.input);
      else if (e.kind === 'literal') {
        if (vector) f.f32x4Const(e.value, e.value, e.value, e.value);
        else f.f32Const(e.value);
      } else if (e.op === 'where') {
        // bitselect(a, b, mask) / select(a, b, cond): the chosen value's bits, unchanged.
        get(e.args[1]!); get(e.args[2]!); get(e.args[0]!);
        if (vector) f.simd(SimdOp.v128Bitselect);
        else f.op(Op.select);
      } else if (e.dtype === 'bool') {
        for (const a of e.op === 'isnan' ? [e.args[0]!, e.args[0]!] : e.args) get(a);
        if (vector) BOOL_OPS[e.op]!.simd(f);
        else BOOL_OPS[e.op]!.scalar(f);
      } else {
        for (const a of e.args) get(a);
        const b = BINARY[e.op];
        if (b !== undefined) {
          if (vector) f.simd(b.simd);
          else f.op(b.scalar);
        } else if (TRANSCENDENTAL.has(e.op)) {
          if (vector) emitTranscendentalVector(f, e.op as TranscendentalOp, pool);
          else emitTranscendentalScalar(f, e.op as TranscendentalOp, pool);
        } else if (vector) UNARY[e.op]!.simd(f);
        else UNARY[e.op]!.scalar(f);
      }
      f.localSet(vector ? vals[i]!.v : vals[i]!.s);
    });
  };
  const result = spec.body.length - 1;
  const loopLevel = (d: number): void => {
    const i = f.local(i32);
    if (d < rank - 1) {
      f.forRange(i, () => f.i32Const(0), extent(d), 1, () => {
        spec.inputs.forEach((_, k) => f.localGet(ptr[k]![d]!).localSet(ptr[k]![d + 1]!));
        loopLevel(d + 1);
        spec.inputs.forEach((inp, k) => {
          if (inp.strides[d] !== 0) f.localGet(ptr[k]![d]!).i32Const(inp.strides[d]! * 4).op(Op.i32Add).localSet(ptr[k]![d]!);
        });
      });
      return;
    }
    // The innermost axis: a row (its length is the `count` parameter when it is the only axis).
    const rowPtr = (k: number): number => ptr[k]![d]!;
    const strides = spec.inputs.map((inp) => inp.strides[d] ?? 0);
    const vectorizable = strides.every((s) => s === 0 || s === 1);
    const nVec = f.local(i32);
    if (vectorizable) extent(d)();
    else f.i32Const(0);
    if (vectorizable) f.i32Const(-4).op(Op.i32And);
    f.localSet(nVec);
    if (vectorizable) {
      f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
        emitBody(true, (k) => {
          if (strides[k] === 0) f.localGet(rowPtr(k)).mem(MemOp.f32Load).simd(SimdOp.f32x4Splat);
          else f.localGet(rowPtr(k)).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add).simdMem(SimdMemOp.v128Load, 0, 2);
        });
        f.localGet(po).localGet(vals[result]!.v).simdMem(SimdMemOp.v128Store, 0, 2);
        f.localGet(po).i32Const(16).op(Op.i32Add).localSet(po);
      });
    }
    const j = f.local(i32);
    f.forRange(j, () => f.localGet(nVec), extent(d), 1, () => {
      emitBody(false, (k) => f.localGet(rowPtr(k)).localGet(j).i32Const(strides[k]! * 4).op(Op.i32Mul).op(Op.i32Add).mem(MemOp.f32Load));
      f.localGet(po).localGet(vals[result]!.s).mem(MemOp.f32Store);
      f.localGet(po).i32Const(4).op(Op.i32Add).localSet(po);
    });
  };
  if (rank === 0) {
    emitBody(false, (k) => f.localGet(ptr[k]![0]!).mem(MemOp.f32Load));
    f.localGet(po).localGet(vals[result]!.s).mem(MemOp.f32Store);
    return m.encode();
  }
  loopLevel(0);
  // kernel(out, in0, ...) = rows(out, in0, ..., shape[0]).
  const whole = m.function({ params: [i32, ...spec.inputs.map(() => i32)], results: [] }, 'kernel');
  for (let k = 0; k <= nIn; k++) whole.localGet(k);
  whole.i32Const(spec.shape[0]!).call(f.index);
  // task(unit, params, thread): rows(...descriptor of unit).
  const task = m.function({ params: [i32, i32, i32], results: [] }, FUSED_TASK_EXPORT);
  const base = task.local(i32);
  task.localGet(1).localGet(0).i32Const(4 * fusedTaskWords(nIn)).op(Op.i32Mul).op(Op.i32Add).localSet(base);
  for (let w = 0; w < fusedTaskWords(nIn); w++) task.localGet(base).mem(MemOp.i32Load, 4 * w);
  task.call(f.index);
  return m.encode();
}

/** The thread pool's entry point of a fused module (see emitWasmKernel). */
export const FUSED_TASK_EXPORT = 'task';

/** i32 words of one unit's descriptor in a fused module's task parameter block: [out, in0, ..., count]. */
export function fusedTaskWords(inputs: number): number {
  return inputs + 2;
}

/**
 * The loop nest a fused module runs (axes merged as the emitter merges them): the outer extent
 * `rows` splits, and the element strides of the output and of each input along that axis.
 */
export function fusedTaskLayout(spec: KernelSpec): { rank: number; outer: number; outStride: number; inputStrides: number[] } {
  const s = simplifyKernel(spec);
  const rank = s.shape.length;
  const outStride = rank === 0 ? 0 : s.shape.slice(1).reduce((a, b) => a * b, 1);
  return { rank, outer: rank === 0 ? 1 : s.shape[0]!, outStride, inputStrides: s.inputs.map((i) => i.strides[0] ?? 0) };
}
