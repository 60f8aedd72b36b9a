// ONNX inference: tessera's importer (eager interpretation, and the same run under jit) against
// onnxruntime-node's CPU execution provider, on the same models and inputs, 1 and 2 threads.
//   npm run bench:onnx    (node --import tsx bench/onnx.ts [--rounds=N] [--quick])
// Models: Silero VAD v5 (a real pretrained model: Conv + LSTM + If; one 512-sample chunk at 16 kHz),
// and ONNX files written here with encodeModel: the issue-6 MLP (784-512-512-10, batch 128) and CNN
// (conv 1→32 3x3, ReLU, maxpool, conv 32→64, ReLU, maxpool, linear 3136→128, ReLU, linear 128→10,
// batch 64), inference only. The two runtimes alternate run by run; medians over the rounds.
// Writes bench/results/onnx.json and onnx.md.
//
// Expected before measuring: the MLP and CNN are GEMM/conv bound, where tessera's wasm kernels
// (~45 GFLOP/s per core at best on this VM) face MLAS's AVX-512 kernels (~150+ per core): ORT
// 2-4x faster. Silero VAD is ~100 small ops per chunk, where per-op overhead decides: ORT's C++
// dispatch (~1-2 µs per op) against tessera's interpreter (~10-20 µs per op eagerly).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as t from '../src/index.js';
import { OnnxModel } from '../src/onnx/model.js';
import { encodeModel, type NodeDesc, type TensorDesc } from '../src/onnx/encode.js';
import { ElemType } from '../src/onnx/proto.js';
import { sampleFeeds } from '../src/onnx/sample-feeds.js';
import { noGrad } from '../src/autodiff/mode.js';
import { machineDescription } from './idle-check.js';
import { HostProbe } from './host-probe.js';
import { median } from './harness.js';
import * as ort from 'onnxruntime-node';

const args = new Map(process.argv.slice(2).map((a) => { const [k, v] = a.replace(/^--/, '').split('='); return [k!, v ?? 'true'] as const; }));
const quick = args.has('quick');
const rounds = Number(args.get('rounds') ?? (quick ? 5 : 30));
const FLOAT = ElemType.FLOAT;

function weights(dims: number[], seed: number, scale: number): TensorDesc {
  const n = dims.reduce((a, b) => a * b, 1);
  const values = t.mul(t.randn([n], { generator: new t.Generator(seed) }), scale).data();
  return { type: FLOAT, dims, values };
}

function mlp(): Uint8Array {
  const sizes = [784, 512, 512, 10];
  const nodes: NodeDesc[] = [];
  const initializers: Record<string, TensorDesc> = {};
  let prev = 'x';
  for (let i = 0; i < 3; i++) {
    initializers[`w${i}`] = weights([sizes[i]!, sizes[i + 1]!], i, 1 / Math.sqrt(sizes[i]!));
    initializers[`b${i}`] = weights([sizes[i + 1]!], 10 + i, 0.1);
    nodes.push({ op: 'MatMul', inputs: [prev, `w${i}`], outputs: [`m${i}`] }, { op: 'Add', inputs: [`m${i}`, `b${i}`], outputs: [`a${i}`] });
    prev = `a${i}`;
    if (i < 2) { nodes.push({ op: 'Relu', inputs: [prev], outputs: [`r${i}`] }); prev = `r${i}`; }
  }
  nodes.push({ op: 'Identity', inputs: [prev], outputs: ['y'] });
  return encodeModel({ graph: { inputs: [{ name: 'x', type: FLOAT, shape: [128, 784] }], outputs: [{ name: 'y', type: FLOAT, shape: [128, 10] }], initializers, nodes } });
}

function cnn(): Uint8Array {
  const initializers: Record<string, TensorDesc> = {
    c1: weights([32, 1, 3, 3], 1, 1 / 3), c1b: weights([32], 2, 0.1),
    c2: weights([64, 32, 3, 3], 3, 1 / Math.sqrt(288)), c2b: weights([64], 4, 0.1),
    f1: weights([128, 3136], 5, 1 / 56), f1b: weights([128], 6, 0.1),
    f2: weights([10, 128], 7, 1 / Math.sqrt(128)), f2b: weights([10], 8, 0.1),
  };
  const conv = (x: string, w: string, b: string, y: string): NodeDesc => ({ op: 'Conv', inputs: [x, w, b], outputs: [y], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } });
  const pool = (x: string, y: string): NodeDesc => ({ op: 'MaxPool', inputs: [x], outputs: [y], attrs: { kernel_shape: [2, 2], strides: [2, 2] } });
  const nodes: NodeDesc[] = [
    conv('x', 'c1', 'c1b', 'h1'), { op: 'Relu', inputs: ['h1'], outputs: ['r1'] }, pool('r1', 'p1'),
    conv('p1', 'c2', 'c2b', 'h2'), { op: 'Relu', inputs: ['h2'], outputs: ['r2'] }, pool('r2', 'p2'),
    { op: 'Flatten', inputs: ['p2'], outputs: ['f'], attrs: { axis: 1 } },
    { op: 'Gemm', inputs: ['f', 'f1', 'f1b'], outputs: ['g1'], attrs: { transB: 1 } }, { op: 'Relu', inputs: ['g1'], outputs: ['r3'] },
    { op: 'Gemm', inputs: ['r3', 'f2', 'f2b'], outputs: ['y'], attrs: { transB: 1 } },
  ];
  return encodeModel({ graph: { inputs: [{ name: 'x', type: FLOAT, shape: [64, 1, 28, 28] }], outputs: [{ name: 'y', type: FLOAT, shape: [64, 10] }], initializers, nodes } });
}

interface Workload { name: string; bytes: Uint8Array; values?: Record<string, number>; shapes?: Record<string, number[]>; flops?: number }
const workloads: Workload[] = [
  { name: 'silero-vad-v5 (one 512-sample chunk, 16 kHz)', bytes: new Uint8Array(readFileSync('test/fixtures/onnx/silero_vad_v5.onnx')), values: { sr: 16000 }, shapes: { input: [1, 512] } },
  { name: 'MLP 784-512-512-10, batch 128', bytes: mlp(), flops: 2 * 128 * (784 * 512 + 512 * 512 + 512 * 10) },
  { name: 'CNN (issue 6), batch 64', bytes: cnn(), flops: 2 * 64 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 3136 * 128 + 128 * 10) },
];

function ortFeed(x: t.Tensor, elemType: string): ort.Tensor {
  if (elemType === 'INT64') return new ort.Tensor('int64', BigInt64Array.from(Array.from(x.data(), (v) => BigInt(v))), x.shape);
  return new ort.Tensor('float32', Float32Array.from(x.data()), x.shape);
}


interface Row { model: string; threads: number; runtime: string; ms: number; gflops?: number; maxAbsDiff: number }
const rows: Row[] = [];
// What the host gives this VM's cores now: the SGEMM micro-kernel on every core at once (on this
// VM 43-48 GFLOP/s per core on a good minute, 25-31 on a bad one; see bench/host-probe.ts).
const probe = new HostProbe(2);
const hostBefore = await probe.measure(500);
t.setBackend('wasm');
for (const threads of [1, 2]) {
  t.enableWasmThreads(threads);
  for (const w of workloads) {
    const model = OnnxModel.load(w.bytes);
    const feeds = sampleFeeds(model, { values: w.values, shapes: w.shapes, seed: 1 });
    const session = await ort.InferenceSession.create(w.bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 });
    const ortFeeds = Object.fromEntries(model.inputs.map((i) => [i.name, ortFeed(feeds[i.name]!, i.elemType!)]));
    // jit takes tensors as separate arguments: one per model input, in declaration order.
    const names = model.inputs.map((i) => i.name);
    // piecewise: false: value reads (If conditions, shapes) become guards of one compiled graph.
    const jitted = t.jit((...xs: t.Tensor[]) => model.run(Object.fromEntries(names.map((n, k) => [n, xs[k]!]))), { piecewise: false });
    const feedList = names.map((n) => feeds[n]!);
    const variants: Record<string, () => Promise<Float32Array | number[]> | Float32Array | number[]> = {
      'tessera (eager)': () => noGrad(() => t.scope(() => Array.from(Object.values(model.run(feeds))[0]!.data()))),
      'tessera (jit)': () => noGrad(() => t.scope(() => Array.from(Object.values(jitted(...feedList))[0]!.data()))),
      'onnxruntime-node': async () => Array.from((Object.values(await session.run(ortFeeds))[0]!.data as Float32Array)),
    };
    const reference = await variants['onnxruntime-node']!();
    const times = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));
    const diffs = new Map<string, number>();
    for (const [name, run] of Object.entries(variants)) {
      for (let i = 0; i < 3; i++) await run(); // warm-up: tier-up, jit trace, ORT's first run
      const out = await run();
      diffs.set(name, Math.max(...Array.from(out, (v, i) => Math.abs(Number(v) - Number(reference[i])))));
    }
    for (let r = 0; r < rounds; r++) {
      for (const [name, run] of Object.entries(variants)) {
        const start = performance.now();
        await run();
        times.get(name)!.push(performance.now() - start);
      }
    }
    for (const [name, ts] of times) {
      const ms = median(ts);
      rows.push({ model: w.name, threads, runtime: name, ms, gflops: w.flops === undefined ? undefined : w.flops / ms / 1e6, maxAbsDiff: diffs.get(name)! });
      console.log(`${w.name.padEnd(46)} ${threads}T ${name.padEnd(18)} ${ms.toFixed(3).padStart(9)} ms${w.flops === undefined ? '' : `  ${(w.flops / ms / 1e6).toFixed(1)} GFLOP/s`}  max|Δ| vs ORT ${diffs.get(name)!.toExponential(1)}`);
    }
    model.dispose();
  }
}

const hostAfter = await probe.measure(500);
const machine = machineDescription();
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/onnx.json', JSON.stringify({ date: new Date().toISOString(), machine, rounds, hostMicroKernelGflops: { before: hostBefore, after: hostAfter }, rows }, null, 2) + '\n');
const lines = [
  '# ONNX inference: tessera vs onnxruntime-node', '',
  `${new Date().toISOString().slice(0, 16)}Z, ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, onnxruntime-node ${ort.env.versions.common}; median of ${rounds} alternating runs (\`npm run bench:onnx\`). The host gave the wasm SGEMM micro-kernel ${hostBefore.map((g) => g.toFixed(1)).join(' / ')} GFLOP/s per core (both at once) before the run and ${hostAfter.map((g) => g.toFixed(1)).join(' / ')} after (43-48 on a good minute of this VM).`, '',
  '| model | threads | runtime | ms per run | GFLOP/s | vs onnxruntime | max abs diff vs onnxruntime |', '| --- | --- | --- | --- | --- | --- | --- |',
];
for (const r of rows) {
  const ortMs = rows.find((o) => o.model === r.model && o.threads === r.threads && o.runtime === 'onnxruntime-node')!.ms;
  lines.push(`| ${r.model} | ${r.threads} | ${r.runtime} | ${r.ms.toFixed(3)} | ${r.gflops?.toFixed(1) ?? '–'} | ${(r.ms / ortMs).toFixed(2)}× | ${r.maxAbsDiff.toExponential(1)} |`);
}
writeFileSync('bench/results/onnx.md', lines.join('\n') + '\n');
console.log('wrote bench/results/onnx.json and onnx.md');
