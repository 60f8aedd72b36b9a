// The ONNX backend node tests (ONNX 1.12's, test/fixtures/onnx/onnx-node-tests-1.12.tgz) through
// tessera's ONNX loader on every backend: each test listed in conformance-expected.txt must pass
// (outputs within ONNX's own tolerance, rtol 1e-3 / atol 1e-7, integers exact), and every other
// test must fail cleanly: a TesseraError naming the op or the unsupported feature, never a crash
// (TypeError, RangeError, ...) deep inside.
//   node --import tsx scripts/onnx-conformance.ts --verbose   lists what fails and why;
//   ... --write                                                 updates the expected list.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { forEachBackend } from '../helpers/backends.js';
import { readConformanceCases, runConformanceCase } from './conformance-data.js';

const cases = readConformanceCases('test/fixtures/onnx/onnx-node-tests-1.12.tgz');
const expected = new Set(readFileSync('test/onnx/conformance-expected.txt', 'utf8').split('\n').filter((l) => l.trim() !== ''));

it('the expected list names tests that exist', () => {
  const names = new Set(cases.map((c) => c.name));
  assert.deepEqual([...expected].filter((n) => !names.has(n)), []);
  assert.equal(cases.length, 932);
});

forEachBackend('ONNX backend node tests', (backend) => {
  it(`pass where expected, fail cleanly elsewhere`, () => {
    const failures: string[] = [];
    const crashes: string[] = [];
    let passed = 0;
    for (const c of cases) {
      const outcome = runConformanceCase(c);
      if (outcome.status === 'pass') passed++;
      else if (expected.has(c.name)) failures.push(`${c.name}: ${outcome.status}: ${outcome.detail.split('\n')[0]}`);
      if (outcome.status === 'crash') crashes.push(`${c.name}: ${outcome.detail}`);
    }
    console.log(`# onnx conformance on ${backend}: ${passed} of ${cases.length} pass (${expected.size} required)`);
    assert.deepEqual(failures, [], `expected to pass but did not on ${backend}`);
    assert.deepEqual(crashes, [], `failed with an error that is not a TesseraError on ${backend}`);
  });
});
