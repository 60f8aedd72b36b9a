// GPTQ: against an independent float64 reference (test/quant/fixtures/make_gptq_reference.py),
// against round to nearest (lower output error on correlated inputs, equal when H = I), block-size
// independence, the sequential model-level pass on a trained MNIST MLP, errors, checkpoints, the CLI.
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as t from '../../src/index.js';
import { nn, quant } from '../../src/index.js';
import { evaluateClassifier } from '../../src/train/recipes/mnist.js';
import { trainedMnistMlp, withTrainedCliCheckpoint } from './trained-mnist-mlp.js';
import { CalibrationNet as Net, normals, relativeError } from './calibration-helpers.js';

interface ReferenceCase {
  name: string; bits: 4 | 8; symmetric: boolean; scheme: 'group' | 'per-channel'; groupSize: number; actOrder: boolean;
  permutation: number[]; codes: number[]; scales: number[]; zeroPoints: number[] | null; dequantized: number[];
  outputError: number; rtnOutputError: number;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/gptq-reference.json', import.meta.url), 'utf8')) as {
  rows: number; cols: number; samples: number; inputs: number[]; weight: number[]; cases: ReferenceCase[];
};

/**
 * n rows of k features driven by a few shared factors (strongly correlated), with per-feature
 * scales. The mixing matrix depends on k only: every seed draws from the same distribution.
 */
function correlatedInputs(n: number, k: number, seed: number, factors = 4): Float32Array {
  const mix = Array.from({ length: factors * k }, normals(1000 + k));
  const g = normals(seed);
  const scale = Array.from({ length: k }, (_, j) => 0.5 + (j * 7 % k) / k * 2);
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    const f = Array.from({ length: factors }, g);
    for (let j = 0; j < k; j++) {
      let v = 0.3 * g();
      for (let a = 0; a < factors; a++) v += f[a]! * mix[a * k + j]!;
      out[r * k + j] = v * scale[j]!;
    }
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('GPTQ matches the float64 reference (fixtures/make_gptq_reference.py)', () => {
  const x = t.tensor(Float32Array.from(fixture.inputs)).reshape([fixture.samples, fixture.cols]);
  const w = t.tensor(Float32Array.from(fixture.weight)).reshape([fixture.rows, fixture.cols]);

  it('accumulates H = 2/n Σ x xᵀ exactly (integer inputs), from one tensor, a list, or a 3-D batch', () => {
    const h = quant.Hessian.fromInputs(x).matrix();
    const k = fixture.cols, n = fixture.samples;
    for (const [i, j] of [[0, 0], [3, 17], [17, 3], [47, 47], [5, 5], [5, 9], [20, 46]] as const) {
      let s = 0;
      for (let r = 0; r < n; r++) s += fixture.inputs[r * k + i]! * fixture.inputs[r * k + j]!;
      assert.equal(h[i * k + j], (2 / n) * s, `H[${i}, ${j}]`);
    }
    const halves = quant.Hessian.fromInputs([x.narrow(0, 0, 100), x.narrow(0, 100, n - 100)]);
    assert.deepEqual(halves.matrix(), h);
    assert.equal(halves.samples, n);
    assert.deepEqual(quant.Hessian.fromInputs(x.reshape([8, 32, k])).matrix(), h);
  });

  for (const c of fixture.cases) {
    it(c.name, () => {
      const r = quant.gptqQuantize(w, x, { bits: c.bits, symmetric: c.symmetric, scheme: c.scheme, groupSize: c.groupSize || undefined, actOrder: c.actOrder });
      assert.deepEqual(Array.from(r.order), c.permutation, 'column order');
      assert.equal(r.deadColumns, 1);
      // Codes exactly: the float64 paths differ only in summation order (~1e-16 relative), far from
      // any rounding boundary of the float32 products that decide a code.
      assert.deepEqual(Array.from(quant.codesOf(r.quantized)), c.codes, 'codes');
      assert.deepEqual(Array.from(r.quantized.scales.data()), c.scales, 'scales');
      if (c.zeroPoints !== null) assert.deepEqual(Array.from(r.quantized.zeroPoints!.data()), c.zeroPoints, 'zero points');
      assert.ok(maxAbsDiff(quant.dequantize(r.quantized, { dtype: 'float64' }).data(), c.dequantized) <= 1e-6, 'dequantized');
      assert.ok(Math.abs(r.outputError - c.outputError) <= 1e-9 * c.outputError, `GPTQ output error ${r.outputError} vs ${c.outputError}`);
      assert.ok(Math.abs(r.rtnOutputError - c.rtnOutputError) <= 1e-9 * c.rtnOutputError, `RTN output error ${r.rtnOutputError} vs ${c.rtnOutputError}`);
      // The dead input feature (5) has a zero weight column.
      const deq = quant.dequantize(r.quantized).data();
      for (let row = 0; row < fixture.rows; row++) assert.equal(deq[row * fixture.cols + 5], 0);
    });
  }

  it('lazy batches change nothing: block sizes 1, 5 and 128 give the same codes', () => {
    for (const opts of [{ bits: 4 as const }, { bits: 4 as const, actOrder: true }, { bits: 4 as const, scheme: 'group' as const, groupSize: 16 }]) {
      const results = [1, 5, 128].map((blockSize) => quant.gptqQuantize(w, x, { ...opts, blockSize }));
      const codes = results.map((r) => Array.from(quant.codesOf(r.quantized)));
      assert.deepEqual(codes[0], codes[2], `${JSON.stringify(opts)}: block 1 vs 128`);
      assert.deepEqual(codes[1], codes[2], `${JSON.stringify(opts)}: block 5 vs 128`);
    }
  });

  it('the upper Cholesky factor of H⁻¹: Uᵀ U H = I', () => {
    const k = fixture.cols;
    const h = quant.Hessian.fromInputs(x).matrix();
    for (let i = 0; i < k; i++) h[i * k + i] += 0.5; // feature 5 is dead: make H invertible
    const res = quant.upperCholeskyOfInverse(h, k);
    assert.ok(res.ok);
    const u = res.u;
    let worst = 0;
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        if (j < i) assert.equal(u[i * k + j], 0);
        let s = 0; // (Uᵀ U H)_ij
        for (let a = 0; a < k; a++) {
          let m = 0;
          for (let b = 0; b <= Math.min(i, a); b++) m += u[b * k + i]! * u[b * k + a]!;
          s += m * h[a * k + j]!;
        }
        worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
      }
    }
    assert.ok(worst < 1e-10, `max |Uᵀ U H − I| = ${worst}`);
  });
});

describe('GPTQ against round to nearest', () => {
  it('lowers the output error on correlated inputs by far more than 20%, on the calibration data and on fresh inputs', () => {
    const rows = 32, k = 64, n = 512;
    const g = normals(7);
    const w = t.tensor(Float32Array.from({ length: rows * k }, () => 0.1 * g())).reshape([rows, k]);
    const x = t.tensor(correlatedInputs(n, k, 11)).reshape([n, k]);
    const fresh = t.tensor(correlatedInputs(n, k, 12)).reshape([n, k]);
    for (const opts of [{ bits: 4 as const }, { bits: 4 as const, scheme: 'group' as const, groupSize: 16, symmetric: false }, { bits: 4 as const, actOrder: true }]) {
      const r = quant.gptqQuantize(w, x, opts);
      assert.ok(r.outputError < 0.8 * r.rtnOutputError, `${JSON.stringify(opts)}: calibration ${r.outputError} vs RTN ${r.rtnOutputError}`);
      const rtn = quant.quantize(w, { scheme: 'per-channel', ...opts });
      const y = fresh.matmul(w.mT).data();
      const yGptq = fresh.matmul(quant.dequantize(r.quantized).mT).data();
      const yRtn = fresh.matmul(quant.dequantize(rtn).mT).data();
      const eG = relativeError(y, yGptq), eR = relativeError(y, yRtn);
      assert.ok(eG < 0.8 * eR, `${JSON.stringify(opts)}: fresh inputs ${eG} vs RTN ${eR}`);
    }
  });

  it('equals round to nearest exactly when H = I (nothing to compensate; dampening only scales H)', () => {
    const rows = 12, k = 40;
    const g = normals(3);
    const w = t.tensor(Float32Array.from({ length: rows * k }, () => 0.2 * g())).reshape([rows, k]);
    const identity = new Float64Array(k * k);
    for (let i = 0; i < k; i++) identity[i * k + i] = 1;
    for (const opts of [
      { bits: 4 as const },
      { bits: 4 as const, scheme: 'group' as const, groupSize: 16, symmetric: false },
      { bits: 8 as const, scheme: 'per-tensor' as const },
      { bits: 4 as const, scheme: 'group' as const, groupSize: 8, actOrder: true },
      { bits: 4 as const, calibration: 'mse' as const },
    ]) {
      const r = quant.gptqQuantize(w, quant.Hessian.fromMatrix(identity, k), opts);
      const rtn = quant.quantize(w, { scheme: 'per-channel', ...opts });
      const what = JSON.stringify(opts);
      assert.deepEqual(Array.from(quant.codesOf(r.quantized)), Array.from(quant.codesOf(rtn)), `${what}: codes`);
      assert.deepEqual(Array.from(r.quantized.scales.data()), Array.from(rtn.scales.data()), `${what}: scales`);
      assert.deepEqual(r.quantized.zeroPoints?.data(), rtn.zeroPoints?.data(), `${what}: zero points`);
      assert.equal(r.outputError, r.rtnOutputError, what);
    }
    // Whitened inputs (the k unit vectors): H = (2/k) I, the same.
    const r = quant.gptqQuantize(w, t.eye(k), { bits: 4, scheme: 'group', groupSize: 16 });
    assert.deepEqual(Array.from(quant.codesOf(r.quantized)), Array.from(quant.codesOf(quant.quantize(w, { bits: 4, scheme: 'group', groupSize: 16 }))));
  });
});

describe('gptqQuantize errors', () => {
  const w = t.randn([4, 6]);
  it('names the weight and what to do', () => {
    assert.throws(() => quant.gptqQuantize(t.randn([6]), t.randn([3, 6])), /gptqQuantize: weight \[6\]: the weight must be 2-D \[outFeatures, inFeatures\]/);
    assert.throws(() => quant.gptqQuantize(w, t.randn([3, 5]), { name: 'fc1' }),
      /gptqQuantize: layer 'fc1' \(weight \[4, 6\]\): the Hessian is 5 × 5 but the weight has 6 input features; accumulate it from this layer's inputs \(\[\.\.\., 6\]\)/);
    assert.throws(() => quant.gptqQuantize(w, t.tensor([[1, 2, NaN, 4, 5, 6]]), { name: 'fc1' }),
      /layer 'fc1' \(weight \[4, 6\]\): the Hessian of its calibration inputs holds NaN at \(0, 2\): the inputs reaching this layer hold NaN or infinity/);
    assert.throws(() => quant.gptqQuantize(w, [] as t.Tensor[]), /Hessian.fromInputs: no inputs given/);
    assert.throws(() => quant.gptqQuantize(w, t.randn([8, 6]), { bits: 4, scheme: 'group', groupSize: 2, actOrder: true, staticGroups: false }),
      /actOrder with groups needs staticGroups.*no per-column group index \(g_idx\)/);
    assert.throws(() => quant.gptqQuantize(w, t.randn([8, 6]), { scheme: 'per-channel', axis: 1 }), /per-channel GPTQ keeps one grid per output feature \(axis 0\); got axis 1/);
    assert.throws(() => quant.gptqQuantize(w, t.randn([8, 6]), { dampening: -1 }), /dampening must be a finite number ≥ 0/);
  });

  it('a Hessian that is not positive definite after dampening', () => {
    // Indefinite (eigenvalues 3 and −1): no dampening of 1% fixes it.
    assert.throws(() => quant.gptqQuantize(t.randn([2, 2]), quant.Hessian.fromMatrix([1, 2, 2, 1]), { name: 'proj' }),
      /layer 'proj' \(weight \[2, 2\]\): H \+ λI is not positive definite \(pivot .* at input feature \d, λ = 1\.000e-2 = 0\.01 × mean diagonal.*Raise dampening \(e\.g\. 0\.1\)/);
    // Singular (two identical input features) without dampening; with the default it works.
    const x = t.randn([16, 3]);
    const dup = t.cat([x, x.narrow(1, 0, 1)], 1);
    assert.throws(() => quant.gptqQuantize(t.randn([2, 4]), dup, { dampening: 0 }), /not positive definite.*16 calibration rows for 4 features/);
    assert.doesNotThrow(() => quant.gptqQuantize(t.randn([2, 4]), dup));
  });
});

test('MNIST MLP, int4 groups of 32: GPTQ (sequential) vs round to nearest (real digits, wasm)', async () => {
  const previous = t.currentBackendName();
  t.setBackend('wasm');
  try {
    const { build, state, trainSet, testSet } = await trainedMnistMlp();
    const fresh = () => { const m = build(); m.loadStateDict(state); m.eval(); return m; };
    const float = fresh();
    // Calibration: 512 training images (not the test images the accuracy is measured on).
    const calibration = [0, 1].map((b) => trainSet.getBatch(Int32Array.from({ length: 256 }, (_, i) => 3000 + b * 256 + i))[0] as t.Tensor);
    const opts = { bits: 4 as const, scheme: 'group' as const, groupSize: 32 };
    const rtn = fresh();
    quant.quantizeModel(rtn, opts);
    const gptq = fresh();
    const { model, report } = quant.gptqQuantizeModel(gptq, calibration, opts);
    assert.equal(model, gptq);
    assert.ok(gptq.get(0) instanceof quant.QuantizedLinear && gptq.get(2) instanceof quant.QuantizedLinear);
    assert.deepEqual(report.layers.map((l) => l.name), ['0', '2']);
    for (const l of report.layers) assert.ok(l.outputError! < 0.5 * l.rtnOutputError!, `${l.name}: GPTQ ${l.outputError} vs RTN ${l.rtnOutputError}`);
    assert.match(quant.formatQuantizeReport(report), /out err RTN\s+out err GPTQ/);

    const accFloat = t.noGrad(() => evaluateClassifier(float, testSet)).testAccuracy!;
    const accRtn = t.noGrad(() => evaluateClassifier(rtn, testSet)).testAccuracy!;
    const accGptq = t.noGrad(() => evaluateClassifier(gptq, testSet)).testAccuracy!;
    assert.ok(accFloat > 0.85, `float accuracy ${accFloat}`);
    assert.ok(accGptq >= accRtn - 0.005, `GPTQ ${accGptq} vs RTN ${accRtn} (float ${accFloat})`);
    // On the held-out digits, the logits move less than with round to nearest.
    const [xt] = testSet.getBatch(Int32Array.from({ length: 1000 }, (_, i) => i)) as [t.Tensor];
    const logits = (m: nn.Sequential) => t.noGrad(() => m.call(xt)).data();
    const y = logits(float);
    const eRtn = relativeError(y, logits(rtn)), eGptq = relativeError(y, logits(gptq));
    assert.ok(eGptq < 0.8 * eRtn, `held-out logits error GPTQ ${eGptq} vs RTN ${eRtn}`);
  } finally {
    t.setBackend(previous);
  }
});

describe('gptqQuantizeModel', () => {
  const inputs = () => [t.tensor(correlatedInputs(64, 20, 5)).reshape([64, 20]), t.tensor(correlatedInputs(64, 20, 6)).reshape([64, 20])];

  it('is sequential: a later layer is calibrated on the outputs of the already-quantized earlier ones', () => {
    t.manualSeed(3);
    const net = new Net();
    const state = net.stateDict();
    const xs = inputs();
    let passes = 0;
    const { report } = quant.gptqQuantizeModel(net, () => { passes++; for (const x of xs) net.call(x); }, { bits: 4 });
    assert.equal(passes, 3);
    assert.deepEqual(report.layers.map((l) => l.name), ['body.0', 'body.2', 'head']);
    // Redo body.2 by hand: its inputs are ReLU(quantized body.0(x)).
    const manual = new Net();
    manual.loadStateDict(state);
    const q0 = quant.gptqQuantize((manual.body.get(0) as nn.Linear).weight, xs, { bits: 4 });
    assert.deepEqual(Array.from(quant.codesOf(q0.quantized)), Array.from(quant.codesOf((net.body.get(0) as quant.QuantizedLinear).weight)));
    const layer0 = new quant.QuantizedLinear(20, 32, q0.quantized, (manual.body.get(0) as nn.Linear).bias);
    const hidden = xs.map((x) => t.noGrad(() => layer0.call(x).relu()));
    const q2 = quant.gptqQuantize((manual.body.get(2) as nn.Linear).weight, hidden, { bits: 4 });
    assert.deepEqual(Array.from(quant.codesOf(q2.quantized)), Array.from(quant.codesOf((net.body.get(2) as quant.QuantizedLinear).weight)));

    // sequential: false takes one pass through the float model.
    const flat = new Net();
    flat.loadStateDict(state);
    passes = 0;
    quant.gptqQuantizeModel(flat, () => { passes++; for (const x of xs) flat.call(x); }, { bits: 4, sequential: false });
    assert.equal(passes, 1);
    const floatHidden = xs.map((x) => t.noGrad(() => (manual.body.get(0) as nn.Linear).call(x).relu()));
    const f2 = quant.gptqQuantize((manual.body.get(2) as nn.Linear).weight, floatHidden, { bits: 4 });
    assert.deepEqual(Array.from(quant.codesOf(f2.quantized)), Array.from(quant.codesOf((flat.body.get(2) as quant.QuantizedLinear).weight)));
    // The wrapped forwards are gone.
    assert.equal(Object.prototype.hasOwnProperty.call(manual.body.get(0), 'forward'), false);
  });

  it('errors name the layer', () => {
    const net = new Net();
    assert.throws(() => quant.gptqQuantizeModel(net, []), /give calibration data/);
    assert.throws(() => quant.gptqQuantizeModel(new Net(), () => {}), /the calibration pass never called layers 'body\.0', 'body\.2', 'head'/);
    const bad = new Net();
    const nan = t.tensor(correlatedInputs(8, 20, 1)).reshape([8, 20]).mul(t.tensor([NaN, ...Array(19).fill(1)]));
    assert.throws(() => quant.gptqQuantizeModel(bad, [nan]),
      /gptqQuantizeModel: layer 'body\.0' \(Linear 20 → 32\): gptqQuantize: weight \[32, 20\]: the Hessian of its calibration inputs holds NaN/);
    // Nothing was swapped, and no forward stays wrapped.
    assert.ok(bad.body.get(0) instanceof nn.Linear);
    assert.equal(Object.prototype.hasOwnProperty.call(bad.body.get(0), 'forward'), false);
    assert.throws(() => quant.gptqQuantizeModel(new Net(), inputs(), { include: ['nope'] }), /gptqQuantizeModel: no Linear layer matches the include filter/);
  });

  it('round-trips through saveQuantized / loadQuantized: same codes, same outputs, eager and under jit', async () => {
    t.manualSeed(4);
    const net = new Net();
    quant.gptqQuantizeModel(net, inputs(), { bits: 4, scheme: 'group', groupSize: 8, symmetric: false, actOrder: true });
    assert.equal((net.head as unknown as quant.QuantizedLinear).weight.data.backend, t.currentBackendName());
    const dir = mkdtempSync(join(tmpdir(), 'tessera-gptq-'));
    try {
      const path = join(dir, 'gptq.safetensors');
      await quant.saveQuantized(path, net);
      const loaded = await quant.loadQuantized(path, new Net());
      assert.deepEqual(quant.quantizationConfig(loaded), quant.quantizationConfig(net));
      const x = t.randn([3, 20]);
      assert.deepEqual(Array.from(t.noGrad(() => (loaded as Net).call(x)).data()), Array.from(t.noGrad(() => net.call(x)).data()));
      const a = (net.body.get(0) as quant.QuantizedLinear).weight, b = ((loaded as Net).body.get(0) as quant.QuantizedLinear).weight;
      assert.deepEqual(Array.from(quant.codesOf(b)), Array.from(quant.codesOf(a)));
      // An ordinary QuantizedLinear: it traces under jit like any other.
      const f = t.jit((v: t.Tensor) => (loaded as Net).call(v));
      assert.deepEqual(Array.from(f(x).data()), Array.from(t.noGrad(() => net.call(x)).data()));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('tessera quantize --gptq on a trained checkpoint; tessera eval reads its output', () => withTrainedCliCheckpoint('tessera-gptq-cli-', async (dir, logs) => {
  const err = console.error;
  try {
    const { run: quantize } = await import('../../src/cli/quantize.js');
    const { run: evaluate } = await import('../../src/cli/eval.js');
    const out = join(dir, 'gptq.safetensors');
    assert.equal(await quantize([dir, '--bits', '4', '--scheme', 'group', '--group-size', '32', '--gptq', '--act-order', '--calibration-batches', '4', '--out', out, '--json']), 0);
    const summary = JSON.parse(logs.at(-1)!) as {
      method: string; actOrder: boolean; calibrationBatches: number; calibrationRecords: number; float: { testAccuracy: number }; quantized: { testAccuracy: number };
      layers: Array<{ name: string; outputError: number; rtnOutputError: number }>;
    };
    assert.equal(summary.method, 'gptq');
    assert.equal(summary.actOrder, true);
    assert.equal(summary.calibrationBatches, 4);
    assert.equal(summary.calibrationRecords, 128);
    assert.deepEqual(summary.layers.map((l) => l.name), ['1', '3']);
    for (const l of summary.layers) assert.ok(l.outputError < l.rtnOutputError, `${l.name}: ${l.outputError} vs ${l.rtnOutputError}`);
    assert.ok(Math.abs(summary.float.testAccuracy - summary.quantized.testAccuracy) < 0.05);
    logs.length = 0;
    assert.equal(await evaluate([out, '--json']), 0);
    assert.equal((JSON.parse(logs.at(-1)!) as { testAccuracy: number }).testAccuracy, summary.quantized.testAccuracy);
    const errors: string[] = [];
    console.error = (...a: unknown[]) => { errors.push(a.join(' ')); };
    assert.equal(await quantize([dir, '--bits', '4', '--act-order']), 2);
    assert.equal(await quantize([dir, '--bits', '4', '--gptq', '--damp', '-1']), 2);
    assert.match(errors.join('\n'), /--act-order and --damp go with --gptq[\s\S]*--damp must be a number ≥ 0/);
  } finally {
    console.error = err;
  }
}));
