// `--backend NAME` of tessera train/eval/generate (selectBackend): registered backends are selected,
// webgpu is loaded on demand, and a name that is not a backend is refused with the list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { selectBackend, UsageError } from '../../src/train/cli-options.js';

test('selects a registered backend and refuses an unknown one, listing what there is', async () => {
  const before = t.currentBackendName();
  try {
    await selectBackend('cpu');
    assert.equal(t.currentBackendName(), 'cpu');
    await assert.rejects(selectBackend('tpu'), (e: unknown) => e instanceof UsageError && /--backend tpu: no such backend \(available: .*cpu.*wasm/.test(e.message));
    await assert.rejects(selectBackend('../etc'), (e: unknown) => e instanceof UsageError && /no such backend/.test(e.message));
  } finally {
    t.setBackend(before);
  }
});

test('--backend webgpu loads the GPU backend, or says why it could not start', async () => {
  const before = t.currentBackendName();
  try {
    await selectBackend('webgpu');
    assert.equal(t.currentBackendName(), 'webgpu');
    assert.deepEqual(t.tensor([1, 2]).mul(3).toArray(), [3, 6]);
  } catch (e) {
    if (process.env.TESSERA_TEST_WEBGPU === '1') throw e;
    // Without an adapter: the reason, not "no such backend".
    assert.ok(e instanceof UsageError && /--backend webgpu could not start: .*adapter/.test(e.message), String(e));
  } finally {
    t.setBackend(before);
  }
});
