// Reference kernels of the window primitives: im2col (convolution patches), its adjoint col2im,
// and maxPoolIndices. Any number of spatial axes (1-3) is handled as three, with size-1 leading
// axes. The loops visit patch rows (g, n, *out) in order and, inside a row, its columns
// (c, *kernel) in order; col2im therefore adds the contributions to each input element in
// increasing row order, which the wasm kernels reproduce exactly.
import type { Kernel, OutputInfo, Storage } from '../backend.js';
import { allocStorage, type TypedArray } from '../../core/dtype.js';
import { sizeOf } from '../../core/shape.js';
import type { PatchAttrs } from '../../ops/primitives.js';
import type { WindowSweep } from '../../ops/patch-shape.js';
import { windowsAlong } from '../../ops/patch-shape.js';
import { arrayOf, contiguousValues } from './strided.js';

/** A window sweep over an [N, C, D, H, W] view (fewer spatial axes padded in front with size 1). */
export interface Sweep3 {
  n: number;
  channels: number;
  /** Input spatial sizes, windows per axis, kernel, stride, dilation, padding before (D, H, W). */
  size: [number, number, number];
  out: [number, number, number];
  kernel: [number, number, number];
  stride: [number, number, number];
  dilation: [number, number, number];
  padBefore: [number, number, number];
  /** Element strides of the input over N, C, D, H, W. */
  strides: [number, number, number, number, number];
}

function three(xs: readonly number[], fill: number): [number, number, number] {
  const out = [fill, fill, fill, ...xs].slice(-3);
  return out as [number, number, number];
}

/** The sweep of `g` over an input of `shape`/`strides` with padding `pads` (none for max pooling). */
export function sweep3(shape: readonly number[], strides: readonly number[], g: WindowSweep, pads?: readonly (readonly [number, number])[]): Sweep3 {
  const dims = g.kernel.length;
  const padded = shape.slice(2).map((s, i) => s + (pads === undefined ? 0 : pads[i]![0] + pads[i]![1]));
  const out = padded.map((p, i) => windowsAlong(p, g.kernel[i]!, g.stride[i]!, g.dilation[i]!));
  const spatialStrides = three(strides.slice(2), 0);
  return {
    n: shape[0]!,
    channels: shape[1]!,
    size: three(shape.slice(2), 1),
    out: three(out, 1),
    kernel: three(g.kernel, 1),
    stride: three(g.stride, 1),
    dilation: three(g.dilation, 1),
    padBefore: three(pads === undefined ? new Array<number>(dims).fill(0) : pads.map(([b]) => b), 0),
    strides: [strides[0]!, strides[1]!, ...spatialStrides],
  };
}

/**
 * Calls visit(input element offset, or -1 for padding; tap index) for every tap of the window at
 * output position (od, oh, ow) of batch n, over the cg channels of group `gr`, in patch-row order
 * (channel, then kernel depth, height, width). Shared with the direct convolution's reference
 * kernels (conv-kernels.ts).
 */
export function forEachWindowTap(
  s: Sweep3, cg: number, offset: number, n: number, gr: number, od: number, oh: number, ow: number,
  visit: (src: number, tap: number) => void,
): void {
  const [D, H, W] = s.size;
  const [KD, KH, KW] = s.kernel;
  const [SD, SH, SW] = s.stride;
  const [DD, DH, DW] = s.dilation;
  const [PD, PH, PW] = s.padBefore;
  const [sn, sc, sd, sh, sw] = s.strides;
  let tap = 0;
  for (let c = 0; c < cg; c++) {
    const base = offset + n * sn + (gr * cg + c) * sc;
    for (let kd = 0; kd < KD; kd++) {
      const id = od * SD - PD + kd * DD;
      for (let kh = 0; kh < KH; kh++) {
        const ih = oh * SH - PH + kh * DH;
        for (let kw = 0; kw < KW; kw++, tap++) {
          const iw = ow * SW - PW + kw * DW;
          const inside = id >= 0 && id < D && ih >= 0 && ih < H && iw >= 0 && iw < W;
          visit(inside ? base + id * sd + ih * sh + iw * sw : -1, tap);
        }
      }
    }
  }
}

/**
 * Calls visit(column position in the patch matrix, input element offset or -1 for padding) for
 * every patch entry, in the patch matrix's row-major order.
 */
function forEachPatchEntry(s: Sweep3, groups: number, offset: number, visit: (col: number, src: number) => void): void {
  const [OD, OH, OW] = s.out;
  const cg = s.channels / groups;
  let o = 0;
  for (let gr = 0; gr < groups; gr++) {
    for (let n = 0; n < s.n; n++) {
      for (let od = 0; od < OD; od++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
        forEachWindowTap(s, cg, offset, n, gr, od, oh, ow, (src) => visit(o++, src));
      }
    }
  }
}

/** The three kernels, wrapping their results with the cpu backend's `wrap` (kernels.ts). */
export function makeWindowKernels(wrapOut: (out: OutputInfo, data: TypedArray) => Storage): {
  im2col: Kernel<'im2col'>; col2im: Kernel<'col2im'>; maxPoolIndices: Kernel<'maxPoolIndices'>;
} {
  const im2col: Kernel<'im2col'> = ([x], attrs: PatchAttrs, out) => {
    const src = arrayOf(x!);
    const dst = allocStorage(out.dtype, sizeOf(out.shape));
    forEachPatchEntry(sweep3(x!.shape, x!.strides, attrs, attrs.pads), attrs.groups, x!.offset, (o, p) => {
      if (p >= 0) dst[o] = src[p]!;
    });
    return wrapOut(out, dst);
  };

  const col2im: Kernel<'col2im'> = ([g], attrs, out) => {
    const cols = contiguousValues(g!);
    const dst = allocStorage(out.dtype, sizeOf(out.shape));
    const shape = attrs.inputShape;
    const strides: number[] = [];
    for (let d = shape.length - 1, st = 1; d >= 0; d--) { strides[d] = st; st *= shape[d]!; }
    forEachPatchEntry(sweep3(shape, strides, attrs, attrs.pads), attrs.groups, 0, (o, p) => {
      if (p >= 0) dst[p] = dst[p]! + cols[o]!;
    });
    return wrapOut(out, dst);
  };

  /** Flat spatial index (over D·H·W of the input) of each window's first maximum; NaN wins, like argmax. */
  const maxPoolIndices: Kernel<'maxPoolIndices'> = ([x], attrs, out) => {
    const src = arrayOf(x!);
    const dst = allocStorage('int32', sizeOf(out.shape));
    const s = sweep3(x!.shape, x!.strides, attrs);
    const [, H, W] = s.size;
    const [OD, OH, OW] = s.out;
    const [KD, KH, KW] = s.kernel;
    const [SD, SH, SW] = s.stride;
    const [DD, DH, DW] = s.dilation;
    const [sn, sc, sd, sh, sw] = s.strides;
    let o = 0;
    for (let n = 0; n < s.n; n++) for (let c = 0; c < s.channels; c++) {
      const base = x!.offset + n * sn + c * sc;
      for (let od = 0; od < OD; od++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++, o++) {
        let best = -1;
        let bestV = 0;
        for (let kd = 0; kd < KD; kd++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
          const [id, ih, iw] = [od * SD + kd * DD, oh * SH + kh * DH, ow * SW + kw * DW];
          const v = src[base + id * sd + ih * sh + iw * sw]!;
          // Ties keep the first; a NaN replaces a number but not an earlier NaN.
          if (best < 0 || v > bestV || (v !== v && bestV === bestV)) {
            best = (id * H + ih) * W + iw;
            bestV = v;
          }
        }
        dst[o] = best;
      }
    }
    return wrapOut(out, dst);
  };

  return { im2col, col2im, maxPoolIndices };
}
