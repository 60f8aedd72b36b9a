// Does a change to the SGEMM's config make the benchmark's training steps faster? Runs each
// step (MLP, CNN, GPT; eager and t.jit) with the wasm backend's matmul config and with the
// config changed by --versus, alternating step by step in one process, and prints the median of
// the per-pair time ratios: on a VM whose speed moves from one second to the next, only paired
// runs compare two variants fairly (bench/matmul.ts --versus does the same for single products).
//   TESSERA_THREADS=2 node --import tsx bench/step-versus.ts --versus='{"shareB":true}' \
//     [--config='{...}'] [--workloads=mlp,cnn,gpt] [--modes=eager,jit] [--pairs=30] [--out=FILE]
// Ratio > 1: the --versus config is faster.

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
  if (!['versus', 'config', 'workloads', 'modes', 'pairs', 'out'].includes(key)) {
    throw new Error(`step-versus: unknown option --${key}; options are --versus, --config, --workloads, --modes, --pairs, --out`);
  }
}
if (!args.has('versus')) throw new Error('step-versus: --versus=\'{"field": value}\' (the config change to compare) is required');

t.setBackend('wasm');
const base: MatmulConfig = { ...defaultMatmulConfig(), ...JSON.parse(args.get('config') ?? '{}') };
const other: MatmulConfig = { ...base, ...JSON.parse(args.get('versus')!) };
const builders = { mlp: tesseraMlpStep, cnn: tesseraCnnStep, gpt: tesseraGptStep } as const;
const workloads = (args.get('workloads') ?? 'mlp,cnn,gpt').split(',') as (keyof typeof builders)[];
const modes = (args.get('modes') ?? 'eager,jit').split(',');
const pairs = Number(args.get('pairs') ?? 30);
const median = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1]!;

const idleBefore = await checkIdle(2);
console.log(`idle check before: ${idleBefore.verdict}; threads ${wasmBackend.pool.threads}`);
console.log(`${matmulConfigKey(base)} versus ${matmulConfigKey(other)} (ratio > 1: the second is faster)`);
const rows: Array<Record<string, unknown>> = [];
for (const workload of workloads) {
  for (const mode of modes) {
    const step: TesseraStep = builders[workload](defaultSpec(false), { jit: mode === 'jit' });
    const timed = (config: MatmulConfig): number => {
      wasmBackend.matmul.config = config;
      const start = performance.now();
      step();
      return performance.now() - start;
    };
    // Warm-up: V8 tiers both variants' code up (and jit compiles) before anything is timed.
    const warmStart = performance.now();
    for (let i = 0; i < 3 || performance.now() - warmStart < 3000; i++) { timed(base); timed(other); }
    const baseMs: number[] = [], otherMs: number[] = [], ratios: number[] = [];
    for (let i = 0; i < pairs; i++) {
      // Alternate which goes first, so neither always runs right after the other's allocations.
      const [x, y] = i % 2 === 0 ? [timed(base), timed(other)] : ((o, b) => [b, o])(timed(other), timed(base));
      baseMs.push(x); otherMs.push(y); ratios.push(x / y);
    }
    const row = { workload, mode, pairs, baseMedianMs: median(baseMs), otherMedianMs: median(otherMs), speedup: median(ratios) };
    rows.push(row);
    console.log(`${workload.padEnd(4)} ${mode.padEnd(6)} ${row.baseMedianMs.toFixed(1).padStart(7)} vs ${row.otherMedianMs.toFixed(1).padStart(7)} ms  median ratio ${row.speedup.toFixed(3)} (${pairs} pairs)`);
  }
}
wasmBackend.matmul.config = base;
const idleAfter = await checkIdle(2);
console.log(`idle check after: ${idleAfter.verdict}`);
if (args.has('out')) {
  writeFileSync(args.get('out')!, `${JSON.stringify({
    date: new Date().toISOString(), command: `node --import tsx bench/step-versus.ts ${process.argv.slice(2).join(' ')}`,
    threads: wasmBackend.pool.threads, base: matmulConfigKey(base), other: matmulConfigKey(other), idleBefore, idleAfter, rows,
  }, null, 2)}\n`);
}
process.exit(0);
