// Shared by the data-parallel tests (ddp, zero, parameter-server): the single-process reference
// and the comparison of parameter lists.
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { batchOf, makeModel, makeOptimizer, type DdpArgs, type ZeroCheckpoint } from './fixtures/ddp-ranks.js';

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


/**
 * A sharded run's checkpoint against one process: `saved` (after `args.steps` steps) must hold
 * the optimizer state one process has then, and `resumed` (that many steps more, started from
 * `saved`, on another number of ranks) the parameters one process has after twice as many.
 */
export function checkCheckpoint(args: DdpArgs, saved: ZeroCheckpoint, resumed: ZeroCheckpoint, what: string): void {
  const previous = t.currentBackendName();
  t.setBackend('cpu');
  try {
    const model = makeModel(args, 100);
    const optimizer = makeOptimizer(args, model.parameters());
    let midway: ReturnType<typeof optimizer.stateDict> | undefined;
    for (let step = 0; step < 2 * args.steps; step++) {
      const { x, y } = batchOf(args, step);
      optimizer.zeroGrad();
      t.mseLoss(model.call(t.tensor(x, { dtype: args.dtype })), t.tensor(y, { dtype: args.dtype })).backward();
      optimizer.step();
      if (step === args.steps - 1) midway = optimizer.stateDict();
    }
    assert.equal(Object.keys(saved.state).length, model.parameters().length);
    for (const [i, st] of Object.entries(midway!.state)) {
      for (const [key, v] of Object.entries(st)) {
        const got = saved.state[i]![key];
        if (typeof v === 'number') assert.equal(got, v, `state ${i}.${key}`);
        else assert.ok(maxDifference([got as number[]], [Array.from(v.data())]) < 1e-12, `state ${i}.${key}`);
      }
    }
    const diff = maxDifference(resumed.params, model.parameters().map((p) => Array.from(p.data())));
    assert.ok(diff < 1e-12, `${what}: difference ${diff}`);
  } finally {
    t.setBackend(previous);
  }
}
