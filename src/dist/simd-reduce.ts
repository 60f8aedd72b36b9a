// The elementwise reductions of reduce-kernels.ts in WebAssembly SIMD, for long arrays.
//
// Why: in a 64 MB 2-rank all-reduce over TCP, the JS loop folding the peer's half into this
// rank's half took ~18 ms of CPU per call per rank (a CPU profile of bench/comm/profile-tcp-rank.ts),
// a quarter of a rank's whole budget at 1 GB/s. V8 does not vectorize JS loops, and a Float32Array
// element goes through a float64 conversion each way. The arrays handed to a collective are the
// caller's, outside any WebAssembly memory, so each block of up to 64 KiB is copied into a small
// private memory, reduced there with f32x4/f64x2/i32x4 instructions, and copied back: the two
// copies are memcpy-speed, and the three together cost less than the JS loop (in the same CPU
// profile, PROFILE_CPU_DIR=... npx tsx bench/comm/profile-allreduce.ts tcp 64 ring 30: the JS loop
// ~18 ms per call, the SIMD path ~13 ms including its copies, which are bound by the destination's
// trip from and to DRAM).
//
// Results are bit-identical to the JS loops: a float32 sum or product computed in float64 and
// rounded once equals the float32 operation (float64 holds the exact product of two float32
// values), int32 adds and multiplies wrap in both, and min/max use pmin/pmax, which keep the
// destination unless the source compares strictly smaller/larger — the JS `if (src < dst)`.
import { ModuleBuilder, Op, SimdMemOp, SimdOp, ValType } from '../backend/wasm/encoder.js';
import type { CommArray, ReduceOp } from './types.js';

/** Bytes per block: one block of each operand sits in the private memory at a time. */
const BLOCK_BYTES = 64 * 1024;
const DST_AT = 0;
const SRC_AT = BLOCK_BYTES;
const STAGING_AT = 2 * BLOCK_BYTES;

type Dtype = 'float32' | 'float64' | 'int32';
type Kernel = (dst: number, src: number, bytes: number) => void;
const OPS: readonly ReduceOp[] = ['sum', 'prod', 'min', 'max'];
const DTYPES: readonly Dtype[] = ['float32', 'float64', 'int32'];

/** The SIMD instruction that combines (dst, src) → result, per dtype and op ('avg' reduces as a sum). */
const SIMD_OP: Record<Dtype, Record<Exclude<ReduceOp, 'avg'>, SimdOp>> = {
  float32: { sum: SimdOp.f32x4Add, prod: SimdOp.f32x4Mul, min: SimdOp.f32x4Pmin, max: SimdOp.f32x4Pmax },
  float64: { sum: SimdOp.f64x2Add, prod: SimdOp.f64x2Mul, min: SimdOp.f64x2Pmin, max: SimdOp.f64x2Pmax },
  int32: { sum: SimdOp.i32x4Add, prod: SimdOp.i32x4Mul, min: SimdOp.i32x4MinS, max: SimdOp.i32x4MaxS },
};

/**
 * One module with a function per (dtype, op): dst[i] = dst[i] op src[i] over `bytes` bytes
 * (a multiple of 64), four v128 per iteration.
 */
function buildModule(): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', minPages: STAGING_AT / 65536, shared: false });
  const { i32 } = ValType;
  for (const dtype of DTYPES) {
    for (const op of OPS) {
      const f = m.function({ params: [i32, i32, i32], results: [] }, `${dtype}_${op}`);
      const [dst, src, bytes] = [0, 1, 2];
      const end = f.local(i32);
      f.localGet(dst).localGet(bytes).op(Op.i32Add).localSet(end);
      f.block().loop();
      f.localGet(dst).localGet(end).op(Op.i32GeU).brIf(1);
      // Operands in the order (dst, src): for pmin/pmax that is `src < dst ? src : dst` (and
      // `dst < src ? src : dst`), the JS loops' choice, NaN and signed zeros included.
      for (let u = 0; u < 4; u++) {
        f.localGet(dst);
        f.localGet(dst).simdMem(SimdMemOp.v128Load, 16 * u, 0).localGet(src).simdMem(SimdMemOp.v128Load, 16 * u, 0);
        f.simd(SIMD_OP[dtype][op as Exclude<ReduceOp, 'avg'>]).simdMem(SimdMemOp.v128Store, 16 * u, 0);
      }
      f.localGet(dst).i32Const(64).op(Op.i32Add).localSet(dst);
      f.localGet(src).i32Const(64).op(Op.i32Add).localSet(src);
      f.br(0).end().end();
    }
  }
  return m.encode();
}

let compiled: WebAssembly.Module | null | undefined;

/** The module, compiled once per process; null where this runtime has no WebAssembly SIMD. */
function compiledModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(buildModule());
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

function dtypeOf(array: CommArray): Dtype {
  return array instanceof Float32Array ? 'float32' : array instanceof Float64Array ? 'float64' : 'int32';
}

/** Which reducer owns a memory, so that a source array read into its staging area is found without a copy. */
const owners = new WeakMap<ArrayBufferLike, SimdReducer>();

/**
 * An instance of the kernels with its own memory: a block for the destination, a block for a
 * copied source, and optionally a staging area that a caller fills itself (the TCP transport
 * reads a connection's bytes there, see chosen-reads.ts), so that the source of a reduction
 * already sits in the memory and only the destination travels.
 */
export class SimdReducer {
  /** Where callers may put a reduction's source (empty without a staging area). */
  readonly staging: Uint8Array;
  private readonly memory: Uint8Array;
  private readonly kernels = new Map<string, Kernel>();

  private constructor(module: WebAssembly.Module, stagingBytes: number) {
    const pages = Math.ceil((STAGING_AT + stagingBytes) / 65536);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    for (const dtype of DTYPES) for (const op of OPS) this.kernels.set(`${dtype}_${op}`, instance.exports[`${dtype}_${op}`] as Kernel);
    // The memory never grows, so these views never detach.
    this.memory = new Uint8Array(memory.buffer);
    this.staging = this.memory.subarray(STAGING_AT, STAGING_AT + stagingBytes);
    owners.set(memory.buffer, this);
  }

  /** A reducer with `stagingBytes` of staging area, or null where WebAssembly SIMD is unavailable. */
  static create(stagingBytes = 0): SimdReducer | null {
    const module = compiledModule();
    return module === null ? null : new SimdReducer(module, stagingBytes);
  }

  /**
   * dst = dst (op) src over the longest prefix whose byte length is a multiple of 64, block by
   * block; returns how many elements that was (the caller reduces the rest).
   */
  reducePrefix(dst: CommArray, src: CommArray, op: ReduceOp): number {
    return this.reduceBlocks(dst, src, op, false);
  }

  /**
   * dst = src = dst (op) src over the same prefix: the one pass of the 2-rank all-reduce on
   * shared memory that reduces and hands the result back into the peer's array.
   */
  reducePrefixBoth(dst: CommArray, src: CommArray, op: ReduceOp): number {
    return this.reduceBlocks(dst, src, op, true);
  }

  private reduceBlocks(dst: CommArray, src: CommArray, op: ReduceOp, writeSrcToo: boolean): number {
    const kernel = this.kernels.get(`${dtypeOf(dst)}_${op === 'avg' ? 'sum' : op}`)!;
    const es = dst.BYTES_PER_ELEMENT;
    const total = Math.floor((dst.length * es) / 64) * 64;
    const dstBytes = new Uint8Array(dst.buffer, dst.byteOffset, total);
    const mem = this.memory;
    // A source in this reducer's staging area (a TCP read) is reduced where it lies.
    const srcInPlace = !writeSrcToo && src.buffer === mem.buffer && src.byteOffset >= STAGING_AT;
    const srcBytes = new Uint8Array(src.buffer, src.byteOffset, total);
    for (let at = 0; at < total; at += BLOCK_BYTES) {
      const n = Math.min(BLOCK_BYTES, total - at);
      mem.set(dstBytes.subarray(at, at + n), DST_AT);
      if (srcInPlace) {
        kernel(DST_AT, src.byteOffset + at, n);
      } else {
        mem.set(srcBytes.subarray(at, at + n), SRC_AT);
        kernel(DST_AT, SRC_AT, n);
      }
      const result = mem.subarray(DST_AT, DST_AT + n);
      dstBytes.set(result, at);
      if (writeSrcToo) srcBytes.set(result, at);
    }
    return total / es;
  }
}

let shared: SimdReducer | null | undefined;

/**
 * dst = dst (op) src over a prefix (see SimdReducer.reducePrefix), through the reducer whose
 * staging area holds `src` if any, else a shared one. Returns 0 where WebAssembly SIMD is unavailable.
 */
export function simdReducePrefix(dst: CommArray, src: CommArray, op: ReduceOp): number {
  const reducer = owners.get(src.buffer) ?? sharedReducer();
  return reducer === null ? 0 : reducer.reducePrefix(dst, src, op);
}

/** dst = src = dst (op) src over a prefix (see SimdReducer.reducePrefixBoth); 0 without WebAssembly SIMD. */
export function simdReducePrefixBoth(dst: CommArray, src: CommArray, op: ReduceOp): number {
  const reducer = sharedReducer();
  return reducer === null ? 0 : reducer.reducePrefixBoth(dst, src, op);
}

function sharedReducer(): SimdReducer | null {
  if (shared === undefined) shared = SimdReducer.create();
  return shared;
}
