// The NN ops never read tensor values on the op path, so a traced (jit) training step holds no value
// guards: new targets, indices and inputs replay the same graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { trace, interpret } from '../../../src/graph/index.js';
import { rand64, assertClose } from './helpers.js';

function step(x: t.Tensor, target: t.Tensor, tokens: t.Tensor, w: t.Tensor, table: t.Tensor): t.Tensor[] {
  const loss = (wc: t.Tensor, emb: t.Tensor): t.Tensor => {
    let h = t.conv2d(x, wc, { padding: 1 }).relu();
    h = t.adaptiveAvgPool2d(t.maxPool2d(h, 2), 1).flatten(1); // [N, 3]
    const e = t.embedding(tokens, emb).mean(1);               // [N, 3]
    const logits = t.layerNorm(h.add(e), [3]);
    return t.crossEntropy(logits, target, { labelSmoothing: 0.1, ignoreIndex: -1 })
      .add(t.scaledDotProductAttention(logits.unsqueeze(0), logits.unsqueeze(0), logits.unsqueeze(0), { isCausal: true }).sum());
  };
  const [value, grads] = t.valueAndGrad(loss, { argnums: [0, 1] })(w, table);
  return [value, ...(grads as t.Tensor[])];
}

test('a training step through the NN ops traces without value guards and replays on new data', () => {
  const w = rand64([3, 2, 3, 3], 1), table = rand64([5, 3], 2);
  const inputs = (seed: number): t.Tensor[] => [
    rand64([4, 2, 4, 4], seed),
    t.tensor([seed % 3, -1, 2, 1], { dtype: 'int32' }),
    t.tensor([[seed % 5, 1], [2, 3], [4, 0], [1, 1]], { dtype: 'int32' }),
    w, table,
  ];
  const traced = trace((...xs: t.Tensor[]) => step(xs[0]!, xs[1]!, xs[2]!, xs[3]!, xs[4]!), inputs(3), { onRead: 'error' });
  assert.equal(traced.graph.guards.length, 0);
  const fresh = inputs(7);
  const replayed = interpret(traced.graph, fresh);
  const eager = step(fresh[0]!, fresh[1]!, fresh[2]!, fresh[3]!, fresh[4]!);
  eager.forEach((e, i) => assertClose(replayed[i]!, e, `output ${i}`));
});
