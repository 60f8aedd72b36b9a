// float32 transcendental functions as f32x4 SIMD code: exp, expm1, log, log1p, tanh, sigmoid,
// erf, GELU and its derivative, and rsqrt, each "four values on the stack → four results", for the elementwise kernels
// (elementwise-kernel.ts). Each is a range reduction plus a polynomial evaluated in float32, with
// the special values (±inf, NaN, ±0, denormals, overflow and underflow) selected explicitly.
//
// They are not bit-identical to the reference backend (which rounds Math.*'s float64 result), but
// within 2 ulp of the exact value over the whole float32 range (test/backend/wasm/transcendental
// .test.ts sweeps them against float64 references); GELU and its derivative within one ulp of
// max(|result|, 1) plus 2.5e-8·|x| (measured: about 3 ulp at worst for |x| <= 1, and relative
// errors below 2e-6 in the left tail down to −5.3, 7.5e-6 down to −13).
// The scalar tail of a row runs the same vector code on a splatted value, so an element's result
// does not depend on its position in the row; emitTranscendentalVectors computes several vectors
// side by side with the same operations, so its results are the same too.
//
// Polynomials: exp and log are Cephes' expf/logf (S. L. Moshier, public domain); expm1's is the
// Taylor series to degree 8 on |r| <= ln2/2; tanh's small-argument one is Cephes' tanhf; erf's were
// fitted for this file (test/backend/wasm/fixtures/fit_erf.py, minimax in float64, coefficients
// rounded to float32), and GELU's (Φ through e^(−x²/2) and a Mills-ratio polynomial) likewise by
// test/backend/wasm/fixtures/fit_gelu.py.

import { FunctionBuilder, ValType, SimdOp, SimdLaneOp } from './encoder.js';
import { relaxedSimdSupported } from './simd-features.js';

const { v128 } = ValType;

export const TRANSCENDENTAL_OPS = ['exp', 'expm1', 'log', 'log1p', 'tanh', 'sigmoid', 'erf', 'gelu', 'geluGrad', 'rsqrt'] as const;
export type TranscendentalOp = (typeof TRANSCENDENTAL_OPS)[number];

/** Code that pushes a v128 value (of vector `lane` when several are computed side by side). */
type Expr = (lane: number) => void;
/** A v128 value: a local's index (the first of `width` consecutive ones), or code that pushes it. */
type Operand = number | Expr;

const SIGN_BIT = -0x80000000;
const LOG2E = 1.44269504088896341;
/** ln 2 split so that n·LN2_HI is exact for the exponents that occur (Cephes' C1, C2). */
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;

/**
 * The v128 constants of a function, held in locals set once at the function's start: V8
 * materializes every v128.const where it is used (several instructions), which inside the element
 * loop cost about as much as the arithmetic.
 */
export class ConstantPool {
  private readonly locals = new Map<string, number>();
  private constructor(private readonly wanted: Map<string, readonly number[]>) {}

  /** Records the constants that `emit` uses (by emitting it into a scratch function), then sets locals for them in `f`. */
  static hoist(f: FunctionBuilder, emit: (scratch: FunctionBuilder, pool: ConstantPool) => void): ConstantPool {
    const collecting = new ConstantPool(new Map());
    emit(new FunctionBuilder(0, { params: [], results: [] }, undefined), collecting);
    const pool = new ConstantPool(collecting.wanted);
    for (const [key, lanes] of collecting.wanted) {
      const local = f.local(v128);
      f.i32x4Const(lanes[0]!, lanes[1]!, lanes[2]!, lanes[3]!).localSet(local);
      pool.locals.set(key, local);
    }
    return pool;
  }

  /** Pushes the splat of these 32 bits. */
  push(f: FunctionBuilder, bits: number): void {
    const key = String(bits | 0);
    const local = this.locals.get(key);
    if (local !== undefined) {
      f.localGet(local);
      return;
    }
    this.wanted.set(key, [bits, bits, bits, bits]);
    f.i32x4Const(bits, bits, bits, bits);
  }
}

const bitsOf = (c: number): number => new Int32Array(new Float32Array([c]).buffer)[0]!;

/**
 * Emits f32x4 arithmetic from operands; `let` stores a value that is used more than once. With
 * `width` > 1 every value is that many vectors (consecutive locals) computed side by side, each
 * `let` emitting its expression once per vector: independent chains interleaved in the code give
 * the CPU's out-of-order window several elements' work at once.
 */
class VectorCode {
  constructor(private readonly f: FunctionBuilder, private readonly pool: ConstantPool | undefined, readonly width = 1) {}

  push(a: Operand, lane = 0): void {
    if (typeof a === 'number') this.f.localGet(a + lane);
    else a(lane);
  }

  let(a: Operand): number {
    const local = this.f.local(v128);
    for (let k = 1; k < this.width; k++) this.f.local(v128);
    for (let lane = 0; lane < this.width; lane++) {
      this.push(a, lane);
      this.f.localSet(local + lane);
    }
    return local;
  }

  f32(c: number): Expr {
    return this.i32(bitsOf(c));
  }

  i32(c: number): Expr {
    return () => {
      if (this.pool === undefined) this.f.i32x4Const(c, c, c, c);
      else this.pool.push(this.f, c);
    };
  }

  op(code: SimdOp, ...args: Operand[]): Expr {
    return (lane) => {
      for (const a of args) this.push(a, lane);
      this.f.simd(code);
    };
  }

  add(a: Operand, b: Operand) { return this.op(SimdOp.f32x4Add, a, b); }
  sub(a: Operand, b: Operand) { return this.op(SimdOp.f32x4Sub, a, b); }
  mul(a: Operand, b: Operand) { return this.op(SimdOp.f32x4Mul, a, b); }
  div(a: Operand, b: Operand) { return this.op(SimdOp.f32x4Div, a, b); }
  /** Lanes of `a` where `mask` is all ones, of `b` elsewhere. */
  select(a: Operand, b: Operand, mask: Operand) { return this.op(SimdOp.v128Bitselect, a, b, mask); }
  /** |a| with the sign bit of `signOf`. */
  withSign(magnitude: Operand, signOf: Operand) { return this.select(signOf, magnitude, this.i32(SIGN_BIT)); }

  shift(code: SimdOp, a: Operand, bits: number): Expr {
    return (lane) => {
      this.push(a, lane);
      this.f.i32Const(bits);
      this.f.simd(code);
    };
  }

  /**
   * a·b + c: one relaxed_madd where the runtime has relaxed SIMD (one FMA instruction on x64 CPUs
   * with FMA3, fused or not elsewhere: the results may differ in the last bit between machines,
   * within the same error bound), else mul + add.
   */
  madd(a: Operand, b: Operand, c: Operand): Expr {
    return (lane) => {
      this.push(a, lane);
      this.push(b, lane);
      if (relaxedSimdSupported()) {
        this.push(c, lane);
        this.f.simd(SimdOp.f32x4RelaxedMadd);
      } else {
        this.f.simd(SimdOp.f32x4Mul);
        this.push(c, lane);
        this.f.simd(SimdOp.f32x4Add);
      }
    };
  }

  /**
   * c[0] + x·(c[1] + x·(c[2] + …)), one madd per step. Several vectors wide, each step is a `let`,
   * so that the vectors' chains interleave (the operations, and so the results, are the same).
   */
  horner(x: Operand, c: readonly number[]): Operand {
    if (this.width === 1) {
      return () => {
        let acc: Operand = this.f32(c[c.length - 1]!);
        for (let k = c.length - 2; k >= 0; k--) acc = this.madd(acc, x, this.f32(c[k]!));
        this.push(acc);
      };
    }
    let acc: Operand = this.f32(c[c.length - 1]!);
    for (let k = c.length - 2; k >= 0; k--) acc = this.let(this.madd(acc, x, this.f32(c[k]!)));
    return acc;
  }

  /** 2^n for integer lanes n in [-126, 127], as floats. */
  pow2(n: Operand): Expr {
    return this.shift(SimdOp.i32x4Shl, this.op(SimdOp.i32x4Add, n, this.i32(127)), 23);
  }

  /**
   * y·2^n for integer lanes n in [-252, 254] (two factors, each a normal float, so the product
   * rounds once, into a denormal or to infinity where the result is one).
   */
  scaleByPow2(y: Operand, n: Operand): Expr {
    const n1 = this.let(this.shift(SimdOp.i32x4ShrS, n, 1));
    return this.mul(this.mul(y, this.pow2(n1)), this.pow2(this.op(SimdOp.i32x4Sub, n, n1)));
  }
}

/**
 * 1.5·2^23: adding it to a float of magnitude below 2^22 rounds that float to the nearest integer
 * (ties to even, as f32x4.nearest does), which then sits in the low mantissa bits, so the integer
 * is also `bits − bits(ROUNDING_SHIFT)`. Two adds and an integer subtract replace f32x4.nearest
 * plus i32x4.trunc_sat_f32x4_s, which V8 lowers to about eight x64 instructions (it has to
 * saturate and turn NaN into 0, neither of which can happen here).
 */
const ROUNDING_SHIFT = 12582912;

/**
 * Cody–Waite reduction x = n·ln2 + r, |r| <= ln2/2, for |x| <= 104: returns n as floats and as
 * int32 lanes, and r.
 */
function reduceByLn2(v: VectorCode, x: number): { n: number; ni: number; r: number } {
  const shifted = v.let(v.add(v.mul(x, v.f32(LOG2E)), v.f32(ROUNDING_SHIFT)));
  const n = v.let(v.sub(shifted, v.f32(ROUNDING_SHIFT)));
  const ni = v.let(v.op(SimdOp.i32x4Sub, shifted, v.f32(ROUNDING_SHIFT)));
  const r = v.let(v.sub(v.sub(x, v.mul(n, v.f32(LN2_HI))), v.mul(n, v.f32(LN2_LO))));
  return { n, ni, r };
}

/**
 * Clamps to [lo, hi] with NaN passing through: pmax/pmin (`a < b ? b : a`, `b < a ? b : a`) keep
 * their first operand whenever a comparison is false, as it is for NaN. One x64 instruction each,
 * where f32x4.max/min's NaN and signed-zero rules cost V8 about seven.
 */
function clamp(v: VectorCode, x: Operand, lo: number, hi: number): Expr {
  return v.op(SimdOp.f32x4Pmin, v.op(SimdOp.f32x4Pmax, x, v.f32(lo)), v.f32(hi));
}

/** exp of the local `x` (any value). */
function exp(v: VectorCode, x0: Operand): Expr {
  // Below −104 the result rounds to 0, above 89 to +inf; NaN passes min/max unchanged.
  const x = v.let(clamp(v, x0, -104, 89));
  const { ni, r } = reduceByLn2(v, x);
  const p = v.horner(r, [5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.9875691500e-4]);
  const y = v.add(v.add(v.mul(p, v.mul(r, r)), r), v.f32(1));
  return v.scaleByPow2(y, ni);
}

/** e^x − 1, accurate for small |x|: 2^n·expm1(r) + (2^n − 1). */
function expm1(v: VectorCode, x0: number): Expr {
  const x = v.let(clamp(v, x0, -18, 89));
  const { ni, r } = reduceByLn2(v, x);
  const q = v.horner(r, [1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320]);
  const p = v.let(v.add(r, v.mul(v.mul(r, r), q)));
  // 2^n − 1 is exact for n <= 24; beyond, the −1 is below half an ulp and e^x may exceed 2^127.
  const s = v.let(v.pow2(v.op(SimdOp.i32x4MinS, ni, v.i32(24))));
  const moderate = v.add(v.mul(p, s), v.sub(s, v.f32(1)));
  const large = v.scaleByPow2(v.add(p, v.f32(1)), ni);
  const result = v.select(large, moderate, v.op(SimdOp.i32x4GtS, ni, v.i32(24)));
  // ±0 keeps its sign (the reduction turns −0 into +0).
  return v.select(x0, result, v.op(SimdOp.f32x4Eq, x0, v.f32(0)));
}

/** Natural log; x < 0 and NaN give NaN, ±0 gives −inf, +inf gives +inf. */
function log(v: VectorCode, x0: Operand): Expr {
  const x = v.let(x0);
  // Denormals are scaled into the normal range first (and their exponent corrected).
  const denormal = v.let(v.op(SimdOp.f32x4Lt, x, v.f32(2 ** -126)));
  const scaled = v.let(v.select(v.mul(x, v.f32(2 ** 23)), x, denormal));
  const e0 = v.op(SimdOp.i32x4Sub, v.shift(SimdOp.i32x4ShrU, scaled, 23), v.select(v.i32(126 + 23), v.i32(126), denormal));
  // m in [0.5, 1); below sqrt(1/2) it is doubled (and e lowered) so that m − 1 is in [−0.29, 0.41].
  const m0 = v.let(v.op(SimdOp.v128Or, v.op(SimdOp.v128And, scaled, v.i32(0x007fffff)), v.i32(0x3f000000)));
  const low = v.let(v.op(SimdOp.f32x4Lt, m0, v.f32(0.707106781186547524)));
  const e = v.let(v.op(SimdOp.f32x4ConvertI32x4S, v.op(SimdOp.i32x4Add, e0, low)));
  const m = v.let(v.sub(v.add(m0, v.op(SimdOp.v128And, m0, low)), v.f32(1)));
  const z = v.let(v.mul(m, m));
  const poly = v.horner(m, [
    3.3333331174e-1, -2.4999993993e-1, 2.0000714765e-1, -1.6668057665e-1, 1.4249322787e-1,
    -1.2420140846e-1, 1.1676998740e-1, -1.1514610310e-1, 7.0376836292e-2,
  ]);
  let y: Operand = v.mul(v.mul(poly, m), z);
  y = v.add(y, v.mul(e, v.f32(LN2_LO)));
  y = v.add(y, v.mul(z, v.f32(-0.5)));
  const finite = v.add(v.add(m, y), v.mul(e, v.f32(LN2_HI)));
  const nan = v.op(SimdOp.v128Or, v.op(SimdOp.f32x4Lt, x, v.f32(0)), v.op(SimdOp.f32x4Ne, x, x));
  let result: Operand = v.select(v.f32(Infinity), finite, v.op(SimdOp.f32x4Eq, x, v.f32(Infinity)));
  result = v.select(v.f32(-Infinity), result, v.op(SimdOp.f32x4Eq, x, v.f32(0)));
  return v.select(v.f32(NaN), result, nan);
}

/** log(1 + x) = log(u) + (x − (u − 1))/u with u = 1 + x rounded: the quotient restores what the rounding lost. */
function log1p(v: VectorCode, x: number): Expr {
  const u = v.let(v.add(v.f32(1), x));
  const correction = v.div(v.sub(x, v.sub(u, v.f32(1))), u);
  const result = v.add(log(v, u), correction);
  // x = −1 and x = +inf make the correction 0/0 or inf − inf; −0 would come out as +0.
  let special: Operand = v.select(v.f32(Infinity), result, v.op(SimdOp.f32x4Eq, x, v.f32(Infinity)));
  special = v.select(v.f32(-Infinity), special, v.op(SimdOp.f32x4Eq, x, v.f32(-1)));
  return v.select(x, special, v.op(SimdOp.f32x4Eq, x, v.f32(0)));
}

/** tanh: Cephes' odd polynomial below |x| = 0.625, 1 − 2/(e^{2|x|} + 1) above. */
function tanh(v: VectorCode, x: number): Expr {
  const a = v.let(v.op(SimdOp.f32x4Abs, x));
  const z = v.let(v.mul(x, x));
  const poly = v.horner(z, [-3.33332819422e-1, 1.33314422036e-1, -5.37397155531e-2, 2.06390887954e-2, -5.70498872745e-3]);
  const small = v.add(x, v.mul(v.mul(poly, z), x));
  const e = exp(v, v.add(a, a));
  const large = v.withSign(v.sub(v.f32(1), v.div(v.f32(2), v.add(e, v.f32(1)))), x);
  // −0 keeps its sign (x + x·z·P comes out as +0).
  return v.select(v.select(x, small, v.op(SimdOp.f32x4Eq, x, v.f32(0))), large, v.op(SimdOp.f32x4Lt, a, v.f32(0.625)));
}

/** 1/(1 + e^−x) for x >= 0 and e^x/(1 + e^x) below, with one exp of −|x| (never overflows). */
function sigmoid(v: VectorCode, x: number): Expr {
  const e = v.let(exp(v, v.op(SimdOp.f32x4Neg, v.op(SimdOp.f32x4Abs, x))));
  const numerator = v.select(v.f32(1), e, v.op(SimdOp.f32x4Ge, x, v.f32(0)));
  return v.div(numerator, v.add(v.f32(1), e));
}

const ERF_SMALL = [
  0.12837916612625122, -0.3761262595653534, 0.1128358542919159, -0.026853814721107483,
  0.00518833240494132, -0.000801023212261498, 7.853978604543954e-05,
];
const ERFC_MID = [
  0.013328330591320992, -0.052774980664253235, 0.09235606342554092, -0.09015781432390213,
  0.04810554161667824, -0.006619070656597614, -0.008986417204141617, 0.006038205698132515,
  -0.0006548466626554728, -0.0008634529076516628, 0.00032879391801543534,
];
const ERFC_HIGH = [
  4.3026589082728606e-06, -2.911526280513499e-05, 9.487289935350418e-05, -0.00019759660062845796,
  0.00028648838633671403, -0.0003020367003045976, 0.0002636553253978491, -0.00019919993064831942,
  8.234060078393668e-05,
];

/**
 * The pieces of erf on a = |z| clamped to 4: erf(a) = a + a·P(a²) below 1 (`small`), and
 * erfc(a) = 1 − erf(a) from two polynomials on [1, 2.5) and [2.5, 4] (`tail`), so that callers
 * needing 1 − erf form it without cancellation.
 */
function erfPieces(v: VectorCode, z: Operand): { a: number; small: number; tail: number; below1: number } {
  const a = v.let(v.op(SimdOp.f32x4Pmin, v.op(SimdOp.f32x4Abs, z), v.f32(4))); // NaN passes (see clamp)
  const small = v.let(v.add(a, v.mul(a, v.horner(v.mul(a, a), ERF_SMALL))));
  const tMid = v.let(v.sub(a, v.f32(1.75)));
  const tHigh = v.let(v.sub(a, v.f32(3.25)));
  const tail = v.let(v.select(v.horner(tMid, ERFC_MID), v.horner(tHigh, ERFC_HIGH), v.op(SimdOp.f32x4Lt, a, v.f32(2.5))));
  const below1 = v.let(v.op(SimdOp.f32x4Lt, a, v.f32(1)));
  return { a, small, tail, below1 };
}

/** erf with the sign of x (erf(a) = 1 beyond a = 3.92 in float32). */
function erf(v: VectorCode, x: number): Expr {
  const { small, tail, below1 } = erfPieces(v, x);
  return v.withSign(v.select(small, v.sub(v.f32(1), tail), below1), x);
}

/**
 * Φ(−a) = e^(−a²/2)·R(s) for a = |x|, s = p·a/(1 + p·a): R is the scaled Mills ratio
 * Φ(−a)·e^(a²/2), smooth from R(0) = 0.5 (exact, so Φ(0) = 0.5) to ~1/(a·√(2π)), a degree-8
 * polynomial in s within 1.2e-8 relatively up to a = 6 (Φ(−6) ≈ 1e-9), 1.2e-6 beyond (fitted by
 * test/backend/wasm/fixtures/fit_gelu.py). One formula over the whole range, no branches, and the
 * left tail keeps its relative accuracy (1 − erf had only absolute accuracy there).
 */
const GELU_S_SCALE = 0.2874999940395355;
const GELU_MILLS = [
  0.5, -1.387626051902771, 1.63698148727417, -0.9349578022956848, 0.05030366778373718,
  0.1686476171016693, 0.047932446002960205, -0.12265026569366455, 0.041417911648750305,
];
/** e^r on |r| <= ln2/2 (degree 6, relative error 3e-9; fit_gelu.py). */
const GELU_EXP = [1, 1, 0.4999999403953552, 0.1666652262210846, 0.04166829213500023, 0.008368532173335552, 0.0013818296138197184];
/**
 * a is clamped here: −a²/2·log2(e) then rounds to −127, for which the exponent bits below are 0,
 * so e^(−a²/2) and Φ(−a) are exactly 0 from here on (Φ(−13.27) ≈ 1e-40 is below float32's
 * normal range anyway): gelu(x) = x and 0·x saturate, ±inf give what x·Φ(x) gives.
 */
const NORMAL_TAIL_END = 13.27;
/** 1.5·2^23 + 127: k = h·log2(e) + this rounds h·log2(e) to an integer n and holds n + 127 in its low bits (see ROUNDING_SHIFT). */
const EXP2_SHIFT = ROUNDING_SHIFT + 127;
const INV_SQRT_2PI = 0.3989422804014327;

/** |x| as an AND with 0x7fffffff from the constant pool (V8 builds f32x4.abs's mask at each use). */
function abs(v: VectorCode, x: Operand): Expr {
  return v.op(SimdOp.v128And, x, v.i32(0x7fffffff));
}

/** Lanes of `negative` where x's sign bit is set (−0 and NaNs with it included), of `positive` elsewhere. */
function bySign(v: VectorCode, x: Operand, negative: Operand, positive: Operand): Expr {
  const mask = v.shift(SimdOp.i32x4ShrS, x, 31);
  // The mask's lanes are all ones or all zeros, so relaxed_laneselect (one blendvps) is exact.
  return relaxedSimdSupported() ? v.op(SimdOp.i32x4RelaxedLaneselect, negative, positive, mask) : v.select(negative, positive, mask);
}

/** |x|, e^(−a²/2) and R(s) (see GELU_MILLS) for gelu and geluGrad; a = min(|x|, NORMAL_TAIL_END). */
function normalTail(v: VectorCode, x: number): { ax: number; density: number; mills: number } {
  const ax = v.let(abs(v, x));
  const a = v.let(v.op(SimdOp.f32x4Pmin, ax, v.f32(NORMAL_TAIL_END))); // NaN passes (see clamp)
  const u = v.let(v.mul(a, v.f32(GELU_S_SCALE)));
  const s = v.let(v.div(u, v.add(u, v.f32(1))));
  // e^h, h = −a²/2 = n·ln2 + r (Cody–Waite, as reduceByLn2), n + 127 from k's bits straight into 2^n's exponent.
  const h = v.let(v.mul(a, v.mul(a, v.f32(-0.5))));
  const k = v.let(v.madd(h, v.f32(LOG2E), v.f32(EXP2_SHIFT)));
  const n = v.let(v.sub(k, v.f32(EXP2_SHIFT)));
  const r = v.let(v.madd(n, v.f32(-LN2_LO), v.madd(n, v.f32(-LN2_HI), h)));
  const density = v.let(v.mul(v.horner(r, GELU_EXP), v.shift(SimdOp.i32x4Shl, k, 23)));
  const mills = v.let(v.horner(s, GELU_MILLS));
  return { ax, density, mills };
}

/** GELU x·Φ(x), Φ(x) = Φ(−|x|) for x < 0 and 1 − Φ(−|x|) otherwise. */
function gelu(v: VectorCode, x: number): Expr {
  const { density, mills } = normalTail(v, x);
  const q = v.let(v.mul(density, mills));
  return v.mul(x, bySign(v, x, q, v.sub(v.f32(1), q)));
}

/**
 * GELU's derivative Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π): with w = e^(−a²/2)·(R − a/√(2π)) it
 * is w for x < 0 and 1 − w otherwise, sharing the exponential between Φ and φ. |x| unclamped in
 * w makes ±inf give NaN (inf·0), as x·φ(x) does.
 */
function geluGrad(v: VectorCode, x: number): Expr {
  const { ax, density, mills } = normalTail(v, x);
  const w = v.let(v.mul(density, v.madd(ax, v.f32(-INV_SQRT_2PI), mills)));
  return bySign(v, x, w, v.sub(v.f32(1), w));
}

function emitOp(v: VectorCode, op: TranscendentalOp, x: number): Expr {
  switch (op) {
    case 'exp': return exp(v, x);
    case 'expm1': return expm1(v, x);
    case 'log': return log(v, x);
    case 'log1p': return log1p(v, x);
    case 'tanh': return tanh(v, x);
    case 'sigmoid': return sigmoid(v, x);
    case 'erf': return erf(v, x);
    case 'gelu': return gelu(v, x);
    case 'geluGrad': return geluGrad(v, x);
    case 'rsqrt': return v.div(v.f32(1), v.op(SimdOp.f32x4Sqrt, x));
  }
}

/**
 * Emits `op` on the f32x4 on top of the stack, leaving the f32x4 result; constants come from
 * `pool` (see ConstantPool.hoist) when given.
 */
export function emitTranscendentalVector(f: FunctionBuilder, op: TranscendentalOp, pool?: ConstantPool): void {
  const v = new VectorCode(f, pool);
  const x = f.local(v128);
  f.localSet(x);
  v.push(emitOp(v, op, x));
}

/**
 * `op` on `width` f32x4 values side by side, their chains interleaved: the inputs in the
 * consecutive v128 locals from `x`, the results in the consecutive locals from the one returned.
 * Each result is what emitTranscendentalVector gives for that input (the same operations).
 */
export function emitTranscendentalVectors(f: FunctionBuilder, op: TranscendentalOp, x: number, width: number, pool?: ConstantPool): number {
  const v = new VectorCode(f, pool, width);
  return v.let(emitOp(v, op, x));
}

/** The same on one f32 (splat, vector code, lane 0), so tails and strided rows give the same results. */
export function emitTranscendentalScalar(f: FunctionBuilder, op: TranscendentalOp, pool?: ConstantPool): void {
  f.simd(SimdOp.f32x4Splat);
  emitTranscendentalVector(f, op, pool);
  f.simdLane(SimdLaneOp.f32x4ExtractLane, 0);
}
