// What the peer benchmark measures: one description of the shapes and models, handed to every
// library's child process as JSON (`--spec`), so that tessera, TensorFlow.js, jax-js and PyTorch
// run exactly the same workloads. bench/peers/torch_bench.py reads the same JSON.

export interface MatmulCase {
  name: string;
  m: number;
  n: number;
  k: number;
}

export interface MlpSpec { batch: number; sizes: number[] }
/** conv(1→c1, 3x3, pad 1)+ReLU+maxpool 2, conv(c1→c2)+ReLU+maxpool 2, linear(c2·(hw/4)²→hidden)+ReLU, linear(hidden→classes). */
export interface CnnSpec { batch: number; hw: number; c1: number; c2: number; hidden: number; classes: number }
/** Pre-norm GPT (GELU MLP of 4·d, causal attention, final LayerNorm, head tied to the token embedding). */
export interface GptSpec { batch: number; vocab: number; context: number; d: number; heads: number; layers: number }

/** The most warm-up runs a case gets, however short its runs (TimingSpec.warmupMs). */
export const MAX_WARMUP_RUNS = 50;

export interface TimingSpec {
  /** Untimed runs first (jit compilation, kernel caches, allocator warm-up): at least this many, */
  warmup: number;
  /**
   * ... and more until this much time was spent warming up (at most MAX_WARMUP_RUNS runs): a
   * JavaScript engine keeps optimizing a training step's code for a second or more (V8 measured on
   * tessera's GPT step: 115 ms per step after 3 warm-ups, 97 ms after 40), and what a training run
   * sees over thousands of steps is the steady state.
   */
  warmupMs: number;
  minRuns: number;
  maxRuns: number;
  /** Stop adding runs once this much time was spent on a case (after minRuns). */
  budgetMs: number;
  /** A case whose one run is predicted to take longer than this is skipped (and said so). */
  caseLimitMs: number;
}

export interface BenchSpec {
  matmul: MatmulCase[];
  mlp: MlpSpec;
  cnn: CnnSpec;
  gpt: GptSpec;
  matmulTiming: TimingSpec;
  trainTiming: TimingSpec;
  /** Adam's learning rate (betas 0.9/0.999, eps 1e-8: the defaults of every library here). */
  lr: number;
  seed: number;
}

export type WorkloadGroup = 'matmul' | 'mlp' | 'cnn' | 'gpt';
export const WORKLOAD_GROUPS: readonly WorkloadGroup[] = ['matmul', 'mlp', 'cnn', 'gpt'];

export function defaultSpec(quick: boolean): BenchSpec {
  const squares = quick ? [128, 512] : [128, 256, 512, 1024, 2048];
  const matmul: MatmulCase[] = squares.map((n) => ({ name: `square ${n}`, m: n, n, k: n }));
  // Transformer-shaped products: the GPT benchmark's own (batch·context = 1024 rows, d = 128)
  // and a GPT-2-small layer's (1024 rows, d = 768): QKV projection, MLP up and down.
  matmul.push({ name: 'gpt qkv 1024x384x128', m: 1024, n: 384, k: 128 });
  if (!quick) {
    matmul.push({ name: 'gpt2 qkv 1024x2304x768', m: 1024, n: 2304, k: 768 });
    matmul.push({ name: 'gpt2 mlp-up 1024x3072x768', m: 1024, n: 3072, k: 768 });
    matmul.push({ name: 'gpt2 mlp-down 1024x768x3072', m: 1024, n: 768, k: 3072 });
  }
  return {
    matmul,
    mlp: { batch: 128, sizes: [784, 512, 512, 10] },
    cnn: { batch: 64, hw: 28, c1: 32, c2: 64, hidden: 128, classes: 10 },
    gpt: { batch: 16, vocab: 65, context: 64, d: 128, heads: 4, layers: 2 },
    matmulTiming: quick
      ? { warmup: 1, warmupMs: 0, minRuns: 2, maxRuns: 3, budgetMs: 1000, caseLimitMs: 4000 }
      : { warmup: 2, warmupMs: 300, minRuns: 3, maxRuns: 10, budgetMs: 3000, caseLimitMs: 20000 },
    trainTiming: quick
      ? { warmup: 1, warmupMs: 0, minRuns: 2, maxRuns: 3, budgetMs: 2000, caseLimitMs: 8000 }
      : { warmup: 2, warmupMs: 3000, minRuns: 3, maxRuns: 10, budgetMs: 6000, caseLimitMs: 20000 },
    lr: 1e-3,
    seed: 0,
  };
}

export function matmulFlops(c: MatmulCase): number {
  return 2 * c.m * c.n * c.k;
}

/**
 * FLOPs of one training step, counted as 3× the forward pass's matmul/convolution FLOPs (the
 * backward pass computes two products per forward one); elementwise work is left out.
 */
export function trainStepFlops(spec: BenchSpec, group: Exclude<WorkloadGroup, 'matmul'>): number {
  if (group === 'mlp') {
    const { batch, sizes } = spec.mlp;
    let f = 0;
    for (let i = 0; i + 1 < sizes.length; i++) f += 2 * batch * sizes[i]! * sizes[i + 1]!;
    return 3 * f;
  }
  if (group === 'cnn') {
    const c = spec.cnn;
    const h2 = c.hw / 2, h4 = c.hw / 4;
    const conv1 = 2 * c.batch * c.hw * c.hw * c.c1 * 9;
    const conv2 = 2 * c.batch * h2 * h2 * c.c2 * c.c1 * 9;
    const fc = 2 * c.batch * (c.c2 * h4 * h4 * c.hidden + c.hidden * c.classes);
    return 3 * (conv1 + conv2 + fc);
  }
  const g = spec.gpt;
  const rows = g.batch * g.context;
  const perLayer = 2 * rows * g.d * (3 * g.d + g.d + 8 * g.d) + 2 * 2 * g.batch * g.context * g.context * g.d;
  return 3 * (g.layers * perLayer + 2 * rows * g.d * g.vocab);
}

/** One line of a child's output (prefixed with RESULT_PREFIX), and one entry of the results JSON. */
/** What the quiet gate (bench/quiet-gate.ts, run by the parent) answered; as bench/run.ts sends it. */
export interface GateAnswer {
  quiet: boolean;
  waitedMs: number;
  probes: number;
  reading: { atMs: number; coresGflops: number[]; fraction: number; quiet: boolean };
  referenceGflops: number;
  /** After a case: time it again (the cores slowed, and the gate still has patience to wait for them). */
  retry: boolean;
}

/** The readings a case was timed between, and how many times it was timed to get a quiet pair. */
export interface QuietRecord {
  attempts: number;
  before: GateAnswer;
  after: GateAnswer;
}

export interface BenchRecord {
  library: string;
  /** The library's backend or device actually used (e.g. 'wasm', 'cpu'). */
  backend: string;
  workload: WorkloadGroup;
  /** 'square 1024', a transformer shape's name, or the model name for training steps. */
  case: string;
  /** Threads the library actually ran with (1 where it cannot use more in Node). */
  threads: number;
  status: 'ok' | 'failed' | 'skipped';
  reason?: string;
  medianMs?: number;
  minMs?: number;
  runs?: number;
  /**
   * Median CPU time per run (user + system, all the process's threads). On a busy machine wall
   * time includes waiting for a core; CPU time does not (for one thread it is close to what an
   * idle machine's wall time would be).
   */
  cpuMedianMs?: number;
  flops?: number;
  /** flops / median time. */
  gflops?: number;
  /** Training only: the loss of the first step (warm-up included) and of the last one: a sanity check that it learns. */
  firstLoss?: number;
  lastLoss?: number;
  note?: string;
  /** The quiet gate's readings before and after the reported runs (bench/quiet-gate.ts). */
  quiet?: QuietRecord;
}

export const RESULT_PREFIX = '@@bench ';
/** A child's request to the parent's quiet gate: this prefix and {"phase": "before" | "after"}. */
export const GATE_PREFIX = '@@gate ';
/** Set to '1' by bench/run.ts when it answers gate requests on the child's stdin. */
export const GATE_ENV = 'TESSERA_BENCH_GATE';
