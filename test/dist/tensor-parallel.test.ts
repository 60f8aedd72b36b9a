// Tensor parallelism (Megatron's column/row-parallel MLP and head-parallel attention) against one
// process training the whole model: every rank's slices must end equal to the same slices of the
// whole model's parameters. The expected slices are cut here with narrow(), independently of the
// blocks' own slicing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as t from '../../src/index.js';
import { runThreadRanks } from '../../src/dist/index.js';
import { B, E, HEADS, HIDDEN, VOCAB, batchOf, batchOf6, dtypeOf, makeDeep, makeLm, makeWhole, seqLen, tokensOf, type TpArgs, type WholeModel } from './fixtures/tensor-parallel-ranks.js';

const ranksModule = new URL('./fixtures/tensor-parallel-ranks.ts', import.meta.url);

function trainWhole(steps: number, args: Pick<TpArgs, 'backend' | 'sequenceParallel'> = {}): WholeModel {
  const previous = t.currentBackendName();
  t.setBackend(args.backend ?? 'cpu');
  try {
    const dtype = dtypeOf(args);
    const m = makeWhole(dtype);
    const params = [m.ln1, m.attention, m.ln2, m.fc1, m.fc2, m.lnf, m.head].flatMap((x) => x.parameters());
    const optimizer = new t.optim.SGD(params, { lr: 0.1, momentum: 0.9 });
    const T = seqLen(args);
    for (let step = 0; step < steps; step++) {
      const { x, y } = batchOf(step, T);
      optimizer.zeroGrad();
      const x0 = t.tensor(x, { shape: [B, T, E], dtype });
      const x1 = x0.add(m.attention.call(m.ln1.call(x0), undefined, undefined, { isCausal: true }));
      const x2 = x1.add(m.fc2.call(t.gelu(m.fc1.call(m.ln2.call(x1)))));
      t.mseLoss(m.head.call(m.lnf.call(x2)), t.tensor(y, { shape: [B, T, 3], dtype })).backward();
      optimizer.step();
    }
    return m;
  } finally {
    t.setBackend(previous);
  }
}

/** Rank r's parameters in TensorParallelStack order, cut from the whole model. */
function expectedSlices(m: WholeModel, r: number, p: number): number[][] {
  const v = (x: t.Tensor) => Array.from(x.contiguous().data());
  const headCols = E / p, hid = HIDDEN / p;
  const qkv = (x: t.Tensor) => [0, 1, 2].map((k) => v(t.narrow(x, 0, k * E + r * headCols, headCols)));
  return [
    v(m.ln1.weight!), v(m.ln1.bias!), ...qkv(m.attention.in_proj_weight), ...qkv(m.attention.in_proj_bias!),
    v(t.narrow(m.attention.out_proj.weight, 1, r * headCols, headCols)), v(m.attention.out_proj.bias!),
    v(m.ln2.weight!), v(m.ln2.bias!), v(t.narrow(m.fc1.weight, 0, r * hid, hid)), v(t.narrow(m.fc1.bias!, 0, r * hid, hid)),
    v(t.narrow(m.fc2.weight, 1, r * hid, hid)), v(m.fc2.bias!),
    v(m.lnf.weight!), v(m.lnf.bias!), v(m.head.weight), v(m.head.bias!),
  ];
}

for (const ranks of [2, 4]) {
  test(`tensor parallel over ${ranks} ranks (${HEADS / ranks} heads and ${HIDDEN / ranks} hidden units each): float64 slices = one process's`, { timeout: 120_000 }, async () => {
    const steps = 5;
    const results = await runThreadRanks<TpArgs, number[][]>({ worldSize: ranks, module: ranksModule, exportName: 'trainTensorParallel', args: { steps } });
    const whole = trainWhole(steps);
    const untrained = makeWhole();
    results.forEach((params, r) => {
      const expected = expectedSlices(whole, r, ranks);
      assert.equal(params.length, expected.length);
      params.forEach((values, k) => {
        assert.equal(values.length, expected[k]!.length, `parameter ${k} of rank ${r}`);
        const diff = Math.max(...values.map((x, j) => Math.abs(x - expected[k]![j]!)));
        assert.ok(diff < 1e-12, `rank ${r} parameter ${k}: difference ${diff}`);
      });
    });
    // Training moved every slice (so the comparison is not of untouched initial values), except
    // the key bias: q·(k + b) shifts every score of a query by the same q·b, which softmax ignores,
    // so its gradient is exactly zero.
    const start = expectedSlices(untrained, 0, ranks);
    const keyBias = 6;
    results[0]!.forEach((values, k) => {
      const moved = values.some((x, j) => Math.abs(x - start[k]![j]!) > 1e-6);
      assert.equal(moved, k !== keyBias, `parameter ${k} ${moved ? 'changed' : 'never changed'}`);
    });
  });
}

test('tensor parallel on the wasm backend in float32: 2 ranks\' slices within float32 rounding of one process\'s', { timeout: 120_000 }, async () => {
  const steps = 3;
  const results = await runThreadRanks<TpArgs, number[][]>({ worldSize: 2, module: ranksModule, exportName: 'trainTensorParallel', args: { steps, backend: 'wasm' } });
  const whole = trainWhole(steps, { backend: 'wasm' });
  results.forEach((params, r) => {
    const expected = expectedSlices(whole, r, 2);
    params.forEach((values, k) => {
      const diff = Math.max(...values.map((x, j) => Math.abs(x - expected[k]![j]!)));
      assert.ok(diff < 1e-4, `rank ${r} parameter ${k}: difference ${diff}`);
    });
  });
});

for (const ranks of [2, 4]) {
  test(`tensor parallel with sequence parallelism over ${ranks} ranks (${8 / ranks} positions each outside the products): float64 slices = one process's`, { timeout: 120_000 }, async () => {
    const steps = 4;
    const results = await runThreadRanks<TpArgs, number[][]>({ worldSize: ranks, module: ranksModule, exportName: 'trainTensorParallel', args: { steps, sequenceParallel: true } });
    const whole = trainWhole(steps, { sequenceParallel: true });
    results.forEach((params, r) => {
      const expected = expectedSlices(whole, r, ranks);
      params.forEach((values, k) => {
        const diff = Math.max(...values.map((x, j) => Math.abs(x - expected[k]![j]!)));
        assert.ok(diff < 1e-12, `rank ${r} parameter ${k}: difference ${diff}`);
      });
    });
  });
}

test('vocabulary parallel embedding, output layer and cross-entropy over 2 and 4 ranks: float64 slices = one process\'s', { timeout: 120_000 }, async () => {
  const steps = 4;
  const previous = t.currentBackendName();
  t.setBackend('cpu');
  const m = makeLm();
  try {
    const optimizer = new t.optim.SGD([m.embed, m.ln, m.fc1, m.fc2, m.lnf, m.head].flatMap((x) => x.parameters()), { lr: 0.3, momentum: 0.9 });
    for (let step = 0; step < steps; step++) {
      const { ids, targets } = tokensOf(step);
      optimizer.zeroGrad();
      const x = m.embed.call(t.tensor(ids, { shape: [B, 5], dtype: 'int32' }));
      const h = x.add(m.fc2.call(t.gelu(m.fc1.call(m.ln.call(x)))));
      const logits = m.head.call(m.lnf.call(h));
      t.crossEntropy(t.reshape(logits, [B * 5, VOCAB]), t.tensor(targets, { dtype: 'int32' })).backward();
      optimizer.step();
    }
  } finally {
    t.setBackend(previous);
  }
  const v = (x: t.Tensor) => Array.from(x.contiguous().data());
  for (const ranks of [2, 4]) {
    const results = await runThreadRanks<TpArgs, number[][]>({ worldSize: ranks, module: ranksModule, exportName: 'trainVocabParallel', args: { steps } });
    results.forEach((params, r) => {
      const words = VOCAB / ranks, hid = HIDDEN / ranks;
      const expected = [
        v(t.narrow(m.embed.weight, 0, r * words, words)),
        v(m.ln.weight!), v(m.ln.bias!), v(t.narrow(m.fc1.weight, 0, r * hid, hid)), v(t.narrow(m.fc1.bias!, 0, r * hid, hid)), v(t.narrow(m.fc2.weight, 1, r * hid, hid)), v(m.fc2.bias!),
        v(m.lnf.weight!), v(m.lnf.bias!),
        v(t.narrow(m.head.weight, 0, r * words, words)), v(t.narrow(m.head.bias!, 0, r * words, words)),
      ];
      assert.equal(params.length, expected.length);
      params.forEach((values, k) => {
        const diff = Math.max(...values.map((x, j) => Math.abs(x - expected[k]![j]!)));
        assert.ok(diff < 1e-12, `${ranks} ranks, rank ${r} parameter ${k}: difference ${diff}`);
      });
    });
  }
});

test('data × pipeline × tensor parallelism on 8 ranks (2 × 2 × 2, 1F1B): every rank\'s slices = one float64 process\'s', { timeout: 180_000 }, async () => {
  const steps = 3;
  const previous = t.currentBackendName();
  t.setBackend('cpu');
  const m = makeDeep();
  try {
    const params = [...m.blocks.flatMap((b) => [b.ln1, b.attention, b.ln2, b.fc1, b.fc2]), m.lnf, m.head].flatMap((x) => x.parameters());
    const optimizer = new t.optim.SGD([...new Set(params)], { lr: 0.1, momentum: 0.9 });
    for (let step = 0; step < steps; step++) {
      const { x, y } = batchOf6(step, 5);
      optimizer.zeroGrad();
      let h = t.tensor(x, { shape: [6, 5, E], dtype: 'float64' });
      for (const b of m.blocks) {
        h = h.add(b.attention.call(b.ln1.call(h), undefined, undefined, { isCausal: true }));
        h = h.add(b.fc2.call(t.gelu(b.fc1.call(b.ln2.call(h)))));
      }
      t.mseLoss(m.head.call(m.lnf.call(h)), t.tensor(y, { shape: [6, 5, 3], dtype: 'float64' })).backward();
      optimizer.step();
    }
  } finally {
    t.setBackend(previous);
  }
  const results = await runThreadRanks<TpArgs, number[][]>({ worldSize: 8, module: ranksModule, exportName: 'trainThreeD', args: { steps } });
  results.forEach((params, rank) => {
    const s = Math.floor(rank / 2) % 2, r = rank % 2;
    const all = expectedSlices({ ...m.blocks[s]!, lnf: m.lnf, head: m.head }, r, 2);
    const expected = s === 0 ? all.slice(0, 16) : all;
    assert.equal(params.length, expected.length, `rank ${rank}`);
    params.forEach((values, k) => {
      const diff = Math.max(...values.map((x, j) => Math.abs(x - expected[k]![j]!)));
      assert.ok(diff < 1e-12, `rank ${rank} (stage ${s}, tensor rank ${r}) parameter ${k}: difference ${diff}`);
    });
  });
});
