// Multi-host TCP for real: two network namespaces joined by a veth pair stand in for two hosts
// (each sees only its own loopback and its end of the link). One node per namespace runs
// `tessera run --nnodes 2`; then the link is cut mid all-reduce and both sides must fail with
// an error naming the other rank. Needs root (CAP_NET_ADMIN) and iproute2; skipped, with the
// reason, where the system forbids creating namespaces.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('./fixtures/cli.ts', import.meta.url));
const matrixScript = fileURLToPath(new URL('./fixtures/tcp-matrix.ts', import.meta.url));
const faultScript = fileURLToPath(new URL('./fixtures/fault-tcp.ts', import.meta.url));

const id = process.pid % 10000;
const nsA = `tsr${id}a`;
const nsB = `tsr${id}b`;
const vethA = `tsv${id}a`;
const vethB = `tsv${id}b`;
const subnet = `10.231.${id % 250}`;
const addrA = `${subnet}.1`;
const addrB = `${subnet}.2`;

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

function whyUnavailable(): string | undefined {
  const probe = `tsrprobe${id}`;
  const r = ip('netns', 'add', probe);
  if (!r.ok) return `cannot create network namespaces here (ip netns add: ${r.err || 'ip not found'}); needs root and iproute2`;
  ip('netns', 'del', probe);
  return undefined;
}

const skip = whyUnavailable();

before(() => {
  if (skip) return;
  const steps: string[][] = [
    ['netns', 'add', nsA],
    ['netns', 'add', nsB],
    ['link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB],
    ['link', 'set', vethA, 'netns', nsA],
    ['link', 'set', vethB, 'netns', nsB],
    ['-n', nsA, 'addr', 'add', `${addrA}/24`, 'dev', vethA],
    ['-n', nsB, 'addr', 'add', `${addrB}/24`, 'dev', vethB],
    ['-n', nsA, 'link', 'set', vethA, 'up'],
    ['-n', nsB, 'link', 'set', vethB, 'up'],
    ['-n', nsA, 'link', 'set', 'lo', 'up'],
    ['-n', nsB, 'link', 'set', 'lo', 'up'],
  ];
  for (const s of steps) {
    const r = ip(...s);
    assert.ok(r.ok, `ip ${s.join(' ')} failed: ${r.err}`);
  }
});

after(() => {
  if (skip) return;
  ip('netns', 'del', nsA);
  ip('netns', 'del', nsB);
});

interface NodeRun {
  stdout: string;
  stderr: string;
  code: number | null;
}

function startNode(ns: string, nodeRank: number, script: string, env: Record<string, string>, onLine?: (line: string) => void): Promise<NodeRun> {
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, '--import', 'tsx', cli, 'run', '--nnodes', '2', '--node-rank', String(nodeRank), '--nproc-per-node', '1', '--master-addr', addrA, '--master-port', '29400', script],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) onLine?.(l);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ stdout, stderr, code })));
}

test('two hosts (network namespaces) run every collective over TCP', { skip, timeout: 240_000 }, async () => {
  // The full matrix runs over loopback TCP elsewhere; here float32 suffices to show the hosts talk.
  const env = { TESSERA_SECRET: randomBytes(16).toString('hex'), MATRIX_LENGTHS: '[13]', MATRIX_DTYPES: '["float32"]' };
  const [a, b] = await Promise.all([startNode(nsA, 0, matrixScript, env), startNode(nsB, 1, matrixScript, env)]);
  for (const [run, rank] of [[a, 0], [b, 1]] as const) {
    assert.equal(run.code, 0, `node ${rank} failed:\n${run.stderr.slice(-3000)}`);
    const m = new RegExp(`^\\[rank ${rank}\\] RESULT (.*)$`, 'm').exec(run.stdout);
    assert.ok(m, `no result from rank ${rank}:\n${run.stdout.slice(-2000)}`);
    const res = JSON.parse(m[1]!) as { size: number; cases: number; failures: string[] };
    assert.equal(res.size, 2);
    assert.deepEqual(res.failures.slice(0, 20), []);
    assert.ok(res.cases >= 80, `only ${res.cases} cases`);
  }
});

test('cutting the link between the hosts mid all-reduce fails both sides naming the other rank', { skip, timeout: 120_000 }, async () => {
  const env = { TESSERA_SECRET: randomBytes(16).toString('hex'), FAULT_MODE: 'loop', FAULT_TIMEOUT_MS: '5000' };
  let started = 0;
  let cut = false;
  const onLine = (line: string) => {
    if (/\] ITER 3$/.test(line) && ++started === 2 && !cut) {
      cut = true;
      const r = ip('-n', nsA, 'link', 'set', vethA, 'down');
      assert.ok(r.ok, r.err);
    }
  };
  const [a, b] = await Promise.all([startNode(nsA, 0, faultScript, env, onLine), startNode(nsB, 1, faultScript, env, onLine)]);
  ip('-n', nsA, 'link', 'set', vethA, 'up');
  assert.ok(cut, 'the ranks never got going');
  for (const [run, rank] of [[a, 0], [b, 1]] as const) {
    const m = new RegExp(`^\\[rank ${rank}\\] FAILED (.*)$`, 'm').exec(run.stdout);
    assert.ok(m, `rank ${rank} did not fail:\n${run.stdout.slice(-1500)}\n${run.stderr.slice(-1500)}`);
    const f = JSON.parse(m[1]!) as { name: string; waitingFor?: number; lostRank?: number; message: string };
    assert.ok(f.name === 'DistTimeoutError' || f.name === 'PeerLostError', f.message);
    assert.ok(f.waitingFor === 1 - rank || f.lostRank === 1 - rank, f.message);
  }
});
