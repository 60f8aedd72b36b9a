import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { simplifyKernel, type KernelSpec } from '../../src/compiler/codegen/kernel-ir.js';

const f32 = (xs: number[]): Float32Array => Float32Array.from(xs);

test('an elementwise kernel with broadcasting (stride 0) and float32 rounding per op', () => {
  const spec: KernelSpec = {
    shape: [2, 3],
    inputs: [{ dtype: 'float32', strides: [3, 1], offset: 0 }, { dtype: 'float32', strides: [0, 1], offset: 0 }],
    body: [
      { kind: 'load', input: 0 }, { kind: 'load', input: 1 },
      { kind: 'op', op: 'add', args: [0, 1], dtype: 'float32' },
      { kind: 'literal', value: Math.fround(0.1), dtype: 'float32' },
      { kind: 'op', op: 'mul', args: [2, 3], dtype: 'float32' },
    ],
    outDtype: 'float32',
  };
  const k = C.compileJsKernel(spec);
  const out = new Float32Array(6);
  k([f32([1, 2, 3, 4, 5, 6]), f32([10, 20, 30])], out);
  const x = t.tensor([[1, 2, 3], [4, 5, 6]]), b = t.tensor([10, 20, 30]);
  assert.deepEqual(Array.from(out), Array.from(t.mul(t.add(x, b), 0.1).data()), 'bit-identical to eager ops');
  assert.match(C.emitJs(spec), /Math\.fround/);
});

test('a reduction kernel folds the inner axis like the reference sum', () => {
  const spec: KernelSpec = {
    shape: [3, 4], inputs: [{ dtype: 'float32', strides: [1, 3], offset: 0 }], // a transposed read
    body: [{ kind: 'load', input: 0 }, { kind: 'op', op: 'exp', args: [0], dtype: 'float32' }],
    outDtype: 'float32', reduce: { op: 'sum', axes: [1] },
  };
  const data = Array.from({ length: 12 }, (_, i) => i / 10);
  const out = new Float32Array(3);
  C.compileJsKernel(spec)([f32(data)], out);
  const ref = t.sum(t.exp(t.transpose(t.tensor(f32(data), { shape: [4, 3] }), 0, 1)), 1).data();
  assert.deepEqual(Array.from(out), Array.from(ref));
  const maxSpec: KernelSpec = { ...spec, body: [{ kind: 'load', input: 0 }], reduce: { op: 'max', axes: [0, 1] } };
  const m = new Float32Array(1);
  C.compileJsKernel(maxSpec)([f32([1, NaN, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0])], m);
  assert.ok(Number.isNaN(m[0]!), 'max propagates NaN like the reference kernel');
});

test('contiguous axes merge into one loop; kernels are cached by structure', () => {
  const spec: KernelSpec = {
    shape: [2, 3, 4], inputs: [{ dtype: 'float32', strides: [12, 4, 1], offset: 0 }],
    body: [{ kind: 'load', input: 0 }, { kind: 'op', op: 'neg', args: [0], dtype: 'float32' }], outDtype: 'float32',
  };
  assert.deepEqual(simplifyKernel(spec).shape, [24]);
  const bcast: KernelSpec = { ...spec, inputs: [{ dtype: 'float32', strides: [0, 4, 1], offset: 0 }] };
  assert.deepEqual(simplifyKernel(bcast).shape, [2, 12]);
  const before = C.kernelCacheStats().compiled;
  C.compileJsKernel(spec);
  C.compileJsKernel(JSON.parse(JSON.stringify(spec)) as KernelSpec);
  assert.equal(C.kernelCacheStats().compiled - before <= 1, true);
});

test('generated matmul reads transposed operands by strides and applies the epilogue', () => {
  const a = t.randn([3, 5]), b = t.randn([4, 5]), bias = t.randn([4]);
  const src = C.emitMatmulJs({
    batch: [], m: 3, k: 5, n: 4, a: { strides: [5, 1], offset: 0 }, b: { strides: [1, 5], offset: 0 }, dtype: 'float32',
    epilogue: { body: [{ kind: 'load', input: 0 }, { kind: 'load', input: 1 }, { kind: 'op', op: 'add', args: [0, 1], dtype: 'float32' }, { kind: 'op', op: 'relu', args: [2], dtype: 'float32' }],
      inputs: [{ dtype: 'float32', strides: [], offset: 0 }, { dtype: 'float32', strides: [0, 1], offset: 0 }], outDtype: 'float32' },
  });
  assert.match(src, /let sum = 0/, 'dot form for a transposed right operand');
  const { graph } = t.trace((x: t.Tensor) => t.relu(t.add(t.matmul(x, t.transpose(b, 0, 1)), bias)), [a]);
  const c = C.compile(graph);
  assert.deepEqual(c.graph.nodes.map((n) => n.op), ['permute', 'matmulEpilogue'], 'the transpose stays a free view read by strides');
  assert.deepEqual(Array.from(c.run([a])[0]!.data()), Array.from(t.relu(t.add(t.matmul(a, t.transpose(b, 0, 1)), bias)).data()));
});

test('the wasm emitter (SIMD rows) gives the JS kernel\'s bits for float32 elementwise kernels', async () => {
  const { emitWasmKernel, canEmitWasm } = await import('../../src/compiler/codegen/wasm.js');
  const spec: KernelSpec = {
    shape: [3, 7],
    inputs: [{ dtype: 'float32', strides: [7, 1], offset: 0 }, { dtype: 'float32', strides: [1, 0], offset: 0 }, { dtype: 'float32', strides: [1, 3], offset: 0 }],
    body: [
      { kind: 'load', input: 0 }, { kind: 'load', input: 1 },
      { kind: 'op', op: 'sub', args: [0, 1], dtype: 'float32' },
      { kind: 'literal', value: Math.fround(0.3), dtype: 'float32' },
      { kind: 'op', op: 'mul', args: [2, 3], dtype: 'float32' },
      { kind: 'op', op: 'relu', args: [4], dtype: 'float32' },
      { kind: 'load', input: 2 },
      { kind: 'op', op: 'maximum', args: [5, 6], dtype: 'float32' },
    ],
    outDtype: 'float32',
  };
  assert.ok(canEmitWasm(spec));
  assert.ok(!canEmitWasm({ ...spec, body: [{ kind: 'load', input: 0 }, { kind: 'op', op: 'exp', args: [0], dtype: 'float32' }] }));
  // The third input strided along rows (scalar path) or contiguous (f32x4 path + remainder).
  for (const third of [[1, 3], [7, 1]]) {
    const sp: KernelSpec = { ...spec, inputs: [spec.inputs[0]!, spec.inputs[1]!, { dtype: 'float32', strides: third, offset: 0 }] };
    const memory = new WebAssembly.Memory({ initial: 1 });
    const bytes = emitWasmKernel(sp, { module: 'env', name: 'memory', minPages: 1, shared: false });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    const a = Float32Array.from({ length: 21 }, (_, i) => Math.sin(i) * 3);
    const b = Float32Array.from([0.5, -1, 2]);
    const c = Float32Array.from({ length: 21 }, (_, i) => Math.cos(i * 7) * 0.2);
    const heap = new Float32Array(memory.buffer);
    heap.set(a, 0); heap.set(b, 32); heap.set(c, 64);
    (inst.exports.kernel as (...xs: number[]) => void)(1024, 0, 128, 256);
    const js = new Float32Array(21);
    C.compileJsKernel(sp)([a, b, c], js);
    assert.deepEqual(Array.from(heap.subarray(256, 256 + 21)), Array.from(js), `strides ${third}`);
  }
});
