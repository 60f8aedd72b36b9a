// The fused attention primitives against the composite they replace (src/ops/nn/attention.ts,
// setFusedAttention), on the wasm backend, timed ALTERNATELY in one process: this VM's speed moves
// from second to second, so two separate runs compare two machine phases, not two variants. Each
// pair runs both variants back to back (which goes first alternates); the result is the median of
// the per-pair ratios composite / fused, next to each variant's median wall time.
//   1. attention alone, forward + backward, on the bench GPT's heads: q, k, v [16, 4, 64, 32]
//      (permuted views of one [16, 64, 384] projection, as nn.MultiheadAttention makes them), causal;
//   2. the bench GPT training step (bench/workloads tesseraGptStep: forward, backward, Adam),
//      eager, or with --jit each variant traced once with the flag set and replayed.
//   TESSERA_THREADS=2 node --import tsx bench/attention.ts [pairs] [--jit]
import { execSync } from 'node:child_process';
import * as t from '../src/index.js';
import { defaultSpec } from './spec.js';
import { tesseraGptStep, type TesseraStep } from './workloads/tessera-models.js';

t.setBackend('wasm');
const args = process.argv.slice(2);
const pairs = Number(args.find((a) => /^\d+$/.test(a)) ?? 30);
const jit = args.includes('--jit');

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Wall ms of `run` under each variant, alternated pair by pair; `select` switches the variant. */
function alternate(what: string, run: (fused: boolean) => void, n: number, warmup = 5): void {
  for (let i = 0; i < warmup; i++) { run(true); run(false); }
  const times: Record<'fused' | 'composite', number[]> = { fused: [], composite: [] };
  const ratios: number[] = [];
  for (let i = 0; i < n; i++) {
    const order = i % 2 === 0 ? [true, false] : [false, true];
    const pair: Partial<Record<'fused' | 'composite', number>> = {};
    for (const fused of order) {
      const t0 = performance.now();
      run(fused);
      pair[fused ? 'fused' : 'composite'] = performance.now() - t0;
    }
    times.fused.push(pair.fused!);
    times.composite.push(pair.composite!);
    ratios.push(pair.composite! / pair.fused!);
  }
  console.log(`${what}: fused median ${median(times.fused).toFixed(2)} ms, composite median ${median(times.composite).toFixed(2)} ms, ` +
    `median per-pair ratio composite/fused ${median(ratios).toFixed(3)} (${n} pairs; ratio quartiles ${quartiles(ratios)})`);
}

function quartiles(xs: readonly number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[Math.floor(s.length / 4)]!.toFixed(3)}..${s[Math.floor((3 * s.length) / 4)]!.toFixed(3)}`;
}

console.log(`threads ${(t.getBackend('wasm') as unknown as { pool: { threads: number } }).pool.threads}; load before: ${execSync('uptime').toString().trim()}`);

// 1. Attention alone.
{
  const g = new t.Generator(1);
  const [B, L, H, D] = [16, 64, 4, 32];
  const qkv = t.randn([B, L, 3 * H * D], { generator: g });
  const heads = t.permute(t.reshape(qkv, [B, L, 3, H, D]), [2, 0, 3, 1, 4]);
  const u = t.randn([B, H, L, D], { generator: g });
  const run = (fused: boolean) => {
    const previous = t.setFusedAttention(fused);
    t.scope(() => {
      const x = heads.detach().requiresGrad_();
      t.scaledDotProductAttention(x.at(0), x.at(1), x.at(2), { isCausal: true }).mul(u).sum().backward();
      x.grad!.data();
    });
    t.setFusedAttention(previous);
  };
  alternate(`attention [${B}, ${H}, ${L}, ${D}] causal, forward + backward`, run, pairs * 3);
}

// 2. The GPT training step.
{
  const spec = defaultSpec(false);
  let steps: Record<'fused' | 'composite', TesseraStep>;
  if (jit) {
    // Each variant is traced on its first call with the flag set, then replays its own graph.
    const make = (fused: boolean): TesseraStep => {
      const step = tesseraGptStep(spec, { jit: true });
      return () => {
        const previous = t.setFusedAttention(fused);
        try { return step(); } finally { t.setFusedAttention(previous); }
      };
    };
    steps = { fused: make(true), composite: make(false) };
  } else {
    const step = tesseraGptStep(spec);
    const flagged = (fused: boolean): TesseraStep => () => {
      const previous = t.setFusedAttention(fused);
      try { return step(); } finally { t.setFusedAttention(previous); }
    };
    steps = { fused: flagged(true), composite: flagged(false) };
  }
  const g = spec.gpt;
  alternate(`GPT step (batch ${g.batch}, context ${g.context}, d ${g.d}, ${g.heads} heads, ${g.layers} layers)${jit ? ' under t.jit' : ' eager'}`,
    (fused) => { steps[fused ? 'fused' : 'composite'](); }, pairs);
}
console.log(`load after: ${execSync('uptime').toString().trim()}`);
