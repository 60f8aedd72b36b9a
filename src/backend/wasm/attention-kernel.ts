// Generated kernels of the fused attention primitives (see backend/cpu/attention-kernels.ts for the
// reference and its formulas), float32, f32x4 SIMD over the feature dims E and Ev (both multiples of
// 4, baked into the module so that a query row, a cotangent row and the accumulators live in v128
// locals and every load has an immediate offset).
//
// One unit = one batch entry (one (batch, head) matrix triple); the host (attention.ts) writes each
// unit's q, k, v (and dOut) addresses to a table, so strided batch dims cost nothing; rows may have
// any stride, features are contiguous. Each thread owns a scratch of two rows of S + 4 floats: the
// scores/weights p of the current query row and, in the backward, dP.
//
// Per query row i (n keys: S, or min(i + 1, S) when causal):
//   forward   s_j = scale·(q_i·k_j) into p (SIMD dot products, q_i in registers, four keys at a
//             time so that one transpose-add of four accumulators gives four scores), the row max, then
//             p_j = exp(s_j − shift) by the SIMD exp of transcendental-kernel.ts over whole vectors
//             (p[n..n+3] are set to −inf first so the vector tail adds exp(−inf) = 0), summed; then
//             o_i = (Σ_j p_j v_j) / Σ p, accumulated in registers.
//   backward  p as above, normalized; dP_j = dO_i·v_j (four keys at a time) and D = Σ_j p_j dP_j; then per key
//             dS_j = p_j (dP_j − D)·scale: dq_i += dS_j k_j (registers), dk_j += dS_j q_i and
//             dv_j += p_j dO_i (read-modify-write rows of the unit's own dk/dv, zeroed by the host).
// Sums are float32 (the reference sums in float64), with FMA where the runtime has relaxed SIMD:
// the tests state the tolerance.

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport, type FunctionBuilder } from './encoder.js';
import { ConstantPool, emitTranscendentalVector } from './transcendental-kernel.js';
import { relaxedSimdSupported } from './simd-features.js';

const { i32, f32, v128 } = ValType;

/** Word offsets of the parameter block. */
export const AttentionParam = {
  /** Byte address of the unit table: ATTENTION_TABLE_WORDS byte addresses per unit (q, k, v, dOut rows 0). */
  table: 0,
  /** forward: the output [units, L, Ev]; backward: dq [units, L, E]. */
  out: 1,
  /** backward: dk [units, S, E] and dv [units, S, Ev], zeroed. */
  dk: 2,
  dv: 3,
  l: 4,
  s: 5,
  /** Byte strides between rows of q, k, v and dOut. */
  qStride: 6,
  kStride: 7,
  vStride: 8,
  gStride: 9,
  /** The score scale, as float32 bits. */
  scale: 10,
  /** Per-thread scratch: thread t uses [scratch + t·scratchBytes, + scratchBytes). */
  scratch: 11,
  scratchBytes: 12,
} as const;
export const ATTENTION_PARAM_WORDS = 16;
export const ATTENTION_TABLE_WORDS = 4;

/** Bytes of one thread's scratch for S keys: two rows of S + 4 floats (the −inf tail), 16-byte multiples. */
export function attentionScratchBytes(s: number): number {
  return 2 * 16 * Math.ceil((s + 4) / 4);
}

export interface AttentionSpec {
  /** Features of q and k (E) and of v (Ev): multiples of 4. */
  e: number;
  ev: number;
  causal: boolean;
  backward: boolean;
  /** f32x4.relaxed_madd for multiply-adds (relaxed SIMD), else mul + add. */
  fma: boolean;
}

/** Whether generated attention kernels use FMA in this runtime. */
export function attentionFma(): boolean {
  return relaxedSimdSupported();
}

/** Loads `regs.length` f32x4 from `ptr` (consecutive) into the locals `regs`. */
function loadRow(f: FunctionBuilder, regs: readonly number[], ptr: number): void {
  regs.forEach((r, c) => f.localGet(ptr).simdMem(SimdMemOp.v128Load, 16 * c, 2).localSet(r));
}

/** Pushes a·b + acc, where a and b are pushed by `a` and `b` (FMA with relaxed SIMD). */
function madd(f: FunctionBuilder, fma: boolean, a: () => void, b: () => void, acc: () => void): void {
  if (fma) {
    a(); b(); acc(); f.simd(SimdOp.f32x4RelaxedMadd);
  } else {
    a(); b(); f.simd(SimdOp.f32x4Mul); acc(); f.simd(SimdOp.f32x4Add);
  }
}

/** Pushes the f32x4 of partial sums of the row in `regs` times the row at `ptr`: two chains (locals accA, accB), added. */
function dotLanes(f: FunctionBuilder, fma: boolean, regs: readonly number[], ptr: number, accA: number, accB: number): void {
  regs.forEach((r, c) => {
    const acc = c % 2 === 0 ? accA : accB;
    const load = () => f.localGet(ptr).simdMem(SimdMemOp.v128Load, 16 * c, 2);
    if (c < 2) f.localGet(r), load(), f.simd(SimdOp.f32x4Mul);
    else madd(f, fma, () => f.localGet(r), load, () => f.localGet(acc));
    f.localSet(acc);
  });
  f.localGet(accA);
  if (regs.length > 1) f.localGet(accB).simd(SimdOp.f32x4Add);
}

/** Pushes the f32 dot product of the row in `regs` with the row at `ptr` (a horizontal add of dotLanes). */
function dot(f: FunctionBuilder, fma: boolean, regs: readonly number[], ptr: number, accA: number, accB: number): void {
  dotLanes(f, fma, regs, ptr, accA, accB);
  f.localTee(accA).simdLane(SimdLaneOp.f32x4ExtractLane, 0).localGet(accA).simdLane(SimdLaneOp.f32x4ExtractLane, 1).op(Op.f32Add);
  f.localGet(accA).simdLane(SimdLaneOp.f32x4ExtractLane, 2).localGet(accA).simdLane(SimdLaneOp.f32x4ExtractLane, 3).op(Op.f32Add);
  f.op(Op.f32Add);
}

/** Byte lanes of i8x16.shuffle picking f32 lanes `lanes` of concat(a, b) (b's lanes are 4..7). */
const f32Lanes = (...lanes: number[]): number[] => lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);

/**
 * Pushes the f32x4 of the dot products of the row in `regs` with the four rows at ptrs[0..3]: four
 * accumulators, then one transpose-add ([Σa0, Σa1, Σa2, Σa3]) instead of four horizontal adds.
 */
function dot4(f: FunctionBuilder, fma: boolean, regs: readonly number[], ptrs: readonly number[], accs: readonly number[]): void {
  regs.forEach((r, c) => {
    ptrs.forEach((ptr, b) => {
      const load = () => f.localGet(ptr).simdMem(SimdMemOp.v128Load, 16 * c, 2);
      if (c === 0) f.localGet(r), load(), f.simd(SimdOp.f32x4Mul);
      else madd(f, fma, () => f.localGet(r), load, () => f.localGet(accs[b]!));
      f.localSet(accs[b]!);
    });
  });
  const [a0, a1, a2, a3] = accs as [number, number, number, number];
  const pairSum = (x: number, y: number) => {
    f.localGet(x).localGet(y).i8x16Shuffle(f32Lanes(0, 1, 4, 5));
    f.localGet(x).localGet(y).i8x16Shuffle(f32Lanes(2, 3, 6, 7));
    f.simd(SimdOp.f32x4Add);
  };
  pairSum(a0, a1);
  f.localSet(a0);
  pairSum(a2, a3);
  f.localSet(a2);
  f.localGet(a0).localGet(a2).i8x16Shuffle(f32Lanes(0, 2, 4, 6));
  f.localGet(a0).localGet(a2).i8x16Shuffle(f32Lanes(1, 3, 5, 7));
  f.simd(SimdOp.f32x4Add);
}

const addTo = (f: FunctionBuilder, local: number, bytes: () => void): void => {
  f.localGet(local);
  bytes();
  f.op(Op.i32Add).localSet(local);
};

/** The forward (spec.backward false) or backward module: one exported `task(unit, params, thread)`. */
export function buildAttentionModule(memory: MemoryImport, spec: AttentionSpec): Uint8Array<ArrayBuffer> {
  if (spec.e % 4 !== 0 || spec.ev % 4 !== 0 || spec.e === 0 || spec.ev === 0) {
    throw new Error(`attention kernel: E (${spec.e}) and Ev (${spec.ev}) must be positive multiples of 4; the host falls back to the reference otherwise`);
  }
  const m = new ModuleBuilder().importMemory(memory);
  const f = m.function({ params: [i32, i32, i32], results: [] }, 'task');
  const [unit, params, thread] = [0, 1, 2];
  const word = (w: number) => {
    const l = f.local(i32);
    f.localGet(params).mem(MemOp.i32Load, 4 * w).localSet(l);
    return l;
  };
  const p = {
    table: word(AttentionParam.table), out: word(AttentionParam.out), dk: word(AttentionParam.dk), dv: word(AttentionParam.dv),
    l: word(AttentionParam.l), s: word(AttentionParam.s),
    qStride: word(AttentionParam.qStride), kStride: word(AttentionParam.kStride), vStride: word(AttentionParam.vStride), gStride: word(AttentionParam.gStride),
    scratch: word(AttentionParam.scratch), scratchBytes: word(AttentionParam.scratchBytes),
  };
  const scale = f.local(f32);
  f.localGet(params).mem(MemOp.f32Load, 4 * AttentionParam.scale).localSet(scale);
  const pool = ConstantPool.hoist(f, (scratch, cp) => emitTranscendentalVector(scratch, 'exp', cp));
  const E = spec.e, EV = spec.ev;
  const L = () => f.local(i32);
  const vecs = (n: number) => Array.from({ length: n / 4 }, () => f.local(v128));
  const qRegs = vecs(E), acc = vecs(spec.backward ? E : EV), gRegs = spec.backward ? vecs(EV) : [];
  const shift = f.local(v128), sumv = f.local(v128), w = f.local(v128), w2 = f.local(v128), maxv = f.local(v128), dSum = f.local(v128);
  const accs = [f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
  const fma = spec.fma;
  const [i, j, n, off, nvBytes, qRow, gRow, kRow, vRow, outRow, dkRow, dvRow, pRow, dpRow, entry, dkBase, dvBase] = Array.from({ length: 17 }, L);
  const [qBase, kBase, vBase, gBase] = [L(), L(), L(), L()];
  const [r1, r2, r3] = [L(), L(), L()];
  /** Sets r1..r3 to the three rows after `row` (stride `stride`). */
  const nextRows = (row: number, stride: number) => {
    f.localGet(row).localGet(stride).op(Op.i32Add).localTee(r1).localGet(stride).op(Op.i32Add).localTee(r2).localGet(stride).op(Op.i32Add).localSet(r3);
  };
  const hmax = (v: number) => {
    f.localGet(v).simdLane(SimdLaneOp.f32x4ExtractLane, 0).localGet(v).simdLane(SimdLaneOp.f32x4ExtractLane, 1).op(Op.f32Max);
    f.localGet(v).simdLane(SimdLaneOp.f32x4ExtractLane, 2).localGet(v).simdLane(SimdLaneOp.f32x4ExtractLane, 3).op(Op.f32Max).op(Op.f32Max);
  };
  const hsum = (v: number) => {
    f.localGet(v).simdLane(SimdLaneOp.f32x4ExtractLane, 0).localGet(v).simdLane(SimdLaneOp.f32x4ExtractLane, 1).op(Op.f32Add);
    f.localGet(v).simdLane(SimdLaneOp.f32x4ExtractLane, 2).localGet(v).simdLane(SimdLaneOp.f32x4ExtractLane, 3).op(Op.f32Add).op(Op.f32Add);
  };
  const max = f.local(f32), inv = f.local(f32), d = f.local(f32), ds = f.local(f32), pj = f.local(f32);

  // This unit's rows: the table entry, its outputs, this thread's scratch.
  f.localGet(p.table).localGet(unit).i32Const(4 * ATTENTION_TABLE_WORDS).op(Op.i32Mul).op(Op.i32Add).localSet(entry);
  [qBase, kBase, vBase, gBase].forEach((b, k) => f.localGet(entry).mem(MemOp.i32Load, 4 * k).localSet(b));
  const unitBase = (base: number, rows: number, cols: number, dst: number) =>
    f.localGet(base).localGet(unit).localGet(rows).op(Op.i32Mul).i32Const(4 * cols).op(Op.i32Mul).op(Op.i32Add).localSet(dst);
  unitBase(p.out, p.l, spec.backward ? E : EV, outRow);
  if (spec.backward) {
    unitBase(p.dk, p.s, E, dkBase);
    unitBase(p.dv, p.s, EV, dvBase);
  }
  f.localGet(p.scratch).localGet(thread).localGet(p.scratchBytes).op(Op.i32Mul).op(Op.i32Add).localSet(pRow);
  f.localGet(pRow).localGet(p.scratchBytes).i32Const(1).op(Op.i32ShrU).op(Op.i32Add).localSet(dpRow);
  f.localGet(qBase).localSet(qRow);
  f.localGet(gBase).localSet(gRow);
  const pAt = (k: number) => f.localGet(pRow).localGet(k).i32Const(2).op(Op.i32Shl).op(Op.i32Add);

  f.forRange(i, () => f.i32Const(0), () => f.localGet(p.l), 1, () => {
    // n = causal ? min(i + 1, S) : S
    if (spec.causal) {
      f.localGet(i).i32Const(1).op(Op.i32Add).localGet(p.s).localGet(i).i32Const(1).op(Op.i32Add).localGet(p.s).op(Op.i32LtS).op(Op.select).localSet(n);
    } else f.localGet(p.s).localSet(n);
    loadRow(f, qRegs, qRow);
    // Scores and their max: four keys per step, then the rest one by one. pmax skips a NaN score
    // that max would keep, but such a row comes out NaN either way (its exp is NaN, and so is the sum).
    f.f32x4Const(-Infinity, -Infinity, -Infinity, -Infinity).localSet(maxv);
    f.localGet(kBase).localSet(kRow);
    f.forRange(j, () => f.i32Const(0), () => f.localGet(n).i32Const(3).op(Op.i32Sub), 4, () => {
      nextRows(kRow, p.kStride);
      pAt(j);
      dot4(f, fma, qRegs, [kRow, r1, r2, r3], accs);
      f.localGet(scale).simd(SimdOp.f32x4Splat).simd(SimdOp.f32x4Mul).localTee(w).simdMem(SimdMemOp.v128Store, 0, 2);
      f.localGet(maxv).localGet(w).simd(SimdOp.f32x4Pmax).localSet(maxv);
      f.localGet(r3).localGet(p.kStride).op(Op.i32Add).localSet(kRow);
    });
    hmax(maxv);
    f.localSet(max);
    f.forRange(j, () => f.localGet(j), () => f.localGet(n), 1, () => {
      pAt(j);
      dot(f, fma, qRegs, kRow, accs[0]!, accs[1]!);
      f.localGet(scale).op(Op.f32Mul).localTee(pj).mem(MemOp.f32Store);
      f.localGet(max).localGet(pj).op(Op.f32Max).localSet(max);
      addTo(f, kRow, () => f.localGet(p.kStride));
    });
    pAt(n).f32x4Const(-Infinity, -Infinity, -Infinity, -Infinity).simdMem(SimdMemOp.v128Store, 0, 2);
    // shift = max where finite, else 0 (like the softmax primitive).
    f.localGet(max).f32Const(0).localGet(max).localGet(max).op(Op.f32Sub).f32Const(0).op(Op.f32Eq).op(Op.select);
    f.simd(SimdOp.f32x4Splat).localSet(shift);
    // p = exp(s − shift) over whole vectors, summed.
    f.localGet(n).i32Const(3).op(Op.i32Add).i32Const(-4).op(Op.i32And).i32Const(2).op(Op.i32Shl).localSet(nvBytes);
    f.f32x4Const(0, 0, 0, 0).localSet(sumv);
    f.forRange(off, () => f.i32Const(0), () => f.localGet(nvBytes), 16, () => {
      f.localGet(pRow).localGet(off).op(Op.i32Add);
      f.localGet(pRow).localGet(off).op(Op.i32Add).simdMem(SimdMemOp.v128Load, 0, 4).localGet(shift).simd(SimdOp.f32x4Sub);
      emitTranscendentalVector(f, 'exp', pool);
      f.localTee(w).simdMem(SimdMemOp.v128Store, 0, 4);
      f.localGet(sumv).localGet(w).simd(SimdOp.f32x4Add).localSet(sumv);
    });
    f.f32Const(1);
    f.localGet(sumv).simdLane(SimdLaneOp.f32x4ExtractLane, 0).localGet(sumv).simdLane(SimdLaneOp.f32x4ExtractLane, 1).op(Op.f32Add);
    f.localGet(sumv).simdLane(SimdLaneOp.f32x4ExtractLane, 2).localGet(sumv).simdLane(SimdLaneOp.f32x4ExtractLane, 3).op(Op.f32Add);
    f.op(Op.f32Add).op(Op.f32Div).localSet(inv);

    if (!spec.backward) {
      // o_i = Σ_j p_j v_j, scaled by 1/Σp once.
      acc.forEach((a) => f.f32x4Const(0, 0, 0, 0).localSet(a));
      f.localGet(vBase).localSet(vRow);
      f.forRange(j, () => f.i32Const(0), () => f.localGet(n), 1, () => {
        pAt(j).simdMem(SimdMemOp.v128Load32Splat, 0, 2).localSet(w);
        acc.forEach((a, c) => {
          madd(f, fma, () => f.localGet(w), () => f.localGet(vRow).simdMem(SimdMemOp.v128Load, 16 * c, 2), () => f.localGet(a));
          f.localSet(a);
        });
        addTo(f, vRow, () => f.localGet(p.vStride));
      });
      f.localGet(inv).simd(SimdOp.f32x4Splat).localSet(w);
      acc.forEach((a, c) => f.localGet(outRow).localGet(a).localGet(w).simd(SimdOp.f32x4Mul).simdMem(SimdMemOp.v128Store, 16 * c, 2));
      addTo(f, outRow, () => f.i32Const(4 * EV));
    } else {
      // Normalize p.
      f.localGet(inv).simd(SimdOp.f32x4Splat).localSet(w);
      f.forRange(off, () => f.i32Const(0), () => f.localGet(nvBytes), 16, () => {
        f.localGet(pRow).localGet(off).op(Op.i32Add);
        f.localGet(pRow).localGet(off).op(Op.i32Add).simdMem(SimdMemOp.v128Load, 0, 4).localGet(w).simd(SimdOp.f32x4Mul);
        f.simdMem(SimdMemOp.v128Store, 0, 4);
      });
      // dP_j = dO_i·v_j into the second scratch row (four keys per step), and D = Σ_j p_j dP_j.
      loadRow(f, gRegs, gRow);
      f.f32x4Const(0, 0, 0, 0).localSet(dSum);
      f.localGet(vBase).localSet(vRow);
      f.forRange(j, () => f.i32Const(0), () => f.localGet(n).i32Const(3).op(Op.i32Sub), 4, () => {
        nextRows(vRow, p.vStride);
        f.localGet(dpRow).localGet(j).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
        dot4(f, fma, gRegs, [vRow, r1, r2, r3], accs);
        f.localTee(w).simdMem(SimdMemOp.v128Store, 0, 2);
        madd(f, fma, () => f.localGet(w), () => pAt(j).simdMem(SimdMemOp.v128Load, 0, 2), () => f.localGet(dSum));
        f.localSet(dSum);
        f.localGet(r3).localGet(p.vStride).op(Op.i32Add).localSet(vRow);
      });
      hsum(dSum);
      f.localSet(d);
      f.forRange(j, () => f.localGet(j), () => f.localGet(n), 1, () => {
        f.localGet(dpRow).localGet(j).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
        dot(f, fma, gRegs, vRow, accs[0]!, accs[1]!);
        f.localTee(ds).mem(MemOp.f32Store);
        f.localGet(d).localGet(ds);
        pAt(j).mem(MemOp.f32Load);
        f.op(Op.f32Mul).op(Op.f32Add).localSet(d);
        addTo(f, vRow, () => f.localGet(p.vStride));
      });
      // Per key: dS_j·scale; dq_i += dS_j k_j, dk_j += dS_j q_i, dv_j += p_j dO_i.
      acc.forEach((a) => f.f32x4Const(0, 0, 0, 0).localSet(a));
      f.localGet(kBase).localSet(kRow);
      f.localGet(dkBase).localSet(dkRow);
      f.localGet(dvBase).localSet(dvRow);
      f.forRange(j, () => f.i32Const(0), () => f.localGet(n), 1, () => {
        pAt(j).mem(MemOp.f32Load).localTee(pj);
        f.localGet(dpRow).localGet(j).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.f32Load).localGet(d).op(Op.f32Sub).op(Op.f32Mul);
        f.localGet(scale).op(Op.f32Mul).simd(SimdOp.f32x4Splat).localSet(w);
        f.localGet(pj).simd(SimdOp.f32x4Splat).localSet(w2);
        acc.forEach((a, c) => {
          madd(f, fma, () => f.localGet(w), () => f.localGet(kRow).simdMem(SimdMemOp.v128Load, 16 * c, 2), () => f.localGet(a));
          f.localSet(a);
          f.localGet(dkRow);
          madd(f, fma, () => f.localGet(w), () => f.localGet(qRegs[c]!), () => f.localGet(dkRow).simdMem(SimdMemOp.v128Load, 16 * c, 2));
          f.simdMem(SimdMemOp.v128Store, 16 * c, 2);
        });
        gRegs.forEach((g, c) => {
          f.localGet(dvRow);
          madd(f, fma, () => f.localGet(w2), () => f.localGet(g), () => f.localGet(dvRow).simdMem(SimdMemOp.v128Load, 16 * c, 2));
          f.simdMem(SimdMemOp.v128Store, 16 * c, 2);
        });
        addTo(f, kRow, () => f.localGet(p.kStride));
        addTo(f, dkRow, () => f.i32Const(4 * E));
        addTo(f, dvRow, () => f.i32Const(4 * EV));
      });
      acc.forEach((a, c) => f.localGet(outRow).localGet(a).simdMem(SimdMemOp.v128Store, 16 * c, 2));
      addTo(f, outRow, () => f.i32Const(4 * E));
      addTo(f, gRow, () => f.localGet(p.gStride));
    }
    addTo(f, qRow, () => f.localGet(p.qStride));
  });
  return m.encode();
}
