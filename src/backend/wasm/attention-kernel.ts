// Generated kernels of the fused attention primitives (see backend/cpu/attention-kernels.ts for the
// reference and its formulas), float32, f32x4 SIMD; the feature dims E and Ev (multiples of 4) are
// baked into the module (packing and column blocks unrolled, immediate offsets).
//
// One unit = one batch entry (one (batch, head) matrix triple); the host (attention.ts) writes each
// unit's q, k, v (and dOut) addresses to a table, so strided batch dims cost nothing; rows may have
// any stride, features are contiguous.
//
// The work is register-tiled like the SGEMM's micro-kernel (matmul-kernel.ts): every product is a
// 4 × 8 tile in 8 f32x4 accumulators, one operand broadcast (load32_splat), the other loaded as
// vectors, so each loaded vector feeds four multiply-adds instead of one (the row-at-a-time kernel
// this replaces loaded a key row per query row and was bound by loads). To make both operands
// loadable that way, each thread packs into its scratch (per unit, zero padded):
//   qp, gp   q and dOut rows of the current chunk of query rows, "row-interleaved": tile of 4 rows,
//            then feature, then row ([L/4][E][4]), so the 4 rows' values of one feature are adjacent;
//   kt, vt   k and v transposed in panels of 8 keys ([S/8][E][8]), like the SGEMM's packed B;
//   p, dp    the chunk's scores, probabilities and dS, row-interleaved ([L/4][S][4]): a vector
//            holds one key's values for 4 query rows, so the softmax of 4 rows runs lane-wise
//            without horizontal reductions, and the products below splat them at immediate offsets.
// Per tile of 4 query rows (causal: only keys j < min(i0 + 4, S) are computed at all):
//   forward   s = scale·q kᵀ (qp × kt panels, one 4×4 transpose per half tile into p), masked,
//             p = softmax(s) lane-wise (fastExp below), o = p v (p splats × v rows) scaled by 1/Σp.
//   backward  p as above; dP = dO vᵀ (gp × vt panels into dp), D = Σ_j p dP, dS = p (dP − D)·scale
//             in place; dq = dS k (as o = p v); after the chunk's tiles, per 4 keys:
//             dk += dSᵀ q and dv += pᵀ dO (dS and p splatted for 4 keys, q / dO rows as vectors),
//             written by the first chunk, added to by later ones.
// The chunk of query rows is as long as the scratch budget allows (all 64 rows of the GPT's
// heads); longer sequences run several chunks, whose dk/dv contributions add up.
// Sums are float32 (the reference sums in float64), with FMA where the runtime has relaxed SIMD:
// the tests state the tolerance.
// Against the row-at-a-time kernels (alternated in one process, GPT heads [16, 4, 64, 32] causal,
// FMA): 1 thread forward 2.0x, backward 2.4x faster; 2 threads 1.8x and 2.0x (0.49 and 0.98 ms min).

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport } from './encoder.js';
import { relaxedSimdSupported } from './simd-features.js';

const { i32, f32, v128 } = ValType;

/** Word offsets of the parameter block. */
export const AttentionParam = {
  /** Byte address of the unit table: ATTENTION_TABLE_WORDS byte addresses per unit (q, k, v, dOut rows 0). */
  table: 0,
  /** forward: the output [units, L, Ev]; backward: dq [units, L, E]. */
  out: 1,
  /** backward: dk [units, S, E] and dv [units, S, Ev]. */
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
  /** Per-thread scratch: thread t uses [scratch + t·scratchBytes, + scratchBytes), laid out by attentionScratchLayout. */
  scratch: 11,
  scratchBytes: 12,
  /** S rounded up to 8 (the keys of the packed panels and the score rows). */
  sp: 13,
  /** Query rows per chunk (a multiple of 4). */
  chunk: 14,
  /** Byte offsets in a thread's scratch of qp, kt, p, gp, vt, dp. */
  qpAt: 15,
  ktAt: 16,
  pAt: 17,
  gpAt: 18,
  vtAt: 19,
  dpAt: 20,
} as const;
export const ATTENTION_PARAM_WORDS = 24;
export const ATTENTION_TABLE_WORDS = 4;

/** Where fastExp flushes to 0 (e^−87 = 1.6e-38: 2^n stays a normal float). */
const EXP_LOW = -87;
/** 1.5·2^23: adding it rounds a float below 2^22 to an integer, which then sits in the low mantissa bits. */
const ROUNDING_SHIFT = 12582912;
/** ln 2 in two parts, n·LN2_HI exact (Cephes' C1, C2). */
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;
/** Bytes of one chunk's score buffers (p, and dp in the backward) that the chunk length is sized to: about half an L2 of this class of CPU. */
const SCORE_BUDGET_BYTES = 1 << 17;

export interface AttentionScratchLayout {
  sp: number;
  chunk: number;
  qpAt: number;
  ktAt: number;
  pAt: number;
  gpAt: number;
  vtAt: number;
  dpAt: number;
  /** Bytes per thread (a multiple of 64). */
  bytes: number;
}

/** Where one thread's packed operands and score tiles sit in its scratch (see the header), for L queries, S keys. */
export function attentionScratchLayout(l: number, s: number, e: number, ev: number, backward: boolean): AttentionScratchLayout {
  const sp = 8 * Math.ceil(s / 8);
  const rows = 4 * Math.ceil(l / 4);
  const perRow = 4 * sp * (backward ? 2 : 1);
  const chunk = Math.max(4, Math.min(rows, 4 * Math.floor(SCORE_BUDGET_BYTES / perRow / 4)));
  const align = (b: number) => 64 * Math.ceil(b / 64);
  let at = 0;
  const take = (bytes: number) => { const here = at; at += align(bytes); return here; };
  const qpAt = take(4 * chunk * e), ktAt = take(4 * sp * e), pAt = take(4 * chunk * sp);
  const gpAt = backward ? take(4 * chunk * ev) : 0, vtAt = backward ? take(4 * sp * ev) : 0, dpAt = backward ? take(4 * chunk * sp) : 0;
  return { sp, chunk, qpAt, ktAt, pAt, gpAt, vtAt, dpAt, bytes: at };
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

/** Byte lanes of i8x16.shuffle picking f32 lanes `lanes` of concat(a, b) (b's lanes are 4..7). */
const f32Lanes = (...lanes: number[]): number[] => lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);

/** Column blocks of a row of `n` floats (n a multiple of 4): [first float, vectors (1 or 2)]. */
function columnBlocks(n: number): [number, number][] {
  const blocks: [number, number][] = [];
  for (let c = 0; c < n; c += 8) blocks.push([c, Math.min(2, (n - c) / 4)]);
  return blocks;
}

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
  const P = AttentionParam;
  const p = {
    table: word(P.table), out: word(P.out), dk: word(P.dk), dv: word(P.dv), l: word(P.l), s: word(P.s),
    qStride: word(P.qStride), kStride: word(P.kStride), vStride: word(P.vStride), gStride: word(P.gStride),
    scratch: word(P.scratch), scratchBytes: word(P.scratchBytes), sp: word(P.sp), chunk: word(P.chunk),
  };
  const scale = f.local(f32);
  f.localGet(params).mem(MemOp.f32Load, 4 * P.scale).localSet(scale);
  const E = spec.e, EV = spec.ev, fma = spec.fma, causal = spec.causal, backward = spec.backward;
  const I = () => f.local(i32);
  const V = () => f.local(v128);
  const acc = [[V(), V()], [V(), V()], [V(), V()], [V(), V()]] as const;
  const [x0, x1, sv, tmp0, tmp1, tmp2, tmp3, maxv, sumv, dv4] = Array.from({ length: 10 }, V);
  const scalev = V(), negInf = V();
  const masks = [V(), V(), V()];
  const [qBase, kBase, vBase, gBase, outBase, dkBase, dvBase, sb] = Array.from({ length: 8 }, I);
  const [qp, kt, pb, gp, vt, dp] = Array.from({ length: 6 }, I);
  const [c0, rows, tiles, ti, i0, jEnd, j, i, j0, iStart, iEnd, tileBytes] = Array.from({ length: 12 }, I);
  const [ptr, src, dst, rowPtr, pTile, dpTile, aTile, outRow, keysEnd] = Array.from({ length: 9 }, I);

  const get = (l: number) => f.localGet(l);
  const add = (a: () => void, b: () => void) => { a(); b(); f.op(Op.i32Add); };
  const setLocal = (l: number, value: () => void) => { value(); f.localSet(l); };
  const bump = (l: number, by: () => void) => setLocal(l, () => add(() => get(l), by));
  const madd = (a: () => void, b: () => void, c: () => void) => {
    if (fma) { a(); b(); c(); f.simd(SimdOp.f32x4RelaxedMadd); } else { a(); b(); f.simd(SimdOp.f32x4Mul); c(); f.simd(SimdOp.f32x4Add); }
  };
  /** if (cond) body */
  const when = (cond: () => void, body: () => void) => { cond(); f.if(); body(); f.end(); };
  const min = (a: () => void, b: () => void) => { a(); b(); a(); b(); f.op(Op.i32LtS).op(Op.select); };

  // This unit's operands and outputs, this thread's scratch.
  setLocal(ptr, () => { get(p.table); get(unit); f.i32Const(4 * ATTENTION_TABLE_WORDS).op(Op.i32Mul).op(Op.i32Add); });
  [qBase, kBase, vBase, gBase].forEach((b, k) => { get(ptr); f.mem(MemOp.i32Load, 4 * k).localSet(b); });
  const unitBase = (base: number, n: number, cols: number, dstLocal: number) =>
    setLocal(dstLocal, () => { get(base); get(unit); get(n); f.op(Op.i32Mul).i32Const(4 * cols).op(Op.i32Mul).op(Op.i32Add); });
  unitBase(p.out, p.l, backward ? E : EV, outBase);
  if (backward) {
    unitBase(p.dk, p.s, E, dkBase);
    unitBase(p.dv, p.s, EV, dvBase);
  }
  setLocal(sb, () => { get(p.scratch); get(thread); get(p.scratchBytes); f.op(Op.i32Mul).op(Op.i32Add); });
  const at = (l: number, w: number) => setLocal(l, () => { get(sb); get(params); f.mem(MemOp.i32Load, 4 * w).op(Op.i32Add); });
  at(qp, P.qpAt); at(kt, P.ktAt); at(pb, P.pAt);
  if (backward) { at(gp, P.gpAt); at(vt, P.vtAt); at(dp, P.dpAt); }
  setLocal(tileBytes, () => { get(p.sp); f.i32Const(16).op(Op.i32Mul); });
  f.f32x4Const(-Infinity, -Infinity, -Infinity, -Infinity).localSet(negInf);
  get(scale); f.simd(SimdOp.f32x4Splat).localSet(scalev);
  // masks[d − 1]: the lanes (query rows i0 + r) with r < d, for which key i0 + d lies in the future.
  masks.forEach((mask, k) => {
    const d = k + 1;
    f.i32x4Const(...([0, 1, 2, 3].map((r) => (r < d ? -1 : 0)) as [number, number, number, number])).localSet(mask);
  });

  /**
   * Packs `n` rows of `cols` floats (row r at base + r·stride) transposed in panels of 8 rows into
   * `to` ([⌈n/8⌉][cols][8]), rows n..sp − 1 zero.
   */
  const packPanels = (base: number, stride: number, cols: number, to: number) => {
    setLocal(src, () => get(base));
    f.forRange(j, () => f.i32Const(0), () => get(p.sp), 1, () => {
      // dst = to + (j >> 3)·cols·32 + (j & 7)·4
      setLocal(dst, () => {
        get(to); get(j); f.i32Const(3).op(Op.i32ShrU).i32Const(cols * 32).op(Op.i32Mul).op(Op.i32Add);
        get(j); f.i32Const(7).op(Op.i32And).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
      });
      get(j); get(p.s); f.op(Op.i32LtS); f.if();
      for (let c = 0; c < cols; c += 4) {
        get(src); f.simdMem(SimdMemOp.v128Load, 4 * c, 0).localSet(x0);
        for (let k = 0; k < 4; k++) { get(dst); get(x0); f.simdLane(SimdLaneOp.f32x4ExtractLane, k).mem(MemOp.f32Store, 32 * (c + k)); }
      }
      f.else();
      for (let c = 0; c < cols; c++) { get(dst); f.f32Const(0).mem(MemOp.f32Store, 32 * c); }
      f.end();
      bump(src, () => get(stride));
    });
  };

  /** Packs the chunk's rows (row c0 + r at base + (c0 + r)·stride, r < rows) row-interleaved into `to` ([tiles][cols][4]), rows up to 4·tiles zero. */
  const packInterleaved = (base: number, stride: number, cols: number, to: number) => {
    setLocal(src, () => { get(base); get(c0); get(stride); f.op(Op.i32Mul).op(Op.i32Add); });
    f.forRange(i, () => f.i32Const(0), () => { get(tiles); f.i32Const(2).op(Op.i32Shl); }, 1, () => {
      setLocal(dst, () => {
        get(to); get(i); f.i32Const(2).op(Op.i32ShrU).i32Const(cols * 16).op(Op.i32Mul).op(Op.i32Add);
        get(i); f.i32Const(3).op(Op.i32And).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
      });
      get(i); get(rows); f.op(Op.i32LtS); f.if();
      for (let c = 0; c < cols; c += 4) {
        get(src); f.simdMem(SimdMemOp.v128Load, 4 * c, 0).localSet(x0);
        for (let k = 0; k < 4; k++) { get(dst); get(x0); f.simdLane(SimdLaneOp.f32x4ExtractLane, k).mem(MemOp.f32Store, 16 * (c + k)); }
      }
      f.else();
      for (let c = 0; c < cols; c++) { get(dst); f.f32Const(0).mem(MemOp.f32Store, 16 * c); }
      f.end();
      bump(src, () => get(stride));
    });
  };

  /**
   * The 4 × jEnd (rounded up to 8) tile aTile (row-interleaved, `depth` features) × the panels at
   * `panels`, transposed into the row-interleaved score tile at `outTile` (times scale when `scaled`).
   */
  const panelProduct = (panels: number, depth: number, outTile: number, scaled: boolean) => {
    setLocal(src, () => get(panels));
    setLocal(dst, () => get(outTile));
    f.forRange(j, () => f.i32Const(0), () => get(jEnd), 8, () => {
      // One feature per step, not unrolled: TurboFan hoists the loads of unrolled steps and spills (matmul-config.ts).
      for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) { f.f32x4Const(0, 0, 0, 0).localSet(acc[r]![h]!); }
      setLocal(rowPtr, () => get(aTile));
      setLocal(keysEnd, () => { get(aTile); f.i32Const(16 * depth).op(Op.i32Add); });
      f.loop();
      get(src); f.simdMem(SimdMemOp.v128Load, 0, 4).localSet(x0);
      get(src); f.simdMem(SimdMemOp.v128Load, 16, 4).localSet(x1);
      for (let r = 0; r < 4; r++) {
        get(rowPtr); f.simdMem(SimdMemOp.v128Load32Splat, 4 * r, 2).localSet(sv);
        for (let h = 0; h < 2; h++) {
          const a = acc[r]![h]!;
          madd(() => get(sv), () => get(h === 0 ? x0 : x1), () => get(a));
          f.localSet(a);
        }
      }
      bump(src, () => f.i32Const(32));
      bump(rowPtr, () => f.i32Const(16));
      get(rowPtr); get(keysEnd); f.op(Op.i32LtU).brIf(0);
      f.end();
      for (let h = 0; h < 2; h++) {
        const [a0, a1, a2, a3] = [acc[0][h], acc[1][h], acc[2][h], acc[3][h]];
        const shuffle = (a: number, b: number, lanes: number[]) => { get(a); get(b); f.i8x16Shuffle(f32Lanes(...lanes)); };
        shuffle(a0, a1, [0, 4, 1, 5]); f.localSet(tmp0);
        shuffle(a2, a3, [0, 4, 1, 5]); f.localSet(tmp1);
        shuffle(a0, a1, [2, 6, 3, 7]); f.localSet(tmp2);
        shuffle(a2, a3, [2, 6, 3, 7]); f.localSet(tmp3);
        const column = (k: number, a: number, b: number, lanes: number[]) => {
          get(dst); shuffle(a, b, lanes);
          if (scaled) { get(scalev); f.simd(SimdOp.f32x4Mul); }
          f.simdMem(SimdMemOp.v128Store, 16 * (4 * h + k), 4);
        };
        column(0, tmp0, tmp1, [0, 1, 4, 5]);
        column(1, tmp0, tmp1, [2, 3, 6, 7]);
        column(2, tmp2, tmp3, [0, 1, 4, 5]);
        column(3, tmp2, tmp3, [2, 3, 6, 7]);
      }
      bump(dst, () => f.i32Const(128));
    });
  };

  /** Over the score tile at pTile, keys j < jEnd (vectors: one key, 4 query rows): `body` with `ptr` at key j. */
  const overKeys = (tile: number, body: () => void) => {
    setLocal(ptr, () => get(tile));
    setLocal(keysEnd, () => { get(tile); get(jEnd); f.i32Const(4).op(Op.i32Shl).op(Op.i32Add); });
    f.block().loop();
    get(ptr); get(keysEnd); f.op(Op.i32GeU).brIf(1);
    body();
    bump(ptr, () => f.i32Const(16));
    f.br(0).end().end();
  };

  // Constants of fastExp, in locals: V8 materializes a v128.const at every use.
  const constant = (x: number) => { const l = V(); f.f32x4Const(x, x, x, x).localSet(l); return l; };
  const cLow = constant(EXP_LOW), cLog2e = constant(Math.LOG2E), cRound = constant(ROUNDING_SHIFT);
  const cLn2Hi = constant(-LN2_HI), cLn2Lo = constant(-LN2_LO), cOne = constant(1);
  const cTaylor = [720, 120, 24, 6, 2].map((k) => constant(1 / k));
  const cBias = V();
  f.i32x4Const(127, 127, 127, 127).localSet(cBias);

  /**
   * Pushes e^x of the local x for x <= 0 (the scores minus their finite row max), −inf and NaN:
   * n = round(x·log2 e), r = x − n·ln 2 (two parts), e^r by its Taylor polynomial of degree 6
   * (relative error below 1.3e-7 for |r| <= ln2/2), times 2^n made from the exponent bits. Below
   * EXP_LOW (e^x < 1.7e-38, nothing next to the row max's e^0 = 1) the result is 0. About half the
   * instructions of the general exp (transcendental-kernel.ts), which also handles overflow and
   * denormals: x > 0 only occurs in a row whose max is +inf or NaN (shift 0), and such a row comes
   * out NaN either way (+inf gives NaN here, as inf/inf does in the reference; NaN stays NaN).
   */
  const fastExp = (x: number) => {
    get(x); get(cLow); f.simd(SimdOp.f32x4Pmax).localSet(tmp0);
    madd(() => get(tmp0), () => get(cLog2e), () => get(cRound));
    f.localSet(tmp1);
    get(tmp1); get(cRound); f.simd(SimdOp.f32x4Sub).localSet(tmp2);
    madd(() => get(tmp2), () => get(cLn2Hi), () => get(tmp0));
    f.localSet(tmp0);
    madd(() => get(tmp2), () => get(cLn2Lo), () => get(tmp0));
    f.localSet(tmp0);
    get(cTaylor[0]!);
    for (const c of [...cTaylor.slice(1), cOne, cOne]) {
      f.localSet(tmp2);
      madd(() => get(tmp2), () => get(tmp0), () => get(c));
    }
    get(tmp1); get(cRound); f.simd(SimdOp.i32x4Sub); get(cBias); f.simd(SimdOp.i32x4Add).i32Const(23).simd(SimdOp.i32x4Shl);
    f.simd(SimdOp.f32x4Mul);
    get(x); get(cLow); f.simd(SimdOp.f32x4Lt).simd(SimdOp.v128Andnot);
  };

  /**
   * Softmax numerators of the 4 rows of the score tile at pTile over keys < jEnd, lane-wise, in
   * place; sumv = 1 / their sums (the caller normalizes). Causal: keys after a row's own masked first.
   */
  const softmaxTile = () => {
    if (causal) {
      for (let d = 1; d < 4; d++) {
        when(() => { get(i0); f.i32Const(d).op(Op.i32Add); get(jEnd); f.op(Op.i32LtS); }, () => {
          setLocal(ptr, () => { get(pTile); get(i0); f.i32Const(4).op(Op.i32Shl).op(Op.i32Add); });
          get(ptr); get(negInf); get(ptr); f.simdMem(SimdMemOp.v128Load, 16 * d, 4); get(masks[d - 1]!); f.simd(SimdOp.v128Bitselect);
          f.simdMem(SimdMemOp.v128Store, 16 * d, 4);
        });
      }
    }
    get(negInf); f.localSet(maxv);
    overKeys(pTile, () => { get(maxv); get(ptr); f.simdMem(SimdMemOp.v128Load, 0, 4).simd(SimdOp.f32x4Pmax).localSet(maxv); });
    // shift = max where finite, else 0 (like the softmax primitive).
    get(maxv); get(maxv); get(maxv); f.simd(SimdOp.f32x4Sub).f32x4Const(0, 0, 0, 0).simd(SimdOp.f32x4Eq).simd(SimdOp.v128And).localSet(maxv);
    f.f32x4Const(0, 0, 0, 0).localSet(sumv);
    overKeys(pTile, () => {
      get(ptr); f.simdMem(SimdMemOp.v128Load, 0, 4); get(maxv); f.simd(SimdOp.f32x4Sub).localSet(x1);
      fastExp(x1);
      f.localSet(x0);
      get(ptr); get(x0); f.simdMem(SimdMemOp.v128Store, 0, 4);
      get(sumv); get(x0); f.simd(SimdOp.f32x4Add).localSet(sumv);
    });
    get(cOne); get(sumv); f.simd(SimdOp.f32x4Div).localSet(sumv);
  };

  /**
   * out rows i0 + r (r < 4, < L; row bytes 4·cols, at outRow) = the score tile at `tile` (keys < jEnd)
   * × rows j of x (at base + j·stride, `cols` floats).
   */
  const tileTimesRows = (tile: number, base: number, stride: number, cols: number, normalize: boolean) => {
    for (const [c, nv] of columnBlocks(cols)) {
      for (let r = 0; r < 4; r++) for (let h = 0; h < nv; h++) { f.f32x4Const(0, 0, 0, 0).localSet(acc[r]![h]!); }
      setLocal(src, () => get(base));
      overKeys(tile, () => {
        get(src); f.simdMem(SimdMemOp.v128Load, 4 * c, 0).localSet(x0);
        if (nv === 2) { get(src); f.simdMem(SimdMemOp.v128Load, 4 * c + 16, 0).localSet(x1); }
        for (let r = 0; r < 4; r++) {
          get(ptr); f.simdMem(SimdMemOp.v128Load32Splat, 4 * r, 2).localSet(sv);
          for (let h = 0; h < nv; h++) { madd(() => get(sv), () => get(h === 0 ? x0 : x1), () => get(acc[r]![h]!)); f.localSet(acc[r]![h]!); }
        }
        bump(src, () => get(stride));
      });
      for (let r = 0; r < 4; r++) {
        const store = () => {
          if (normalize) { get(sumv); f.simdLane(SimdLaneOp.f32x4ExtractLane, r).simd(SimdOp.f32x4Splat).localSet(sv); }
          for (let h = 0; h < nv; h++) {
            get(outRow); get(acc[r]![h]!);
            if (normalize) { get(sv); f.simd(SimdOp.f32x4Mul); }
            f.simdMem(SimdMemOp.v128Store, 4 * (r * cols + c) + 16 * h, 0);
          }
        };
        if (r === 0) store();
        else when(() => { get(i0); f.i32Const(r).op(Op.i32Add); get(p.l); f.op(Op.i32LtS); }, store);
      }
    }
  };

  /**
   * Rows j0..j0+3 (< S) of `to` (row bytes 4·cols) += the chunk's score buffer `buf` (rows iStart..iEnd − 1
   * of it, keys j0..j0+3) transposed × rows i of y (at base + i·stride).
   */
  const transposedTimesRows = (buf: number, base: number, stride: number, cols: number, to: number) => {
    for (const [c, nv] of columnBlocks(cols)) {
      for (let k = 0; k < 4; k++) for (let h = 0; h < nv; h++) { f.f32x4Const(0, 0, 0, 0).localSet(acc[k]![h]!); }
      setLocal(src, () => { get(base); get(iStart); get(stride); f.op(Op.i32Mul).op(Op.i32Add); });
      // iStart − c0 is a multiple of 4 (both are): start at a tile's first row, key j0.
      setLocal(rowPtr, () => {
        get(buf); get(iStart); get(c0); f.op(Op.i32Sub).i32Const(2).op(Op.i32ShrU); get(tileBytes); f.op(Op.i32Mul).op(Op.i32Add);
        get(j0); f.i32Const(4).op(Op.i32Shl).op(Op.i32Add);
      });
      setLocal(i, () => get(iStart));
      f.block().loop();
      get(i); get(iEnd); f.op(Op.i32GeS).brIf(1);
      setLocal(ptr, () => get(rowPtr));
      min(() => { get(i); f.i32Const(4).op(Op.i32Add); }, () => get(iEnd));
      f.localSet(keysEnd);
      f.loop();
      get(src); f.simdMem(SimdMemOp.v128Load, 4 * c, 0).localSet(x0);
      if (nv === 2) { get(src); f.simdMem(SimdMemOp.v128Load, 4 * c + 16, 0).localSet(x1); }
      for (let k = 0; k < 4; k++) {
        get(ptr); f.simdMem(SimdMemOp.v128Load32Splat, 16 * k, 2).localSet(sv);
        for (let h = 0; h < nv; h++) { madd(() => get(sv), () => get(h === 0 ? x0 : x1), () => get(acc[k]![h]!)); f.localSet(acc[k]![h]!); }
      }
      bump(src, () => get(stride));
      bump(ptr, () => f.i32Const(4));
      bump(i, () => f.i32Const(1));
      get(i); get(keysEnd); f.op(Op.i32LtS).brIf(0);
      f.end();
      bump(rowPtr, () => get(tileBytes));
      f.br(0).end().end();
      setLocal(dst, () => { get(to); get(j0); f.i32Const(4 * cols).op(Op.i32Mul).op(Op.i32Add); });
      // The first chunk writes (so the host need not zero dk and dv), later ones add.
      get(c0); f.op(Op.i32Eqz).if();
      for (let k = 0; k < 4; k++) {
        when(() => { get(j0); f.i32Const(k).op(Op.i32Add); get(p.s); f.op(Op.i32LtS); }, () => {
          for (let h = 0; h < nv; h++) { get(dst); get(acc[k]![h]!); f.simdMem(SimdMemOp.v128Store, 4 * (k * cols + c) + 16 * h, 0); }
        });
      }
      f.else();
      for (let k = 0; k < 4; k++) {
        when(() => { get(j0); f.i32Const(k).op(Op.i32Add); get(p.s); f.op(Op.i32LtS); }, () => {
          for (let h = 0; h < nv; h++) {
            const offset = 4 * (k * cols + c) + 16 * h;
            get(dst); get(dst); f.simdMem(SimdMemOp.v128Load, offset, 0); get(acc[k]![h]!); f.simd(SimdOp.f32x4Add).simdMem(SimdMemOp.v128Store, offset, 0);
          }
        });
      }
      f.end();
    }
  };

  packPanels(kBase, p.kStride, E, kt);
  if (backward) packPanels(vBase, p.vStride, EV, vt);
  f.forRange(c0, () => f.i32Const(0), () => get(p.l), () => get(p.chunk), () => {
    min(() => get(p.chunk), () => { get(p.l); get(c0); f.op(Op.i32Sub); });
    f.localSet(rows);
    setLocal(tiles, () => { get(rows); f.i32Const(3).op(Op.i32Add).i32Const(2).op(Op.i32ShrU); });
    packInterleaved(qBase, p.qStride, E, qp);
    if (backward) packInterleaved(gBase, p.gStride, EV, gp);
    f.forRange(ti, () => f.i32Const(0), () => get(tiles), 1, () => {
      setLocal(i0, () => { get(c0); get(ti); f.i32Const(2).op(Op.i32Shl).op(Op.i32Add); });
      if (causal) min(() => { get(i0); f.i32Const(4).op(Op.i32Add); }, () => get(p.s));
      else get(p.s);
      f.localSet(jEnd);
      setLocal(pTile, () => { get(pb); get(ti); get(tileBytes); f.op(Op.i32Mul).op(Op.i32Add); });
      setLocal(outRow, () => { get(outBase); get(i0); f.i32Const(4 * (backward ? E : EV)).op(Op.i32Mul).op(Op.i32Add); });
      setLocal(aTile, () => { get(qp); get(ti); f.i32Const(16 * E).op(Op.i32Mul).op(Op.i32Add); });
      panelProduct(kt, E, pTile, true);
      softmaxTile();
      if (!backward) {
        tileTimesRows(pTile, vBase, p.vStride, EV, true);
      } else {
        setLocal(dpTile, () => { get(dp); get(ti); get(tileBytes); f.op(Op.i32Mul).op(Op.i32Add); });
        setLocal(aTile, () => { get(gp); get(ti); f.i32Const(16 * EV).op(Op.i32Mul).op(Op.i32Add); });
        panelProduct(vt, EV, dpTile, false);
        // p normalized and D = Σ_j p dP per row, then dS = p (dP − D)·scale in place of dP.
        f.f32x4Const(0, 0, 0, 0).localSet(dv4);
        setLocal(rowPtr, () => get(dpTile));
        overKeys(pTile, () => {
          get(ptr); get(ptr); f.simdMem(SimdMemOp.v128Load, 0, 4); get(sumv); f.simd(SimdOp.f32x4Mul).localTee(x0).simdMem(SimdMemOp.v128Store, 0, 4);
          madd(() => get(x0), () => { get(rowPtr); f.simdMem(SimdMemOp.v128Load, 0, 4); }, () => get(dv4));
          f.localSet(dv4);
          bump(rowPtr, () => f.i32Const(16));
        });
        setLocal(rowPtr, () => get(dpTile));
        overKeys(pTile, () => {
          get(rowPtr);
          get(rowPtr); f.simdMem(SimdMemOp.v128Load, 0, 4); get(dv4); f.simd(SimdOp.f32x4Sub);
          get(ptr); f.simdMem(SimdMemOp.v128Load, 0, 4); f.simd(SimdOp.f32x4Mul); get(scalev); f.simd(SimdOp.f32x4Mul);
          f.simdMem(SimdMemOp.v128Store, 0, 4);
          bump(rowPtr, () => f.i32Const(16));
        });
        tileTimesRows(dpTile, kBase, p.kStride, E, false);
      }
    });
    if (backward) {
      // dk += dSᵀ q, dv += pᵀ dO over this chunk's rows; causal: key j0 gets nothing from rows before it.
      setLocal(iEnd, () => { get(c0); get(rows); f.op(Op.i32Add); });
      // Causal: keys from iEnd on get nothing from this chunk; the first chunk still writes their zeros.
      f.forRange(j0, () => f.i32Const(0), () => {
        if (causal) { get(p.s); min(() => get(p.s), () => get(iEnd)); get(c0); f.op(Op.i32Eqz).op(Op.select); } else get(p.s);
      }, 4, () => {
        if (causal) {
          get(j0); get(c0); get(j0); get(c0); f.op(Op.i32GtS).op(Op.select).localSet(iStart);
        } else setLocal(iStart, () => get(c0));
        transposedTimesRows(dp, qBase, p.qStride, E, dkBase);
        transposedTimesRows(pb, gBase, p.gStride, EV, dvBase);
      });
    }
  });
  return m.encode();
}
