// Does a change to the SGEMM's config, or to the size from which optimizer updates are split over
// the threads, make the benchmark's training steps faster? Runs each step (MLP, CNN, GPT; eager
// and t.jit) with the wasm backend's settings and with the settings changed by --versus (matmul
// config fields) and --versus-optimizer-split (elements; Infinity: never split), alternating step
// by step in one process, and prints the median of the per-pair time ratios: on a VM whose speed
// moves from one second to the next, only paired runs compare two variants fairly
// (bench/matmul.ts --versus does the same for single products).
//   TESSERA_THREADS=2 node --import tsx bench/step-versus.ts --versus='{"shareB":true}' \
//     [--config='{...}'] [--optimizer-split=N] [--versus-optimizer-split=N]
//     [--workloads=mlp,cnn,gpt] [--modes=eager,jit] [--pairs=30] [--out=FILE]
// Ratio > 1: the second variant is faster.

import { writeFileSync } from 'node:fs';
import * as t from '../src/index.js';
import { wasmBackend } from '../src/backend/wasm/backend.js';
import { defaultMatmulConfig, matmulConfigKey, type MatmulConfig } from '../src/backend/wasm/matmul-config.js';
import { defaultSpec } from './spec.js';
import { tesseraCnnStep, tesseraGptStep, tesseraMlpStep, type TesseraStep } from './workloads/tessera-models.js';
import { checkIdle } from './idle-check.js';

const args = new Map(process.argv.slice(2).map((a) => {
  const [key, ...value] = a.replace(/^--/, '').split('=');
  return [key!, value.join('=') || 'true'] as const;
}));
for (const key of args.keys()) {
  if (!['versus', 'config', 'optimizer-split', 'versus-optimizer-split', 'workloads', 'modes', 'pairs', 'out'].includes(key)) {
    throw new Error(`step-versus: unknown option --${key}; options are --versus, --config, --optimizer-split, --versus-optimizer-split, --workloads, --modes, --pairs, --out`);
  }
}
if (!args.has('versus') && !args.has('versus-optimizer-split')) {
  throw new Error('step-versus: give the change to compare: --versus=\'{"field": value}\' (matmul config) and/or --versus-optimizer-split=N');
}
function splitOption(key: string, fallback: number): number {
  const text = args.get(key);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!(n >= 0)) throw new Error(`step-versus: --${key} must be a number of elements ≥ 0 or Infinity, got '${text}'`);
  return n;
}

t.setBackend('wasm');
const base: MatmulConfig = { ...defaultMatmulConfig(), ...JSON.parse(args.get('config') ?? '{}') };
const other: MatmulConfig = { ...base, ...JSON.parse(args.get('versus') ?? '{}') };
const baseSplit = splitOption('optimizer-split', wasmBackend.optimizerKernels.parallelMinElements);
const otherSplit = splitOption('versus-optimizer-split', baseSplit);
interface Variant { config: MatmulConfig; split: number }
const first: Variant = { config: base, split: baseSplit };
const second: Variant = { config: other, split: otherSplit };
const describe = (v: Variant): string => `${matmulConfigKey(v.config)}, optimizer split from ${v.split} elements`;
const builders = { mlp: tesseraMlpStep, cnn: tesseraCnnStep, gpt: tesseraGptStep } as const;
const workloads = (args.get('workloads') ?? 'mlp,cnn,gpt').split(',') as (keyof typeof builders)[];
const modes = (args.get('modes') ?? 'eager,jit').split(',');
const pairs = Number(args.get('pairs') ?? 30);
const median = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1]!;

const idleBefore = await checkIdle(2);
console.log(`idle check before: ${idleBefore.verdict}; threads ${wasmBackend.pool.threads}`);
console.log(`${describe(first)} versus ${describe(second)} (ratio > 1: the second is faster)`);
const rows: Array<Record<string, unknown>> = [];
for (const workload of workloads) {
  for (const mode of modes) {
    const step: TesseraStep = builders[workload](defaultSpec(false), { jit: mode === 'jit' });
    const timed = (variant: Variant): number => {
      wasmBackend.matmul.config = variant.config;
      wasmBackend.optimizerKernels.parallelMinElements = variant.split;
      const start = performance.now();
      step();
      return performance.now() - start;
    };
    // Warm-up: V8 tiers both variants' code up (and jit compiles) before anything is timed.
    const warmStart = performance.now();
    for (let i = 0; i < 3 || performance.now() - warmStart < 3000; i++) { timed(first); timed(second); }
    const baseMs: number[] = [], otherMs: number[] = [], ratios: number[] = [];
    for (let i = 0; i < pairs; i++) {
      // Alternate which goes first, so neither always runs right after the other's allocations.
      const [x, y] = i % 2 === 0 ? [timed(first), timed(second)] : ((o, b) => [b, o])(timed(second), timed(first));
      baseMs.push(x); otherMs.push(y); ratios.push(x / y);
    }
    const row = { workload, mode, pairs, baseMedianMs: median(baseMs), otherMedianMs: median(otherMs), speedup: median(ratios) };
    rows.push(row);
    console.log(`${workload.padEnd(4)} ${mode.padEnd(6)} ${row.baseMedianMs.toFixed(1).padStart(7)} vs ${row.otherMedianMs.toFixed(1).padStart(7)} ms  median ratio ${row.speedup.toFixed(3)} (${pairs} pairs)`);
  }
}
wasmBackend.matmul.config = base;
wasmBackend.optimizerKernels.parallelMinElements = baseSplit;
const idleAfter = await checkIdle(2);
console.log(`idle check after: ${idleAfter.verdict}`);
if (args.has('out')) {
  writeFileSync(args.get('out')!, `${JSON.stringify({
    date: new Date().toISOString(), command: `node --import tsx bench/step-versus.ts ${process.argv.slice(2).join(' ')}`,
    threads: wasmBackend.pool.threads, base: describe(first), other: describe(second), idleBefore, idleAfter, rows,
  }, null, 2)}\n`);
}
process.exit(0);
