// Which optional WebAssembly SIMD features this runtime compiles, found by validating tiny modules
// (no instantiation, no user-agent sniffing), cached per process.
//
// Relaxed SIMD gives `f32x4.relaxed_madd`, which V8 lowers to one vfmadd on x64 CPUs with FMA3
// (and to mul + add elsewhere). Node 20's V8 has it behind `--experimental-wasm-relaxed-simd`;
// V8 flags are process-wide, so turning it on here, before any module using it is compiled,
// also covers the worker threads (they compile their modules later, from the same bytes). Newer
// runtimes (Chrome ≥ 114, Node ≥ 22) have it on by default and the flag is not touched.
// TESSERA_WASM_RELAXED_SIMD=0 in the environment keeps it off (then kernels use mul + add).

import { ModuleBuilder, ValType, SimdOp } from './encoder.js';

/** Environment variable that, set to 0, disables relaxed SIMD (FMA) in generated kernels. */
export const RELAXED_SIMD_ENV = 'TESSERA_WASM_RELAXED_SIMD';

let relaxedSimd: boolean | undefined;

/** A module whose only function uses f32x4.relaxed_madd. */
function relaxedMaddProbe(): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder();
  const { v128 } = ValType;
  const f = m.function({ params: [v128, v128, v128], results: [v128] }, 'madd');
  f.localGet(0).localGet(1).localGet(2).simd(SimdOp.f32x4RelaxedMadd);
  return m.encode();
}

function validates(bytes: Uint8Array<ArrayBuffer>): boolean {
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

interface NodeProcess {
  readonly versions?: { readonly node?: string };
  readonly env?: Record<string, string | undefined>;
  getBuiltinModule?(id: 'node:v8'): { setFlagsFromString(flags: string): void };
}

/**
 * True when generated kernels may use relaxed SIMD (f32x4.relaxed_madd). In Node, enables V8's
 * relaxed-SIMD flag when the runtime has it but off by default. Cached after the first call.
 */
export function relaxedSimdSupported(): boolean {
  if (relaxedSimd !== undefined) return relaxedSimd;
  const proc = (globalThis as { process?: NodeProcess }).process;
  if (proc?.env?.[RELAXED_SIMD_ENV] === '0') return (relaxedSimd = false);
  const probe = relaxedMaddProbe();
  relaxedSimd = validates(probe);
  if (!relaxedSimd && proc?.versions?.node !== undefined && typeof proc.getBuiltinModule === 'function') {
    try {
      proc.getBuiltinModule('node:v8').setFlagsFromString('--experimental-wasm-relaxed-simd');
      relaxedSimd = validates(probe);
    } catch {
      relaxedSimd = false;
    }
  }
  return relaxedSimd;
}
