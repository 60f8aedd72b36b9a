// Graphs from real models and an equivalence check used by every pass test.
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { trace, interpret, assign, type Graph } from '../../src/index.js';
import { PlannedExecutor } from '../../src/compiler/index.js';
import { mlpParams, mlp, mse, gptParams, gptBlock, lstmParams, lstmCell, cnnParams, cnn, crossEntropyOneHot } from '../graph/models.js';

export interface ModelGraph {
  name: string;
  graph: Graph;
  /** Makes fresh random inputs of the graph's input shapes. */
  inputs: () => t.Tensor[];
}

const randomInputs = (g: Graph) => (): t.Tensor[] => g.inputs.map((id) => {
  const v = g.value(id);
  return t.randn([...v.shape], { dtype: v.dtype });
});

/** Forward graphs of MLP, CNN+batchnorm, GPT block, LSTM cell, and MLP/GPT training steps (without updates). */
export function modelGraphs(): ModelGraph[] {
  t.manualSeed(7);
  const out: ModelGraph[] = [];
  const add = (name: string, fn: (...xs: t.Tensor[]) => unknown, ex: t.Tensor[]): void => {
    const { graph } = trace(fn, ex);
    out.push({ name, graph, inputs: randomInputs(graph) });
  };
  const mp = mlpParams(6, 10, 4);
  add('mlp', (x) => mlp(mp, x), [t.randn([5, 6])]);
  const cp = cnnParams(2, 3, 3, 6, 4);
  add('cnn+bn', (x) => cnn(cp, x), [t.randn([2, 2, 6, 6])]);
  const gp = gptParams(8, 2);
  add('gpt', (x) => gptBlock(gp, x), [t.randn([2, 4, 8])]);
  const lp = lstmParams(3, 5);
  add('lstm', (x, h, c) => lstmCell(lp, x, h, c), [t.randn([2, 3]), t.randn([2, 5]), t.randn([2, 5])]);
  const mp2 = mlpParams(6, 10, 4);
  add('mlp-grad', (x, y) => {
    for (const p of Object.values(mp2)) p.grad = undefined;
    const l = crossEntropyOneHot(mlp(mp2, x), y);
    l.backward();
    return [l, mp2.w1.grad!, mp2.b2.grad!];
  }, [t.randn([5, 6]), t.randn([5, 4])]);
  const gp2 = gptParams(8, 2);
  add('gpt-grad', (x, y) => {
    for (const p of Object.values(gp2)) if (p instanceof t.Tensor) p.grad = undefined;
    const l = mse(gptBlock(gp2, x), y);
    l.backward();
    return [l, gp2.wq.grad!, gp2.ln1w.grad!];
  }, [t.randn([2, 4, 8]), t.randn([2, 4, 8])]);
  return out;
}

export function assertClose(a: t.Tensor, b: t.Tensor, tol: number, what: string): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shapes`);
  const x = a.data(), y = b.data();
  for (let i = 0; i < x.length; i++) {
    assert.ok(Math.abs(x[i]! - y[i]!) <= tol * (1 + Math.abs(y[i]!)), `${what}: element ${i}: ${x[i]} vs ${y[i]}`);
  }
}

/** Original vs optimized outputs on 2 random inputs, by the interpreter and by the planned executor. */
export function assertEquivalent(original: Graph, optimized: Graph, inputs: () => t.Tensor[], what: string, tol = 1e-5): void {
  for (let trial = 0; trial < 2; trial++) {
    const ins = inputs();
    const ref = interpret(original, ins, { applyWrites: false });
    const got = interpret(optimized, ins, { applyWrites: false });
    ref.forEach((r, k) => assertClose(got[k]!, r, tol, `${what} (interpreter) output ${k}`));
    if (optimized.writes.length === 0) {
      const ex = new PlannedExecutor(optimized, { reuseOutputs: false }).run(ins);
      ref.forEach((r, k) => assertClose(ex[k]!, r, tol, `${what} (executor) output ${k}`));
    }
  }
}

export { assign };
