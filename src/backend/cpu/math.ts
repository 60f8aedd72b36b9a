// Scalar math that JavaScript lacks, accurate to float64 (the reference backend checks gradients
// with finite differences in float64, so approximations of ~1e-7 would not do).

const TWO_OVER_SQRT_PI = 1.1283791670955126;

/**
 * The error function, accurate to about 1e-15 everywhere, as fixed-degree polynomials: the
 * Maclaurin series (19 terms) for |x| <= 1, Taylor expansions about the centres 1.25, 1.75, …,
 * 5.75 (|x - c| <= 1/4, 24 terms, coefficients from erf's derivatives, the Hermite polynomials)
 * for 1 < |x| < 6, and ±1 beyond (erfc(6) ≈ 2e-17 is below half an ulp of 1).
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax <= 1) {
    const x2 = x * x;
    let sum = MACLAURIN[MACLAURIN_TERMS - 1]!;
    for (let i = MACLAURIN_TERMS - 2; i >= 0; i--) sum = sum * x2 + MACLAURIN[i]!;
    return x * sum;
  }
  if (!(ax < 6)) return Number.isNaN(x) ? NaN : x < 0 ? -1 : 1;
  const j = Math.floor((ax - 1) * 2);
  const dx = ax - (1.25 + 0.5 * j);
  const base = j * TAYLOR_TERMS;
  let sum = TAYLOR[base + TAYLOR_TERMS - 1]!;
  for (let i = TAYLOR_TERMS - 2; i >= 0; i--) sum = sum * dx + TAYLOR[base + i]!;
  return x < 0 ? -sum : sum;
}

const MACLAURIN_TERMS = 19;
/** 2/sqrt(pi) (-1)^n / (n! (2n+1)): erf(x) = x Σ c_n x^(2n); the first omitted term is < 1e-17 at |x| = 1. */
const MACLAURIN = (() => {
  const c = new Float64Array(MACLAURIN_TERMS);
  let factorial = 1;
  for (let n = 0; n < MACLAURIN_TERMS; n++) {
    if (n > 0) factorial *= n;
    c[n] = (n % 2 === 0 ? TWO_OVER_SQRT_PI : -TWO_OVER_SQRT_PI) / (factorial * (2 * n + 1));
  }
  return c;
})();

const TAYLOR_TERMS = 24;
const TAYLOR_CENTRES = 10; // 1.25, 1.75, …, 5.75
/**
 * Taylor coefficients of erf about each centre c: a_0 = erf(c), and for k >= 1
 * a_k = erf^(k)(c) / k! = 2/sqrt(pi) e^(-c²) (-1)^(k-1) H_(k-1)(c) / k! (physicists' Hermite).
 */
const TAYLOR = (() => {
  const a = new Float64Array(TAYLOR_CENTRES * TAYLOR_TERMS);
  for (let j = 0; j < TAYLOR_CENTRES; j++) {
    const c = 1.25 + 0.5 * j;
    const scale = TWO_OVER_SQRT_PI * Math.exp(-c * c);
    // The series loses digits to cancellation beyond ~2; there erfc's continued fraction is accurate.
    a[j * TAYLOR_TERMS] = c < 2 ? erfBySeries(c) : 1 - erfcLarge(c);
    let hPrev = 0, h = 1; // H_(-1) (unused), H_0
    let factorial = 1;
    for (let k = 1; k < TAYLOR_TERMS; k++) {
      factorial *= k;
      const n = k - 1; // this term uses H_n
      if (n === 1) { hPrev = 1; h = 2 * c; } else if (n > 1) { const next = 2 * c * h - 2 * (n - 1) * hPrev; hPrev = h; h = next; }
      a[j * TAYLOR_TERMS + k] = (n % 2 === 0 ? scale : -scale) * h / factorial;
    }
  }
  return a;
})();

/**
 * erf by its Maclaurin series (|x| < 2.5) and erfc's continued fraction: accurate to about 1e-16
 * but slow (up to ~50 iterations); builds erf's Taylor tables and serves as the reference in tests.
 */
export function erfBySeries(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)).
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return TWO_OVER_SQRT_PI * sum;
  }
  const r = 1 - erfcLarge(ax);
  return x < 0 ? -r : r;
}

/** erfc for x >= 2.5 by the continued fraction erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))). */
function erfcLarge(x: number): number {
  if (x > 27) return 0;
  // Modified Lentz evaluation of K = x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))).
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (f * Math.sqrt(Math.PI));
}

/** Round half to even, as PyTorch and NumPy do (JS Math.round rounds half up). */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const r = Math.round(x);
  if (Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** x·Φ(x), Φ the standard normal CDF (GELU without the tanh approximation). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
}

/** d/dx x·Φ(x) = Φ(x) + x·φ(x). */
export function geluGrad(x: number): number {
  return 0.5 * (1 + erf(x * Math.SQRT1_2)) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI;
}

const INV_SQRT_2PI = 0.3989422804014327;

export function sigmoid(x: number): number {
  // Two branches so neither exp overflows.
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * x^y as C's pow and PyTorch compute it. JavaScript's `**` differs at three edges: 1^NaN and
 * (±1)^(±∞) are NaN in JavaScript and 1 in C (x^0 = 1 for every x, NaN included, agrees).
 */
export function powC(x: number, y: number): number {
  if (x === 1 || ((x === -1) && (y === Infinity || y === -Infinity))) return 1;
  return x ** y;
}
