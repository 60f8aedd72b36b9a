// Chooses the backend new tensors start on (issue 6: "default wasm"). Importing this module
// registers the wasm backend next to the cpu reference and selects it when the platform runs
// WebAssembly SIMD; without SIMD (an old engine, a page whose policy forbids compiling wasm)
// tessera stays on 'cpu' without an error, since every result is also available there.
//
// TESSERA_BACKEND (Node only) overrides the choice, e.g. TESSERA_BACKEND=cpu to run a program on
// the reference backend without changing it. setBackend() still switches at any time.
//
// Browser-safe: the wasm backend reaches Node's worker_threads only through
// process.getBuiltinModule at run time (node-workers.ts), so in a page it loads with one thread;
// a cross-origin-isolated page can hand it a Web Worker spawner through wasmBackend.setThreads.

import './cpu/backend.js';
import './wasm/backend.js';
import { listBackends, setBackend } from './backend.js';

/** The environment variable that picks the default backend in Node ('wasm' or 'cpu'). */
export const BACKEND_ENV = 'TESSERA_BACKEND';

// The smallest module that uses a SIMD instruction: (func (result v128) v128.const i32x4 0 0 0 0).
// Engines without SIMD reject it; the backend's generated kernels all need SIMD.
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, // code: v128.const
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0x0b, // end
]);

/** Whether this JavaScript engine compiles WebAssembly with 128-bit SIMD. */
export function wasmSimdSupported(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The backend tessera starts on: TESSERA_BACKEND if set (Node), else 'wasm' with SIMD, else 'cpu'. */
export function defaultBackendName(): string {
  const proc = (globalThis as { process?: { versions?: { node?: string }; env?: Record<string, string | undefined> } }).process;
  const fromEnv = proc?.versions?.node !== undefined ? proc.env?.[BACKEND_ENV]?.trim() : undefined;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!listBackends().includes(fromEnv)) {
      throw new Error(`${BACKEND_ENV}=${JSON.stringify(fromEnv)} names no registered backend (registered: ${listBackends().join(', ')}); unset it or use one of those.`);
    }
    if (fromEnv === 'wasm' && !wasmSimdSupported()) {
      throw new Error(`${BACKEND_ENV}=wasm, but this engine cannot compile WebAssembly SIMD; use ${BACKEND_ENV}=cpu.`);
    }
    return fromEnv;
  }
  return wasmSimdSupported() ? 'wasm' : 'cpu';
}

setBackend(defaultBackendName());
