// Activation checkpointing: checkpoint(fn) must give the gradients of running fn plainly (for
// arguments, parameters and captured activations; with dropout, several outputs, retainGraph and
// createGraph), must keep only the block's inputs and outputs on the tape, and must fail clearly.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend, runsFloat64Checks } from '../helpers/backends.js';
import { assertClose } from '../helpers/close.js';
import { gradsOf } from '../helpers/grads.js';

const tapeBytes = (root: Tensor): number => t.savedTensorMemory(root).bytes;

forEachBackend('checkpoint', (backend) => {
  const dtype = runsFloat64Checks(backend) ? 'float64' as const : 'float32' as const;
  const tol = dtype === 'float64' ? { atol: 1e-12, rtol: 1e-12 } : { atol: 1e-5, rtol: 1e-5 };
  const param = (shape: number[]): Tensor => t.randn(shape, { dtype }).requiresGrad_();

  it('gives the gradients of the plain block for arguments, parameters and captured activations', () => {
    t.manualSeed(3);
    const W1 = param([6, 12]), b1 = param([12]), W2 = param([12, 6]), x0 = param([5, 6]), c0 = param([5, 12]);
    const plainAndCheckpointed = [false, true].map((ck) => gradsOf([W1, b1, W2, x0, c0], () => {
      const x = x0.mul(1.5);            // an activation passed as an argument
      const captured = c0.sin();        // an activation the block reads from its closure
      const block = (h: Tensor): Tensor => t.tanh(h.matmul(W1).add(b1).add(captured)).matmul(W2);
      const y = ck ? t.checkpoint(block, x) : block(x);
      return y.mul(y).sum();
    }));
    plainAndCheckpointed[0]!.forEach((g, i) => assertClose(plainAndCheckpointed[1]![i]!, g, tol));
  });

  it('replays the random draws, so dropout masks match between the forward and the recomputation', () => {
    t.manualSeed(4);
    const W = param([8, 8]), x0 = param([16, 8]);
    const run = (ck: boolean): Tensor[] => {
      t.manualSeed(99);
      return gradsOf([W, x0], () => {
        const block = (h: Tensor): Tensor => t.dropout(h.matmul(W).relu(), 0.5, { training: true }).matmul(W);
        const y = ck ? t.checkpoint(block, x0) : block(x0);
        // Draws after the block must not change either: the recomputation leaves the generator as it found it.
        return y.mul(t.randn([16, 8], { dtype })).sum();
      });
    };
    const [plain, ck] = [run(false), run(true)];
    plain.forEach((g, i) => assertClose(ck[i]!, g, tol));
  });

  it('handles several outputs, an input returned as is, and retainGraph', () => {
    t.manualSeed(5);
    const W = param([4, 4]), x0 = param([3, 4]);
    const block = (h: Tensor): Tensor[] => [h.matmul(W).exp(), h, h.mul(W.sum())];
    const lossOf = (outs: Tensor[]): Tensor => outs[0]!.sum().add(outs[1]!.pow(2).sum()).add(outs[2]!.sin().sum());
    const plain = gradsOf([W, x0], () => lossOf(block(x0.mul(1))));
    const ck = gradsOf([W, x0], () => lossOf(t.checkpoint(block, x0.mul(1))));
    plain.forEach((g, i) => assertClose(ck[i]!, g, tol));

    W.grad = undefined;
    const loss = t.checkpoint((h: Tensor) => h.matmul(W).tanh(), x0).sum();
    loss.backward(undefined, { retainGraph: true });
    const once = W.grad!.clone();
    loss.backward();
    assertClose(W.grad!, once.mul(2), tol);
  });

  it('supports gradients of gradients (createGraph records through the recomputation)', () => {
    t.manualSeed(6);
    const x = param([5]);
    const f = (v: Tensor): Tensor => v.sin().mul(v).exp();
    const [g1] = t.gradients(f(x).sum(), [x], undefined, true);
    const [h1] = t.gradients(g1!.sum(), [x]);
    const [g2] = t.gradients(t.checkpoint(f, x).sum(), [x], undefined, true);
    const [h2] = t.gradients(g2!.sum(), [x]);
    assertClose(g2!, g1!, tol);
    assertClose(h2!, h1!, tol);
  });

  it('keeps only the block\'s inputs and output on the tape', () => {
    t.manualSeed(7);
    const W1 = param([64, 256]), W2 = param([256, 64]), x = param([32, 64]);
    const block = (h: Tensor): Tensor => h.matmul(W1).relu().matmul(W2).tanh();
    const plain = tapeBytes(block(x).sum());
    const ck = tapeBytes(t.checkpoint(block, x).sum());
    const bytes = t.itemsize(dtype);
    // The checkpointed tape: x, W1, W2, the block's output and the sum: the plain one adds the
    // 32×256 hidden activations (several of them: matmul, relu, second matmul, tanh).
    assert.equal(ck, (32 * 64 + 64 * 256 + 256 * 64 + 32 * 64 + 1) * bytes);
    assert.ok(plain >= ck + 2 * 32 * 256 * bytes, `plain tape ${plain} bytes, checkpointed ${ck}`);
  });

  it('runs the block once when nothing needs a gradient', () => {
    let calls = 0;
    const x = t.randn([2, 3], { dtype });
    const y = t.checkpoint((h: Tensor) => { calls++; return h.exp(); }, x);
    assert.equal(calls, 1);
    assert.equal(y.requiresGrad, false);
  });

  it('under jit, recomputes in the traced backward: same gradients (dropout too, on every replay), a lower planned peak', () => {
    t.manualSeed(8);
    const Ws = [0, 1, 2, 3].map(() => t.randn([32, 32], { dtype }).mul(0.2).detach().requiresGrad_());
    const layer = (W: Tensor, p: number) => (h: Tensor): Tensor => t.dropout(h.matmul(W).tanh().mul(h.sigmoid()), p);
    const step = (ck: boolean, p = 0.25) => t.jit((x: Tensor) => {
      let h = x;
      for (const W of Ws) h = ck ? t.checkpoint(layer(W, p), h) : layer(W, p)(h);
      return t.gradients(h.pow(2).sum(), Ws);
    });
    const plain = step(false), remat = step(true);
    const x = t.randn([64, 32], { dtype });
    for (let call = 0; call < 3; call++) {
      t.manualSeed(100 + call);
      const a = plain(x);
      t.manualSeed(100 + call);
      const b = remat(x);
      a.forEach((g, i) => assertClose(b[i]!, g, tol));
    }
    const traced = remat.graphs()[0]!.traced;
    assert.ok(traced.nodes.some((n) => n.remat !== undefined), 'the recomputation is tagged in the graph');
    // The compiler keeps the recomputation apart (CSE would otherwise merge it into the forward):
    // the optimized graph computes the same and its planned peak memory is lower (the forward's
    // draws stay alive for the recomputation, so dropout saves less: measured without it).
    const peak = (f: typeof plain): number => t.compiler.memoryPlan(t.compiler.runPipeline(f.graphs()[0]!.traced.clone()).graph).peakLiveBytes;
    const [plain0, remat0] = [step(false, 0), step(true, 0)];
    plain0(x);
    remat0(x);
    assert.ok(peak(remat0) < 0.8 * peak(plain0), `planned peak ${peak(remat0)} bytes with checkpoint, ${peak(plain0)} without`);
    assert.ok(peak(remat) < peak(plain), `with dropout: planned peak ${peak(remat)} bytes with checkpoint, ${peak(plain)} without`);
    const traced0 = remat0.graphs()[0]!.traced;
    const optimized = t.compiler.runPipeline(traced0.clone()).graph;
    t.interpret(traced0, [x]).forEach((g, i) => assertClose(t.interpret(optimized, [x])[i]!, g, tol));
  });

  it('names itself in errors', () => {
    const W = param([2, 2]);
    assert.throws(() => t.checkpoint(() => 3 as unknown as Tensor), /checkpoint: the function must return a tensor/);
    let n = 0;
    const loss = t.checkpoint((_w: Tensor) => (n++ === 0 ? W.exp() : W.exp().reshape([4])), W).sum();
    assert.throws(() => loss.backward(), /checkpoint: the recomputation returned shape \[4\] where the forward returned shape \[2, 2\]/);
    assert.throws(() => t.checkpointSequential([], 0, W), /checkpointSequential: segments must be a positive integer, got 0/);
    // Under jit the recomputation reuses the forward's draws, which must then be the same ones.
    let k = 0;
    const drawsDiffer = t.jit((x: Tensor) => {
      const y = t.checkpoint((h: Tensor) => h.sum().mul(t.rand([k++ === 0 ? 2 : 3], { dtype }).sum()), x);
      return t.gradients(y, [x]);
    });
    assert.throws(() => drawsDiffer(W), /randomUniform: a recomputed checkpoint block drew \[3\] .* where its forward drew \[2\]/);
  });

  it('recomputes under the autocast state of the forward (backward itself runs without autocast)', () => {
    t.manualSeed(13);
    const W1 = t.randn([8, 16]).requiresGrad_(), W2 = t.randn([16, 8]).requiresGrad_(), x0 = t.randn([4, 8]).requiresGrad_();
    const block = (h: Tensor): Tensor => h.matmul(W1).relu().matmul(W2);
    const run = (ck: boolean): Tensor[] => gradsOf([W1, W2, x0], () => t.quant.autocast({ dtype: 'bfloat16' }, () => {
      const y = ck ? t.checkpoint(block, x0) : block(x0);
      assert.equal(y.dtype, 'bfloat16');
      return y.float().pow(2).sum();
    }));
    const [plain, ck] = [run(false), run(true)];
    plain.forEach((g, i) => assert.deepEqual(Array.from(ck[i]!.data()), Array.from(g.data()), `gradient ${i}`));
  });

  it('nests: a checkpointed block inside a checkpointed block gives the plain gradients', () => {
    t.manualSeed(14);
    const W1 = param([6, 6]), W2 = param([6, 6]), x0 = param([4, 6]);
    const inner = (h: Tensor): Tensor => h.matmul(W2).sin();
    const outer = (nest: boolean) => (h: Tensor): Tensor => {
      const a = h.matmul(W1).tanh();
      return (nest ? t.checkpoint(inner, a) : inner(a)).mul(a);
    };
    const plain = gradsOf([W1, W2, x0], () => outer(false)(x0).sum());
    const nested = gradsOf([W1, W2, x0], () => t.checkpoint(outer(true), x0).sum());
    plain.forEach((g, i) => assertClose(nested[i]!, g, tol));
  });

  it('checkpointSequential matches running the layers in sequence', () => {
    t.manualSeed(9);
    const Ws = [0, 1, 2, 3, 4].map(() => param([6, 6]));
    const x0 = param([3, 6]);
    const layers = Ws.map((W) => (h: Tensor) => h.matmul(W).tanh());
    for (const segments of [1, 2, 3, 5, 8]) {
      const plain = gradsOf([...Ws, x0], () => layers.reduce((h, f) => f(h), x0).sum());
      const ck = gradsOf([...Ws, x0], () => t.checkpointSequential(layers, segments, x0).sum());
      plain.forEach((g, i) => assertClose(ck[i]!, g, tol));
    }
  });
});

forEachBackend('GptConfig.checkpoint', (backend) => {
  it('trains a GPT with dropout to the same gradients, keeping a fraction of the activations', () => {
    const config = { vocabSize: 11, blockSize: 8, embedDim: 16, numHeads: 2, numLayers: 3, dropout: 0.2 };
    const dtype = runsFloat64Checks(backend) ? 'float64' as const : 'float32' as const;
    const idx = t.randint(0, 11, [3, 8]), target = t.randint(0, 11, [3 * 8]);
    const results = [false, true].map((checkpoint) => {
      t.manualSeed(11);
      const gpt = new t.nn.GPT({ ...config, checkpoint }, { dtype });
      t.manualSeed(12);
      const loss = t.crossEntropy(gpt.call(idx).reshape([3 * 8, 11]), target);
      const tape = tapeBytes(loss);
      loss.backward();
      return { loss: loss.item(), tape, grads: gpt.parameters().map((p) => p.grad!) };
    });
    const [plain, ck] = results as [typeof results[0], typeof results[0]];
    assert.equal(ck.loss, plain.loss);
    plain.grads.forEach((g, i) => assertClose(ck.grads[i]!, g, dtype === 'float64' ? { atol: 1e-12, rtol: 1e-10 } : { atol: 2e-5, rtol: 1e-4 }));
    assert.ok(ck.tape < plain.tape / 2, `checkpointed tape ${ck.tape} bytes against ${plain.tape}`);
  });
});

forEachBackend('GptConfig.checkpoint under jit', () => {
  it('a jitted GPT training step rematerializes its blocks: the plain step\'s gradients (with dropout), half its planned peak', () => {
    const cfg = { vocabSize: 65, blockSize: 16, embedDim: 32, numHeads: 4, numLayers: 3, dropout: 0.1 };
    const x = t.randint(0, 65, [4, 16]), y = t.randint(0, 65, [4 * 16]);
    const make = (checkpoint: boolean) => {
      t.manualSeed(3);
      const gpt = new t.nn.GPT({ ...cfg, checkpoint });
      return t.jit((ids: Tensor) => t.gradients(t.crossEntropy(gpt.call(ids).reshape([4 * 16, 65]), y), gpt.parameters()));
    };
    const plain = make(false), remat = make(true);
    for (let call = 0; call < 2; call++) {
      t.manualSeed(50 + call);
      const a = plain(x);
      t.manualSeed(50 + call);
      const b = remat(x);
      a.forEach((g, i) => assertClose(b[i]!, g, { atol: 1e-6, rtol: 1e-5 }));
    }
    const peak = (f: typeof plain): number => t.compiler.memoryPlan(t.compiler.runPipeline(f.graphs()[0]!.traced.clone()).graph).peakLiveBytes;
    assert.ok(peak(remat) < 0.7 * peak(plain), `planned peak ${peak(remat)} bytes with checkpoint, ${peak(plain)} without`);
  });
});

forEachBackend('checkpoint gradcheck', () => {
  it('agrees with finite differences', () => {
    t.manualSeed(10);
    const W = t.randn([3, 4], { dtype: 'float64' });
    const report = t.gradcheck((...xs: Tensor[]) => t.checkpoint((h: Tensor) => h.matmul(xs[1]!).sigmoid().mul(h.sum()), xs[0]!), [t.randn([2, 3], { dtype: 'float64' }), W]);
    assert.equal(report.ok, true, JSON.stringify(report.worst));
  });
}, { float64Only: true });
