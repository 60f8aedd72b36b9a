// The ONNX backend node tests through tessera's ONNX loader on cpu and wasm (webgpu: see below), in two sets: ONNX
// 1.12's (test/fixtures/onnx/onnx-node-tests-1.12.tgz, opsets up to 17) and a newer upstream
// snapshot (onnx-node-tests-upstream-928f941.tgz, opsets up to 28). Each test listed in the set's
// expected file (conformance-expected.txt, conformance-expected-upstream.txt) must pass
// (outputs within ONNX's own tolerance, rtol 1e-3 / atol 1e-7, integers exact), and every other
// test must fail cleanly: a TesseraError naming the op or the unsupported feature, never a crash
// (TypeError, RangeError, ...) deep inside.
//   node --import tsx scripts/onnx-conformance.ts [--set=upstream] --verbose   lists what fails and why;
//   ... --write                                                                  updates the expected list.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { forEachBackend } from '../helpers/backends.js';
import { readConformanceCases, runConformanceCase } from './conformance-data.js';

const SETS = [
  { name: 'ONNX 1.12', archive: 'test/fixtures/onnx/onnx-node-tests-1.12.tgz', expected: 'test/onnx/conformance-expected.txt', count: 932 },
  { name: 'ONNX upstream 928f941', archive: 'test/fixtures/onnx/onnx-node-tests-upstream-928f941.tgz', expected: 'test/onnx/conformance-expected-upstream.txt', count: 1802 },
];

for (const set of SETS) {
  const cases = readConformanceCases(set.archive);
  const expected = new Set(readFileSync(set.expected, 'utf8').split('\n').filter((l) => l.trim() !== ''));

  it(`${set.name}: the expected list names tests that exist`, () => {
    const names = new Set(cases.map((c) => c.name));
    assert.deepEqual([...expected].filter((n) => !names.has(n)), []);
    assert.equal(cases.length, set.count);
  });

  forEachBackend(`${set.name} backend node tests`, (backend) => {
    it('pass where expected, fail cleanly elsewhere', () => {
      const failures: string[] = [];
      const crashes: string[] = [];
      let passed = 0;
      for (const c of cases) {
        const outcome = runConformanceCase(c);
        if (outcome.status === 'pass') passed++;
        else if (expected.has(c.name)) failures.push(`${c.name}: ${outcome.status}: ${outcome.detail.split('\n')[0]}`);
        if (outcome.status === 'crash') crashes.push(`${c.name}: ${outcome.detail}`);
      }
      console.log(`# ${set.name} on ${backend}: ${passed} of ${cases.length} pass (${expected.size} required)`);
      assert.deepEqual(failures, [], `expected to pass but did not on ${backend}`);
      assert.deepEqual(crashes, [], `failed with an error that is not a TesseraError on ${backend}`);
    });
  }, { skipWebgpu: 'the ONNX operators are compositions of tessera ops, whose GPU kernels the op suites check; 2,734 small models take ~2.5 minutes on SwiftShader' });
}
