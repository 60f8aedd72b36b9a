// Generated kernels of the direct convolution (see backend/cpu/conv-kernels.ts for the reference):
// convDirect (the forward) and convWeightGrad, float32, 1-D and 2-D, SIMD over output positions.
//
// Both read the input from a scratch copy that the host (conv-direct.ts) fills first: zero padding
// included, and each padded row split by the column stride into SW phases,
//   scratch[n][c][ih][phase][j] = x_padded[n][c][ih][j·SW + phase],   j < R (zeros past the row),
// so that the taps of consecutive output columns, iw = ow·SW + kw·DW, are consecutive floats of one
// phase row: (kw·DW) mod SW picks the phase and ow + ⌊kw·DW/SW⌋ the position. Any stride and
// dilation then vectorize like stride 1, and no tap needs a bounds check.
//
// The geometry (channels per group, kernel, stride, dilation, output size, scratch layout) is
// baked into each module, so every tap is a load with an immediate offset.
//
//   forward     unit = (n, group, block of CB output channels, chunk of output rows). Per block of
//               V·4 output columns, CB·V accumulators start at the bias; per input channel and tap
//               V vector loads of the input are shared by CB weights (load32_splat), CB·V FMAs.
//   weightGrad  unit = (batch chunk, group, output channel). Per input channel and pass of up to
//               12 taps, one accumulator per tap sums g[ow..ow+3] · x[tap-shifted ow..ow+3] over
//               the chunk's images and rows; a horizontal add stores each weight gradient entry.
//               With several batch chunks each writes its own partial dW; the host adds them.

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport, type FunctionBuilder } from './encoder.js';

const { i32, v128 } = ValType;

/** Word offsets of the parameter block (byte addresses, counts). */
export const ConvParam = {
  /** The padded, phase-split input (see the file comment). */
  scratch: 0,
  /** forward: the contiguous weight [C_out, C/g, KH, KW]; weightGrad: the contiguous cotangent [N, C_out, OH, OW]. */
  second: 1,
  /** forward: the bias [C_out] (0 = none); weightGrad: unused. */
  bias: 2,
  /** forward: the output [N, C_out, OH, OW]; weightGrad: the (partial) weight gradients [chunks, C_out, C/g·KH·KW]. */
  dst: 3,
  n: 4,
  groups: 5,
  /** Output channels per group. */
  outPerGroup: 6,
  /** forward: output rows per unit; weightGrad: images per unit. */
  perUnit: 7,
  /** forward: units per (n, group, channel block); weightGrad: batch chunks. */
  chunks: 8,
  /** scratch fill: x's element [0, 0, 0, 0] and its byte strides over N, C, H, W. */
  src: 9,
  srcStrides: 10,
  /** scratch fill: input channels (all groups). */
  inChannels: 14,
} as const;
export const CONV_PARAM_WORDS = 16;

/** A geometry baked into a module. Sizes in elements; the 1-D case has KH = OH = 1. */
export interface ConvDirectSpec {
  /** Input channels per group. */
  channels: number;
  kernel: readonly [number, number];
  stride: readonly [number, number];
  dilation: readonly [number, number];
  out: readonly [number, number];
  /** Floats per phase row of the scratch (padded width / SW, plus zero slack). */
  phaseRow: number;
  /** Padded input rows (the scratch's rows per channel plane). */
  paddedRows: number;
  /** Input rows and columns, and the zero padding above and left of them. */
  inSize: readonly [number, number];
  padBefore: readonly [number, number];
  /** forward: output channels per block (CB) and v128s of output columns per block (V). */
  channelBlock: number;
  vectors: number;
  bias: boolean;
  fma: boolean;
}

/** Zero floats after each phase row: enough for a forward block's V·4 lanes read past the row's end. */
export const PHASE_ROW_SLACK = 20;

/** Byte offset of tap (kh, kw) from the window's top-left, in the scratch layout. */
function tapOffset(s: ConvDirectSpec, kh: number, kw: number): number {
  const rowFloats = s.stride[1] * s.phaseRow;
  const col = kw * s.dilation[1];
  return 4 * (kh * s.dilation[0] * rowFloats + (col % s.stride[1]) * s.phaseRow + Math.floor(col / s.stride[1]));
}

function taskFunction(m: ModuleBuilder) {
  const f = m.function({ params: [i32, i32, i32], results: [] }, 'task');
  const load = (word: number) => {
    const l = f.local(i32);
    f.localGet(1).mem(MemOp.i32Load, word * 4).localSet(l);
    return l;
  };
  return { f, unit: 0, load };
}

/** acc = x·w + acc, with FMA when the runtime has relaxed SIMD, else mul + add. */
function accumulate(f: FunctionBuilder, fma: boolean, acc: number, a: () => void, b: () => void): void {
  if (fma) {
    a(); b(); f.localGet(acc).simd(SimdOp.f32x4RelaxedMadd);
  } else {
    a(); b(); f.simd(SimdOp.f32x4Mul).localGet(acc).simd(SimdOp.f32x4Add);
  }
  f.localSet(acc);
}

/** The forward convolution module (see the file comment). */
export function buildConvForwardModule(memory: MemoryImport, s: ConvDirectSpec): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  const { f, unit, load } = taskFunction(m);
  const [KH, KW] = s.kernel;
  const [SH] = s.stride;
  const [OH, OW] = s.out;
  const CB = s.channelBlock, V = s.vectors;
  const taps = KH * KW;
  const rowBytes = 4 * s.stride[1] * s.phaseRow;
  const planeBytes = rowBytes * s.paddedRows;
  const outPlaneBytes = 4 * OH * OW;
  const p = {
    scratch: load(ConvParam.scratch), w: load(ConvParam.second), bias: load(ConvParam.bias), dst: load(ConvParam.dst),
    groups: load(ConvParam.groups), og: load(ConvParam.outPerGroup), perUnit: load(ConvParam.perUnit), chunks: load(ConvParam.chunks),
  };
  const L = () => f.local(i32);
  const [t, chunk, cob, gr, n, co0, xPlane, wBase, outBase, oh, ohEnd, xRow, oRow, ow, xp, wp, ci] =
    [L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L()];
  const acc: number[][] = [];
  for (let c = 0; c < CB; c++) { acc.push([]); for (let v = 0; v < V; v++) acc[c]!.push(f.local(v128)); }
  const xv = Array.from({ length: V }, () => f.local(v128));
  const ws = f.local(v128);
  const coBlocks = L();
  const cOut = L();

  // unit = ((n·G + gr)·coBlocks + cob)·chunks + chunk
  f.localGet(p.og).i32Const(CB).op(Op.i32DivU).localSet(coBlocks);
  f.localGet(p.groups).localGet(p.og).op(Op.i32Mul).localSet(cOut);
  f.localGet(unit).localGet(p.chunks).op(Op.i32RemU).localSet(chunk);
  f.localGet(unit).localGet(p.chunks).op(Op.i32DivU).localSet(t);
  f.localGet(t).localGet(coBlocks).op(Op.i32RemU).localSet(cob);
  f.localGet(t).localGet(coBlocks).op(Op.i32DivU).localSet(t);
  f.localGet(t).localGet(p.groups).op(Op.i32RemU).localSet(gr);
  f.localGet(t).localGet(p.groups).op(Op.i32DivU).localSet(n);
  f.localGet(gr).localGet(p.og).op(Op.i32Mul).localGet(cob).i32Const(CB).op(Op.i32Mul).op(Op.i32Add).localSet(co0);
  // xPlane = scratch + (n·C + gr·cg)·planeBytes, C = G·cg
  f.localGet(p.scratch).localGet(n).localGet(p.groups).op(Op.i32Mul).localGet(gr).op(Op.i32Add).i32Const(s.channels * planeBytes).op(Op.i32Mul).op(Op.i32Add).localSet(xPlane);
  f.localGet(p.w).localGet(co0).i32Const(s.channels * taps * 4).op(Op.i32Mul).op(Op.i32Add).localSet(wBase);
  f.localGet(p.dst).localGet(n).localGet(cOut).op(Op.i32Mul).localGet(co0).op(Op.i32Add).i32Const(outPlaneBytes).op(Op.i32Mul).op(Op.i32Add).localSet(outBase);
  f.localGet(chunk).localGet(p.perUnit).op(Op.i32Mul).localSet(oh);
  f.localGet(oh).localGet(p.perUnit).op(Op.i32Add).localTee(ohEnd).i32Const(OH).op(Op.i32GtS).if().i32Const(OH).localSet(ohEnd).end();

  /** One block of V·4 output columns starting at column `ow`; `lanes` of them are stored (all when undefined). */
  const block = (lanes: number | undefined) => {
    const V = lanes === undefined ? s.vectors : Math.ceil(lanes / 4);
    for (let c = 0; c < CB; c++) for (let v = 0; v < V; v++) {
      if (s.bias) f.localGet(p.bias).localGet(co0).i32Const(4).op(Op.i32Mul).op(Op.i32Add).simdMem(SimdMemOp.v128Load32Splat, 4 * c);
      else f.f32x4Const(0, 0, 0, 0);
      f.localSet(acc[c]![v]!);
    }
    f.localGet(xRow).localGet(ow).i32Const(4).op(Op.i32Mul).op(Op.i32Add).localSet(xp);
    f.localGet(wBase).localSet(wp);
    const channelBody = () => {
      for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
        const off = tapOffset(s, kh, kw);
        for (let v = 0; v < V; v++) f.localGet(xp).simdMem(SimdMemOp.v128Load, off + 16 * v, 0).localSet(xv[v]!);
        for (let c = 0; c < CB; c++) {
          f.localGet(wp).simdMem(SimdMemOp.v128Load32Splat, 4 * (c * s.channels * taps + kh * KW + kw)).localSet(ws);
          for (let v = 0; v < V; v++) accumulate(f, s.fma, acc[c]![v]!, () => f.localGet(xv[v]!), () => f.localGet(ws));
        }
      }
      f.localGet(xp).i32Const(planeBytes).op(Op.i32Add).localSet(xp);
      f.localGet(wp).i32Const(taps * 4).op(Op.i32Add).localSet(wp);
    };
    if (s.channels === 1) channelBody();
    else f.forRange(ci, () => f.i32Const(0), () => f.i32Const(s.channels), 1, channelBody);
    for (let c = 0; c < CB; c++) for (let v = 0; v < V; v++) {
      const base = c * outPlaneBytes + 16 * v;
      if (lanes === undefined) {
        f.localGet(oRow).localGet(acc[c]![v]!).simdMem(SimdMemOp.v128Store, base, 0);
      } else {
        for (let lane = 0; lane < 4 && 4 * v + lane < lanes; lane++) {
          f.localGet(oRow).localGet(acc[c]![v]!).simdLane(SimdLaneOp.f32x4ExtractLane, lane).mem(MemOp.f32Store, base + 4 * lane);
        }
      }
    }
  };

  f.block().loop();
  f.localGet(oh).localGet(ohEnd).op(Op.i32GeS).brIf(1);
  {
    f.localGet(xPlane).localGet(oh).i32Const(SH * rowBytes).op(Op.i32Mul).op(Op.i32Add).localSet(xRow);
    f.localGet(outBase).localGet(oh).i32Const(4 * OW).op(Op.i32Mul).op(Op.i32Add).localSet(oRow);
    const full = Math.floor(OW / (4 * V)) * 4 * V;
    f.i32Const(0).localSet(ow);
    if (full > 0) {
      f.block().loop();
      f.localGet(ow).i32Const(full).op(Op.i32GeS).brIf(1);
      block(undefined);
      f.localGet(oRow).i32Const(16 * V).op(Op.i32Add).localSet(oRow);
      f.localGet(ow).i32Const(4 * V).op(Op.i32Add).localSet(ow);
      f.br(0).end().end();
    }
    if (OW > full) block(OW - full);
    f.localGet(oh).i32Const(1).op(Op.i32Add).localSet(oh);
  }
  f.br(0).end().end();
  return m.encode();
}

/** Taps per weight-gradient pass: one v128 accumulator each, with the cotangent and input vectors. */
export const WEIGHT_GRAD_TAPS_PER_PASS = 12;

/** The weight-gradient module (see the file comment). */
export function buildConvWeightGradModule(memory: MemoryImport, s: ConvDirectSpec): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  const { f, unit, load } = taskFunction(m);
  const [KH, KW] = s.kernel;
  const [SH] = s.stride;
  const [OH, OW] = s.out;
  const taps = KH * KW;
  const rowBytes = 4 * s.stride[1] * s.phaseRow;
  const planeBytes = rowBytes * s.paddedRows;
  const outPlaneBytes = 4 * OH * OW;
  const p = {
    scratch: load(ConvParam.scratch), g: load(ConvParam.second), dst: load(ConvParam.dst), n: load(ConvParam.n),
    groups: load(ConvParam.groups), og: load(ConvParam.outPerGroup), perUnit: load(ConvParam.perUnit),
  };
  const L = () => f.local(i32);
  const [t, chunk, gr, co, cOut, n0, n1, n, ci, xPlane, xRow, gRow, oh, ow, dstRow] = [L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L(), L()];
  const gv = f.local(v128);
  const acc = Array.from({ length: Math.min(taps, WEIGHT_GRAD_TAPS_PER_PASS) }, () => f.local(v128));

  // unit = (chunk·G + gr)·og + co_in_group
  f.localGet(p.groups).localGet(p.og).op(Op.i32Mul).localSet(cOut);
  f.localGet(unit).localGet(cOut).op(Op.i32RemU).localSet(co); // gr·og + co_in_group
  f.localGet(unit).localGet(cOut).op(Op.i32DivU).localSet(chunk);
  f.localGet(co).localGet(p.og).op(Op.i32DivU).localSet(gr);
  f.localGet(chunk).localGet(p.perUnit).op(Op.i32Mul).localSet(n0);
  f.localGet(n0).localGet(p.perUnit).op(Op.i32Add).localTee(n1).localGet(p.n).op(Op.i32GtS).if().localGet(p.n).localSet(n1).end();
  // dstRow = dst + ((chunk·C_out + co)·cg·taps)·4
  f.localGet(p.dst).localGet(chunk).localGet(cOut).op(Op.i32Mul).localGet(co).op(Op.i32Add).i32Const(s.channels * taps * 4).op(Op.i32Mul).op(Op.i32Add).localSet(dstRow);

  // The taps in passes of whole kernel rows (at most WEIGHT_GRAD_TAPS_PER_PASS taps; a longer row alone).
  const passes: { kh: number; kw: number }[][] = [];
  let current: { kh: number; kw: number }[] = [];
  for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
    if (current.length === WEIGHT_GRAD_TAPS_PER_PASS) { passes.push(current); current = []; }
    current.push({ kh, kw });
  }
  passes.push(current);

  const tailLanes = OW % 4;
  const fullBytes = 4 * (OW - tailLanes);
  f.forRange(ci, () => f.i32Const(0), () => f.i32Const(s.channels), 1, () => {
    for (const pass of passes) {
      pass.forEach((_, k) => { f.f32x4Const(0, 0, 0, 0).localSet(acc[k]!); });
      /** One v128 of columns: every tap's input times the cotangent; `tail` keeps only its first lanes of the input too. */
      const sweep = (tail?: number) => {
        pass.forEach((tap, k) => {
          accumulate(f, s.fma, acc[k]!, () => f.localGet(gv), () => {
            f.localGet(xRow).simdMem(SimdMemOp.v128Load, tapOffset(s, tap.kh, tap.kw), 0);
            // Past the last output column an input lane may hold a column no window uses: 0·∞ there would be NaN.
            if (tail !== undefined) f.i32x4Const(...([0, 1, 2, 3].map((lane) => (lane < tail ? -1 : 0)) as [number, number, number, number])).simd(SimdOp.v128And);
          });
        });
      };
      f.forRange(n, () => f.localGet(n0), () => f.localGet(n1), 1, () => {
        // xPlane = scratch + ((n·G + gr)·cg + ci)·planeBytes
        f.localGet(p.scratch).localGet(n).localGet(p.groups).op(Op.i32Mul).localGet(gr).op(Op.i32Add).i32Const(s.channels).op(Op.i32Mul)
          .localGet(ci).op(Op.i32Add).i32Const(planeBytes).op(Op.i32Mul).op(Op.i32Add).localSet(xPlane);
        // gRow = g + (n·C_out + co)·OH·OW·4
        f.localGet(p.g).localGet(n).localGet(cOut).op(Op.i32Mul).localGet(co).op(Op.i32Add).i32Const(outPlaneBytes).op(Op.i32Mul).op(Op.i32Add).localSet(gRow);
        f.forRange(oh, () => f.i32Const(0), () => f.i32Const(OH), 1, () => {
          f.localGet(xPlane).localGet(oh).i32Const(SH * rowBytes).op(Op.i32Mul).op(Op.i32Add).localSet(xRow);
          if (fullBytes > 0) {
            f.forRange(ow, () => f.i32Const(0), () => f.i32Const(fullBytes), 16, () => {
              f.localGet(gRow).simdMem(SimdMemOp.v128Load, 0, 0).localSet(gv);
              sweep();
              f.localGet(gRow).i32Const(16).op(Op.i32Add).localSet(gRow);
              f.localGet(xRow).i32Const(16).op(Op.i32Add).localSet(xRow);
            });
          }
          if (tailLanes > 0) {
            // The last 1-3 columns: zero lanes past the row (no read past it), so those input lanes add nothing.
            if (tailLanes === 1) f.localGet(gRow).simdMem(SimdMemOp.v128Load32Zero, 0);
            else f.localGet(gRow).simdMem(SimdMemOp.v128Load64Zero, 0);
            if (tailLanes === 3) f.localGet(gRow).mem(MemOp.f32Load, 8).simdLane(SimdLaneOp.f32x4ReplaceLane, 2);
            f.localSet(gv);
            sweep(tailLanes);
            f.localGet(gRow).i32Const(4 * tailLanes).op(Op.i32Add).localSet(gRow);
          }
        });
      });
      pass.forEach((tap, k) => {
        // dst[(chunk, co, ci, tap)] = the four lanes of acc summed.
        f.localGet(dstRow);
        f.localGet(acc[k]!).simdLane(SimdLaneOp.f32x4ExtractLane, 0).localGet(acc[k]!).simdLane(SimdLaneOp.f32x4ExtractLane, 1).op(Op.f32Add);
        f.localGet(acc[k]!).simdLane(SimdLaneOp.f32x4ExtractLane, 2).localGet(acc[k]!).simdLane(SimdLaneOp.f32x4ExtractLane, 3).op(Op.f32Add);
        f.op(Op.f32Add).mem(MemOp.f32Store, 4 * (tap.kh * KW + tap.kw));
      });
    }
    f.localGet(dstRow).i32Const(taps * 4).op(Op.i32Add).localSet(dstRow);
  });
  return m.encode();
}

/**
 * The scratch fill: unit = one (n, c) plane of x, zeroed with memory.fill, then its rows placed
 * with memory.copy (stride 1 over contiguous rows) or word by word into their phase rows.
 */
export function buildConvScratchModule(memory: MemoryImport, s: ConvDirectSpec): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  const { f, unit, load } = taskFunction(m);
  const [H, W] = s.inSize;
  const [PT, PL] = s.padBefore;
  const SW = s.stride[1];
  const rowBytes = 4 * SW * s.phaseRow;
  const planeBytes = rowBytes * s.paddedRows;
  const p = {
    scratch: load(ConvParam.scratch), src: load(ConvParam.src), C: load(ConvParam.inChannels),
    sN: load(ConvParam.srcStrides), sC: load(ConvParam.srcStrides + 1), sH: load(ConvParam.srcStrides + 2), sW: load(ConvParam.srcStrides + 3),
  };
  const L = () => f.local(i32);
  const [n, c, src, dst, ih, iw, row] = [L(), L(), L(), L(), L(), L(), L()];
  f.localGet(unit).localGet(p.C).op(Op.i32RemU).localSet(c);
  f.localGet(unit).localGet(p.C).op(Op.i32DivU).localSet(n);
  f.localGet(p.src).localGet(n).localGet(p.sN).op(Op.i32Mul).op(Op.i32Add).localGet(c).localGet(p.sC).op(Op.i32Mul).op(Op.i32Add).localSet(src);
  f.localGet(p.scratch).localGet(unit).i32Const(planeBytes).op(Op.i32Mul).op(Op.i32Add).localSet(dst);
  f.localGet(dst).i32Const(0).i32Const(planeBytes).memoryFill();
  f.forRange(ih, () => f.i32Const(0), () => f.i32Const(H), 1, () => {
    f.localGet(dst).localGet(ih).i32Const(PT).op(Op.i32Add).i32Const(rowBytes).op(Op.i32Mul).op(Op.i32Add).localSet(row);
    f.localGet(src).localGet(ih).localGet(p.sH).op(Op.i32Mul).op(Op.i32Add).localSet(iw); // iw: the source row here
    if (SW === 1) {
      f.localGet(p.sW).i32Const(4).op(Op.i32Eq).if();
      f.localGet(row).i32Const(4 * PL).op(Op.i32Add).localGet(iw).i32Const(4 * W).memoryCopy();
      f.else();
    }
    // Word by word: column col = iw + PL goes to phase col % SW at position col / SW.
    const col = L(), from = L();
    f.localGet(iw).localSet(from);
    f.forRange(col, () => f.i32Const(PL), () => f.i32Const(PL + W), 1, () => {
      f.localGet(row).localGet(col).i32Const(SW).op(Op.i32RemU).i32Const(4 * s.phaseRow).op(Op.i32Mul).op(Op.i32Add)
        .localGet(col).i32Const(SW).op(Op.i32DivU).i32Const(4).op(Op.i32Mul).op(Op.i32Add);
      f.localGet(from).mem(MemOp.i32Load).mem(MemOp.i32Store);
      f.localGet(from).localGet(p.sW).op(Op.i32Add).localSet(from);
    });
    if (SW === 1) f.end();
  });
  return m.encode();
}
