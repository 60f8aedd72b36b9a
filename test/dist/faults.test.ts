// Faults: a rank that dies during an all-reduce, a rank that hangs, on both transports. Every
// survivor's pending operation must fail with an error naming the lost rank (a PeerLostError
// for a death, so detected before the timeout, not by it), later operations must fail too, and
// nothing may hang.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnThreadRanks } from '../../src/dist/index.js';
import type { FailureReport, FaultArgs } from './fixtures/fault-ranks.js';

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

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface TcpRank {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first line matching. */
  waitFor(re: RegExp): Promise<string>;
  exited: Promise<number | null>;
}

function startTcpRanks(n: number, env: Record<string, string>): Promise<TcpRank[]> {
  return freePort().then((port) => {
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
