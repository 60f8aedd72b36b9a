import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { wasmBackend, WasmBackend } from '../../../src/backend/wasm/backend.js';
import { nodeGarbageCollector } from '../../../src/backend/wasm/node-gc.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';

// The wasm backend must agree with the cpu reference: bit for bit where its SIMD instruction is
// correctly rounded (elementwise), within f32 accumulation error for matmul.

let seed = 7;
function values(n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    out.push(Math.fround(seed / 2 ** 32 * 4 - 2));
  }
  return out;
}

function pair(shape: number[], dtype: t.DType = 'float32'): [t.Tensor, t.Tensor] {
  const data = Float64Array.from(values(shape.reduce((a, b) => a * b, 1)));
  return [t.tensor(data, { shape, dtype, backend: 'cpu' }), t.tensor(data, { shape, dtype, backend: 'wasm' })];
}

function assertSame(actual: t.Tensor, expected: t.Tensor, what: string): void {
  assert.equal(actual.backend, 'wasm', `${what}: result left the wasm backend`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  assert.deepEqual(Array.from(actual.data()), Array.from(expected.data()), `${what}: values differ from the cpu backend`);
}

function assertClose(actual: t.Tensor, expected: t.Tensor, k: number, what: string): void {
  assert.equal(actual.backend, 'wasm');
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = actual.data(), e = expected.data();
  for (let i = 0; i < e.length; i++) {
    // |error| ≤ k·eps·Σ|a·b|, with inputs in [-2, 2]: Σ|a·b| ≤ 4k.
    const tol = 2 * k * 2 ** -24 * 4 * k + 1e-6;
    assert.ok(Math.abs(a[i]! - e[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${e[i]}`);
  }
}

test('the wasm backend is registered and its storages live in the heap', () => {
  assert.ok(t.listBackends().includes('wasm'));
  const before = wasmBackend.heap.stats().blocksInUse;
  const x = t.tensor([1, 2, 3], { dtype: 'float32', backend: 'wasm' });
  assert.equal(wasmBackend.heap.stats().blocksInUse, before + 1);
  assert.deepEqual(Array.from(x.data()), [1, 2, 3]);
  x.dispose();
  assert.equal(wasmBackend.heap.stats().blocksInUse, before, 'dispose() returns the block to the heap');
});

test('every dtype round-trips; float16 values are rounded like the cpu backend', () => {
  for (const dtype of t.DTYPES) {
    const data = dtype === 'bool' ? [1, 0, 1] : [1.5, -2, 100.2];
    const cpu = t.tensor(data, { dtype, backend: 'cpu' });
    const wasm = t.tensor(data, { dtype, backend: 'wasm' });
    assert.deepEqual(Array.from(wasm.data()), Array.from(cpu.data()), dtype);
  }
});

test('float32 matmul through the SGEMM matches the cpu reference: shapes, transposed views, batches, broadcasting', () => {
  for (const [m, k, n] of [[1, 1, 1], [7, 5, 13], [65, 129, 33], [16, 64, 48]]) {
    const [ac, aw] = pair([m, k]);
    const [bc, bw] = pair([k, n]);
    assertClose(t.matmul(aw, bw), t.matmul(ac, bc), k, `${m}x${k}x${n}`);
    // Transposed operands are strided views, read by the packing code.
    const [atc, atw] = pair([k, m]);
    const [btc, btw] = pair([n, k]);
    assertClose(t.matmul(t.transpose(atw), t.transpose(btw)), t.matmul(t.transpose(atc), t.transpose(btc)), k, `T ${m}x${k}x${n}`);
  }
  assert.ok(wasmBackend.kernelCalls.get('matmul')!.wasm >= 8, 'float32 matmul ran the SGEMM');
  // Batched, with a broadcast (stride-0) operand and two batch dimensions.
  const [ac, aw] = pair([2, 3, 9, 11]);
  const [bc, bw] = pair([11, 6]);
  assertClose(t.matmul(aw, bw), t.matmul(ac, bc), 11, 'batched broadcast B');
  const [pc, pw] = pair([3, 2, 11, 9]);
  assertClose(t.matmul(t.permute(pw, [1, 0, 3, 2]), bw), t.matmul(t.permute(pc, [1, 0, 3, 2]), bc), 11, 'permuted batch dims');
});

test('the fused matmul + bias + ReLU kernel equals the three ops', () => {
  const [xc, xw] = pair([3, 17, 40]);
  const [wc, ww] = pair([24, 40]);
  const [bc, bw] = pair([24]);
  const fused = wasmBackend.matmulBiasRelu(xw, t.expand(t.transpose(ww), [3, 40, 24]), bw, true);
  const result = t.Tensor.fromStorage(fused, [3, 17, 24], 'float32');
  assertClose(result, t.relu(t.add(t.matmul(xc, t.transpose(wc)), bc)), 40, 'fused');
  const plain = t.Tensor.fromStorage(wasmBackend.matmulBiasRelu(xw, t.expand(t.transpose(ww), [3, 40, 24]), undefined, false), [3, 17, 24], 'float32');
  assertClose(plain, t.matmul(xc, t.transpose(wc)), 40, 'no epilogue');
  assert.throws(() => wasmBackend.matmulBiasRelu(xw, ww, bw, true), /same rank/);
  assert.throws(() => wasmBackend.matmulBiasRelu(xw, t.expand(t.transpose(ww), [3, 40, 24]), t.flip(bw, [0]).reshape([2, 12]), true), /bias must be a contiguous vector of 24/);
});

test('float64 matmul falls back to the reference kernel on heap views (exact)', () => {
  const [ac, aw] = pair([5, 7], 'float64');
  const [bc, bw] = pair([7, 3], 'float64');
  assertSame(t.matmul(aw, bw), t.matmul(ac, bc), 'f64 matmul');
});

test('SIMD elementwise ops equal the reference bit for bit, with broadcasting and strided inputs', () => {
  const [xc, xw] = pair([6, 37]);
  const [yc, yw] = pair([6, 37]);
  const [bc, bw] = pair([37]);
  const [cc, cw] = pair([6, 1]);
  for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'reluGrad'] as const) {
    const f = t[op] as (a: t.Tensor, b: t.Tensor) => t.Tensor;
    assertSame(f(xw, yw), f(xc, yc), op);
    assertSame(f(xw, bw), f(xc, bc), `${op} row broadcast`);
    assertSame(f(cw, xw), f(cc, xc), `${op} column broadcast`);
    assertSame(f(t.transpose(t.reshape(xw, [37, 6])), cw), f(t.transpose(t.reshape(xc, [37, 6])), cc), `${op} transposed input`);
  }
  for (const op of ['neg', 'abs', 'relu', 'sqrt', 'floor', 'ceil', 'round', 'sin', 'cos', 'sign'] as const) {
    const f = t[op] as (a: t.Tensor) => t.Tensor;
    assertSame(f(xw), f(xc), op);
    assertSame(f(t.transpose(xw)), f(t.transpose(xc)), `${op} transposed`);
  }
  // The SIMD transcendentals are within 3 ulp of the rounded reference (transcendental.test.ts sweeps the
  // whole float32 range), and a strided input gives the same bits as a contiguous one.
  for (const op of ['exp', 'log', 'log1p', 'expm1', 'rsqrt', 'tanh', 'sigmoid', 'erf'] as const) {
    const f = t[op] as (a: t.Tensor) => t.Tensor;
    const got = f(xw).data(), want = f(xc).data();
    for (let i = 0; i < want.length; i++) {
      if (Number.isNaN(want[i]!)) assert.ok(Number.isNaN(got[i]!), `${op}[${i}]: ${got[i]} vs NaN`);
      else assert.ok(Math.abs(got[i]! - want[i]!) <= 3 * 2 ** -23 * Math.max(Math.abs(want[i]!), 2 ** -126), `${op}[${i}]: ${got[i]} vs ${want[i]}`);
    }
    assertSame(t.contiguous(f(t.transpose(xw))), t.transpose(f(xw)).contiguous(), `${op} transposed`);
  }
  // 4-D: broadcasts on inner and middle axes and a permuted operand (several outer dimensions).
  const [qc, qw] = pair([2, 3, 4, 20]);
  const [rc, rw] = pair([2, 1, 4, 1]);
  const [pc4, pw4] = pair([20, 4, 3, 2]);
  for (const op of ['add', 'div', 'maximum'] as const) {
    const f = t[op] as (a: t.Tensor, b: t.Tensor) => t.Tensor;
    assertSame(f(qw, rw), f(qc, rc), `${op} 4-D broadcast`);
    assertSame(f(t.permute(pw4, [3, 2, 1, 0]), rw), f(t.permute(pc4, [3, 2, 1, 0]), rc), `${op} 4-D permuted`);
  }
  assertSame(t.where(t.gt(qw, rw), t.permute(pw4, [3, 2, 1, 0]), rw), t.where(t.gt(qc, rc), t.permute(pc4, [3, 2, 1, 0]), rc), 'where 4-D');
  // A broadcast (stride-0) input to a unary op.
  const [oc, ow] = pair([1, 37]);
  assertSame(t.relu(t.expand(ow, [6, 37])), t.relu(t.expand(oc, [6, 37])), 'relu of an expanded row');
  assertSame(t.sqrt(t.expand(t.reshape(ow, [37, 1]), [37, 20])), t.sqrt(t.expand(t.reshape(oc, [37, 1]), [37, 20])), 'sqrt of an expanded column');
  // NaN and signed zeros go through relu/maximum like the reference.
  const special = [NaN, -0, 0, -1, Infinity, -Infinity, 3, 0.5];
  const sc = t.tensor(special, { dtype: 'float32', backend: 'cpu' });
  const sw = t.tensor(special, { dtype: 'float32', backend: 'wasm' });
  assertSame(t.relu(sw), t.relu(sc), 'relu specials');
  assertSame(t.maximum(sw, t.flip(sw, [0])), t.maximum(sc, t.flip(sc, [0])), 'maximum specials');
  assertSame(t.reluGrad(sw, t.flip(sw, [0])), t.reluGrad(sc, t.flip(sc, [0])), 'reluGrad specials');
  // The fast paths were taken.
  for (const op of ['add', 'maximum', 'reluGrad', 'relu', 'sqrt', 'exp', 'erf'] as const) assert.ok(wasmBackend.kernelCalls.get(op)!.wasm > 0, op);
  // float64 keeps the reference kernel.
  const [dc, dw] = pair([3, 20], 'float64');
  assertSame(t.exp(dw), t.exp(dc), 'float64 exp');
  assert.ok(wasmBackend.kernelCalls.get('exp')!.reference > 0);
});

test('contiguous() of a permuted view; comparisons and where (bool) through wasm, NaN included', () => {
  const [xc, xw] = pair([4, 5, 6]);
  assertSame(t.contiguous(t.permute(xw, [2, 0, 1])), t.contiguous(t.permute(xc, [2, 0, 1])), 'contiguous');
  const [yc, yw] = pair([5, 6]);
  const withNaN = (x: t.Tensor) => t.where(t.gt(x, 1.5), NaN, x);
  for (const op of ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const) {
    const f = t[op] as (a: t.Tensor | number, b: t.Tensor | number) => t.Tensor;
    assertSame(f(xw, 0), f(xc, 0), `${op} scalar`);
    assertSame(f(withNaN(xw), yw), f(withNaN(xc), yc), `${op} broadcast with NaN`);
    assertSame(f(t.transpose(xw, 1, 2), t.transpose(xw, 1, 2)), f(t.transpose(xc, 1, 2), t.transpose(xc, 1, 2)), `${op} strided`);
    assert.equal(f(xw, 0).dtype, 'bool');
  }
  assertSame(t.where(t.gt(xw, 0), xw, yw), t.where(t.gt(xc, 0), xc, yc), 'where broadcast');
  assertSame(t.where(t.lt(t.transpose(xw, 0, 2), 0), 0, t.transpose(xw, 0, 2)), t.where(t.lt(t.transpose(xc, 0, 2), 0), 0, t.transpose(xc, 0, 2)), 'where strided');
  for (const op of ['gt', 'eq', 'where'] as const) assert.ok(wasmBackend.kernelCalls.get(op)!.wasm > 0, op);
});

test('data movement (flip, cat, pad, sliceBackward) places values exactly like the reference, for every dtype', () => {
  for (const dtype of ['float32', 'float64', 'int32', 'uint8', 'bool'] as const) {
    const [xc, xw] = pair([3, 4, 5], dtype === 'bool' ? 'float32' : dtype);
    const cast = (x: t.Tensor) => (dtype === 'bool' ? t.gt(x, 0) : x);
    const [a, b] = [cast(xc), cast(xw)];
    assertSame(t.flip(b, [0, 2]), t.flip(a, [0, 2]), `flip ${dtype}`);
    assertSame(t.flip(t.transpose(b, 0, 2), [1]), t.flip(t.transpose(a, 0, 2), [1]), `flip of a view ${dtype}`);
    assertSame(t.cat([b, t.flip(b, [1])], 1), t.cat([a, t.flip(a, [1])], 1), `cat ${dtype}`);
    assertSame(t.cat([t.transpose(b, 0, 1), t.transpose(b, 0, 1)], 0), t.cat([t.transpose(a, 0, 1), t.transpose(a, 0, 1)], 0), `cat of views ${dtype}`);
  }
  for (const from of ['float64', 'int32', 'uint8'] as const) {
    const [cc, cw] = pair([3, 7], from);
    for (const to of ['float32', 'float64', 'int32', 'bool'] as const) {
      assertSame(t.cast(t.transpose(cw), to), t.cast(t.transpose(cc), to), `cast ${from} → ${to}`);
    }
  }
  const [xc, xw] = pair([2, 3, 6]);
  assertSame(t.pad(xw, [1, 2, 0, 1]), t.pad(xc, [1, 2, 0, 1]), 'pad zeros');
  assertSame(t.pad(xw, [1, 2, 0, 1], 'constant', 1.5), t.pad(xc, [1, 2, 0, 1], 'constant', 1.5), 'pad value');
  const grad = (x: t.Tensor) => {
    const g = x.requiresGrad_();
    t.sum(t.mul(t.slice(g, 2, 1, 6, 2), 3)).backward();
    return g.grad!;
  };
  const [sc, sw] = pair([2, 3, 6]);
  assertSame(grad(sw), grad(sc), 'sliceBackward (gradient of a strided slice)');
  // unfold's gradient adds overlapping windows back (col2im) in the reference's order.
  const unfoldGrad = (x: t.Tensor, w: t.Tensor) => {
    const g = x.requiresGrad_();
    t.sum(t.mul(t.unfold(t.transpose(g, 1, 2), 2, 3, 1), w)).backward();
    return g.grad!;
  };
  const [uc, uw] = pair([2, 7, 4]);
  const [wc, ww] = pair([2, 4, 5, 3]);
  assertSame(unfoldGrad(uw, ww), unfoldGrad(uc, wc), 'unfoldBackward');
  // im2col-shaped copy: many rows of 3 elements.
  const [ic, iw] = pair([2, 3, 10, 12]);
  const im2col = (x: t.Tensor) => t.contiguous(t.unfold(t.unfold(x, 2, 3, 1), 3, 3, 1));
  assertSame(im2col(iw), im2col(ic), 'im2col copy');
  // argmax/argmin on strided views, ties and NaN included.
  const [ac, aw] = pair([3, 4, 6]);
  const tied = (x: t.Tensor) => t.where(t.gt(x, 1), NaN, t.floor(x));
  for (const f of [t.argmax, t.argmin] as const) {
    for (const axis of [0, 1, 2]) {
      assertSame(f(tied(aw), axis), f(tied(ac), axis), `arg-reduce axis ${axis}`);
      assertSame(f(t.transpose(aw, 0, 2), axis, true), f(t.transpose(ac, 0, 2), axis, true), `arg-reduce transposed axis ${axis}`);
    }
  }
  // gather / scatterAdd with strided operands; an out-of-range index reports like the reference.
  const [gc, gw] = pair([4, 5, 6]);
  const idxData = Int32Array.from({ length: 4 * 3 * 6 }, (_, i) => (i * 7) % 5);
  const jc = t.tensor(idxData, { shape: [4, 3, 6], backend: 'cpu' }), jw = t.tensor(idxData, { shape: [4, 3, 6], backend: 'wasm' });
  assertSame(t.gather(gw, 1, jw), t.gather(gc, 1, jc), 'gather');
  assertSame(t.gather(t.transpose(gw, 0, 2), 1, t.transpose(jw, 0, 2)), t.gather(t.transpose(gc, 0, 2), 1, t.transpose(jc, 0, 2)), 'gather strided');
  const [tc, tw] = pair([4, 3, 6]);
  assertSame(t.scatterAdd(gw, 1, jw, tw), t.scatterAdd(gc, 1, jc, tc), 'scatterAdd');
  assertSame(t.scatterAdd(t.transpose(gw, 0, 1), 0, t.transpose(jw, 0, 1), t.transpose(tw, 0, 1)),
    t.scatterAdd(t.transpose(gc, 0, 1), 0, t.transpose(jc, 0, 1), t.transpose(tc, 0, 1)), 'scatterAdd strided');
  const bad = t.tensor(Int32Array.from([0, 9]), { shape: [1, 2], backend: 'wasm' });
  const badCpu = t.tensor(Int32Array.from([0, 9]), { shape: [1, 2], backend: 'cpu' });
  const message = (f: () => unknown) => { try { f(); return ''; } catch (e) { return String(e); } };
  const [g2c, g2w] = pair([3, 2]);
  assert.equal(message(() => t.gather(g2w, 0, bad)), message(() => t.gather(g2c, 0, badCpu)));
  assert.notEqual(message(() => t.gather(g2w, 0, bad)), '');
  for (const op of ['flip', 'cat', 'pad', 'sliceBackward', 'unfoldBackward', 'argmax', 'gather', 'scatterAdd'] as const) assert.ok(wasmBackend.kernelCalls.get(op)!.wasm > 0, op);
});

test('SIMD reductions (rows and columns) match the reference; other layouts fall back', () => {
  const [xc, xw] = pair([6, 7, 45]);
  const calls = () => wasmBackend.kernelCalls.get('sum')?.wasm ?? 0;
  const before = calls();
  for (const op of ['sum', 'max', 'min'] as const) {
    const f = t[op] as (x: t.Tensor, axes?: number | number[], keepdim?: boolean) => t.Tensor;
    // Columns add in the reference's order (exact); rows use four f64 partial sums (ties may round differently).
    const rowsTol = op === 'sum' ? 2 ** -23 * 45 * 2 : 0;
    const check = (w: t.Tensor, c: t.Tensor, tol: number, what: string) => {
      assert.deepEqual(w.shape, c.shape, what);
      const a = w.data(), e = c.data();
      for (let i = 0; i < e.length; i++) assert.ok(Math.abs(a[i]! - e[i]!) <= tol * Math.max(1, Math.abs(e[i]!)), `${what}[${i}]: ${a[i]} vs ${e[i]}`);
    };
    check(f(xw, -1), f(xc, -1), rowsTol, `${op} last axis`);
    check(f(xw, [1, 2], true), f(xc, [1, 2], true), rowsTol, `${op} two trailing axes, keepdim`);
    check(f(xw), f(xc), op === 'sum' ? 2 ** -23 * 4 : 0, `${op} everything`);
    check(f(xw, 0), f(xc, 0), 0, `${op} leading axis (columns)`);
    check(f(xw, [0, 1]), f(xc, [0, 1]), 0, `${op} two leading axes (columns)`);
    check(f(t.transpose(xw, 0, 2), 2), f(t.transpose(xc, 0, 2), 2), 0, `${op} over a transposed view (columns)`);
    check(f(xw, 1), f(xc, 1), 0, `${op} middle axis (falls back or columns)`);
    // Reduced axes around a kept one (a conv bias gradient): two stages. The partial sums (each of
    // up to 45 values in [-2, 2]) are rounded to f32 once: ≤ 6 partials × 2^-24 × 90.
    check(f(xw, [0, 2]), f(xc, [0, 2]), op === 'sum' ? 6 * 90 * 2 ** -24 : 0, `${op} axes 0 and 2 (two stages)`);
    const [yc, yw] = pair([3, 4, 5, 6]);
    check(f(yw, [0, 2, 3]), f(yc, [0, 2, 3]), op === 'sum' ? 3 * 60 * 2 ** -24 : 0, `${op} axes 0, 2, 3 (two stages)`);
    // Adjacent reduced axes that do not merge in memory ([6, 45, 7] stored as [6, 7, 45], summed
    // over the first two, as a bias gradient of a transposed activation): smallest stride first.
    const zw = t.transpose(xw, 1, 2), zc = t.transpose(xc, 1, 2);
    const refBefore = wasmBackend.kernelCalls.get(op)?.reference ?? 0;
    check(f(zw, [0, 1]), f(zc, [0, 1]), op === 'sum' ? 6 * 90 * 2 ** -24 : 0, `${op} axes 0 and 1 of a permuted view (two stages)`);
    assert.equal(wasmBackend.kernelCalls.get(op)?.reference ?? 0, refBefore, `${op} over a permuted view ran the reference`);
  }
  assert.ok(calls() > before, 'sum ran the SIMD kernels');
  // NaN propagates through max like the reference.
  const nan = t.tensor(Float32Array.from([1, NaN, 3, 4, 5, 6, 7, 8, 9]), { backend: 'wasm' });
  assert.ok(Number.isNaN(t.max(nan).item()));
});

test('autodiff through wasm kernels matches the cpu backend', () => {
  const [ac, aw] = pair([8, 12]);
  const [bc, bw] = pair([12, 5]);
  const grads = (a: t.Tensor, b: t.Tensor) => {
    const a1 = a.requiresGrad_();
    const b1 = b.requiresGrad_();
    t.sum(t.relu(t.matmul(a1, b1))).backward();
    return [a1.grad!, b1.grad!];
  };
  const [gac, gbc] = grads(ac, bc);
  const [gaw, gbw] = grads(aw, bw);
  assertClose(gaw, gac, 12, 'dL/dA');
  assertClose(gbw, gbc, 12, 'dL/dB');
});

test('with two threads the results are unchanged', () => {
  const threads = enableWasmThreads(2);
  try {
    assert.equal(threads, 2);
    const [ac, aw] = pair([96, 130]);
    const [bc, bw] = pair([130, 80]);
    assertClose(t.matmul(aw, bw), t.matmul(ac, bc), 130, '2 threads');
  } finally {
    wasmBackend.stopThreads();
  }
});

test('tensors dropped without dispose() come back to the heap: pressure alerts run a collection', async () => {
  const gc = nodeGarbageCollector();
  assert.ok(gc !== undefined, 'Node offers a collector');
  const backend = new WasmBackend({ name: 'wasm-gc-test', heap: { initialBytes: 2 ** 20, onPressure: () => gc!(), pressureStepBytes: 2 ** 20 } });
  t.registerBackend(backend);
  const x = t.rand([256, 256], { backend: 'wasm-gc-test' }); // 256 KiB
  for (let i = 0; i < 200; i++) {
    t.add(t.mul(x, 2), 1); // two 256 KiB results, dropped
    if (i % 10 === 9) await new Promise((r) => setImmediate(r)); // finalizers run between tasks
  }
  await new Promise((r) => setImmediate(r));
  // Without collections this would hold 100 MiB.
  const inUse = backend.heap.stats().bytesInUse;
  assert.ok(inUse < 16 * 2 ** 20, `${(inUse / 2 ** 20).toFixed(1)} MiB still in use`);
});
