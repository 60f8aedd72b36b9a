// QuantizedTensor: integer codes plus the scales and zero points that map them back to reals,
//   x ≈ (q − zero_point) · scale
// with one (scale, zero point) per slice: the whole tensor, one index of `axis`, or one group of
// `groupSize` consecutive elements of the last axis. A plain value class: quantize() makes one,
// dequantize() reads one, QuantizedLinear stores one; its tensors live on a backend like any other.
//
// Storage of the codes (`data`):
//   8-bit symmetric   int8,  shape = the tensor's shape, values in [-127, 127]
//   8-bit affine      uint8, shape = the tensor's shape, values in [0, 255]
//   4-bit (either)    uint8, shape = [...shape[:-1], ceil(shape[-1] / 2)]: two codes per byte along the
//                     last axis, element 2i in the low nibble (see int4.ts); signed codes as 4-bit two's complement
import { TesseraError, fmtShape } from '../core/errors.js';
import { itemsize } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { packedRowBytes } from './int4.js';
import { scalesShape, type QuantSpec } from './scheme.js';

export class QuantizedTensor {
  constructor(
    /** The integer codes (see the layout above). */
    readonly data: Tensor,
    /** float32, shape scalesShape(spec, shape). */
    readonly scales: Tensor,
    /** int32 of the scales' shape (affine only; symmetric codes have zero point 0). */
    readonly zeroPoints: Tensor | undefined,
    /** The shape of the real tensor. */
    readonly shape: readonly number[],
    readonly spec: QuantSpec,
  ) {
    const want = dataShapeOf(spec, shape);
    const wantDtype = dataDtypeOf(spec);
    if (data.dtype !== wantDtype || data.shape.length !== want.length || data.shape.some((d, i) => d !== want[i])) {
      throw new TesseraError(`QuantizedTensor: codes of shape ${fmtShape(data.shape)} (${data.dtype}) do not fit a ${spec.bits}-bit ` +
        `${spec.symmetric ? 'symmetric' : 'affine'} tensor of shape ${fmtShape(shape)}; expected ${fmtShape(want)} (${wantDtype}).`);
    }
    const sshape = scalesShape(spec, shape);
    const sameShape = (t: Tensor) => t.shape.length === sshape.length && t.shape.every((d, i) => d === sshape[i]);
    if (scales.dtype !== 'float32' || !sameShape(scales)) {
      throw new TesseraError(`QuantizedTensor: scales of shape ${fmtShape(scales.shape)} (${scales.dtype}) should be float32 of shape ${fmtShape(sshape)} for scheme '${spec.scheme}'.`);
    }
    if (spec.symmetric !== (zeroPoints === undefined)) {
      throw new TesseraError(`QuantizedTensor: ${spec.symmetric ? 'symmetric codes take no zero points' : 'affine codes need zero points'}; ` +
        `pass ${spec.symmetric ? 'undefined' : `an int32 tensor of shape ${fmtShape(sshape)}`}.`);
    }
    if (zeroPoints !== undefined && (zeroPoints.dtype !== 'int32' || !sameShape(zeroPoints))) {
      throw new TesseraError(`QuantizedTensor: zero points of shape ${fmtShape(zeroPoints.shape)} (${zeroPoints.dtype}) should be int32 of shape ${fmtShape(sshape)}.`);
    }
  }

  get bits(): number { return this.spec.bits; }
  get scheme(): string { return this.spec.scheme; }
  /** Elements of the real tensor. */
  get size(): number {
    let n = 1;
    for (const d of this.shape) n *= d;
    return n;
  }
  /** Bytes held: codes, scales and zero points. */
  get nbytes(): number {
    const bytesOf = (t: Tensor | undefined) => (t === undefined ? 0 : t.size * itemsize(t.dtype));
    return bytesOf(this.data) + bytesOf(this.scales) + bytesOf(this.zeroPoints);
  }
  /** The last axis' length (1 for a scalar) and the number of rows before it, as the codes are laid out. */
  get rowLength(): number {
    return this.shape.length === 0 ? 1 : this.shape[this.shape.length - 1]!;
  }
  get rows(): number {
    return this.size / Math.max(this.rowLength, 1);
  }

  toString(): string {
    return `QuantizedTensor(shape=${fmtShape(this.shape)}, ${this.spec.bits}-bit ${this.spec.symmetric ? 'symmetric' : 'affine'} ${this.spec.scheme}` +
      `${this.spec.scheme === 'per-channel' ? ` axis=${this.spec.axis}` : this.spec.scheme === 'group' ? ` groupSize=${this.spec.groupSize}` : ''}, ${this.nbytes} bytes)`;
  }

  /** Frees the backend memory of the codes, scales and zero points. */
  dispose(): void {
    this.data.dispose();
    this.scales.dispose();
    this.zeroPoints?.dispose();
  }
}

/** The dtype of the codes of a spec. */
export function dataDtypeOf(spec: QuantSpec): 'int8' | 'uint8' {
  return spec.bits === 8 && spec.symmetric ? 'int8' : 'uint8';
}

/** The shape of the codes of a spec on a tensor of `shape`. */
export function dataShapeOf(spec: QuantSpec, shape: readonly number[]): number[] {
  if (spec.bits === 8) return [...shape];
  if (shape.length === 0) return [1];
  return [...shape.slice(0, -1), packedRowBytes(shape[shape.length - 1]!)];
}
