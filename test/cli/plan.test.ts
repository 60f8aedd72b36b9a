import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as planRun } from '../../src/cli/plan.js';
import { run as adviseRun } from '../../src/cli/advise.js';
import { captureOutput as capture } from '../helpers/capture.js';

test('tessera plan: ranked table with conventions; --json parses; --html writes a report with the Gantt chart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-plan-'));
  const html = join(dir, 'r.html');
  const text = await capture(() => planRun(['--model', 'gpt3-175b', '--cluster', '16x8xA100', '--batch', '512', '--top', '3', '--html', html]));
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /conventions: 16 B\/param/);
  assert.match(text.out, /#\s+DP\s+TP\s+PP/);
  assert.match(text.out, /memory per device/);
  const report = readFileSync(html, 'utf8');
  assert.ok(report.includes('Ranked configurations') && report.includes('<svg') && report.includes('Pipeline schedule'));
  const json = await capture(() => planRun(['--model', 'gpt3-1.3b', '--cluster', '1x8xA100', '--json', '--top', '2']));
  const parsed = JSON.parse(json.out) as { ranked: unknown[]; conventions: { bytesPerParam: number } };
  assert.equal(parsed.ranked.length, 2);
  assert.equal(parsed.conventions.bytesPerParam, 16);
});

test('tessera plan pipeline / memory / comm / mfu / shard subcommands', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-plan-'));
  const svg = join(dir, 'g.svg');
  const p = await capture(() => planRun(['pipeline', '--schedule', '1f1b', '--stages', '4', '--microbatches', '8', '--svg', svg]));
  assert.equal(p.code, 0, p.err);
  assert.match(p.out, /bubble 27\.3% of total time, 37\.5% of ideal time/);
  assert.ok(readFileSync(svg, 'utf8').startsWith('<svg'));
  const mem = await capture(() => planRun(['memory', '--model', 'megatron-7.5b', '--dp', '64', '--zero', '3', '--recompute', 'full', '--json']));
  const mj = JSON.parse(mem.out) as { memory: { weights: number } };
  assert.ok(mj.memory.weights > 0);
  const comm = await capture(() => planRun(['comm', '--op', 'all-reduce', '--bytes', '1e9', '--ranks', '8', '--link', 'nvlink4']));
  assert.match(comm.out, /ring.*best|best/);
  const mfu = await capture(() => planRun(['mfu', '--model', 'palm-540b', '--cluster', '1536x4xTPUv4', '--tokens-per-second', '238300', '--flops', 'palm-6n']));
  assert.match(mfu.out, /MFU 46\.2%/);
  const shard = await capture(() => planRun(['shard', '--model', 'gpt3-1.3b', '--tp', '4']));
  assert.match(shard.out, /RS0 = RR x RS0/);
});

test('user errors say what was wrong', async () => {
  const bad = await capture(() => planRun(['--model', 'gpt-9', '--cluster', '8xA100']));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /unknown model 'gpt-9'. Known models: gpt3-125m/);
  const bad2 = await capture(() => planRun(['pipeline', '--schedule', 'interleaved-1f1b', '--stages', '4', '--microbatches', '6']));
  assert.match(bad2.err, /multiple of stages/);
  const bad3 = await capture(() => planRun(['memory', '--model', 'gpt3-1.3b', '--recompute', 'some']));
  assert.match(bad3.err, /--recompute must be one of none, selective, full/);
});

test('tessera advise explains each step', async () => {
  const r = await capture(() => adviseRun(['--model', 'llama2-7b', '--cluster', '1x8xH100']));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /1\. Does it fit on one device\? no/);
  assert.match(r.out, /recommendation:/);
});

test('tessera plan for an MoE model: --ep in memory, an EP column and the all-to-all volume in search, comm --op all-to-all', async () => {
  const mem = await capture(() => planRun(['memory', '--model', 'mixtral-8x7b', '--cluster', '1x8xH100', '--dp', '8', '--ep', '8', '--zero', '1']));
  assert.equal(mem.code, 0, mem.err);
  assert.match(mem.out, /config {3}DP 8, TP 1, PP 1, EP 8,/);
  assert.match(mem.out, /experts: 1 of 8 per MoE layer on each device \(EP 8\); 5\.637 B of its 7\.243 B parameters are experts'/);
  const bad = await capture(() => planRun(['memory', '--model', 'mixtral-8x7b', '--cluster', '1x8xH100', '--dp', '8', '--ep', '3']));
  assert.match(bad.out, /warning: this configuration cannot run .*8 experts do not split over EP 3/);
  const search = await capture(() => planRun(['--model', 'mixtral-8x7b', '--cluster', '8x8xH100', '--batch', '1024', '--top', '3']));
  assert.equal(search.code, 0, search.err);
  assert.match(search.out, /#\s+DP\s+TP\s+PP\s+EP\s+v/);
  assert.match(search.out, /expertParallelComm/);
  assert.match(search.out, /EP all-to-all [\d.]+ GB/);
  const comm = await capture(() => planRun(['comm', '--op', 'all-to-all', '--bytes', '1e9', '--ranks', '8', '--link', 'nvlink4']));
  assert.match(comm.out, /pairwise.*best/);
  assert.match(comm.out, /bruck/);
});

test('tessera plan and advise take the communication overlap flags: the best step gets shorter, the hidden seconds are named by kind, bad values are refused', async () => {
  const base = ['--model', 'gpt3-175b', '--cluster', '128x8xA100', '--batch', '1536', '--top', '1', '--json'];
  const stepOf = (out: string): { seconds: number; hiddenCommSeconds: number; hiddenCommByKind: Record<string, number> } =>
    (JSON.parse(out) as { ranked: { step: { seconds: number; hiddenCommSeconds: number; hiddenCommByKind: Record<string, number> } }[] }).ranked[0]!.step;
  const plain = await capture(() => planRun(base));
  assert.equal(plain.code, 0, plain.err);
  const overlapped = await capture(() => planRun([...base, '--tp-comm-overlap', '--overlap-p2p-comm', '--overlap-grad-reduce']));
  assert.equal(overlapped.code, 0, overlapped.err);
  const [a, b] = [stepOf(plain.out), stepOf(overlapped.out)];
  assert.equal(a.hiddenCommSeconds, 0);
  assert.ok(b.seconds < a.seconds, `${b.seconds} s with the overlaps, ${a.seconds} s without`);
  assert.ok(b.hiddenCommByKind.tensorParallel! > 0, 'TP communication hidden');
  const text = await capture(() => planRun(['--model', 'gpt3-175b', '--cluster', '128x8xA100', '--batch', '1536', '--top', '1', '--tp-comm-overlap', '--overlap-slowdown', '0.05']));
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /communication hidden under compute: .*TP /);
  assert.match(text.out, /GEMM slowdown from overlap/);
  const bad = await capture(() => planRun([...base, '--overlap-slowdown', '-1']));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /overlap-slowdown/);
  const advise = await capture(() => adviseRun(['--model', 'llama2-7b', '--cluster', '1x8xH100', '--tp-comm-overlap']));
  assert.equal(advise.code, 0, advise.err);
});
