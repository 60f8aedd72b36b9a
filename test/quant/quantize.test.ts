// quantize / dequantize: torch parity (scales, zero points, codes), the round-trip bound for every
// scheme × bits × symmetry on each backend, int4 packing, and the errors a user can cause.
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as t from '../../src/index.js';
import { quant } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

interface TorchCase {
  name: string; shape: number[]; x: number[]; bits: 4 | 8; symmetric: boolean; scheme: quant.QuantScheme;
  axis?: number; groupSize?: number; scales: number[]; zeroPoints: number[]; codes: number[]; dequantized: number[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/torch-quant.json', import.meta.url), 'utf8')) as { cases: TorchCase[] };

/** Deterministic values with a spread of magnitudes per row (so channels and groups differ). */
function sample(shape: number[], seed = 1): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = ((s / 2 ** 31) * 2 - 1) * (1 + (i % 7)) * 0.37;
  }
  return out;
}

forEachBackend('quantize', (backend) => {
  describe('matches PyTorch observers and quantizers (test/quant/fixtures/make_torch_quant.py)', () => {
    for (const c of fixture.cases) {
      it(c.name, () => {
        const x = t.tensor(Float32Array.from(c.x)).reshape(c.shape);
        const q = quant.quantize(x, { bits: c.bits, symmetric: c.symmetric, scheme: c.scheme, axis: c.axis, groupSize: c.groupSize || undefined });
        assert.equal(q.data.backend, backend);
        assert.deepEqual(Array.from(q.scales.data()), c.scales.map(Math.fround), 'scales');
        assert.deepEqual(Array.from(q.zeroPoints?.data() ?? new Int32Array(c.scales.length)), c.zeroPoints, 'zero points');
        assert.deepEqual(Array.from(quant.codesOf(q)), c.codes, 'codes');
        assert.deepEqual(Array.from(quant.dequantize(q).data()), c.dequantized.map(Math.fround), 'dequantized');
      });
    }
  });

  const cases: Array<{ shape: number[]; opts: quant.QuantizeOptions }> = [];
  for (const bits of [8, 4] as const) {
    for (const symmetric of [true, false]) {
      cases.push({ shape: [7, 33], opts: { bits, symmetric, scheme: 'per-tensor' } });
      cases.push({ shape: [7, 33], opts: { bits, symmetric, scheme: 'per-channel', axis: 0 } });
      cases.push({ shape: [3, 5, 6], opts: { bits, symmetric, scheme: 'per-channel', axis: -2 } });
      cases.push({ shape: [5, 64], opts: { bits, symmetric, scheme: 'group', groupSize: 32 } });
      cases.push({ shape: [2, 3, 12], opts: { bits, symmetric, scheme: 'group', groupSize: 3 } });
      // A group size that does not divide the row: each row ends with a shorter group (12 = 5 + 5 + 2).
      cases.push({ shape: [2, 3, 12], opts: { bits, symmetric, scheme: 'group', groupSize: 5 } });
    }
  }
  for (const { shape, opts } of cases) {
    it(`|x − dequant(quant(x))| ≤ scale/2 and equals the float64 formula: ${opts.bits}-bit ${opts.symmetric ? 'symmetric' : 'affine'} ${opts.scheme} ${JSON.stringify(shape)}`, () => {
      const values = sample(shape);
      const x = t.tensor(values).reshape(shape);
      const q = quant.quantize(x, opts);
      const codes = quant.codesOf(q);
      const scales = q.scales.data(), zps = q.zeroPoints?.data();
      const back = quant.dequantize(q).data();
      const back64 = quant.dequantize(q, { dtype: 'float64' }).data();
      assert.equal(back.length, values.length);
      const { qmin, qmax } = quant.quantRange(opts.bits!, opts.symmetric!);
      // The slice of each element, computed independently of the library.
      const rank = shape.length;
      const axis = opts.scheme === 'per-channel' ? (opts.axis! + rank) % rank : -1;
      const inner = axis < 0 ? 1 : shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      for (let i = 0; i < values.length; i++) {
        const k = shape[rank - 1]!, groups = Math.ceil(k / (opts.groupSize ?? 1));
        const s = opts.scheme === 'per-tensor' ? 0
          : opts.scheme === 'group' ? Math.floor(i / k) * groups + Math.floor((i % k) / opts.groupSize!)
          : Math.floor(i / inner) % shape[axis]!;
        const scale = scales[s]!, zp = zps === undefined ? 0 : zps[s]!;
        assert.ok(codes[i]! >= qmin && codes[i]! <= qmax, `code ${codes[i]} outside [${qmin}, ${qmax}]`);
        const ref64 = (codes[i]! - zp) * scale;
        assert.equal(back64[i], ref64, `float64 dequantize at ${i}`);
        assert.equal(back[i], Math.fround(ref64), `float32 dequantize at ${i}`);
        // Half a step, plus float32 rounding of x·(1/scale) and of the product.
        assert.ok(Math.abs(values[i]! - back[i]!) <= scale * (0.5 + 1e-6) + 1e-7 * Math.abs(values[i]!), `element ${i}: |${values[i]} − ${back[i]}| > ${scale}/2`);
      }
      // Every slice's extreme maps to the edge of the grid (min/max calibration uses the whole range).
      assert.ok(codes.some((c) => c === qmax || c === qmin));
    });
  }

  it('an all-zero tensor gets scale eps and comes back exactly zero', () => {
    for (const symmetric of [true, false]) {
      const q = quant.quantize(t.zeros([4, 8]), { bits: 4, scheme: 'group', groupSize: 4, symmetric });
      assert.ok(Array.from(q.scales.data()).every((s) => s === 2 ** -23));
      assert.ok(Array.from(quant.dequantize(q).data()).every((v) => v === 0));
    }
  });

  it('percentile and mse calibration clip outliers and lower the error of the bulk', () => {
    const values = sample([1, 512]);
    values[17] = 40; // one outlier
    const x = t.tensor(values).reshape([1, 512]);
    const err = (q: quant.QuantizedTensor) => {
      const back = quant.dequantize(q).data();
      let e = 0;
      for (let i = 0; i < values.length; i++) if (i !== 17) e += (values[i]! - back[i]!) ** 2;
      return e;
    };
    const minmax = quant.quantize(x, { bits: 4 });
    const pct = quant.quantize(x, { bits: 4, calibration: 'percentile', percentile: 99 });
    const mse = quant.quantize(x, { bits: 4, calibration: 'mse' });
    assert.ok(pct.scales.item() < minmax.scales.item());
    assert.ok(err(pct) < err(minmax) / 4, `percentile ${err(pct)} vs minmax ${err(minmax)}`);
    assert.ok(mse.scales.item() <= minmax.scales.item());
  });

  it('QuantizedTensor reports its bytes; int4 takes half the bytes of int8', () => {
    const x = t.tensor(sample([64, 128])).reshape([64, 128]);
    const q8 = quant.quantize(x, { bits: 8, scheme: 'per-channel' });
    const q4 = quant.quantize(x, { bits: 4, scheme: 'per-channel' });
    assert.equal(q8.nbytes, 64 * 128 + 64 * 4);
    assert.equal(q4.nbytes, 64 * 64 + 64 * 4);
    assert.deepEqual(q4.data.shape, [64, 64]);
    assert.equal(q4.data.dtype, 'uint8');
    assert.equal(q8.data.dtype, 'int8');
    assert.equal(quant.quantize(x, { symmetric: false }).data.dtype, 'uint8');
    assert.match(String(q4), /4-bit symmetric per-channel axis=0/);
  });
});

test('round half to even, as std::nearbyint', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, -3.5].map(quant.roundHalfEven), [0, 2, 2, -0, -2, -2, 2, 3, -4]);
});

test('int4 packing: element 2i in the low nibble, odd rows padded, exact round trip', () => {
  assert.deepEqual(Array.from(quant.packInt4([1, 2, 3, 4], 1, 4)), [0x21, 0x43]);
  assert.deepEqual(Array.from(quant.packInt4([-1, 7, -8], 1, 3)), [0x7f, 0x08]);
  for (const [rows, k] of [[1, 1], [3, 5], [4, 8], [2, 31]] as const) {
    const signed = Array.from({ length: rows * k }, (_, i) => ((i * 7) % 16) - 8);
    const unsigned = signed.map((v) => v + 8);
    const ps = quant.packInt4(signed, rows, k);
    assert.equal(ps.length, rows * quant.packedRowBytes(k));
    assert.deepEqual(Array.from(quant.unpackInt4(ps, rows, k, true)), signed);
    assert.deepEqual(Array.from(quant.unpackInt4(quant.packInt4(unsigned, rows, k), rows, k, false)), unsigned);
    if (k % 2 === 1) for (let r = 0; r < rows; r++) assert.equal(ps[(r + 1) * quant.packedRowBytes(k) - 1]! >> 4, 0, 'pad nibble is 0');
  }
  // Quantized odd-length rows round-trip through the packed layout.
  const x = t.tensor(sample([3, 7])).reshape([3, 7]);
  const q = quant.quantize(x, { bits: 4, scheme: 'per-channel' });
  assert.deepEqual(q.data.shape, [3, 4]);
  const again = quant.fromCodes(quant.codesOf(q), q.scales.data(), undefined, [3, 7], q.spec);
  assert.deepEqual(Array.from(again.data.data()), Array.from(q.data.data()));
  assert.throws(() => quant.packInt4([16], 1, 1), /not a 4-bit integer/);
});

test('errors name the op, shape, dtype and what to do', () => {
  const x = t.tensor(sample([4, 10])).reshape([4, 10]);
  // A group size that does not divide the axis is allowed (the last group is shorter): 10 = 4 + 4 + 2.
  assert.deepEqual(quant.quantize(x, { scheme: 'group', groupSize: 4 }).scales.shape, [4, 3]);
  assert.throws(() => quant.quantize(x, { scheme: 'per-channel', axis: 2 }), /per-channel axis 2 is out of range for the input of shape \[4, 10\] \(float32\); give an axis in \[-2, 1\]/);
  assert.throws(() => quant.quantize(x, { bits: 3 as 8 }), /bits must be 8 or 4, got 3/);
  assert.throws(() => quant.quantize(x, { scheme: 'group', groupSize: 0 }), /groupSize must be a positive integer/);
  assert.throws(() => quant.quantize(t.tensor([1, NaN, 3]), {}), /quantize: the input of shape \[3\] \(float32\) holds NaN at flat index 1; .*replace/);
  assert.throws(() => quant.quantize(t.tensor([1, Infinity]), {}), /holds Infinity at flat index 1/);
  assert.throws(() => quant.quantize(t.tensor([1, 2], { dtype: 'int32' })), /quantize takes floating-point tensors. Cast it first/);
  assert.throws(() => quant.quantize(t.tensor(3), { scheme: 'per-channel' }), /is a scalar. Use scheme 'per-tensor'/);
  assert.throws(() => quant.quantize(x, { calibration: 'best' as 'mse' }), /calibration must be/);
});
