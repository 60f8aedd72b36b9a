// `tessera onnx`: the model's operators and inputs, a timed run, the comparison with onnxruntime,
// --json, and usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/onnx.js';
import { encodeModel } from '../../src/onnx/encode.js';
import { ElemType } from '../../src/onnx/proto.js';
import { captureOutput as capture } from '../helpers/capture.js';

const SILERO = 'test/fixtures/onnx/silero_vad_v5.onnx';

test('tessera onnx: Silero VAD, its operators, a timed run and the difference from onnxruntime', async () => {
  const r = await capture(() => run([SILERO, '--shapes', 'input=1x512', '--inputs', 'sr=16000', '--runs', '2', '--compare-ort']));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /producer spox, IR version 8, opsets \{"ai\.onnx":16\}/);
  assert.match(r.out, /LSTM ×4/);
  assert.match(r.out, /input {2}input: FLOAT \[\?, \?\] fed as \[1, 512\]/);
  assert.match(r.out, /tessera \(\w+\): [\d.]+ ms per run/);
  const diff = /largest \|tessera − onnxruntime\| in output: ([\d.e+-]+)/.exec(r.out);
  assert.ok(diff !== null && Number(diff[1]) < 1e-4, r.out);
  const json = await capture(() => run([SILERO, '--shapes', 'input=1x256', '--inputs', 'sr=8000', '--runs', '2', '--jit', '--json']));
  const parsed = JSON.parse(json.out) as { unsupported: string[]; inputs: { name: string; shape: number[] }[]; tesseraMs: number; tesseraJitMs: number; jitTraces: number; jitMaxAbsDiff: number };
  assert.deepEqual(parsed.unsupported, []);
  assert.deepEqual(parsed.inputs.map((i) => i.shape), [[1, 256], [2, 1, 128], []]);
  assert.ok(parsed.tesseraMs > 0 && parsed.tesseraJitMs > 0);
  // --jit: one trace (the If conditions are guards that hold), the same outputs as the eager run.
  assert.equal(parsed.jitTraces, 1);
  assert.ok(parsed.jitMaxAbsDiff < 1e-6, `${parsed.jitMaxAbsDiff}`);
});

test('tessera onnx: a model with operators tessera lacks is named and refused; bad options are usage errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-onnx-'));
  const file = join(dir, 'm.onnx');
  writeFileSync(file, encodeModel({ graph: { inputs: [{ name: 'x', type: ElemType.FLOAT, shape: [1] }], outputs: [{ name: 'y', type: ElemType.FLOAT }], nodes: [{ op: 'Frob', inputs: ['x'], outputs: ['y'] }] } }));
  const missing = await capture(() => run([file]));
  assert.equal(missing.code, 1);
  assert.match(missing.out, /Frob \(MISSING\) ×1/);
  assert.match(missing.err, /tessera does not implement Frob/);
  assert.equal((await capture(() => run([]))).code, 2);
  const bad = await capture(() => run([SILERO, '--shapes', 'input=1xq']));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--shapes takes NAME=AxBxC pairs/);
});
