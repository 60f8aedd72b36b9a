// The compiler's fused nodes on the webgpu backend (src/compiler/webgpu-kernels.ts, emitted by
// src/compiler/codegen/wgsl.ts): each fusedElementwise node is one generated WGSL dispatch whose
// values equal the unfused ops run one by one on the backend's own kernels, a matmulEpilogue is the
// backend's matmul and one dispatch, what the emitter lacks falls back op by op, and jitted MLP and
// GPT training steps give eager's losses and parameters with fewer dispatches per replay.
//
// Exactness: SwiftShader (the CPU Vulkan driver the tests run on) evaluates a shader as written, and
// there every fused result equals the unfused one bit for bit. A GPU driver may contract a product
// and a sum into one fma inside a fused body (a per-op kernel stores the product first): there
// values are compared within a few float32 ulp instead (see `assertUnfusedValues`).
//
// The emitter's own checks need no GPU; the rest is skipped where no WebGPU adapter starts (or with
// TESSERA_TEST_WEBGPU=0), unless TESSERA_TEST_WEBGPU=1, which makes that a failure.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { jit, trace } from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { bind } from '../../src/ops/dispatch.js';
import { setGraphCompiler, type GraphCompiler } from '../../src/graph/jit.js';
import { SGD, Adam, type Optimizer, type BaseOptions } from '../../src/optim/index.js';
import type { KernelSpec } from '../../src/compiler/codegen/kernel-ir.js';
import type { WebGPUBackend } from '../../src/backend/webgpu/backend.js';
import { assertClose } from '../helpers/close.js';
import { gptBlock, gptParams, mlp, mlpParams, mse, type GPT, type MLP } from '../graph/models.js';
import { trainStepBody } from '../helpers/train-step.js';

let backend: WebGPUBackend | undefined;
let unavailable = 'left out by TESSERA_TEST_WEBGPU=0';
if (process.env.TESSERA_TEST_WEBGPU !== '0') {
  try {
    backend = (await import('../../src/backend/webgpu/backend.js')).webgpuBackend;
  } catch (e) {
    if (process.env.TESSERA_TEST_WEBGPU === '1') throw e;
    unavailable = String(e).split('\n')[0]!;
  }
}

const values = (x: t.Tensor): number[] => Array.from(x.data());
const fusedNodes = (g: { nodes: { op: string }[] }): number => g.nodes.filter((n) => n.op === 'fusedElementwise' || n.op === 'matmulEpilogue').length;

/** Whether this adapter evaluates shaders as written (no fma contraction): SwiftShader does. */
const exact = (): boolean => backend!.device.info.architecture === 'swiftshader';

/** `got` has the values of the unfused ops: the same bits where the driver contracts nothing, else within 4 ulp. */
function assertUnfusedValues(got: t.Tensor, want: t.Tensor, what: string): void {
  assert.equal(got.dtype, want.dtype, `${what}: dtype`);
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  if (exact() || got.dtype !== 'float32') assert.deepEqual(values(got), values(want), what);
  else assertClose(got, want, { rtol: 5e-7, atol: 1e-37 }, what);
}

/** Float32 values with the edges mixed in: NaN, ±inf, subnormals, ±0, halves (round), large magnitudes. */
function withEdges(shape: number[], scale = 3): t.Tensor {
  const v = Array.from(t.randn(shape).data(), (x) => x * scale);
  const edges = [NaN, Infinity, -Infinity, 1e-40, -1e-40, -0, 0, 2.5, -0.5, 1e30, -88.9, 90];
  edges.forEach((e, i) => { if (i * 3 < v.length) v[i * 3] = e; });
  return t.tensor(v, { dtype: 'float32' }).reshape(shape);
}

describe('the WGSL emitter (no GPU needed)', () => {
  const load = (input: number) => ({ kind: 'load' as const, input });
  const spec = (over: Partial<KernelSpec>): KernelSpec => ({
    shape: [4, 3], inputs: [{ dtype: 'float32', strides: [3, 1], offset: 0 }], outDtype: 'float32',
    body: [load(0), { kind: 'op', op: 'exp', args: [0], dtype: 'float32' }], ...over,
  });

  it('emits float32 (pow included), int32 and bool bodies with a sum/max/min; refuses float64, int8 arithmetic, prod and non-float32 reductions, naming them', () => {
    assert.ok(C.canEmitWgsl(spec({})));
    assert.ok(C.canEmitWgsl(spec({ reduce: { op: 'max', axes: [1] } })));
    assert.ok(C.canEmitWgsl(spec({ outDtype: 'bool', body: [load(0), { kind: 'literal', value: 0, dtype: 'float32' }, { kind: 'op', op: 'gt', args: [0, 1], dtype: 'bool' }] })));
    assert.ok(C.canEmitWgsl(spec({ inputs: [{ dtype: 'int32', strides: [3, 1], offset: 0 }], outDtype: 'int32', body: [load(0), { kind: 'op', op: 'div', args: [0, 0], dtype: 'int32' }] })));
    const pow = spec({ body: [load(0), { kind: 'literal', value: 3, dtype: 'float32' }, { kind: 'op', op: 'pow', args: [0, 1], dtype: 'float32' }] });
    assert.ok(C.canEmitWgsl(pow), 'pow: the backend\'s pow_');
    const int8Add = spec({ inputs: [{ dtype: 'int8', strides: [3, 1], offset: 0 }], outDtype: 'int8', body: [load(0), { kind: 'op', op: 'add', args: [0, 0], dtype: 'int8' }] });
    assert.ok(!C.canEmitWgsl(int8Add), 'int8 arithmetic');
    assert.ok(!C.canEmitWgsl(spec({ inputs: [{ dtype: 'float64', strides: [3, 1], offset: 0 }], outDtype: 'float64', body: [load(0), { kind: 'op', op: 'exp', args: [0], dtype: 'float64' }] })));
    assert.ok(!C.canEmitWgsl(spec({ reduce: { op: 'prod', axes: [1] } })));
    assert.ok(!C.canEmitWgsl(spec({ inputs: [{ dtype: 'int32', strides: [3, 1], offset: 0 }], outDtype: 'int32', body: [load(0), { kind: 'op', op: 'neg', args: [0], dtype: 'int32' }], reduce: { op: 'sum', axes: [1] } })));
    assert.ok(!C.canEmitWgsl(spec({ outStrides: [1, 4] })), 'the output is contiguous');
    assert.throws(() => C.emitWgslKernel(int8Add), /add:int8/);
  });

  it('reads literals at run time from params, shares a binding between inputs over one storage, bakes layouts into the text', () => {
    const div = spec({
      inputs: [{ dtype: 'float32', strides: [3, 1], offset: 5 }, { dtype: 'float32', strides: [1, 4], offset: 0 }],
      body: [load(0), load(1), { kind: 'op', op: 'add', args: [0, 1], dtype: 'float32' }, { kind: 'literal', value: 3, dtype: 'float32' }, { kind: 'op', op: 'div', args: [2, 3], dtype: 'float32' }],
    });
    const k = C.emitWgslKernel(div, { bindings: [0, 0] });
    assert.deepEqual(Array.from(new Float32Array(k.params!.buffer)), [3], 'the literal travels in params');
    assert.ok(!/\b3\.0|\b3\b\)/.test(k.wgsl.split('fn value')[1]!.split('}')[0]!), 'no literal 3 in the body text (a compiler would turn x / 3 into x · (1/3))');
    assert.ok(k.wgsl.includes('@binding(1) var<storage, read> in0') && !k.wgsl.includes('in1:'), 'two inputs over one storage: one binding');
    assert.ok(k.wgsl.includes('@binding(2) var<storage, read> params'));
    assert.ok(k.wgsl.includes('5 + c0 * 3'), 'offset and strides are constants of the text');
    assert.equal(k.workgroups, 1);
    assert.equal(k.outputSize, 12);
    const r = C.emitWgslKernel(spec({ reduce: { op: 'sum', axes: [1] } }));
    assert.equal(r.workgroups, 4, 'a workgroup per output element');
    assert.equal(r.params, undefined);
    assert.throws(() => C.emitWgslKernel(div, { bindings: [0, 2] }), /without gaps/);
  });
});

describe('fused kernels on webgpu', { skip: backend === undefined ? `no WebGPU adapter (${unavailable}); TESSERA_TEST_WEBGPU=1 makes this a failure` : false }, () => {
  let previous = 'cpu';
  before(() => { previous = t.currentBackendName(); t.setBackend('webgpu'); t.manualSeed(5); });
  after(() => t.setBackend(previous));

  /** Traces fn on xs, compiles it with and without the webgpu kernels, and checks the fused run against both. */
  function checkFused(name: string, fn: (...xs: t.Tensor[]) => t.Tensor, xs: t.Tensor[], opts: { extraLaunches?: number } = {}): C.WebGPUKernelStats {
    const { graph } = trace(fn, xs);
    const fused = C.compile(graph, { planned: false });
    const unfused = C.compile(graph, { planned: false, webgpuKernels: false });
    const nodes = fusedNodes(fused.graph);
    assert.ok(nodes > 0, `${name}: ${fused.graph.toString()}`);
    const l0 = backend!.device.launches;
    const got = fused.run(xs)[0]!;
    const l1 = backend!.device.launches;
    const want = unfused.run(xs)[0]!;
    const l2 = backend!.device.launches;
    assert.equal(got.backend, 'webgpu');
    assertUnfusedValues(got, want, `${name}: fused vs unfused`);
    assertUnfusedValues(got, fn(...xs), `${name}: fused vs eager`);
    assert.deepEqual(fused.webgpuKernels!.stats, { fusedKernels: nodes, matmulThenKernel: 0, fallbacks: 0 }, name);
    assert.equal(l1 - l0, nodes + (opts.extraLaunches ?? 0), `${name}: one dispatch per fused node`);
    assert.ok(l2 - l1 > l1 - l0, `${name}: fewer dispatches than op by op (${l1 - l0} vs ${l2 - l1})`);
    return fused.webgpuKernels!.stats;
  }

  it('arithmetic over broadcast, transposed and sliced inputs, with literals (x / 3 as the div kernel computes it)', () => {
    const a = withEdges([5, 7]), row = t.randn([1, 7]), tr = t.randn([7, 5]), wide = t.randn([5, 9]);
    checkFused('arith', (x, r, c, w) => t.add(t.div(t.mul(t.sub(x, r), t.transpose(c, 0, 1)), 3), t.mul(t.narrow(w, 1, 2, 7), 0.5)), [a, row, tr, wide]);
    checkFused('min/max/abs/relu/sign/rounding', (x, r) => t.add(t.maximum(t.relu(x), t.minimum(t.neg(x), r)),
      t.add(t.mul(t.sign(x), t.abs(r)), t.add(t.floor(x), t.add(t.ceil(x), t.round(t.mul(x, 2)))))), [a, row]);
  });

  it('transcendentals with the backend\'s own edges (NaN, inf, subnormals, large arguments)', () => {
    const a = withEdges([6, 11], 20);
    checkFused('exp/log/tanh/sigmoid/erf', (x) => t.add(t.add(t.exp(t.mul(x, 0.25)), t.log(x)), t.add(t.tanh(x), t.add(t.sigmoid(x), t.erf(t.mul(x, 0.1))))), [a]);
    checkFused('sin/cos/sqrt/rsqrt/expm1/log1p', (x) => t.add(t.add(t.sin(x), t.cos(t.mul(x, 100))), t.add(t.sqrt(x), t.add(t.rsqrt(x), t.add(t.expm1(t.mul(x, 0.5)), t.log1p(x))))), [a]);
  });

  it('pow: the backend\'s pow_ kernel follows the cpu reference (C\'s special cases exactly, values within 1e-5), fused and unfused alike', () => {
    const special = [0, -0, 1, -1, 2, -2, 0.5, -0.5, 3, -3, Infinity, -Infinity, NaN, 1e-3, 7.25];
    const xs = special.flatMap((a) => special.map(() => a)), ys = special.flatMap(() => special);
    const [x, y] = [t.tensor(xs), t.tensor(ys)];
    const gpu = t.pow(x, y).data();
    const cpu = t.pow(t.tensor(xs, { backend: 'cpu' }), t.tensor(ys, { backend: 'cpu' })).data();
    cpu.forEach((want, i) => {
      const got = gpu[i]!;
      const what = `pow(${xs[i]}, ${ys[i]}) = ${got}, cpu ${want}`;
      if (!Number.isFinite(want) || want === 0) assert.ok(Object.is(got, want), what);
      else assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want), what);
    });
    // Random bases and exponents (GELU's x³ among them), fused with the ops around them.
    const base = t.randn([6, 9]), exponent = t.mul(t.randn([6, 9]), 3);
    checkFused('pow', (a, b) => t.add(t.mul(t.pow(a, 3), 0.044715), t.pow(t.add(t.abs(a), 0.5), b)), [base, exponent]);
  });

  it('comparisons, logical ops, isnan and where with bool intermediates, a bool mask input, and 1-byte outputs', () => {
    const a = withEdges([5, 7]), b = withEdges([1, 7]).mul(-1);
    const mask = t.tensor(Array.from({ length: 35 }, (_, i) => i % 3 === 0)).reshape([5, 7]);
    checkFused('where', (x, y, m) => t.where(t.logicalOr(t.logicalAnd(t.gt(x, y), t.le(x, 1)), t.logicalAnd(t.isnan(x), m)), t.mul(x, 2), t.neg(y)), [a, b, mask]);
    checkFused('ne/eq/ge/lt', (x, y) => t.where(t.logicalNot(t.logicalOr(t.ne(x, y), t.eq(x, 0))), x, t.where(t.ge(x, y), y, t.mul(t.lt(x, y).cast('float32'), 3))), [a, b]);
    // Outputs of 35 one-byte elements: nine words, the last one partly filled.
    checkFused('bool output', (x, y) => t.logicalAnd(t.gt(t.mul(x, 2), y), t.logicalNot(t.isnan(x))), [a, b]);
    checkFused('uint8 output', (x) => t.add(x, 0.5).cast('uint8'), [a.mul(40)]);
    checkFused('int8 output', (x) => t.sub(x, 0.5).cast('int8'), [a.mul(40)]);
  });

  it('int32 bodies as the cpu kernels compute them (wrapping, a quotient of 0 for a zero divisor), with casts to and from float32', () => {
    const a = withEdges([5, 7], 30);
    const i = t.tensor(Array.from({ length: 35 }, (_, k) => (k % 5 === 0 ? 0 : (k * 7919) % 201 - 100)), { dtype: 'int32' }).reshape([5, 7]);
    const big = t.tensor(Array.from({ length: 35 }, (_, k) => 2147483647 - k * 1000), { dtype: 'int32' }).reshape([5, 7]);
    checkFused('int arithmetic', (x, j, g) => t.add(t.mul(t.cast(t.mul(x, 10), 'int32'), j), t.add(t.maximum(t.neg(j), t.abs(g)), g)), [a, i, big]);
    // i is 0 at every fifth element: those quotients are 0, as the cpu kernel stores x / 0.
    checkFused('int div and where', (j, g) => t.add(bind('div', [g, j], {}), t.where(t.gt(j, 0), j, t.relu(t.sign(t.neg(j))))), [i, big]);
    checkFused('int to float', (j, x) => t.mul(t.cast(t.sub(j, 3), 'float32'), t.cast(t.gt(x, 0), 'float32')), [i, a]);
  });

  it('reductions: sum, max and min of a body over inner, outer and all axes (more elements than a workgroup); prod after a body kernel', () => {
    const x = withEdges([3, 200]).mul(0.1), y = t.randn([3, 1]);
    checkFused('softmax sum', (a, b) => t.sum(t.exp(t.sub(a, b)), -1, true), [x, y]);
    checkFused('max over the outer axis', (a) => t.max(t.mul(t.transpose(a, 0, 1), 2), 0), [t.randn([3, 200])]);
    checkFused('min over all', (a, b) => t.min(t.sub(a, b)), [t.randn([3, 200]), y]);
    checkFused('mean of squares', (a) => t.mean(t.mul(a, a), -1), [t.randn([4, 130])]);
    // prod has no GPU kernel: the body is one dispatch into a temporary, then the backend's prod.
    const { graph } = trace((a: t.Tensor) => t.prod(t.add(a, 1), -1), [t.randn([2, 5])]);
    const c = C.compile(graph, { planned: false });
    const xs = [t.randn([2, 5])];
    assertUnfusedValues(c.run(xs)[0]!, t.prod(t.add(xs[0]!, 1), -1), 'prod');
    assert.equal(c.webgpuKernels!.stats.fusedKernels, 1);
  });

  it('a second call with new values reuses the generated kernel (no new text, one dispatch)', () => {
    const fn = (a: t.Tensor, b: t.Tensor): t.Tensor => t.tanh(t.add(t.mul(a, b), 1));
    const { graph } = trace(fn, [t.randn([4, 9]), t.randn([4, 9])]);
    const c = C.compile(graph, { planned: false });
    c.run([t.randn([4, 9]), t.randn([4, 9])]);
    const generated = C.webgpuKernelCacheStats().generated;
    const x = t.randn([4, 9]), y = t.randn([4, 9]);
    const l0 = backend!.device.launches;
    const got = c.run([x, y])[0]!;
    assert.equal(backend!.device.launches - l0, 1);
    assert.equal(C.webgpuKernelCacheStats().generated, generated);
    assertUnfusedValues(got, fn(x, y), 'second call');
  });

  it('a matmul epilogue is the backend\'s matmul and one dispatch (bias, tanh, residual; a 3-D input through the reshape)', () => {
    for (const shape of [[6, 8], [2, 3, 8]]) {
      const x = t.randn(shape), w = t.randn([8, 5]), b = t.randn([5]), r = t.randn([...shape.slice(0, -1), 5]);
      const fn = (a: t.Tensor, m: t.Tensor, bias: t.Tensor, res: t.Tensor): t.Tensor => t.add(t.tanh(t.add(t.matmul(a, m), bias)), res);
      const { graph } = trace(fn, [x, w, b, r]);
      const c = C.compile(graph, { planned: false });
      assert.equal(c.graph.nodes.filter((n) => n.op === 'matmulEpilogue').length, 1, c.graph.toString());
      const l0 = backend!.device.launches;
      const got = c.run([x, w, b, r])[0]!;
      assert.equal(backend!.device.launches - l0, 2, `${shape}: matmul + epilogue`);
      assert.deepEqual(c.webgpuKernels!.stats, { fusedKernels: 0, matmulThenKernel: 1, fallbacks: 0 });
      assertUnfusedValues(got, fn(x, w, b, r), `${shape}: vs eager`);
    }
  });

  it('falls back op by op, with the same values, for a dtype the emitter lacks or more inputs than the GPU binds', () => {
    const body = (a: t.Tensor): t.Tensor => t.mul(t.exp(a), 0.5);
    const { graph } = trace(body, [t.randn([3, 4], { dtype: 'float64' })]);
    const c = C.compile(graph, { planned: false });
    const x = t.randn([3, 4], { dtype: 'float64' });
    assertUnfusedValues(c.run([x])[0]!, body(x), 'float64');
    assert.deepEqual(c.webgpuKernels!.stats, { fusedKernels: 0, matmulThenKernel: 0, fallbacks: 1 });
    // The output, the inputs and (with literals) the params each take a storage binding: at the
    // GPU's limit the node is one kernel, one more input and it runs op by op.
    const limit = backend!.maxStorageBindings;
    const sum = (...ys: t.Tensor[]): t.Tensor => ys.reduce((acc, y) => t.add(acc, t.exp(y)));
    for (const [inputs, fallbacks] of [[limit - 1, 0], [limit, 1]] as const) {
      const xs = Array.from({ length: inputs }, () => t.randn([2, 3]));
      const many = C.compile(trace(sum, xs).graph, { planned: false });
      assert.equal(fusedNodes(many.graph), 1);
      assertUnfusedValues(many.run(xs)[0]!, sum(...xs), `${inputs} inputs`);
      assert.deepEqual(many.webgpuKernels!.stats, { fusedKernels: 1 - fallbacks, matmulThenKernel: 0, fallbacks }, `${inputs} inputs, limit ${limit}`);
    }
  });

  it('jitted training steps (MLP + Adam, GPT block + SGD momentum) equal eager and the unfused replay, with fewer dispatches per replay', (ctx) => {
    let last: ReturnType<typeof C.compile> | undefined;
    const capture: GraphCompiler = { compile: (g, o) => (last = C.jitGraphCompiler.compile(g, o) as ReturnType<typeof C.compile>) };
    const unfused: GraphCompiler = { compile: (g, o) => C.compile(g, { reuseOutputs: o.reuseOutputs, planned: false, webgpuKernels: false }) };
    const cases = [
      { name: 'mlp', seed: 3, params: () => mlpParams(6, 12, 3), loss: (p: object) => (a: t.Tensor, b: t.Tensor) => mse(mlp(p as MLP, a), b),
        data: () => [t.randn([8, 6]), t.randn([8, 3])], opt: (ps: t.Tensor[]) => new Adam(ps, { lr: 0.01 }) as unknown as Optimizer<BaseOptions> },
      { name: 'gpt', seed: 4, params: () => gptParams(8, 2), loss: (p: object) => (a: t.Tensor, b: t.Tensor) => mse(gptBlock(p as GPT, a), b),
        data: () => [t.randn([2, 4, 8]), t.randn([2, 4, 8])], opt: (ps: t.Tensor[]) => new SGD(ps, { lr: 0.05, momentum: 0.9 }) as unknown as Optimizer<BaseOptions> },
    ];
    const steps = 3;
    const train = (p: object, opt: Optimizer<BaseOptions>, loss: (x: t.Tensor, y: t.Tensor) => t.Tensor, x: t.Tensor, y: t.Tensor, jitted: boolean) => {
      const body = trainStepBody(opt, loss);
      const step = jitted ? jit(body) : body;
      const losses: number[] = [], launches: number[] = [];
      for (let i = 0; i < steps; i++) {
        const l0 = backend!.device.launches;
        losses.push(step(x, y).item());
        launches.push(backend!.device.launches - l0);
      }
      void p;
      return { losses, launches, step };
    };
    try {
      for (const c of cases) {
        t.manualSeed(c.seed);
        const pe = c.params(), pj = cloneParams(pe), pu = cloneParams(pe);
        const [x, y] = c.data() as [t.Tensor, t.Tensor];
        const eager = train(pe, c.opt(tensorsOf(pe)), c.loss(pe), x, y, false);
        setGraphCompiler(capture);
        const fused = train(pj, c.opt(tensorsOf(pj)), c.loss(pj), x, y, true);
        setGraphCompiler(unfused);
        const before = train(pu, c.opt(tensorsOf(pu)), c.loss(pu), x, y, true);
        setGraphCompiler(C.jitGraphCompiler);
        eager.losses.forEach((l, i) => assert.ok(Math.abs(fused.losses[i]! - l) <= 1e-5 * Math.max(1, Math.abs(l)), `${c.name} step ${i}: eager ${l}, jit ${fused.losses[i]}`));
        tensorsOf(pj).forEach((p, k) => assertClose(p, tensorsOf(pe)[k]!, { rtol: 1e-5, atol: 1e-6 }, `${c.name} parameter ${k} vs eager`));
        if (exact()) {
          assert.deepEqual(fused.losses, before.losses, `${c.name}: fused and unfused jit`);
          tensorsOf(pj).forEach((p, k) => assert.deepEqual(values(p), values(tensorsOf(pu)[k]!), `${c.name} parameter ${k}: fused vs unfused jit`));
        }
        const stats = last!.webgpuKernels!.stats;
        const replays = steps - 1;
        assert.ok(stats.fusedKernels >= 3 * replays && stats.matmulThenKernel >= replays, `${c.name}: ${JSON.stringify(stats)}`);
        // Every replay after the trace: fewer dispatches than the same graph op by op.
        for (let i = 1; i < steps; i++) assert.ok(fused.launches[i]! < before.launches[i]!, `${c.name} replay ${i}: ${fused.launches[i]} vs ${before.launches[i]} dispatches`);
        ctx.diagnostic(`${c.name} step dispatches: eager ${eager.launches[1]}, jit unfused ${before.launches[1]}, jit fused ${fused.launches[1]} (${JSON.stringify(stats)})`);
        assert.equal((fused.step as ReturnType<typeof jit>).stats().traces, 1);
      }
    } finally {
      setGraphCompiler(C.jitGraphCompiler);
    }
  });
});

function cloneParams<T extends object>(p: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) out[k] = v instanceof t.Tensor ? t.clone(v).detach().requiresGrad_(v.requiresGrad) : v;
  return out as T;
}
const tensorsOf = (p: object): t.Tensor[] => Object.values(p).filter((v): v is t.Tensor => v instanceof t.Tensor);
