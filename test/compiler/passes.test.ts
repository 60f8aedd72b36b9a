import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { trace, Graph } from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { modelGraphs, assertEquivalent } from './helpers.js';
import { pinBackend } from '../helpers/backends.js';

// cpu, whatever the default backend: assertEquivalent runs each optimized graph on the planned executor, which works on cpu tensors only (wasm inputs replay through the interpreter).
pinBackend('cpu');

const models = modelGraphs();
const passes: C.Pass[] = [C.dce, C.cse, C.constantFold, C.simplify, C.mergeMatmuls, C.layout, C.fuseElementwise];

for (const p of passes) {
  test(`${p.name} keeps every model's outputs (MLP, CNN+BN, GPT, LSTM, training graphs)`, () => {
    for (const m of models) {
      const { graph } = p.run(m.graph);
      C.runPipeline(graph, []); // validates nothing; explicit validation below
      assertEquivalent(m.graph, graph, m.inputs, `${p.name} on ${m.name}`);
    }
  });
}

test('matmul-epilogue (after fusion) and the whole pipeline keep every model\'s outputs', () => {
  for (const m of models) {
    const fused = C.fuseElementwise.run(m.graph).graph;
    assertEquivalent(m.graph, C.matmulEpilogue.run(fused).graph, m.inputs, `matmul-epilogue on ${m.name}`);
    const { graph, reports } = C.runPipeline(m.graph);
    assert.ok(graph.nodes.length < m.graph.nodes.length, `${m.name}: ${graph.nodes.length} < ${m.graph.nodes.length}`);
    assert.equal(reports.length, C.defaultPasses().length);
    assertEquivalent(m.graph, graph, m.inputs, `pipeline on ${m.name}`);
  }
});

test('QKV: three matmuls sharing the hidden state become one matmul and three slices', () => {
  const gpt = models.find((m) => m.name === 'gpt')!;
  const count = (g: Graph, op: string): number => g.nodes.filter((n) => n.op === op).length;
  const before = count(gpt.graph, 'matmul');
  const { graph, changes } = C.mergeMatmuls.run(gpt.graph);
  assert.equal(changes.length, 1, changes.join('\n'));
  assert.match(changes[0]!, /3 matmuls sharing %\d+ -> one matmul \[8, 24\] \+ 3 slices/);
  assert.equal(count(graph, 'matmul'), before - 2);
  assert.equal(count(graph, 'slice'), 3);
  assertEquivalent(gpt.graph, graph, gpt.inputs, 'qkv');
});

test('CSE merges identical subexpressions and equal constants', () => {
  const { graph } = trace((x: t.Tensor) => t.add(t.mul(t.exp(x), 2), t.mul(t.exp(x), 2)), [t.randn([3])]);
  const { graph: g2, changes } = C.cse.run(graph);
  assert.ok(changes.some((c) => /\(exp\)/.test(c)) && changes.some((c) => /\(mul\)/.test(c)), changes.join('\n'));
  assert.equal(g2.nodes.filter((n) => n.op === 'exp').length, 1);
  assertEquivalent(graph, g2, () => [t.randn([3])], 'cse');
});

test('constant folding evaluates constant subgraphs once', () => {
  const c = t.tensor([1, 2, 3]);
  const { graph } = trace((x: t.Tensor) => t.add(x, t.exp(t.mul(c, 2))), [t.randn([3])]);
  const { graph: g2, changes } = C.constantFold.run(graph);
  assert.ok(changes.some((s) => /fold: exp/.test(s)), changes.join('\n'));
  assert.equal(g2.nodes.filter((n) => n.op === 'exp').length, 0);
  assertEquivalent(graph, g2, () => [t.randn([3])], 'fold');
});

test('simplify removes x*1, x+0, transpose of transpose, reshape chains and same-shape expands', () => {
  const { graph } = trace((x: t.Tensor) => {
    const a = t.add(t.mul(x, 1), 0);
    const b = t.transpose(t.transpose(a, 0, 1), 0, 1);
    const c = t.reshape(t.reshape(b, [6]), [2, 3]);
    return t.exp(t.expand(c, [2, 3]));
  }, [t.randn([2, 3])]);
  const { graph: g2, changes } = C.simplify.run(graph);
  const text = changes.join('\n');
  for (const why of ['x \\* 1', 'x \\+ 0', 'permute∘permute = identity', 'reshape chain back']) assert.match(text, new RegExp(why));
  const { graph: g3 } = C.dce.run(g2);
  assert.deepEqual(g3.nodes.map((n) => n.op), ['exp']);
  assertEquivalent(graph, g3, () => [t.randn([2, 3])], 'simplify');
});

test('elementwise fusion: softmax becomes reductions + fused kernels; layernorm chains fuse', () => {
  const { graph } = trace((x: t.Tensor) => {
    const m = t.max(x, -1, true);
    const e = t.exp(t.sub(x, m));
    return t.div(e, t.sum(e, -1, true));
  }, [t.randn([4, 5])]);
  const { graph: g2, changes } = C.fuseElementwise.run(graph);
  assert.ok(g2.nodes.every((n) => n.op === 'fusedElementwise'), g2.toString());
  assert.equal(g2.nodes.length, 4, 'max, exp(x - max), sum, div');
  assert.ok(changes.some((c) => /sub\+exp/.test(c)), changes.join('\n'));
  assertEquivalent(graph, g2, () => [t.randn([4, 5])], 'softmax fusion', 1e-6);
});

test('matmul + bias + relu become one matmulEpilogue; layout folds a transposed operand', () => {
  const w = t.randn([4, 3]), b = t.randn([3]);
  const { graph } = trace((x: t.Tensor) => t.relu(t.add(t.matmul(x, w), b)), [t.randn([2, 4])]);
  const { graph: g2 } = C.runPipeline(graph);
  assert.deepEqual(g2.nodes.map((n) => n.op), ['matmulEpilogue']);
  assertEquivalent(graph, g2, () => [t.randn([2, 4])], 'matmul epilogue', 1e-6);
  const { graph: tg } = trace((x: t.Tensor) => t.matmul(t.contiguous(t.transpose(x, 0, 1)), w), [t.randn([4, 2])]);
  const { graph: tg2, changes } = C.layout.run(tg);
  assert.match(changes.join('\n'), /contiguous\(permute\) folded into matmul/);
  assert.equal(tg2.nodes.filter((n) => n.op === 'contiguous').length, 0);
  assertEquivalent(tg, tg2, () => [t.randn([4, 2])], 'layout');
});

test('DCE removes unused work', () => {
  const { graph } = trace((x: t.Tensor) => { t.exp(x); return t.neg(x); }, [t.randn([3])]);
  const { graph: g2, changes } = C.dce.run(graph);
  assert.deepEqual(g2.nodes.map((n) => n.op), ['neg']);
  assert.match(changes[0]!, /removed exp/);
});

test('conv + batchnorm folding for inference (ops/nn conv2d + batchNorm, and the test CNN)', () => {
  t.manualSeed(9);
  const w = t.randn([4, 2, 3, 3]).requiresGrad_(), b = t.randn([4]).requiresGrad_();
  const mean = t.randn([4]), variance = t.rand([4]), gamma = t.randn([4]).requiresGrad_(), beta = t.randn([4]).requiresGrad_();
  const f = (x: t.Tensor): t.Tensor => t.relu(t.batchNorm(t.conv2d(x, w, { bias: b, padding: 1 }), mean, variance, { weight: gamma, bias: beta, training: false }));
  const { graph } = trace(f, [t.randn([2, 2, 5, 5])]);
  const { graph: g2, reports } = C.runPipeline(graph, C.inferencePasses());
  assert.match(reports.find((r) => r.pass === 'fold-affine')!.changes.join('\n'), /folded into the weights of matmul/);
  const tail = g2.nodes[g2.nodes.length - 1]!;
  assert.equal(tail.op, 'fusedElementwise');
  assert.deepEqual((tail.attrs as { spec: C.FusedSpec }).spec.body.filter((e) => e.kind === 'op').map((e) => (e as { op: string }).op), ['add', 'relu'],
    'only the folded shift and the relu remain after the matmul');
  assertEquivalent(graph, g2, () => [t.randn([2, 2, 5, 5])], 'conv+bn folding', 1e-4);
  const cnn = models.find((m) => m.name === 'cnn+bn')!;
  const { graph: c2, reports: cr } = C.runPipeline(cnn.graph, C.inferencePasses());
  assert.equal(cr.find((r) => r.pass === 'fold-affine')!.changes.length, 1);
  assertEquivalent(cnn.graph, c2, cnn.inputs, 'cnn conv+bn folding', 1e-4);
});
