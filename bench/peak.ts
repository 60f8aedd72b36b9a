// This machine's peak float32 throughput: cores × SIMD lanes × FMA units × 2 FLOPs per FMA × clock.
// Two widths: 128-bit (what WebAssembly SIMD can use, hence the ceiling of every JavaScript
// library here) and the CPU's native width (AVX2: 256, AVX-512: 512), PyTorch's ceiling.
// research/spikes.md measured ~56 GFLOP/s per core at 128-bit on this kind of machine.

import { readFileSync } from 'node:fs';

export interface Peak {
  clockGHz: number;
  /** Where clockGHz came from. */
  clockSource: string;
  fmaUnits: number;
  nativeBits: number;
  /** GFLOP/s of one core at 128-bit SIMD (f32x4). */
  perCore128: number;
  /** GFLOP/s of one core at the native SIMD width. */
  perCoreNative: number;
}

function cpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

/**
 * `spinGHz` is the idle check's estimate from a dependent multiply chain; it reads low when another
 * process takes the core, and /proc/cpuinfo's 'cpu MHz' is the base clock in a VM, so the larger
 * of the two is taken. Every current x86 core with FMA (Zen 2-5, Skylake and later) has 2 FMA units.
 */
export function machinePeak(spinGHz: number | undefined): Peak {
  const info = cpuinfo();
  const mhz = Number(/cpu MHz\s*:\s*([\d.]+)/.exec(info)?.[1] ?? NaN);
  const infoGHz = Number.isFinite(mhz) ? mhz / 1000 : undefined;
  let clockGHz = 3;
  let clockSource = 'assumed 3 GHz (no /proc/cpuinfo clock, no spin estimate)';
  if (infoGHz !== undefined && (spinGHz === undefined || infoGHz >= spinGHz)) {
    clockGHz = infoGHz;
    clockSource = `/proc/cpuinfo cpu MHz (${mhz}); spin-loop estimate ${spinGHz?.toFixed(2) ?? 'n/a'} GHz`;
  } else if (spinGHz !== undefined) {
    clockGHz = spinGHz;
    clockSource = `spin-loop estimate (3-cycle multiply latency); /proc/cpuinfo says ${infoGHz?.toFixed(2) ?? 'n/a'} GHz`;
  }
  const flags = /flags\s*:\s*(.*)/.exec(info)?.[1]?.split(' ') ?? [];
  const nativeBits = flags.includes('avx512f') ? 512 : flags.includes('avx2') ? 256 : 128;
  const fmaUnits = flags.includes('fma') ? 2 : 1;
  const flopsPerLaneCycle = 2 * fmaUnits;
  return {
    clockGHz, clockSource, fmaUnits, nativeBits,
    perCore128: 4 * flopsPerLaneCycle * clockGHz,
    perCoreNative: (nativeBits / 32) * flopsPerLaneCycle * clockGHz,
  };
}
