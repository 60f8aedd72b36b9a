import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WasmHeap } from '../../../src/backend/wasm/memory.js';
import { ThreadPool } from '../../../src/backend/wasm/threads.js';
import { createNodeThreadPool } from '../../../src/backend/wasm/node-workers.js';
import { WasmMatmul, rowMajorOperand, sharedAPlan, sharedBPlan, splitWork, type MatmulOperand } from '../../../src/backend/wasm/matmul.js';
import { buildMatmulModule } from '../../../src/backend/wasm/matmul-kernel.js';
import {
  DEFAULT_MATMUL_CONFIG, FMA_MATMUL_CONFIG, defaultMatmulConfig, matmulConfigKey, validateMatmulConfig, type MatmulConfig,
} from '../../../src/backend/wasm/matmul-config.js';
import { relaxedSimdSupported } from '../../../src/backend/wasm/simd-features.js';

// Tiny blocking parameters make small shapes cross every block boundary (K > kc, M > mc,
// N > nc) and every edge path, so the tests stay fast.
const TINY: MatmulConfig = { mr: 4, nr: 8, kc: 16, mc: 8, nc: 16, unroll: 3 };
const TINY_2x16: MatmulConfig = { mr: 2, nr: 16, kc: 7, mc: 6, nc: 32, unroll: 2 };
const TINY_3x4: MatmulConfig = { mr: 3, nr: 4, kc: 5, mc: 9, nc: 8, unroll: 1 };
// Two 4-row groups per A panel in packA's 4×4-transpose path (and one 4-column group in packB's).
const TINY_8x4: MatmulConfig = { mr: 8, nr: 4, kc: 10, mc: 16, nc: 12, unroll: 1 };
// Every config runs with mul + add and, where the runtime has relaxed SIMD, with FMA.
const FMA = relaxedSimdSupported();
const both = (...configs: MatmulConfig[]): MatmulConfig[] => configs.flatMap((c) => (FMA ? [c, { ...c, fma: true }] : [c]));
const CONFIGS = both(DEFAULT_MATMUL_CONFIG, TINY, TINY_2x16, TINY_3x4, TINY_8x4);

const heap = new WasmHeap({ initialBytes: 8 * 2 ** 20, maximumBytes: 256 * 2 ** 20 });
const pool1 = new ThreadPool(heap, { threads: 1 });
const pool2 = createNodeThreadPool(heap, { threads: 2 });
const mm1 = new WasmMatmul(heap, pool1);
const mm2 = new WasmMatmul(heap, pool2);
pool2.waitUntilReady(); // so that the two-thread tests really use the worker
after(() => pool2.dispose());

let seed = 42;
function random(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32 * 2 - 1;
}

interface Case {
  m: number; n: number; k: number; batch?: number;
  transA?: boolean; transB?: boolean;
  /** Batch strides of A and B: 'full' (own matrix per batch) or 0 (broadcast). */
  broadcastA?: boolean; broadcastB?: boolean;
  alpha?: number; beta?: number; bias?: boolean; relu?: boolean;
  /** Write C transposed (column stride ≠ 1). */
  transC?: boolean;
}

/** Fills heap memory for a case, runs it, and compares with a float64 reference. */
function check(mm: WasmMatmul, c: Case, config: MatmulConfig): void {
  const { m, n, k } = c;
  const batch = c.batch ?? 1;
  const aCount = (c.broadcastA ? 1 : batch) * m * k;
  const bCount = (c.broadcastB ? 1 : batch) * k * n;
  const cCount = batch * m * n;
  const aPtr = heap.alloc(aCount * 4), bPtr = heap.alloc(bCount * 4), cPtr = heap.alloc(cCount * 4);
  const biasPtr = c.bias ? heap.alloc(n * 4) : undefined;
  try {
    const f = heap.f32;
    for (let i = 0; i < aCount; i++) f[aPtr / 4 + i] = random();
    for (let i = 0; i < bCount; i++) f[bPtr / 4 + i] = random();
    const beta = c.beta ?? 0;
    // With beta = 0, C must not be read: fill it with NaN to prove it.
    for (let i = 0; i < cCount; i++) f[cPtr / 4 + i] = beta === 0 ? NaN : random();
    if (biasPtr !== undefined) for (let j = 0; j < n; j++) f[biasPtr / 4 + j] = random();
    const cBefore = Float32Array.from(f.subarray(cPtr / 4, cPtr / 4 + cCount));

    // A stored row-major as m×k, or as k×m when transposed (then read through swapped strides).
    const aOp: MatmulOperand = { ...rowMajorOperand(aPtr, c.transA ? k : m, c.transA ? m : k, c.transA), batchStride: c.broadcastA ? 0 : m * k };
    const bOp: MatmulOperand = { ...rowMajorOperand(bPtr, c.transB ? n : k, c.transB ? k : n, c.transB), batchStride: c.broadcastB ? 0 : k * n };
    const cOp: MatmulOperand = c.transC ? { ptr: cPtr, rowStride: 1, colStride: m, batchStride: m * n } : rowMajorOperand(cPtr, m, n);
    mm.run({ m, n, k, batch, a: aOp, b: bOp, c: cOp, alpha: c.alpha, beta: c.beta, bias: biasPtr, relu: c.relu }, config);

    const at = (op: MatmulOperand, bi: number, i: number, j: number) => op.ptr / 4 + bi * (op.batchStride ?? 0) + i * op.rowStride + j * op.colStride;
    const g = heap.f32;
    const alpha = c.alpha ?? 1;
    for (let bi = 0; bi < batch; bi++) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let sum = 0;
          let sumAbs = 0;
          for (let p = 0; p < k; p++) {
            const prod = g[at(aOp, bi, i, p)]! * g[at(bOp, bi, p, j)]!;
            sum += prod;
            sumAbs += Math.abs(prod);
          }
          const ci = at(cOp, bi, i, j);
          let want = alpha * sum + (beta === 0 ? 0 : beta * cBefore[ci - cPtr / 4]!);
          if (biasPtr !== undefined) want += g[biasPtr / 4 + j]!;
          if (c.relu) want = Math.max(want, 0);
          // f32 accumulation over k terms: error ≤ ~k·eps·Σ|a·b| (worst case), plus the epilogue's roundings.
          const tol = 2 * (k + 4) * 2 ** -24 * (Math.abs(alpha) * sumAbs + 2) + 1e-7;
          const got = g[ci]!;
          if (!(Math.abs(got - want) <= tol)) {
            assert.fail(`${JSON.stringify(c)} config ${JSON.stringify(config)}: C[${bi}][${i}][${j}] = ${got}, want ${want} (tol ${tol})`);
          }
        }
      }
    }
  } finally {
    heap.free(aPtr); heap.free(bPtr); heap.free(cPtr);
    if (biasPtr !== undefined) heap.free(biasPtr);
  }
}

const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [7, 13, 5], [65, 33, 129], [4, 8, 16], [8, 16, 33], [3, 40, 2], [33, 1, 17], [1, 29, 31], [17, 17, 17],
];

test('the generated module validates for every config and names its problems otherwise', () => {
  for (const cfg of CONFIGS) {
    const bytes = buildMatmulModule(cfg, { module: 'env', name: 'memory', minPages: 1, maxPages: heap.maxPages, shared: heap.shared });
    assert.ok(WebAssembly.validate(bytes), JSON.stringify(cfg));
  }
  assert.throws(() => validateMatmulConfig({ ...DEFAULT_MATMUL_CONFIG, nr: 6 }), /nr = 6 must be a multiple of 4/);
  assert.throws(() => validateMatmulConfig({ ...DEFAULT_MATMUL_CONFIG, mr: 8, nr: 8 }), /16 accumulators exceed/);
  assert.throws(() => validateMatmulConfig({ ...DEFAULT_MATMUL_CONFIG, mc: 30 }), /mc = 30 must be a multiple of mr = 4/);
  assert.throws(() => validateMatmulConfig({ ...DEFAULT_MATMUL_CONFIG, kc: 0 }), /kc = 0 must be a positive integer/);
});

test('Node 20 gets relaxed SIMD (FMA) by turning on V8\'s flag; the default config uses it', () => {
  if (process.env.TESSERA_WASM_RELAXED_SIMD === '0') {
    assert.equal(relaxedSimdSupported(), false);
    assert.equal(defaultMatmulConfig().fma ?? false, false);
    return;
  }
  assert.equal(relaxedSimdSupported(), true);
  assert.deepEqual(defaultMatmulConfig(), FMA_MATMUL_CONFIG);
  assert.notEqual(matmulConfigKey(FMA_MATMUL_CONFIG), matmulConfigKey(DEFAULT_MATMUL_CONFIG));
  assert.throws(() => validateMatmulConfig({ ...DEFAULT_MATMUL_CONFIG, fma: 1 as unknown as boolean }), /fma = 1 must be true or false/);
});

test('plain products of many shapes match a float64 reference (every config, 1 thread)', () => {
  for (const cfg of CONFIGS) for (const [m, n, k] of SHAPES) check(mm1, { m, n, k }, cfg);
});

test('transposed operands are read through strides (all four combinations)', () => {
  for (const cfg of both(TINY, TINY_3x4, DEFAULT_MATMUL_CONFIG)) {
    for (const [m, n, k] of [[7, 13, 5], [65, 33, 129], [9, 20, 40]] as const) {
      for (const transA of [false, true]) for (const transB of [false, true]) check(mm1, { m, n, k, transA, transB }, cfg);
    }
  }
});

test('packing through 4×4 transposes: K blocks that are not a multiple of 4, edge panels, every transpose combination', () => {
  // Row-major A and transposed B take the transpose paths; k = 4q + r exercises the scalar tail
  // after them, and m, n not multiples of the tile exercise the zero-padded edge panels.
  for (const cfg of both(TINY, TINY_2x16, TINY_8x4, DEFAULT_MATMUL_CONFIG)) {
    for (const [m, n, k] of [[16, 32, 7], [19, 35, 30], [33, 17, 259], [8, 16, 4], [9, 9, 3]] as const) {
      for (const transA of [false, true]) for (const transB of [false, true]) check(mm1, { m, n, k, transA, transB }, cfg);
    }
  }
});

test('a strided C (column stride ≠ 1) goes through the scalar store path', () => {
  for (const cfg of both(TINY, DEFAULT_MATMUL_CONFIG)) check(mm1, { m: 12, n: 24, k: 20, transC: true, beta: 0.5, bias: true }, cfg);
});

test('the fused epilogue: alpha, beta (0 does not read C, 1 and general), bias per column, ReLU, across K blocks', () => {
  for (const cfg of both(TINY, TINY_2x16, DEFAULT_MATMUL_CONFIG)) {
    for (const [m, n, k] of [[8, 16, 40], [13, 21, 9], [4, 8, 1]] as const) {
      check(mm1, { m, n, k, alpha: 0.5, beta: 0 }, cfg);
      check(mm1, { m, n, k, beta: 1 }, cfg);
      check(mm1, { m, n, k, alpha: -2, beta: 0.25 }, cfg);
      check(mm1, { m, n, k, bias: true }, cfg);
      check(mm1, { m, n, k, bias: true, relu: true }, cfg);
      check(mm1, { m, n, k, relu: true, beta: 1, alpha: 3 }, cfg);
    }
  }
});

test('batched products with broadcasting (batch stride 0) of either operand', () => {
  for (const cfg of both(TINY, DEFAULT_MATMUL_CONFIG)) {
    check(mm1, { m: 5, n: 9, k: 7, batch: 3 }, cfg);
    check(mm1, { m: 5, n: 9, k: 7, batch: 4, broadcastA: true }, cfg);
    check(mm1, { m: 6, n: 17, k: 20, batch: 3, broadcastB: true, transB: true, bias: true }, cfg);
    check(mm1, { m: 6, n: 17, k: 20, batch: 2, broadcastA: true, broadcastB: true, transA: true }, cfg);
  }
});

test('K = 0 leaves beta·C + bias (ReLU); empty M or N writes nothing', () => {
  check(mm1, { m: 3, n: 5, k: 0, beta: 0.5, bias: true, relu: true }, TINY);
  check(mm1, { m: 3, n: 5, k: 0 }, TINY);
  const c = heap.alloc(64);
  heap.f32[c / 4] = 7;
  mm1.run({ m: 0, n: 4, k: 4, a: rowMajorOperand(c, 0, 4), b: rowMajorOperand(c, 4, 4), c: rowMajorOperand(c, 0, 4) });
  assert.equal(heap.f32[c / 4], 7);
  heap.free(c);
});

test('two threads give the same results: M split, N split (short wide products), batch split', () => {
  // Large enough to pass the parallel threshold.
  for (const cfg of both(DEFAULT_MATMUL_CONFIG, TINY_2x16)) {
    check(mm2, { m: 130, n: 70, k: 120, bias: true, relu: true }, cfg);
    check(mm2, { m: 3, n: 700, k: 600, transB: true }, cfg);
    check(mm2, { m: 16, n: 600, k: 300, bias: true }, cfg); // N split: packs less than an M split
    check(mm2, { m: 40, n: 48, k: 64, batch: 5, broadcastB: true, beta: 1 }, cfg);
    check(mm2, { m: 1030, n: 20, k: 64, transA: true, bias: true }, cfg); // 4 units of 260 rows: two per thread
  }
  assert.equal(pool2.threads, 2);
});

/** C of one product run by `mm` with `config` (A, B, bias from a fixed seed), as a copy. */
function productOf(mm: WasmMatmul, c: Case, config: MatmulConfig): Float32Array {
  const { m, n, k } = c;
  const aPtr = heap.alloc(m * k * 4), bPtr = heap.alloc(k * n * 4), cPtr = heap.alloc(m * n * 4), biasPtr = heap.alloc(n * 4);
  try {
    seed = 7;
    const f = heap.f32;
    for (let i = 0; i < m * k; i++) f[aPtr / 4 + i] = random();
    for (let i = 0; i < k * n; i++) f[bPtr / 4 + i] = random();
    for (let i = 0; i < m * n; i++) f[cPtr / 4 + i] = random();
    for (let j = 0; j < n; j++) f[biasPtr / 4 + j] = random();
    mm.run({
      m, n, k,
      a: rowMajorOperand(aPtr, c.transA ? k : m, c.transA ? m : k, c.transA),
      b: rowMajorOperand(bPtr, c.transB ? n : k, c.transB ? k : n, c.transB),
      c: rowMajorOperand(cPtr, m, n), alpha: c.alpha, beta: c.beta, bias: c.bias ? biasPtr : undefined, relu: c.relu,
    }, config);
    return Float32Array.from(heap.f32.subarray(cPtr / 4, cPtr / 4 + m * n));
  } finally {
    heap.free(aPtr); heap.free(bPtr); heap.free(cPtr); heap.free(biasPtr);
  }
}

/**
 * Products that take the shared-packing plan for `operand` (B for M chunks, A for N chunks): with
 * it, the same bits as one thread and as per-unit packing, and right against float64.
 */
function checkSharedPacking(operand: 'a' | 'b', cases: Case[]): void {
  for (const cfg of [DEFAULT_MATMUL_CONFIG, TINY, TINY_2x16, TINY_3x4]) {
    for (const c of cases) {
      const plan = sharedBPlan(c.m, c.n, c.k, 1, 2, cfg) ?? sharedAPlan(c.m, c.n, c.k, 1, 2, cfg);
      const chunks = plan === undefined ? 0 : operand === 'b' ? Math.ceil(c.m / plan.mChunk) : Math.ceil(c.n / plan.nChunk);
      assert.ok(plan?.operand === operand && chunks >= 4, `${JSON.stringify(c)}: the shared-${operand.toUpperCase()} plan applies`);
      const shared = productOf(mm2, c, { ...cfg, shareB: true });
      assert.deepEqual(shared, productOf(mm1, c, cfg), `${JSON.stringify(c)} ${JSON.stringify(cfg)}: shared vs 1 thread`);
      assert.deepEqual(shared, productOf(mm2, c, { ...cfg, shareB: false }), `${JSON.stringify(c)} ${JSON.stringify(cfg)}: shared vs per-unit packing`);
    }
    check(mm2, { ...cases[0]!, beta: 0.5 }, { ...cfg, shareB: true });
  }
}

test('B packed once and shared by many M chunks: bit-identical to one thread and to per-unit packing', () => {
  // Several KC×NC blocks of B (N > NC, K > KC in the tiny configs), edge panels, transposes and epilogues.
  checkSharedPacking('b', [
    { m: 300, n: 70, k: 45, bias: true, relu: true },
    { m: 257, n: 33, k: 100, transA: true, transB: true, beta: 1 },
    { m: 512, n: 130, k: 29, transB: true, alpha: 0.5, beta: 0.25, bias: true },
  ]);
});

test('an outer batch (groups of matrices with their own strides) equals one call per group, on 1 and 2 threads', () => {
  // q·kᵀ of attention heads: q [B=3, T=20, H=5, D=12] read as [B, H, T, D] (H does not walk like B).
  const [B, T, H, D] = [3, 20, 5, 12];
  const q = heap.alloc(B * T * H * D * 4), kk = heap.alloc(B * T * H * D * 4);
  const c1 = heap.alloc(B * H * T * T * 4), c2 = heap.alloc(B * H * T * T * 4);
  try {
    for (let i = 0; i < B * T * H * D; i++) { heap.f32[q / 4 + i] = random(); heap.f32[kk / 4 + i] = random(); }
    const operand = (ptr: number, transposed: boolean) => transposed
      ? { ptr, rowStride: 1, colStride: H * D, batchStride: D, outerStride: T * H * D } // kᵀ: [D, T] per head
      : { ptr, rowStride: H * D, colStride: 1, batchStride: D, outerStride: T * H * D };
    for (const mm of [mm1, mm2]) {
      heap.f32.fill(NaN, c1 / 4, c1 / 4 + B * H * T * T);
      mm.run({ m: T, n: T, k: D, batch: H, outerBatch: B, a: operand(q, false), b: operand(kk, true),
        c: { ptr: c1, rowStride: T, colStride: 1, batchStride: T * T, outerStride: H * T * T } });
      for (let bo = 0; bo < B; bo++) {
        const shift = (op: MatmulOperand, by: number) => ({ ...op, ptr: op.ptr + 4 * by, outerStride: 0 });
        mm.run({ m: T, n: T, k: D, batch: H, a: shift(operand(q, false), bo * T * H * D), b: shift(operand(kk, true), bo * T * H * D),
          c: { ptr: c2 + 4 * bo * H * T * T, rowStride: T, colStride: 1, batchStride: T * T } });
      }
      assert.deepEqual(heap.f32.slice(c1 / 4, c1 / 4 + B * H * T * T), heap.f32.slice(c2 / 4, c2 / 4 + B * H * T * T));
      // And one entry against a float64 dot product: batch (b=2, h=3), row 7, column 11.
      let want = 0;
      for (let d = 0; d < D; d++) want += heap.f32[q / 4 + 2 * T * H * D + 7 * H * D + 3 * D + d]! * heap.f32[kk / 4 + 2 * T * H * D + 11 * H * D + 3 * D + d]!;
      assert.ok(Math.abs(heap.f32[c1 / 4 + (2 * H + 3) * T * T + 7 * T + 11]! - want) < 1e-5);
    }
    assert.throws(() => mm1.run({ m: T, n: T, k: D, batch: H, outerBatch: B, a: operand(q, false), b: operand(kk, true),
      c: { ptr: c1, rowStride: T, colStride: 1, batchStride: T * T } }), /c\.outerStride is 0 with outerBatch 3/);
  } finally {
    heap.free(q); heap.free(kk); heap.free(c1); heap.free(c2);
  }
});

test('shared-B plan: single products with rows for 2 chunks per thread and a B that fits L3', () => {
  const cfg = DEFAULT_MATMUL_CONFIG;
  // 1024² on 2 threads: 8 chunks of 128 rows; B is two 512-deep blocks of 128 panels.
  assert.deepEqual(sharedBPlan(1024, 1024, 1024, 1, 2, cfg), {
    operand: 'b', mChunk: 128, nChunk: 1024, blocks: 2, slices: 2, blockStride: 128 * (512 * 8 * 4 + 64), bytes: 2 * 128 * (512 * 8 * 4 + 64),
  });
  assert.equal(sharedBPlan(128, 512, 784, 1, 2, cfg)?.mChunk, 32); // the MLP's first layer: 4 chunks
  assert.equal(sharedBPlan(127, 512, 784, 1, 2, cfg), undefined); // too few rows
  assert.equal(sharedBPlan(64, 64, 32, 64, 2, cfg), undefined); // batched: the batch splits
  assert.equal(sharedBPlan(1024, 2048, 1024, 1, 2, cfg), undefined); // B of 8 MiB: each unit packs its own
  // Too few rows: A is shared instead and N cut, while A fits in half the L2 (64×1000 floats here).
  assert.deepEqual(sharedAPlan(64, 288, 1000, 1, 2, cfg), {
    operand: 'a', mChunk: 64, nChunk: 40, blocks: 2, slices: 2, blockStride: 16 * (500 * 4 * 4 + 64), bytes: 2 * 16 * (500 * 4 * 4 + 64),
  });
  assert.equal(sharedAPlan(64, 288, 12544, 1, 2, cfg), undefined); // the CNN's conv2 weight gradient: A of 3.2 MB
  assert.equal(sharedAPlan(64, 63, 512, 1, 2, cfg), undefined); // too few columns
});

test('A packed once and shared by many N chunks: bit-identical to one thread and to per-unit packing', () => {
  checkSharedPacking('a', [
    { m: 20, n: 300, k: 45, bias: true, relu: true },
    { m: 33, n: 130, k: 100, transA: true, transB: true, beta: 1 },
    { m: 64, n: 97, k: 29, transA: true, alpha: 0.5, beta: 0.25, bias: true },
  ]);
});

test('work split: batch first, then M or N by packing cost, two units per thread only while chunks stay long', () => {
  const cfg = DEFAULT_MATMUL_CONFIG;
  assert.deepEqual(splitWork(64, 64, 32, 64, 2, cfg), { mChunk: 64, nChunk: 64 }); // attention: one matrix per unit
  assert.deepEqual(splitWork(1024, 1024, 1024, 1, 2, cfg), { mChunk: 256, nChunk: 1024 });
  assert.deepEqual(splitWork(12544, 64, 288, 1, 2, cfg), { mChunk: 3136, nChunk: 64 }); // im2col forward
  // A short, wide product: splitting N packs less; 4 chunks would be 128 columns, so only 2.
  assert.deepEqual(splitWork(128, 512, 784, 1, 2, cfg), { mChunk: 128, nChunk: 256 });
  assert.deepEqual(splitWork(3, 700, 600, 1, 2, cfg), { mChunk: 3, nChunk: 352 });
  // Too small to split at all.
  assert.deepEqual(splitWork(2, 3, 600, 1, 2, cfg), { mChunk: 2, nChunk: 3 });
});

test('invalid arguments are rejected with the offending values', () => {
  const p = heap.alloc(4096);
  const ok = rowMajorOperand(p, 4, 4);
  assert.throws(() => mm1.run({ m: 4, n: 4, k: 4, a: { ...ok, rowStride: -4 }, b: ok, c: ok }), /a.rowStride = -4 must be a non-negative integer/);
  assert.throws(() => mm1.run({ m: 4, n: 4, k: 4, a: ok, b: { ...ok, ptr: p + 2 }, c: ok }), /b.ptr = \d+ is not a 4-byte aligned/);
  assert.throws(() => mm1.run({ m: 4, n: 4, k: 2 ** 30, a: ok, b: ok, c: ok }), /past the end of the wasm memory/);
  assert.throws(() => mm1.run({ m: 4, n: 4, k: 4, batch: 2, a: ok, b: ok, c: { ...ok, batchStride: 0 } }), /c.batchStride is 0 with batch 2/);
  assert.throws(() => mm1.run({ m: 1.5, n: 4, k: 4, a: ok, b: ok, c: ok }), /m = 1.5 must be a non-negative integer/);
  heap.free(p);
});
