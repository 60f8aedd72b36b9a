// ONNX export (src/onnx/export.ts): models exported with exportOnnx, run in onnxruntime and in
// tessera's own importer (OnnxModel), against tessera's eager outputs; and the refusals.
//
// Tolerance: both sides compute in float32 but sum in different orders (MatMul/Conv accumulate
// up to a few hundred products) and use different exp/erf/tanh implementations, so results
// differ by a few float32 ulps (~6e-8 relative each). rtol 1e-5 / atol 1e-5 leaves two orders
// of magnitude above that while still catching any wrong translation (a wrong axis, mask, pad or
// constant changes values at the 1e-2 level). Integer and bool outputs must match exactly.
import { it, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import * as t from '../../src/index.js';
import { exportOnnx, type ExportOnnxOptions } from '../../src/onnx/export.js';
import { OnnxModel } from '../../src/onnx/model.js';
import { decodeModel, elemTypeName } from '../../src/onnx/proto.js';
import { assertClose } from '../helpers/close.js';

const nn = t.nn;
const TOL = { rtol: 1e-5, atol: 1e-5 };

type Result = t.Tensor | t.Tensor[] | Record<string, t.Tensor>;
const ORT_TYPES: Partial<Record<t.DType, ort.Tensor.Type>> = { float32: 'float32', float64: 'float64', int32: 'int32', bool: 'bool', int8: 'int8', uint8: 'uint8' };

function resultTensors(r: Result): t.Tensor[] {
  return r instanceof t.Tensor ? [r] : Array.isArray(r) ? r : Object.values(r);
}

function ortTensor(x: t.Tensor): ort.Tensor {
  const type = ORT_TYPES[x.dtype];
  if (type === undefined) throw new Error(`no onnxruntime type for ${x.dtype}`);
  const data = x.data();
  return new ort.Tensor(type, (type === 'bool' ? Uint8Array.from(data) : data) as never, [...x.shape]);
}

/** Largest |a − e| over the elements. */
function maxDiff(a: ArrayLike<number>, e: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < e.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(e[i])));
  return m;
}

/**
 * Exports fn, runs the bytes in onnxruntime and in OnnxModel on the example inputs and compares
 * every output with fn's eager result; returns the bytes and the largest difference vs onnxruntime.
 */
async function exportAndCompare(fn: (...x: t.Tensor[]) => Result, inputs: t.Tensor[], options: ExportOnnxOptions = {}, tessera = true): Promise<{ bytes: Uint8Array; diff: number }> {
  const bytes = exportOnnx(fn, inputs, options);
  const expected = resultTensors(t.noGrad(() => fn(...inputs)));
  const session = await ort.InferenceSession.create(bytes);
  const feeds: Record<string, ort.Tensor> = {};
  session.inputNames.forEach((name, i) => { feeds[name] = ortTensor(inputs[i]!); });
  const got = await session.run(feeds);
  assert.equal(session.outputNames.length, expected.length);
  let diff = 0;
  session.outputNames.forEach((name, k) => {
    const e = expected[k]!, o = got[name]!;
    assert.deepEqual(o.dims, e.shape, `${name}: shape`);
    const exact = e.dtype === 'int32' || e.dtype === 'bool';
    const values = Array.from(o.data as ArrayLike<number>, Number);
    assertClose(values, e, exact ? { rtol: 0, atol: 0 } : TOL, `onnxruntime ${name}`);
    diff = Math.max(diff, maxDiff(values, e.data()));
  });
  if (tessera) {
    // tessera's own importer reads the file back.
    const model = OnnxModel.load(bytes);
    const feedsT: Record<string, t.Tensor> = {};
    model.inputs.forEach((info, i) => { feedsT[info.name] = inputs[i]!; });
    const out = model.run(feedsT);
    model.outputs.forEach((info, k) => assertClose(out[info.name]!, expected[k]!, TOL, `OnnxModel ${info.name}`));
  }
  return { bytes, diff };
}

/** Larger random weights than the default initialisations, so that differences show. */
function randomize(m: t.nn.Module<never[], unknown>, seed: number, std = 0.5): void {
  const g = new t.Generator(seed);
  for (const p of m.parameters()) t.nn.init.normal_(p, 0, std, g);
}

const differences: Record<string, number> = {};

describe('exportOnnx runs in onnxruntime and in OnnxModel', () => {
  it('an MLP (Linear, ReLU, GELU), with parameter names from the module', async () => {
    t.manualSeed(1);
    const mlp = new nn.Sequential(new nn.Linear(6, 16), new nn.ReLU(), new nn.Linear(16, 8), new nn.GELU(), new nn.Linear(8, 3)).eval();
    const x = t.randn([5, 6]);
    const { bytes, diff } = await exportAndCompare((v) => mlp.call(v), [x], { module: mlp, inputNames: ['x'], outputNames: ['logits'] });
    differences.mlp = diff;
    const proto = decodeModel(bytes);
    assert.deepEqual(proto.graph.inputs.map((i) => i.name), ['x']);
    assert.deepEqual(proto.graph.outputs.map((o) => o.name), ['logits']);
    // The module's parameters keep their names; c0, c1... are constants the export made (GELU's 0.5...).
    const names = proto.graph.initializers.map((i) => i.name).filter((n) => !/^c\d+$/.test(n));
    assert.deepEqual(names.sort(), ['0.bias', '0.weight', '2.bias', '2.weight', '4.bias', '4.weight']);
    assert.equal(proto.opsetImport.find((o) => o.domain === '')?.version, 17);
    assert.ok(proto.graph.nodes.some((n) => n.opType === 'Erf'), 'GELU is written with Erf');
  });

  it('a CNN (Conv2d, ReLU, MaxPool2d, Flatten, Linear): one Conv and one MaxPool each', async () => {
    t.manualSeed(2);
    const cnn = new nn.Sequential(
      new nn.Conv2d(3, 8, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2),
      new nn.Conv2d(8, 4, 3), new nn.ReLU(), new nn.Flatten(), new nn.Linear(4 * 2 * 2, 10),
    ).eval();
    // exportOnnx forces the direct algorithm while it traces, then restores the caller's setting.
    const outer = t.setConvAlgorithm('im2col');
    let result: { bytes: Uint8Array; diff: number };
    try {
      result = await exportAndCompare((v) => cnn.call(v), [t.randn([2, 3, 8, 8])], { module: cnn });
    } finally {
      assert.equal(t.setConvAlgorithm(outer), 'im2col', 'the convolution algorithm setting is restored');
    }
    const { bytes, diff } = result;
    differences.cnn = diff;
    const ops = decodeModel(bytes).graph.nodes.map((n) => n.opType);
    assert.equal(ops.filter((o) => o === 'Conv').length, 2);
    assert.equal(ops.filter((o) => o === 'MaxPool').length, 1);
    assert.ok(!ops.includes('GatherElements'), `maxPool's gather is the MaxPool's output: ${ops.join(' ')}`);
  });

  it('convolutions with groups, stride, padding and dilation; AvgPool, padded and strided MaxPool, Conv1d', async () => {
    t.manualSeed(3);
    const net = new nn.Sequential(
      new nn.Conv2d(4, 6, 3, { padding: 2, stride: 2, dilation: 2, groups: 2 }), new nn.ReLU(),
      new nn.AvgPool2d(2, { padding: 1, countIncludePad: false }),
      new nn.MaxPool2d(3, { stride: 1, padding: 1, dilation: 1 }),
      new nn.Conv2d(6, 6, [2, 3], { groups: 6, bias: false, padding: [1, 0] }),
    ).eval();
    randomize(net, 3);
    differences['cnn (groups, stride, dilation, pools)'] = (await exportAndCompare((v) => net.call(v), [t.randn([2, 4, 13, 11])], { module: net })).diff;
    const conv1 = new nn.Conv1d(3, 5, 4, { stride: 3, padding: 2, dilation: 2 }).eval();
    const pool1 = new nn.MaxPool1d(2, { ceilMode: true });
    differences.conv1d = (await exportAndCompare((v) => pool1.call(conv1.call(v)), [t.randn([2, 3, 17])], { module: conv1 })).diff;
  });

  it('transposed convolutions (groups, stride, padding, dilation) through Col2Im at opset 18', async () => {
    t.manualSeed(5);
    const up = new nn.Sequential(
      new nn.ConvTranspose2d(4, 6, 3, { stride: 2, padding: 1, groups: 2 }), new nn.ReLU(),
      new nn.ConvTranspose2d(6, 3, [2, 3], { dilation: [1, 2], padding: [0, 1] }),
    ).eval();
    randomize(up, 5);
    differences['conv transpose 2d'] = (await exportAndCompare((v) => up.call(v), [t.randn([2, 4, 5, 7])], { module: up, opset: 18 })).diff;
    const up1 = new nn.ConvTranspose1d(3, 2, 4, { stride: 3 }).eval();
    differences['conv transpose 1d'] = (await exportAndCompare((v) => up1.call(v), [t.randn([1, 3, 6])], { module: up1, opset: 18 })).diff;
    assert.throws(() => exportOnnx((v) => up1.call(v), [t.randn([1, 3, 6])], { opset: 17 }), /Col2Im, which needs opset 18 or later/);
  });

  it('a small GPT in eval mode (embeddings, causal attention, LayerNorm, GELU, tied head)', async () => {
    t.manualSeed(4);
    const gpt = new nn.GPT({ vocabSize: 23, blockSize: 16, embedDim: 16, numHeads: 4, numLayers: 2, dropout: 0.1 }).eval();
    randomize(gpt, 4, 0.2);
    const idx = t.tensor([[1, 5, 7, 22, 0, 3, 3], [9, 9, 2, 4, 11, 20, 6]], { dtype: 'int32' });
    const { bytes, diff } = await exportAndCompare((v) => gpt.call(v), [idx], { module: gpt, inputNames: ['idx'] });
    differences.gpt = diff;
    const graph = decodeModel(bytes).graph;
    assert.equal(elemTypeName(graph.inputs[0]!.type!.kind === 'tensor' ? graph.inputs[0]!.type!.elemType : 0), 'INT32');
    const names = graph.initializers.map((i) => i.name);
    assert.ok(names.includes('wte.weight') && names.includes('blocks.1.attn.in_proj_weight'), names.join(', '));
    assert.ok(!names.includes('head.weight'), 'the tied head is the token embedding, written once');
    assert.equal(graph.nodes.filter((n) => n.opType === 'LayerNormalization').length, 5);
  });

  it('a 2-layer LSTM, its outputs as a record (names from the keys)', async () => {
    t.manualSeed(5);
    const lstm = new nn.LSTM(3, 5, { numLayers: 2 }).eval();
    const fn = (x: t.Tensor): Record<string, t.Tensor> => {
      const [y, state] = lstm.call(x);
      const [h, c] = state as [t.Tensor, t.Tensor];
      return { y, h, c };
    };
    const { bytes, diff } = await exportAndCompare(fn, [t.randn([6, 2, 3])], { module: lstm });
    differences.lstm = diff;
    assert.deepEqual(decodeModel(bytes).graph.outputs.map((o) => o.name), ['y', 'h', 'c']);
  });

  it('primitives one by one, at opsets 13, 17 and 18', async () => {
    t.manualSeed(6);
    // scatterAdd needs ScatterElements' reduction (opset 16): left out at opset 13.
    const primitives = (scatter: boolean) => (x: t.Tensor, y: t.Tensor, k: t.Tensor, q: t.Tensor): t.Tensor[] => {
      const pos = t.add(t.abs(x), 0.5);
      const unary = [t.exp(x), t.log(pos), t.log1p(pos), t.expm1(x), t.sqrt(pos), t.rsqrt(pos), t.sin(x), t.cos(x), t.tanh(x),
        t.sigmoid(x), t.erf(x), t.neg(x), t.sign(x), t.floor(x), t.ceil(x), t.round(t.mul(x, 2)), t.relu(x), t.gelu(x)];
      const binary = [t.sub(x, y), t.div(x, pos), t.pow(pos, y), t.maximum(x, y), t.minimum(x, y), t.where(t.gt(x, y), x, y)];
      const compare = [t.eq(t.round(x), t.round(y)), t.ne(t.round(x), t.round(y)), t.lt(x, y), t.le(x, y), t.ge(x, y),
        t.logicalAnd(t.gt(x, 0), t.gt(y, 0)), t.logicalOr(t.gt(x, 0), t.lt(y, 0)), t.logicalNot(t.gt(x, 0)), t.isnan(t.log(x))];
      const reductions = [t.sum(x, [0, 2]), t.sum(x, 1, true), t.prod(y, -1), t.max(x, [1, 2], true), t.min(x, 0), t.mean(x, 2),
        t.argmax(x, 1), t.argmin(x, 2, true), t.cumsum(x, 1), t.sum(t.cast(t.gt(x, 0), 'int32'), 1), t.cumsum(k, 0)];
      const nnOps = [t.softmax(x, 1), t.logSoftmax(x, -1), t.layerNorm(x, [4]),
        t.scaledDotProductAttention(q, x, y), t.scaledDotProductAttention(x, q, q, { isCausal: true, scale: 0.3 })];
      const shape = [t.flip(x, [0, 2]), t.cat([x, y, x], 1), t.pad(x, [1, 2, 0, 3], 'constant', -2), x.at(null, [1, null, 2], [1, 4, 2]),
        t.unfold(x, 1, 2, 1), t.unfold(x, 2, 3, 1), t.permute(x, [2, 0, 1]), t.gather(x, 2, k), ...(scatter ? [t.scatterAdd(x, 2, k, y)] : []),
        t.argsort(x, 1), t.argsort(x, 2, { descending: true }), t.cast(t.mul(x, 3), 'int32'), t.cast(k, 'float32'), t.linalg.det(t.add(q, t.eye(4)))];
      return [...unary, ...binary, ...compare, ...reductions, ...nnOps, ...shape];
    };
    const x = t.randn([2, 3, 4]), y = t.randn([2, 3, 4]), q = t.randn([2, 4, 4]);
    const k = t.tensor([[[0, 3, 1, 1], [2, 2, 0, 3], [1, 0, 3, 2]], [[3, 3, 3, 0], [0, 1, 2, 3], [2, 0, 1, 1]]], { dtype: 'int32' });
    const used = new Set(t.noGrad(() => t.trace(primitives(true), [x, y, k, q])).graph.nodes.map((n) => n.op));
    for (const p of ['log1p', 'expm1', 'rsqrt', 'erf', 'gelu', 'sign', 'round', 'isnan', 'logicalNot', 'pow', 'maximum', 'ne', 'le', 'logicalAnd', 'where',
      'cast', 'prod', 'max', 'min', 'argmax', 'argmin', 'cumsum', 'softmax', 'logSoftmax', 'layerNormCore', 'attention', 'flip', 'cat', 'pad', 'slice',
      'unfold', 'gather', 'scatterAdd', 'argsort', 'det']) {
      assert.ok(used.has(p), `the test traces ${p}`);
    }
    for (const opset of [13, 17, 18]) {
      // OnnxModel is checked at the default opset only (the importer's opset handling is tested on its own).
      const { diff } = await exportAndCompare(primitives(opset >= 16), [x, y, k, q], { opset }, opset === 17);
      differences[`primitives, opset ${opset}`] = diff;
    }
  });

  it('names: inputs returned as they are, one value returned twice, a parameter returned', async () => {
    const w = new nn.Linear(2, 2);
    const fn = (a: t.Tensor, b: t.Tensor): t.Tensor[] => { const s = t.add(a, b); return [a, s, s, w.weight]; };
    const { bytes } = await exportAndCompare(fn, [t.randn([2, 2]), t.randn([2, 2])], { inputNames: ['a', 'b'], outputNames: ['a_out', 's1', 's2', 'weight'] });
    const graph = decodeModel(bytes).graph;
    assert.deepEqual(graph.outputs.map((o) => o.name), ['a_out', 's1', 's2', 'weight']);
  });

  it('prints the largest differences vs onnxruntime', () => {
    for (const [name, d] of Object.entries(differences)) console.log(`  max |onnxruntime − tessera| ${name}: ${d.toExponential(2)}`);
  });
});

describe('exportOnnx: a mixture-of-experts layer (routing by tensor ops: TopK, one-hot counts, scatter and gather)', () => {
  it('runs in onnxruntime and in OnnxModel', async () => {
    t.manualSeed(23);
    const moe = new nn.MoE(8, 4, { topK: 2, capacityFactor: 0.75, hiddenDim: 16 }).eval();
    randomize(moe, 23);
    differences['moe'] = (await exportAndCompare((v) => moe.call(v), [t.randn([12, 8])], { module: moe })).diff;
  });
});

describe('exportOnnx refuses what it cannot write, naming it', () => {
  it('dropout in training mode: call model.eval()', () => {
    const m = new nn.Sequential(new nn.Linear(3, 3), new nn.Dropout(0.5));
    assert.throws(() => exportOnnx((v) => m.call(v), [t.randn([2, 3])]), (e: Error) =>
      e instanceof t.TesseraError && /randomUniform/.test(e.message) && /model\.eval\(\)/.test(e.message));
    m.eval();
    assert.ok(exportOnnx((v) => m.call(v), [t.randn([2, 3])]).length > 0);
  });

  it('an unsupported primitive names itself', () => {
    assert.throws(() => exportOnnx((a) => t.linalg.cholesky(a), [t.eye(3)]), (e: Error) =>
      e instanceof t.TesseraError && /primitive 'cholesky'/.test(e.message));
    const patches = (v: t.Tensor): t.Tensor => t.im2col(v, 2);
    assert.throws(() => exportOnnx(patches, [t.randn([1, 2, 4, 4])]), (e: Error) => e instanceof t.TesseraError && /'im2col'/.test(e.message));
    const q = t.quant.QuantizedLinear.fromLinear(new nn.Linear(4, 3));
    assert.throws(() => exportOnnx((v) => q.call(v), [t.randn([2, 4])]), (e: Error) =>
      e instanceof t.TesseraError && /primitive 'quantizedMatmul'/.test(e.message) && /float model/.test(e.message));
    const branchy = (v: t.Tensor): t.Tensor => t.cond(t.gt(t.sum(v), 0), () => t.neg(v), () => v) as t.Tensor;
    assert.throws(() => exportOnnx(branchy, [t.randn([3])]), (e: Error) => e instanceof t.TesseraError && /'cond'/.test(e.message));
  });

  it('BatchNorm in training mode (it writes its running statistics)', () => {
    const bn = new nn.BatchNorm1d(3);
    assert.throws(() => exportOnnx((v) => bn.call(v), [t.randn([4, 3])]), (e: Error) => e instanceof t.TesseraError && /eval\(\)/.test(e.message));
    bn.eval();
    assert.ok(exportOnnx((v) => bn.call(v), [t.randn([4, 3])], { module: bn }).length > 0);
  });

  it('reading values inside the function, bad options', () => {
    assert.throws(() => exportOnnx((v) => t.mul(v, v.sum().item()), [t.randn([3])]), (e: Error) => e instanceof t.TesseraError && /read the values/.test(e.message));
    assert.throws(() => exportOnnx((v) => v, [t.randn([3])], { opset: 11 }), /opset 11 is not supported/);
    assert.throws(() => exportOnnx((v) => v, [t.randn([3])], { inputNames: ['a', 'b'] }), /2 input name\(s\) for 1 example input/);
    assert.throws(() => exportOnnx((v) => t.neg(v), [t.randn([3])], { inputNames: ['a'], outputNames: ['a'] }), /'a' is given to two/);
  });
});

/** Runs exported bytes in onnxruntime and OnnxModel on each input list and compares with fn's eager outputs. */
async function compareAtSizes(bytes: Uint8Array, fn: (...x: t.Tensor[]) => t.Tensor, inputLists: t.Tensor[][]): Promise<void> {
  const session = await ort.InferenceSession.create(bytes);
  const model = OnnxModel.load(bytes);
  for (const inputs of inputLists) {
    const expected = t.noGrad(() => fn(...inputs));
    const sizes = inputs.map((x) => x.shape.join('x')).join(', ');
    const feeds: Record<string, ort.Tensor> = {};
    session.inputNames.forEach((name, i) => { feeds[name] = ortTensor(inputs[i]!); });
    const got = (await session.run(feeds))[session.outputNames[0]!]!;
    assert.deepEqual(got.dims, expected.shape, `onnxruntime shape at ${sizes}`);
    assertClose(Array.from(got.data as Float32Array), expected, TOL, `onnxruntime at ${sizes}`);
    const mine = model.run(Object.fromEntries(model.inputs.map((info, i) => [info.name, inputs[i]!])))[model.outputs[0]!.name]!;
    assertClose(mine, expected, TOL, `OnnxModel at ${sizes}`);
  }
}

const dims = (bytes: Uint8Array): { inputs: unknown[]; outputs: unknown[] } => {
  const g = decodeModel(bytes).graph;
  const shape = (v: { type?: unknown }): unknown => (v.type as { shape?: unknown }).shape;
  return { inputs: g.inputs.map(shape), outputs: g.outputs.map(shape) };
};

describe('exportOnnx with dynamicAxes (torch.onnx.export dynamic_axes)', () => {
  it('a CNN with a dynamic batch: the flatten\'s target shape and a mean\'s count are computed from the input', async () => {
    t.manualSeed(21);
    const cnn = new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(), new nn.Linear(4 * 3 * 3, 5)).eval();
    randomize(cnn, 21);
    const fn = (x: t.Tensor): t.Tensor => t.sub(cnn.call(x), t.mean(cnn.call(x), 0)); // a batch mean: divides by the batch size
    const bytes = exportOnnx(fn, [t.randn([2, 3, 6, 6])], { module: cnn, inputNames: ['images'], dynamicAxes: { images: { 0: 'batch' } } });
    assert.deepEqual(dims(bytes), { inputs: [['batch', 3, 6, 6]], outputs: [['batch', 5]] });
    await compareAtSizes(bytes, fn, [[t.randn([2, 3, 6, 6])], [t.randn([1, 3, 6, 6])], [t.randn([7, 3, 6, 6])]]);
    // A filled tensor made from the batch size (an initial state) becomes a ConstantOfShape.
    const filled = (x: t.Tensor): t.Tensor => t.add(x, t.full([x.shape[0]!, 3], 0.5));
    const fillBytes = exportOnnx(filled, [t.randn([5, 3])], { dynamicAxes: { input_0: [0] } });
    assert.ok(decodeModel(fillBytes).graph.nodes.some((n) => n.opType === 'ConstantOfShape'));
    await compareAtSizes(fillBytes, filled, [[t.randn([2, 3])], [t.randn([9, 3])]]);
  });

  it('a GPT with dynamic batch and sequence: positions as a Range, the causal mask from the scores\' shape, batch·seq flattens', async () => {
    t.manualSeed(22);
    const gpt = new nn.GPT({ vocabSize: 13, blockSize: 12, embedDim: 16, numHeads: 2, numLayers: 1 }).eval();
    const fn = (ids: t.Tensor): t.Tensor => t.reshape(gpt.call(ids), [-1, 13]); // [batch·seq, vocab], as for a loss
    const ids = (b: number, s: number): t.Tensor => t.randint(0, 13, [b, s]);
    const bytes = exportOnnx(fn, [ids(2, 6)], { module: gpt, inputNames: ['ids'], dynamicAxes: { ids: { 0: 'batch', 1: 'seq' } } });
    assert.deepEqual(dims(bytes), { inputs: [['batch', 'seq']], outputs: [['batch*seq', 13]] });
    const ops = decodeModel(bytes).graph.nodes.map((n) => n.opType);
    assert.ok(ops.includes('Range') && ops.includes('Trilu'), ops.join(' '));
    await compareAtSizes(bytes, fn, [[ids(2, 6)], [ids(3, 4)], [ids(1, 12)]]);
  });

  it('refuses what it cannot make dynamic, naming it; checks the spec', () => {
    const x = t.randn([4, 3]);
    // A tensor built from the size with values other than an arange or a fill cannot follow it.
    const squares = (v: t.Tensor): t.Tensor => t.mul(v, t.tensor(Array.from({ length: v.shape[0]! }, (_, i) => [i * i])));
    assert.throws(() => exportOnnx(squares, [x], { dynamicAxes: { input_0: [0] } }), (e: Error) =>
      e instanceof t.TesseraError && /constant '.*' \(shape \[4, 1\]\) changes its shape with the size of 'input_0_dim0'/.test(e.message));
    // An unrolled recurrence has more nodes for a longer sequence.
    const lstm = new nn.LSTM(3, 4, { batchFirst: true }).eval();
    assert.throws(() => exportOnnx((v) => lstm.call(v)[0], [t.randn([1, 3, 3])], { dynamicAxes: { input_0: { 1: 'time' } } }), (e: Error) =>
      e instanceof t.TesseraError && /the traced graph changes with the size of 'time' \(3 in the example, traced again at 4\)/.test(e.message));
    assert.throws(() => exportOnnx((v) => v, [x], { dynamicAxes: { x: [0] } }), /dynamicAxes names the input 'x', but the inputs are 'input_0'/);
    assert.throws(() => exportOnnx((v) => v, [x], { dynamicAxes: { input_0: [2] } }), /axis 2 of 'input_0', which has shape \[4, 3\]/);
    assert.throws(() => exportOnnx((a, b) => t.add(a, t.sum(b)), [x, t.randn([5])], { dynamicAxes: { input_0: { 0: 'n' }, input_1: { 0: 'n' } } }),
      /the dynamic size 'n' is 4 on one example input and 5 on axis 0 of 'input_1'/);
  });
});
