// quantizeModel on MLPs: the swap and its report, outputs close to the float model's, accuracy on
// real MNIST digits (the 10,000 shipped in data/) within a stated bound, and the checkpoint round trip.
import { it, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as t from '../../src/index.js';
import { nn, quant } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { evaluateClassifier } from '../../src/train/recipes/mnist.js';
import { trainedMnistMlp, withTrainedCliCheckpoint } from './trained-mnist-mlp.js';

class Net extends nn.Module {
  body = new nn.Sequential(new nn.Linear(20, 32), new nn.ReLU(), new nn.Linear(32, 16));
  head = new nn.Linear(16, 4, { bias: false });
  override forward(x: t.Tensor): t.Tensor {
    return this.head.call(this.body.call(x).relu());
  }
}

forEachBackend('quantizeModel', () => {
  it('swaps every Linear (nested, in Sequential) and reports bytes and weight error', () => {
    t.manualSeed(2);
    const net = new Net();
    const x = t.randn([5, 20]);
    const before = t.noGrad(() => net.call(x)).data();
    const weights = [net.body.get(0), net.body.get(2), net.head].map((l) => (l as nn.Linear).weight.data());
    const { model, report } = quant.quantizeModel(net);
    assert.equal(model, net);
    assert.ok(net.body.get(0) instanceof quant.QuantizedLinear && net.body.get(2) instanceof quant.QuantizedLinear && net.head instanceof quant.QuantizedLinear);
    assert.deepEqual(report.layers.map((l) => l.name), ['body.0', 'body.2', 'head']);
    assert.deepEqual(report.layers.map((l) => [l.bytesBefore, l.bytesAfter]), [[(640 + 32) * 4, 640 + 32 * 4 + 32 * 4], [(512 + 16) * 4, 512 + 16 * 4 + 16 * 4], [64 * 4, 64 + 4 * 4]]);
    assert.equal(report.modelBytesBefore, report.layers.reduce((s, l) => s + l.bytesBefore, 0));
    assert.equal(report.modelBytesAfter, report.layers.reduce((s, l) => s + l.bytesAfter, 0));
    // max |ΔW| is at most half of the layer's largest per-channel step.
    report.layers.forEach((l, i) => {
      const w = weights[i]!;
      const rows = l.outFeatures, k = l.inFeatures;
      let bound = 0;
      for (let r = 0; r < rows; r++) {
        let amax = 0;
        for (let c = 0; c < k; c++) amax = Math.max(amax, Math.abs(w[r * k + c]!));
        bound = Math.max(bound, amax / 127 / 2);
      }
      assert.ok(l.maxAbsError > 0 && l.maxAbsError <= bound * (1 + 1e-5), `${l.name}: ${l.maxAbsError} vs ${bound}`);
    });
    const after = t.noGrad(() => net.call(x)).data();
    for (let i = 0; i < before.length; i++) assert.ok(Math.abs(before[i]! - after[i]!) < 0.02, `output ${i}: ${before[i]} vs ${after[i]}`);
    assert.match(quant.formatQuantizeReport(report), /body\.0\s+20 → 32/);
  });

  it('include filters by name; the root Linear itself comes back as a new module', () => {
    const net = new Net();
    quant.quantizeModel(net, { include: [/^body\./], bits: 4, scheme: 'group', groupSize: 16 });
    assert.ok(net.body.get(0) instanceof quant.QuantizedLinear && net.head instanceof nn.Linear);
    assert.throws(() => quant.quantizeModel(new Net(), { include: ['nope'] }), /no Linear layer matches the include filter; the model's Linear layers are: body\.0, body\.2, head/);
    const single = quant.quantizeModel(new nn.Linear(8, 2));
    assert.ok(single.model instanceof quant.QuantizedLinear);
    assert.throws(() => quant.quantizeModel(new Net(), { scheme: 'per-channel', axis: 3 }), /quantizeModel: layer 'body\.0' \(Linear 20 → 32\): quantize: per-channel axis 3 is out of range/);
  });

  it('saves and loads through safetensors: int4 packed as U8, same outputs', () => {
    t.manualSeed(4);
    const net = new Net();
    quant.quantizeModel(net, { bits: 4, scheme: 'group', groupSize: 16, symmetric: false });
    const bytes = quant.serializeQuantized(net);
    const header = t.io.parseSafetensorsHeader(bytes);
    const dtypes = Object.fromEntries(header.entries.map((e) => [e.name, e.dtype]));
    assert.equal(dtypes['body.0.weight_q'], 'U8');
    assert.equal(dtypes['body.0.weight_scale'], 'F32');
    assert.equal(dtypes['body.0.weight_zero_point'], 'I32');
    const fresh = new Net();
    const loaded = quant.parseQuantizedInto(fresh, bytes);
    assert.equal(loaded, fresh);
    const x = t.randn([3, 20]);
    assert.deepEqual(Array.from(t.noGrad(() => fresh.call(x)).data()), Array.from(t.noGrad(() => net.call(x)).data()));
    assert.deepEqual(quant.quantizationConfig(fresh), quant.quantizationConfig(net));
    assert.throws(() => quant.parseQuantizedInto(new Net(), t.io.serializeStateDict(new Net().stateDict())), /no "tessera.quantization" metadata/);
  });
});

test('MNIST MLP: int8 per-channel and dynamic int8 lose < 1 point of accuracy, int4 group-16 < 3 (real digits, wasm)', async () => {
  const previous = t.currentBackendName();
  t.setBackend('wasm');
  try {
    const { build, state, testSet } = await trainedMnistMlp();
    const model = build();
    model.loadStateDict(state);
    model.eval();
    const float = t.noGrad(() => evaluateClassifier(model, testSet)).testAccuracy!;
    assert.ok(float > 0.85, `float accuracy ${float}`);
    for (const [opts, bound] of [
      [{ bits: 8 as const }, 0.01],
      [{ bits: 4 as const, scheme: 'group' as const, groupSize: 16 }, 0.03],
      [{ bits: 8 as const, activations: 'dynamic-int8' as const }, 0.01],
    ] as const) {
      const m = build();
      m.loadStateDict(state);
      m.eval();
      const { report } = quant.quantizeModel(m, opts);
      const acc = t.noGrad(() => evaluateClassifier(m, testSet)).testAccuracy!;
      assert.ok(float - acc < bound, `${JSON.stringify(opts)}: ${float} → ${acc}`);
      assert.ok(report.modelBytesAfter < report.modelBytesBefore / (opts.bits === 8 ? 3.5 : 5));
    }
  } finally {
    t.setBackend(previous);
  }
});

test('tessera quantize (weight-only and --dynamic) and tessera eval on a trained checkpoint (seconds: 1,024 records)', () => withTrainedCliCheckpoint('tessera-quant-', async (dir, logs) => {
  const { run: train } = await import('../../src/cli/train.js');
  const { run: quantize } = await import('../../src/cli/quantize.js');
  const { run: evaluate } = await import('../../src/cli/eval.js');
  const out = join(dir, 'int4.safetensors');
  assert.equal(await quantize([dir, '--bits', '4', '--scheme', 'group', '--group-size', '32', '--out', out, '--json']), 0);
  const summary = JSON.parse(logs.at(-1)!) as { float: { testAccuracy: number }; quantized: { testAccuracy: number }; modelBytesBefore: number; modelBytesAfter: number };
  assert.ok(summary.float.testAccuracy > 0.6);
  assert.ok(Math.abs(summary.float.testAccuracy - summary.quantized.testAccuracy) < 0.05);
  assert.ok(summary.modelBytesAfter < summary.modelBytesBefore / 5);
  logs.length = 0;
  assert.equal(await evaluate([out, '--json']), 0);
  const evaluated = JSON.parse(logs.at(-1)!) as { testAccuracy: number };
  assert.equal(evaluated.testAccuracy, summary.quantized.testAccuracy);
  logs.length = 0;
  assert.equal(await quantize([dir, '--bits', '8']), 0);
  assert.match(logs.join('\n'), /8-bit symmetric per-channel[\s\S]*float32: +test accuracy[\s\S]*quantized: +test accuracy/);
  const errors: string[] = [];
  const err = console.error;
  console.error = (...a: unknown[]) => { errors.push(a.join(' ')); };
  try {
    assert.equal(await quantize([dir, '--bits', '3']), 2);
    assert.equal(await quantize([out, '--bits', '8']), 2);
    assert.match(errors.join('\n'), /--bits must be 8 or 4, got 3[\s\S]*already quantized/);
    await assert.rejects(train(['mnist-mlp', '--resume', out]), /is a quantized inference checkpoint \(from tessera quantize\).*Resume from the float checkpoint/);
  } finally {
    console.error = err;
  }
  // --dynamic (int8 weights and activations) on the same trained checkpoint.
  logs.length = 0;
  const dyn = join(dir, 'dyn.safetensors');
  assert.equal(await quantize([dir, '--bits', '8', '--dynamic', '--out', dyn, '--json']), 0);
  const dynamic = JSON.parse(logs.at(-1)!) as { activations: string; float: { testAccuracy: number }; quantized: { testAccuracy: number }; quantizedSeconds: number };
  assert.equal(dynamic.activations, 'dynamic-int8');
  assert.ok(Math.abs(dynamic.float.testAccuracy - dynamic.quantized.testAccuracy) < 0.03);
  assert.ok(dynamic.quantizedSeconds > 0);
  logs.length = 0;
  assert.equal(await evaluate([dyn, '--json']), 0);
  assert.equal((JSON.parse(logs.at(-1)!) as { testAccuracy: number }).testAccuracy, dynamic.quantized.testAccuracy);
  logs.length = 0;
  assert.equal(await quantize([dir, '--dynamic']), 0);
  assert.match(logs.join('\n'), /8-bit symmetric per-channel, minmax calibration, dynamic int8 activations[\s\S]*quantized: +test accuracy/);
  const dynamicErrors: string[] = [];
  console.error = (...a: unknown[]) => { dynamicErrors.push(a.join(' ')); };
  try {
    assert.equal(await quantize([dir, '--bits', '4', '--dynamic']), 2);
    assert.equal(await quantize([dir, '--dynamic', '--asymmetric']), 2);
    assert.match(dynamicErrors.join('\n'), /--dynamic needs --bits 8 with a symmetric per-channel or per-tensor weight/);
  } finally {
    console.error = err;
  }
}));
