import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import * as nn from '../../src/nn/index.js';

const o64 = { dtype: 'float64' } as const;

function softmaxRow(r: number[]): number[] {
  const m = Math.max(...r);
  const e = r.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** A float64 MoE with a fixed router so the routing is known. */
function fixedMoE(topK: number, capacityFactor: number): nn.MoE {
  t.manualSeed(2);
  const moe = new nn.MoE(2, 3, { topK, capacityFactor, hiddenDim: 4, ...o64 });
  // Router logits = x W^T with W = [[1, 0], [0, 1], [-1, -1]].
  nn.assignValues(moe.router.weight, [1, 0, 0, 1, -1, -1]);
  return moe;
}

const X = [[2, 0.5], [0.1, 1.5], [-1, -2], [1, 0.9]];

test('router: top-k experts by softmax probability, gates renormalised for k > 1, outputs = gated expert sums', () => {
  const moe = fixedMoE(2, 10);
  const x = t.tensor(X, o64).requiresGrad_();
  const y = moe.call(x);
  const expected = X.map((row) => {
    const probs = softmaxRow([row[0]!, row[1]!, -row[0]! - row[1]!]);
    const top = [0, 1, 2].sort((a, b) => probs[b]! - probs[a]! || a - b).slice(0, 2);
    const z = probs[top[0]!]! + probs[top[1]!]!;
    const acc = [0, 0];
    for (const e of top) {
      const out = (moe.experts.get(e) as nn.Module).call(t.tensor([row], o64)).data();
      acc[0] += (probs[e]! / z) * out[0]!;
      acc[1] += (probs[e]! / z) * out[1]!;
    }
    return acc;
  });
  const got = y.toArray() as number[][];
  got.forEach((r, i) => r.forEach((v, j) => assert.ok(Math.abs(v - expected[i]![j]!) < 1e-12, `y[${i}][${j}]`)));
  assert.deepEqual(moe.lastRouting, { tokensPerExpert: [4, 3, 1], dropped: 0, capacity: Math.ceil((10 * 4 * 2) / 3) });
});

test('capacity: first choices are served before second choices; overflow is dropped (zero output)', () => {
  // Top-1, capacity ceil(0.5 * 4 / 3) = 1: tokens 0 and 3 both pick expert 0; token 3 is dropped.
  const moe = fixedMoE(1, 0.5);
  const y = moe.call(t.tensor(X, o64));
  assert.equal(moe.lastRouting!.capacity, 1);
  assert.deepEqual(moe.lastRouting!.tokensPerExpert, [1, 1, 1]);
  assert.equal(moe.lastRouting!.dropped, 1);
  assert.deepEqual((y.toArray() as number[][])[3], [0, 0]);
  // Top-1 gates are the raw probabilities (Switch).
  const p0 = softmaxRow([2, 0.5, -2.5])[0]!;
  const e0 = (moe.experts.get(0) as nn.Module).call(t.tensor([X[0]!], o64)).data();
  assert.ok(Math.abs((y.toArray() as number[][])[0]![0]! - p0 * e0[0]!) < 1e-12);
});

test('auxiliary loss = E * sum_i f_i * P_i, and its gradient reaches the router', () => {
  const moe = fixedMoE(2, 10);
  moe.call(t.tensor(X, o64));
  const probs = X.map((r) => softmaxRow([r[0]!, r[1]!, -r[0]! - r[1]!]));
  const first = probs.map((p) => p.indexOf(Math.max(...p)));
  const f = [0, 1, 2].map((e) => first.filter((c) => c === e).length / 4);
  const P = [0, 1, 2].map((e) => probs.reduce((a, p) => a + p[e]!, 0) / 4);
  const expected = 3 * f.reduce((a, fi, i) => a + fi * P[i]!, 0);
  assert.ok(Math.abs(moe.auxLoss!.item() - expected) < 1e-12);
  // Perfectly balanced routing would give 1; this one is unbalanced towards expert 0 and 1.
  moe.auxLoss!.backward();
  assert.ok(moe.router.weight.grad!.data().some((v) => v !== 0));
  const loss = nn.withAuxLoss(moe, t.scalar(1, 'float64'), 0.5);
  assert.ok(Math.abs(loss.item() - (1 + 0.5 * expected)) < 1e-12);
});

test('MoE gradients match finite differences (inputs and expert weights)', () => {
  const moe = fixedMoE(2, 10);
  const x = t.tensor(X, o64).requiresGrad_();
  const probe = t.tensor([[1, -2], [0.5, 1], [2, 0.3], [-1, 1]], o64);
  moe.call(x).mul(probe).sum().backward();
  const f = (vals: number[]) => moe.call(t.tensor(Float64Array.from(vals), { shape: [4, 2] })).mul(probe).sum().item();
  const flat = X.flat();
  const g = x.grad!.data();
  const h = 1e-6;
  flat.forEach((_, i) => {
    const up = flat.slice(); up[i]! += h;
    const down = flat.slice(); down[i]! -= h;
    assert.ok(Math.abs((f(up) - f(down)) / (2 * h) - g[i]!) < 1e-6, `dx[${i}]`);
  });
  const w = (moe.experts.get(1) as nn.Sequential).get(0).parameters()[0]!;
  assert.ok(w.grad!.data().some((v) => v !== 0));
});

test('routing reads no value: a jitted training step with an MoE layer is traced once and matches eager steps', () => {
  const run = (jitted: boolean): { losses: number[]; traces: number } => {
    t.manualSeed(9);
    const moe = new nn.MoE(6, 4, { topK: 2, capacityFactor: 0.75, hiddenDim: 8 });
    const head = new nn.Linear(6, 1);
    const params = [...moe.parameters(), ...head.parameters()];
    const opt = new t.optim.Adam(params, { lr: 0.02 });
    const x = t.randn([16, 6]), y = t.randn([16, 1]);
    const body = (): t.Tensor => {
      opt.zeroGrad();
      const loss = nn.withAuxLoss(moe, t.mseLoss(head.call(moe.call(x)), y), 0.01);
      loss.backward();
      opt.step();
      return loss;
    };
    const step = jitted ? t.jit(body) : body;
    const losses = Array.from({ length: 4 }, () => step().item());
    return { losses, traces: jitted ? (step as ReturnType<typeof t.jit>).stats().traces : 0 };
  };
  const eager = run(false), compiled = run(true);
  compiled.losses.forEach((l, i) => assert.ok(Math.abs(l - eager.losses[i]!) < 1e-5, `step ${i}: ${l} vs ${eager.losses[i]}`));
  assert.equal(compiled.traces, 1);
});
