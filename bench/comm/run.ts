// `npm run bench:comm [-- --quick] [--transports thread,tcp] [--ranks 2,4,8] [--tcp-ranks 2,4] [--sizes 1K,1M]`
// Measures every collective x algorithm x message size on both transports: time, algorithm
// bandwidth and bus bandwidth (nccl-tests conventions: algbw = S/t, busbw = algbw x factor),
// next to this machine's memory-copy bandwidth (the physical limit on one host), with α and β
// fitted from a ping-pong sweep. Writes bench/results/comm.json and comm.md (or comm-NAME.* with --name NAME).
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../../src/cli/run.js';
import type { Collective } from '../../src/dist/index.js';
import { ALGORITHMS, chooseAlgorithm, fitAlphaBeta, runThreadRanks } from '../../src/dist/index.js';
import { checkIdle, machineDescription } from '../idle-check.js';
import type { BenchPlan, RankReport, Row } from './cases.js';
import { socketCeilingGBs } from './socket-ceiling.js';

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)B?$/i.exec(s.trim());
  if (!m) throw new Error(`bench:comm: cannot read size ${JSON.stringify(s)}; write e.g. 1K, 64M`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.round(Number(m[1]) * mult);
}

function human(bytes: number): string {
  if (bytes >= 1024 ** 2) return `${bytes / 1024 ** 2} MB`;
  if (bytes >= 1024) return `${bytes / 1024} KB`;
  return `${bytes} B`;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const quick = process.argv.includes('--quick');
const transports = (arg('--transports') ?? 'thread,tcp').split(',') as ('thread' | 'tcp')[];
const rankCounts = (arg('--ranks') ?? (quick ? '2,4' : '2,4,8')).split(',').map(Number);
// TCP ranks are whole processes; on a small machine one may want fewer of them.
const tcpRankCounts = (arg('--tcp-ranks')?.split(',') ?? rankCounts).map(Number);
const sizes = (arg('--sizes') ?? (quick ? '1K,64K,1M,16M,64M' : '1K,4K,16K,64K,256K,1M,4M,16M,64M,256M')).split(',').map(parseSize);
const collectives = (arg('--collectives')?.split(',') ?? Object.keys(ALGORITHMS)) as Collective[];
const plan: BenchPlan = {
  sizes,
  maxSizeOtherCollectives: parseSize(arg('--max-other') ?? (quick ? '1M' : '256M')),
  collectives,
  secondsPerCase: Number(arg('--seconds-per-case') ?? (quick ? '0.15' : '0.5')),
  minIterations: quick ? 2 : 3,
  maxIterations: 200,
  pingPongSizes: [8, 1024, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024],
};

function memcpyGBs(): number {
  const n = 16 << 20; // 64 MB
  const src = new Float32Array(n).fill(1);
  const dst = new Float32Array(n).fill(0);
  let best = Infinity;
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    dst.set(src);
    best = Math.min(best, performance.now() - t0);
  }
  return (n * 4) / 1e9 / (best / 1000);
}

async function runTcp(p: number): Promise<RankReport> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-'));
  const planFile = join(dir, 'plan.json');
  const outFile = join(dir, 'out.json');
  writeFileSync(planFile, JSON.stringify(plan));
  process.env['BENCH_PLAN'] = planFile;
  process.env['BENCH_OUT'] = outFile;
  const script = fileURLToPath(new URL('./tcp-rank.ts', import.meta.url));
  const code = await launch({ nprocPerNode: p, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: undefined, bindAddr: undefined, script, scriptArgs: [] });
  if (code !== 0) throw new Error(`bench:comm: the tcp run with ${p} ranks failed (exit ${code})`);
  return JSON.parse(readFileSync(outFile, 'utf8')) as RankReport;
}

async function main(): Promise<void> {
  const started = new Date();
  const idleBefore = await checkIdle(2);
  const memcpy = memcpyGBs();
  // The loopback socket pair's rate bounds every TCP result; measured in the same run (same load).
  const socketGBs = transports.includes('tcp') ? await socketCeilingGBs(64 * 1024 ** 2) : undefined;
  console.log(`memcpy ${memcpy.toFixed(2)} GB/s; bare loopback sockets ${socketGBs?.toFixed(2) ?? '-'} GB/s per direction; ${idleBefore.verdict}`);
  const runs: { transport: string; ranks: number; report: RankReport; fit: { alpha: number; beta: number } | undefined }[] = [];
  for (const transport of transports) {
    for (const p of transport === 'tcp' ? tcpRankCounts : rankCounts) {
      console.log(`== ${transport}, ${p} ranks`);
      const report =
        transport === 'thread'
          ? (await runThreadRanks<BenchPlan, RankReport | undefined>({ worldSize: p, module: new URL('./thread-rank.ts', import.meta.url), args: plan }))[0]!
          : await runTcp(p);
      const fit = report.pingPong.length >= 2 ? fitAlphaBeta(report.pingPong.map((x) => ({ bytes: x.bytes, seconds: x.oneWaySeconds }))) : undefined;
      runs.push({ transport, ranks: p, report: report!, fit });
    }
  }
  const idleAfter = await checkIdle(2);
  const rows = runs.flatMap((r) => r.report.rows);
  const result = {
    command: `npm run bench:comm -- ${process.argv.slice(2).join(' ')}`.trim(),
    started: started.toISOString(),
    machine: machineDescription(),
    loadavgBefore: idleBefore.loadavg1,
    loadavgAfter: idleAfter.loadavg1,
    idleBefore: idleBefore.verdict,
    idleAfter: idleAfter.verdict,
    loadavgNow: loadavg(),
    memcpyGBs: memcpy,
    socketPairGBs: socketGBs,
    plan,
    fits: runs.map((r) => ({ transport: r.transport, ranks: r.ranks, fitted: r.fit, measuredAtInit: r.report.costModel, pingPong: r.report.pingPong })),
    rows,
  };
  const outDir = fileURLToPath(new URL('../results/', import.meta.url));
  mkdirSync(outDir, { recursive: true });
  const name = arg('--name') ? `comm-${arg('--name')}` : 'comm';
  writeFileSync(join(outDir, `${name}.json`), `${JSON.stringify(result, null, 1)}\n`);
  writeFileSync(join(outDir, `${name}.md`), markdown(result, runs));
  console.log(`wrote ${join(outDir, `${name}.json`)} and ${name}.md`);
}

function targets(rows: Row[], memcpy: number, socketGBs: number | undefined): string[] {
  const best = (transport: string) =>
    rows.filter((r) => r.transport === transport && r.ranks === 2 && r.collective === 'allReduce' && r.bytes === 64 * 1024 ** 2).sort((a, b) => b.busbwGBs - a.busbwGBs)[0];
  const out: string[] = [];
  const t = best('thread');
  if (t) out.push(`- thread, 2 ranks, 64 MB all-reduce: best busbw ${t.busbwGBs.toFixed(2)} GB/s (${t.algorithm}) vs half the memcpy bandwidth ${(memcpy / 2).toFixed(2)} GB/s: **${t.busbwGBs >= memcpy / 2 ? 'met' : 'not met'}**`);
  const c = best('tcp');
  if (c) {
    const ceiling =
      socketGBs === undefined
        ? ''
        : `; two bare processes on loopback (one connection per direction, reads into reused memory, nothing done with the data) moved ${socketGBs.toFixed(2)} GB/s per direction in this run, the ceiling for this busbw on 2 ranks`;
    out.push(`- tcp loopback, 2 ranks, 64 MB all-reduce: best busbw ${c.busbwGBs.toFixed(2)} GB/s (${c.algorithm}) vs 1 GB/s: **${c.busbwGBs >= 1 ? 'met' : 'not met'}**${ceiling}`);
  }
  return out;
}

function markdown(result: { command: string; started: string; machine: { cpu: string; cores: number; node: string }; loadavgBefore: number | undefined; loadavgAfter: number | undefined; idleBefore: string; idleAfter: string; memcpyGBs: number; socketPairGBs: number | undefined; plan: BenchPlan }, runs: { transport: string; ranks: number; report: RankReport; fit: { alpha: number; beta: number } | undefined }[]): string {
  const rows = runs.flatMap((r) => r.report.rows);
  const lines: string[] = [];
  lines.push(`# Communication benchmark`, '');
  lines.push(`Command: \`${result.command}\`, started ${result.started}.`);
  lines.push(`Machine: ${result.machine.cpu}, ${result.machine.cores} cores, Node ${result.machine.node}; load average ${result.loadavgBefore ?? '?'} before, ${result.loadavgAfter ?? '?'} after (${result.idleBefore} / ${result.idleAfter}).`);
  lines.push(`memcpy bandwidth (64 MB TypedArray.set, one thread, best of 7): **${result.memcpyGBs.toFixed(2)} GB/s**, the physical limit on one host.`);
  lines.push(`Sizes: ${result.plan.sizes.map(human).join(', ')}; sizes above ${human(result.plan.maxSizeOtherCollectives)} only for allReduce. Each case: back-to-back calls between barriers for at least ${result.plan.minIterations} calls / ${result.plan.secondsPerCase} s. Data is float32; the thread transport uses SharedArrayBuffer-backed arrays (zero-copy path).`);
  lines.push(`rank 0 CPU = the CPU time of rank 0's thread per call (Linux /proc, 10 ms ticks over the timed calls): its busy time. Where it is well below the wall time, the rank waited, for its peer or, on a busy machine, for a core; on 2 ranks with a core each the wall time could approach it.`);
  lines.push(`busbw = algbw x factor (nccl-tests): all-reduce 2(n-1)/n; reduce-scatter, all-gather, all-to-all, scatter, gather (n-1)/n; broadcast, reduce 1. For the gather family S is the total size.`, '');
  lines.push('## Targets (issue 7)', '', ...targets(rows, result.memcpyGBs, result.socketPairGBs), '');
  lines.push('## Fitted α and β (ping-pong between ranks 0 and 1, least squares over 8 B..16 MB)', '');
  lines.push('| transport | ranks | α (µs) | 1/β (GB/s) | at start-up: α (µs) | 1/β (GB/s) | γ (GB/s) |', '| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of runs) {
    const cm = r.report.costModel;
    lines.push(`| ${r.transport} | ${r.ranks} | ${r.fit ? (r.fit.alpha * 1e6).toFixed(1) : '-'} | ${r.fit ? (1 / r.fit.beta / 1e9).toFixed(2) : '-'} | ${(cm.alpha * 1e6).toFixed(1)} | ${(1 / cm.beta / 1e9).toFixed(2)} | ${(1 / cm.gamma / 1e9).toFixed(2)} |`);
  }
  lines.push('');
  for (const r of runs) {
    lines.push(`## ${r.transport}, ${r.ranks} ranks`, '');
    lines.push('| collective | algorithm | size | time (µs) | algbw (GB/s) | busbw (GB/s) | model (µs) | rank 0 CPU (µs) | |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const row of r.report.rows) {
      const peers = r.report.rows.filter((x) => x.collective === row.collective && x.bytes === row.bytes);
      const fastest = peers.every((x) => x.seconds >= row.seconds);
      const auto = row.collective === 'barrier' ? undefined : chooseAlgorithm(row.collective, row.ranks, row.bytes, r.report.costModel);
      const marks = [fastest && peers.length > 1 ? 'fastest' : '', auto === row.algorithm ? 'auto' : ''].filter(Boolean).join(', ');
      lines.push(`| ${row.collective} | ${row.algorithm} | ${human(row.bytes)} | ${(row.seconds * 1e6).toFixed(1)} | ${row.algbwGBs.toFixed(3)} | ${row.busbwGBs.toFixed(3)} | ${(row.predictedSeconds * 1e6).toFixed(1)} | ${row.cpuSecondsRank0 === undefined ? '-' : (row.cpuSecondsRank0 * 1e6).toFixed(0)} | ${marks} |`);
    }
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

await main();
