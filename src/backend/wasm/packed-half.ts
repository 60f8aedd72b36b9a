// The wasm backend keeps float16/bfloat16 storages packed, 2 bytes per element (half the heap of
// float32, as on a GPU), while its kernels compute on float32 words. This wrapper goes around every
// kernel of the backend so that they need not know:
//   - each packed input storage is widened into a temporary of float32 words, only the span of
//     elements its views touch (a slice of a large weight widens the slice), once per storage when
//     several inputs view it, and the views are moved onto the temporary (same shape and strides);
//   - the kernel runs as it ran when halves were stored in float32 words;
//   - a half-format output it gives as float32 words is narrowed into a packed storage; the
//     narrowing rounds to the format (cpu roundToFormat's bits), so this is the output's one rounding
//     pass, not an extra one. An output the kernel already gives packed is returned as it is.
// The temporaries are freed as soon as the kernel returns. Widening is exact and the kernels see the
// very float32 values they saw before, so every result is bit for bit what it was (NaN payloads aside,
// see half-pack-kernel.ts). A primitive may also have a `direct` kernel that takes packed storages
// itself (the casts between float32 and a half format: one narrowing or widening pass); when it
// declines (undefined) the generic path runs.
import type { Kernel, KernelInput, OutputInfo, Storage } from '../backend.js';
import type { DType } from '../../core/dtype.js';
import type { PrimitiveAttrs, PrimitiveName } from '../../ops/primitives.js';
import type { HalfFormat } from './half-pack.js';
import { viewSpan } from '../../core/shape.js';

export { viewSpan };

export function isHalfFormat(dtype: DType): dtype is HalfFormat {
  return dtype === 'float16' || dtype === 'bfloat16';
}

/** What the wrapper needs of the backend. */
export interface PackedHalfHost {
  /** Whether the storage holds 2-byte half-format patterns (rather than float32 words or another dtype). */
  isPacked(storage: Storage): boolean;
  /** A storage of `size` float32 words of `format`'s values (contents unspecified). */
  allocHalfWords(format: HalfFormat, size: number): Storage;
  /** A packed storage of `size` elements (contents unspecified). */
  allocPacked(format: HalfFormat, size: number): Storage;
  addressOf(storage: Storage): number;
  free(storage: Storage): void;
  widen(format: HalfFormat, dst: number, src: number, n: number): void;
  narrow(format: HalfFormat, dst: number, src: number, n: number): void;
}

/** A packed storage with the float32 words `words` holds (rounded to the format); frees `words`. */
export function narrowed(host: PackedHalfHost, words: Storage): Storage {
  const format = words.dtype as HalfFormat;
  const packed = host.allocPacked(format, words.size);
  host.narrow(format, host.addressOf(packed), host.addressOf(words), words.size);
  host.free(words);
  return packed;
}

/** The views of `inputs` moved onto float32-word temporaries of their packed storages (also returned, to free). */
export function widenedInputs(host: PackedHalfHost, inputs: readonly KernelInput[]): { inputs: readonly KernelInput[]; temporaries: Storage[] } {
  if (!inputs.some((x) => host.isPacked(x.storage))) return { inputs, temporaries: [] };
  // One span per packed storage: the union of what its views touch.
  const spans = new Map<Storage, { lo: number; hi: number }>();
  for (const x of inputs) {
    if (!host.isPacked(x.storage)) continue;
    const s = viewSpan(x);
    if (s.lo > s.hi) continue;
    const prev = spans.get(x.storage);
    spans.set(x.storage, prev === undefined ? s : { lo: Math.min(prev.lo, s.lo), hi: Math.max(prev.hi, s.hi) });
  }
  const temps = new Map<Storage, { words: Storage; lo: number }>();
  const temporaries: Storage[] = [];
  for (const [storage, { lo, hi }] of spans) {
    const format = storage.dtype as HalfFormat;
    const words = host.allocHalfWords(format, hi - lo + 1);
    host.widen(format, host.addressOf(words), host.addressOf(storage) + 2 * lo, hi - lo + 1);
    temps.set(storage, { words, lo });
    temporaries.push(words);
  }
  const moved = inputs.map((x): KernelInput => {
    if (!host.isPacked(x.storage)) return x;
    const t = temps.get(x.storage);
    if (t === undefined) {
      // A view of no elements: an empty temporary keeps the kernel from reading packed memory.
      const words = host.allocHalfWords(x.storage.dtype as HalfFormat, 0);
      temporaries.push(words);
      return { storage: words, dtype: x.dtype, shape: x.shape, strides: x.strides, offset: 0 };
    }
    return { storage: t.words, dtype: x.dtype, shape: x.shape, strides: x.strides, offset: x.offset - t.lo };
  });
  return { inputs: moved, temporaries };
}

/** `kernel` on packed half-format storages (see the top of this file). */
export function withPackedHalves<P extends PrimitiveName>(
  host: PackedHalfHost, kernel: Kernel<P>,
  direct?: (inputs: readonly KernelInput[], attrs: PrimitiveAttrs[P], out: OutputInfo) => Storage | undefined,
): Kernel<P> {
  return (inputs, attrs, out) => {
    const done = direct?.(inputs, attrs, out);
    if (done !== undefined) return done;
    const { inputs: words, temporaries } = widenedInputs(host, inputs);
    let result: Storage | undefined;
    try {
      result = kernel(words, attrs, out);
    } finally {
      for (const t of temporaries) if (t !== result) host.free(t);
    }
    return isHalfFormat(result.dtype) && !host.isPacked(result) ? narrowed(host, result) : result;
  };
}
