// WebAssembly opcode numbers used by the encoder: the MVP set, sign extension, the 0xFC
// (saturating truncation, bulk memory) and 0xFD (128-bit SIMD) prefixed sets.
// Names follow the text format with the dots and underscores turned into camelCase,
// e.g. `f32x4.convert_i32x4_s` → `f32x4ConvertI32x4S`.

export const ValType = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
export type ValType = (typeof ValType)[keyof typeof ValType];

/** Block type of a block/loop/if that yields nothing. */
export const EMPTY_BLOCK = 0x40;

/** Single-byte opcodes without immediates (control-flow and memory ops have their own builder methods). */
export const Op = {
  unreachable: 0x00, nop: 0x01, return: 0x0f, drop: 0x1a, select: 0x1b,
  i32Eqz: 0x45, i32Eq: 0x46, i32Ne: 0x47, i32LtS: 0x48, i32LtU: 0x49, i32GtS: 0x4a, i32GtU: 0x4b,
  i32LeS: 0x4c, i32LeU: 0x4d, i32GeS: 0x4e, i32GeU: 0x4f,
  i64Eqz: 0x50, i64Eq: 0x51, i64Ne: 0x52, i64LtS: 0x53, i64LtU: 0x54, i64GtS: 0x55, i64GtU: 0x56,
  i64LeS: 0x57, i64LeU: 0x58, i64GeS: 0x59, i64GeU: 0x5a,
  f32Eq: 0x5b, f32Ne: 0x5c, f32Lt: 0x5d, f32Gt: 0x5e, f32Le: 0x5f, f32Ge: 0x60,
  f64Eq: 0x61, f64Ne: 0x62, f64Lt: 0x63, f64Gt: 0x64, f64Le: 0x65, f64Ge: 0x66,
  i32Clz: 0x67, i32Ctz: 0x68, i32Popcnt: 0x69, i32Add: 0x6a, i32Sub: 0x6b, i32Mul: 0x6c,
  i32DivS: 0x6d, i32DivU: 0x6e, i32RemS: 0x6f, i32RemU: 0x70, i32And: 0x71, i32Or: 0x72,
  i32Xor: 0x73, i32Shl: 0x74, i32ShrS: 0x75, i32ShrU: 0x76, i32Rotl: 0x77, i32Rotr: 0x78,
  i64Clz: 0x79, i64Ctz: 0x7a, i64Popcnt: 0x7b, i64Add: 0x7c, i64Sub: 0x7d, i64Mul: 0x7e,
  i64DivS: 0x7f, i64DivU: 0x80, i64RemS: 0x81, i64RemU: 0x82, i64And: 0x83, i64Or: 0x84,
  i64Xor: 0x85, i64Shl: 0x86, i64ShrS: 0x87, i64ShrU: 0x88, i64Rotl: 0x89, i64Rotr: 0x8a,
  f32Abs: 0x8b, f32Neg: 0x8c, f32Ceil: 0x8d, f32Floor: 0x8e, f32Trunc: 0x8f, f32Nearest: 0x90,
  f32Sqrt: 0x91, f32Add: 0x92, f32Sub: 0x93, f32Mul: 0x94, f32Div: 0x95, f32Min: 0x96,
  f32Max: 0x97, f32Copysign: 0x98,
  f64Abs: 0x99, f64Neg: 0x9a, f64Ceil: 0x9b, f64Floor: 0x9c, f64Trunc: 0x9d, f64Nearest: 0x9e,
  f64Sqrt: 0x9f, f64Add: 0xa0, f64Sub: 0xa1, f64Mul: 0xa2, f64Div: 0xa3, f64Min: 0xa4,
  f64Max: 0xa5, f64Copysign: 0xa6,
  i32WrapI64: 0xa7, i32TruncF32S: 0xa8, i32TruncF32U: 0xa9, i32TruncF64S: 0xaa, i32TruncF64U: 0xab,
  i64ExtendI32S: 0xac, i64ExtendI32U: 0xad, i64TruncF32S: 0xae, i64TruncF32U: 0xaf,
  i64TruncF64S: 0xb0, i64TruncF64U: 0xb1,
  f32ConvertI32S: 0xb2, f32ConvertI32U: 0xb3, f32ConvertI64S: 0xb4, f32ConvertI64U: 0xb5,
  f32DemoteF64: 0xb6, f64ConvertI32S: 0xb7, f64ConvertI32U: 0xb8, f64ConvertI64S: 0xb9,
  f64ConvertI64U: 0xba, f64PromoteF32: 0xbb,
  i32ReinterpretF32: 0xbc, i64ReinterpretF64: 0xbd, f32ReinterpretI32: 0xbe, f64ReinterpretI64: 0xbf,
  i32Extend8S: 0xc0, i32Extend16S: 0xc1, i64Extend8S: 0xc2, i64Extend16S: 0xc3, i64Extend32S: 0xc4,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** Loads and stores (each takes a memarg: alignment exponent and constant offset). */
export const MemOp = {
  i32Load: 0x28, i64Load: 0x29, f32Load: 0x2a, f64Load: 0x2b,
  i32Load8S: 0x2c, i32Load8U: 0x2d, i32Load16S: 0x2e, i32Load16U: 0x2f,
  i64Load8S: 0x30, i64Load8U: 0x31, i64Load16S: 0x32, i64Load16U: 0x33, i64Load32S: 0x34, i64Load32U: 0x35,
  i32Store: 0x36, i64Store: 0x37, f32Store: 0x38, f64Store: 0x39,
  i32Store8: 0x3a, i32Store16: 0x3b, i64Store8: 0x3c, i64Store16: 0x3d, i64Store32: 0x3e,
} as const;
export type MemOp = (typeof MemOp)[keyof typeof MemOp];

/** Natural alignment exponent (log2 of the access width in bytes) of each load/store. */
export const NATURAL_ALIGN: Readonly<Record<number, number>> = {
  0x28: 2, 0x29: 3, 0x2a: 2, 0x2b: 3, 0x2c: 0, 0x2d: 0, 0x2e: 1, 0x2f: 1,
  0x30: 0, 0x31: 0, 0x32: 1, 0x33: 1, 0x34: 2, 0x35: 2,
  0x36: 2, 0x37: 3, 0x38: 2, 0x39: 3, 0x3a: 0, 0x3b: 1, 0x3c: 0, 0x3d: 1, 0x3e: 2,
};

/** 0xFC-prefixed operations without immediates (non-trapping float-to-int conversions). */
export const MiscOp = {
  i32TruncSatF32S: 0, i32TruncSatF32U: 1, i32TruncSatF64S: 2, i32TruncSatF64U: 3,
  i64TruncSatF32S: 4, i64TruncSatF32U: 5, i64TruncSatF64S: 6, i64TruncSatF64U: 7,
} as const;
export type MiscOp = (typeof MiscOp)[keyof typeof MiscOp];

/** 0xFD-prefixed SIMD operations without immediates. */
export const SimdOp = {
  i8x16Swizzle: 0x0e,
  i8x16Splat: 0x0f, i16x8Splat: 0x10, i32x4Splat: 0x11, i64x2Splat: 0x12, f32x4Splat: 0x13, f64x2Splat: 0x14,
  i32x4Eq: 0x37, i32x4Ne: 0x38, i32x4LtS: 0x39, i32x4LtU: 0x3a, i32x4GtS: 0x3b, i32x4GtU: 0x3c,
  i32x4LeS: 0x3d, i32x4LeU: 0x3e, i32x4GeS: 0x3f, i32x4GeU: 0x40,
  f32x4Eq: 0x41, f32x4Ne: 0x42, f32x4Lt: 0x43, f32x4Gt: 0x44, f32x4Le: 0x45, f32x4Ge: 0x46,
  f64x2Eq: 0x47, f64x2Ne: 0x48, f64x2Lt: 0x49, f64x2Gt: 0x4a, f64x2Le: 0x4b, f64x2Ge: 0x4c,
  v128Not: 0x4d, v128And: 0x4e, v128Andnot: 0x4f, v128Or: 0x50, v128Xor: 0x51, v128Bitselect: 0x52,
  v128AnyTrue: 0x53,
  f32x4DemoteF64x2Zero: 0x5e, f64x2PromoteLowF32x4: 0x5f,
  f32x4Ceil: 0x67, f32x4Floor: 0x68, f32x4Trunc: 0x69, f32x4Nearest: 0x6a,
  f64x2Ceil: 0x74, f64x2Floor: 0x75, f64x2Trunc: 0x7a, f64x2Nearest: 0x94,
  // Lane-width changes (the packed float16/bfloat16 storages, half-pack-kernel.ts): narrow_u saturates
  // signed i32 lanes to [0, 0xffff]; extend_*_u zero-extends four u16 lanes to i32.
  i16x8NarrowI32x4U: 0x86, i32x4ExtendLowI16x8U: 0xa9, i32x4ExtendHighI16x8U: 0xaa,
  i32x4Abs: 0xa0, i32x4Neg: 0xa1, i32x4AllTrue: 0xa3, i32x4Bitmask: 0xa4,
  i32x4Shl: 0xab, i32x4ShrS: 0xac, i32x4ShrU: 0xad, i32x4Add: 0xae, i32x4Sub: 0xb1, i32x4Mul: 0xb5,
  i32x4MinS: 0xb6, i32x4MinU: 0xb7, i32x4MaxS: 0xb8, i32x4MaxU: 0xb9,
  f32x4Abs: 0xe0, f32x4Neg: 0xe1, f32x4Sqrt: 0xe3, f32x4Add: 0xe4, f32x4Sub: 0xe5, f32x4Mul: 0xe6,
  f32x4Div: 0xe7, f32x4Min: 0xe8, f32x4Max: 0xe9, f32x4Pmin: 0xea, f32x4Pmax: 0xeb,
  f64x2Abs: 0xec, f64x2Neg: 0xed, f64x2Sqrt: 0xef, f64x2Add: 0xf0, f64x2Sub: 0xf1, f64x2Mul: 0xf2,
  f64x2Div: 0xf3, f64x2Min: 0xf4, f64x2Max: 0xf5, f64x2Pmin: 0xf6, f64x2Pmax: 0xf7,
  i32x4TruncSatF32x4S: 0xf8, i32x4TruncSatF32x4U: 0xf9, f32x4ConvertI32x4S: 0xfa, f32x4ConvertI32x4U: 0xfb,
  // Relaxed SIMD (a separate proposal: check support with simd-features.ts before emitting).
  // relaxed_madd(a, b, c) = a·b + c, fused or not as the hardware prefers; nmadd = -(a·b) + c.
  // relaxed_laneselect(a, b, m) = bitselect where each lane of m is all ones or all zeros (blendvps on x64).
  f32x4RelaxedMadd: 0x105, f32x4RelaxedNmadd: 0x106, i32x4RelaxedLaneselect: 0x10b,
} as const;
export type SimdOp = (typeof SimdOp)[keyof typeof SimdOp];

/** 0xFD-prefixed SIMD memory operations (each takes a memarg). */
export const SimdMemOp = {
  v128Load: 0x00, v128Load32Splat: 0x09, v128Load64Splat: 0x0a, v128Store: 0x0b,
  v128Load32Zero: 0x5c, v128Load64Zero: 0x5d,
} as const;
export type SimdMemOp = (typeof SimdMemOp)[keyof typeof SimdMemOp];

/** Natural alignment exponent of each SIMD memory op. */
export const SIMD_NATURAL_ALIGN: Readonly<Record<number, number>> = {
  0x00: 4, 0x09: 2, 0x0a: 3, 0x0b: 4, 0x5c: 2, 0x5d: 3,
};

/** 0xFD-prefixed lane operations (each takes a lane index immediate). */
export const SimdLaneOp = {
  i32x4ExtractLane: 0x1b, i32x4ReplaceLane: 0x1c, f32x4ExtractLane: 0x1f, f32x4ReplaceLane: 0x20,
  f64x2ExtractLane: 0x21, f64x2ReplaceLane: 0x22,
} as const;
export type SimdLaneOp = (typeof SimdLaneOp)[keyof typeof SimdLaneOp];

/** Lane count of each lane op's shape, to check lane indices at emit time. */
export const SIMD_LANES: Readonly<Record<number, number>> = {
  0x1b: 4, 0x1c: 4, 0x1f: 4, 0x20: 4, 0x21: 2, 0x22: 2,
};

/** 0xFE-prefixed atomic memory operations (threads proposal); each takes a memarg with natural alignment. */
export const AtomicOp = {
  memoryAtomicNotify: 0x00, memoryAtomicWait32: 0x01,
  i32AtomicLoad: 0x10, i32AtomicStore: 0x17, i32AtomicRmwAdd: 0x1e, i32AtomicRmwSub: 0x25,
  i32AtomicRmwXchg: 0x41, i32AtomicRmwCmpxchg: 0x48,
} as const;
export type AtomicOp = (typeof AtomicOp)[keyof typeof AtomicOp];
