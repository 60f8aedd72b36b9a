// backward() and the optimizers free the gradients they alone made and saw at once, without the
// garbage collector (autodiff/cotangent-owner.ts, Tensor._replaceGrad). Every check here runs
// synchronously, so no FinalizationRegistry callback can have freed anything: a byte that is gone
// was disposed. And nothing the caller can still reach may be disposed.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { heapPressureHandler } from '../../src/backend/wasm/heap-pressure.js';
import { backwardSplit } from '../../src/autodiff/split-backward.js';

const live = (): number => t.memoryStats().liveBytes;
const bytes = (x: Tensor): number => x.size * t.itemsize(x.dtype);

forEachBackend('backward frees its own gradients', (backend) => {
  it('keeps only the leaves\' gradients: cotangents and vjp temporaries are disposed during backward', () => {
    t.manualSeed(1);
    const W = t.randn([64, 64]).requiresGrad_();
    const x = t.randn([32, 64]).requiresGrad_();
    // softmax's, tanh's and matmul's vjps make temporaries; add passes one cotangent to two inputs.
    const h = t.tanh(x.matmul(W));
    const loss = t.softmax(h.add(h), -1).mul(h).sum();
    const before = live();
    loss.backward();
    assert.equal(live() - before, bytes(W.grad!) + bytes(x.grad!), `${backend}: only W.grad and x.grad stay`);
  });

  it('gives the same gradients as before: a cotangent shared by two inputs, a leaf used twice, retained grads', () => {
    const a = t.tensor([1, 2, 3]).requiresGrad_();
    const b = t.tensor([4, 5, 6]).requiresGrad_();
    const s = a.add(b);           // add's vjp hands the same cotangent object to a and b
    s.retainGrad();
    const y = s.mul(a).sum();     // a is reached along two paths
    y.backward();
    assert.deepEqual(Array.from(a.grad!.data()), [1 + 5, 2 + 7, 3 + 9]);
    assert.deepEqual(Array.from(b.grad!.data()), [1, 2, 3]);
    assert.deepEqual(Array.from(s.grad!.data()), [1, 2, 3]);
  });

  it('leaves a hook\'s argument and result alive, and what torch.autograd.grad-style calls return', () => {
    const x = t.tensor([1, 2, 3]).requiresGrad_();
    const seen: Tensor[] = [];
    const y = x.mul(x);
    y.registerHook((g) => { seen.push(g); const r = g.mul(2); seen.push(r); return r; });
    y.sum().backward();
    assert.deepEqual(seen.map((g) => Array.from(g.data())), [[1, 1, 1], [2, 2, 2]]);
    assert.deepEqual(Array.from(x.grad!.data()), [4, 8, 12]);
    const z = t.tensor([1, 2]).requiresGrad_();
    const [gz] = t.gradientsOf(z.mul(z).mul(z).sum(), [z]);
    assert.deepEqual(Array.from(gz!.data()), [3, 12]);
  });

  it('never disposes a gradient the caller passed in', () => {
    const x = t.tensor([1, 2]).requiresGrad_();
    const seed = t.tensor([1, 1]);
    x.mul(3).backward(seed);
    assert.deepEqual(Array.from(seed.data()), [1, 1]);
    assert.deepEqual(Array.from(x.grad!.data()), [3, 3]);
  });

  it('replaces an unread gradient when it accumulates, and keeps one the caller read valid and unchanged', () => {
    const w = t.tensor([1, 2]).requiresGrad_();
    w.mul(w).sum().backward();
    const first = w.grad!;                      // read: it must stay as it was
    w.mul(3).sum().backward();                  // accumulates into a new object
    assert.deepEqual(Array.from(first.data()), [2, 4]);
    assert.deepEqual(Array.from(w.grad!.data()), [5, 7]);
    // An unread gradient replaced by accumulation is disposed: the bytes stay level.
    const v = t.randn([256]).requiresGrad_();
    v.mul(2).sum().backward();
    const loss = v.mul(2).sum();
    const level = live();
    loss.backward();
    assert.equal(live(), level, `${backend}: the replaced gradient was disposed`);
    assert.deepEqual(Array.from(v.grad!.data()).slice(0, 2), [4, 4]);
  });

  it('zeroGrad disposes gradients only backward and step saw, and keeps the ones the caller read', () => {
    t.manualSeed(2);
    const lin = new t.nn.Linear(32, 16);
    const opt = new t.optim.SGD(lin.parameters(), { lr: 0.1 });
    const x = t.randn([8, 32]);
    lin.forward(x).square().sum().backward();
    opt.step();
    const beforeZero = live();
    opt.zeroGrad();
    assert.equal(beforeZero - live(), (32 * 16 + 16) * 4, `${backend}: both unread gradients were disposed`);
    lin.forward(x).square().sum().backward();
    const held = lin.weight.grad!;
    const copy = Array.from(held.data());
    opt.step();
    lin.zeroGrad();
    assert.equal(lin.weight.grad, undefined);
    assert.deepEqual(Array.from(held.data()), copy, 'a gradient the caller read stays valid after zeroGrad');
  });

  it('clipGradNorm and clipGradValue dispose the unread gradients they replace', () => {
    const p = t.randn([128]).requiresGrad_();
    p.mul(100).sum().backward();
    // What the clipping ops leave behind besides their result (their own temporaries: scalars, clamp's two halves).
    const garbageOf = (op: (g: Tensor) => Tensor): number => {
      const g = t.randn([128]);
      const before = live();
      op(g);
      return live() - before - 128 * 4;
    };
    const mulGarbage = garbageOf((g) => g.mul(0.5));
    const clampGarbage = garbageOf((g) => t.clamp(g, -0.001, 0.001));
    let level = live();
    t.optim.clipGradNorm([p], 1);
    assert.equal(live() - level, mulGarbage, `${backend}: the gradient clipGradNorm replaced was disposed`);
    level = live();
    t.optim.clipGradValue([p], 0.001);
    assert.equal(live() - level, clampGarbage, `${backend}: the gradient clipGradValue replaced was disposed`);
    assert.ok(Math.abs(p.grad!.data()[0]! - 0.001) < 1e-9);
  });

  it('gradients replaced inside a memory scope (clipping) outlive the scope, as backward\'s do', () => {
    const p = t.randn([16]).requiresGrad_();
    t.scope(() => {
      p.mul(100).sum().backward();
      t.optim.clipGradNorm([p], 1);
      t.optim.clipGradValue([p], 0.01);
    });
    assert.ok(p.grad!.data().every((v) => Math.abs(v) <= 0.01));
  });

  it('backwardSplit (zero-bubble B then W) keeps only the input gradient it returns and the parameters\' gradients', () => {
    t.manualSeed(7);
    // A pipeline stage: its received activation x, two Linears with a bias (add hands one
    // cotangent to both sides: B keeps the bias's half for W), tanh and softmax temporaries.
    const fc1 = new t.nn.Linear(64, 96), fc2 = new t.nn.Linear(96, 64);
    const x = t.randn([32, 64]).requiresGrad_();
    const seed = t.randn([32, 64]);
    const pass = (): { gx: Tensor | undefined; weights: () => void } => {
      const out = t.softmax(fc2.forward(t.tanh(fc1.forward(x))), -1);
      const split = backwardSplit(out, [x], seed);
      return { gx: split.inputGrads[0], weights: split.weights };
    };
    const first = pass(); // the parameters' .grad objects exist from here on
    first.weights();
    const reference = Array.from(fc1.weight.grad!.data());
    fc1.zeroGrad();
    fc2.zeroGrad();
    const out = t.softmax(fc2.forward(t.tanh(fc1.forward(x))), -1);
    const before = live();
    const split = backwardSplit(out, [x], seed);
    split.weights();
    const grads = [...fc1.parameters(), ...fc2.parameters()].reduce((n, p) => n + bytes(p), 0);
    assert.equal(live() - before, bytes(x) + grads, `${backend}: after W, only x's gradient and the parameters' gradients`);
    assert.deepEqual(Array.from(fc1.weight.grad!.data()), reference, 'the same gradient as the first pass');
    assert.deepEqual(Array.from(split.inputGrads[0]!.data()), Array.from(first.gx!.data()), 'the returned input gradient is alive and unchanged');
  });

  it('a synchronous training loop grows by its forward activations only, not by gradients', () => {
    t.manualSeed(5);
    const model = new t.nn.Sequential(new t.nn.Linear(64, 128), new t.nn.ReLU(), new t.nn.Linear(128, 10));
    const opt = new t.optim.Adam(model.parameters(), { lr: 1e-3 });
    const x = t.randn([32, 64]);
    const y = t.randint(0, 10, [32]);
    const step = (): void => {
      t.crossEntropy(model.forward(x), y).backward();
      opt.step();
      opt.zeroGrad();
    };
    step(); // optimizer state
    const start = live();
    for (let i = 0; i < 5; i++) step();
    const perStep = (live() - start) / 5;
    // What the caller dropped: matmul out, add out, relu out (32x128 each), the logits' matmul
    // and add (32x10 each), log-probabilities and the loss's small tensors. The gradients (34 KB)
    // and the backward temporaries are not in it.
    const activations = (3 * 32 * 128 + 3 * 32 * 10) * 4;
    assert.ok(perStep <= activations + 2048, `${backend}: ${perStep} bytes per step, activations ${activations}`);
    assert.ok(perStep >= 3 * 32 * 128 * 4, `${backend}: the dropped activations are still counted (${perStep})`);
  });

  it('with a GradScaler and master weights, a synchronous loop still keeps no gradients', () => {
    t.manualSeed(6);
    const model = new t.nn.Sequential(new t.nn.Linear(64, 128), new t.nn.ReLU(), new t.nn.Linear(128, 10));
    const opt = new t.quant.MasterWeightOptimizer(model.parameters(), (ps) => new t.optim.SGD(ps, { lr: 1e-2 }));
    const scaler = new t.quant.GradScaler({ initScale: 1024 });
    const x = t.randn([32, 64]);
    const y = t.randint(0, 10, [32]);
    const step = (): void => {
      scaler.scale(t.crossEntropy(model.forward(x), y)).backward();
      scaler.step(opt);
      scaler.update();
      opt.zeroGrad();
    };
    step();
    const start = live();
    for (let i = 0; i < 5; i++) step();
    const perStep = (live() - start) / 5;
    // The forward's tensors and the scaler's small ones (the scaled loss, the unscale check); not the 34 KB of gradients.
    const activations = (3 * 32 * 128 + 3 * 32 * 10) * 4;
    assert.ok(perStep <= activations + 4096, `${backend}: ${perStep} bytes per step, activations ${activations}`);
  });
});

it('the wasm heap pressure handler collects on every alert and warns once when the heap grows without an event-loop turn', () => {
  let collections = 0;
  const warnings: string[] = [];
  const pendingTurns: (() => void)[] = [];
  const onPressure = heapPressureHandler({
    collect: () => { collections++; },
    warn: (m) => warnings.push(m),
    warnBytes: 1000,
    afterTurn: (fn) => pendingTurns.push(fn),
  });
  onPressure({ bytesInUse: 100 });
  onPressure({ bytesInUse: 900 });     // no turn yet, but below warnBytes
  assert.equal(warnings.length, 0);
  pendingTurns.shift()!();             // the event loop turned: growth starts over
  onPressure({ bytesInUse: 1200 });    // first alert after the turn
  assert.equal(warnings.length, 0, 'one alert after a turn is not growth without a turn');
  onPressure({ bytesInUse: 1500 });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /without the event loop turning/);
  assert.match(warnings[0]!, /t\.scope/);
  onPressure({ bytesInUse: 3000 });
  assert.equal(warnings.length, 1, 'warned once');
  assert.equal(collections, 5);
});
