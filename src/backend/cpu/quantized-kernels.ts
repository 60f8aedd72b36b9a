// Reference kernel of the quantizedMatmul primitive (QuantizedLinear's product, quant/), and the
// integer helpers it shares with quant/: int4 unpacking and the dynamic int8 formula.
//
// Weight-only ('none'): each code is decoded to (q − z)·s with the scale (and zero point) of its
// slice, rounded to float32 for a float32 input (what dequantize() stores), and the product is
// summed in double precision and rounded once to the output dtype. 'dynamic-int8': the input rows
// are quantized to int8 and the int32 sums scaled in float32, bit for bit as the wasm kernels
// (backend/wasm/quant-dynamic-int8*.ts) do. `transposed` computes x·Ŵ instead of x·Ŵᵀ: the input
// gradient, weight-only (the straight-through estimator for the dynamic mode's rounding).
import type { Kernel, KernelInput, OutputInfo, Storage } from '../backend.js';
import { allocStorage, type TypedArray } from '../../core/dtype.js';
import { TesseraError } from '../../core/errors.js';
import { sizeOf } from '../../core/shape.js';
import type { QuantizedMatmulAttrs } from '../../ops/primitives.js';
import { roundHalfEven } from './math.js';
import { contiguousValues } from './strided.js';

type Wrap = (out: OutputInfo, data: TypedArray) => Storage;

/** Bytes of one packed int4 row of k values (two per byte, low nibble first). */
export function packedRowBytes(k: number): number {
  return (k + 1) >>> 1;
}

/** Unpacks rows × ceil(k / 2) bytes into rows × k values, sign-extending the nibbles when `signed`. */
export function unpackInt4(bytes: ArrayLike<number>, rows: number, k: number, signed: boolean): Int8Array {
  const rowBytes = packedRowBytes(k);
  if (bytes.length !== rows * rowBytes) {
    throw new TesseraError(`unpackInt4: ${bytes.length} bytes do not hold ${rows} rows of ${k} packed values (${rows * rowBytes} bytes expected).`);
  }
  const out = new Int8Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const src = r * rowBytes, dst = r * k;
    for (let j = 0; j < k; j++) {
      const byte = bytes[src + (j >>> 1)]!;
      const nibble = (j & 1) === 0 ? byte & 0xf : byte >>> 4;
      out[dst + j] = signed ? (nibble << 28) >> 28 : nibble;
    }
  }
  return out;
}

/** The smallest activation scale of dynamic int8: float32's smallest normal, so 1 / sx is finite (an all-zero row stays finite). */
export const DQ_MIN_SCALE = 2 ** -126;

/** Per-row symmetric int8 quantization of m rows of k values (the reference of the wasm dqrows pass). */
export function quantizeRowsInt8(x: ArrayLike<number>, m: number, k: number): { codes: Int8Array; scales: Float32Array } {
  const codes = new Int8Array(m * k);
  const scales = new Float32Array(m);
  for (let i = 0; i < m; i++) {
    let amax = 0;
    for (let p = 0; p < k; p++) amax = Math.max(amax, Math.abs(x[i * k + p]!));
    const sx = Math.max(Math.fround(amax / 127), DQ_MIN_SCALE);
    scales[i] = sx;
    const inv = Math.fround(1 / sx);
    for (let p = 0; p < k; p++) {
      const q = roundHalfEven(Math.fround(x[i * k + p]! * inv));
      codes[i * k + p] = Number.isNaN(q) ? 0 : q;
    }
  }
  return { codes, scales };
}

/** Σ_k a[i, k] · b[j, k] for int8 rows (exact; the reference of the wasm GEMM's int32 sums). */
export function int8MatmulInt32(a: ArrayLike<number>, m: number, b: ArrayLike<number>, n: number, k: number): Int32Array {
  const out = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[j * k + p]!;
      out[i * n + j] = s;
    }
  }
  return out;
}

/** y = fp32(fp32(fp32(acc) · sw[j]) · sx[i]) (+ b[j]): the scaling epilogue, as the kernel rounds it. */
export function scaleInt32(acc: Int32Array, m: number, n: number, sx: ArrayLike<number>, sw: ArrayLike<number>, bias?: ArrayLike<number>): Float32Array {
  const y = new Float32Array(m * n);
  const perTensor = sw.length === 1 && n !== 1;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let v = Math.fround(Math.fround(Math.fround(acc[i * n + j]!) * sw[perTensor ? 0 : j]!) * sx[i]!);
      if (bias !== undefined) v = Math.fround(v + bias[j]!);
      y[i * n + j] = v;
    }
  }
  return y;
}

/** The whole dynamic int8 formula on host arrays: quantize the rows, int32 sums, scale. */
export function dynamicInt8Reference(x: ArrayLike<number>, m: number, k: number, wq: ArrayLike<number>, n: number, sw: ArrayLike<number>, bias?: ArrayLike<number>): Float32Array {
  const { codes, scales } = quantizeRowsInt8(x, m, k);
  return scaleInt32(int8MatmulInt32(codes, m, wq, n, k), m, n, scales, sw, bias);
}

/** The weight [n, k] as numbers: (q − z)·s per element, rounded to float32 when `float32`. */
export function decodeWeight(codes: ArrayLike<number>, scales: ArrayLike<number>, zeroPoints: ArrayLike<number> | undefined,
  a: QuantizedMatmulAttrs, float32: boolean): Float64Array {
  const { n, k } = a;
  const q = a.bits === 4 ? unpackInt4(codes, n, k, a.symmetric) : codes;
  const groups = a.scheme === 'group' ? Math.max(1, Math.ceil(k / a.groupSize)) : 1;
  const out = new Float64Array(n * k);
  for (let j = 0; j < n; j++) {
    for (let p = 0; p < k; p++) {
      const s = a.scheme === 'per-tensor' ? 0 : a.scheme === 'group' ? j * groups + Math.floor(p / a.groupSize) : a.axis === 0 ? j : p;
      const v = (q[j * k + p]! - (zeroPoints === undefined ? 0 : zeroPoints[s]!)) * scales[s]!;
      out[j * k + p] = float32 ? Math.fround(v) : v;
    }
  }
  return out;
}

export function makeQuantizedKernels(wrap: Wrap): { quantizedMatmul: Kernel<'quantizedMatmul'> } {
  return {
    quantizedMatmul: (inputs: readonly KernelInput[], a, out) => {
      const [x, codes, scales] = inputs as [KernelInput, KernelInput, KernelInput];
      const zeroPoints = a.symmetric ? undefined : inputs[3];
      const bias = a.bias ? contiguousValues(inputs[inputs.length - 1]!) : undefined;
      const xs = contiguousValues(x);
      const inner = a.transposed ? a.n : a.k, outer = a.transposed ? a.k : a.n;
      const m = sizeOf(x.shape) / Math.max(inner, 1) | 0;
      const dst = allocStorage(out.dtype, sizeOf(out.shape));
      if (a.activations === 'dynamic-int8' && !a.transposed) {
        dst.set(dynamicInt8Reference(xs instanceof Float32Array ? xs : Float32Array.from(xs), m, a.k, contiguousValues(codes), a.n, contiguousValues(scales), bias));
        return wrap(out, dst);
      }
      const w = decodeWeight(contiguousValues(codes), contiguousValues(scales), zeroPoints === undefined ? undefined : contiguousValues(zeroPoints), a, x.dtype !== 'float64');
      for (let i = 0; i < m; i++) {
        for (let o = 0; o < outer; o++) {
          let s = bias === undefined ? 0 : bias[o]!;
          // y = x·Ŵᵀ reads row o of Ŵ; y = x·Ŵ (transposed) reads its column o.
          if (a.transposed) for (let p = 0; p < inner; p++) s += xs[i * inner + p]! * w[p * a.k + o]!;
          else for (let p = 0; p < inner; p++) s += xs[i * inner + p]! * w[o * a.k + p]!;
          dst[i * outer + o] = s;
        }
      }
      return wrap(out, dst);
    },
  };
}
