// Runs the ONNX backend node tests through tessera's ONNX loader and reports what passes.
//   node --import tsx scripts/onnx-conformance.ts [--backend=wasm|cpu] [--filter=SUBSTRING] [--verbose] [--write] [--set=1.12|upstream] [--tgz=PATH]
// --set=upstream runs the newer upstream snapshot instead of ONNX 1.12's tests. --write rewrites the
// set's expected list (test/onnx/conformance-expected[-upstream].txt: the tests the suite requires to pass).
import { writeFileSync } from 'node:fs';
import * as t from '../src/index.js';
import { readConformanceCases, runConformanceCase, type Outcome } from '../test/onnx/conformance-data.js';
import { decodeModel } from '../src/onnx/proto.js';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
t.setBackend(args.get('backend') ?? 'wasm');
const filter = args.get('filter');
const upstream = args.get('set') === 'upstream';
const expectedFile = upstream ? 'test/onnx/conformance-expected-upstream.txt' : 'test/onnx/conformance-expected.txt';
const cases = readConformanceCases(args.get('tgz') ?? (upstream ? 'test/fixtures/onnx/onnx-node-tests-upstream-928f941.tgz' : 'test/fixtures/onnx/onnx-node-tests-1.12.tgz')).filter((c) => filter === undefined || c.name.includes(filter));
const results: { name: string; ops: string[]; outcome: Outcome }[] = [];
const started = performance.now();
for (const c of cases) {
  const ops = [...new Set(decodeModel(c.model).graph.nodes.map((n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::` : '') + n.opType))];
  results.push({ name: c.name, ops, outcome: runConformanceCase(c) });
}
const seconds = (performance.now() - started) / 1000;
const count = (s: Outcome['status']) => results.filter((r) => r.outcome.status === s).length;
console.log(`${cases.length} tests in ${seconds.toFixed(1)} s: ${count('pass')} pass, ${count('mismatch')} mismatch, ${count('error')} error, ${count('crash')} crash`);
if (args.has('verbose')) {
  for (const r of results) if (r.outcome.status !== 'pass') console.log(`${r.outcome.status.padEnd(8)} ${r.name}: ${'detail' in r.outcome ? r.outcome.detail.split('\n')[0]!.slice(0, 240) : ''}`);
}
for (const r of results) if (r.outcome.status === 'crash' || r.outcome.status === 'mismatch') console.log(`${r.outcome.status.toUpperCase()} ${r.name}: ${(r.outcome as { detail: string }).detail.slice(0, 400)}`);
if (args.has('write')) {
  writeFileSync(expectedFile, results.filter((r) => r.outcome.status === 'pass').map((r) => r.name).join('\n') + '\n');
  console.log(`wrote ${expectedFile}`);
}
