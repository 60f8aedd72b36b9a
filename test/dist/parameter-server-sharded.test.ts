// The parameter server with its parameters sharded over several server ranks, and server
// checkpoints: bsp against single-process training on whole batches, ssp's bound and asp with a
// slow worker, a crash and a resume that lose nothing, and clear errors for bad layouts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runThreadRanks } from '../../src/dist/index.js';
import type { PsArgs, PsResult } from './fixtures/ps-ranks.js';
import { base, maxDifference, trainReference } from './data-parallel-reference.js';

const psModule = new URL('./fixtures/ps-ranks.ts', import.meta.url);
const run = (worldSize: number, args: PsArgs) => runThreadRanks<PsArgs, PsResult>({ worldSize, module: psModule, exportName: 'runParameterServer', args });

/** Each server's range of the reference's flat parameter vector against the server's own model. */
function checkServerRange(server: PsResult, reference: number[][]): void {
  const flat = (params: number[][]) => params.flat();
  const { start, count } = server.shard!;
  const mine = flat(server.params).slice(start, start + count), theirs = flat(reference).slice(start, start + count);
  assert.ok(maxDifference([mine], [theirs]) < 1e-12, `server range [${start}, ${start + count})`);
}

// The model has 163 trainable elements (6·16 + 16 + 16·3 + 3): neither 2 nor 3 divides it, and
// the cuts fall inside the first weight matrix (96 elements).
for (const [servers, optimizer, shards] of [[2, 'sgd', [82, 81]], [3, 'adam', [55, 54, 54]]] as const) {
  test(`parameter server, bsp, ${servers} servers, 2 workers, ${optimizer}: the steps of one float64 process; uneven shards`, { timeout: 60_000 }, async () => {
    const args: PsArgs = { ...base, optimizer, mode: 'bsp', servers, slowWorkerMs: 2 };
    const ranks = await run(servers + 2, args);
    const reference = trainReference(args);
    const serverRanks = ranks.slice(0, servers), workers = ranks.slice(servers);
    assert.deepEqual(serverRanks.map((s) => s.shard!.count), shards);
    assert.deepEqual(serverRanks.map((s) => s.shard!.start), shards.map((_, k) => shards.slice(0, k).reduce((a, b) => a + b, 0)));
    for (const s of serverRanks) {
      assert.equal(s.updates, args.steps, 'each server applies one update per step');
      checkServerRange(s, reference);
    }
    for (const w of workers) {
      assert.ok(maxDifference(w.params, reference) < 1e-12);
      w.pulls.forEach((p, i) => { assert.equal(p.clock, p.slowestClock, 'bsp: lock step'); assert.equal(p.serverVersion, i + 1); });
    }
  });
}

for (const [mode, staleness] of [['ssp', 2], ['asp', undefined]] as const) {
  test(`parameter server, ${mode}, 2 servers: every gradient applied once by each server; staleness ${staleness ?? 'unbounded'}`, { timeout: 60_000 }, async () => {
    const args: PsArgs = { ...base, steps: 16, mode, staleness, servers: 2, slowWorkerMs: 15 };
    const [s0, s1, ...workers] = await run(4, args);
    for (const s of [s0!, s1!]) assert.equal(s.updates, workers.length * args.steps, 'one update per pushed gradient');
    const ahead = Math.max(...workers.flatMap((w) => w.pulls.map((p) => p.clock - p.slowestClock)));
    if (staleness !== undefined) assert.equal(ahead, staleness, `the fast worker runs up to the bound ${staleness} and no further`);
    else assert.ok(ahead > 2, `with a slow worker, asp lets the fast one run ahead (it ran ${ahead} ahead)`);
  });
}

test('parameter server checkpoint, bsp, Adam, 2 servers: a crash after 5 steps, resumed from the save at step 4, ends bit for bit where an uninterrupted run does', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-ps-'));
  try {
    const path = join(dir, 'ps-{server}.safetensors');
    const args: PsArgs = { ...base, optimizer: 'adam', mode: 'bsp', servers: 2 };
    const whole = await run(4, args);
    const crashed = await run(4, { ...args, checkpoint: { path, every: 2 }, crashAfter: 5 });
    for (const s of crashed.slice(0, 2)) assert.match(s.error!, /lost|closed/, 'the servers see the workers go');
    const resumed = await run(4, { ...args, checkpoint: { path, every: 2 }, resumeFrom: path });
    for (const w of resumed.slice(2)) {
      assert.equal(w.firstClock, 4, 'the workers go on from the last save');
      assert.deepEqual(w.params, whole[2]!.params, 'bit for bit');
    }
    resumed.slice(0, 2).forEach((s, k) => {
      assert.equal(s.updates, args.steps);
      const range = (r: PsResult) => r.params.flat().slice(s.shard!.start, s.shard!.start + s.shard!.count);
      assert.deepEqual(range(s), range(whole[k]!), 'each server\'s range, bit for bit');
    });
    assert.ok(maxDifference(resumed[2]!.params, trainReference(args)) < 1e-12);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('parameter server: clear errors for bad servers, checkpoint paths and layouts, on every rank', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-ps-'));
  try {
    const args: PsArgs = { ...base, mode: 'bsp', checkpoint: { path: join(dir, 'ps-{server}.safetensors') } };
    const ranks = await runThreadRanks<PsArgs, Record<string, string>>({ worldSize: 4, module: psModule, exportName: 'psMisuse', args });
    ranks.forEach((m, rank) => {
      assert.match(m.noServers!, /TesseraError: ParameterServer: servers must be an integer from 1 to 3 .* got 0/);
      assert.match(m.allServers!, /servers must be an integer from 1 to 3 \(the group's 4 ranks less at least one worker\), got 4/);
      assert.match(m.fractionalServers!, /got 1\.5/);
      assert.match(m.sharedFile!, /with 2 servers, checkpoint.path must contain '\{server\}'/);
      assert.match(m.every!, /checkpoint.every must be a positive integer .* got 0/);
      assert.match(m.missingDir!, rank < 2 ? /could not write checkpoint.path .*the directory .*-missing does not exist; create it first/ : /servers 0, 1 could not write checkpoint.path ".*-missing\/ps-\{server\}\.safetensors"; their ranks say why/);
      if (rank < 2) {
        assert.match(m.otherMode!, new RegExp(`cannot resume server ${rank} from .*another layout \\(mode bsp, now ssp; staleness 0, now 2\\)`));
        assert.match(m.otherServers!, /another layout \(servers 2, now 3; workers 2, now 1\)/);
        assert.match(m.otherModel!, /parameter shapes \[\[16, 6\], \[16\], \[3, 16\], \[3\]\], now \[\[16, 6\], \[16\], \[16\], \[16\], \[3, 16\], \[3\]\]/);
        assert.match(m.otherOptimizer!, /holds the state of SGD, but makeOptimizer built RMSprop/);
      } else {
        assert.match(m.otherMode!, /servers 0, 1 could not resume from resumeFrom/);
        assert.match(m.otherModel!, /servers 0, 1 could not resume/);
      }
    });
    // With 3 servers, rank 2 serves too and has no file of its own; the one worker hears of all three.
    assert.match(ranks[2]!.otherServers!, /cannot resume server 2 from ".*ps-2\.safetensors": loadFile: .* does not exist/);
    assert.match(ranks[3]!.otherServers!, /servers 0, 1, 2 could not resume from resumeFrom ".*ps-\{server\}\.safetensors"; their ranks say why/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
