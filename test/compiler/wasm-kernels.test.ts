// The compiler's fused ops on the wasm backend (src/compiler/wasm-kernels.ts): generated SIMD
// modules for fusedElementwise nodes (transcendentals as the wasm backend computes them), the
// SGEMM's bias/ReLU epilogue for matmulEpilogue nodes, every default pass on wasm graphs, and a
// jitted training step on wasm against eager code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit, trace, interpret, type Graph } from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { setGraphCompiler, type GraphCompiler } from '../../src/graph/jit.js';
import { wasmBackend } from '../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../src/backend/wasm/node.js';
import { MAX_ULP, REFERENCES, ulp32, type Transcendental } from '../helpers/transcendental-bounds.js';
import { SGD, Adam, type Optimizer, type BaseOptions } from '../../src/optim/index.js';
import type { KernelSpec } from '../../src/compiler/codegen/kernel-ir.js';
import { modelGraphs, assertClose } from './helpers.js';
import { gptBlock, gptParams, mlp, mlpParams, mse, type GPT, type MLP } from '../graph/models.js';
import { pinBackend } from '../helpers/backends.js';
import { trainStepBody } from '../helpers/train-step.js';

// wasm only: everything here is about running fused graphs on the wasm backend's heap.
pinBackend('wasm');

const bits = (x: t.Tensor): number[] => Array.from(x.data());
const count = (g: Graph, op: string): number => g.nodes.filter((n) => n.op === op).length;

// The wasm backend's transcendentals and their bounds: test/helpers/transcendental-bounds.ts.

test('the wasm emitter\'s transcendentals: opt-in, the wasm backend\'s own bits, and within its ulp bounds', () => {
  // An even sweep over float32 bit patterns (both signs, denormals, huge values, NaN, inf); 4099
  // values, so rows of 4099 run the f32x4 loop and a 3-element scalar tail.
  const n = 4099;
  const raw = new Uint32Array(n);
  for (let i = 0; i < n; i++) raw[i] = Math.floor(i * (2 ** 32 / n));
  const xs = new Float32Array(raw.buffer);
  const x = t.tensor(xs, { dtype: 'float32', backend: 'wasm' });
  const heap = wasmBackend.heap;
  for (const op of Object.keys(REFERENCES) as Transcendental[]) {
    const spec: KernelSpec = {
      shape: [n], inputs: [{ dtype: 'float32', strides: [1], offset: x.offset }], outDtype: 'float32',
      body: [{ kind: 'load', input: 0 }, { kind: 'op', op, args: [0], dtype: 'float32' }],
    };
    assert.ok(!C.canEmitWasm(spec), `${op}: not bit-identical to the JS kernel, so refused by default`);
    assert.ok(C.canEmitWasm(spec, { transcendentals: true }));
    assert.throws(() => C.emitWasmKernel(spec, { module: 'env', name: 'memory', minPages: 1, shared: heap.shared }), new RegExp(`${op}:float32`));
    const bytes = C.emitWasmKernel(spec, { module: 'env', name: 'memory', minPages: 1, maxPages: heap.maxPages, shared: heap.shared }, { transcendentals: true });
    const kernel = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: heap.memory } }).exports.kernel as (...a: number[]) => void;
    const out = t.zeros([n], { backend: 'wasm' });
    kernel(wasmBackend.addressOf(out.storage), wasmBackend.addressOf(x.storage));
    const eager = (t[op] as (a: t.Tensor) => t.Tensor)(x);
    assert.deepEqual(bits(out), bits(eager), `${op}: the fused kernel gives the wasm backend's kernel's bits`);
    const got = out.data();
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const r = REFERENCES[op](xs[i]!), rounded = Math.fround(r);
      if (Number.isNaN(r) || !Number.isFinite(rounded) || r === 0) {
        assert.ok(Object.is(got[i], rounded), `${op}(${xs[i]}) = ${got[i]}, expected ${rounded}`);
        continue;
      }
      worst = Math.max(worst, Math.abs(got[i]! - r) / ulp32(r));
    }
    assert.ok(worst <= MAX_ULP[op], `${op}: ${worst} ulp (bound ${MAX_ULP[op]})`);
  }
});

/** `fn` traced on wasm inputs, optimized by `passes`, compiled with and without wasm kernels. */
function compiled(fn: (...xs: t.Tensor[]) => t.Tensor | t.Tensor[], inputs: t.Tensor[], passes: C.Pass[] = C.defaultPasses()) {
  const { graph } = trace(fn, inputs);
  return { graph, withKernels: C.compile(graph, { passes, planned: false }), viaBind: C.compile(graph, { passes, planned: false, wasmKernels: false }) };
}

test('a fused elementwise node runs as one wasm module with the eager wasm results, bit for bit', () => {
  // Broadcast ([1, 7] expanded), transposed ([7, 5] permuted) and contiguous inputs; 7 columns
  // leave a scalar tail after the f32x4 loop; exp/tanh/sigmoid are wasm-backend transcendentals.
  const x = t.randn([5, 7]), y = t.randn([1, 7]), z = t.randn([7, 5]);
  const fn = (a: t.Tensor, b: t.Tensor, c: t.Tensor): t.Tensor =>
    t.add(t.mul(t.exp(t.sub(a, b)), t.tanh(t.transpose(c, 0, 1))), t.sigmoid(t.mul(a, 0.5)));
  const { withKernels, viaBind } = compiled(fn, [x, y, z]);
  assert.equal(count(withKernels.graph, 'fusedElementwise'), 1, withKernels.graph.toString());
  const eager = fn(x, y, z);
  const got = withKernels.run([x, y, z])[0]!;
  assert.equal(got.backend, 'wasm');
  assert.deepEqual(bits(got), bits(eager));
  assert.deepEqual(withKernels.wasmKernels!.stats, { fusedKernels: 1, matmulEpilogues: 0, matmulThenKernel: 0, heapWrites: 0, fallbacks: 0 });
  assert.deepEqual(bits(viaBind.run([x, y, z])[0]!), bits(eager), 'the bind path agrees');
  // Against the cpu reference: the transcendentals are within a few ulp (exact ops are exact).
  const onCpu = (a: t.Tensor): t.Tensor => t.tensor(a.data(), { dtype: 'float32', shape: [...a.shape], backend: 'cpu' });
  const cpu = fn(onCpu(x), onCpu(y), onCpu(z));
  assertClose(got, cpu, 1e-6, 'vs the cpu reference');
  // A second call with other values reuses the module.
  const compiledBefore = C.wasmKernelCacheStats().compiled;
  const x2 = t.randn([5, 7]);
  assert.deepEqual(bits(withKernels.run([x2, y, z])[0]!), bits(fn(x2, y, z)));
  assert.equal(C.wasmKernelCacheStats().compiled, compiledBefore);
});

test('large fused kernels split over two threads give the one-thread bits', () => {
  const previous = wasmBackend.pool.threads;
  // One merged row of 70001 elements (blocks of a single row), rows with a broadcast and a
  // transposed input, and a transcendental body above its lower threshold (8192 elements).
  const cases: [string, (...xs: t.Tensor[]) => t.Tensor, number[][]][] = [
    ['one row', (a, b) => t.add(t.mul(a, b), 1), [[70001], [70001]]],
    ['rows, broadcast + transposed', (a, b, c) => t.sub(t.mul(a, b), t.transpose(c, 0, 1)), [[300, 257], [1, 257], [257, 300]]],
    ['transcendental', (a) => t.tanh(t.mul(t.exp(a), 0.5)), [[90, 101]]],
  ];
  try {
    for (const [name, fn, shapes] of cases) {
      enableWasmThreads(1);
      const xs = shapes.map((sh) => t.randn(sh));
      const { withKernels } = compiled(fn, xs);
      const one = bits(withKernels.run(xs)[0]!);
      assert.equal(enableWasmThreads(2), 2);
      const pool = wasmBackend.pool;
      const run = pool.run;
      let splits = 0;
      pool.run = function (this: typeof pool, ...a: Parameters<typeof run>) { if (a[2] > 1) splits++; return run.apply(this, a); };
      let two: number[];
      try {
        two = bits(withKernels.run(xs)[0]!);
      } finally {
        pool.run = run;
      }
      assert.equal(splits, 1, `${name}: the kernel ran as one job of several units`);
      assert.deepEqual(two, one, `${name}: 2 threads vs 1`);
      assert.deepEqual(two, bits(fn(...xs)), `${name}: vs eager`);
    }
  } finally {
    enableWasmThreads(previous);
  }
});

test('a fused body ending in a reduction: the body as one kernel, then the backend\'s reduction', () => {
  const x = t.randn([6, 10]), m = t.randn([6, 1]);
  const fn = (a: t.Tensor, b: t.Tensor): t.Tensor => t.sum(t.exp(t.sub(a, b)), -1, true);
  const { withKernels } = compiled(fn, [x, m]);
  assert.equal(count(withKernels.graph, 'fusedElementwise'), 1);
  assert.deepEqual(bits(withKernels.run([x, m])[0]!), bits(fn(x, m)));
  assert.equal(withKernels.wasmKernels!.stats.fusedKernels, 1);
});

test('comparisons, isnan and logical ops as bool intermediates, and where, run in one wasm module, bit for bit', () => {
  // NaN, ±Infinity, ±0 and ties between a and b; 5 columns leave a scalar tail; b broadcasts.
  const special = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 2.5, 0.75, -3];
  const x = t.tensor(Array.from({ length: 20 }, (_, i) => special[i % special.length]! * (i < 10 ? 1 : 0.5)), { shape: [4, 5] });
  const y = t.tensor([[1], [0], [NaN], [-Infinity]]);
  const fn = (a: t.Tensor, b: t.Tensor): t.Tensor => {
    const pick = t.logicalOr(t.isnan(a), t.logicalAnd(t.gt(a, b), t.logicalNot(t.eq(a, 0))));
    const other = t.logicalAnd(t.logicalOr(t.lt(a, b), t.ge(a, 2)), t.logicalOr(t.le(a, -1), t.ne(a, b)));
    return t.where(pick, t.sub(a, b), t.where(other, t.mul(a, 2), t.neg(a)));
  };
  const { withKernels, viaBind } = compiled(fn, [x, y]);
  assert.equal(count(withKernels.graph, 'fusedElementwise'), 1, withKernels.graph.toString());
  const eager = fn(x, y);
  assert.deepEqual(bits(withKernels.run([x, y])[0]!), bits(eager));
  assert.deepEqual(withKernels.wasmKernels!.stats, { fusedKernels: 1, matmulEpilogues: 0, matmulThenKernel: 0, heapWrites: 0, fallbacks: 0 });
  assert.deepEqual(bits(viaBind.run([x, y])[0]!), bits(eager), 'the bind path agrees');
  // logsumexp's guard against an infinite max (crossEntropy's first kernel): where(isnan(m − m), 0, m).
  const m = t.tensor([[3], [Infinity], [-Infinity], [NaN]]);
  const stable = (a: t.Tensor, b: t.Tensor): t.Tensor => t.sub(a, t.where(t.isnan(t.sub(b, b)), t.zerosLike(b), b));
  const cs = compiled(stable, [x, m]).withKernels;
  assert.deepEqual(bits(cs.run([x, m])[0]!), bits(stable(x, m)));
  assert.equal(cs.wasmKernels!.stats.fallbacks, 0);
  // Bools stay intermediates of the right kind: not an output, not an f32 op's argument, and a
  // logical op takes bools.
  const spec = (body: KernelSpec['body']): KernelSpec => ({ shape: [4], inputs: [{ dtype: 'float32', strides: [1], offset: 0 }], outDtype: 'float32', body });
  const load = { kind: 'load', input: 0 } as const;
  assert.ok(C.canEmitWasm(spec([load, { kind: 'op', op: 'isnan', args: [0], dtype: 'bool' }, { kind: 'op', op: 'where', args: [1, 0, 0], dtype: 'float32' }])));
  assert.ok(!C.canEmitWasm(spec([load, { kind: 'op', op: 'gt', args: [0, 0], dtype: 'bool' }])), 'a bool result');
  assert.ok(!C.canEmitWasm(spec([load, { kind: 'op', op: 'gt', args: [0, 0], dtype: 'bool' }, { kind: 'op', op: 'add', args: [1, 0], dtype: 'float32' }])), 'a bool added');
  assert.ok(!C.canEmitWasm(spec([load, { kind: 'op', op: 'logicalNot', args: [0], dtype: 'bool' }, { kind: 'op', op: 'where', args: [1, 0, 0], dtype: 'float32' }])), 'logicalNot of a float');
  assert.ok(!C.canEmitWasm(spec([load, { kind: 'op', op: 'where', args: [0, 0, 0], dtype: 'float32' }])), 'where on a float condition');
});

test('bodies the emitter lacks (pow, bool inputs) and int32 tensors run through bind', () => {
  const x = t.randn([4, 5]);
  const mask = t.gt(t.randn([4, 5]), 0);
  const fn = (a: t.Tensor, k: t.Tensor): t.Tensor => t.where(k, t.pow(a, 2), t.neg(a));
  const { withKernels } = compiled(fn, [x, mask]);
  assert.deepEqual(bits(withKernels.run([x, mask])[0]!), bits(fn(x, mask)));
  assert.equal(withKernels.wasmKernels!.stats.fusedKernels, 0);
  assert.ok(withKernels.wasmKernels!.stats.fallbacks > 0);
  // Run through bind, the body's intermediates are freed at their last use, not left to the
  // garbage collector: a run leaves only its output live, and its peak stays a few buffers.
  const big = t.randn([64, 256]);
  const body = (a: t.Tensor): t.Tensor => t.where(t.gt(a, 0), t.add(t.sqrt(t.abs(t.pow(a, 3))), 1), t.mul(t.neg(t.exp(a)), 2));
  const cb = compiled(body, [big]).withKernels;
  assert.equal(count(cb.graph, 'fusedElementwise'), 1, cb.graph.toString());
  cb.run([big])[0]!.dispose();
  const live = t.memoryStats().liveBytes;
  t.resetPeakMemory();
  const out = cb.run([big])[0]!;
  const outBytes = 64 * 256 * 4;
  assert.equal(t.memoryStats().liveBytes - live, outBytes, 'only the output stays live');
  assert.ok(t.memoryStats().peakBytes - live <= 4 * outBytes, `peak ${t.memoryStats().peakBytes - live} bytes above the start (one buffer is ${outBytes})`);
  assert.deepEqual(bits(out), bits(body(big)));
  const k = t.tensor([[1, 2, 3]], { dtype: 'int32' });
  const g = (a: t.Tensor): t.Tensor => t.mul(t.add(a, 1), 3);
  const ci = compiled(g, [k]).withKernels;
  assert.deepEqual(bits(ci.run([k])[0]!), [6, 9, 12]);
  assert.equal(ci.wasmKernels!.stats.fusedKernels, 0);
});

test('matmul + per-column bias + ReLU runs as one SGEMM call with its epilogue, equal to eager', () => {
  // [B, T, d] @ [d, n]: matmul folds the batch into rows (a reshape the epilogue reads through).
  const w = t.randn([9, 6]), b = t.randn([6]);
  for (const x of [t.randn([7, 9]), t.randn([2, 5, 9])]) {
    const fn = (a: t.Tensor): t.Tensor => t.relu(t.add(t.matmul(a, w), b));
    const { withKernels } = compiled(fn, [x]);
    assert.equal(count(withKernels.graph, 'matmulEpilogue'), 1, withKernels.graph.toString());
    let plainMatmuls = 0;
    const kernels = wasmBackend.kernelCalls.get('matmul')?.wasm ?? 0;
    const got = withKernels.run([x])[0]!;
    plainMatmuls = (wasmBackend.kernelCalls.get('matmul')?.wasm ?? 0) - kernels;
    assert.equal(plainMatmuls, 0, 'no separate matmul kernel ran');
    assert.deepEqual(bits(got), bits(fn(x)), `x ${x.shape}`);
    assert.equal(withKernels.wasmKernels!.stats.matmulEpilogues, 1);
  }
  // Bias only (bias + product order), and ReLU only.
  const x = t.randn([7, 9]);
  for (const fn of [(a: t.Tensor) => t.add(b, t.matmul(a, w)), (a: t.Tensor) => t.relu(t.matmul(a, w))]) {
    const { withKernels } = compiled(fn, [x]);
    assert.deepEqual(bits(withKernels.run([x])[0]!), bits(fn(x)));
    assert.equal(withKernels.wasmKernels!.stats.matmulEpilogues, 1, withKernels.graph.toString());
  }
});

test('other epilogues: the SGEMM, then the epilogue\'s fused kernel; a bias that is not per column is not the SGEMM\'s', () => {
  const w = t.randn([9, 6]), x = t.randn([7, 9]), full = t.randn([7, 6]), b = t.randn([6]);
  const cases: ((a: t.Tensor) => t.Tensor)[] = [
    (a) => t.mul(t.matmul(a, w), 0.125), // attention's scale
    (a) => t.add(t.matmul(a, w), full), // a residual: not a per-column bias
    (a) => t.add(t.add(t.matmul(a, w), b), full),
    (a) => t.tanh(t.add(t.matmul(a, w), b)),
  ];
  for (const fn of cases) {
    const { withKernels } = compiled(fn, [x]);
    assert.equal(count(withKernels.graph, 'matmulEpilogue'), 1, withKernels.graph.toString());
    assert.deepEqual(bits(withKernels.run([x])[0]!), bits(fn(x)), withKernels.graph.toString());
    assert.deepEqual(withKernels.wasmKernels!.stats, { fusedKernels: 0, matmulEpilogues: 0, matmulThenKernel: 1, heapWrites: 0, fallbacks: 0 });
  }
});

test('every default pass, and the whole pipeline with wasm kernels, keeps wasm models\' outputs (MLP, CNN+BN, GPT, LSTM, training graphs)', () => {
  const models = modelGraphs();
  for (const m of models) {
    const ins = m.inputs();
    assert.equal(ins[0]!.backend, 'wasm');
    const ref = interpret(m.graph, ins, { applyWrites: false });
    const check = (name: string, passes: C.Pass[]): C.WasmKernelStats => {
      const c = C.compile(m.graph, { passes, planned: false });
      const got = interpret(c.graph, ins, { applyWrites: false, execute: c.wasmKernels!.execute });
      ref.forEach((r, k) => assertClose(got[k]!, r, 1e-5, `${name} on ${m.name}, output ${k}`));
      return c.wasmKernels!.stats;
    };
    for (const p of [C.simplify, C.constantFold, C.cse, C.dce, C.mergeMatmuls, C.layout, C.fuseElementwise]) check(p.name, [p]);
    check('matmul-epilogue', [C.fuseElementwise, C.matmulEpilogue]);
    const stats = check('pipeline', C.defaultPasses());
    assert.ok(stats.fusedKernels + stats.matmulEpilogues + stats.matmulThenKernel > 0, `${m.name}: fused kernels ran (${JSON.stringify(stats)})`);
  }
});

function cloneParams<T extends object>(p: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) out[k] = v instanceof t.Tensor ? t.clone(v).detach().requiresGrad_(v.requiresGrad) : v;
  return out as T;
}
const tensorsOf = (p: object): t.Tensor[] => Object.values(p).filter((v): v is t.Tensor => v instanceof t.Tensor);

/** The losses of `steps` training steps (forward, backward, optimizer.step()), eagerly or jitted. */
function losses(p: object, opt: Optimizer<BaseOptions>, loss: (x: t.Tensor, y: t.Tensor) => t.Tensor, x: t.Tensor, y: t.Tensor, jitted: boolean, steps: number) {
  const body = trainStepBody(opt, loss);
  const step = jitted ? jit(body) : body;
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(step(x, y).item());
  void p;
  return { losses: out, step };
}

test('a jitted training step on wasm (MLP + Adam, GPT block + SGD) equals eager; its fused kernels run', () => {
  let last: ReturnType<typeof C.compile> | undefined;
  const capture: GraphCompiler = { compile: (g, o) => (last = C.jitGraphCompiler.compile(g, o) as ReturnType<typeof C.compile>) };
  // What jit on wasm did before fusion: the portable passes, interpreted op by op.
  const unfused: GraphCompiler = { compile: (g, o) => C.compile(g, { reuseOutputs: o.reuseOutputs, passes: C.portablePasses(), planned: false, wasmKernels: false }) };
  const cases = [
    { name: 'mlp', seed: 3, params: () => mlpParams(6, 12, 3), loss: (p: object) => (a: t.Tensor, b: t.Tensor) => mse(mlp(p as MLP, a), b),
      data: () => [t.randn([8, 6]), t.randn([8, 3])], opt: (ps: t.Tensor[]) => new Adam(ps, { lr: 0.01 }) as unknown as Optimizer<BaseOptions> },
    { name: 'gpt', seed: 4, params: () => gptParams(8, 2), loss: (p: object) => (a: t.Tensor, b: t.Tensor) => mse(gptBlock(p as GPT, a), b),
      data: () => [t.randn([2, 4, 8]), t.randn([2, 4, 8])], opt: (ps: t.Tensor[]) => new SGD(ps, { lr: 0.05, momentum: 0.9 }) as unknown as Optimizer<BaseOptions> },
  ];
  try {
    for (const c of cases) {
      t.manualSeed(c.seed);
      const pe = c.params(), pj = cloneParams(pe), pu = cloneParams(pe);
      const [x, y] = c.data() as [t.Tensor, t.Tensor];
      const eager = losses(pe, c.opt(tensorsOf(pe)), c.loss(pe), x, y, false, 6).losses;
      setGraphCompiler(capture);
      const fused = losses(pj, c.opt(tensorsOf(pj)), c.loss(pj), x, y, true, 6);
      setGraphCompiler(unfused);
      const before = losses(pu, c.opt(tensorsOf(pu)), c.loss(pu), x, y, true, 6).losses;
      // The traced optimizer writes its update with ops where the eager step() runs the backend's
      // fused update kernel: a last-bit difference per step is possible (observed up to 2.4e-7).
      eager.forEach((l, i) => assert.ok(Math.abs(fused.losses[i]! - l) <= 1e-6 * Math.max(1, Math.abs(l)), `${c.name} step ${i}: eager ${l}, jit ${fused.losses[i]}`));
      // Against the same graph unfused, the fused kernels change no bit.
      assert.deepEqual(fused.losses, before, `${c.name}: fused and unfused jit`);
      assert.ok(fused.losses[5]! < fused.losses[0]!, 'the loss goes down');
      const stats = last!.wasmKernels!.stats;
      assert.ok(stats.fusedKernels >= 5 * 3 && stats.matmulEpilogues + stats.matmulThenKernel >= 5, `${c.name}: ${JSON.stringify(stats)}`);
      // The updates were written inside the heap (5 replays, every parameter at least), and the
      // parameters hold what the eager steps computed.
      assert.ok(stats.heapWrites >= 5 * tensorsOf(pj).length, `${c.name}: ${JSON.stringify(stats)}`);
      tensorsOf(pj).forEach((p, k) => assertClose(p, tensorsOf(pe)[k]!, 1e-5, `${c.name} parameter ${k}`));
      tensorsOf(pj).forEach((p, k) => assert.deepEqual(bits(p), bits(tensorsOf(pu)[k]!), `${c.name} parameter ${k}: fused vs unfused jit`));
      assert.equal((fused.step as ReturnType<typeof jit>).stats().traces, 1);
    }
  } finally {
    setGraphCompiler(C.jitGraphCompiler);
  }
});

test('random draws under jit on wasm: fusion keeps them separate, in order, as eager draws them', () => {
  const fn = (x: t.Tensor): t.Tensor => t.mul(t.relu(t.add(t.dropout(t.mul(x, 2), 0.5), t.rand([4, 6]))), 3);
  const f = jit(fn);
  const x = t.randn([4, 6]);
  for (let call = 0; call < 3; call++) {
    t.manualSeed(11 + call);
    const eager = bits(fn(x));
    t.manualSeed(11 + call);
    assert.deepEqual(bits(f(x)), eager, `call ${call}`);
  }
  const opt = f.graphs()[0]!.optimized!;
  assert.ok(count(opt, 'fusedElementwise') > 0, opt.toString());
  assert.ok(opt.nodes.filter((n) => n.op.startsWith('random')).length === 2, opt.toString());
});
