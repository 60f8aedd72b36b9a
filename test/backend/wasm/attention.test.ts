import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { bind } from '../../../src/ops/dispatch.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';
import type { AttentionAttrs } from '../../../src/ops/primitives.js';
import { assertNearReference, cpuWasmPair, seededUniform } from '../../helpers/cpu-wasm-pair.js';

// The generated fused attention kernels (attention-kernel.ts: forward and backward) against the cpu
// reference kernels of the same primitives on random inputs, on one and two threads: causal and
// not, L ≠ S, E ≠ Ev, strided batch and row layouts (permuted heads, a broadcast batch, a feature
// axis that is not stride 1 and is copied first). float32 sums in another order than the
// reference's double ones: every element within 1e-5 · max(|reference|) (the measured error is
// below 1e-6 of it).

const values = seededUniform(11, 2);
/** The same float32 values on the cpu and wasm backends. */
const pair = cpuWasmPair(values);
const assertNear = assertNearReference;

const calls = (prim: 'attention' | 'attentionGrad') => ({ ...(wasmBackend.kernelCalls.get(prim) ?? { wasm: 0, reference: 0 }) });

/** Both primitives on both backends for inputs made by `make` from a (cpu, wasm) pair per base shape; the wasm kernel must serve them. */
function compare(what: string, shapes: number[][], make: (xs: t.Tensor[]) => t.Tensor[], attrs: AttentionAttrs, kernel: 'wasm' | 'reference' = 'wasm'): void {
  const pairs = shapes.map(pair);
  const [qc, kc, vc] = make(pairs.map((p) => p[0]));
  const [qw, kw, vw] = make(pairs.map((p) => p[1]));
  const before = [calls('attention'), calls('attentionGrad')];
  const yw = bind('attention', [qw!, kw!, vw!], attrs);
  const yc = bind('attention', [qc!, kc!, vc!], attrs);
  assertNear(yw, yc, `${what}: attention`);
  const [gc, gw] = pair([...yc.shape]);
  const dw = bind('attentionGrad', [qw!, kw!, vw!, gw], attrs);
  const dc = bind('attentionGrad', [qc!, kc!, vc!, gc], attrs);
  assertNear(dw, dc, `${what}: attentionGrad`);
  assert.equal(calls('attention')[kernel], before[0]![kernel] + 1, `${what}: attention ran the ${kernel} kernel`);
  assert.equal(calls('attentionGrad')[kernel], before[1]![kernel] + 1, `${what}: attentionGrad ran the ${kernel} kernel`);
}

const same = (xs: t.Tensor[]) => xs;

for (const threads of [1, 2]) {
  test(`attention and attentionGrad agree with the cpu reference (${threads} thread(s))`, () => {
    const previous = wasmBackend.pool.threads;
    enableWasmThreads(threads);
    try {
      for (const causal of [false, true]) {
        const attrs = { scale: 0.35, causal };
        const tag = causal ? 'causal' : 'full';
        compare(`GPT head geometry [4, 4, 64, 32] ${tag}`, [[4, 4, 64, 32], [4, 4, 64, 32], [4, 4, 64, 32]], same, attrs);
        compare(`L 5 < S 7, E 8, Ev 12 ${tag}`, [[3, 5, 8], [3, 7, 8], [3, 7, 12]], same, attrs);
        compare(`L 9 > S 4 ${tag}`, [[2, 9, 4], [2, 4, 4], [2, 4, 8]], same, attrs);
        compare(`no batch dims ${tag}`, [[6, 16], [10, 16], [10, 4]], same, attrs);
        // Long enough that the kernels take the query rows in several chunks (attentionScratchLayout:
        // 2 in the forward, 3 in the backward), whose dk/dv contributions add up.
        compare(`L 140, S 260: chunks of query rows ${tag}`, [[1, 140, 8], [1, 260, 8], [1, 260, 4]], same, attrs);
        // The GPT's layout: q, k and v are head views [B, H, L, D] of one [B, L, 3·H·D] projection.
        compare(`permuted head views of a QKV projection ${tag}`, [[2, 7, 3 * 4 * 8]], ([qkv]) => {
          const heads = t.permute(t.reshape(qkv!, [2, 7, 3, 4, 8]), [2, 0, 3, 1, 4]);
          return [heads.at(0), heads.at(1), heads.at(2)];
        }, attrs);
        // k and v shared by every batch entry (stride-0 batch dim), and a feature axis of stride ≠ 1.
        compare(`broadcast k, v and a transposed q ${tag}`, [[3, 12, 5], [1, 6, 12], [1, 6, 4]], ([q, k, v]) =>
          [t.transpose(q!, -2, -1), t.expand(k!, [3, 6, 12]), t.expand(v!, [3, 6, 4])], attrs);
      }
    } finally {
      enableWasmThreads(previous);
    }
  });
}

test('feature sizes that are not multiples of 4, and float64, run the reference kernel on wasm', () => {
  compare('E 3', [[2, 5, 3], [2, 6, 3], [2, 6, 4]], same, { scale: 0.5, causal: true }, 'reference');
  compare('Ev 6', [[2, 5, 4], [2, 6, 4], [2, 6, 6]], same, { scale: 0.5, causal: false }, 'reference');
  const q = t.randn([2, 3, 4], { dtype: 'float64', backend: 'wasm' });
  const before = calls('attention').reference;
  bind('attention', [q, q, q], { scale: 1, causal: false });
  assert.equal(calls('attention').reference, before + 1);
});

test('large scores: the row max shift keeps exp finite and the weights sum to one', () => {
  // Scores up to ~±400: exp without the shift would overflow float32.
  const q = t.mul(t.tensor(values(2 * 4 * 8), { shape: [2, 4, 8], dtype: 'float32', backend: 'wasm' }), 10);
  const k = t.mul(t.tensor(values(2 * 5 * 8), { shape: [2, 5, 8], dtype: 'float32', backend: 'wasm' }), 10);
  const ones = t.ones([2, 5, 4], { backend: 'wasm' });
  const y = bind('attention', [q, k, ones], { scale: 1, causal: false });
  for (const x of y.data()) assert.ok(Math.abs(Number(x) - 1) < 1e-6, `a row of weights sums to ${x}`);
});

test('rows whose scores are all +inf or all −inf come out NaN like the reference, next to finite rows of the same tile', () => {
  // Rows 1 and 2 of the kernel's 4-row tile score +inf and −inf against every key (inf/inf and
  // 0/0 in the reference); the kernel's exp, made for x <= 0, must give NaN and 0 there, and the
  // finite rows 0 and 3 must not notice.
  const qData = values(4 * 4);
  qData.fill(Infinity, 4, 8);
  qData.fill(-Infinity, 8, 12);
  const kData = new Float32Array(6 * 4).fill(0.5);
  const vData = values(6 * 4);
  const make = (backend: 'cpu' | 'wasm') => [qData, kData, vData].map((d, i) =>
    t.tensor(d, { shape: i === 0 ? [4, 4] : [6, 4], dtype: 'float32', backend }));
  for (const causal of [false, true]) {
    const attrs = { scale: 1, causal };
    const before = calls('attention').wasm;
    const yw = bind('attention', make('wasm'), attrs).toArray() as number[][];
    assert.equal(calls('attention').wasm, before + 1, 'the wasm kernel ran');
    const yc = bind('attention', make('cpu'), attrs).toArray() as number[][];
    yc.forEach((row, i) => row.forEach((want, j) => {
      const got = yw[i]![j]!;
      if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `causal ${causal}: y[${i}][${j}] = ${got}, the reference gives NaN`);
      else assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `causal ${causal}: y[${i}][${j}] = ${got}, the reference gives ${want}`);
    }));
  }
});
