// `tessera onnx <model.onnx>`: what an ONNX model holds (producer, opsets, inputs and outputs, the
// operators it uses and whether tessera implements each), then a timed run on made-up inputs;
// with --compare-ort, the same inputs through onnxruntime-node (if installed) and the largest
// difference between the two runtimes' outputs.
import { readFileSync } from 'node:fs';
import { TesseraError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { decodeModel } from '../onnx/proto.js';
import { OnnxModel } from '../onnx/model.js';
import { canonicalDomain, lookupOnnxOp } from '../onnx/registry.js';
import { sampleFeeds } from '../onnx/sample-feeds.js';
import { numberOption, parseArgs, selectBackend, UsageError } from '../train/cli-options.js';
import { defaultBackendName } from '../backend/default.js';
import type { GraphProto } from '../onnx/proto.js';
import { medianOf } from '../dist/pipeline-measure.js';
import { jit } from '../graph/jit.js';

/** Largest |a − b| over two outputs' values (Infinity when their shapes differ). */
function largestDifference(a: ArrayLike<number | bigint>, aShape: readonly number[], b: ArrayLike<number | bigint>, bShape: readonly number[]): number {
  if (aShape.join() !== bShape.join()) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
}

const usage = [
  'usage: tessera onnx <model.onnx> [--dims NAME=SIZE,...] [--shapes NAME=AxBxC,...] [--inputs NAME=VALUE,...] [--runs N] [--backend NAME] [--jit] [--compare-ort] [--json]',
  '',
  'Prints the model\'s producer, opsets, inputs and outputs, and the operators it uses (marking those',
  'tessera lacks); then runs it --runs times (default 20, after one warm-up run) on made-up inputs and',
  'prints the median time per run. Symbolic dimensions are 1 unless --dims sets them (batch=4,seq=128);',
  '--shapes gives whole input shapes (input=1x512), for inputs whose unknown dimensions have no names;',
  'float inputs are seeded normal values, integer and boolean ones 0 unless --inputs sets a constant',
  '(sr=16000). --compare-ort runs the same inputs through onnxruntime-node (`npm install onnxruntime-node`)',
  'and prints its median time and the largest absolute difference per output. --jit also times the run',
  'compiled with t.jit (the values the model reads, such as If conditions, become guards of one graph).',
].join('\n');

function pairs(raw: string | undefined, option: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (raw === undefined) return out;
  for (const item of raw.split(',')) {
    const [name, value] = item.split('=');
    const v = Number(value);
    if (name === undefined || name === '' || value === undefined || !Number.isFinite(v)) throw new UsageError(`--${option} takes NAME=NUMBER pairs separated by commas, got '${item}'.`);
    out[name] = v;
  }
  return out;
}

function opCounts(graph: GraphProto, counts: Map<string, number>): void {
  for (const node of graph.nodes) {
    const domain = canonicalDomain(node.domain);
    const label = domain === '' ? node.opType : `${domain}::${node.opType}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
    for (const a of node.attributes) {
      if (a.g !== undefined) opCounts(a.g, counts);
      for (const g of a.graphs) opCounts(g, counts);
    }
  }
}


interface OrtModule {
  InferenceSession: { create(bytes: Uint8Array): Promise<{ run(feeds: Record<string, unknown>): Promise<Record<string, { data: ArrayLike<number | bigint> | BigInt64Array; dims: readonly number[] }>> }> };
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => unknown;
}

const ORT_TYPES: Record<string, string> = { FLOAT: 'float32', DOUBLE: 'float64', INT64: 'int64', INT32: 'int32', INT8: 'int8', UINT8: 'uint8', BOOL: 'bool' };

/** A tessera feed as an onnxruntime tensor of the model's declared element type. */
function ortTensor(ort: OrtModule, x: Tensor, elemType: string): unknown {
  const type = ORT_TYPES[elemType];
  if (type === undefined) throw new TesseraError(`tessera onnx --compare-ort: inputs of type ${elemType} are not converted for onnxruntime`);
  const values = x.data();
  const data = type === 'int64' ? BigInt64Array.from(Array.from(values, (v) => BigInt(v)))
    : type === 'bool' ? Uint8Array.from(values)
    : type === 'float32' ? Float32Array.from(values) : type === 'float64' ? Float64Array.from(values)
    : type === 'int32' ? Int32Array.from(values) : type === 'int8' ? Int8Array.from(values) : Uint8Array.from(values);
  return new ort.Tensor(type, data, x.shape);
}

export async function run(args: string[]): Promise<number> {
  try {
    const p = parseArgs(args, ['dims', 'shapes', 'inputs', 'runs', 'backend'], ['compare-ort', 'jit', 'json', 'help']);
    if (p.flags.has('help')) { console.log(usage); return 0; }
    const path = p.positional[0];
    if (path === undefined) throw new UsageError('give the .onnx file.');
    const backend = p.values.get('backend') ?? defaultBackendName();
    await selectBackend(backend);
    const runs = numberOption(p.values, 'runs', 20, 'integer');
    const dims = pairs(p.values.get('dims'), 'dims');
    const values = pairs(p.values.get('inputs'), 'inputs');
    const shapes: Record<string, number[]> = {};
    for (const item of (p.values.get('shapes') ?? '').split(',').filter((x) => x !== '')) {
      const [name, dimsText] = item.split('=');
      const shape = (dimsText ?? '').split('x').filter((d) => d !== '').map(Number);
      if (name === undefined || name === '' || dimsText === undefined || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw new UsageError(`--shapes takes NAME=AxBxC pairs separated by commas (a scalar: NAME=), got '${item}'.`);
      shapes[name] = shape;
    }
    const bytes = new Uint8Array(readFileSync(path));
    const proto = decodeModel(bytes);
    const counts = new Map<string, number>();
    opCounts(proto.graph, counts);
    const missing = [...counts.keys()].filter((label) => {
      const [domain, op] = label.includes('::') ? label.split('::') as [string, string] : ['', label];
      return lookupOnnxOp(domain, op) === undefined;
    });
    const json: Record<string, unknown> = {
      file: path, producer: `${proto.producerName} ${proto.producerVersion}`.trim(), irVersion: proto.irVersion,
      opsets: Object.fromEntries(proto.opsetImport.map((o) => [o.domain === '' ? 'ai.onnx' : o.domain, o.version])),
      operators: Object.fromEntries(counts), unsupported: missing, backend,
    };
    if (!p.flags.has('json')) {
      console.log(`${path}: ${bytes.length} bytes, producer ${json.producer || '(none)'}, IR version ${proto.irVersion}, opsets ${JSON.stringify(json.opsets)}`);
      console.log(`operators (${proto.graph.nodes.length} nodes in the main graph): ${[...counts].map(([op, n]) => `${op}${missing.includes(op) ? ' (MISSING)' : ''} ×${n}`).join(', ')}`);
    }
    if (missing.length > 0) {
      if (p.flags.has('json')) console.log(JSON.stringify(json, null, 2));
      console.error(`tessera onnx: tessera does not implement ${missing.join(', ')}; the model cannot run.`);
      return 1;
    }
    const model = OnnxModel.load(bytes);
    const feeds = sampleFeeds(model, { dims, values, shapes });
    json.inputs = model.inputs.map((i) => ({ name: i.name, type: i.elemType, shape: feeds[i.name]!.shape }));
    json.outputs = model.outputs.map((o) => ({ name: o.name, type: o.elemType, shape: o.shape }));
    if (!p.flags.has('json')) {
      for (const i of model.inputs) console.log(`input  ${i.name}: ${i.elemType} [${(i.shape ?? []).map((d) => d ?? '?').join(', ')}] fed as [${feeds[i.name]!.shape.join(', ')}]`);
      for (const o of model.outputs) console.log(`output ${o.name}: ${o.elemType ?? o.kind} [${(o.shape ?? []).map((d) => d ?? '?').join(', ')}]`);
    }
    const times: number[] = [];
    let outputs: Record<string, Tensor> = {};
    noGrad(() => {
      outputs = model.run(feeds);
      for (let i = 0; i < runs; i++) {
        for (const o of Object.values(outputs)) o.dispose();
        const start = performance.now();
        outputs = model.run(feeds);
        for (const o of Object.values(outputs)) o.data();
        times.push(performance.now() - start);
      }
    });
    json.tesseraMs = medianOf(times);
    if (!p.flags.has('json')) console.log(`tessera (${backend}): ${medianOf(times).toFixed(3)} ms per run (median of ${runs})`);
    if (p.flags.has('jit')) {
      // The same run compiled: feeds as positional tensors, the outputs record as the result. The
      // values the model reads (If conditions, shapes) are guards of one graph (piecewise: false):
      // with piecewise graph breaks a replay re-runs the interpreter's JavaScript around every op,
      // which for a model of small ops saves little (Silero VAD, one thread: eager 6-10 ms,
      // piecewise 5-10 ms, guards 1.2-2 ms per chunk on a noisy host).
      const names = Object.keys(feeds);
      const compiled = jit((...ts: Tensor[]) => model.run(Object.fromEntries(names.map((n, i) => [n, ts[i]!]))), { piecewise: false });
      const args = names.map((n) => feeds[n]!);
      const jitTimes: number[] = [];
      let jitDiff = 0;
      noGrad(() => {
        for (let i = 0; i < runs + 2; i++) { // two untimed calls: the trace, then a first replay
          const start = performance.now();
          const got = compiled(...args) as Record<string, Tensor>;
          for (const o of Object.values(got)) o.data();
          if (i >= 2) jitTimes.push(performance.now() - start);
          for (const [name, o] of Object.entries(got)) {
            if (i === runs + 1) jitDiff = Math.max(jitDiff, largestDifference(o.data(), o.shape, outputs[name]!.data(), outputs[name]!.shape));
            o.dispose();
          }
        }
      });
      const st = compiled.stats();
      json.tesseraJitMs = medianOf(jitTimes);
      json.jitTraces = st.traces;
      json.jitMaxAbsDiff = jitDiff;
      if (!p.flags.has('json')) {
        console.log(`tessera (${backend}, jit): ${medianOf(jitTimes).toFixed(3)} ms per run (median of ${runs}; ${st.traces} trace${st.traces === 1 ? '' : 's'}, ` +
          `reads are guards); largest |jit − eager| ${jitDiff.toExponential(2)}`);
      }
    }
    if (p.flags.has('compare-ort')) {
      let ort: OrtModule;
      try {
        ort = (await import('onnxruntime-node' as string)) as OrtModule;
      } catch (e) {
        throw new UsageError(`--compare-ort needs onnxruntime-node (npm install onnxruntime-node): ${(e as Error).message.split('\n')[0]}`);
      }
      const session = await ort.InferenceSession.create(bytes);
      const ortFeeds: Record<string, unknown> = {};
      for (const i of model.inputs) ortFeeds[i.name] = ortTensor(ort, feeds[i.name]!, i.elemType!);
      let result = await session.run(ortFeeds);
      const ortTimes: number[] = [];
      for (let i = 0; i < runs; i++) {
        const start = performance.now();
        result = await session.run(ortFeeds);
        ortTimes.push(performance.now() - start);
      }
      const diffs: Record<string, number> = {};
      for (const [name, ours] of Object.entries(outputs)) {
        const theirs = result[name]!;
        diffs[name] = largestDifference(ours.data(), ours.shape, theirs.data, theirs.dims);
      }
      json.onnxruntimeMs = medianOf(ortTimes);
      json.maxAbsDiff = diffs;
      if (!p.flags.has('json')) {
        console.log(`onnxruntime-node (cpu): ${medianOf(ortTimes).toFixed(3)} ms per run (median of ${runs})`);
        for (const [name, d] of Object.entries(diffs)) console.log(`largest |tessera − onnxruntime| in ${name}: ${d === Number.POSITIVE_INFINITY ? 'shapes differ' : d.toExponential(2)}`);
      }
    }
    if (p.flags.has('json')) console.log(JSON.stringify(json, null, 2));
    model.dispose();
    return 0;
  } catch (e) {
    if (e instanceof UsageError) { console.error(`tessera onnx: ${e.message}\n\n${usage}`); return 2; }
    if (e instanceof TesseraError) { console.error(`tessera onnx: ${e.message}`); return 1; }
    throw e;
  }
}

