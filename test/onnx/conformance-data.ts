// Reads the ONNX backend node tests (test/fixtures/onnx/*.tgz: one folder per test with
// model.onnx and test_data_set_N/{input,output}_K.pb) and runs them through tessera's ONNX
// loader, comparing outputs as ONNX's own runner does (numpy assert_allclose, rtol 1e-3,
// atol 1e-7; exact for integers and booleans; NaN matches NaN).

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import * as t from '../../src/index.js';
import { OnnxModel } from '../../src/onnx/model.js';
import { ElemType, decodeModel, decodeTensor, decodeSequenceProto, decodeOptionalProto, type TypeProto, type TensorProto, type SequenceProto, type OptionalProto } from '../../src/onnx/proto.js';
import { ProtoReader } from '../../src/onnx/protobuf.js';
import { tensorFromProto, tensorProtoValues } from '../../src/onnx/tensor-proto.js';
import { NONE, type OnnxValue, type OnnxTensor } from '../../src/onnx/value.js';
import { TesseraError } from '../../src/core/errors.js';

export interface ConformanceCase {
  readonly name: string;
  readonly model: Uint8Array;
  readonly dataSets: { inputs: Uint8Array[]; outputs: Uint8Array[] }[];
}

/** The files of a tar archive (ustar; regular files only) by path. */
function untar(bytes: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const decoder = new TextDecoder();
  let pos = 0;
  let longName: string | undefined;
  while (pos + 512 <= bytes.length) {
    const header = bytes.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number): string => decoder.decode(header.subarray(start, start + length)).replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    let name = (prefix !== '' ? `${prefix}/` : '') + field(0, 100);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    const body = bytes.subarray(pos + 512, pos + 512 + size);
    if (longName !== undefined) { name = longName; longName = undefined; }
    if (type === 'L') longName = decoder.decode(body).replace(/\0.*$/s, '');
    else if (type === '0' || type === '\0') files.set(name, body);
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** Every test in a .tgz of ONNX backend node tests, sorted by name. */
export function readConformanceCases(path: string): ConformanceCase[] {
  const files = untar(gunzipSync(readFileSync(path)));
  type Entry = { model?: Uint8Array; sets: Map<number, { inputs: Uint8Array[]; outputs: Uint8Array[] }> };
  const cases = new Map<string, Entry>();
  for (const [file, bytes] of files) {
    const m = /(?:^|\/)(test_[^/]+)\/(model\.onnx|test_data_set_(\d+)\/(input|output)_(\d+)\.pb)$/.exec(file);
    if (m === null) continue;
    const c: Entry = cases.get(m[1]!) ?? { sets: new Map() };
    cases.set(m[1]!, c);
    if (m[2] === 'model.onnx') { c.model = bytes; continue; }
    const setIndex = Number(m[3]);
    const set = c.sets.get(setIndex) ?? { inputs: [], outputs: [] };
    c.sets.set(setIndex, set);
    (m[4] === 'input' ? set.inputs : set.outputs)[Number(m[5])] = bytes;
  }
  return [...cases].filter(([, c]) => c.model !== undefined).sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, c]) => ({ name, model: c.model!, dataSets: [...c.sets].sort(([a], [b]) => a - b).map(([, s]) => s) }));
}

/** Decodes a test's .pb as the value the graph input's declared type says it is. */
function decodeValue(bytes: Uint8Array, type: TypeProto | undefined): OnnxValue {
  if (type?.kind === 'sequence') return sequenceValue(decodeSequenceProto(new ProtoReader(bytes, 0, bytes.length, 'SequenceProto')));
  if (type?.kind === 'optional') return optionalValue(decodeOptionalProto(new ProtoReader(bytes, 0, bytes.length, 'OptionalProto')));
  return tensorFromProto(asDeclared(decodeTensor(bytes), type));
}

/**
 * ONNX 1.12's test data stores BFLOAT16 values as UINT16 tensors of their bit patterns (numpy has no
 * bfloat16); read them as the BFLOAT16 the graph declares.
 */
function asDeclared(p: TensorProto, type: TypeProto | undefined): TensorProto {
  if (type?.kind === 'tensor' && type.elemType === ElemType.BFLOAT16 && p.dataType === ElemType.UINT16) return { ...p, dataType: ElemType.BFLOAT16 };
  return p;
}

function sequenceValue(s: SequenceProto): OnnxValue {
  const items = s.tensors.map((p) => tensorFromProto(p));
  return { kind: 'sequence', items, elemType: items[0]?.type ?? s.tensors[0]?.dataType ?? 1 };
}

function optionalValue(o: OptionalProto): OnnxValue {
  if (o.tensor !== undefined) return tensorFromProto(o.tensor);
  if (o.sequence !== undefined) return sequenceValue(o.sequence);
  return NONE;
}

/** Expected values, decoded without tessera (the raw numbers of the protobuf). */
type Expected = { kind: 'tensor'; proto: TensorProto } | { kind: 'sequence'; items: TensorProto[] } | { kind: 'none' };

function decodeExpected(bytes: Uint8Array, type: TypeProto | undefined): Expected {
  if (type?.kind === 'sequence') return { kind: 'sequence', items: decodeSequenceProto(new ProtoReader(bytes, 0, bytes.length, 'SequenceProto')).tensors };
  if (type?.kind === 'optional') {
    const o = decodeOptionalProto(new ProtoReader(bytes, 0, bytes.length, 'OptionalProto'));
    if (o.tensor !== undefined) return { kind: 'tensor', proto: o.tensor };
    if (o.sequence !== undefined) return { kind: 'sequence', items: o.sequence.tensors };
    return { kind: 'none' };
  }
  return { kind: 'tensor', proto: asDeclared(decodeTensor(bytes), type) };
}

const RTOL = 1e-3;
const ATOL = 1e-7;

/** Why `got` differs from `want`, or undefined when they match. */
function compareTensor(got: OnnxTensor, want: TensorProto, label: string): string | undefined {
  const shape = got.tensor.shape;
  if (shape.length !== want.dims.length || shape.some((d, i) => d !== want.dims[i])) {
    return `${label}: shape [${shape.join(', ')}], expected [${want.dims.join(', ')}]`;
  }
  const values = got.tensor.data();
  const expected = tensorProtoValues(want);
  let worst: string | undefined;
  for (let i = 0; i < expected.length; i++) {
    const a = Number(values[i]);
    const b = expected[i]!;
    if (Number.isNaN(b) ? Number.isNaN(a) : Math.abs(a - b) <= ATOL + RTOL * Math.abs(b) || (a === b)) continue;
    worst = `${label}[${i}] = ${a}, expected ${b}`;
    break;
  }
  return worst;
}

export type Outcome =
  | { status: 'pass' }
  | { status: 'mismatch'; detail: string }
  | { status: 'error'; detail: string }
  | { status: 'crash'; detail: string };

/** Runs one test case on the current backend. */
export function runConformanceCase(c: ConformanceCase): Outcome {
  let model: OnnxModel | undefined;
  try {
    return t.scope(() => {
      model = OnnxModel.load(c.model);
      const graph = decodeModel(c.model).graph;
      const inits = new Set(graph.initializers.map((i) => i.name));
      const inputs = graph.inputs.filter((i) => !inits.has(i.name));
      for (const set of c.dataSets) {
        const feeds: Record<string, OnnxValue> = {};
        inputs.forEach((input, i) => {
          if (set.inputs[i] !== undefined) feeds[input.name] = decodeValue(set.inputs[i]!, input.type);
        });
        const got = model.runValues(feeds);
        for (let k = 0; k < graph.outputs.length; k++) {
          const out = graph.outputs[k]!;
          const want = decodeExpected(set.outputs[k]!, out.type);
          const value = got[out.name]!;
          let problem: string | undefined;
          if (want.kind === 'none') problem = value.kind === 'none' ? undefined : `${out.name}: expected an empty optional`;
          else if (want.kind === 'tensor') problem = value.kind === 'tensor' ? compareTensor(value, want.proto, out.name) : `${out.name}: expected a tensor, got a ${value.kind}`;
          else if (value.kind !== 'sequence') problem = `${out.name}: expected a sequence, got a ${value.kind}`;
          else if (value.items.length !== want.items.length) problem = `${out.name}: ${value.items.length} items, expected ${want.items.length}`;
          else problem = want.items.map((p, j) => compareTensor(value.items[j]!, p, `${out.name}[${j}]`)).find((x) => x !== undefined);
          if (problem !== undefined) return { status: 'mismatch', detail: problem };
        }
      }
      return { status: 'pass' };
    });
  } catch (e) {
    const err = e as Error;
    return e instanceof TesseraError ? { status: 'error', detail: err.message } : { status: 'crash', detail: `${err.name}: ${err.message}\n${err.stack?.split('\n').slice(1, 4).join('\n')}` };
  } finally {
    (model as OnnxModel | undefined)?.dispose();
  }
}
