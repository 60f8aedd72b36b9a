// `tessera train` under `tessera run`: data-parallel training over TCP ranks (plain, or with the
// optimizer state sharded by --zero) must take the steps of one process training on whole
// batches, even when a batch's rows do not split evenly; checkpoints move between the two.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCheckpoint } from '../../src/train/index.js';

const cli = fileURLToPath(new URL('../dist/fixtures/cli.ts', import.meta.url));

/** The largest difference between two checkpoints' model parameters. */
async function checkpointDifference(a: string, b: string): Promise<number> {
  const x = await readCheckpoint(a), y = await readCheckpoint(b);
  let worst = 0;
  for (const [name, t] of x.model) {
    const u = y.model.get(name)!.data(), v = t.data();
    for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i]! - u[i]!));
  }
  return worst;
}

function tessera(args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], {
    encoding: 'utf8', timeout: 110_000, env: { ...process.env, TESSERA_THREADS: '1' },
  });
  assert.equal(r.status, 0, `tessera ${args.join(' ')} failed:\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

test('tessera train on 3 ranks (50-row batches: 16/17/17 rows each) = one process on whole batches', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-ddp-'));
  try {
    const recipe = ['train', 'mnist-mlp', '--limit', '500', '--batch-size', '50', '--epochs', '1', '--backend', 'cpu'];
    const parallel = tessera(['run', '--nproc-per-node', '3', cli, ...recipe, '--out', join(dir, 'parallel')]);
    tessera([...recipe, '--out', join(dir, 'single')]);
    // Rank 0 reports and writes the checkpoint; the other ranks stay quiet.
    assert.match(parallel.stdout, /^\[rank 0\] .*data-parallel over 3 ranks \(16-17 rows each per batch\)/m);
    assert.doesNotMatch(parallel.stdout + parallel.stderr, /^\[rank [12]\]/m);
    assert.deepEqual(readdirSync(join(dir, 'parallel')), ['checkpoint.safetensors']);
    const a = await readCheckpoint(join(dir, 'parallel')), b = await readCheckpoint(join(dir, 'single'));
    assert.equal(a.step, 10);
    assert.equal(b.step, 10);
    let worst = 0;
    for (const [name, x] of a.model) {
      const y = b.model.get(name)!.data(), xs = x.data();
      for (let i = 0; i < xs.length; i++) worst = Math.max(worst, Math.abs(xs[i]! - y[i]!));
    }
    // float32 rounding of sums taken in another order (weighting the ranks equally instead of by
    // their rows would differ by ~1e-2 here).
    assert.ok(worst < 1e-5, `largest parameter difference ${worst}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tessera train --zero 2 on 3 ranks = one process; a ZeRO checkpoint resumes in one process and the reverse', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-zero-'));
  try {
    const recipe = ['train', 'mnist-mlp', '--limit', '500', '--batch-size', '50', '--epochs', '1', '--backend', 'cpu'];
    tessera([...recipe, '--out', join(dir, 'single')]);
    const zero = tessera(['run', '--nproc-per-node', '3', cli, ...recipe, '--zero', '2', '--out', join(dir, 'zero')]);
    assert.match(zero.stdout, /data-parallel over 3 ranks \(16-17 rows each per batch; ZeRO-2: optimizer state and gradients sharded\)/);
    assert.ok(await checkpointDifference(join(dir, 'zero'), join(dir, 'single')) < 1e-5);
    // Stopped after 4 steps under ZeRO on 2 ranks, finished in one process (the checkpoint holds the whole Adam state) ...
    tessera(['run', '--nproc-per-node', '2', cli, ...recipe, '--zero', '2', '--stop-after', '4', '--out', join(dir, 'half')]);
    tessera([...recipe, '--resume', join(dir, 'half'), '--out', join(dir, 'half')]);
    assert.ok(await checkpointDifference(join(dir, 'half'), join(dir, 'single')) < 1e-5);
    // ... and stopped in one process, finished under ZeRO on 3 ranks.
    tessera([...recipe, '--stop-after', '6', '--out', join(dir, 'other')]);
    tessera(['run', '--nproc-per-node', '3', cli, ...recipe, '--zero', '1', '--resume', join(dir, 'other'), '--out', join(dir, 'other')]);
    assert.ok(await checkpointDifference(join(dir, 'other'), join(dir, 'single')) < 1e-5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tessera train --zero needs tessera run and a stage of 1 or 2', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'train', 'mnist-mlp', '--zero', '2', '--limit', '10'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--zero shards the optimizer over data-parallel ranks: start the run with `tessera run --nproc-per-node N`/);
  const bad = spawnSync(process.execPath, ['--import', 'tsx', cli, 'train', 'mnist-mlp', '--zero', '3'], { encoding: 'utf8', timeout: 60_000 });
  assert.match(bad.stderr, /--zero must be 1 or 2, got 3/);
});
