// Weight-only quantized Linear versus float32 Linear on the wasm backend: forward time at batch 1
// and 64, and the weight bytes streamed per second (weight bytes / time; at batch 1 the float GEMV
// is bound by this stream, which is where int8 and int4 weights win).
//   npm run bench:quant                   (TESSERA_THREADS sets the threads; default one per core)
//   node --import tsx bench/quant.ts --quick --shapes=784x512,4096x4096 --batches=1,64
// The variants run in alternation, one sample each per round, so that a slow second of a shared
// machine hits them alike; medians over the rounds. Writes bench/results/quant.json and quant.md.
//
// Expected before optimizing (2-core VM, ~8 GB/s of memory bandwidth): 4096×4096 at batch 1, float
// streams 64 MiB (~8 ms); int8 16 MiB and int4 8 MiB, but decoding costs ~1 op per weight, so
// ~3 ms for both (2-3x). At batch 64 the product is compute bound (~2 GFLOP at ~50 GFLOP/s = 40 ms)
// and decoding panels adds ~5%, so quantized ≈ float there. 784×512 and 512×512 fit in cache:
// little to win at batch 1.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as t from '../src/index.js';
import { nn, quant } from '../src/index.js';
import { wasmBackend } from '../src/backend/wasm/backend.js';
import { relaxedSimdSupported } from '../src/backend/wasm/simd-features.js';
import { machineDescription } from './idle-check.js';

const args = new Map(process.argv.slice(2).map((a) => {
  const [key, value] = a.replace(/^--/, '').split('=');
  return [key!, value ?? 'true'] as const;
}));
const quick = args.has('quick');
const shapes = (args.get('shapes') ?? '784x512,512x512,4096x4096').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const batches = (args.get('batches') ?? '1,64,256').split(',').map(Number);
const only = args.get('variants')?.split(',');
const rounds = Number(args.get('rounds') ?? (quick ? 5 : 15));

t.setBackend('wasm');
wasmBackend.pool.waitUntilReady();
t.manualSeed(0);

interface Row {
  inFeatures: number; outFeatures: number; batch: number; variant: string;
  weightBytes: number; ms: number; weightGBps: number; speedup: number; maxAbsDiffVsFloat: number;
  /** 2·batch·in·out / time: GFLOP/s for float, GOP/s (multiply-adds counted as 2) for the integer kernel. */
  gops: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Calls per sample so that one sample lasts ≥ ~20 ms. */
function repsFor(fn: () => void): number {
  const t0 = performance.now();
  fn();
  const once = Math.max(performance.now() - t0, 1e-3);
  return Math.max(1, Math.min(200, Math.ceil(20 / once)));
}

const rows: Row[] = [];
for (const [k, n] of shapes) {
  const linear = new nn.Linear(k, n);
  linear.eval();
  const variants: Array<{ name: string; layer: nn.Module; bytes: number }> = [
    { name: 'float32', layer: linear, bytes: (k * n + n) * 4 },
  ];
  for (const [name, opts] of [
    ['int8 per-channel', { bits: 8 }],
    ['int4 group-32', { bits: 4, scheme: 'group', groupSize: 32 }],
    ['int4 group-128', { bits: 4, scheme: 'group', groupSize: 128 }],
    ['dynamic-int8', { bits: 8, activations: 'dynamic-int8' }],
  ] as const) {
    if (only !== undefined && !only.includes(name)) continue;
    const q = quant.QuantizedLinear.fromLinear(linear, opts as quant.LinearQuantizeOptions);
    variants.push({ name, layer: q, bytes: q.nbytes });
  }
  for (const batch of batches) {
    const x = t.randn([batch, k]);
    const reference = t.noGrad(() => linear.call(x)).data();
    const fns = variants.map((v) => () => t.scope(() => { t.noGrad(() => (v.layer as nn.Module).call(x)); }));
    const diffs = variants.map((v) => {
      const y = t.noGrad(() => v.layer.call(x)).data();
      let d = 0;
      for (let i = 0; i < y.length; i++) d = Math.max(d, Math.abs(y[i]! - reference[i]!));
      return d;
    });
    const reps = fns.map(repsFor);
    const samples = variants.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      fns.forEach((fn, i) => {
        const t0 = performance.now();
        for (let j = 0; j < reps[i]!; j++) fn();
        samples[i]!.push((performance.now() - t0) / reps[i]!);
      });
    }
    const floatMs = median(samples[0]!);
    variants.forEach((v, i) => {
      const ms = median(samples[i]!);
      rows.push({ inFeatures: k, outFeatures: n, batch, variant: v.name, weightBytes: v.bytes, ms, weightGBps: v.bytes / (ms * 1e6), speedup: floatMs / ms, maxAbsDiffVsFloat: diffs[i]!, gops: (2 * batch * k * n) / (ms * 1e6) });
    });
    x.dispose();
    console.log(rows.slice(-variants.length).map((r) => `${k}x${n} b${batch} ${r.variant}: ${r.ms.toFixed(3)} ms, ${r.weightGBps.toFixed(2)} GB/s, ${r.gops.toFixed(1)} G(FL)OP/s, ${r.speedup.toFixed(2)}x`).join('\n'));
  }
}

const meta = {
  date: new Date().toISOString(), machine: machineDescription(), threads: wasmBackend.pool.threads,
  relaxedSimd: relaxedSimdSupported(), rounds, command: `node --import tsx bench/quant.ts ${process.argv.slice(2).join(' ')}`.trim(),
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/quant.json', JSON.stringify({ ...meta, rows }, null, 2) + '\n');
const md = [
  `# Quantized Linear forward (wasm backend)`, '',
  `${meta.date}; ${meta.machine.cpu} (${meta.machine.cores} cores), Node ${meta.machine.node}; ${meta.threads} thread(s); relaxed SIMD ${meta.relaxedSimd ? 'on' : 'off'}; median of ${rounds} alternated rounds.`,
  `Command: \`${meta.command}\`. Weight GB/s = bytes of weight (codes + scales + bias) / time; G(FL)OP/s = 2 · batch · in · out / time (dynamic-int8: int8 multiply-adds).`, '',
  '| in × out | batch | variant | weight bytes | ms | weight GB/s | G(FL)OP/s | speed-up vs float32 | max abs diff vs float32 |',
  '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.inFeatures} × ${r.outFeatures} | ${r.batch} | ${r.variant} | ${r.weightBytes.toLocaleString('en-US')} | ${r.ms.toFixed(3)} | ${r.weightGBps.toFixed(2)} | ${r.gops.toFixed(1)} | ${r.speedup.toFixed(2)}x | ${r.maxAbsDiffVsFloat.toExponential(1)} |`),
  '',
].join('\n');
writeFileSync('bench/results/quant.md', md);
console.log(`wrote bench/results/quant.json and bench/results/quant.md`);
