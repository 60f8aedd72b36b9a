// The row-wise wasm kernels (softmax, layerNorm, float32 sum) split over the thread pool versus on
// the calling thread only (row-jobs.ts rowParallelMinElements = Infinity), in ONE process with the
// two variants alternating run by run (this VM's speed moves second to second, so separate runs
// cannot be compared): the median of per-pair ratios split/single, < 1 = the split is faster.
//   TESSERA_THREADS=2 node --import tsx bench/row-kernels.ts kernels    the GPT/CNN shapes
//   TESSERA_THREADS=2 node --import tsx bench/row-kernels.ts threshold  small sizes, threshold 0 vs Infinity
//   TESSERA_THREADS=2 node --import tsx bench/row-kernels.ts gpt [pairs] the bench GPT training step
//   TESSERA_THREADS=2 node --import tsx bench/row-kernels.ts cnn [pairs] the bench CNN training step
//   (gpt-jit, cnn-jit: the same steps compiled by t.jit, as the bench's tessera-jit rows)
// While other sessions load the machine, prefix bench/with-priority.sh: otherwise the two threads
// rarely run at once and the split measures slower than one thread.
import * as t from '../src/index.js';
import { bind } from '../src/ops/dispatch.js';
import { wasmBackend } from '../src/backend/wasm/backend.js';
import { rowParallelMinElements } from '../src/backend/wasm/row-jobs.js';
import { defaultSpec } from './spec.js';
import { tesseraCnnStep, tesseraGptStep } from './workloads/tessera-models.js';

t.setBackend('wasm');
wasmBackend.pool.waitUntilReady();
const defaults = { ...rowParallelMinElements };
type Variant = 'split' | 'single';

/** Sets the split thresholds: the defaults (or `split` for every family), or Infinity (never split). */
function use(variant: Variant, split: Partial<typeof defaults> = defaults): void {
  for (const k of Object.keys(defaults) as (keyof typeof defaults)[]) {
    rowParallelMinElements[k] = variant === 'single' ? Infinity : (split[k] ?? defaults[k]);
  }
}

/** Medians per variant and of the per-pair ratios; the best samples (the least disturbed by other processes). */
interface Comparison { split: number; single: number; ratio: number; bestSplit: number; bestSingle: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * Times `fn` (`reps` calls per sample) under both variants, alternating which goes first, for
 * `pairs` pairs: medians of each variant's ms per call and of the per-pair ratios split/single.
 */
function compare(fn: () => void, reps: number, pairs: number, split?: Partial<typeof defaults>): Comparison {
  const sample = (v: Variant) => {
    use(v, split);
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    return (performance.now() - t0) / reps;
  };
  for (const v of ['split', 'single'] as const) sample(v); // warm-up
  const times = { split: [] as number[], single: [] as number[] };
  const ratios: number[] = [];
  for (let p = 0; p < pairs; p++) {
    const order: Variant[] = p % 2 === 0 ? ['split', 'single'] : ['single', 'split'];
    const got = { split: 0, single: 0 };
    for (const v of order) got[v] = sample(v);
    times.split.push(got.split);
    times.single.push(got.single);
    ratios.push(got.split / got.single);
  }
  use('split');
  return {
    split: median(times.split), single: median(times.single), ratio: median(ratios),
    bestSplit: Math.min(...times.split), bestSingle: Math.min(...times.single),
  };
}

function randn(shape: number[]): t.Tensor {
  return t.randn(shape, { dtype: 'float32' });
}

const eps = 1e-5;
const line = (name: string, r: Comparison) => console.log(`${name.padEnd(48)} median split ${r.split.toFixed(4).padStart(8)} ms  single ${r.single.toFixed(4).padStart(8)} ms`
  + `  ratio ${r.ratio.toFixed(3)}  |  best split ${r.bestSplit.toFixed(4).padStart(8)}  single ${r.bestSingle.toFixed(4).padStart(8)}  ratio ${(r.bestSplit / r.bestSingle).toFixed(3)}`);

/** One op that frees its result, for timing. */
function op(f: () => t.Tensor): () => void {
  return () => f().dispose();
}

function kernels(): void {
  const scores = randn([16, 4, 64, 64]), logits = randn([1024, 65]), h = randn([16, 64, 128]), g = randn([16, 64, 128]);
  const conv1 = randn([64, 32, 28, 28]), conv2 = randn([64, 64, 14, 14]);
  const cases: [string, () => void][] = [
    ['softmax [16,4,64,64]', op(() => t.softmax(scores, -1))],
    ['softmax [1024,65]', op(() => t.softmax(logits, -1))],
    ['layerNormCore [16,64,128]', op(() => bind('layerNormCore', [h], { eps }))],
    ['layerNormCoreGrad [16,64,128]', op(() => bind('layerNormCoreGrad', [h, g], { eps }))],
    ['sum [16,64,128] -> [1,1,128]', op(() => t.sum(h, [0, 1], true))],
    ['sum [1024,65] -> [1024,1]', op(() => t.sum(logits, 1, true))],
    ['sum [64,32,28,28] -> [32]', op(() => t.sum(conv1, [0, 2, 3]))],
    ['sum [64,64,14,14] -> [1,64,1,1]', op(() => t.sum(conv2, [0, 2, 3], true))],
  ];
  for (const [name, fn] of cases) line(name, compare(fn, 20, 21));
}

/** Split at threshold 0 versus never, on sizes around the thresholds. */
function threshold(): void {
  const always = { softmax: 0, layerNorm: 0, reduce: 0 };
  for (const rows of [16, 32, 64, 128, 256, 512]) {
    const x = randn([rows, 64]);
    line(`softmax [${rows},64] (${rows * 64} elements)`, compare(op(() => t.softmax(x, -1)), 50, 15, always));
  }
  for (const rows of [8, 16, 32, 64, 128, 256]) {
    const x = randn([rows, 128]), g = randn([rows, 128]);
    line(`layerNormCore [${rows},128] (${rows * 128})`, compare(op(() => bind('layerNormCore', [x], { eps })), 50, 15, always));
    line(`layerNormCoreGrad [${rows},128] (${rows * 128}, counted x2)`, compare(op(() => bind('layerNormCoreGrad', [x, g], { eps })), 50, 15, always));
  }
  for (const rows of [64, 128, 256, 512, 1024]) {
    const x = randn([rows, 128]);
    line(`sum [${rows},128] over 0 (${rows * 128})`, compare(op(() => t.sum(x, 0)), 50, 15, always));
    const y = randn([rows, 65]);
    line(`sum [${rows},65] over 1 (${rows * 65})`, compare(op(() => t.sum(y, 1)), 50, 15, always));
  }
}

function trainingStep(which: 'gpt' | 'cnn', jit: boolean, pairs: number): void {
  const spec = defaultSpec(false);
  const step = which === 'gpt' ? tesseraGptStep(spec, { jit }) : tesseraCnnStep(spec, { jit });
  // Warm up both variants (V8 optimizes a step's code for seconds).
  const warmUntil = performance.now() + 3000;
  while (performance.now() < warmUntil) for (const v of ['split', 'single'] as const) { use(v); step(); }
  line(`${which.toUpperCase()} training step${jit ? ', jit' : ''} (${pairs} pairs)`, compare(() => { step(); }, 1, pairs));
}

const mode = process.argv[2] ?? 'kernels';
console.log(`threads ${wasmBackend.pool.threads}, thresholds ${JSON.stringify(defaults)}`);
if (mode === 'kernels') kernels();
else if (mode === 'threshold') threshold();
else if (['gpt', 'cnn', 'gpt-jit', 'cnn-jit'].includes(mode)) {
  trainingStep(mode.startsWith('gpt') ? 'gpt' : 'cnn', mode.endsWith('-jit'), Number(process.argv[3] ?? 40));
} else throw new Error(`bench/row-kernels.ts: unknown mode '${mode}' (kernels, threshold, gpt, cnn, gpt-jit or cnn-jit)`);
