// backwardSplit (zero-bubble pipelines' B and W): B's input gradients and W's parameter gradients
// must be those of one backward pass, computed with the same work (each vjp once: B has the
// activation GEMMs, W the weight GEMMs), and the graph must be freed by W.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { backwardSplit } from '../../src/autodiff/split-backward.js';
import { addDispatchObserver } from '../../src/ops/dispatch.js';
import { forEachBackend, runsFloat64Checks } from '../helpers/backends.js';
import { assertClose, assertThrowsWith } from '../helpers/close.js';

/** How many matmuls `fn` runs. */
function matmulsIn(fn: () => void): number {
  let n = 0;
  const remove = addDispatchObserver({ onPrimitive: (prim) => { if (prim === 'matmul') n++; } });
  try { fn(); } finally { remove(); }
  return n;
}

forEachBackend('backwardSplit', (backend) => {
  const dtype = runsFloat64Checks(backend) ? 'float64' as const : 'float32' as const;
  const tol = dtype === 'float64' ? { atol: 1e-12, rtol: 1e-12 } : { atol: 1e-5, rtol: 1e-5 };

  /** A stage: Linear, tanh, LayerNorm, a Linear used twice (shared weight), a checkpointed block. */
  function makeStage(): { params: t.nn.Parameter[]; run: (x: Tensor) => Tensor } {
    t.manualSeed(11);
    const fc1 = new t.nn.Linear(6, 8, { dtype }), ln = new t.nn.LayerNorm(8, { dtype }), fc2 = new t.nn.Linear(8, 8, { dtype });
    const fc3 = new t.nn.Linear(8, 3, { dtype });
    const params = [...fc1.parameters(), ...ln.parameters(), ...fc2.parameters(), ...fc3.parameters()];
    const run = (x: Tensor): Tensor => {
      const h = ln.call(t.tanh(fc1.call(x)) as Tensor) as Tensor;
      const shared = t.tanh(fc2.call(t.tanh(fc2.call(h) as Tensor)) as Tensor);
      return t.checkpoint((z: Tensor) => fc3.call(z.sin()) as Tensor, shared);
    };
    return { params, run };
  }
  const input = (): Tensor => {
    t.manualSeed(5);
    return t.randn([4, 6], { dtype }).requiresGrad_();
  };
  const outputGrad = (): Tensor => {
    t.manualSeed(6);
    return t.randn([4, 3], { dtype });
  };

  it('B gives the input gradient, W the parameter gradients, equal to one backward pass', () => {
    const plain = makeStage(), x0 = input();
    plain.run(x0).backward(outputGrad());
    const split = makeStage(), x1 = input();
    const { inputGrads, weights } = backwardSplit(split.run(x1), [x1], outputGrad());
    assertClose(inputGrads[0]!, x0.grad!, tol, 'input gradient');
    assert.equal(x1.grad, undefined, 'B captures the input gradient instead of storing it');
    // Every .grad is W's to store (the checkpointed block's weight gradients, which its custom vjp
    // returns with the input's in B, too).
    assert.ok(split.params.every((p) => p.grad === undefined), 'no parameter gradient before W');
    weights();
    split.params.forEach((p, i) => assertClose(p.grad!, plain.params[i]!.grad!, tol, `parameter ${i}`));
  });

  it('runs each vjp once: B the activation GEMMs, W the weight GEMMs, as many as one backward pass', () => {
    const net = (): { params: t.nn.Parameter[]; y: Tensor; x: Tensor } => {
      t.manualSeed(12);
      const a = new t.nn.Linear(6, 8, { dtype }), b = new t.nn.Linear(8, 3, { dtype });
      const x = input();
      return { params: [...a.parameters(), ...b.parameters()], y: b.call(t.tanh(a.call(x) as Tensor)) as Tensor, x };
    };
    const plain = net();
    const whole = matmulsIn(() => plain.y.backward(outputGrad()));
    const split = net();
    let w: () => void = () => {};
    const inB = matmulsIn(() => { w = backwardSplit(split.y, [split.x], outputGrad()).weights; });
    const inW = matmulsIn(() => w());
    assert.equal(whole, 4);
    assert.deepEqual([inB, inW], [2, 2]);
    split.params.forEach((p, i) => assertClose(p.grad!, plain.params[i]!.grad!, tol, `parameter ${i}`));
  });

  it('with no inputs (a first stage), B does nothing and W the whole backward pass', () => {
    const plain = makeStage();
    plain.run(input().detach()).backward(outputGrad());
    const split = makeStage();
    const root = split.run(input().detach());
    let w: () => void = () => {};
    assert.equal(matmulsIn(() => { w = backwardSplit(root, [], outputGrad()).weights; }), 0);
    w();
    split.params.forEach((p, i) => assertClose(p.grad!, plain.params[i]!.grad!, tol, `parameter ${i}`));
  });

  it('W frees the graph and runs once; a scalar root needs no gradient', () => {
    const stage = makeStage(), x = input();
    const loss = stage.run(x).square().mean();
    const { weights } = backwardSplit(loss, [x]);
    weights();
    assertThrowsWith(() => weights(), 'backwardSplit', 'already called');
    assertThrowsWith(() => loss.backward(), 'second time');
    assertThrowsWith(() => backwardSplit(stage.run(x), [x]), 'one-element');
    assertThrowsWith(() => backwardSplit(t.ones([2], { dtype }), []), 'does not require grad');
  });
});
