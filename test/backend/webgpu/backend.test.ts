// The webgpu backend's own checks, beyond the numerical suites (which also run on it, see
// test/helpers/backends.ts): shapes large enough to cross its kernels' tiles, chunks and workgroups
// (matmul tiles of 64, reductions and rows longer than a workgroup, attention over more than 64
// queries), 1-byte elements at every byte offset, the optimizer updates, reads and writes of views,
// training steps against the cpu backend, and errors (an index found bad on the GPU, a shader that
// does not compile) reported with what failed. Each is compared with a float64 reference on cpu.
//
// Skipped where no WebGPU adapter starts, unless TESSERA_TEST_WEBGPU=1 (CI sets it), which makes that a failure.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { assertClose, assertThrowsWith } from '../../helpers/close.js';
import { Linear, ReLU, Sequential } from '../../../src/nn/index.js';
import { Adam, SGD } from '../../../src/optim/index.js';
import type { WebGPUBackend } from '../../../src/backend/webgpu/backend.js';

let backend: WebGPUBackend | undefined;
let unavailable = '';
try {
  backend = (await import('../../../src/backend/webgpu/backend.js')).webgpuBackend;
} catch (e) {
  if (process.env.TESSERA_TEST_WEBGPU === '1') throw e;
  unavailable = String(e).split('\n')[0]!;
}

/** A float64 copy of x on the cpu backend (the reference's input). */
function ref(x: t.Tensor): t.Tensor {
  return t.tensor(Array.from(x.data()), { dtype: 'float64', backend: 'cpu' }).reshape([...x.shape]);
}

/** A float32 copy of x on the cpu backend (same bits as x). */
function cpu32(x: t.Tensor): t.Tensor {
  return t.tensor(Array.from(x.data()), { dtype: x.dtype, backend: 'cpu' }).reshape([...x.shape]);
}

describe('webgpu backend', { skip: backend === undefined ? `no WebGPU adapter (${unavailable}); TESSERA_TEST_WEBGPU=1 makes this a failure` : false }, () => {
  let previous = 'cpu';
  before(() => { previous = t.currentBackendName(); t.setBackend('webgpu'); t.manualSeed(7); });
  after(() => t.setBackend(previous));

  it('reports its adapter and limits', () => {
    const info = backend!.device.info;
    assert.ok(info.maxStorageBufferBindingSize >= 1 << 27, `binding limit ${info.maxStorageBufferBindingSize}`);
    assert.ok(info.maxComputeWorkgroupsPerDimension >= 65535);
    assert.equal(typeof info.vendor, 'string');
  });

  it('matmul: tiles of 64 with ragged edges, batched, broadcast and transposed operands equal float64 within float32 rounding', () => {
    for (const [m, k, n] of [[1, 1, 1], [65, 17, 130], [128, 200, 64], [3, 300, 5]] as const) {
      const a = t.randn([m, k]), b = t.randn([k, n]);
      assertClose(t.matmul(a, b), t.matmul(ref(a), ref(b)), { rtol: 1e-4, atol: 1e-4 * Math.sqrt(k) }, `${m}×${k}·${k}×${n}`);
      // Transposed operands are read through their strides, not copied.
      const at = t.randn([k, m]).mT, bt = t.randn([n, k]).mT;
      assertClose(t.matmul(at, bt), t.matmul(ref(at), ref(bt)), { rtol: 1e-4, atol: 1e-4 * Math.sqrt(k) }, `transposed ${m}×${k}·${k}×${n}`);
    }
    const a = t.randn([2, 3, 70, 33]), b = t.randn([3, 33, 66]);
    assertClose(t.matmul(a, b), t.matmul(ref(a), ref(b)), { rtol: 1e-4, atol: 1e-3 }, 'batched with a broadcast batch dim');
  });

  it('matmul: the large-product kernel (128×128 blocks in groups of 8 block rows), ragged in m, n and k, batched, transposed', () => {
    // 17 × 17 blocks of 128 (≥ MATMUL_LARGE_MIN_BLOCKS): the last group of block rows is partial.
    // Rows around block and group edges are compared (the whole float64 reference costs seconds).
    const a = t.randn([2, 2050, 9]), b = t.randn([9, 2051]).mT.contiguous().mT;
    const c = t.matmul(a, b.expand([2, 9, 2051]));
    const bRef = ref(b);
    for (const batch of [0, 1]) {
      for (const row of [0, 127, 128, 1023, 1024, 2047, 2049]) {
        const want = t.matmul(ref(a.at(batch).narrow(0, row, 1)), bRef);
        assertClose(c.at(batch).narrow(0, row, 1), want, { rtol: 1e-5, atol: 1e-5 }, `batch ${batch} row ${row}`);
      }
    }
  });

  it('quantizedMatmul: one WGSL launch per product (int8/int4, per channel on either axis, groups, affine), forward and transposed, equal to the cpu kernel', () => {
    for (const options of [{ bits: 8, scheme: 'per-channel' }, { bits: 8, scheme: 'per-channel', axis: 1 }, { bits: 4, scheme: 'group', groupSize: 8 }, { bits: 4, scheme: 'per-tensor', symmetric: false }] as const) {
      const lin = new Linear(300, 70);
      const q = t.quant.QuantizedLinear.fromLinear(lin, options);
      const x = t.randn([9, 300]).requiresGrad_();
      const before = backend!.device.launches;
      const y = q.call(x);
      assert.equal(backend!.device.launches - before, 1, `${JSON.stringify(options)}: one launch`);
      const wCpu = t.quant.dequantize(new t.quant.QuantizedTensor(cpu32(q.weight_q), cpu32(q.weight_scale), q.weight_zero_point === undefined ? undefined : cpu32(q.weight_zero_point), [70, 300], q.spec), { dtype: 'float64' });
      assertClose(y, ref(x.detach()).matmul(wCpu.mT).add(ref(q.bias!)), { atol: 1e-4, rtol: 1e-4 });
      y.sum().backward();
      assertClose(x.grad!, t.ones([9, 70], { dtype: 'float64', backend: 'cpu' }).matmul(wCpu), { atol: 1e-4, rtol: 1e-4 });
    }
  });

  it('sum, max and min over any axes, with more reduced elements than a workgroup and strided input', () => {
    const x = t.randn([5, 300, 7]);
    const xt = x.permute([2, 0, 1]);
    for (const axes of [[0], [1], [2], [0, 2], [0, 1, 2]]) {
      assertClose(xt.sum(axes), ref(xt).sum(axes), { rtol: 1e-4, atol: 1e-4 }, `sum ${axes}`);
      assertClose(xt.max(axes), ref(xt).max(axes), { rtol: 0, atol: 0 }, `max ${axes}`);
      assertClose(xt.min(axes), ref(xt).min(axes), { rtol: 0, atol: 0 }, `min ${axes}`);
    }
    assertClose(t.tensor([1, NaN, 3]).max(0), [NaN], {}, 'NaN wins max');
  });

  it('softmax, logSoftmax and layerNorm rows longer than a workgroup, along any axis', () => {
    const x = t.randn([3, 200, 4]).mul(5);
    for (const axis of [0, 1, 2]) {
      assertClose(t.softmax(x, axis), t.softmax(ref(x), axis), { rtol: 1e-5, atol: 1e-7 }, `softmax axis ${axis}`);
      assertClose(t.logSoftmax(x, axis), t.logSoftmax(ref(x), axis), { rtol: 1e-5, atol: 1e-5 }, `logSoftmax axis ${axis}`);
    }
    const rows = t.randn([6, 300]).mul(3).add(100);
    assertClose(t.layerNorm(rows, [300]), t.layerNorm(ref(rows), [300]), { rtol: 1e-4, atol: 1e-4 }, 'layerNorm of rows far from 0');
  });

  it('attention and its gradient over more queries and keys than a workgroup, causal and not', () => {
    for (const causal of [false, true]) {
      const q = t.randn([2, 3, 70, 24], { requiresGrad: true }), k = t.randn([2, 3, 90, 24], { requiresGrad: true }), v = t.randn([2, 3, 90, 40], { requiresGrad: true });
      const qs = causal ? q.narrow(2, 0, 70) : q;
      const ks = causal ? k.narrow(2, 0, 70) : k, vs = causal ? v.narrow(2, 0, 70) : v;
      const out = t.scaledDotProductAttention(qs, ks, vs, { isCausal: causal });
      const [q64, k64, v64] = [ref(qs), ref(ks), ref(vs)].map((r) => r.requiresGrad_());
      const out64 = t.scaledDotProductAttention(q64!, k64!, v64!, { isCausal: causal });
      assertClose(out, out64, { rtol: 1e-4, atol: 1e-5 }, `attention causal=${causal}`);
      const g = t.randn([...out.shape]);
      out.backward(g);
      out64.backward(ref(g));
      assertClose(q.grad!.narrow(2, 0, qs.shape[2]!), q64!.grad!, { rtol: 1e-3, atol: 1e-4 }, `dq causal=${causal}`);
      assertClose(k.grad!.narrow(2, 0, ks.shape[2]!), k64!.grad!, { rtol: 1e-3, atol: 1e-4 }, `dk causal=${causal}`);
      assertClose(v.grad!.narrow(2, 0, vs.shape[2]!), v64!.grad!, { rtol: 1e-3, atol: 1e-4 }, `dv causal=${causal}`);
    }
  });

  it('1-byte elements (bool, int8, uint8) at every byte offset: comparisons, where, casts, logical ops', () => {
    const x = t.tensor([-3.5, -1, -0, 0, 0.5, 2, 300, NaN, 1e-40, -1e-40, 127.9]);
    for (let start = 0; start < 4; start++) {
      const v = x.narrow(0, start, x.shape[0]! - start);
      const c = cpu32(v);
      for (const op of ['gt', 'ge', 'lt', 'le', 'eq', 'ne'] as const) {
        assert.deepEqual(Array.from(v[op](0.5).data()), Array.from(c[op](0.5).data()), `${op} from ${start}`);
      }
      for (const dtype of ['int8', 'uint8', 'int32', 'bool'] as const) {
        assert.deepEqual(Array.from(v.cast(dtype).data()), Array.from(c.cast(dtype).data()), `cast ${dtype} from ${start}`);
        // Bytes read back at an odd offset, and cast back to float32.
        const bytes = v.cast(dtype);
        const tail = bytes.narrow(0, 1, bytes.shape[0]! - 1);
        assert.deepEqual(Array.from(tail.cast('float32').data()), Array.from(c.cast(dtype).narrow(0, 1, bytes.shape[0]! - 1).cast('float32').data()), `${dtype} → float32 from ${start + 1}`);
      }
      const mask = v.gt(0);
      assert.deepEqual(Array.from(t.where(mask, v, -1).data()), Array.from(t.where(c.gt(0), c, -1).data()), `where from ${start}`);
      assert.deepEqual(Array.from(mask.logicalNot().logicalOr(v.isnan()).data()), Array.from(c.gt(0).logicalNot().logicalOr(c.isnan()).data()), `logical from ${start}`);
    }
  });

  it('gather, scatterAdd and the gradient of a slice with strided operands', () => {
    const x = t.randn([40, 70]);
    const index = t.randint(0, 70, [40, 30]);
    assertClose(x.gather(1, index), ref(x).gather(1, cpu32(index)), { rtol: 0, atol: 0 }, 'gather');
    const src = t.randn([40, 30]);
    assertClose(t.zeros([40, 70]).scatterAdd(1, index, src), t.zeros([40, 70], { dtype: 'float64', backend: 'cpu' }).scatterAdd(1, cpu32(index), ref(src)), { rtol: 1e-6, atol: 1e-6 }, 'scatterAdd');
    const w = t.randn([50, 60], { requiresGrad: true });
    w.slice(0, 3, 47, 2).slice(1, 5, 60, 3).mul(2).sum().backward();
    const w64 = ref(w).requiresGrad_();
    w64.slice(0, 3, 47, 2).slice(1, 5, 60, 3).mul(2).sum().backward();
    assertClose(w.grad!, w64.grad!, { rtol: 0, atol: 0 }, 'slice gradient');
  });

  it('SGD (momentum, Nesterov, weight decay) and Adam/AdamW updates equal the cpu backend within float32 rounding', () => {
    for (const make of [
      (p: t.Tensor[]) => new SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
      (p: t.Tensor[]) => new SGD(p, { lr: 0.05 }),
      (p: t.Tensor[]) => new Adam(p, { lr: 0.01, weightDecay: 0.1 }),
    ]) {
      const start = t.randn([33, 17]);
      const grads = [t.randn([17, 33]).mT, t.randn([33, 17]), t.randn([33, 17])];
      const run = (backendName: string): number[] => {
        const p = t.tensor(Array.from(start.data()), { backend: backendName, requiresGrad: true }).reshape([33, 17]).detach().requiresGrad_();
        const opt = make([p]);
        for (const g of grads) {
          p.grad = t.tensor(Array.from(g.contiguous().data()), { backend: backendName }).reshape([33, 17]);
          opt.step();
        }
        return Array.from(p.data());
      };
      assertClose(run('webgpu'), run('cpu'), { rtol: 1e-5, atol: 1e-6 }, 'parameters after three steps');
    }
  });

  it('writes through views: a strided region, a contiguous one, and 1-byte elements', () => {
    const x = t.zeros([6, 8]);
    x.slice(0, 1, 5, 2).slice(1, 0, 8, 3).copy_(t.ones([2, 3]).mul(7));
    x.narrow(0, 5, 1).copy_(t.full([1, 8], 2));
    const c = t.zeros([6, 8], { backend: 'cpu' });
    c.slice(0, 1, 5, 2).slice(1, 0, 8, 3).copy_(t.ones([2, 3], { backend: 'cpu' }).mul(7));
    c.narrow(0, 5, 1).copy_(t.full([1, 8], 2, { backend: 'cpu' }));
    assert.deepEqual(Array.from(x.data()), Array.from(c.data()));
    const b = t.zeros([7], { dtype: 'bool' });
    b.narrow(0, 3, 2).copy_(t.ones([2], { dtype: 'bool' }));
    assert.deepEqual(Array.from(b.data()), [0, 0, 0, 1, 1, 0, 0]);
  });

  it('trains an MLP: five Adam steps give the cpu backend\'s losses within float32 rounding', () => {
    const losses = (backendName: string): number[] => {
      const prev = t.currentBackendName();
      t.setBackend(backendName);
      try {
        t.manualSeed(3);
        const model = new Sequential(new Linear(20, 64), new ReLU(), new Linear(64, 5));
        const x = t.randn([32, 20]);
        const y = t.randint(0, 5, [32]);
        const opt = new Adam(model.parameters(), { lr: 0.01 });
        const out: number[] = [];
        for (let i = 0; i < 5; i++) {
          opt.zeroGrad();
          const loss = t.crossEntropy(model.call(x), y);
          loss.backward();
          opt.step();
          out.push(loss.item());
        }
        return out;
      } finally {
        t.setBackend(prev);
      }
    };
    const gpu = losses('webgpu');
    assertClose(gpu, losses('cpu'), { rtol: 1e-5, atol: 1e-6 }, 'losses');
    assert.ok(gpu[4]! < gpu[0]!, `the loss falls: ${gpu}`);
  });

  it('a jitted training step stays on the GPU: the eager losses, and one read (the loss) per step', () => {
    const losses = (jit: boolean): { values: number[]; reads: number } => {
      t.manualSeed(5);
      const model = new Sequential(new Linear(12, 32), new ReLU(), new Linear(32, 3));
      const x = t.randn([16, 12]);
      const y = t.randint(0, 3, [16]);
      const opt = new Adam(model.parameters(), { lr: 0.01 });
      const step = (): t.Tensor => { opt.zeroGrad(); const loss = t.crossEntropy(model.call(x), y); loss.backward(); opt.step(); return loss; };
      const run = jit ? t.jit(step) : step;
      const values: number[] = [];
      let reads = 0;
      const readAll = backend!.readAll.bind(backend);
      for (let i = 0; i < 4; i++) {
        // Count the reads of the last step only (the first ones trace and compile).
        if (i === 3) backend!.readAll = (st) => { reads++; return readAll(st); };
        values.push(run().item());
      }
      delete (backend as { readAll?: unknown }).readAll;
      return { values, reads };
    };
    const eager = losses(false), compiled = losses(true);
    assertClose(compiled.values, eager.values, { rtol: 1e-5, atol: 1e-6 }, 'jit losses');
    assert.equal(compiled.reads, 1, 'reads in a compiled step');
  });

  it('jit writes into live tensors (whole or strided views) are copies on the GPU, not read back', () => {
    const big = t.zeros([4, 6]);
    const view = big.narrow(1, 1, 3);
    const whole = t.zeros([5]);
    const f = t.jit(() => {
      t.assign(view, view.add(1));
      t.assign(whole, whole.add(2));
      return whole.sum();
    });
    const readAll = backend!.readAll.bind(backend);
    let reads = 0;
    for (let i = 0; i < 3; i++) {
      if (i === 2) backend!.readAll = (st) => { reads++; return readAll(st); };
      f().item();
    }
    delete (backend as { readAll?: unknown }).readAll;
    assert.equal(reads, 1, 'reads in a compiled call: the result alone');
    assert.deepEqual(big.toArray(), Array.from({ length: 4 }, () => [0, 3, 3, 3, 0, 0]));
    assert.deepEqual(whole.toArray(), [6, 6, 6, 6, 6]);
  });

  it('an index out of range, found by the GPU, is reported by the next read, once, naming the op', () => {
    const x = t.randn([4, 5]);
    const bad = t.tensor([[0, 5]], { dtype: 'int32' });
    const out = x.gather(1, bad);
    assertThrowsWith(() => out.data(), 'gather', 'index 5', 'size 5');
    // Reported once: the backend goes on working.
    assert.deepEqual(Array.from(t.tensor([1, 2]).add(1).data()), [2, 3]);
  });

  it('a tensor larger than the GPU allows is refused at creation, naming its size and the limit', () => {
    const limit = backend!.device.info.maxStorageBufferBindingSize;
    assertThrowsWith(() => backend!.alloc('float32', Math.floor(limit / 4) + 1), 'float32', 'largest storage binding');
  });
});

describe('webgpu device errors', { skip: backend === undefined ? 'no WebGPU adapter' : false }, () => {
  it('a kernel that does not compile is reported at the next read with its label, and the device refuses further work', async () => {
    // A second device (its own thread), so that breaking it leaves the registered backend alone.
    const { createWebGPUBackend } = await import('../../../src/backend/webgpu/backend.js');
    const spare = createWebGPUBackend({ name: 'webgpu-spare' });
    const s = spare.fromArray('float32', new Float32Array([1, 2, 3]));
    spare.device.post({ op: 'run', wgsl: 'this is not WGSL', buffers: [(s.handle as { id: number }).id], grid: [1, 1], label: 'a broken kernel' });
    assertThrowsWith(() => spare.readAll(s), 'webgpu', 'a broken kernel');
    assertThrowsWith(() => spare.readAll(s), 'webgpu');
    spare.device.close();
  });
});
