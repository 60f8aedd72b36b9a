// The timing loop and output protocol shared by every TypeScript child of bench/run.ts (tessera,
// TensorFlow.js, jax-js). bench/peers/torch_bench.py implements the same rules in Python.

import { readSync } from 'node:fs';
import { GATE_ENV, GATE_PREFIX, MAX_WARMUP_RUNS, RESULT_PREFIX, type BenchRecord, type GateAnswer, type QuietRecord, type BenchSpec, type TimingSpec, type WorkloadGroup } from './spec.js';

export interface ChildArgs {
  spec: BenchSpec;
  group: WorkloadGroup;
  threads: number;
  /** Library-specific variant (TensorFlow.js: 'cpu' or 'wasm'). */
  backend: string | undefined;
}

/** Reads `--spec=<json> --group=<name> --threads=<n> [--backend=<name>]` as bench/run.ts passes them. */
export function parseChildArgs(argv: readonly string[] = process.argv.slice(2)): ChildArgs {
  const values = new Map<string, string>();
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 2) values.set(arg.slice(2, eq), arg.slice(eq + 1));
  }
  const specJson = values.get('spec');
  const group = values.get('group');
  if (specJson === undefined || group === undefined) {
    throw new Error(`bench child: needs --spec=<json> and --group=matmul|mlp|cnn|gpt (got ${JSON.stringify(argv)}); run it through bench/run.ts`);
  }
  if (!['matmul', 'mlp', 'cnn', 'gpt'].includes(group)) throw new Error(`bench child: unknown --group=${group}; expected matmul, mlp, cnn or gpt`);
  const threads = Number(values.get('threads') ?? '1');
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`bench child: --threads must be a positive integer, got ${values.get('threads')}`);
  return { spec: JSON.parse(specJson) as BenchSpec, group: group as WorkloadGroup, threads, backend: values.get('backend') };
}

export function emit(record: BenchRecord): void {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(record)}\n`);
}

export interface Timing {
  medianMs: number;
  minMs: number;
  runs: number;
  samplesMs: number[];
  /** Median CPU time (user + system, all threads of the process) per run. */
  cpuMedianMs: number;
  /** With a gate: the readings the reported runs were timed between. */
  quiet?: QuietRecord;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Asks the parent whether the cores are quiet, before ('before': it waits until they are) or after a case's timed runs. */
export type CaseGate = (phase: 'before' | 'after') => GateAnswer;

/** A case timed between a non-quiet pair of readings is timed again, up to this many times in all. */
export const MAX_TIMING_ATTEMPTS = 3;

function readLineSync(fd: number): string {
  const byte = Buffer.alloc(1);
  let line = '';
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, byte, 0, 1, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      continue;
    }
    if (n === 0) throw new Error('bench child: stdin closed while waiting for the quiet gate\'s answer; run it through bench/run.ts');
    if (byte[0] === 10) return line;
    line += String.fromCharCode(byte[0]!);
  }
}

/**
 * The gate bench/run.ts offers its children (env TESSERA_BENCH_GATE=1): a request line on
 * stdout, the answer as one JSON line on stdin. Synchronous on purpose: nothing of the case may
 * run while the parent probes the cores.
 */
export function parentGate(): CaseGate | undefined {
  if (process.env[GATE_ENV] !== '1') return undefined;
  return (phase) => {
    process.stdout.write(`${GATE_PREFIX}${JSON.stringify({ phase })}\n`);
    return JSON.parse(readLineSync(0)) as GateAnswer;
  };
}

/**
 * Runs `fn` untimed at least `warmup` times and until `warmupMs` was spent (at most
 * MAX_WARMUP_RUNS), then times runs until maxRuns, or until budgetMs was spent
 * after at least minRuns. `fn` must finish its work before it returns (or resolves): read a
 * value back where a library computes lazily. A warm-up slower than caseLimitMs shortens the
 * case to one timed run after it (the warm-up may include jit compilation, so it is not the one
 * reported) rather than waiting minutes for more. `now` is the clock (tests pass a simulated one).
 * With a `gate`, the timed runs start once the parent says the cores are quiet, and are done again
 * (up to MAX_TIMING_ATTEMPTS in all) when the parent says to retry: the cores were not quiet any
 * more at the end (and it still has patience to wait for them).
 */
export async function timeRuns(fn: () => unknown, timing: TimingSpec, now: () => number = () => performance.now(),
  gate: CaseGate | undefined = parentGate()): Promise<Timing> {
  const warmStart = now();
  const warming = (i: number): boolean =>
    i < timing.warmup || (i < MAX_WARMUP_RUNS && now() - warmStart < (timing.warmupMs ?? 0));
  let oneRunOnly = false;
  for (let i = 0; warming(i); i++) {
    const t0 = now();
    await fn();
    const ms = now() - t0;
    if (ms > timing.caseLimitMs) {
      oneRunOnly = true;
      break;
    }
    // One warm-up that long is enough: caches and JITs are warm, more would only cost time.
    if (ms > timing.budgetMs) break;
  }
  for (let attempt = 1; ; attempt++) {
    const before = gate?.('before');
    const timed = oneRunOnly ? await timeOneRun(fn, now) : await timeSamples(fn, timing, now);
    const after = gate?.('after');
    if (before === undefined || after === undefined) return timed;
    // A one-run case (minutes long) is not repeated.
    if (!after.retry || oneRunOnly || attempt >= MAX_TIMING_ATTEMPTS) return { ...timed, quiet: { attempts: attempt, before, after } };
  }
}

async function timeOneRun(fn: () => unknown, now: () => number): Promise<Timing> {
  const [t1, c1] = [now(), cpuMs()];
  await fn();
  const runMs = now() - t1;
  return { medianMs: runMs, minMs: runMs, runs: 1, samplesMs: [runMs], cpuMedianMs: cpuMs() - c1 };
}

async function timeSamples(fn: () => unknown, timing: TimingSpec, now: () => number): Promise<Timing> {
  const samples: number[] = [], cpuSamples: number[] = [];
  const start = now();
  while (samples.length < timing.maxRuns) {
    const [t0, c0] = [now(), cpuMs()];
    await fn();
    samples.push(now() - t0);
    cpuSamples.push(cpuMs() - c0);
    const spent = now() - start;
    if (samples.length >= timing.minRuns && spent >= timing.budgetMs) break;
    if (spent >= 3 * timing.budgetMs) break;
  }
  return { medianMs: median(samples), minMs: Math.min(...samples), runs: samples.length, samplesMs: samples, cpuMedianMs: median(cpuSamples) };
}

/** Why a thrown value failed a case, on one line. */
export function reasonOf(e: unknown): string {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return text.split('\n')[0]!.slice(0, 300);
}

/** Common fields of a record for this child. */
export interface RecordBase {
  library: string;
  backend: string;
  threads: number;
}

/**
 * Runs the matmul cases in order of size, skipping a case once the previous one predicts that a
 * single product would take longer than caseLimitMs (e.g. 2048² in plain JavaScript).
 */
export async function runMatmulCases(
  spec: BenchSpec,
  base: RecordBase,
  prepare: (c: BenchSpec['matmul'][number]) => { run: () => unknown; dispose: () => void },
): Promise<void> {
  let msPerFlop: number | undefined;
  for (const c of spec.matmul) {
    const flops = 2 * c.m * c.n * c.k;
    if (msPerFlop !== undefined && msPerFlop * flops > spec.matmulTiming.caseLimitMs) {
      emit({ ...base, workload: 'matmul', case: c.name, status: 'skipped', flops,
        reason: `predicted ${(msPerFlop * flops / 1000).toFixed(0)} s per product from the previous case (limit ${spec.matmulTiming.caseLimitMs / 1000} s)` });
      continue;
    }
    try {
      const p = prepare(c);
      const t = await timeRuns(p.run, spec.matmulTiming);
      p.dispose();
      msPerFlop = t.minMs / flops;
      emit({ ...base, workload: 'matmul', case: c.name, status: 'ok', medianMs: t.medianMs, minMs: t.minMs, runs: t.runs, cpuMedianMs: t.cpuMedianMs, flops,
        gflops: flops / (t.medianMs * 1e6), quiet: t.quiet });
    } catch (e) {
      emit({ ...base, workload: 'matmul', case: c.name, status: 'failed', flops, reason: reasonOf(e) });
    }
  }
}

/** A training step that returns its loss (read back, so that the work is done). */
export type TrainStep = () => number | Promise<number>;

export async function runTrainCase(spec: BenchSpec, base: RecordBase, group: Exclude<WorkloadGroup, 'matmul'>, flops: number,
  build: () => TrainStep | Promise<TrainStep>): Promise<void> {
  try {
    const step = await build();
    let first: number | undefined, last = NaN;
    const t = await timeRuns(async () => {
      last = await step();
      first ??= last;
    }, spec.trainTiming);
    if (!Number.isFinite(last)) throw new Error(`the loss is ${last} after ${t.runs} steps`);
    emit({ ...base, workload: group, case: group, status: 'ok', medianMs: t.medianMs, minMs: t.minMs, runs: t.runs, cpuMedianMs: t.cpuMedianMs, flops,
      gflops: flops / (t.medianMs * 1e6), firstLoss: first, lastLoss: last, quiet: t.quiet });
  } catch (e) {
    emit({ ...base, workload: group, case: group, status: 'failed', flops, reason: reasonOf(e) });
  }
}
