// Reference kernels of the direct convolution primitives (convDirect and its weight gradient
// convWeightGrad): plain loops over the output (or the weight), any strides, 1-3 spatial axes
// (handled as three, like window-kernels.ts), sums in double precision, rounded once to the
// dtype when stored. They define what the wasm kernels (backend/wasm/conv-direct*.ts) compute.
import type { Kernel, OutputInfo, Storage } from '../backend.js';
import { allocStorage, type TypedArray } from '../../core/dtype.js';
import { sizeOf } from '../../core/shape.js';
import type { PatchAttrs } from '../../ops/primitives.js';
import { forEachWindowTap, sweep3, type Sweep3 } from './window-kernels.js';
import { arrayOf, contiguousValues } from './strided.js';

/**
 * Calls visit(input element offset, tap index within C/g·K) for every tap of the window at output
 * position (od, oh, ow) of batch n over the channels of group `gr` that lie inside the input.
 */
function forEachTap(s: Sweep3, cg: number, offset: number, n: number, gr: number, od: number, oh: number, ow: number, visit: (src: number, tap: number) => void): void {
  forEachWindowTap(s, cg, offset, n, gr, od, oh, ow, (src, tap) => {
    if (src >= 0) visit(src, tap);
  });
}

export function makeConvKernels(wrapOut: (out: OutputInfo, data: TypedArray) => Storage): {
  convDirect: Kernel<'convDirect'>; convWeightGrad: Kernel<'convWeightGrad'>;
} {
  const convDirect: Kernel<'convDirect'> = ([x, w, b], attrs: PatchAttrs, out) => {
    const s = sweep3(x!.shape, x!.strides, attrs, attrs.pads);
    const src = arrayOf(x!);
    const weights = contiguousValues(w!);
    const bias = b === undefined ? undefined : contiguousValues(b);
    const cOut = w!.shape[0]!, cg = s.channels / attrs.groups, og = cOut / attrs.groups;
    const taps = sizeOf(w!.shape.slice(1));
    const [OD, OH, OW] = s.out;
    const dst = allocStorage(out.dtype, sizeOf(out.shape));
    let o = 0;
    for (let n = 0; n < s.n; n++) for (let co = 0; co < cOut; co++) {
      const gr = Math.floor(co / og);
      const wBase = co * taps;
      for (let od = 0; od < OD; od++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++, o++) {
        let acc = bias === undefined ? 0 : bias[co]!;
        forEachTap(s, cg, x!.offset, n, gr, od, oh, ow, (p, tap) => { acc += src[p]! * weights[wBase + tap]!; });
        dst[o] = acc;
      }
    }
    return wrapOut(out, dst);
  };

  const convWeightGrad: Kernel<'convWeightGrad'> = ([x, g], attrs, out) => {
    const s = sweep3(x!.shape, x!.strides, attrs, attrs.pads);
    const src = arrayOf(x!);
    const grads = contiguousValues(g!);
    const cOut = g!.shape[1]!, cg = s.channels / attrs.groups, og = cOut / attrs.groups;
    const taps = sizeOf(out.shape.slice(1));
    const [OD, OH, OW] = s.out;
    const acc = new Float64Array(sizeOf(out.shape));
    let o = 0;
    for (let n = 0; n < s.n; n++) for (let co = 0; co < cOut; co++) {
      const gr = Math.floor(co / og);
      const wBase = co * taps;
      for (let od = 0; od < OD; od++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++, o++) {
        const gv = grads[o]!;
        forEachTap(s, cg, x!.offset, n, gr, od, oh, ow, (p, tap) => { acc[wBase + tap] += gv * src[p]!; });
      }
    }
    const dst = allocStorage(out.dtype, acc.length);
    for (let i = 0; i < acc.length; i++) dst[i] = acc[i]!;
    return wrapOut(out, dst);
  };

  return { convDirect, convWeightGrad };
}
