// `tessera train` under `tessera run`: data-parallel training over TCP ranks must take the steps
// of one process training on whole batches, even when a batch's rows do not split evenly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCheckpoint } from '../../src/train/index.js';

const cli = fileURLToPath(new URL('../dist/fixtures/cli.ts', import.meta.url));

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
    assert.match(parallel.stdout, /^\[rank 0\] .*data-parallel over 3 ranks/m);
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
