// Every collective x algorithm x dtype x reduction over TCP between processes (2, 3 and 4
// ranks), started by `tessera run` from source, against a sequential reference.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('./fixtures/cli.ts', import.meta.url));
const script = fileURLToPath(new URL('./fixtures/tcp-matrix.ts', import.meta.url));

interface RankResult {
  rank: number;
  size: number;
  transport: string;
  cases: number;
  failures: string[];
}

for (const n of [2, 3, 4]) {
  test(`tcp: all collectives between ${n} processes`, { timeout: 240_000 }, () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'run', '--nproc-per-node', String(n), script], {
      encoding: 'utf8',
      env: { ...process.env, MATRIX_LENGTHS: n === 3 ? '[1,13]' : '[13]' },
      timeout: 230_000,
    });
    assert.equal(r.status, 0, `launcher exited ${r.status}\n${r.stderr.slice(-3000)}`);
    const results: RankResult[] = [];
    for (const line of r.stdout.split('\n')) {
      const m = /^\[rank (\d+)\] RESULT (.*)$/.exec(line);
      if (m) {
        const parsed = JSON.parse(m[2]!) as RankResult;
        assert.equal(parsed.rank, Number(m[1]), 'the launcher prefixed the wrong rank');
        results.push(parsed);
      }
    }
    assert.equal(results.length, n, `expected ${n} RESULT lines, got:\n${r.stdout.slice(-2000)}`);
    for (const res of results) {
      assert.equal(res.transport, 'tcp');
      assert.equal(res.size, n);
      assert.deepEqual(res.failures.slice(0, 20), [], `rank ${res.rank}: ${res.failures.length} mismatches`);
      assert.ok(res.cases >= 200, `rank ${res.rank} ran only ${res.cases} cases`);
    }
  });
}
