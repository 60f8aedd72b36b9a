// Data types: names, sizes, storage arrays and PyTorch-style type promotion.
//
// float16 and bfloat16 are storage formats: the reference backend keeps them in a Float32Array and
// rounds every stored value to the format's precision, so arithmetic behaves like the real format
// (one rounding per op) while kernels stay simple. Their itemsize (2) is what memory accounting uses;
// the wasm backend stores them packed, 2 bytes per element (backend/wasm/packed-half.ts).

export type DType = 'float64' | 'float32' | 'float16' | 'bfloat16' | 'int32' | 'int8' | 'uint8' | 'bool';

export const DTYPES: readonly DType[] = ['float64', 'float32', 'float16', 'bfloat16', 'int32', 'int8', 'uint8', 'bool'];

export type TypedArray = Float64Array | Float32Array | Int32Array | Int8Array | Uint8Array;

interface DTypeInfo {
  itemsize: number;
  kind: 'bool' | 'int' | 'float';
  /** Rank inside its kind for promotion: a larger rank holds the smaller one's values. */
  rank: number;
  storage: 'Float64Array' | 'Float32Array' | 'Int32Array' | 'Int8Array' | 'Uint8Array';
}

const INFO: Record<DType, DTypeInfo> = {
  float64: { itemsize: 8, kind: 'float', rank: 4, storage: 'Float64Array' },
  float32: { itemsize: 4, kind: 'float', rank: 3, storage: 'Float32Array' },
  bfloat16: { itemsize: 2, kind: 'float', rank: 1, storage: 'Float32Array' },
  float16: { itemsize: 2, kind: 'float', rank: 1, storage: 'Float32Array' },
  int32: { itemsize: 4, kind: 'int', rank: 3, storage: 'Int32Array' },
  int8: { itemsize: 1, kind: 'int', rank: 1, storage: 'Int8Array' },
  uint8: { itemsize: 1, kind: 'int', rank: 1, storage: 'Uint8Array' },
  bool: { itemsize: 1, kind: 'bool', rank: 0, storage: 'Uint8Array' },
};

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && x in INFO;
}

export function itemsize(dtype: DType): number {
  return INFO[dtype].itemsize;
}
export function isFloating(dtype: DType): boolean {
  return INFO[dtype].kind === 'float';
}
export function isIntegral(dtype: DType): boolean {
  return INFO[dtype].kind !== 'float';
}

/** A new zero-filled storage array able to hold `size` elements of `dtype`. */
export function allocStorage(dtype: DType, size: number): TypedArray {
  switch (INFO[dtype].storage) {
    case 'Float64Array': return new Float64Array(size);
    case 'Float32Array': return new Float32Array(size);
    case 'Int32Array': return new Int32Array(size);
    case 'Int8Array': return new Int8Array(size);
    case 'Uint8Array': return new Uint8Array(size);
  }
}

/** The dtype whose storage class matches a typed array given by a user. */
export function dtypeOfArray(a: ArrayLike<number>): DType | undefined {
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array) return 'uint8';
  return undefined;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round a number to the nearest bfloat16 (round-to-nearest-even on the float32 bits). */
export function roundBFloat16(x: number): number {
  f32[0] = x;
  if (Number.isNaN(f32[0]!)) return NaN;
  const bits = u32[0]!;
  const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
  u32[0] = rounded >>> 0;
  return f32[0]!;
}

/** Round a number to the nearest IEEE half (round-to-nearest-even), saturating to ±Infinity. */
export function roundFloat16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const ax = Math.abs(x);
  if (ax >= 65520) return x > 0 ? Infinity : -Infinity;
  // Spacing of representable halves around |x|: 2^(e-10) for normals, 2^-24 for subnormals.
  const e = Math.max(Math.floor(Math.log2(ax)), -14);
  const ulp = 2 ** (e - 10);
  const q = ax / ulp;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q) - 0.5) < 1e-12 && r % 2 === 1) r -= 1; // ties to even
  return Math.sign(x) * r * ulp;
}

/** Convert a number to what storing it in `dtype` keeps (integers truncate toward zero like a C cast). */
export function castScalar(x: number, dtype: DType): number {
  switch (dtype) {
    case 'float64': return x;
    case 'float32': return Math.fround(x);
    case 'bfloat16': return roundBFloat16(x);
    case 'float16': return roundFloat16(x);
    case 'int32': return Number.isFinite(x) ? Math.trunc(x) | 0 : 0;
    case 'int8': return ((Number.isFinite(x) ? Math.trunc(x) : 0) << 24) >> 24;
    case 'uint8': return (Number.isFinite(x) ? Math.trunc(x) : 0) & 0xff;
    case 'bool': return x !== 0 ? 1 : 0;
  }
}

/** PyTorch's promote_types for two tensor dtypes. */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  const ia = INFO[a], ib = INFO[b];
  const kinds = ['bool', 'int', 'float'];
  const ka = kinds.indexOf(ia.kind), kb = kinds.indexOf(ib.kind);
  if (ka !== kb) return ka > kb ? a : b;
  if (ia.kind === 'float') {
    // float16 and bfloat16 promote to float32 (neither holds the other).
    if (ia.rank === ib.rank) return 'float32';
    return ia.rank > ib.rank ? a : b;
  }
  if (ia.kind === 'int') {
    // int8 and uint8 promote to int16 in PyTorch; we have no int16, so int32 is the smallest that holds both.
    if (ia.rank === ib.rank) return 'int32';
    return ia.rank > ib.rank ? a : b;
  }
  return a;
}

/** The default dtype for float results (like torch.get_default_dtype()). */
let defaultFloat: DType = 'float32';
export function defaultFloatDType(): DType {
  return defaultFloat;
}
export function setDefaultFloatDType(dtype: DType): void {
  if (!isFloating(dtype)) throw new Error(`setDefaultFloatDType: '${dtype}' is not a floating dtype; use float32 or float64.`);
  defaultFloat = dtype;
}

/**
 * The result dtype of a binary op between a tensor of dtype `t` and a JS number `x`
 * (a "weak" scalar, as in PyTorch): the number only raises the kind (int tensor + 0.5 → float).
 */
export function promoteWithScalar(t: DType, x: number | boolean): DType {
  if (typeof x === 'boolean') return t;
  const kind = Number.isInteger(x) ? 'int' : 'float';
  if (kind === 'float' && !isFloating(t)) return defaultFloat;
  if (kind === 'int' && t === 'bool') return 'int32';
  return t;
}
