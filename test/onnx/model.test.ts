// OnnxModel as a user meets it: small models written with encodeModel, run on every backend and
// checked against the same computation in tessera; errors that name the problem; memory (each
// intermediate freed after its last reader, nothing left behind, the model's own tensors never
// freed by a run); gradients to feeds and trainable initializers; jit.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';
import { OnnxModel } from '../../src/onnx/model.js';
import { lookupOnnxOp } from '../../src/onnx/registry.js';
import { encodeModel, type ModelDesc } from '../../src/onnx/encode.js';
import { decodeModel, ElemType } from '../../src/onnx/proto.js';
import { ProtoWriter } from '../../src/onnx/protobuf.js';

const { FLOAT, DOUBLE, INT64 } = ElemType;

function seeded(n: number, seed: number): number[] {
  const g = new t.Generator(seed);
  return Array.from(t.randn([n], { generator: g, dtype: 'float64' }).data());
}

/** y = relu(x·W1 + b1)·W2 + b2, as MatMul/Add/Relu and as one Gemm for the second layer. */
function mlpModel(type: number): { bytes: Uint8Array; w1: number[]; b1: number[]; w2: number[]; b2: number[] } {
  const w1 = seeded(4 * 5, 1), b1 = seeded(5, 2), w2 = seeded(5 * 3, 3), b2 = seeded(3, 4);
  const bytes = encodeModel({
    opset: 17,
    graph: {
      inputs: [{ name: 'x', type, shape: ['batch', 4] }],
      outputs: [{ name: 'y', type, shape: ['batch', 3] }],
      initializers: {
        w1: { type, dims: [4, 5], values: w1 }, b1: { type, dims: [5], values: b1 },
        w2: { type, dims: [5, 3], values: w2 }, b2: { type, dims: [3], values: b2 },
      },
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['h0'] },
        { op: 'Add', inputs: ['h0', 'b1'], outputs: ['h1'] },
        { op: 'Relu', inputs: ['h1'], outputs: ['h'] },
        { op: 'Gemm', inputs: ['h', 'w2', 'b2'], outputs: ['y'], attrs: { alpha: { float: 1 }, beta: { float: 1 } } },
      ],
    },
  });
  return { bytes, w1, b1, w2, b2 };
}

function mlpByHand(x: t.Tensor, m: ReturnType<typeof mlpModel>, dtype: t.DType): t.Tensor {
  const w1 = t.tensor(m.w1, { shape: [4, 5], dtype }), b1 = t.tensor(m.b1, { dtype });
  const w2 = t.tensor(m.w2, { shape: [5, 3], dtype }), b2 = t.tensor(m.b2, { dtype });
  return t.add(t.matmul(t.relu(t.add(t.matmul(x, w1), b1)), w2), b2);
}

it('encodes and decodes every attribute kind and the graph structure', () => {
  const desc: ModelDesc = {
    opset: 13,
    graph: {
      name: 'g',
      inputs: [{ name: 'a', type: FLOAT, shape: [2, 'n'] }],
      outputs: [{ name: 'b', type: FLOAT }],
      nodes: [{
        op: 'Foo', inputs: ['a', ''], outputs: ['b'], name: 'foo', domain: 'x.y',
        attrs: { i: -3, f: { float: 0.5 }, ints: [1, -2, 2 ** 40], floats: { floats: [1.5, -2] }, s: 'hello', t: { tensor: { type: INT64, dims: [2], values: [7, -9] } } },
      }],
    },
  };
  const m = decodeModel(encodeModel(desc));
  assert.equal(m.opsetImport[0]!.version, 13);
  assert.deepEqual(m.graph.inputs[0]!.type, { kind: 'tensor', elemType: FLOAT, shape: [2, 'n'] });
  const node = m.graph.nodes[0]!;
  assert.deepEqual([node.opType, node.name, node.domain, node.inputs, node.outputs], ['Foo', 'foo', 'x.y', ['a', ''], ['b']]);
  const attr = new Map(node.attributes.map((a) => [a.name, a]));
  assert.equal(attr.get('i')!.i, -3);
  assert.equal(attr.get('f')!.f, 0.5);
  assert.deepEqual(attr.get('ints')!.ints, [1, -2, 2 ** 40]);
  assert.deepEqual(attr.get('floats')!.floats, [1.5, -2]);
  assert.equal(new TextDecoder().decode(attr.get('s')!.s), 'hello');
  assert.deepEqual(attr.get('t')!.t!.dims, [2]);
});

forEachBackend('onnx model', (backend) => {
  it('runs an MLP (MatMul, Add, Relu, Gemm) equal to the same ops in tessera, float32 and float64', () => {
    for (const [type, dtype] of [[FLOAT, 'float32'], [DOUBLE, 'float64']] as const) {
      const m = mlpModel(type);
      const model = OnnxModel.load(m.bytes);
      assert.deepEqual(model.inputs.map((i) => [i.name, i.elemType, i.shape]), [['x', type === FLOAT ? 'FLOAT' : 'DOUBLE', ['batch', 4]]]);
      const x = t.tensor(seeded(6 * 4, 9), { shape: [6, 4], dtype });
      const { y } = model.run({ x });
      assert.equal(y!.backend, backend);
      assertClose(y!, mlpByHand(x, m, dtype), { rtol: dtype === 'float64' ? 1e-12 : 1e-5, atol: 1e-6 });
      model.dispose();
    }
  });

  it('frees each intermediate after its last reader and leaves nothing behind', () => {
    // A chain of 8 Relu → Neg pairs over 1 MB: the run should hold a couple of tensors at a time.
    const n = 256 * 1024;
    const nodes = [];
    let prev = 'x';
    for (let i = 0; i < 16; i++) {
      nodes.push({ op: i % 2 === 0 ? 'Relu' : 'Neg', inputs: [prev], outputs: [`v${i}`] });
      prev = `v${i}`;
    }
    const model = OnnxModel.load(encodeModel({ graph: { inputs: [{ name: 'x', type: FLOAT, shape: [n] }], outputs: [{ name: prev, type: FLOAT }], nodes } }));
    const x = t.randn([n]);
    const before = t.memoryStats();
    t.resetPeakMemory();
    const out = model.run({ x })[prev]!;
    const after = t.memoryStats();
    assert.equal(after.liveTensors, before.liveTensors + 1, 'only the output survives the run');
    const extra = after.peakBytes - before.liveBytes;
    assert.ok(extra <= 3 * 4 * n, `peak ${extra} bytes above the start: more than three 1 MB tensors at once`);
    out.dispose();
    x.dispose();
    model.dispose();
  });

  it('never frees the model\'s initializers or the caller\'s feeds, even when an op returns them', () => {
    const model = OnnxModel.load(encodeModel({
      graph: {
        inputs: [{ name: 'x', type: FLOAT, shape: [2] }],
        outputs: [{ name: 'w2', type: FLOAT }, { name: 'y', type: FLOAT }],
        initializers: { w: { type: FLOAT, dims: [2], values: [1, 2] } },
        nodes: [
          { op: 'Identity', inputs: ['w'], outputs: ['w1'] },
          { op: 'Identity', inputs: ['w1'], outputs: ['w2'] },
          { op: 'Identity', inputs: ['x'], outputs: ['x1'] },
          { op: 'Add', inputs: ['x1', 'w1'], outputs: ['y'] },
        ],
      },
    }));
    const x = t.tensor([10, 20]);
    for (let i = 0; i < 2; i++) {
      const { y, w2 } = model.run({ x });
      assert.deepEqual(Array.from(y!.data()), [11, 22]);
      assert.deepEqual(Array.from(w2!.data()), [1, 2]);
    }
    assert.deepEqual(Array.from(x.data()), [10, 20]);
    model.dispose();
  });

  it('gives gradients to the feeds and, loaded trainable, to the initializers (= tessera\'s own)', () => {
    const m = mlpModel(DOUBLE);
    const model = OnnxModel.load(m.bytes, { trainable: true });
    const x = t.tensor(seeded(3 * 4, 5), { shape: [3, 4], dtype: 'float64', requiresGrad: true });
    t.sum(t.mul(model.run({ x }).y!, model.run({ x }).y!)).backward();
    const params = model.parameters();
    assert.equal(params.length, 4);
    const [w1, b1, w2, b2] = [
      t.tensor(m.w1, { shape: [4, 5], dtype: 'float64', requiresGrad: true }), t.tensor(m.b1, { dtype: 'float64', requiresGrad: true }),
      t.tensor(m.w2, { shape: [5, 3], dtype: 'float64', requiresGrad: true }), t.tensor(m.b2, { dtype: 'float64', requiresGrad: true }),
    ];
    const x2 = t.tensor(seeded(3 * 4, 5), { shape: [3, 4], dtype: 'float64', requiresGrad: true });
    const y2 = t.add(t.matmul(t.relu(t.add(t.matmul(x2, w1), b1)), w2), b2);
    t.sum(t.mul(y2, y2)).backward();
    assertClose(x.grad!, x2.grad!, { rtol: 1e-12, atol: 1e-12 });
    [w1, b1, w2, b2].forEach((p, i) => assertClose(params[i]!.grad!, p.grad!, { rtol: 1e-12, atol: 1e-12 }));
    model.dispose();
  });

  it('runs under jit, equal to eager', () => {
    const m = mlpModel(FLOAT);
    const model = OnnxModel.load(m.bytes);
    const f = t.jit((x: t.Tensor) => model.run({ x }).y!);
    for (const rows of [2, 2, 5]) {
      const x = t.randn([rows, 4]);
      assertClose(f(x), model.run({ x }).y!, { rtol: 1e-6, atol: 1e-6 });
    }
    model.dispose();
  });
});

it('says which operators a model needs that tessera lacks, with counts', () => {
  const bytes = encodeModel({
    graph: {
      inputs: [{ name: 'x', type: FLOAT }], outputs: [{ name: 'z', type: FLOAT }],
      nodes: [
        { op: 'FancyOp', inputs: ['x'], outputs: ['y'] },
        { op: 'FancyOp', inputs: ['y'], outputs: ['y2'] },
        { op: 'Frob', inputs: ['y2'], outputs: ['z'], domain: 'com.example' },
      ],
    },
  });
  assert.throws(() => OnnxModel.load(bytes), /operators tessera does not implement: FancyOp \(2 nodes\), com\.example::Frob; onnx\.supportedOps\(\)/);
});

it('rejects bad feeds and bad files with errors that say what to do', () => {
  const model = OnnxModel.load(mlpModel(FLOAT).bytes);
  assert.throws(() => model.run({}), /input 'x' is not fed; run\(\) needs 'x'/);
  assert.throws(() => model.run({ x: t.zeros([2, 4]), y: t.zeros([1]) }), /the model has no input 'y'; its inputs are 'x'/);
  assert.throws(() => model.run({ x: t.zeros([2, 4], { dtype: 'float64' }) }), /input 'x' is FLOAT \(a tessera float32 tensor\), got a float64 tensor; cast it first/);
  assert.throws(() => model.run({ x: t.zeros([2, 5]) }), /input 'x' must have shape \[batch, 4\], got \[2, 5\]/);
  assert.throws(() => model.run({ x: t.zeros([2, 4]) }, { outputs: ['h'] }), /the model has no output 'h'; its outputs are 'y'/);
  model.dispose();
  assert.throws(() => model.run({ x: t.zeros([2, 4]) }), /this model was disposed/);
  const bytes = mlpModel(FLOAT).bytes;
  assert.throws(() => OnnxModel.load(bytes.subarray(0, bytes.length - 7)), /onnx: cannot decode ModelProto.*runs past the end; the file is truncated or not an ONNX protobuf/);
  assert.throws(() => OnnxModel.load(new TextEncoder().encode('{"not": "onnx"}')), /onnx: /);
  // An initializer whose data lives in an external file.
  const external = new ProtoWriter()
    .messageField(7, (g) => g.messageField(5, (tp) => tp.packedVarints(1, [2]).varintField(2, FLOAT).stringField(8, 'w')
      .messageField(13, (e) => e.stringField(1, 'location').stringField(2, 'weights.bin')).varintField(14, 1)))
    .messageField(8, (o) => o.varintField(2, 17)).finish();
  assert.throws(() => OnnxModel.load(external), /initializer 'w' keeps its data in the external file 'weights\.bin'/);
});

it('saturates INT64 values beyond int32 (Slice\'s "to the end" sentinel) instead of wrapping', () => {
  const model = OnnxModel.load(encodeModel({
    graph: {
      inputs: [], outputs: [{ name: 'c', type: INT64 }],
      initializers: { c0: { type: INT64, dims: [3], values: [2 ** 62, -(2 ** 62), 5] } },
      nodes: [{ op: 'Identity', inputs: ['c0'], outputs: ['c'] }],
    },
  }));
  assert.deepEqual(Array.from(model.run({}).c!.data()), [2 ** 31 - 1, -(2 ** 31), 5]);
  model.dispose();
});

it('Silero VAD under jit, piecewise (graph breaks at If conditions) and as one guarded graph, equals eager', async () => {
  const { readFileSync } = await import('node:fs');
  const model = OnnxModel.load(new Uint8Array(readFileSync('test/fixtures/onnx/silero_vad_v5.onnx')));
  const run = (input: t.Tensor, state: t.Tensor, sr: t.Tensor) => model.run({ input, state, sr });
  const piecewise = t.jit(run);
  const whole = t.jit(run, { piecewise: false });
  const sr = t.tensor(16000, { dtype: 'int32' });
  let state = t.zeros([2, 1, 128]);
  for (let chunk = 0; chunk < 3; chunk++) {
    const input = t.mul(t.sin(t.mul(t.arange(0, 512), 0.05 * (chunk + 1))), 0.3).reshape([1, 512]);
    const eager = t.noGrad(() => run(input, state, sr));
    for (const f of [piecewise, whole]) {
      const got = t.noGrad(() => f(input, state, sr));
      assertClose(got.output!, eager.output!, { rtol: 1e-5, atol: 1e-6 });
      assertClose(got.stateN!, eager.stateN!, { rtol: 1e-5, atol: 1e-5 });
    }
    state = eager.stateN!;
  }
  assert.equal(whole.stats().traces, 1);
  model.dispose();
});

it('computes a constant node once and keeps it; not for trainable models, nor when a feed can replace its input', () => {
  const add = lookupOnnxOp('', 'Add')!;
  const original = add.run;
  let calls = 0;
  (add as { run: typeof original }).run = (ctx) => { calls++; return original(ctx); };
  try {
    const bytes = encodeModel({
      graph: {
        // 'w' is an initializer and also a graph input: a feed may replace it (IR < 4 defaults).
        inputs: [{ name: 'x', type: FLOAT, shape: [2] }, { name: 'w', type: FLOAT, shape: [2] }],
        outputs: [{ name: 'y', type: FLOAT }, { name: 'z', type: FLOAT }],
        initializers: { w: { type: FLOAT, dims: [2], values: [5, 7] } },
        nodes: [
          { op: 'Constant', inputs: [], outputs: ['c'], attrs: { value: { tensor: { type: FLOAT, dims: [2], values: [1, 2] } } } },
          { op: 'Add', inputs: ['c', 'c'], outputs: ['d'] }, // constant: computed once
          { op: 'Mul', inputs: ['x', 'd'], outputs: ['y'] },
          { op: 'Add', inputs: ['w', 'w'], outputs: ['z'] }, // reads a replaceable initializer: every run
        ],
      },
    });
    const x = t.tensor([3, 4]);
    const model = OnnxModel.load(bytes);
    const before = t.memoryStats().liveTensors;
    for (let run = 0; run < 3; run++) {
      const w = t.tensor([run, 1]);
      const { y, z } = model.run({ x, w });
      assert.deepEqual(Array.from(y!.data()), [6, 16]);
      assert.deepEqual(Array.from(z!.data()), [2 * run, 2]);
      for (const v of [w, y!, z!]) v.dispose();
    }
    assert.equal(calls, 1 + 3, 'the constant Add once, the Add of the feed on each of the 3 runs');
    model.dispose();
    assert.equal(t.memoryStats().liveTensors, before - 1, 'dispose() frees the initializer (live before the runs) and the values the runs folded (c, d)');

    calls = 0;
    const trainable = OnnxModel.load(bytes, { trainable: true });
    for (let run = 0; run < 3; run++) trainable.run({ x, w: t.tensor([1, 1]) });
    assert.equal(calls, 6, 'a trainable model folds nothing: gradients must reach its initializers through every node');
    trainable.dispose();
  } finally {
    (add as { run: typeof original }).run = original;
  }
});
