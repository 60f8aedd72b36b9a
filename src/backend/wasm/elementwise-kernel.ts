// Generated kernels for elementwise primitives over a 2-D block: `rows` rows of `n` elements,
// the output contiguous, each input walking its rows with its own inner and outer strides. The
// backend collapses an N-d strided operation into such blocks (strided-rows.ts), so a
// [B, T, H, d] op with transposed inputs is one call, not one call per row.
//
// Inner modes per input: contiguous (f32x4 loads), broadcast (stride 0: one value per row,
// splat) and strided (scalar loads). Only ops whose instruction gives exactly the reference
// backend's result are here: + − × ÷ and sqrt are correctly rounded in both; min/max propagate
// NaN like the reference; relu is max(x, 0); reluGrad masks g's bits with x > 0; round is round-half-even (`nearest`); comparisons
// give the reference's `a > b ? 1 : 0` (NaN included). The float32 transcendentals (exp, log, tanh,
// erf…) are the exception: range reduction + polynomial within 2 ulp of the exact result
// (transcendental-kernel.ts) instead of the reference's rounded Math.*; sin, cos and sign run in JS
// (unary-js.ts).

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport, type FunctionBuilder } from './encoder.js';
import {
  ConstantPool, TRANSCENDENTAL_OPS, emitTranscendentalScalar, emitTranscendentalVector, emitTranscendentalVectors, type TranscendentalOp,
} from './transcendental-kernel.js';

const { i32, v128, f32 } = ValType;

export const SIMD_BINARY_OPS = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const;
export const SIMD_UNARY_OPS = ['neg', 'abs', 'relu', 'sqrt', 'floor', 'ceil', 'round'] as const;
export const SCALAR_COMPARE_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
export type SimdBinaryOp = (typeof SIMD_BINARY_OPS)[number];
export type SimdUnaryOp = (typeof SIMD_UNARY_OPS)[number];
export type ScalarCompareOp = (typeof SCALAR_COMPARE_OPS)[number];

/** How an input walks along a row: stride 1, stride 0, or any other stride. */
export type RowMode = 'contiguous' | 'broadcast' | 'strided';

export function rowMode(elementStride: number): RowMode {
  return elementStride === 1 ? 'contiguous' : elementStride === 0 ? 'broadcast' : 'strided';
}

/** Each float32 binary op's vector and scalar instruction (shared with the compiler's wasm codegen). */
export const BINARY: Record<SimdBinaryOp, { simd: SimdOp; scalar: Op }> = {
  add: { simd: SimdOp.f32x4Add, scalar: Op.f32Add },
  sub: { simd: SimdOp.f32x4Sub, scalar: Op.f32Sub },
  mul: { simd: SimdOp.f32x4Mul, scalar: Op.f32Mul },
  div: { simd: SimdOp.f32x4Div, scalar: Op.f32Div },
  maximum: { simd: SimdOp.f32x4Max, scalar: Op.f32Max },
  minimum: { simd: SimdOp.f32x4Min, scalar: Op.f32Min },
};

/** Each unary op as "x is on the stack, emit this" for a vector and for a scalar (shared with the compiler's wasm codegen). */
export const UNARY: Record<SimdUnaryOp, { simd: (f: FunctionBuilder) => void; scalar: (f: FunctionBuilder) => void }> = {
  neg: { simd: (f) => f.simd(SimdOp.f32x4Neg), scalar: (f) => f.op(Op.f32Neg) },
  abs: { simd: (f) => f.simd(SimdOp.f32x4Abs), scalar: (f) => f.op(Op.f32Abs) },
  relu: {
    simd: (f) => f.f32x4Const(0, 0, 0, 0).simd(SimdOp.f32x4Max),
    scalar: (f) => f.f32Const(0).op(Op.f32Max),
  },
  sqrt: { simd: (f) => f.simd(SimdOp.f32x4Sqrt), scalar: (f) => f.op(Op.f32Sqrt) },
  floor: { simd: (f) => f.simd(SimdOp.f32x4Floor), scalar: (f) => f.op(Op.f32Floor) },
  ceil: { simd: (f) => f.simd(SimdOp.f32x4Ceil), scalar: (f) => f.op(Op.f32Ceil) },
  round: { simd: (f) => f.simd(SimdOp.f32x4Nearest), scalar: (f) => f.op(Op.f32Nearest) },
};

const COMPARE: Record<ScalarCompareOp, Op> = {
  eq: Op.f32Eq, ne: Op.f32Ne, lt: Op.f32Lt, le: Op.f32Le, gt: Op.f32Gt, ge: Op.f32Ge,
};

const MODES = ['contiguous', 'broadcast', 'strided'] as const;

/**
 * Transcendentals whose contiguous kernels compute this many f32x4 side by side (KernelSpec.wide):
 * GELU's chains (a division, then a degree-8 polynomial) are long enough that one vector at a time
 * leaves the CPU waiting; two interleaved took 0.73-0.80x the time of one (three: no better, four: spills).
 */
const WIDE_TRANSCENDENTALS: Readonly<Partial<Record<TranscendentalOp, number>>> = { gelu: 2, geluGrad: 2 };

/**
 * Binary ops that are not one instruction (so not in BINARY, which the compiler's codegen shares):
 * reluGrad(x, g) = x > 0 ? g : 0, a lane mask ANDed into g's bits (NaN x compares false: +0).
 */
export const SIMD_COMPOSED_BINARY_OPS = ['reluGrad'] as const;
export type SimdComposedBinaryOp = (typeof SIMD_COMPOSED_BINARY_OPS)[number];

export function binaryExportName(op: SimdBinaryOp | SimdComposedBinaryOp, a: RowMode, b: RowMode): string {
  return `${op}_${a[0]}${b[0]}`;
}

/** Unary kernels have no broadcast variant: a stride-0 input uses the strided one. */
export function unaryExportName(op: SimdUnaryOp | TranscendentalOp, mode: RowMode): string {
  return `${op}_${mode === 'contiguous' ? 'c' : 's'}`;
}

export function compareExportName(op: ScalarCompareOp): string {
  return `cmp_${op}`;
}

export const WHERE_EXPORT = 'where_f32';

interface InputSpec {
  readonly mode: RowMode;
  /** Bytes per element (4 for f32, 1 for bool). */
  readonly bytes: 4 | 1;
}

interface KernelSpec {
  readonly name: string;
  readonly inputs: readonly InputSpec[];
  readonly outBytes: 4 | 1;
  /** With every input f32 and none strided: f32x4 values on the stack → one f32x4 result. */
  readonly vector?: (f: FunctionBuilder) => void;
  /**
   * Scalar values on the stack (f32, or i32 for bool inputs) → one result (f32, or i32 for a
   * bool output). `scratch` holds spare locals for reordering the stack.
   */
  readonly scalar: (f: FunctionBuilder, scratch: { x: number; y: number; c: number }) => void;
  /** Emitted once at the function's start, before the loops (e.g. constants into locals). */
  readonly prologue?: (f: FunctionBuilder) => void;
  /**
   * For a unary kernel with a contiguous input: `width` f32x4 values in consecutive locals from
   * `x` → the first of `width` consecutive locals holding the results, each equal to `vector`'s.
   * The row's leading multiple of 4·width elements go through it, the rest through `vector`.
   */
  readonly wide?: { readonly width: number; readonly emit: (f: FunctionBuilder, x: number) => number };
}

/**
 * Emits `name(out, in_0…in_k-1, n, rows, stride_0…, rowStride_0…)`: byte addresses; strides in
 * bytes (inner: between elements of a row, read by strided inputs only; outer: between rows).
 */
function emitKernel(m: ModuleBuilder, spec: KernelSpec): FunctionBuilder {
  const k = spec.inputs.length;
  const f = m.function({ params: Array.from({ length: 3 + 3 * k }, () => i32), results: [] }, spec.name);
  const out = 0;
  const inParam = (j: number) => 1 + j;
  const n = 1 + k, rows = 2 + k;
  const strideParam = (j: number) => 3 + k + j;
  const rowStrideParam = (j: number) => 3 + 2 * k + j;
  const r = f.local(i32), i = f.local(i32), nVec = f.local(i32), outRow = f.local(i32);
  const inRow = spec.inputs.map(() => f.local(i32));
  const ptr = spec.inputs.map(() => f.local(i32));
  const splat = spec.inputs.map(() => f.local(v128));
  const value = spec.inputs.map((s) => f.local(s.bytes === 4 ? f32 : i32));
  const scratch = { x: f.local(f32), y: f.local(f32), c: f.local(i32) };
  spec.prologue?.(f);
  // Strided f32 inputs take the vector path too: four scalar loads gathered into one f32x4. For a
  // channels-last view (relu of a convolution's output) this made relu 5x and exp 6x faster than
  // the scalar loop, whose f32.max and transcendental code run one element at a time.
  const vectorizable = spec.vector !== undefined && spec.inputs.every((s) => s.bytes === 4);
  const wide = vectorizable && spec.inputs.length === 1 && spec.inputs[0]!.mode === 'contiguous' ? spec.wide : undefined;
  const nWide = f.local(i32);
  let wideIn = -1;
  if (wide !== undefined) {
    wideIn = f.local(v128);
    for (let lane = 1; lane < wide.width; lane++) f.local(v128);
  }
  const load = (j: number, address: () => void) => {
    address();
    f.mem(spec.inputs[j]!.bytes === 4 ? MemOp.f32Load : MemOp.i32Load8U);
  };
  const store = () => f.mem(spec.outBytes === 4 ? MemOp.f32Store : MemOp.i32Store8);

  f.localGet(out).localSet(outRow);
  spec.inputs.forEach((_, j) => f.localGet(inParam(j)).localSet(inRow[j]!));
  f.localGet(n).i32Const(-4).op(Op.i32And).localSet(nVec);
  f.forRange(r, () => f.i32Const(0), () => f.localGet(rows), 1, () => {
    // Per row: broadcast inputs are one value.
    spec.inputs.forEach((s, j) => {
      if (s.mode !== 'broadcast') return;
      load(j, () => f.localGet(inRow[j]!));
      f.localSet(value[j]!);
      if (vectorizable) f.localGet(value[j]!).simd(SimdOp.f32x4Splat).localSet(splat[j]!);
    });
    let scalarStart: () => void = () => f.i32Const(0);
    if (vectorizable) {
      let vectorStart: () => void = () => f.i32Const(0);
      if (wide !== undefined) {
        const { width, emit } = wide;
        f.localGet(n).i32Const(-4 * width).op(Op.i32And).localSet(nWide);
        f.forRange(i, () => f.i32Const(0), () => f.localGet(nWide), 4 * width, () => {
          for (let lane = 0; lane < width; lane++) {
            f.localGet(inRow[0]!).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add).simdMem(SimdMemOp.v128Load, 16 * lane, 2).localSet(wideIn + lane);
          }
          const result = emit(f, wideIn);
          for (let lane = 0; lane < width; lane++) {
            f.localGet(outRow).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localGet(result + lane).simdMem(SimdMemOp.v128Store, 16 * lane, 2);
          }
        });
        vectorStart = () => f.localGet(nWide);
      }
      // Strided inputs walk a pointer, left where the scalar tail goes on.
      spec.inputs.forEach((s, j) => { if (s.mode === 'strided') f.localGet(inRow[j]!).localSet(ptr[j]!); });
      f.forRange(i, vectorStart, () => f.localGet(nVec), 4, () => {
        f.localGet(outRow).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
        spec.inputs.forEach((s, j) => {
          if (s.mode === 'broadcast') f.localGet(splat[j]!);
          else if (s.mode === 'strided') emitGather(f, ptr[j]!, strideParam(j));
          else f.localGet(inRow[j]!).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add).simdMem(SimdMemOp.v128Load, 0, 2);
        });
        spec.vector!(f);
        f.simdMem(SimdMemOp.v128Store, 0, 2);
      });
      scalarStart = () => f.localGet(nVec);
    }
    // Scalar loop (the tail after the vector loop, or the whole row): input pointers walk their strides.
    spec.inputs.forEach((s, j) => {
      if (s.mode === 'broadcast' || (vectorizable && s.mode === 'strided')) return;
      f.localGet(inRow[j]!);
      if (vectorizable) f.localGet(nVec).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
      f.localSet(ptr[j]!);
    });
    f.forRange(i, scalarStart, () => f.localGet(n), 1, () => {
      f.localGet(outRow).localGet(i);
      if (spec.outBytes === 4) f.i32Const(2).op(Op.i32Shl);
      f.op(Op.i32Add);
      spec.inputs.forEach((s, j) => {
        if (s.mode === 'broadcast') f.localGet(value[j]!);
        else load(j, () => f.localGet(ptr[j]!));
      });
      spec.scalar(f, scratch);
      store();
      spec.inputs.forEach((s, j) => {
        if (s.mode === 'broadcast') return;
        f.localGet(ptr[j]!);
        if (s.mode === 'strided') f.localGet(strideParam(j));
        else f.i32Const(s.bytes);
        f.op(Op.i32Add).localSet(ptr[j]!);
      });
    });
    f.localGet(outRow).localGet(n).i32Const(spec.outBytes).op(Op.i32Mul).op(Op.i32Add).localSet(outRow);
    spec.inputs.forEach((_, j) => f.localGet(inRow[j]!).localGet(rowStrideParam(j)).op(Op.i32Add).localSet(inRow[j]!));
  });
  return f;
}

/**
 * Pushes the f32x4 of the four f32 at `ptr`, `ptr + stride`, … (byte stride in local `stride`) and
 * leaves `ptr` four elements on.
 */
function emitGather(f: FunctionBuilder, ptr: number, stride: number): void {
  f.localGet(ptr).mem(MemOp.f32Load).simd(SimdOp.f32x4Splat);
  for (let lane = 1; lane < 4; lane++) {
    f.localGet(ptr).localGet(stride).op(Op.i32Add).localTee(ptr).mem(MemOp.f32Load).simdLane(SimdLaneOp.f32x4ReplaceLane, lane);
  }
  f.localGet(ptr).localGet(stride).op(Op.i32Add).localSet(ptr);
}

/** The thread pool's entry point of the module: task(unit, params, thread). */
export const ELEMENTWISE_TASK_EXPORT = 'task';
/**
 * Bytes of one unit's descriptor in a task's parameter block (unit u's at params + u·this): i32
 * words [kernel id, then the kernel's own arguments in order: out, in_0…, n, rows, strides…, row strides…].
 */
export const TASK_DESCRIPTOR_BYTES = 64;

/**
 * task(unit, params, thread): calls the kernel named by unit's descriptor with the arguments stored
 * there (a br_table over the kernel ids), so one module serves every elementwise op on the pool.
 */
function emitTask(m: ModuleBuilder, kernels: readonly { fn: FunctionBuilder; inputs: number }[]): void {
  const f = m.function({ params: [i32, i32, i32], results: [] }, ELEMENTWISE_TASK_EXPORT);
  const base = f.local(i32);
  f.localGet(1).localGet(0).i32Const(TASK_DESCRIPTOR_BYTES).op(Op.i32Mul).op(Op.i32Add).localSet(base);
  const count = kernels.length;
  for (let b = 0; b <= count; b++) f.block();
  f.localGet(base).mem(MemOp.i32Load).brTable(kernels.map((_, i) => i), count);
  kernels.forEach(({ fn, inputs }, i) => {
    f.end();
    for (let w = 0; w < 3 + 3 * inputs; w++) f.localGet(base).mem(MemOp.i32Load, 4 + 4 * w);
    f.call(fn.index).br(count - i - 1);
  });
  f.end();
}

/** Export names of the kernels in id order (the id a task descriptor names). */
export function elementwiseKernelNames(): string[] {
  return kernelSpecs().map((k) => k.name);
}

/** Every elementwise kernel in one module (compiled once per heap), plus the pool's task export. */
export function buildElementwiseModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  const kernels = kernelSpecs().map((spec) => ({ fn: emitKernel(m, spec), inputs: spec.inputs.length }));
  emitTask(m, kernels);
  return m.encode();
}

/** The kernels' specs in a fixed order (their task ids). */
function kernelSpecs(): KernelSpec[] {
  const specs: KernelSpec[] = [];
  const f32In = (mode: RowMode): InputSpec => ({ mode, bytes: 4 });
  for (const op of SIMD_BINARY_OPS) {
    for (const am of MODES) {
      for (const bm of MODES) {
        specs.push({
          name: binaryExportName(op, am, bm), inputs: [f32In(am), f32In(bm)], outBytes: 4,
          vector: (f) => f.simd(BINARY[op].simd), scalar: (f) => f.op(BINARY[op].scalar),
        });
      }
    }
  }
  for (const am of MODES) {
    for (const bm of MODES) {
      // The stack holds x, g: g goes to a local while x becomes its mask (or condition).
      let gVector = -1;
      specs.push({
        name: binaryExportName('reluGrad', am, bm), inputs: [f32In(am), f32In(bm)], outBytes: 4,
        prologue: (f) => { gVector = f.local(v128); },
        vector: (f) => {
          f.localSet(gVector).f32x4Const(0, 0, 0, 0).simd(SimdOp.f32x4Gt).localGet(gVector).simd(SimdOp.v128And);
        },
        scalar: (f, { y, c }) => {
          f.localSet(y).f32Const(0).op(Op.f32Gt).localSet(c);
          f.localGet(y).f32Const(0).localGet(c).op(Op.select);
        },
      });
    }
  }
  for (const op of SIMD_UNARY_OPS) {
    for (const mode of ['contiguous', 'strided'] as const) {
      specs.push({ name: unaryExportName(op, mode), inputs: [f32In(mode)], outBytes: 4, vector: UNARY[op].simd, scalar: UNARY[op].scalar });
    }
  }
  for (const op of TRANSCENDENTAL_OPS) {
    for (const mode of ['contiguous', 'strided'] as const) {
      let pool: ConstantPool | undefined;
      const width = WIDE_TRANSCENDENTALS[op];
      specs.push({
        name: unaryExportName(op, mode), inputs: [f32In(mode)], outBytes: 4,
        prologue: (f) => { pool = ConstantPool.hoist(f, (scratch, p) => emitTranscendentalVector(scratch, op, p)); },
        vector: (f) => emitTranscendentalVector(f, op, pool), scalar: (f) => emitTranscendentalScalar(f, op, pool),
        wide: width === undefined ? undefined : { width, emit: (f, x) => emitTranscendentalVectors(f, op, x, width, pool) },
      });
    }
  }
  for (const op of SCALAR_COMPARE_OPS) {
    specs.push({ name: compareExportName(op), inputs: [f32In('strided'), f32In('strided')], outBytes: 1, scalar: (f) => f.op(COMPARE[op]) });
  }
  // where(cond, x, y): the stack holds cond, x, y; select wants x, y, cond.
  specs.push({
    name: WHERE_EXPORT, inputs: [{ mode: 'strided', bytes: 1 }, f32In('strided'), f32In('strided')], outBytes: 4,
    scalar: (f, { x, y, c }) => {
      f.localSet(y).localSet(x).localSet(c);
      f.localGet(x).localGet(y).localGet(c).op(Op.select);
    },
  });
  return specs;
}
