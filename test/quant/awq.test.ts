// AWQ: against an independent float64 numpy reference (test/quant/fixtures/make_awq_reference.py),
// α = 0 is round to nearest exactly, its output error never exceeds RTN's and is far smaller with
// outlier input features, QuantizedLinear's input scale (eager = jit = float64 reference, gradient,
// checkpoints old and new), the model-level pass on a trained MNIST MLP, errors, the CLI.
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as t from '../../src/index.js';
import { nn, quant } from '../../src/index.js';
import { evaluateClassifier } from '../../src/train/recipes/mnist.js';
import { forEachBackend } from '../helpers/backends.js';
import { trainedMnistMlp, withTrainedCliCheckpoint } from './trained-mnist-mlp.js';
import { CalibrationNet as Net, normals, relativeError } from './calibration-helpers.js';

interface ReferenceCase {
  name: string; bits: 4 | 8; symmetric: boolean; scheme: 'group' | 'per-channel' | 'per-tensor'; groupSize: number; clip: boolean;
  alpha: number; alphaErrors: number[]; codes: number[]; scales: number[]; zeroPoints: number[] | null; inputScale: number[];
  clippedSlices: number; outputError: number; rtnOutputError: number;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/awq-reference.json', import.meta.url), 'utf8')) as {
  rows: number; cols: number; samples: number; inputs: number[]; weight: number[]; cases: ReferenceCase[];
};

/** n rows of k features, N(0, 1) except the `outliers` features, `outlierScale` times larger. */
function inputs(n: number, k: number, seed: number, outliers: number[] = [], outlierScale = 1): t.Tensor {
  const g = normals(seed);
  const v = new Float32Array(n * k);
  for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) v[r * k + j] = g() * (outliers.includes(j) ? outlierScale : 1);
  return t.tensor(v).reshape([n, k]);
}

/** The weight an AWQ result applies: dequant(Q) with column j times inputScale_j (float64). */
function applied(r: quant.AwqResult): Float64Array {
  const deq = quant.dequantize(r.quantized, { dtype: 'float64' }).data();
  const s = r.inputScale.data(), k = s.length;
  return Float64Array.from(deq, (v, i) => v * s[i % k]!);
}

describe('AWQ matches the float64 reference (fixtures/make_awq_reference.py)', () => {
  const x = t.tensor(Float32Array.from(fixture.inputs)).reshape([fixture.samples, fixture.cols]);
  const w = t.tensor(Float32Array.from(fixture.weight)).reshape([fixture.rows, fixture.cols]);

  it('mean |x| per input feature, exact (integer inputs), from one tensor or a list', () => {
    const a = quant.ActivationStats.fromInputs(x).meanAbs();
    const k = fixture.cols, n = fixture.samples;
    for (const j of [0, 3, 9, 17, 47]) {
      let s = 0;
      for (let r = 0; r < n; r++) s += Math.abs(fixture.inputs[r * k + j]!);
      assert.equal(a[j], s / n, `a[${j}]`);
    }
    assert.deepEqual(quant.ActivationStats.fromInputs([x.narrow(0, 0, 100), x.narrow(0, 100, n - 100)]).meanAbs(), a);
  });

  for (const c of fixture.cases) {
    it(c.name, () => {
      const r = quant.awqQuantize(w, x, { bits: c.bits, symmetric: c.symmetric, scheme: c.scheme, groupSize: c.groupSize || undefined, clip: c.clip });
      assert.equal(r.alpha, c.alpha, 'chosen α');
      assert.equal(r.alphaErrors.length, 20);
      r.alphaErrors.forEach((e, i) => assert.ok(Math.abs(e - c.alphaErrors[i]!) <= 1e-9 * c.alphaErrors[i]!, `error at α = ${r.alphas[i]}: ${e} vs ${c.alphaErrors[i]}`));
      assert.deepEqual(Array.from(r.inputScale.data()), c.inputScale, 'input scale fp32(1/s)');
      // Codes exactly: the float64 paths differ only in summation order (~1e-16 relative), far from
      // the float32 products that decide a code, and from any tie between candidates.
      assert.deepEqual(Array.from(quant.codesOf(r.quantized)), c.codes, 'codes');
      assert.deepEqual(Array.from(r.quantized.scales.data()), c.scales, 'scales');
      if (c.zeroPoints !== null) assert.deepEqual(Array.from(r.quantized.zeroPoints!.data()), c.zeroPoints, 'zero points');
      assert.equal(r.clippedSlices, c.clippedSlices, 'slices clipped');
      assert.ok(Math.abs(r.outputError - c.outputError) <= 1e-9 * c.outputError, `AWQ output error ${r.outputError} vs ${c.outputError}`);
      assert.ok(Math.abs(r.rtnOutputError - c.rtnOutputError) <= 1e-9 * c.rtnOutputError, `RTN output error ${r.rtnOutputError} vs ${c.rtnOutputError}`);
      // With three outlier features in 48, the search moves away from α = 0 and halves the error.
      assert.ok(c.alpha > 0 && r.outputError < 0.6 * r.rtnOutputError);
    });
  }
});

describe('AWQ against round to nearest', () => {
  const schemes: quant.QuantizeOptions[] = [
    { bits: 4 },
    { bits: 4, scheme: 'group', groupSize: 16, symmetric: false },
    { bits: 8, scheme: 'per-tensor' },
    { bits: 4, scheme: 'group', groupSize: 8, calibration: 'mse' },
  ];

  it('α = 0 (s = 1) without clipping is round to nearest exactly', () => {
    const g = normals(3);
    const w = t.tensor(Float32Array.from({ length: 12 * 40 }, () => 0.2 * g())).reshape([12, 40]);
    const x = inputs(64, 40, 4, [2, 30], 20);
    for (const opts of schemes) {
      const r = quant.awqQuantize(w, x, { ...opts, alpha: 0, clip: false });
      const rtn = quant.quantize(w, { scheme: 'per-channel', ...opts });
      const what = JSON.stringify(opts);
      assert.deepEqual(Array.from(r.inputScale.data()), Array(40).fill(1), `${what}: input scale`);
      assert.deepEqual(Array.from(quant.codesOf(r.quantized)), Array.from(quant.codesOf(rtn)), `${what}: codes`);
      assert.deepEqual(Array.from(r.quantized.scales.data()), Array.from(rtn.scales.data()), `${what}: scales`);
      assert.deepEqual(r.quantized.zeroPoints?.data(), rtn.zeroPoints?.data(), `${what}: zero points`);
      assert.equal(r.outputError, r.rtnOutputError, what);
      // And the search's first candidate (α = 0) is that same weight.
      assert.equal(quant.awqQuantize(w, x, { ...opts, clip: false }).alphaErrors[0], r.rtnOutputError, what);
    }
  });

  it('never has a larger output error than RTN on the calibration rows (the search includes α = 0), with or without clipping', () => {
    for (const seed of [1, 2, 3]) {
      const g = normals(100 + seed);
      const w = t.tensor(Float32Array.from({ length: 24 * 48 }, () => 0.1 * g())).reshape([24, 48]);
      const x = inputs(128, 48, seed); // no outliers: little for AWQ to gain
      for (const opts of schemes) {
        for (const clip of opts.calibration === 'mse' ? [false] : [false, true]) {
          const r = quant.awqQuantize(w, x, { ...opts, clip });
          assert.ok(r.outputError <= r.rtnOutputError, `seed ${seed} ${JSON.stringify(opts)} clip ${clip}: ${r.outputError} vs RTN ${r.rtnOutputError}`);
          assert.equal(r.alphaErrors[r.alphas.indexOf(r.alpha)], Math.min(...r.alphaErrors));
        }
      }
    }
  });

  it('is far better than RTN with outlier input features, on the calibration rows and on fresh rows', () => {
    const rows = 32, k = 64;
    const g = normals(7);
    const w = t.tensor(Float32Array.from({ length: rows * k }, () => 0.1 * g())).reshape([rows, k]);
    const outliers = [5, 21, 50];
    const x = inputs(512, k, 11, outliers, 25);
    const fresh = inputs(512, k, 12, outliers, 25);
    for (const opts of [{ bits: 4 as const }, { bits: 4 as const, scheme: 'group' as const, groupSize: 32, symmetric: false }]) {
      for (const clip of [false, true]) {
        const r = quant.awqQuantize(w, x, { ...opts, clip });
        const what = `${JSON.stringify(opts)} clip ${clip}`;
        assert.ok(r.alpha > 0, `${what}: α ${r.alpha}`);
        assert.ok(r.outputError < 0.5 * r.rtnOutputError, `${what}: calibration ${r.outputError} vs RTN ${r.rtnOutputError}`);
        // The layer as it will run: (x ⊙ inputScale) · dequant(Q)ᵀ.
        const layer = new quant.QuantizedLinear(k, rows, r.quantized, undefined, { inputScale: r.inputScale });
        const rtn = quant.QuantizedLinear.fromLinear({ inFeatures: k, outFeatures: rows, weight: w, bias: undefined }, opts);
        const y = fresh.matmul(w.mT).data();
        const eA = relativeError(y, t.noGrad(() => layer.call(fresh)).data()), eR = relativeError(y, t.noGrad(() => rtn.call(fresh)).data());
        assert.ok(eA < 0.5 * eR, `${what}: fresh inputs ${eA} vs RTN ${eR}`);
      }
    }
  });

  it('the clip search lowers the error further where ranges have room to shrink', () => {
    const g = normals(9);
    const w = t.tensor(Float32Array.from({ length: 32 * 64 }, () => 0.1 * g())).reshape([32, 64]);
    const x = inputs(256, 64, 5, [7], 10);
    // Measured: 0.81 (per-channel) and 0.84 (groups of 32) of the error without clipping.
    for (const opts of [{ bits: 4 as const }, { bits: 4 as const, scheme: 'group' as const, groupSize: 32 }]) {
      const off = quant.awqQuantize(w, x, { ...opts, clip: false });
      const on = quant.awqQuantize(w, x, opts);
      assert.equal(on.alpha, off.alpha);
      assert.ok(on.clippedSlices > 0);
      assert.ok(on.outputError < 0.9 * off.outputError, `${JSON.stringify(opts)}: clip ${on.outputError} vs ${off.outputError}`);
    }
    const on = quant.awqQuantize(w, x, { bits: 4, scheme: 'group', groupSize: 32 });
    // Its report is the error of the weight it returns.
    const [e] = quant.relativeOutputErrors(w.data(), [applied(on)], quant.Hessian.fromInputs(x).matrix(), 32, 64);
    assert.ok(Math.abs(e! - on.outputError) <= 1e-12 * on.outputError);
  });
});

describe('awqQuantize errors', () => {
  const w = t.randn([4, 6]);
  it('names the op, the weight and what to do', () => {
    assert.throws(() => quant.awqQuantize(t.randn([6]), t.randn([3, 6])), /awqQuantize: weight \[6\]: the weight must be 2-D \[outFeatures, inFeatures\]/);
    assert.throws(() => quant.awqQuantize(w, t.randn([3, 5]), { name: 'fc1' }),
      /awqQuantize: layer 'fc1' \(weight \[4, 6\]\): the calibration inputs have 5 features but the weight has 6 input features/);
    assert.throws(() => quant.awqQuantize(w, t.tensor([[1, 2, NaN, 4, 5, 6]])), /awqQuantize: weight \[4, 6\]: the statistics of its calibration inputs hold NaN/);
    assert.throws(() => quant.awqQuantize(w, [] as t.Tensor[]), /ActivationStats.fromInputs: no inputs given/);
    assert.throws(() => quant.awqQuantize(w, t.randn([8, 6]), { scheme: 'per-channel', axis: 1 }), /per-channel AWQ keeps one grid per output feature \(axis 0\); got axis 1/);
    assert.throws(() => quant.awqQuantize(w, t.randn([8, 6]), { grid: 0 }), /grid must be a positive integer/);
    assert.throws(() => quant.awqQuantize(w, t.randn([8, 6]), { alpha: 1.5 }), /alpha must be a number in \[0, 1\]/);
    assert.throws(() => quant.awqQuantize(w, t.randn([8, 6]), { calibration: 'mse', clip: true }), /clip: true needs calibration 'minmax'/);
    assert.throws(() => quant.awqQuantize(t.tensor([[1, Infinity], [0, 1]]), t.randn([4, 2])), /the weight holds Infinity at \(0, 1\)/);
  });
});

forEachBackend('QuantizedLinear with an input scale', (backend) => {
  /** float64 (x ⊙ s) · Ŵᵀ + b from plain arrays. */
  function reference(x: ArrayLike<number>, m: number, k: number, s: ArrayLike<number>, w: ArrayLike<number>, n: number, bias: ArrayLike<number>): Float64Array {
    const y = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = bias[j]!;
        for (let p = 0; p < k; p++) acc += x[i * k + p]! * s[p]! * w[j * k + p]!;
        y[i * n + j] = acc;
      }
    }
    return y;
  }
  const build = (k: number, n: number, opts: quant.QuantizeOptions, dtype: 'float32' | 'float64' = 'float32') => {
    const lin = new nn.Linear(k, n, { dtype });
    const x = inputs(64, k, 8, [1], 8);
    const r = quant.awqQuantize(lin.weight, dtype === 'float64' ? x.double() : x, opts);
    return new quant.QuantizedLinear(k, n, r.quantized, lin.bias, { inputScale: r.inputScale });
  };

  it('eager = jit = float64 (x ⊙ s) · dequant(Q)ᵀ + b, on the fused and reference kernel paths', () => {
    t.manualSeed(21);
    for (const [k, n, opts] of [[64, 24, { bits: 4, scheme: 'group', groupSize: 32 }], [40, 17, { bits: 8 }], [48, 12, { bits: 4, scheme: 'group', groupSize: 8, symmetric: false }]] as const) {
      const layer = build(k, n, opts);
      assert.equal(layer.input_scale!.backend, backend);
      assert.ok(layer.input_scale!.data().some((v) => v !== 1), 'a non-trivial scale');
      const w64 = quant.dequantize(layer.weight, { dtype: 'float64' }).data();
      const f = t.jit((v: t.Tensor) => layer.call(v));
      for (const m of [1, 5, 33]) {
        const x = t.randn([m, k]);
        const y = t.noGrad(() => layer.call(x)).data();
        const want = reference(x.data(), m, k, layer.input_scale!.data(), w64, n, layer.bias!.data());
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(y[i]! - want[i]!));
        assert.ok(worst <= 5e-5, `k ${k} m ${m}: max |Δ| ${worst}`);
        assert.deepEqual(Array.from(f(x).data()), Array.from(y), `k ${k} m ${m}: jit = eager`);
      }
    }
  });

  it('input gradient by finite differences (float64), and it is (dL/dy · Ŵ) ⊙ s', () => {
    if (backend === 'webgpu') return; // float64 runs the cpu kernels there
    t.manualSeed(22);
    const layer = build(9, 5, { bits: 4, scheme: 'group', groupSize: 4, symmetric: false }, 'float64');
    const report = t.gradcheck((x: t.Tensor) => layer.call(x).tanh(), [t.randn([3, 9], { dtype: 'float64' })]);
    assert.equal(report.ok, true, JSON.stringify(report.worst));
    const x = t.randn([2, 9], { dtype: 'float64' }).requiresGrad_();
    layer.call(x).sum().backward();
    const w = quant.dequantize(layer.weight, { dtype: 'float64' }).data(), s = layer.input_scale!.data();
    const g = x.grad!.data();
    for (let p = 0; p < 9; p++) {
      let col = 0;
      for (let j = 0; j < 5; j++) col += w[j * 9 + p]!;
      assert.ok(Math.abs(g[p]! - col * s[p]!) <= 1e-12, `dL/dx[${p}]`);
    }
  });
});

describe('input scales in checkpoints', () => {
  class Net extends nn.Module {
    a = new nn.Linear(16, 12);
    b = new nn.Linear(12, 4);
    override forward(x: t.Tensor): t.Tensor {
      return this.b.call(this.a.call(x).relu());
    }
  }

  it('save / load: AWQ layers keep input_scale, RTN layers have none (older files load as before); outputs equal, eager and jit', async () => {
    t.manualSeed(23);
    const net = new Net();
    const x = inputs(64, 16, 3, [4], 10);
    quant.awqQuantizeModel(net, [x], { bits: 4, scheme: 'group', groupSize: 8, include: ['a'] });
    quant.quantizeModel(net, { bits: 4, scheme: 'group', groupSize: 4, include: ['b'] });
    const a = net.a as unknown as quant.QuantizedLinear, b = net.b as unknown as quant.QuantizedLinear;
    assert.deepEqual([...a.stateDict().keys()], ['weight_q', 'weight_scale', 'bias', 'input_scale']);
    assert.deepEqual([...b.stateDict().keys()], ['weight_q', 'weight_scale', 'bias']);
    assert.equal(a.nbytes, 12 * 8 + 12 * 2 * 4 + 12 * 4 + 16 * 4);
    const config = quant.quantizationConfig(net);
    assert.equal(config.layers.a!.inputScale, true);
    assert.equal('inputScale' in config.layers.b!, false);
    const dir = mkdtempSync(join(tmpdir(), 'tessera-awq-'));
    try {
      const path = join(dir, 'awq.safetensors');
      await quant.saveQuantized(path, net);
      const loaded = await quant.loadQuantized(path, new Net()) as Net;
      assert.deepEqual(quant.quantizationConfig(loaded), config);
      const la = loaded.a as unknown as quant.QuantizedLinear;
      assert.deepEqual(Array.from(la.input_scale!.data()), Array.from(a.input_scale!.data()));
      const probe = t.randn([3, 16]);
      const want = Array.from(t.noGrad(() => net.call(probe)).data());
      assert.deepEqual(Array.from(t.noGrad(() => loaded.call(probe)).data()), want);
      assert.deepEqual(Array.from(t.jit((v: t.Tensor) => loaded.call(v))(probe).data()), want);
      // A file written before input scales existed: no input_scale tensor, no inputScale in the config.
      const old = new Net();
      quant.quantizeModel(old, { bits: 8 });
      await quant.saveQuantized(path, old);
      const back = await quant.loadQuantized(path, new Net()) as Net;
      assert.equal((back.a as unknown as quant.QuantizedLinear).input_scale, undefined);
      assert.deepEqual(Array.from(t.noGrad(() => back.call(probe)).data()), Array.from(t.noGrad(() => old.call(probe)).data()));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('errors name the layer and the shapes', () => {
    const q = quant.quantize(t.randn([4, 6]), { scheme: 'per-channel' });
    assert.throws(() => new quant.QuantizedLinear(6, 4, q, undefined, { inputScale: t.ones([5]) }),
      /QuantizedLinear: inputScale of shape \[5\] \(float32\) should be a floating-point vector \[6\], one factor per input feature/);
    assert.throws(() => quant.quantizedLinear(t.randn([2, 6]), q, undefined, { inputScale: t.ones([6], { dtype: 'int32' }) }), /quantizedLinear: inputScale of shape \[6\] \(int32\)/);
    assert.throws(() => quant.prepareQuantized(new Net(), { version: 1, layers: { a: { bits: 8, scheme: 'per-channel', axis: 0, groupSize: 0, symmetric: true, inFeatures: 16, outFeatures: 12, bias: true, inputScale: 'yes' as unknown as true } } }),
      /prepareQuantized: layer 'a' has inputScale "yes" in the config; expected true/);
  });
});

describe('awqQuantizeModel', () => {
  const xs = () => [inputs(64, 20, 5, [3], 10), inputs(64, 20, 6, [3], 10)];

  it('is sequential: a later layer is calibrated on the outputs of the already-quantized (and scaled) earlier ones', () => {
    t.manualSeed(3);
    const net = new Net();
    const state = net.stateDict();
    const cal = xs();
    let passes = 0;
    const { report } = quant.awqQuantizeModel(net, () => { passes++; for (const x of cal) net.call(x); }, { bits: 4 });
    assert.equal(passes, 3);
    assert.equal(report.method, 'awq');
    assert.deepEqual(report.layers.map((l) => l.name), ['body.0', 'body.2', 'head']);
    for (const l of report.layers) assert.ok(l.outputError! <= l.rtnOutputError! && l.alpha !== undefined, l.name);
    assert.match(quant.formatQuantizeReport(report), /out err RTN\s+out err AWQ\s+alpha/);
    // Redo body.2 by hand: its inputs are ReLU(AWQ body.0(x)).
    const manual = new Net();
    manual.loadStateDict(state);
    const r0 = quant.awqQuantize((manual.body.get(0) as nn.Linear).weight, cal, { bits: 4 });
    const layer0 = new quant.QuantizedLinear(20, 32, r0.quantized, (manual.body.get(0) as nn.Linear).bias, { inputScale: r0.inputScale });
    const hidden = cal.map((x) => t.noGrad(() => layer0.call(x).relu()));
    const r2 = quant.awqQuantize((manual.body.get(2) as nn.Linear).weight, hidden, { bits: 4 });
    const q2 = net.body.get(2) as quant.QuantizedLinear;
    assert.deepEqual(Array.from(quant.codesOf(q2.weight)), Array.from(quant.codesOf(r2.quantized)));
    assert.deepEqual(Array.from(q2.input_scale!.data()), Array.from(r2.inputScale.data()));
    assert.equal(report.layers[1]!.alpha, r2.alpha);
    assert.equal(Object.prototype.hasOwnProperty.call(net.body.get(0), 'forward'), false);
  });

  it('errors name the op and the layer', () => {
    assert.throws(() => quant.awqQuantizeModel(new Net(), []), /awqQuantizeModel: give calibration data/);
    assert.throws(() => quant.awqQuantizeModel(new Net(), () => {}), /awqQuantizeModel: the calibration pass never called layers 'body\.0', 'body\.2', 'head'; AWQ needs each layer's inputs/);
    const nan = inputs(8, 20, 1).mul(t.tensor([NaN, ...Array(19).fill(1)]));
    const bad = new Net();
    assert.throws(() => quant.awqQuantizeModel(bad, [nan]), /awqQuantizeModel: layer 'body\.0' \(Linear 20 → 32\): awqQuantize: weight \[32, 20\]: the statistics of its calibration inputs hold NaN/);
    assert.ok(bad.body.get(0) instanceof nn.Linear);
    assert.throws(() => quant.awqQuantizeModel(new Net(), xs(), { grid: 0 }), /awqQuantizeModel: layer 'body\.0'.*grid must be a positive integer/);
  });
});

test('MNIST MLP, int4: AWQ keeps accuracy within a point or two of float (real digits, wasm)', async () => {
  const previous = t.currentBackendName();
  t.setBackend('wasm');
  try {
    const { build, state, trainSet, testSet } = await trainedMnistMlp();
    const fresh = () => { const m = build(); m.loadStateDict(state); m.eval(); return m; };
    const float = fresh();
    const accFloat = t.noGrad(() => evaluateClassifier(float, testSet)).testAccuracy!;
    assert.ok(accFloat > 0.85, `float accuracy ${accFloat}`);
    // Calibration: 512 training images (not the test images the accuracy is measured on).
    const calibration = [0, 1].map((b) => trainSet.getBatch(Int32Array.from({ length: 256 }, (_, i) => 3000 + b * 256 + i))[0] as t.Tensor);
    const [xt] = testSet.getBatch(Int32Array.from({ length: 1000 }, (_, i) => i)) as [t.Tensor];
    const logits = (m: nn.Sequential) => t.noGrad(() => m.call(xt)).data();
    const y = logits(float);
    for (const opts of [{ bits: 4 as const }, { bits: 4 as const, scheme: 'group' as const, groupSize: 32 }]) {
      const awq = fresh();
      const { report } = quant.awqQuantizeModel(awq, calibration, opts);
      assert.ok(awq.get(0) instanceof quant.QuantizedLinear && (awq.get(0) as quant.QuantizedLinear).input_scale !== undefined);
      for (const l of report.layers) assert.ok(l.outputError! < l.rtnOutputError!, `${JSON.stringify(opts)} ${l.name}: AWQ ${l.outputError} vs RTN ${l.rtnOutputError}`);
      const acc = t.noGrad(() => evaluateClassifier(awq, testSet)).testAccuracy!;
      assert.ok(acc >= accFloat - 0.015, `${JSON.stringify(opts)}: AWQ ${acc} vs float ${accFloat}`);
      // On held-out digits the logits move less than with round to nearest.
      const rtn = fresh();
      quant.quantizeModel(rtn, opts);
      const eAwq = relativeError(y, logits(awq)), eRtn = relativeError(y, logits(rtn));
      assert.ok(eAwq < eRtn, `${JSON.stringify(opts)}: held-out logits error AWQ ${eAwq} vs RTN ${eRtn}`);
    }
  } finally {
    t.setBackend(previous);
  }
});

test('tessera quantize --awq on a trained checkpoint; tessera eval reads its output', () => withTrainedCliCheckpoint('tessera-awq-cli-', async (dir, logs) => {
  const err = console.error;
  try {
    const { run: quantize } = await import('../../src/cli/quantize.js');
    const { run: evaluate } = await import('../../src/cli/eval.js');
    const out = join(dir, 'awq.safetensors');
    assert.equal(await quantize([dir, '--bits', '4', '--scheme', 'group', '--group-size', '32', '--awq', '--awq-grid', '10', '--calibration-batches', '4', '--out', out, '--json']), 0);
    const summary = JSON.parse(logs.at(-1)!) as {
      method: string; awqGrid: number; clip: boolean; calibrationBatches: number; calibrationRecords: number; float: { testAccuracy: number }; quantized: { testAccuracy: number };
      layers: Array<{ name: string; outputError: number; rtnOutputError: number; alpha: number }>;
    };
    assert.equal(summary.method, 'awq');
    assert.equal(summary.awqGrid, 10);
    assert.equal(summary.clip, true);
    assert.equal(summary.calibrationBatches, 4);
    assert.equal(summary.calibrationRecords, 128);
    assert.deepEqual(summary.layers.map((l) => l.name), ['1', '3']);
    for (const l of summary.layers) {
      assert.ok(l.outputError <= l.rtnOutputError, `${l.name}: ${l.outputError} vs ${l.rtnOutputError}`);
      assert.ok(l.alpha >= 0 && l.alpha < 1 && Math.abs(l.alpha * 10 - Math.round(l.alpha * 10)) < 1e-12, `${l.name}: α ${l.alpha} on the grid of 10`);
    }
    assert.ok(Math.abs(summary.float.testAccuracy - summary.quantized.testAccuracy) < 0.05);
    logs.length = 0;
    assert.equal(await evaluate([out, '--json']), 0);
    assert.equal((JSON.parse(logs.at(-1)!) as { testAccuracy: number }).testAccuracy, summary.quantized.testAccuracy);
    const errors: string[] = [];
    console.error = (...a: unknown[]) => { errors.push(a.join(' ')); };
    assert.equal(await quantize([dir, '--bits', '4', '--awq', '--gptq']), 2);
    assert.equal(await quantize([dir, '--bits', '4', '--awq-grid', '5']), 2);
    assert.equal(await quantize([dir, '--bits', '4', '--awq', '--awq-grid', '0']), 2);
    assert.equal(await quantize([dir, '--bits', '4', '--awq', '--act-order']), 2);
    assert.equal(await quantize([dir, '--bits', '4', '--calibration-batches', '2']), 2);
    assert.equal(await quantize([dir, '--bits', '4', '--awq', '--calibration', 'mse']), 2);
    const text = errors.join('\n');
    assert.match(text, /--gptq and --awq are two ways of rounding the same weights; give one of them/);
    assert.match(text, /--awq-grid and --awq-no-clip go with --awq/);
    assert.match(text, /--awq-grid must be at least 1/);
    assert.match(text, /--act-order and --damp go with --gptq/);
    assert.match(text, /--calibration-batches goes with --gptq or --awq/);
    assert.match(text, /--awq clips each group's range itself, which needs --calibration minmax/);
  } finally {
    console.error = err;
  }
}));
