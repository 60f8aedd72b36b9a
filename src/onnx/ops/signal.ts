// ONNX signal processing: DFT, STFT, MelWeightMatrix.
//
// ONNX holds complex values as a trailing axis of size 2 (re, im); real signals have a trailing
// axis of size 1. The transforms are products with cos/sin matrices built on the host from the
// transform length (O(n²) per signal rather than an FFT), so they run on every backend, work
// under jit and are differentiable in the signal (and in STFT's window).

import { isFloating } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';
import { requireStorageDType } from '../value.js';
import { normAxis } from './shape.js';

/** A complex signal as its real part and its imaginary part (undefined for a real signal). */
interface Complex {
  readonly re: Tensor;
  readonly im: Tensor | undefined;
}

/** Splits x [..., 1 | 2] into its real and imaginary parts (each x's shape without the last axis). */
function splitComplex(ctx: NodeContext, x: Tensor, what: string): Complex {
  const last = x.shape[x.rank - 1];
  if (x.rank < 2 || (last !== 1 && last !== 2)) {
    ctx.fail(`${what} must end in an axis of size 1 (real) or 2 (complex: re, im), got shape [${x.shape.join(', ')}]`);
  }
  if (!isFloating(x.dtype)) ctx.fail(`${what} must be a float tensor, got ${x.dtype}`);
  const part = (i: number): Tensor => ops.squeeze(ops.slice(x, -1, i, i + 1), -1);
  return { re: part(0), im: last === 2 ? part(1) : undefined };
}

/** A host-built [rows, cols] matrix of f(row, col), in `like`'s dtype and backend. */
function hostMatrix(like: Tensor, rows: number, cols: number, f: (r: number, c: number) => number): Tensor {
  const values = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) values[r * cols + c] = f(r, c);
  return ops.cast(ops.tensor(values, { dtype: 'float64', shape: [rows, cols], backend: like.backend }), like.dtype);
}

/** x zero-padded or truncated to length n along its last axis. */
function fitLength(x: Tensor, n: number): Tensor {
  const len = x.shape[x.rank - 1]!;
  if (len === n) return x;
  return len < n ? ops.pad(x, [0, n - len]) : ops.slice(x, -1, 0, n);
}

/**
 * The DFT of length n along the last axis: X[k] = Σ_j x[j]·e^(∓2πi·jk/n) (the inverse uses +
 * and divides by n). The input is zero-padded or truncated to n; with `onesided` only the
 * frequencies k = 0..⌊n/2⌋ are computed.
 */
function dftLastAxis(x: Complex, n: number, inverse: boolean, onesided: boolean): Complex {
  const bins = onesided ? Math.floor(n / 2) + 1 : n;
  // The angle 2π·jk/n, with jk reduced mod n first so that long transforms keep their accuracy.
  const angle = (j: number, k: number): number => (2 * Math.PI * ((j * k) % n)) / n;
  const re = fitLength(x.re, n);
  const cos = hostMatrix(re, n, bins, (j, k) => Math.cos(angle(j, k)));
  // e^(-iθ) for the forward transform, e^(+iθ) for the inverse: the sign rides on the sine matrix.
  const sin = hostMatrix(re, n, bins, (j, k) => (inverse ? 1 : -1) * Math.sin(angle(j, k)));
  let outRe = ops.matmul(re, cos);
  let outIm = ops.matmul(re, sin);
  if (x.im !== undefined) {
    const im = fitLength(x.im, n);
    // (a + ib)(c + is) = (ac - bs) + i(as + bc)
    outRe = ops.sub(outRe, ops.matmul(im, sin));
    outIm = ops.add(outIm, ops.matmul(im, cos));
  }
  if (inverse) {
    outRe = ops.div(outRe, n);
    outIm = ops.div(outIm, n);
  }
  return { re: outRe, im: outIm };
}

/** A complex result back in ONNX's layout: re and im stacked on a new last axis of size 2. */
function joinComplex(y: Complex): Tensor {
  return ops.stack([y.re, y.im ?? ops.zerosLike(y.re)], -1);
}

/** A positive integer scalar input, read to the host. */
function positiveScalar(ctx: NodeContext, i: number, name: string): number {
  const v = ctx.scalar(i);
  if (!Number.isInteger(v) || v < 1) ctx.fail(`${name} must be a positive integer, got ${v}`);
  return v;
}

// DFT (opset 17): the discrete Fourier transform of input [batch, ..., 1 | 2] along `axis`
// (default 1; opset 20 made it the optional third input, default -2), never the last (complex)
// axis. The optional dft_length input zero-pads or truncates the signal; inverse=1 computes the
// inverse transform (scaled by 1/n); onesided=1 keeps the ⌊n/2⌋+1 non-redundant frequencies of a
// real input (ONNX leaves onesided undefined for complex input, so that fails). The output is
// always complex: [..., 2].
registerOnnxOp('DFT', (ctx) => {
  const x = ctx.tensor(0);
  const signal = splitComplex(ctx, x, 'the input');
  const rawAxis = ctx.opset >= 20 ? (ctx.has(2) ? ctx.scalar(2) : -2) : ctx.int('axis', 1);
  const axis = normAxis(ctx, rawAxis, x.rank);
  if (axis === x.rank - 1) ctx.fail(`axis ${rawAxis} is the complex axis; the DFT runs along one of the axes before it`);
  const n = ctx.has(1) ? positiveScalar(ctx, 1, 'dft_length') : x.shape[axis]!;
  const onesided = ctx.int('onesided', 0) !== 0;
  if (onesided && signal.im !== undefined) ctx.fail('onesided=1 needs a real input (last axis of size 1); ONNX does not define a onesided transform of a complex input');
  // Swap the transformed axis to the end, transform, and swap it back.
  const last = x.rank - 2;
  const toLast = (t: Tensor): Tensor => (axis === last ? t : ops.transpose(t, axis, last));
  const y = dftLastAxis({ re: toLast(signal.re), im: signal.im === undefined ? undefined : toLast(signal.im) }, n, ctx.int('inverse', 0) !== 0, onesided);
  return [joinComplex({ re: toLast(y.re), im: toLast(y.im!) })];
});

// STFT (opset 17): the short-time Fourier transform of signal [batch, length, 1 | 2]. Frames of
// frame_length samples start every frame_step samples (frames = ⌊(length - frame_length) /
// frame_step⌋ + 1), are multiplied by the window (default: rectangular) and transformed; the
// output is [batch, frames, bins, 2] with bins = ⌊frame_length/2⌋+1 when onesided (default 1,
// real signals only) else frame_length. frame_length defaults to the window's length.
registerOnnxOp('STFT', (ctx) => {
  const x = ctx.tensor(0);
  if (x.rank !== 3) ctx.fail(`the signal must have shape [batch, length, 1 | 2], got [${x.shape.join(', ')}]`);
  const step = positiveScalar(ctx, 1, 'frame_step');
  const window = ctx.optionalTensor(2);
  if (window !== undefined && window.rank !== 1) ctx.fail(`the window must be 1-D, got shape [${window.shape.join(', ')}]`);
  const frameLength = (ctx.has(3) ? positiveScalar(ctx, 3, 'frame_length') : window?.shape[0])
    ?? ctx.fail('needs a window or a frame_length input to know the frame length');
  if (window !== undefined && window.shape[0] !== frameLength) ctx.fail(`the window has ${window.shape[0]} values but frame_length is ${frameLength}`);
  const length = x.shape[1]!;
  if (frameLength > length) ctx.fail(`frame_length ${frameLength} exceeds the signal length ${length}`);
  const onesided = ctx.int('onesided', 1) !== 0;
  const signal = splitComplex(ctx, x, 'the signal');
  if (onesided && signal.im !== undefined) ctx.fail('onesided=1 (the default) needs a real signal; set onesided=0 for a complex signal');
  // Frames as sliding windows: [batch, frames, frameLength] (zero-copy views), then windowed.
  const frames = (t: Tensor): Tensor => {
    const f = ops.unfold(t, 1, frameLength, step);
    return window === undefined ? f : ops.mul(f, ops.cast(window, f.dtype));
  };
  const y = dftLastAxis({ re: frames(signal.re), im: signal.im === undefined ? undefined : frames(signal.im) }, frameLength, false, onesided);
  return [joinComplex(y)];
});

// MelWeightMatrix (opset 17): the [⌊dft_length/2⌋+1, num_mel_bins] matrix that maps a onesided
// magnitude spectrum to mel bands: triangular filters between num_mel_bins + 2 points evenly
// spaced on the mel scale (mel = 2595·log10(1 + hz/700)) from lower_edge_hertz to
// upper_edge_hertz. Follows the ONNX reference exactly, including its quirks: the mel step is the
// range divided by num_mel_bins + 2, each point maps to spectrum bin ⌊(dft_length + 1)·hz /
// sample_rate⌋, and a filter whose left and centre bins coincide is 1 at its centre. Built on the
// host (it depends only on the scalar inputs); output_datatype (default FLOAT) sets the type.
registerOnnxOp('MelWeightMatrix', (ctx) => {
  const melBins = positiveScalar(ctx, 0, 'num_mel_bins');
  const dftLength = positiveScalar(ctx, 1, 'dft_length');
  const sampleRate = positiveScalar(ctx, 2, 'sample_rate');
  const lowHz = ctx.scalar(3);
  const highHz = ctx.scalar(4);
  if (!(lowHz >= 0 && highHz >= lowHz)) ctx.fail(`needs 0 <= lower_edge_hertz <= upper_edge_hertz, got ${lowHz} and ${highHz}`);
  const spectrumBins = Math.floor(dftLength / 2) + 1;
  const toMel = (hz: number): number => 2595 * Math.log10(1 + hz / 700);
  const lowMel = toMel(lowHz);
  const melStep = (toMel(highHz) - lowMel) / (melBins + 2);
  const points = Array.from({ length: melBins + 2 }, (_, i) => {
    const hz = 700 * (10 ** ((i * melStep + lowMel) / 2595) - 1);
    return Math.floor(((dftLength + 1) * hz) / sampleRate);
  });
  if (points[melBins + 1]! >= spectrumBins) {
    ctx.fail(`upper_edge_hertz ${highHz} maps past the last spectrum bin (${spectrumBins - 1}) for dft_length ${dftLength} and sample_rate ${sampleRate}; keep it at most sample_rate / 2`);
  }
  const values = new Float64Array(spectrumBins * melBins);
  const set = (bin: number, mel: number, v: number): void => { values[bin * melBins + mel] = v; };
  for (let m = 0; m < melBins; m++) {
    const [left, centre, right] = [points[m]!, points[m + 1]!, points[m + 2]!];
    if (centre === left) set(centre, m, 1);
    else for (let j = left; j <= centre; j++) set(j, m, (j - left) / (centre - left));
    for (let j = centre; j < right; j++) set(j, m, (right - j) / (right - centre));
  }
  const type = ctx.int('output_datatype', ElemType.FLOAT);
  const dtype = requireStorageDType(type, `the output of ${ctx.where}`);
  const matrix = ops.tensor(values, { dtype: 'float64', shape: [spectrumBins, melBins], backend: ctx.tensor(0).backend });
  return [ctx.output(ops.cast(matrix, dtype), type)];
});
