import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { Module, Parameter } from '../../src/nn/module.js';
import { Sequential, ModuleList, ModuleDict } from '../../src/nn/containers.js';
import { Linear, Flatten } from '../../src/nn/layers/linear.js';
import { ReLU } from '../../src/nn/layers/activation.js';

class Net extends Module {
  fc1 = new Linear(4, 3);
  act = new ReLU();
  fc2 = new Linear(3, 2, { bias: false });
  scale: t.Tensor;
  constructor() {
    super();
    this.scale = this.registerBuffer('scale', t.ones([2]));
  }
  override forward(x: t.Tensor): t.Tensor {
    return this.fc2.call(this.act.call(this.fc1.call(x))).mul(this.scale);
  }
}

test('fields that are Parameters and Modules register themselves, in order, with dotted names', () => {
  const net = new Net();
  assert.deepEqual([...net.namedParameters()].map(([n]) => n), ['fc1.weight', 'fc1.bias', 'fc2.weight']);
  assert.deepEqual([...net.namedBuffers()].map(([n]) => n), ['scale']);
  assert.deepEqual([...net.namedModules()].map(([n]) => n), ['', 'fc1', 'act', 'fc2']);
  assert.deepEqual([...net.namedChildren()].map(([n]) => n), ['fc1', 'act', 'fc2']);
  assert.equal(net.parameterCount(), 4 * 3 + 3 + 3 * 2);
  // PyTorch's order: a module's own entries before its children's.
  assert.deepEqual([...net.stateDict().keys()], ['scale', 'fc1.weight', 'fc1.bias', 'fc2.weight']);
  for (const p of net.parameters()) assert.ok(p.requiresGrad && p.isLeaf);
});

test('train/eval set the mode on the whole tree; zeroGrad clears gradients; apply visits children first', () => {
  const net = new Net();
  net.eval();
  assert.ok([...net.modules()].every((m) => !m.training));
  net.train();
  assert.ok([...net.modules()].every((m) => m.training));
  net.call(t.ones([2, 4])).sum().backward();
  assert.ok(net.fc1.weight.grad !== undefined);
  net.zeroGrad();
  assert.ok(net.parameters().every((p) => p.grad === undefined));
  const visited: string[] = [];
  net.apply((m) => visited.push(m.constructor.name));
  assert.deepEqual(visited, ['Linear', 'ReLU', 'Linear', 'Net']);
});

test('stateDict round trip; loadStateDict copies in place and reports bad keys and shapes clearly', () => {
  t.manualSeed(1);
  const a = new Net();
  t.manualSeed(2);
  const b = new Net();
  const weightBefore = b.fc1.weight;
  assert.notDeepEqual(a.fc1.weight.toArray(), b.fc1.weight.toArray());
  b.loadStateDict(a.stateDict());
  assert.equal(b.fc1.weight, weightBefore, 'the parameter object is kept');
  assert.deepEqual(b.fc1.weight.toArray(), a.fc1.weight.toArray());
  const x = t.randn([3, 4]);
  assert.deepEqual(b.call(x).toArray(), a.call(x).toArray());

  const sd = a.stateDict();
  sd.delete('fc1.bias');
  sd.set('extra', t.zeros([1]));
  assert.throws(() => b.loadStateDict(sd), /missing keys.*fc1\.bias.*unexpected keys.*extra/s);
  const result = b.loadStateDict(sd, false);
  assert.deepEqual(result, { missingKeys: ['fc1.bias'], unexpectedKeys: ['extra'] });
  const wrong = a.stateDict();
  wrong.set('fc1.weight', t.zeros([4, 3]));
  assert.throws(() => b.loadStateDict(wrong), /fc1\.weight: checkpoint \[4, 3\] vs model \[3, 4\]/);
});

test('containers register members by position or key', () => {
  const seq = new Sequential(new Linear(2, 3), new ReLU(), new Linear(3, 1));
  assert.deepEqual([...seq.namedParameters()].map(([n]) => n), ['0.weight', '0.bias', '2.weight', '2.bias']);
  assert.deepEqual(seq.call(t.ones([5, 2])).shape, [5, 1]);
  const list = new ModuleList([new Linear(1, 1), new Linear(1, 1)]);
  assert.deepEqual([...list.namedParameters()].map(([n]) => n), ['0.weight', '0.bias', '1.weight', '1.bias']);
  const dict = new ModuleDict({ enc: new Linear(1, 2), dec: new Linear(2, 1, { bias: false }) });
  assert.deepEqual([...dict.namedParameters()].map(([n]) => n), ['enc.weight', 'enc.bias', 'dec.weight']);
  assert.throws(() => dict.get('nope'), /no module named 'nope' \(keys: enc, dec\)/);
  assert.throws(() => seq.get(3), /index 3 is outside a Sequential of 3 layers/);
});

test('a shared (tied) parameter is listed once but appears under both names in the state dict', () => {
  class Tied extends Module {
    a = new Linear(2, 2, { bias: false });
    b = new Linear(2, 2, { bias: false });
    constructor() {
      super();
      this.b.weight = this.a.weight;
    }
  }
  const m = new Tied();
  assert.equal(m.parameters().length, 1);
  assert.deepEqual([...m.stateDict().keys()], ['a.weight', 'b.weight']);
});

test('summary lists layers, output shapes and parameter counts', () => {
  const seq = new Sequential(new Flatten(), new Linear(6, 4), new ReLU(), new Linear(4, 2));
  const rows = seq.summaryRows([3, 2, 3]);
  assert.deepEqual(rows.map((r) => [r.name, r.type, r.outputShape, r.parameters]), [
    ['', 'Sequential', [3, 2], 0],
    ['0', 'Flatten', [3, 6], 0],
    ['1', 'Linear', [3, 4], 28],
    ['2', 'ReLU', [3, 4], 0],
    ['3', 'Linear', [3, 2], 10],
  ]);
  const text = seq.summary([3, 2, 3]);
  assert.match(text, /Total parameters: 38 \(trainable 38\)/);
  assert.match(text, /1\s+Linear\s+\[3, 4\]\s+28/);
});

test('Linear matches x W^T + b in float64, forward and backward; default init is within ±1/sqrt(fan_in)', () => {
  t.manualSeed(0);
  const lin = new Linear(5, 3, { dtype: 'float64' });
  const bound = 1 / Math.sqrt(5);
  for (const v of [...lin.weight.data(), ...lin.bias!.data()]) assert.ok(Math.abs(v) <= bound);
  const x = t.randn([4, 5], { dtype: 'float64' });
  const y = lin.call(x);
  const W = lin.weight.toArray() as number[][], b = lin.bias!.toArray() as number[], X = x.toArray() as number[][];
  const expected = X.map((row) => W.map((w, o) => w.reduce((s, wi, i) => s + wi * row[i]!, b[o]!)));
  (y.toArray() as number[][]).forEach((r, i) => r.forEach((v, j) => assert.ok(Math.abs(v - expected[i]![j]!) < 1e-12)));
  y.sum().backward();
  // d/dW sum(xW^T+b) = column sums of x for every output row; d/db = batch size.
  const colSums = X[0]!.map((_, i) => X.reduce((s, r) => s + r[i]!, 0));
  (lin.weight.grad!.toArray() as number[][]).forEach((r) => r.forEach((v, i) => assert.ok(Math.abs(v - colSums[i]!) < 1e-12)));
  assert.deepEqual(lin.bias!.grad!.toArray(), [4, 4, 4]);
  assert.throws(() => lin.call(t.ones([2, 4], { dtype: 'float64' })), /has 4 features.*expects 5/);
});

test('Parameter wraps a tensor as a trainable leaf; to() keeps ties', () => {
  const p = new Parameter(t.zeros([2]));
  assert.ok(p.requiresGrad && p.isLeaf);
  const seq = new Sequential(new Linear(2, 2));
  assert.equal(seq.to('cpu'), seq);
  assert.equal(seq.parameters()[0]!.backend, 'cpu');
});

test('to(backend) moves parameters and buffers to another backend; outputs and optimizer steps agree with cpu', async () => {
  await import('../../src/backend/wasm/backend.js');
  const { SGD } = await import('../../src/optim/sgd.js');
  const { BatchNorm1d } = await import('../../src/nn/layers/normalization.js');
  t.manualSeed(4);
  const make = () => new Sequential(new Linear(3, 4), new BatchNorm1d(4), new ReLU(), new Linear(4, 2));
  const onCpu = make();
  const moved = make();
  moved.loadStateDict(onCpu.stateDict());
  moved.to('wasm');
  assert.ok([...moved.parameters(), ...moved.buffers()].every((p) => p.backend === 'wasm'));
  assert.ok(moved.parameters().every((p) => p instanceof Parameter && p.requiresGrad));
  const x = t.randn([5, 3]);
  const xw = t.tensor(x.data() as Float32Array, { shape: [5, 3], backend: 'wasm' });
  const step = (m: Sequential, input: t.Tensor) => {
    const opt = new SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
    m.call(input).square().sum().backward();
    opt.step();
  };
  step(onCpu, x);
  step(moved, xw);
  const a = [...onCpu.stateDict().values()].flatMap((v) => [...v.data()]);
  const b = [...moved.stateDict().values()].flatMap((v) => [...v.data()]);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-5, `entry ${i}: ${v} vs ${b[i]}`));
});
