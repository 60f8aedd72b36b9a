// `tessera run`: argument parsing, the environment it gives each rank, prefixed output, and
// stopping the job when one rank fails.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseRunArgs } from '../../src/cli/run.js';

const cli = fileURLToPath(new URL('./fixtures/cli.ts', import.meta.url));
const failing = fileURLToPath(new URL('./fixtures/launcher-fail.ts', import.meta.url));

test('parseRunArgs reads torchrun-style options and keeps the script arguments', () => {
  const o = parseRunArgs(['--nproc-per-node', '4', '--nnodes=2', '--node-rank', '1', '--master-addr', '10.0.0.1', '--master-port', '29501', 'train.js', '--lr', '0.1']);
  assert.equal(o.nprocPerNode, 4);
  assert.equal(o.nnodes, 2);
  assert.equal(o.nodeRank, 1);
  assert.equal(o.masterAddr, '10.0.0.1');
  assert.equal(o.masterPort, 29501);
  assert.equal(o.script, 'train.js');
  assert.deepEqual(o.scriptArgs, ['--lr', '0.1']);
  assert.throws(() => parseRunArgs(['--nproc-per-node', 'zero', 'x.js']), /--nproc-per-node needs an integer ≥ 1, got "zero"/);
  assert.throws(() => parseRunArgs(['--nnodes', '2', '--node-rank', '2', 'x.js']), /--node-rank 2 must be below --nnodes 2/);
  assert.throws(() => parseRunArgs(['--frobnicate', '1', 'x.js']), /unknown option --frobnicate/);
  assert.throws(() => parseRunArgs(['--nproc-per-node', '2']), /no script given/);
});

test('when one rank fails, the launcher stops the others and exits non-zero with its error', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-launch-'));
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'run', '--nproc-per-node', '3', failing], {
    encoding: 'utf8',
    timeout: 55_000,
    env: { ...process.env, LAUNCH_TEST_DIR: dir },
  });
  rmSync(dir, { recursive: true, force: true });
  assert.notEqual(r.status, null, 'the launcher hung');
  assert.notEqual(r.status, 0);
  // Every line a rank printed carries its prefix, and the environment was set.
  for (const rank of [0, 1, 2]) {
    assert.match(r.stdout, new RegExp(`^\\[rank ${rank}\\] started rank ${rank} of 3 local ${rank} secret set$`, 'm'));
  }
  assert.match(r.stderr, /^\[rank 1\] .*Error: boom from rank 1/m);
  assert.match(r.stderr, /tessera run: rank 1 exited with code 1; stopping the other ranks/);
  assert.match(r.stderr, /the job failed because rank 1 exited with code 1; its last error output:[\s\S]*boom from rank 1/);
});

test('several nodes without a shared secret are refused with advice', () => {
  const env = { ...process.env };
  delete env['TESSERA_SECRET'];
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'run', '--nnodes', '2', '--node-rank', '0', failing], { encoding: 'utf8', env, timeout: 30_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /set TESSERA_SECRET to the same random string on every node/);
});
