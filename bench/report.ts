// The markdown summary of one `npm run bench` (bench/results/latest.md, and the table that
// docs/performance.md quotes): matmul GFLOP/s and training step times, per library and thread
// count, each with its fraction of this machine's peak, then every failure and skip with its reason.

import type { IdleCheck } from './idle-check.js';
import type { Peak } from './peak.js';
import type { QuietGateOptions } from './quiet-gate.js';
import type { BenchRecord, BenchSpec } from './spec.js';

export interface BenchRun {
  date: string;
  command: string;
  quick: boolean;
  machine: { cpu: string; cores: number; node: string; platform: string };
  idleBefore: IdleCheck;
  idleAfter: IdleCheck;
  peak: Peak;
  spec: BenchSpec;
  /** Libraries that could not run at all, with why (e.g. PyTorch absent). */
  unavailable: Record<string, string>;
  records: (BenchRecord & { fractionOfPeak128?: number; fractionOfNativePeak?: number })[];
  /** The quiet gate's settings and totals; absent with --gate=off (and in runs before it existed). */
  gate?: { options: QuietGateOptions; referenceGflops: number; probes: number; totalWaitSeconds: number; priorDropped: boolean };
  wallSeconds: number;
}

const LIBRARY_ORDER = ['tessera', 'tessera-wasm', 'tfjs-cpu', 'tfjs-wasm', 'jax-js', 'pytorch'];

function rowKey(r: BenchRecord): string {
  return `${r.library} (${r.backend}), ${r.threads} thread${r.threads === 1 ? '' : 's'}`;
}

function fmt(x: number, digits = 3): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(digits);
}

function pct(f: number | undefined): string {
  return f === undefined ? '' : ` (${(100 * f).toFixed(f < 0.01 ? 2 : 1)}%)`;
}

/** Rows (library × threads) by columns (cases); a cell shows a number or a footnote number. */
function table(records: BenchRun['records'], columns: string[], cell: (r: BenchRun['records'][number]) => string,
  notes: string[], corner: string): string[] {
  const rows = new Map<string, Map<string, string>>();
  const order = (r: BenchRecord): number => LIBRARY_ORDER.indexOf(r.library) * 100 + r.threads;
  for (const r of [...records].sort((a, b) => order(a) - order(b))) {
    const row = rows.get(rowKey(r)) ?? new Map<string, string>();
    rows.set(rowKey(r), row);
    if (r.status === 'ok') {
      row.set(r.case, cell(r));
    } else {
      notes.push(`${r.status} — ${rowKey(r)}, ${r.case}: ${r.reason ?? 'no reason given'}`);
      const label = `${r.status} [${notes.length}]`;
      if (r.case === 'all') for (const c of columns) row.set(c, label);
      else row.set(r.case, label);
    }
  }
  const lines = [`| ${corner} | ${columns.join(' | ')} |`, `| --- | ${columns.map(() => '---:').join(' | ')} |`];
  for (const [key, row] of rows) lines.push(`| ${key} | ${columns.map((c) => row.get(c) ?? '—').join(' | ')} |`);
  return lines;
}

/** '†' on a case timed while a core was slowed (the gate gave up waiting, or it was still slow after the last attempt). */
function notQuietMark(r: BenchRecord): string {
  return r.quiet !== undefined && !(r.quiet.before.quiet && r.quiet.after.quiet) ? ' †' : '';
}

/** What the quiet gate did in this run, for the header. */
function gateLines(run: BenchRun): string[] {
  const g = run.gate;
  if (g === undefined) return ['No quiet gate (`--gate=off`): cases were timed as they came, whatever the host was doing.', ''];
  const gated = run.records.filter((r) => r.quiet !== undefined);
  const retimed = gated.filter((r) => r.quiet!.attempts > 1).length;
  const notQuiet = gated.filter((r) => notQuietMark(r) !== '').length;
  return [
    `Quiet gate (bench/quiet-gate.ts): each case's timed runs started once every core ran the SGEMM micro-kernel at ≥ ${(100 * g.options.threshold).toFixed(0)}% ` +
      `of the reference, ${fmt(g.referenceGflops)} GFLOP/s per core at the end (${(100 * g.referenceGflops / run.peak.perCore128).toFixed(0)}% of the 128-bit peak: ` +
      `${g.priorDropped ? 'the best rate seen; 90% of the peak was never reached and was given up' : '90% of the peak, or the best rate seen where higher'}), ` +
      `and a case whose cores had slowed by its end was timed again (at most 3 times). ${g.probes} probes, ${g.totalWaitSeconds.toFixed(0)} s of waiting in all; ` +
      `${retimed} of ${gated.length} cases timed more than once; ${notQuiet === 0 ? 'none' : notQuiet} timed while a core was slowed${notQuiet === 0 ? '' : ' (marked †)'}.`,
    '',
  ];
}

/**
 * A warning when PyTorch ran on the reference BLAS (Debian's python3-torch without OpenBLAS or BLIS
 * installed): its products then run 10-30× slower than with OpenBLAS, so it is not a fair peer.
 */
export function referenceBlasWarning(run: Pick<BenchRun, 'records'>): string {
  if (!run.records.some((r) => r.library === 'pytorch' && r.backend.includes('reference BLAS'))) return '';
  return '**PyTorch ran on the reference BLAS (no OpenBLAS or BLIS installed), 10-30× slower than with OpenBLAS: its rows are not a fair peer. '
    + 'Install libopenblas0-pthread (docs/performance.md, Reproduce) and run again.**';
}

export function renderMarkdown(run: BenchRun): string {
  const notes: string[] = [];
  const p = run.peak;
  const lines: string[] = [
    `# Benchmark: tessera against TensorFlow.js, jax-js and PyTorch (${run.date})`,
    '',
    `Command: \`${run.command}\`${run.quick ? ' (quick: fewer sizes and runs)' : ''}; ${run.wallSeconds.toFixed(0)} s in all.`,
    `Machine: ${run.machine.cpu}, ${run.machine.cores} cores, ${run.machine.platform}, Node ${run.machine.node}.`,
    '',
    `**Idle check before timing: ${run.idleBefore.verdict}** (load average ${run.idleBefore.loadavg1 ?? 'n/a'}).`,
    `After: ${run.idleAfter.verdict} (load average ${run.idleAfter.loadavg1 ?? 'n/a'}).`,
    run.idleBefore.idle && run.idleAfter.idle ? '' : '**The machine was not idle: other processes shared the cores, so these numbers are low and noisy (multi-threaded ones most of all); an idle run replaces them.**',
    referenceBlasWarning(run),
    '',
    `Peak (cores × SIMD lanes × ${p.fmaUnits} FMA units × 2 × ${p.clockGHz.toFixed(2)} GHz; clock from ${p.clockSource}):`,
    `${fmt(p.perCore128)} GFLOP/s per core at 128-bit SIMD (WebAssembly's width, the ceiling of every JavaScript library),`,
    `${fmt(p.perCoreNative)} per core at the CPU's native ${p.nativeBits}-bit (PyTorch's ceiling).`,
    'Percentages are of the 128-bit peak times the threads used; medians of several runs after warm-up.',
    '',
    ...gateLines(run),
    '## fp32 matmul, GFLOP/s (% of 128-bit peak)',
    '',
  ];
  const matmul = run.records.filter((r) => r.workload === 'matmul');
  lines.push(...table(matmul, run.spec.matmul.map((c) => c.name), (r) => `${fmt(r.gflops!)}${pct(r.fractionOfPeak128)}${notQuietMark(r)}`, notes, 'library, threads'));
  lines.push('', '## Training step (forward, backward, Adam), median ms (GFLOP/s as % of 128-bit peak)', '');
  const m = run.spec;
  lines.push(`mlp: ${m.mlp.sizes.join('-')}, batch ${m.mlp.batch}; cnn: conv(1→${m.cnn.c1},3x3)+ReLU+maxpool, conv(${m.cnn.c1}→${m.cnn.c2},3x3)+ReLU+maxpool, ` +
    `linear(${m.cnn.c2 * (m.cnn.hw / 4) ** 2}→${m.cnn.hidden})+ReLU, linear(${m.cnn.hidden}→${m.cnn.classes}), batch ${m.cnn.batch} on ${m.cnn.hw}x${m.cnn.hw}; ` +
    `gpt: vocab ${m.gpt.vocab}, context ${m.gpt.context}, d ${m.gpt.d}, ${m.gpt.heads} heads, ${m.gpt.layers} layers, batch ${m.gpt.batch}. Adam, lr ${m.lr}.`, '');
  const train = run.records.filter((r) => r.workload !== 'matmul');
  lines.push(...table(train, ['mlp', 'cnn', 'gpt'], (r) => `${fmt(r.medianMs!)} ms${pct(r.fractionOfPeak128)}${r.runs === 1 ? ' (1 run)' : ''}${notQuietMark(r)}`, notes, 'library, threads'));
  // Wall time counts waiting for a core on a busy machine; CPU time (all the process's threads)
  // does not, so these two tables are the fairer comparison when the idle check said BUSY.
  const cpuNotes: string[] = [];
  const ok = (r: BenchRun['records'][number]): boolean => r.status === 'ok' && r.cpuMedianMs !== undefined;
  lines.push('', '## CPU time instead of wall time', '',
    'The same runs, measured in CPU time of the library\'s process (user + system, all its threads): on a busy machine it leaves out',
    'the time spent waiting for a core. For one thread it approximates an idle machine\'s wall time; for two it is the sum over both.', '',
    '### fp32 matmul, GFLOP per CPU-second', '');
  lines.push(...table(matmul.filter(ok), run.spec.matmul.map((c) => c.name), (r) => fmt(r.flops! / (r.cpuMedianMs! * 1e6)), cpuNotes, 'library, threads'));
  lines.push('', '### Training step, CPU ms', '');
  lines.push(...table(train.filter(ok), ['mlp', 'cnn', 'gpt'], (r) => `${fmt(r.cpuMedianMs!)} ms`, cpuNotes, 'library, threads'));
  const unavailable = Object.entries(run.unavailable);
  if (unavailable.length > 0) {
    lines.push('', '## Not run', '');
    for (const [lib, why] of unavailable) lines.push(`- ${lib}: ${why}`);
  }
  if (notes.length > 0) {
    lines.push('', '## Failures and skips', '');
    notes.forEach((n, i) => lines.push(`${i + 1}. ${n}`));
  }
  lines.push('', 'Raw results (every run\'s median, minimum, run count and losses): the JSON file next to this one.', '');
  return lines.join('\n');
}
