// Shared by the data-parallel tests (ddp, zero, parameter-server): the single-process reference
// and the comparison of parameter lists.
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { batchOf, makeModel, makeOptimizer, type DdpArgs } from './fixtures/ddp-ranks.js';

export const ranksModule = new URL('./fixtures/ddp-ranks.ts', import.meta.url);

export const base: DdpArgs = { backend: 'cpu', dtype: 'float64', steps: 8, accumulate: 1, batch: 24, optimizer: 'sgd' };

/** One process, whole batches: what every replica must match. */
export function trainReference(args: DdpArgs): number[][] {
  const previous = t.currentBackendName();
  t.setBackend(args.backend);
  try {
    const model = makeModel(args, 100); // rank 0's seed: the replicas start from rank 0's parameters
    const optimizer = makeOptimizer(args, model.parameters());
    for (let step = 0; step < args.steps; step++) {
      const { x, y } = batchOf(args, step);
      optimizer.zeroGrad();
      t.mseLoss(model.call(t.tensor(x, { dtype: args.dtype })), t.tensor(y, { dtype: args.dtype })).backward();
      if (args.maxGradNorm !== undefined) t.optim.clipGradNorm(model.parameters(), args.maxGradNorm);
      optimizer.step();
    }
    return model.parameters().map((p) => Array.from(p.data()));
  } finally {
    t.setBackend(previous);
  }
}

export function maxDifference(a: number[][], b: number[][]): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  a.forEach((row, i) => {
    assert.equal(row.length, b[i]!.length);
    row.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - b[i]![j]!)); });
  });
  return worst;
}

