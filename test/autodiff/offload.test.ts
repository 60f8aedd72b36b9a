// Activation offloading: offload(fn) must give the gradients of running fn plainly (arguments,
// parameters, captured activations, dropout, several outputs, retainGraph, createGraph), must leave
// only the block's inputs and output on the backend after the forward, and must fail clearly.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend, runsFloat64Checks } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';
import { gradsOf } from '../helpers/grads.js';

forEachBackend('offload', (backend) => {
  const dtype = runsFloat64Checks(backend) ? 'float64' as const : 'float32' as const;
  const tol = dtype === 'float64' ? { atol: 1e-12, rtol: 1e-12 } : { atol: 1e-5, rtol: 1e-5 };
  const param = (shape: number[]): Tensor => t.randn(shape, { dtype }).requiresGrad_();

  it('gives the gradients of the plain block, with dropout, for arguments, parameters and captured activations', () => {
    t.manualSeed(3);
    const W1 = param([6, 12]), b1 = param([12]), W2 = param([12, 6]), x0 = param([5, 6]), c0 = param([5, 12]);
    const run = (wrap: boolean): Tensor[] => {
      t.manualSeed(21);
      return gradsOf([W1, b1, W2, x0, c0], () => {
        const x = x0.mul(1.5);
        const captured = c0.sin();
        const block = (h: Tensor): Tensor => t.dropout(t.tanh(h.matmul(W1).add(b1).add(captured)), 0.3).matmul(W2);
        const y = wrap ? t.offload(block, x) : block(x);
        return y.mul(y).sum();
      });
    };
    const [plain, moved] = [run(false), run(true)];
    plain.forEach((g, i) => assertClose(moved[i]!, g, tol));
    assert.ok(t.lastOffloadStats().tensors >= 4, `saved tensors moved: ${JSON.stringify(t.lastOffloadStats())}`);
  });

  it('handles several outputs, retainGraph (a second backward brings the tensors back again) and createGraph', () => {
    t.manualSeed(5);
    const W = param([4, 4]), x0 = param([3, 4]);
    const block = (h: Tensor): Tensor[] => [h.matmul(W).exp(), h.mul(W.sum()).sin()];
    const lossOf = (outs: Tensor[]): Tensor => outs[0]!.sum().add(outs[1]!.pow(2).sum());
    const plain = gradsOf([W, x0], () => lossOf(block(x0.mul(1))));
    const moved = gradsOf([W, x0], () => lossOf(t.offload(block, x0.mul(1))));
    plain.forEach((g, i) => assertClose(moved[i]!, g, tol));

    W.grad = undefined;
    const loss = t.offload((h: Tensor) => h.matmul(W).tanh(), x0).sum();
    loss.backward(undefined, { retainGraph: true });
    const once = W.grad!.clone();
    loss.backward();
    assertClose(W.grad!, once.mul(2), tol);

    const x = param([5]);
    const f = (v: Tensor): Tensor => v.sin().mul(v).exp();
    const [g1] = t.gradients(f(x).sum(), [x], undefined, true);
    const [h1] = t.gradients(g1!.sum(), [x]);
    const [g2] = t.gradients(t.offload(f, x).sum(), [x], undefined, true);
    const [h2] = t.gradients(g2!.sum(), [x]);
    assertClose(g2!, g1!, tol);
    assertClose(h2!, h1!, tol);
  });

  it('leaves only the block\'s output on the backend after the forward', () => {
    t.manualSeed(7);
    const W1 = param([64, 256]), W2 = param([256, 64]), x = param([32, 64]);
    const block = (h: Tensor): Tensor => h.matmul(W1).relu().matmul(W2).tanh();
    t.scope(() => {
      const before = t.memoryStats().liveBytes;
      const y = t.offload(block, x);
      const after = t.memoryStats().liveBytes;
      // The output (32×64) stays; the hidden activations went to host arrays.
      assert.equal(after - before, 32 * 64 * t.itemsize(dtype));
      assert.ok(t.lastOffloadStats().hostBytes >= 2 * 32 * 256 * t.itemsize(dtype), JSON.stringify(t.lastOffloadStats()));
      y.sum().backward();
    });
    assert.ok(W1.grad !== undefined && W2.grad !== undefined);
  });

  it('reuses its host arrays from step to step once backward is done with them', () => {
    t.manualSeed(9);
    const W = param([16, 64]), x0 = param([8, 16]);
    const block = (h: Tensor): Tensor => h.matmul(W).relu().exp();
    const step = (): Tensor[] => gradsOf([W, x0], () => t.offload(block, x0).sum());
    const plain = gradsOf([W, x0], () => block(x0).sum());
    step();
    const pooled = t.offloadPoolStats();
    assert.ok(pooled.bytes >= t.lastOffloadStats().hostBytes && pooled.arrays >= 1, `after backward the arrays are pooled: ${JSON.stringify(pooled)}`);
    const again = step();
    // Reused, not reallocated: fresh arrays would come back next to the pooled ones and double it.
    assert.deepEqual(t.offloadPoolStats(), pooled, 'the next step took the pooled arrays and gave the same ones back');
    plain.forEach((g, i) => assertClose(again[i]!, g, tol));
    // retainGraph keeps the arrays with the graph; a limit of 0 turns reuse off.
    t.setOffloadPoolLimit(0);
    assert.equal(t.offloadPoolStats().bytes, 0);
    step();
    assert.equal(t.offloadPoolStats().bytes, 0);
    t.setOffloadPoolLimit(2 ** 30);
    assert.throws(() => t.setOffloadPoolLimit(-1), /setOffloadPoolLimit: the limit must be a non-negative number of bytes, got -1/);
  });

  it('runs plainly without a tape, matches plain training under jit (differentiable replays too), and names itself in errors', () => {
    const x = t.randn([2, 3], { dtype });
    const y = t.offload((h: Tensor) => h.exp(), x);
    assert.equal(y.requiresGrad, false);
    t.manualSeed(8);
    const W = param([3, 3]);
    const step = (wrap: boolean) => t.jit((inp: Tensor) => {
      const out = wrap ? t.offload((h: Tensor) => h.matmul(W).tanh(), inp) : inp.matmul(W).tanh();
      const [g] = t.gradients(out.sum(), [W]);
      return g!;
    });
    const inp = t.randn([4, 3], { dtype });
    assertClose(step(true)(inp), step(false)(inp), tol);
    assert.throws(() => t.offload(() => 3 as unknown as Tensor), /offload: the function must return a tensor/);
  });
});

forEachBackend('GptConfig.offload', (backend) => {
  it('trains a GPT with dropout to the same gradients', () => {
    const config = { vocabSize: 11, blockSize: 8, embedDim: 16, numHeads: 2, numLayers: 3, dropout: 0.2 };
    const dtype = runsFloat64Checks(backend) ? 'float64' as const : 'float32' as const;
    const idx = t.randint(0, 11, [3, 8]), target = t.randint(0, 11, [3 * 8]);
    const results = [false, true].map((offload) => {
      t.manualSeed(11);
      const gpt = new t.nn.GPT({ ...config, offload }, { dtype });
      t.manualSeed(12);
      const loss = t.crossEntropy(gpt.call(idx).reshape([3 * 8, 11]), target);
      loss.backward();
      return { loss: loss.item(), grads: gpt.parameters().map((p) => p.grad!) };
    });
    const [plain, moved] = results as [typeof results[0], typeof results[0]];
    assert.equal(moved.loss, plain.loss);
    plain.grads.forEach((g, i) => assertClose(moved.grads[i]!, g, dtype === 'float64' ? { atol: 1e-12, rtol: 1e-10 } : { atol: 2e-5, rtol: 1e-4 }));
    assert.throws(() => new t.nn.GPT({ ...config, offload: true, checkpoint: true }), /checkpoint and offload are two ways .*choose one/);
  });
});

forEachBackend('GptConfig.offload under jit', (backend) => {
  it('a compiled GPT training step copies saved activations to the host and back: the plain step\'s gradients (with dropout), a lower backend peak', () => {
    const cfg = { vocabSize: 65, blockSize: 16, embedDim: 32, numHeads: 4, numLayers: 3, dropout: 0.1 };
    const x = t.randint(0, 65, [4, 16]), y = t.randint(0, 65, [4 * 16]);
    const make = (offload: boolean) => {
      t.manualSeed(3);
      const gpt = new t.nn.GPT({ ...cfg, offload });
      // differentiable: false compiles the replay (the returned gradients are not differentiated again).
      return t.jit((ids: Tensor) => t.gradients(t.crossEntropy(gpt.call(ids).reshape([4 * 16, 65]), y), gpt.parameters()), { differentiable: false });
    };
    const plain = make(false), moved = make(true);
    for (let call = 0; call < 2; call++) { // the trace, then a compiled replay
      t.manualSeed(50 + call);
      const a = plain(x);
      t.manualSeed(50 + call);
      const b = moved(x);
      a.forEach((g, i) => assertClose(b[i]!, g, { atol: 1e-6, rtol: 1e-5 }));
    }
    assert.equal(moved.stats().traces, 1);
    const ops = moved.graphs()[0]!.traced.nodes.map((n) => n.op);
    const stores = ops.filter((o) => o === 'offloadStore').length;
    if (backend === 'cpu') {
      // The cpu backend's memory is the host's: nothing to move, the graph is the plain one.
      assert.equal(stores, 0);
      return;
    }
    assert.ok(stores > 0 && ops.filter((o) => o === 'offloadFetch').length === stores, `${stores} stores`);
    const plan = (f: typeof plain) => t.compiler.memoryPlan(t.compiler.runPipeline(f.graphs()[0]!.traced.clone()).graph);
    const [planPlain, planMoved] = [plan(plain), plan(moved)];
    assert.ok(planMoved.peakLiveBytes < 0.7 * planPlain.peakLiveBytes, `planned peak ${planMoved.peakLiveBytes} bytes with offload, ${planPlain.peakLiveBytes} without`);
    assert.ok(planMoved.hostBytes > 0 && planPlain.hostBytes === 0);
    // A replay's measured peak on the backend follows the plan.
    const measured = (f: typeof plain): number => {
      const before = t.memoryStats().byBackend[backend]!.liveBytes;
      t.resetPeakMemory();
      const out = f(x);
      const peak = t.memoryStats().byBackend[backend]!.peakBytes - before;
      out.forEach((o) => o.dispose());
      return peak;
    };
    const [peakPlain, peakMoved] = [measured(plain), measured(moved)];
    assert.ok(peakMoved < 0.75 * peakPlain, `replay peak on ${backend}: ${peakMoved} bytes with offload, ${peakPlain} without`);
  });
});

forEachBackend('offload gradcheck', () => {
  it('agrees with finite differences', () => {
    t.manualSeed(10);
    const report = t.gradcheck((...xs: Tensor[]) => t.offload((h: Tensor) => h.matmul(xs[1]!).sigmoid().mul(h.sum()), xs[0]!),
      [t.randn([2, 3], { dtype: 'float64' }), t.randn([3, 4], { dtype: 'float64' })]);
    assert.equal(report.ok, true, JSON.stringify(report.worst));
  });
}, { float64Only: true });
