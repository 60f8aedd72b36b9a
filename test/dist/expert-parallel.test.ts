// Expert parallelism (all-to-all dispatch and combine) against one process training nn.MoE on
// all the tokens: the replicated parameters and every rank's experts must end equal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as t from '../../src/index.js';
import { runThreadRanks } from '../../src/dist/index.js';
import { batchOf, makeModel, replicatedOf, type EpArgs, type EpResult } from './fixtures/expert-parallel-ranks.js';

const ranksModule = new URL('./fixtures/expert-parallel-ranks.ts', import.meta.url);

function trainWhole(args: EpArgs): ReturnType<typeof makeModel> {
  const previous = t.currentBackendName();
  t.setBackend('cpu');
  try {
    const m = makeModel(args);
    const optimizer = new t.optim.SGD([...m.input.parameters(), ...m.moe.parameters(), ...m.head.parameters()], { lr: 0.2, momentum: 0.9 });
    for (let step = 0; step < args.steps; step++) {
      const { x, y } = batchOf(args, step);
      optimizer.zeroGrad();
      const out = m.head.call(m.moe.call(m.input.call(t.tensor(x, { dtype: 'float64' }))));
      const loss = t.mseLoss(out, t.tensor(y, { dtype: 'float64' }));
      (args.auxWeight ? loss.add(m.moe.auxLoss!.mul(args.auxWeight)) : loss).backward();
      optimizer.step();
    }
    return m;
  } finally {
    t.setBackend(previous);
  }
}

const close = (a: readonly number[], b: readonly number[], what: string): void => {
  assert.equal(a.length, b.length, what);
  const diff = Math.max(...a.map((v, j) => Math.abs(v - b[j]!)));
  assert.ok(diff < 1e-12, `${what}: difference ${diff}`);
};

const cases: [number, number, number, number | undefined, number | undefined][] = [
  [2, 4, 2, undefined, undefined], [4, 4, 1, undefined, undefined], [2, 6, 2, undefined, undefined], [2, 4, 2, 1, undefined], [4, 4, 1, 0.75, undefined], [2, 4, 2, 1.25, 0.1],
];
for (const [ranks, experts, topK, capacityFactor, auxWeight] of cases) {
  test(`expert parallel over ${ranks} ranks (${experts / ranks} of ${experts} experts each, top-${topK}${capacityFactor ? `, capacity factor ${capacityFactor}` : ''}${auxWeight ? `, load-balancing loss × ${auxWeight}` : ''}): float64 = one process training nn.MoE`, { timeout: 120_000 }, async () => {
    const args: EpArgs = { steps: 5, tokens: 24, experts, topK, capacityFactor, auxWeight };
    const results = await runThreadRanks<EpArgs, EpResult>({ worldSize: ranks, module: ranksModule, exportName: 'trainExpertParallel', args });
    const whole = trainWhole(args);
    const reference = Object.fromEntries(Object.entries(replicatedOf(whole)).map(([k, v]) => [k, Array.from(v.data())]));
    const seen = new Set<number>();
    results.forEach((r, rank) => {
      for (const [name, values] of Object.entries(r.replicated)) close(values, reference[name]!, `rank ${rank} ${name}`);
      for (const [e, params] of Object.entries(r.experts)) {
        const expected = (whole.moe.experts.get(Number(e)) as t.nn.Module).parameters();
        params.forEach((values, k) => close(values, Array.from(expected[k]!.data()), `expert ${e} parameter ${k}`));
        seen.add(Number(e));
      }
    });
    assert.equal(seen.size, experts, 'every expert lives on exactly one rank');
    // The same routing over the whole batch: capacity, load per expert and drops (none without a capacity factor).
    for (const r of results) assert.deepEqual(r.routing, whole.moe.lastRouting);
    assert.equal(whole.moe.lastRouting!.dropped > 0, capacityFactor !== undefined, `dropped ${whole.moe.lastRouting!.dropped}`);
    // The experts trained (so the comparison is not of initial values).
    const untrained = makeModel(args);
    const e0 = (untrained.moe.experts.get(0) as t.nn.Module).parameters()[0]!.data();
    assert.ok(Array.from(e0).some((v, j) => Math.abs(v - results[0]!.experts[0]![0]![j]!) > 1e-6));
  });
}
