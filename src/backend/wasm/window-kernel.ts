// Generated kernels of the window primitives (see backend/cpu/window-kernels.ts for the
// reference): im2col, col2im and maxPoolIndices over [N, C, D, H, W] (fewer spatial axes come
// padded in front with size 1). Each module exports `task(unit, params, thread)` for the thread
// pool, with the geometry in a parameter block of i32 words (WindowParam) in the heap.
//
//   im2col  unit = one output line (group, n, od, oh): writes its OW patch rows, in order. Inside
//           the input, a kernel row of KW taps with dilation 1 over a contiguous input row is one
//           v128 copy per 4 taps; the lanes past the run land on the next columns of the same
//           patch row, which are written afterwards (runs near the row's end copy exactly).
//   col2im  unit = one (group, n): adds its patch rows, in row order, into the zeroed output,
//           so every element receives its contributions in the reference's order. Runs of
//           contiguous taps (dilation 1 over contiguous rows, such as conv.ts's channels-last
//           patches) add four lanes at a time, which keeps that order per element.
//   maxPool unit = one (n, c) plane of an already padded input: flat spatial index of each
//           window's first maximum (NaN wins, as in argmax).
// Element copies move 4-byte words (any 4-byte dtype); col2im and maxPool read float32.

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, type MemoryImport, type FunctionBuilder } from './encoder.js';

const { i32 } = ValType;

/** Word offsets of the parameter block. Byte addresses and byte strides. */
export const WindowParam = {
  /** im2col/maxPool: the input's element [0,0,0,0,0]; col2im: the patch matrix. */
  src: 0,
  /** im2col: the patch matrix; col2im: the (zeroed, contiguous) output; maxPool: the int32 indices. */
  dst: 1,
  n: 2,
  /** Channels per group (maxPool: all channels). */
  channels: 3,
  groups: 4,
  size: 5, // D, H, W
  out: 8, // OD, OH, OW
  kernel: 11,
  stride: 14,
  dilation: 17,
  padBefore: 20,
  /** Byte strides over N, C, D, H, W of the input (im2col, maxPool) or of the output (col2im). */
  strides: 23,
  /** im2col: first byte past the input's storage (a v128 load must not read beyond it). */
  srcEnd: 28,
} as const;
export const WINDOW_PARAM_WORDS = 32;

export type WindowKernelKind = 'im2col' | 'col2im' | 'maxPool';

/** Shared setup: the task function and its parameters loaded into locals. */
function taskFunction(m: ModuleBuilder) {
  const f = m.function({ params: [i32, i32, i32], results: [] }, 'task');
  const unit = 0, params = 1;
  const local = () => f.local(i32);
  const load = (word: number) => {
    const l = local();
    f.localGet(params).mem(MemOp.i32Load, word * 4).localSet(l);
    return l;
  };
  const p = {
    src: load(WindowParam.src), dst: load(WindowParam.dst), n: load(WindowParam.n),
    channels: load(WindowParam.channels), groups: load(WindowParam.groups),
    size: [0, 1, 2].map((i) => load(WindowParam.size + i)),
    out: [0, 1, 2].map((i) => load(WindowParam.out + i)),
    kernel: [0, 1, 2].map((i) => load(WindowParam.kernel + i)),
    stride: [0, 1, 2].map((i) => load(WindowParam.stride + i)),
    dilation: [0, 1, 2].map((i) => load(WindowParam.dilation + i)),
    padBefore: [0, 1, 2].map((i) => load(WindowParam.padBefore + i)),
    strides: [0, 1, 2, 3, 4].map((i) => load(WindowParam.strides + i)),
    srcEnd: load(WindowParam.srcEnd),
  };
  return { f, unit, local, p };
}

/** Small expression helpers over i32 locals. */
function exprs(f: FunctionBuilder) {
  const get = (l: number) => f.localGet(l);
  const set = (l: number, value: () => void) => { value(); f.localSet(l); };
  const add = (a: () => void, b: () => void) => { a(); b(); f.op(Op.i32Add); };
  const mul = (a: () => void, b: () => void) => { a(); b(); f.op(Op.i32Mul); };
  const l = (x: number) => () => { f.localGet(x); };
  const c = (v: number) => () => { f.i32Const(v); };
  const incr = (x: number, by: () => void) => set(x, () => add(l(x), by));
  /** for (i = 0; i < end; i++) */
  const loop = (i: number, end: number, body: () => void) => f.forRange(i, () => f.i32Const(0), () => f.localGet(end), 1, body);
  return { get, set, add, mul, l, c, incr, loop };
}

/**
 * A geometry baked into a module as constants: windows that lie wholly inside the input then take
 * a fast path with every tap unrolled (its byte offset a load/store immediate), and only windows
 * that overlap the padding walk the generic loops. Needs non-negative strides.
 */
export interface WindowSpec {
  /** Channels per group (maxPool: 1, the unit is one plane). */
  channels: number;
  kernel: readonly [number, number, number];
  dilation: readonly [number, number, number];
  /** Byte strides over C, D, H, W of the input (im2col, maxPool) or of the output (col2im). */
  strides: readonly [number, number, number, number];
  /** Input height and width (maxPool's flat indices). */
  height: number;
  width: number;
}

/** At most this many taps per window are unrolled. */
export const MAX_UNROLLED_TAPS = 64;

/** Byte offset (and flat spatial offset) of every tap from the window's first one, in tap order. */
function taps(spec: WindowSpec): { bytes: number; flat: number }[] {
  const [KD, KH, KW] = spec.kernel;
  const [DD, DH, DW] = spec.dilation;
  const [, sD, sH, sW] = spec.strides;
  const out: { bytes: number; flat: number }[] = [];
  for (let kd = 0; kd < KD; kd++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
    out.push({ bytes: kd * DD * sD + kh * DH * sH + kw * DW * sW, flat: (kd * DD * spec.height + kh * DH) * spec.width + kw * DW });
  }
  return out;
}

export function buildWindowModule(kind: WindowKernelKind, memory: MemoryImport, spec?: WindowSpec): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  const { f, unit, local, p } = taskFunction(m);
  const e = exprs(f);
  const { set, add, mul, l, c, incr, loop } = e;
  const [D, H, W] = p.size as [number, number, number];
  const [OD, OH, OW] = p.out as [number, number, number];
  const [KD, KH, KW] = p.kernel as [number, number, number];
  const [SD, SH, SW] = p.stride as [number, number, number];
  const [DD, DH, DW] = p.dilation as [number, number, number];
  const [PD, PH, PW] = p.padBefore as [number, number, number];
  const [sN, sC, sD, sH, sW] = p.strides as [number, number, number, number, number];
  const [od, oh, ow, ch, kd, kh, kw] = [local(), local(), local(), local(), local(), local(), local()];
  const [n, gr, t, id, ih, iw, iw0] = [local(), local(), local(), local(), local(), local(), local()];
  const [base, cBase, row, dst, src] = [local(), local(), local(), local(), local()];
  const [id0, ih0] = [local(), local()]; // the first tap of the current window (im2col, col2im)
  /** (x) u< (bound): 0 <= x < bound for a signed x. */
  const inside = (x: number, bound: number) => { f.localGet(x).localGet(bound).op(Op.i32LtU); };
  /** 1 when the taps iw0, iw0 + DW, …, iw0 + (KW-1)·DW all lie in [0, W). */
  const interiorW = local();
  const computeInteriorW = () => {
    f.localGet(iw0).i32Const(0).op(Op.i32GeS);
    f.localGet(iw0).localGet(KW).i32Const(1).op(Op.i32Sub).localGet(DW).op(Op.i32Mul).op(Op.i32Add).localGet(W).op(Op.i32LtS);
    f.op(Op.i32And).localSet(interiorW);
  };
  /** 1 when the taps x, x + dil, …, x + (k-1)·dil all lie in [0, size). */
  const windowInside = (x: number, k: number, dil: number, size: number) => {
    f.localGet(x).i32Const(0).op(Op.i32GeS);
    f.localGet(x).localGet(k).i32Const(1).op(Op.i32Sub).localGet(dil).op(Op.i32Mul).op(Op.i32Add).localGet(size).op(Op.i32LtS);
    f.op(Op.i32And);
  };
  const depthRow = () => set(id, () => { add(() => mul(l(od), l(SD)), () => mul(l(kd), l(DD))); f.localGet(PD).op(Op.i32Sub); });
  const heightRow = () => set(ih, () => { add(() => mul(l(oh), l(SH)), () => mul(l(kh), l(DH))); f.localGet(PH).op(Op.i32Sub); });

  if (kind === 'im2col') {
    const cols = local(); // C/g · KD·KH·KW
    const vec = local(); // taps are contiguous words: v128 copies allowed
    const rowEnd = local(); // first byte past the current patch row
    const vecBytes = local(); // KW rounded up to whole v128s, in bytes
    const j = local();
    const [edgeLo, edgeHi] = [local(), local()];
    set(cols, () => { mul(l(p.channels), l(KD)); f.localGet(KH).op(Op.i32Mul).localGet(KW).op(Op.i32Mul); });
    f.localGet(DW).i32Const(1).op(Op.i32Eq).localGet(sW).i32Const(4).op(Op.i32Eq).op(Op.i32And).localSet(vec);
    set(vecBytes, () => { f.localGet(KW).i32Const(3).op(Op.i32Add).i32Const(-4).op(Op.i32And).i32Const(4).op(Op.i32Mul); });
    // unit = ((g·N + n)·OD + od)·OH + oh
    set(oh, () => { f.localGet(unit).localGet(OH).op(Op.i32RemU); });
    set(t, () => { f.localGet(unit).localGet(OH).op(Op.i32DivU); });
    set(od, () => { f.localGet(t).localGet(OD).op(Op.i32RemU); });
    set(t, () => { f.localGet(t).localGet(OD).op(Op.i32DivU); });
    set(n, () => { f.localGet(t).localGet(p.n).op(Op.i32RemU); });
    set(gr, () => { f.localGet(t).localGet(p.n).op(Op.i32DivU); });
    set(dst, () => { f.localGet(p.dst); mul(() => mul(l(unit), l(OW)), l(cols)); f.i32Const(4).op(Op.i32Mul).op(Op.i32Add); });
    set(base, () => { f.localGet(p.src); mul(l(n), l(sN)); f.op(Op.i32Add); mul(() => mul(l(gr), l(p.channels)), l(sC)); f.op(Op.i32Add); });
    set(iw0, () => { f.i32Const(0).localGet(PW).op(Op.i32Sub); });
    const interiorDH = local();
    if (spec !== undefined) {
      set(id0, () => { mul(l(od), l(SD)); f.localGet(PD).op(Op.i32Sub); });
      set(ih0, () => { mul(l(oh), l(SH)); f.localGet(PH).op(Op.i32Sub); });
      windowInside(id0, KD, DD, D); windowInside(ih0, KH, DH, H); f.op(Op.i32And).localSet(interiorDH);
    }
    loop(ow, OW, () => {
      computeInteriorW();
      set(cBase, l(base));
      set(rowEnd, () => add(l(dst), () => mul(l(cols), c(4))));
      if (spec !== undefined) {
        // Inside the input: per channel, every tap a load and a store with immediate offsets.
        f.localGet(interiorDH).localGet(interiorW).op(Op.i32And).if();
        set(src, () => { f.localGet(base); mul(l(id0), l(sD)); f.op(Op.i32Add); mul(l(ih0), l(sH)); f.op(Op.i32Add); mul(l(iw0), l(sW)); f.op(Op.i32Add); });
        const tapList = taps(spec);
        const scalarTaps = () => tapList.forEach((tap, k) => { f.localGet(dst).localGet(src).mem(MemOp.i32Load, tap.bytes).mem(MemOp.i32Store, 4 * k); });
        const [KWc, DWc] = [spec.kernel[2], spec.dilation[2]];
        if (KWc >= 2 && KWc <= 4 && DWc === 1 && spec.strides[3] === 4 && tapList.length >= 4) {
          // A kernel row of 2-4 contiguous taps is one v128 copy; its extra lanes land on the
          // next columns, which the next copy (or the next channel's) overwrites. So the last
          // channel copies tap by tap, and so does a channel whose v128 reads would leave the input.
          const lastRun = tapList[tapList.length - KWc]!.bytes;
          loop(ch, p.channels, () => {
            f.localGet(ch).localGet(p.channels).i32Const(1).op(Op.i32Sub).op(Op.i32LtS);
            f.localGet(src).i32Const(lastRun + 16).op(Op.i32Add).localGet(p.srcEnd).op(Op.i32LeU).op(Op.i32And).if();
            for (let k = 0; k < tapList.length; k += KWc) {
              f.localGet(dst).localGet(src).simdMem(SimdMemOp.v128Load, tapList[k]!.bytes, 0).simdMem(SimdMemOp.v128Store, 4 * k, 0);
            }
            f.else();
            scalarTaps();
            f.end();
            incr(dst, c(4 * tapList.length));
            incr(src, l(sC));
          });
        } else {
          loop(ch, p.channels, () => {
            scalarTaps();
            incr(dst, c(4 * tapList.length));
            incr(src, l(sC));
          });
        }
        f.else();
      }
      loop(ch, p.channels, () => {
        loop(kd, KD, () => {
          depthRow();
          loop(kh, KH, () => {
            heightRow();
            inside(id, D); inside(ih, H); f.op(Op.i32And).if();
            {
              set(row, () => { f.localGet(cBase); mul(l(id), l(sD)); f.op(Op.i32Add); mul(l(ih), l(sH)); f.op(Op.i32Add); });
              f.localGet(interiorW).if();
              {
                set(src, () => { add(l(row), () => mul(l(iw0), l(sW))); });
                // v128 copies: contiguous taps, the writes stay inside this patch row (what they
                // write past the run is overwritten by the next runs) and the reads inside the input.
                f.localGet(vec);
                f.localGet(dst).localGet(vecBytes).op(Op.i32Add).localGet(rowEnd).op(Op.i32LeU).op(Op.i32And);
                f.localGet(src).localGet(vecBytes).op(Op.i32Add).localGet(p.srcEnd).op(Op.i32LeU).op(Op.i32And);
                f.if();
                {
                  f.forRange(j, () => f.i32Const(0), () => f.localGet(KW), 4, () => {
                    f.localGet(dst).localGet(src).simdMem(SimdMemOp.v128Load, 0, 0).simdMem(SimdMemOp.v128Store, 0, 0);
                    incr(dst, c(16));
                    incr(src, c(16));
                  });
                  // The copy ran past KW to a multiple of 4: step back to just after the run.
                  set(dst, () => { f.localGet(dst).localGet(vecBytes).op(Op.i32Sub); mul(l(KW), c(4)); f.op(Op.i32Add); });
                }
                f.else();
                {
                  const step = local();
                  set(step, () => mul(l(DW), l(sW)));
                  loop(kw, KW, () => {
                    f.localGet(dst).localGet(src).mem(MemOp.i32Load).mem(MemOp.i32Store);
                    incr(dst, c(4));
                    incr(src, l(step));
                  });
                }
                f.end();
              }
              f.else();
              f.localGet(vec).if();
              {
                // A window over the padding with contiguous taps: zeros, the run [lo, hi) inside
                // the row as v128 copies, zeros.
                set(edgeLo, () => { f.i32Const(0).localGet(iw0).op(Op.i32Sub); });
                f.localGet(edgeLo).i32Const(0).op(Op.i32LtS).if().i32Const(0).localSet(edgeLo).end();
                f.localGet(edgeLo).localGet(KW).op(Op.i32GtS).if().localGet(KW).localSet(edgeLo).end();
                set(edgeHi, () => { f.localGet(W).localGet(iw0).op(Op.i32Sub); });
                f.localGet(edgeHi).localGet(KW).op(Op.i32GtS).if().localGet(KW).localSet(edgeHi).end();
                f.localGet(edgeHi).localGet(edgeLo).op(Op.i32LtS).if().localGet(edgeLo).localSet(edgeHi).end();
                f.forRange(kw, () => f.i32Const(0), () => f.localGet(edgeLo), 1, () => { f.localGet(dst).i32Const(0).mem(MemOp.i32Store); incr(dst, c(4)); });
                set(src, () => add(l(row), () => mul(() => add(l(iw0), l(edgeLo)), c(4))));
                set(j, () => { f.localGet(edgeHi).localGet(edgeLo).op(Op.i32Sub).i32Const(-4).op(Op.i32And).localGet(edgeLo).op(Op.i32Add); });
                f.forRange(kw, () => f.localGet(edgeLo), () => f.localGet(j), 4, () => {
                  f.localGet(dst).localGet(src).simdMem(SimdMemOp.v128Load, 0, 0).simdMem(SimdMemOp.v128Store, 0, 0);
                  incr(dst, c(16));
                  incr(src, c(16));
                });
                f.forRange(kw, () => f.localGet(j), () => f.localGet(edgeHi), 1, () => {
                  f.localGet(dst).localGet(src).mem(MemOp.i32Load).mem(MemOp.i32Store);
                  incr(dst, c(4));
                  incr(src, c(4));
                });
                f.forRange(kw, () => f.localGet(edgeHi), () => f.localGet(KW), 1, () => { f.localGet(dst).i32Const(0).mem(MemOp.i32Store); incr(dst, c(4)); });
              }
              f.else();
              {
                set(iw, l(iw0));
                loop(kw, KW, () => {
                  f.localGet(dst);
                  inside(iw, W);
                  f.if(ValType.i32).localGet(row).localGet(iw).localGet(sW).op(Op.i32Mul).op(Op.i32Add).mem(MemOp.i32Load)
                    .else().i32Const(0).end();
                  f.mem(MemOp.i32Store);
                  incr(dst, c(4));
                  incr(iw, l(DW));
                });
              }
              f.end();
              f.end();
            }
            f.else();
            {
              loop(kw, KW, () => {
                f.localGet(dst).i32Const(0).mem(MemOp.i32Store);
                incr(dst, c(4));
              });
            }
            f.end();
          });
        });
        incr(cBase, l(sC));
      });
      if (spec !== undefined) f.end();
      incr(iw0, l(SW));
    });
  } else if (kind === 'col2im') {
    // unit = g·N + n; its patch rows are [unit·L, (unit+1)·L).
    set(n, () => { f.localGet(unit).localGet(p.n).op(Op.i32RemU); });
    set(gr, () => { f.localGet(unit).localGet(p.n).op(Op.i32DivU); });
    set(src, () => {
      f.localGet(p.src);
      mul(() => mul(() => mul(() => mul(l(unit), l(OD)), l(OH)), l(OW)), () => mul(() => mul(() => mul(l(p.channels), l(KD)), l(KH)), l(KW)));
      f.i32Const(4).op(Op.i32Mul).op(Op.i32Add);
    });
    set(base, () => { f.localGet(p.dst); mul(l(n), l(sN)); f.op(Op.i32Add); mul(() => mul(l(gr), l(p.channels)), l(sC)); f.op(Op.i32Add); });
    const step = local();
    set(step, () => mul(l(DW), l(sW)));
    const [vecRun, KW4, edgeLo, edgeHi, edgeEnd] = [local(), local(), local(), local(), local()];
    f.localGet(DW).i32Const(1).op(Op.i32Eq).localGet(sW).i32Const(4).op(Op.i32Eq).op(Op.i32And).localSet(vecRun);
    set(KW4, () => { f.localGet(KW).i32Const(-4).op(Op.i32And); });
    const accumulate = () => {
      f.localGet(dst).localGet(dst).mem(MemOp.f32Load).localGet(src).mem(MemOp.f32Load).op(Op.f32Add).mem(MemOp.f32Store);
    };
    const interiorDH = local();
    loop(od, OD, () => {
      loop(oh, OH, () => {
        set(iw0, () => { f.i32Const(0).localGet(PW).op(Op.i32Sub); });
        if (spec !== undefined) {
          set(id0, () => { mul(l(od), l(SD)); f.localGet(PD).op(Op.i32Sub); });
          set(ih0, () => { mul(l(oh), l(SH)); f.localGet(PH).op(Op.i32Sub); });
          windowInside(id0, KD, DD, D); windowInside(ih0, KH, DH, H); f.op(Op.i32And).localSet(interiorDH);
        }
        loop(ow, OW, () => {
          computeInteriorW();
          set(cBase, l(base));
          if (spec !== undefined) {
            // Inside the output: per channel, every tap a load-add-store with immediate offsets.
            f.localGet(interiorDH).localGet(interiorW).op(Op.i32And).if();
            set(dst, () => { f.localGet(base); mul(l(id0), l(sD)); f.op(Op.i32Add); mul(l(ih0), l(sH)); f.op(Op.i32Add); mul(l(iw0), l(sW)); f.op(Op.i32Add); });
            const tapList = taps(spec);
            loop(ch, p.channels, () => {
              tapList.forEach((tap, k) => {
                f.localGet(dst).localGet(dst).mem(MemOp.f32Load, tap.bytes).localGet(src).mem(MemOp.f32Load, 4 * k).op(Op.f32Add).mem(MemOp.f32Store, tap.bytes);
              });
              incr(src, c(4 * tapList.length));
              incr(dst, l(sC));
            });
            f.else();
          }
          loop(ch, p.channels, () => {
            loop(kd, KD, () => {
              depthRow();
              loop(kh, KH, () => {
                heightRow();
                inside(id, D); inside(ih, H); f.op(Op.i32And).if();
                {
                  set(row, () => { f.localGet(cBase); mul(l(id), l(sD)); f.op(Op.i32Add); mul(l(ih), l(sH)); f.op(Op.i32Add); });
                  f.localGet(interiorW).if();
                  {
                    set(dst, () => add(l(row), () => mul(l(iw0), l(sW))));
                    // Contiguous taps (dilation 1 over contiguous rows, e.g. the channels-last
                    // patches of conv.ts, KW·C taps long) add four at a time; the adds per
                    // element, and their order, are the scalar loop's.
                    f.localGet(vecRun).if();
                    f.forRange(kw, () => f.i32Const(0), () => f.localGet(KW4), 4, () => {
                      f.localGet(dst).localGet(dst).simdMem(SimdMemOp.v128Load, 0, 0).localGet(src).simdMem(SimdMemOp.v128Load, 0, 0);
                      f.simd(SimdOp.f32x4Add).simdMem(SimdMemOp.v128Store, 0, 0);
                      incr(dst, c(16));
                      incr(src, c(16));
                    });
                    f.forRange(kw, () => f.localGet(KW4), () => f.localGet(KW), 1, () => {
                      accumulate();
                      incr(dst, c(4));
                      incr(src, c(4));
                    });
                    f.else();
                    loop(kw, KW, () => {
                      accumulate();
                      incr(dst, l(step));
                      incr(src, c(4));
                    });
                    f.end();
                  }
                  f.else();
                  {
                    // A window over the padding: contiguous taps add the run [lo, hi) that lies
                    // inside the row, four at a time as above; other layouts check every tap.
                    f.localGet(vecRun).if();
                    set(edgeLo, () => { f.i32Const(0).localGet(iw0).op(Op.i32Sub); });
                    f.localGet(edgeLo).i32Const(0).op(Op.i32LtS).if().i32Const(0).localSet(edgeLo).end();
                    set(edgeHi, () => { f.localGet(W).localGet(iw0).op(Op.i32Sub); });
                    f.localGet(edgeHi).localGet(KW).op(Op.i32GtS).if().localGet(KW).localSet(edgeHi).end();
                    set(edgeEnd, () => add(l(src), () => mul(l(KW), c(4))));
                    f.localGet(edgeHi).localGet(edgeLo).op(Op.i32GtS).if();
                    set(dst, () => add(l(row), () => mul(() => add(l(iw0), l(edgeLo)), c(4))));
                    set(src, () => add(l(src), () => mul(l(edgeLo), c(4))));
                    set(edgeHi, () => { f.localGet(edgeHi).localGet(edgeLo).op(Op.i32Sub); }); // the run's length
                    set(edgeLo, () => { f.localGet(edgeHi).i32Const(-4).op(Op.i32And); });
                    f.forRange(kw, () => f.i32Const(0), () => f.localGet(edgeLo), 4, () => {
                      f.localGet(dst).localGet(dst).simdMem(SimdMemOp.v128Load, 0, 0).localGet(src).simdMem(SimdMemOp.v128Load, 0, 0);
                      f.simd(SimdOp.f32x4Add).simdMem(SimdMemOp.v128Store, 0, 0);
                      incr(dst, c(16));
                      incr(src, c(16));
                    });
                    f.forRange(kw, () => f.localGet(edgeLo), () => f.localGet(edgeHi), 1, () => {
                      accumulate();
                      incr(dst, c(4));
                      incr(src, c(4));
                    });
                    f.end();
                    set(src, l(edgeEnd));
                    f.else();
                    set(iw, l(iw0));
                    loop(kw, KW, () => {
                      inside(iw, W);
                      f.if();
                      set(dst, () => add(l(row), () => mul(l(iw), l(sW))));
                      accumulate();
                      f.end();
                      incr(src, c(4));
                      incr(iw, l(DW));
                    });
                    f.end();
                  }
                  f.end();
                }
                f.else();
                incr(src, () => mul(l(KW), c(4)));
                f.end();
              });
            });
            incr(cBase, l(sC));
          });
          if (spec !== undefined) f.end();
          incr(iw0, l(SW));
        });
      });
    });
  } else {
    /**
     * Windows two taps wide at stride 2 over contiguous rows (the common 2x2/2 pooling): four
     * windows at a time while four fit with SW = 2. Per kernel row, two v128 loads hold the
     * eight taps of four windows; shuffles split them into the left and right taps, and
     * compare-selects keep each lane's first maximum and its flat index. Leaves ow, win, flat
     * and dst at the first window it did not do.
     */
    function pairsFourAtATime(win: number, flat: number, tapList: { bytes: number; flat: number }[]): void {
      const v128 = ValType.v128;
      const [bestV4, best4, v4, take4, flat4] = [f.local(v128), f.local(v128), f.local(v128), f.local(v128), f.local(v128)];
      /** Four float lanes picked from the eight of two v128s. */
      const shuffle = (lanes: number[]) => f.i8x16Shuffle(lanes.flatMap((lane) => [0, 1, 2, 3].map((b) => lane * 4 + b)));
      const fourWindows = () => {
        // flat indices of the four windows' first taps: flat + 0, 2, 4, 6
        f.localGet(flat).simd(SimdOp.i32x4Splat).i32x4Const(0, 2, 4, 6).simd(SimdOp.i32x4Add).localSet(flat4);
        tapList.forEach((tap, k) => {
          if (k % 2 === 1) return; // the right tap (kw = 1) comes with its left one
          const rowBytes = tap.bytes;
          for (const side of [0, 1]) {
            f.localGet(win).simdMem(SimdMemOp.v128Load, rowBytes, 0);
            f.localGet(win).simdMem(SimdMemOp.v128Load, rowBytes + 16, 0);
            shuffle(side === 0 ? [0, 2, 4, 6] : [1, 3, 5, 7]);
            const tapFlat = tap.flat + side;
            if (k === 0 && side === 0) {
              f.localSet(bestV4);
              f.localGet(flat4).localSet(best4);
              continue;
            }
            f.localSet(v4);
            // take = v > best | (v is NaN & best is not) = (best == best) & !(v <= best)
            f.localGet(bestV4).localGet(bestV4).simd(SimdOp.f32x4Eq).localGet(v4).localGet(bestV4).simd(SimdOp.f32x4Le).simd(SimdOp.v128Andnot).localSet(take4);
            f.localGet(v4).localGet(bestV4).localGet(take4).simd(SimdOp.v128Bitselect).localSet(bestV4);
            f.localGet(flat4).i32x4Const(tapFlat, tapFlat, tapFlat, tapFlat).simd(SimdOp.i32x4Add).localGet(best4).localGet(take4).simd(SimdOp.v128Bitselect).localSet(best4);
          }
        });
        f.localGet(dst).localGet(best4).simdMem(SimdMemOp.v128Store, 0, 0);
        incr(dst, c(16));
        incr(win, c(32));
        incr(flat, c(8));
        incr(ow, c(4));
      };
      f.localGet(SW).i32Const(2).op(Op.i32Eq).if();
      f.block().loop();
      f.localGet(ow).i32Const(4).op(Op.i32Add).localGet(OW).op(Op.i32GtS).brIf(1);
      fourWindows();
      f.br(0).end().end();
      // 1-3 windows left of a row of at least four: redo the last four windows of the row (the
      // overlap writes the same indices again), instead of taking them one by one. Their reads
      // end where the last window's do.
      const back = local();
      f.localGet(ow).localGet(OW).op(Op.i32LtS).localGet(ow).i32Const(0).op(Op.i32GtS).op(Op.i32And).if();
      set(back, () => { f.localGet(ow).localGet(OW).op(Op.i32Sub).i32Const(4).op(Op.i32Add); }); // windows to step back
      set(dst, () => { f.localGet(dst).localGet(back).i32Const(4).op(Op.i32Mul).op(Op.i32Sub); });
      set(win, () => { f.localGet(win).localGet(back).i32Const(8).op(Op.i32Mul).op(Op.i32Sub); });
      set(flat, () => { f.localGet(flat).localGet(back).i32Const(1).op(Op.i32Shl).op(Op.i32Sub); });
      set(ow, () => { f.localGet(ow).localGet(back).op(Op.i32Sub); });
      fourWindows();
      f.end();
      f.end();
    }
    // maxPool: unit = n·C + c, over the padded input (no bounds to check).
    const best = local();
    const bestV = f.local(ValType.f32);
    const v = f.local(ValType.f32);
    set(n, () => { f.localGet(unit).localGet(p.channels).op(Op.i32DivU); });
    set(ch, () => { f.localGet(unit).localGet(p.channels).op(Op.i32RemU); });
    set(base, () => { f.localGet(p.src); mul(l(n), l(sN)); f.op(Op.i32Add); mul(l(ch), l(sC)); f.op(Op.i32Add); });
    set(dst, () => { f.localGet(p.dst); mul(() => mul(() => mul(() => mul(l(unit), l(OD)), l(OH)), l(OW)), c(4)); f.op(Op.i32Add); });
    if (spec !== undefined) {
      // Every tap unrolled: a load with an immediate offset, then a branch-free select.
      const [win, flat, take, winStep] = [local(), local(), local(), local()];
      const tapList = taps(spec);
      set(winStep, () => mul(l(SW), l(sW)));
      loop(od, OD, () => {
        loop(oh, OH, () => {
          set(win, () => { f.localGet(base); mul(() => mul(l(od), l(SD)), l(sD)); f.op(Op.i32Add); mul(() => mul(l(oh), l(SH)), l(sH)); f.op(Op.i32Add); });
          set(flat, () => { mul(() => add(() => mul(() => mul(l(od), l(SD)), l(H)), () => mul(l(oh), l(SH))), l(W)); });
          set(ow, c(0));
          if (spec.kernel[2] === 2 && spec.dilation[2] === 1 && spec.strides[3] === 4) pairsFourAtATime(win, flat, tapList);
          f.block().loop();
          f.localGet(ow).localGet(OW).op(Op.i32GeS).brIf(1);
          {
            tapList.forEach((tap, k) => {
              f.localGet(win).mem(MemOp.f32Load, tap.bytes).localSet(k === 0 ? bestV : v);
              if (k === 0) { set(best, l(flat)); return; }
              // take = v > best | (v is NaN & best is not) = (best == best) & !(v <= best)
              f.localGet(v).localGet(bestV).op(Op.f32Le).op(Op.i32Eqz).localGet(bestV).localGet(bestV).op(Op.f32Eq).op(Op.i32And).localSet(take);
              f.localGet(v).localGet(bestV).localGet(take).op(Op.select).localSet(bestV);
              f.localGet(flat).i32Const(tap.flat).op(Op.i32Add).localGet(best).localGet(take).op(Op.select).localSet(best);
            });
            f.localGet(dst).localGet(best).mem(MemOp.i32Store);
            incr(dst, c(4));
            incr(win, l(winStep));
            incr(flat, l(SW));
            incr(ow, c(1));
          }
          f.br(0).end().end();
        });
      });
      return m.encode();
    }
    loop(od, OD, () => {
      loop(oh, OH, () => {
        loop(ow, OW, () => {
          f.i32Const(-1).localSet(best);
          loop(kd, KD, () => {
            set(id, () => add(() => mul(l(od), l(SD)), () => mul(l(kd), l(DD))));
            loop(kh, KH, () => {
              set(ih, () => add(() => mul(l(oh), l(SH)), () => mul(l(kh), l(DH))));
              set(row, () => { f.localGet(base); mul(l(id), l(sD)); f.op(Op.i32Add); mul(l(ih), l(sH)); f.op(Op.i32Add); });
              set(iw, () => mul(l(ow), l(SW)));
              loop(kw, KW, () => {
                f.localGet(row).localGet(iw).localGet(sW).op(Op.i32Mul).op(Op.i32Add).mem(MemOp.f32Load).localSet(v);
                // first tap | v > best | (v is NaN & best is not): ties keep the first, the first NaN wins.
                f.localGet(best).i32Const(0).op(Op.i32LtS);
                f.localGet(v).localGet(bestV).op(Op.f32Gt).op(Op.i32Or);
                f.localGet(v).localGet(v).op(Op.f32Ne).localGet(bestV).localGet(bestV).op(Op.f32Eq).op(Op.i32And).op(Op.i32Or);
                f.if();
                set(best, () => { mul(() => add(() => mul(l(id), l(H)), l(ih)), l(W)); f.localGet(iw).op(Op.i32Add); });
                f.localGet(v).localSet(bestV);
                f.end();
                incr(iw, l(DW));
              });
            });
          });
          f.localGet(dst).localGet(best).mem(MemOp.i32Store);
          incr(dst, c(4));
        });
      });
    });
  }
  return m.encode();
}
