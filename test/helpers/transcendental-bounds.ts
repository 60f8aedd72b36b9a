// The wasm backend's float32 transcendentals (src/backend/wasm/transcendental-kernel.ts), their
// float64 references and their error bounds in ulps, stated once for every test that checks them
// (test/backend/wasm/transcendental.test.ts sweeps them; the compiler's fused kernels reuse them).
import { erf, sigmoid } from '../../src/backend/cpu/math.js';

export const REFERENCES = {
  exp: Math.exp, expm1: Math.expm1, log: Math.log, log1p: Math.log1p, tanh: Math.tanh,
  sigmoid, erf, rsqrt: (x: number) => 1 / Math.sqrt(x),
} as const;
export type Transcendental = keyof typeof REFERENCES;

/** Largest errors measured by the sweep (sigmoid's e/(1+e) rounds three times), with a little room. */
export const MAX_ULP: Record<Transcendental, number> = { exp: 1.5, expm1: 1.5, log: 1, log1p: 1.5, tanh: 1.5, sigmoid: 2.5, erf: 1.5, rsqrt: 1.5 };

/** The spacing of float32 values at |r| (denormal spacing below 2^-126). */
export function ulp32(r: number): number {
  const a = Math.abs(r);
  const e = a === 0 ? -126 : Math.max(Math.floor(Math.log2(a)), -126);
  return 2 ** (e - 23);
}
