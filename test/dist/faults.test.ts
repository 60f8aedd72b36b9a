// Faults: a rank that dies during an all-reduce, a rank that hangs, on both transports. Every
// survivor's pending operation must fail with an error naming the lost rank (a PeerLostError
// for a death, so detected before the timeout, not by it), later operations must fail too, and
// nothing may hang.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnThreadRanks } from '../../src/dist/index.js';
import type { FailureReport, FaultArgs } from './fixtures/fault-ranks.js';
import { freePort } from '../helpers/free-port.js';

const faultRanks = new URL('./fixtures/fault-ranks.ts', import.meta.url);
const tcpScript = fileURLToPath(new URL('./fixtures/fault-tcp.ts', import.meta.url));

test('thread: a rank that exits mid all-reduce fails every other rank with PeerLostError naming it', { timeout: 60_000 }, async () => {
  const ranks = await spawnThreadRanks<FaultArgs, FailureReport | undefined>({
    worldSize: 4,
    module: faultRanks,
    exportName: 'dieMidAllReduce',
    args: { victim: 2, timeoutMs: 30_000 },
  });
  const outcomes = await ranks.outcomes;
  assert.equal(outcomes[2]!.ok, false, 'the victim should have exited');
  for (const o of outcomes.filter((x) => x.rank !== 2)) {
    assert.ok(o.ok, `rank ${o.rank} crashed instead of reporting: ${o.ok ? '' : o.error}`);
    const r = o.value!;
    assert.ok(r, `rank ${o.rank} never saw a failure`);
    assert.equal(r.name, 'PeerLostError', `rank ${o.rank}: ${r.message}`);
    assert.equal(r.lostRank, 2);
    assert.match(r.message, /rank 2 was lost/);
    assert.match(r.message, /later: PeerLostError rank 2 was lost/);
  }
});

test('thread: a rank that never joins makes the others time out naming it', { timeout: 60_000 }, async () => {
  const ranks = await spawnThreadRanks<FaultArgs, FailureReport | undefined>({
    worldSize: 3,
    module: faultRanks,
    exportName: 'hangInBroadcast',
    args: { victim: 0, timeoutMs: 1500 },
  });
  const outcomes = await ranks.outcomes;
  for (const o of outcomes.filter((x) => x.rank !== 0)) {
    assert.ok(o.ok && o.value, `rank ${o.rank} did not report a failure`);
    assert.equal(o.value.name, 'DistTimeoutError', o.value.message);
    assert.equal(o.value.waitingFor, 0);
    assert.match(o.value.message, /timed out after 1500 ms waiting for rank 0/);
  }
});


interface TcpRank {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first line matching. */
  waitFor(re: RegExp): Promise<string>;
  exited: Promise<number | null>;
}

function startTcpRanks(n: number, env: Record<string, string>, masterPort?: number): Promise<TcpRank[]> {
  return (masterPort ? Promise.resolve(masterPort) : freePort()).then((port) => {
    const secret = randomBytes(16).toString('hex');
    return Array.from({ length: n }, (_, rank) => {
      const child = spawn(process.execPath, ['--import', 'tsx', tcpScript], {
        env: { ...process.env, ...env, RANK: String(rank), WORLD_SIZE: String(n), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), TESSERA_SECRET: secret },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines: string[] = [];
      const watchers: { re: RegExp; resolve: (l: string) => void }[] = [];
      createInterface({ input: child.stdout! }).on('line', (line) => {
        lines.push(line);
        for (const w of [...watchers]) {
          if (w.re.test(line)) {
            watchers.splice(watchers.indexOf(w), 1);
            w.resolve(line);
          }
        }
      });
      child.stderr!.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString()}`));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      return {
        child,
        lines,
        exited,
        waitFor: (re: RegExp) => {
          const hit = lines.find((l) => re.test(l));
          return hit ? Promise.resolve(hit) : new Promise<string>((resolve) => watchers.push({ re, resolve }));
        },
      };
    });
  });
}

function failureOf(r: TcpRank): { name: string; lostRank?: number; waitingFor?: number; message: string } {
  const line = r.lines.find((l) => l.startsWith('FAILED '));
  assert.ok(line, `no FAILED line; output:\n${r.lines.slice(-10).join('\n')}`);
  return JSON.parse(line.slice('FAILED '.length)) as { name: string; lostRank?: number; waitingFor?: number; message: string };
}

test('tcp: killing a process mid all-reduce fails the others with PeerLostError naming it', { timeout: 120_000 }, async () => {
  const ranks = await startTcpRanks(3, { FAULT_MODE: 'loop', FAULT_TIMEOUT_MS: '60000' });
  try {
    await ranks[2]!.waitFor(/^ITER 3$/);
    ranks[2]!.child.kill('SIGKILL');
    const codes = await Promise.all([ranks[0]!.exited, ranks[1]!.exited]);
    assert.deepEqual(codes, [0, 0]);
    for (const r of ranks.slice(0, 2)) {
      const f = failureOf(r);
      assert.equal(f.name, 'PeerLostError', f.message);
      assert.equal(f.lostRank, 2, f.message);
    }
  } finally {
    for (const r of ranks) r.child.kill('SIGKILL');
  }
});

test('tcp: a hung (stopped) process makes the others time out naming it', { timeout: 120_000 }, async () => {
  const ranks = await startTcpRanks(3, { FAULT_MODE: 'bcast', FAULT_VICTIM: '2', FAULT_TIMEOUT_MS: '4000' });
  try {
    await ranks[2]!.waitFor(/^ITER 2$/);
    ranks[2]!.child.kill('SIGSTOP');
    const codes = await Promise.all([ranks[0]!.exited, ranks[1]!.exited]);
    assert.deepEqual(codes, [0, 0]);
    for (const r of ranks.slice(0, 2)) {
      const f = failureOf(r);
      assert.ok(f.name === 'DistTimeoutError' || f.name === 'PeerLostError', f.message);
      assert.ok(f.waitingFor === 2 || f.lostRank === 2, f.message);
    }
  } finally {
    for (const r of ranks) {
      r.child.kill('SIGCONT');
      r.child.kill('SIGKILL');
    }
  }
});

/** `ss -K` closes a socket from the kernel side, like a middlebox resetting the connection. */
function whyNoSocketKill(): string | undefined {
  if (process.getuid?.() !== 0) return 'closing other processes\' sockets with ss -K needs root (CAP_NET_ADMIN)';
  const r = spawnSync('ss', ['-K', 'dst', '127.0.0.1', 'dport', '=', '1'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `cannot close sockets with ss -K here (${r.error?.message ?? r.stderr.trim()}); needs iproute2's ss and CAP_NET_ADMIN`;
  return undefined;
}

/** [local port, peer port] of established TCP connections owned by `pid`. */
function connectionsOf(pid: number): { local: number; peer: number }[] {
  const r = spawnSync('ss', ['-tnpH', 'state', 'established'], { encoding: 'utf8' });
  const out: { local: number; peer: number }[] = [];
  for (const line of r.stdout.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const m = /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:(\d+)/.exec(line);
    if (m) out.push({ local: Number(m[1]), peer: Number(m[2]) });
  }
  return out;
}

function listeningPortsOf(pid: number): number[] {
  const r = spawnSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => Number(/127\.0\.0\.1:(\d+)/.exec(l)?.[1]))
    .filter((p) => p > 0);
}

test('tcp: cutting the connection between two ranks mid all-reduce fails every rank, nothing hangs', { skip: whyNoSocketKill(), timeout: 120_000 }, async () => {
  const masterPort = await freePort();
  const ranks = await startTcpRanks(3, { FAULT_MODE: 'loop', FAULT_TIMEOUT_MS: '60000' }, masterPort);
  try {
    await Promise.all(ranks.map((r) => r.waitFor(/^ITER 3$/)));
    // Rank 1 connected to rank 0's data port (the one of rank 0's ports that is not the store's).
    const dataPort = listeningPortsOf(ranks[0]!.child.pid!).find((p) => p !== masterPort);
    assert.ok(dataPort, 'could not find the data port of rank 0');
    const link = connectionsOf(ranks[1]!.child.pid!).find((c) => c.peer === dataPort);
    assert.ok(link, 'could not find the connection from rank 1 to rank 0');
    const cut = spawnSync('ss', ['-K', 'src', '127.0.0.1', 'sport', '=', String(link.local), 'dst', '127.0.0.1', 'dport', '=', String(dataPort)], { encoding: 'utf8' });
    assert.equal(cut.status, 0, cut.stderr);
    const codes = await Promise.all(ranks.map((r) => r.exited));
    assert.deepEqual(codes, [0, 0, 0]);
    const f0 = failureOf(ranks[0]!);
    const f1 = failureOf(ranks[1]!);
    const f2 = failureOf(ranks[2]!);
    // Every rank fails at once (no timeout) naming an end of the cut link; which end a rank
    // names depends on whether it noticed the reset itself or heard of it from another rank.
    for (const f of [f0, f1, f2]) {
      assert.equal(f.name, 'PeerLostError', f.message);
      assert.ok(f.lostRank === 0 || f.lostRank === 1, f.message);
    }
  } finally {
    for (const r of ranks) r.child.kill('SIGKILL');
  }
});
