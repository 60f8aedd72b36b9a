// `npm run bench`: tessera against TensorFlow.js (cpu and wasm backends), jax-js and PyTorch on the
// same machine in the same run. Each library × workload group × thread count runs in a child
// process of its own (libraries never share a heap, a thread pool or a JIT), under a timeout;
// children print one JSON line per result (bench/harness.ts). A child that fails or hangs
// becomes a "failed: <reason>" record, never a crash of the run.
//
//   npm run bench -- [--quick] [--only=tessera,tfjs-wasm,...] [--threads=1,2] [--timeout=SECONDS] [--out=DIR] [--gate=off] [--gate-minutes=20]
//
// Each case's timed runs wait for the quiet gate (bench/quiet-gate.ts): every core must deliver
// its full SIMD throughput, which on a shared VM it does only part of the time; --gate=off times
// at once; --gate-minutes caps the run's total waiting (then cases are timed as they come).
//
// Writes DIR/<date>-bench.json (machine, idle checks, peak, spec, every record) and DIR/latest.md
// (DIR: bench/results).

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { checkIdle, machineDescription } from './idle-check.js';
import { machinePeak } from './peak.js';
import { HostProbe } from './host-probe.js';
import { DEFAULT_GATE_OPTIONS, QuietGate } from './quiet-gate.js';
import { referenceBlasWarning, renderMarkdown, type BenchRun } from './report.js';
import { GATE_ENV, GATE_PREFIX, RESULT_PREFIX, WORKLOAD_GROUPS, defaultSpec, matmulFlops, trainStepFlops, type BenchRecord, type BenchSpec, type WorkloadGroup } from './spec.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);

/**
 * 'tessera' uses only the public API (wasm when it lists that backend, else cpu), op by op;
 * 'tessera-jit' the same with each training step compiled by `t.jit`; 'tessera-wasm' enables the
 * wasm backend from the checkout first (README's recipe, from before the package exported it).
 */
const LIBRARIES = ['tessera', 'tessera-jit', 'tessera-wasm', 'tfjs-cpu', 'tfjs-wasm', 'jax-js', 'pytorch'] as const;
type Library = (typeof LIBRARIES)[number];
const PYTHON = '/usr/bin/python3';

interface Options {
  quick: boolean;
  only: Library[];
  threads: number[];
  timeoutS: number | undefined;
  outDir: string;
  gate: boolean;
  gateMinutes: number;
}

function parseOptions(argv: readonly string[]): Options {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`bench: unexpected argument '${arg}'; options are --quick, --only=LIBS, --threads=N,M, --timeout=S, --out=DIR`);
    const eq = arg.indexOf('=');
    if (eq > 0) values.set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (arg === '--quick') values.set('quick', 'true');
    else if (i + 1 < argv.length) values.set(arg.slice(2), argv[++i]!);
    else throw new Error(`bench: ${arg} needs a value`);
  }
  for (const key of values.keys()) {
    if (!['quick', 'only', 'threads', 'timeout', 'out', 'gate', 'gate-minutes'].includes(key)) {
      throw new Error(`bench: unknown option --${key}; options are --quick, --only, --threads, --timeout, --out, --gate, --gate-minutes`);
    }
  }
  const gate = values.get('gate') ?? 'on';
  if (gate !== 'on' && gate !== 'off') throw new Error(`bench: --gate must be on or off, got '${gate}'`);
  const gateMinutes = Number(values.get('gate-minutes') ?? DEFAULT_GATE_OPTIONS.maxTotalWaitMs / 60_000);
  if (!(gateMinutes >= 0)) throw new Error(`bench: --gate-minutes must be a number of minutes ≥ 0, got '${values.get('gate-minutes')}'`);
  const only = (values.get('only')?.split(',') ?? [...LIBRARIES]).map((s) => s.trim()).filter((s) => s !== '');
  for (const lib of only) {
    if (!(LIBRARIES as readonly string[]).includes(lib)) throw new Error(`bench: unknown library '${lib}' in --only; choose from ${LIBRARIES.join(', ')}`);
  }
  const threads = (values.get('threads') ?? (availableParallelism() > 1 ? '1,2' : '1')).split(',').map(Number);
  for (const t of threads) if (!Number.isInteger(t) || t < 1) throw new Error(`bench: --threads needs positive integers, got '${values.get('threads')}'`);
  const timeout = values.get('timeout');
  const timeoutS = timeout === undefined ? undefined : Number(timeout);
  if (timeoutS !== undefined && !(timeoutS > 0)) throw new Error(`bench: --timeout must be a positive number of seconds, got '${timeout}'`);
  return { quick: values.has('quick'), only: only as Library[], threads, timeoutS, outDir: values.get('out') ?? join(here, 'results'), gate: gate === 'on', gateMinutes };
}

/** The command that runs one child, or why the library cannot run here. */
function childCommand(lib: Library): { cmd: string; args: string[] } {
  const ts = (file: string): { cmd: string; args: string[] } => ({ cmd: process.execPath, args: ['--import', 'tsx', join(here, file)] });
  switch (lib) {
    case 'tessera': return ts('workloads/tessera.ts');
    case 'tessera-jit': return { cmd: process.execPath, args: [...ts('workloads/tessera.ts').args, '--backend=jit'] };
    case 'tessera-wasm': return { cmd: process.execPath, args: [...ts('workloads/tessera.ts').args, '--backend=checkout-wasm'] };
    case 'tfjs-cpu': return { cmd: process.execPath, args: [...ts('peers/tfjs.ts').args, '--backend=cpu'] };
    case 'tfjs-wasm': return { cmd: process.execPath, args: [...ts('peers/tfjs.ts').args, '--backend=wasm'] };
    case 'jax-js': return ts('peers/jaxjs.ts');
    case 'pytorch': return { cmd: PYTHON, args: [join(here, 'peers/torch_bench.py')] };
  }
}

/** Why a library cannot run on this machine, or undefined when it can. */
function unavailability(lib: Library): string | undefined {
  if (lib !== 'pytorch') return undefined;
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
  if (probe.status === 0) return undefined;
  const why = (probe.error?.message ?? probe.stderr.trim().split('\n').pop() ?? 'unknown error').slice(0, 200);
  return `PyTorch is absent (\`${PYTHON} -c "import torch"\` failed: ${why}); install Debian's python3-torch to include it`;
}

interface ChildResult { records: BenchRecord[]; failure?: string }

function runChild(lib: Library, group: WorkloadGroup, threads: number, spec: BenchSpec, timeoutMs: number, gate: QuietGate | undefined): Promise<ChildResult> {
  const { cmd, args } = childCommand(lib);
  const env: NodeJS.ProcessEnv = { ...process.env, TESSERA_THREADS: String(threads), OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  if (gate !== undefined) env[GATE_ENV] = '1';
  return new Promise((resolve) => {
    const child = spawn(cmd, [...args, `--spec=${JSON.stringify(spec)}`, `--group=${group}`, `--threads=${threads}`], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const records: BenchRecord[] = [];
    let stdoutRest = '', stderrTail = '', timedOut = false;
    // The timeout counts the child's own time: it stops while the gate waits for quiet cores.
    let timeLeftMs = timeoutMs, armedAt = 0;
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    const arm = (): void => {
      if (closed) return; // a gate answer that came after the child exited
      armedAt = performance.now();
      timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeLeftMs);
    };
    const disarm = (): void => {
      clearTimeout(timer);
      timeLeftMs -= performance.now() - armedAt;
    };
    // Gate requests are answered one at a time, in order (the child blocks on each).
    let gateQueue = Promise.resolve();
    const answerGate = (line: string): void => {
      const { phase } = JSON.parse(line.slice(GATE_PREFIX.length)) as { phase: 'before' | 'after' };
      gateQueue = gateQueue.then(async () => {
        disarm();
        const answer = gate === undefined ? undefined : phase === 'before' ? await gate.waitForQuiet() : await gate.check();
        if (phase === 'before' && answer !== undefined && gate !== undefined) {
          if (gate.outOfPatience && !announcedImpatience) {
            announcedImpatience = true;
            process.stderr.write(`  gate: ${(gate.totalWaitMs / 60_000).toFixed(0)} min of waiting used up; the remaining cases are timed as they come\n`);
          } else if (!gate.outOfPatience && (answer.waitedMs > 2000 || !answer.quiet)) {
            process.stderr.write(`  gate: ${answer.quiet ? 'quiet' : 'NOT quiet'} after ${(answer.waitedMs / 1000).toFixed(0)} s ` +
              `(slowest core ${(answer.reading.fraction * 100).toFixed(0)}% of ${answer.referenceGflops.toFixed(1)} GFLOP/s)\n`);
          }
        }
        if (!child.stdin.destroyed) child.stdin.write(`${JSON.stringify(answer ?? null)}\n`);
        arm();
      });
    };
    child.stdin.on('error', () => { /* the child exited; its exit code tells why */ });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (stdoutRest + chunk).split('\n');
      stdoutRest = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith(GATE_PREFIX)) {
          answerGate(line);
          continue;
        }
        if (!line.startsWith(RESULT_PREFIX)) continue;
        let record: BenchRecord;
        try {
          record = JSON.parse(line.slice(RESULT_PREFIX.length)) as BenchRecord;
        } catch {
          process.stderr.write(`  ${lib} ${group}: ignoring a malformed result line: ${line.slice(0, 200)}\n`);
          continue;
        }
        records.push(record);
        const value = record.status === 'ok'
          ? (record.workload === 'matmul' ? `${record.gflops!.toFixed(1)} GFLOP/s` : `${record.medianMs!.toFixed(1)} ms`)
          : `${record.status}: ${record.reason}`;
        const retimed = record.quiet !== undefined && record.quiet.attempts > 1 ? ` (timed ${record.quiet.attempts} times for quiet cores)` : '';
        process.stderr.write(`  ${record.library} ${record.workload} ${record.case} ${record.threads}t: ${value}${retimed}\n`);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderrTail = (stderrTail + chunk).slice(-2000); });
    arm();
    child.on('error', (e) => { clearTimeout(timer); resolve({ records, failure: `could not start ${cmd}: ${e.message}` }); });
    child.on('close', (code, signal) => {
      closed = true;
      clearTimeout(timer);
      if (timedOut) resolve({ records, failure: `timed out after ${(timeoutMs / 1000).toFixed(0)} s of its own time (killed)` });
      else if (code !== 0) {
        const last = stderrTail.trim().split('\n').filter((l) => l.trim() !== '').pop() ?? '';
        resolve({ records, failure: `exited with ${code ?? signal}: ${last.slice(0, 300)}` });
      } else resolve({ records });
    });
  });
}

/** Libraries that use more than one thread in Node; the others are run (and recorded) at 1. */
function threadCountsFor(lib: Library, threads: number[]): number[] {
  return lib === 'tessera' || lib === 'tessera-jit' || lib === 'tessera-wasm' || lib === 'pytorch' ? threads : [1];
}

let announcedImpatience = false;

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = performance.now();
  const spec = defaultSpec(options.quick);
  const timeoutMs = 1000 * (options.timeoutS ?? (options.quick ? 120 : 300));
  process.stderr.write('bench: checking that the machine is idle...\n');
  const idleBefore = await checkIdle(2);
  process.stderr.write(`bench: ${idleBefore.verdict} (load average ${idleBefore.loadavg1})\n`);
  const peak = machinePeak(idleBefore.estimatedGHz);
  let gate: QuietGate | undefined, probe: HostProbe | undefined;
  if (options.gate) {
    probe = new HostProbe(availableParallelism());
    gate = new QuietGate((ms) => probe!.measure(ms), { ...DEFAULT_GATE_OPTIONS, maxTotalWaitMs: options.gateMinutes * 60_000, priorGflops: 0.9 * peak.perCore128 });
    await gate.calibrate();
    process.stderr.write(`bench: quiet gate: cases are timed when every core runs the micro-kernel at ${(100 * gate.options.threshold).toFixed(0)}% of ` +
      `${gate.referenceGflops.toFixed(1)} GFLOP/s (90% of the 128-bit peak, or the best seen if higher)\n`);
  }
  const unavailable: Record<string, string> = {};
  const records: BenchRun['records'] = [];
  for (const lib of options.only) {
    const why = unavailability(lib);
    if (why !== undefined) {
      unavailable[lib] = why;
      process.stderr.write(`bench: ${lib}: ${why}\n`);
      continue;
    }
    for (const threads of threadCountsFor(lib, options.threads)) {
      for (const group of WORKLOAD_GROUPS) {
        // A single product compiles to the same SGEMM call as the 'tessera' row: nothing to add.
        if (lib === 'tessera-jit' && group === 'matmul') continue;
        process.stderr.write(`bench: ${lib}, ${group}, ${threads} thread(s)\n`);
        const result = await runChild(lib, group, threads, spec, timeoutMs, gate);
        records.push(...result.records);
        if (result.failure !== undefined) {
          // Cases the child never reported fail with the child's reason.
          const cases = group === 'matmul' ? spec.matmul.map((c) => c.name) : [group];
          const reported = new Set(result.records.map((r) => r.case));
          const missing = reported.has('all') ? [] : cases.filter((c) => !reported.has(c));
          const backend = result.records[0]?.backend ?? lib;
          for (const c of missing) records.push({ library: lib, backend, workload: group, case: c, threads, status: 'failed', reason: result.failure });
          process.stderr.write(`  ${lib} ${group} ${threads}t: failed: ${result.failure}\n`);
        }
      }
    }
  }
  for (const r of records) {
    if (r.status !== 'ok') continue;
    r.flops ??= r.workload === 'matmul' ? matmulFlops(spec.matmul.find((c) => c.name === r.case)!) : trainStepFlops(spec, r.workload);
    r.gflops ??= r.flops / (r.medianMs! * 1e6);
    r.fractionOfPeak128 = r.gflops / (peak.perCore128 * r.threads);
    r.fractionOfNativePeak = r.gflops / (peak.perCoreNative * r.threads);
  }
  process.stderr.write('bench: checking idleness again...\n');
  const idleAfter = await checkIdle(2);
  await probe?.close();
  const date = new Date().toISOString();
  const run: BenchRun = {
    date,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick: options.quick,
    machine: machineDescription(),
    idleBefore, idleAfter, peak, spec, unavailable, records,
    gate: gate === undefined ? undefined
      : { options: gate.options, referenceGflops: gate.referenceGflops, probes: gate.probes, totalWaitSeconds: gate.totalWaitMs / 1000, priorDropped: gate.priorDropped },
    wallSeconds: (performance.now() - started) / 1000,
  };
  mkdirSync(options.outDir, { recursive: true });
  const jsonFile = join(options.outDir, `${date.slice(0, 10)}-bench${options.quick ? '-quick' : ''}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(run, null, 2)}\n`);
  const mdFile = join(options.outDir, options.quick ? 'latest-quick.md' : 'latest.md');
  const markdown = renderMarkdown(run);
  writeFileSync(mdFile, markdown);
  process.stdout.write(markdown);
  process.stderr.write(`bench: wrote ${jsonFile} and ${mdFile}\n`);
  const blas = referenceBlasWarning(run);
  if (blas !== '') process.stderr.write(`bench: WARNING: ${blas.replace(/\*\*/g, '')}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
