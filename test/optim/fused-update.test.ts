import { test, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as t from '../../src/index.js';
import { Adagrad, Adam, AdamW, RMSprop, SGD, type Optimizer, type BaseOptions } from '../../src/optim/index.js';
import { Parameter } from '../../src/nn/module.js';
import { wasmBackend } from '../../src/backend/wasm/backend.js';
import { forEachBackend } from '../helpers/backends.js';

// float32 parameters: on the wasm backend the whole update runs in a generated SIMD kernel
// (Backend.optimizerUpdate, float32 arithmetic like PyTorch's); on cpu in the JS loop with float64
// locals. Both must follow the float64 trajectory of the same optimizer to float32 accuracy, for
// every option combination, with any gradient layout, and resume bit-identically from a state dict.

type Make = (params: t.Tensor[]) => Optimizer<BaseOptions>;
const as = (o: unknown) => o as Optimizer<BaseOptions>;

function combos<T extends Record<string, readonly unknown[]>>(axes: T): Array<{ [K in keyof T]: T[K][number] }> {
  let out: Array<Record<string, unknown>> = [{}];
  for (const [k, vs] of Object.entries(axes)) out = out.flatMap((o) => vs.map((v) => ({ ...o, [k]: v })));
  return out as Array<{ [K in keyof T]: T[K][number] }>;
}

const OPTIMIZERS: Array<[string, Make]> = [
  ...combos({ amsgrad: [false, true], maximize: [false, true], weightDecay: [0, 0.1], decoupled: [false, true] }).map(
    ({ decoupled, ...o }): [string, Make] => [`${decoupled ? 'AdamW' : 'Adam'} ${JSON.stringify(o)}`,
      (ps) => as(decoupled ? new AdamW(ps, { lr: 0.01, ...o }) : new Adam(ps, { lr: 0.01, ...o }))]),
  ...combos({ momentum: [0, 0.9], dampening: [0, 0.3], nesterov: [false, true], weightDecay: [0, 0.05], maximize: [false, true] })
    .filter((o) => !o.nesterov || (o.momentum > 0 && o.dampening === 0))
    .map((o): [string, Make] => [`SGD ${JSON.stringify(o)}`, (ps) => as(new SGD(ps, { lr: 0.05, ...o }))]),
  ...combos({ centered: [false, true], momentum: [0, 0.5], weightDecay: [0, 0.05], maximize: [false, true] })
    .map((o): [string, Make] => [`RMSprop ${JSON.stringify(o)}`, (ps) => as(new RMSprop(ps, { lr: 0.01, alpha: 0.9, ...o }))]),
  ...combos({ lrDecay: [0, 0.1], weightDecay: [0, 0.05], maximize: [false, true] })
    .map((o): [string, Make] => [`Adagrad ${JSON.stringify(o)}`, (ps) => as(new Adagrad(ps, { lr: 0.1, initialAccumulatorValue: 0.1, ...o }))]),
];

let seed = 5;
function randomValues(n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return Math.fround(((seed / 2 ** 32) * 2 - 1) * scale);
  });
}

const SHAPE = [5, 7]; // 35 elements: SIMD lanes and a scalar tail
const STEPS = 6;

/** float32 values, as float32 and float64 tensors of the current backend (the same numbers). */
function both(values: number[], shape: number[]): [t.Tensor, t.Tensor] {
  return [t.tensor(Float64Array.from(values), { shape, dtype: 'float32' }), t.tensor(Float64Array.from(values), { shape, dtype: 'float64' })];
}

function assertClose(got: t.Tensor, want: t.Tensor, tol: number, what: string): void {
  const a = got.data(), b = want.data();
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < b.length; i++) {
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)), `${what}[${i}]: float32 ${a[i]} vs float64 ${b[i]}`);
  }
}

/** Runs STEPS steps on a float32 and a float64 copy of one parameter; gradients come from `gradOf(step, dtype)`. */
function trajectories(make: Make, gradOf: (step: number, dtype: 'float32' | 'float64') => t.Tensor) {
  const [p32, p64] = both(randomValues(35), SHAPE).map((x) => new Parameter(x));
  const o32 = make([p32!]), o64 = make([p64!]);
  const fusedBefore = wasmBackend.optimizerKernels.updates;
  for (let s = 0; s < STEPS; s++) {
    p32!.grad = gradOf(s, 'float32');
    p64!.grad = gradOf(s, 'float64');
    o32.step();
    o64.step();
  }
  return { p32: p32!, p64: p64!, o32, o64, fused: wasmBackend.optimizerKernels.updates - fusedBefore };
}

forEachBackend('float32 optimizer steps follow the float64 trajectory', (backend) => {
  const grads = Array.from({ length: STEPS }, () => randomValues(35, 2));
  for (const [name, make] of OPTIMIZERS) {
    it(`${name}: parameter and state within float32 accuracy after ${STEPS} steps`, () => {
      const { p32, p64, o32, o64, fused } = trajectories(make, (s, dtype) => t.tensor(Float64Array.from(grads[s]!), { shape: SHAPE, dtype }));
      assert.equal(fused, backend === 'wasm' ? STEPS : 0, 'steps run by the fused kernel');
      assert.equal(p32.dtype, 'float32');
      assertClose(p32, p64, 2e-5, 'param');
      const s32 = o32.state.get(p32)!, s64 = o64.state.get(p64)!;
      assert.deepEqual(Object.keys(s32).sort(), Object.keys(s64).sort());
      for (const [k, v] of Object.entries(s64)) {
        const mine = s32[k]!;
        if (v instanceof t.Tensor) {
          assert.ok(mine instanceof t.Tensor && mine.dtype === 'float32', `state ${k} stays a float32 tensor`);
          assertClose(mine, v, 2e-5, `state ${k}`);
        } else {
          assert.equal(mine, v, `counter ${k}`);
        }
      }
    });
  }

  it('a gradient that is a broadcast, transposed or sliced view is read through its strides', () => {
    const views: Array<[string, (s: number, dtype: 'float32' | 'float64') => t.Tensor]> = [
      ['broadcast row', (s, dtype) => t.tensor(grads[s]!.slice(0, 7), { dtype }).expand(SHAPE)],
      ['broadcast column', (s, dtype) => t.tensor(Float64Array.from(grads[s]!.slice(0, 5)), { shape: [5, 1], dtype }).expand(SHAPE)],
      ['transposed', (s, dtype) => t.tensor(Float64Array.from(grads[s]!), { shape: [7, 5], dtype }).mT],
      ['sliced', (s, dtype) => t.tensor(Float64Array.from([...grads[s]!, ...grads[s]!.slice(0, 10)]), { shape: [5, 9], dtype }).narrow(1, 1, 7)],
    ];
    for (const [what, gradOf] of views) {
      for (const [name, make] of [OPTIMIZERS[3]!, OPTIMIZERS.find(([n]) => n.startsWith('SGD {"momentum":0.9'))!]) {
        const { p32, p64, fused } = trajectories(make, gradOf);
        assert.equal(fused, backend === 'wasm' ? STEPS : 0, `${what}, ${name}: steps run by the fused kernel`);
        assertClose(p32, p64, 2e-5, `${what}, ${name}: param`);
      }
    }
  });

  it('stopping after 2 steps and restoring the state dict continues bit-identically (float32)', () => {
    for (const [name, make] of [OPTIMIZERS[5]!, OPTIMIZERS.find(([n]) => n.startsWith('SGD {"momentum":0.9'))!, OPTIMIZERS.find(([n]) => n.startsWith('RMSprop {"centered":true,"momentum":0.5'))!]) {
      const init = randomValues(35);
      const p = new Parameter(t.tensor(Float64Array.from(init), { shape: SHAPE, dtype: 'float32' }));
      const first = make([p]);
      const run = (o: Optimizer<BaseOptions>, q: t.Tensor, from: number, to: number) => {
        const out: number[][] = [];
        for (let s = from; s < to; s++) {
          q.grad = t.tensor(Float64Array.from(grads[s]!), { shape: SHAPE, dtype: 'float32' });
          o.step();
          out.push(Array.from(q.data()));
        }
        return out;
      };
      const fusedBefore = wasmBackend.optimizerKernels.updates;
      run(first, p, 0, 2);
      const saved = first.stateDict();
      const p2 = new Parameter(p.detach().clone());
      const second = make([p2]);
      second.loadStateDict(saved);
      const resumed = run(second, p2, 2, 5);
      assert.deepEqual(run(first, p, 2, 5), resumed, name);
      assert.equal(wasmBackend.optimizerKernels.updates - fusedBefore, backend === 'wasm' ? 8 : 0, `${name}: steps run by the fused kernel`);
    }
  });
});

test('SGD momentum: a step the wasm kernel declines (float64 gradient) runs the JS loop, and later fused steps continue from its buffer', () => {
  const init = randomValues(35), g0 = randomValues(35, 2), g1 = randomValues(35, 2);
  const opts = { lr: 0.05, momentum: 0.9, dampening: 0.1 };
  const p = new Parameter(t.tensor(Float64Array.from(init), { shape: SHAPE, dtype: 'float32', backend: 'wasm' }));
  const ref = new Parameter(t.tensor(Float64Array.from(init), { shape: SHAPE, dtype: 'float64', backend: 'wasm' }));
  const opt = new SGD([p], opts), refOpt = new SGD([ref], opts);
  const before = wasmBackend.optimizerKernels.updates;
  p.grad = t.tensor(Float64Array.from(g0), { shape: SHAPE, dtype: 'float64', backend: 'wasm' });
  ref.grad = t.tensor(Float64Array.from(g0), { shape: SHAPE, dtype: 'float64', backend: 'wasm' });
  opt.step();
  refOpt.step();
  assert.equal(wasmBackend.optimizerKernels.updates, before, 'the float64 gradient was declined');
  const buf = opt.state.get(p)!.momentumBuffer;
  assert.ok(buf instanceof t.Tensor && buf.dtype === 'float32', 'the JS loop created the momentum buffer');
  p.grad = t.tensor(Float64Array.from(g1), { shape: SHAPE, dtype: 'float32', backend: 'wasm' });
  ref.grad = t.tensor(Float64Array.from(g1), { shape: SHAPE, dtype: 'float64', backend: 'wasm' });
  opt.step();
  refOpt.step();
  assert.equal(wasmBackend.optimizerKernels.updates, before + 1, 'the float32 step was fused');
  assertClose(p, ref, 2e-6, 'param');
  assertClose(opt.state.get(p)!.momentumBuffer as t.Tensor, refOpt.state.get(ref)!.momentumBuffer as t.Tensor, 2e-6, 'buffer');
});

// PyTorch's own float32 trajectories (fixtures/generate-float32.py: torch.optim on a float32
// parameter, updated in float32 arithmetic; its kernels may fuse a multiply-add, so a few ulps
// apart): to 1e-6 relative on both backends, maximize included.
const ref = JSON.parse(readFileSync(new URL('./fixtures/optim-float32-reference.json', import.meta.url), 'utf8')) as {
  p0: number[];
  grads: number[][];
  optimizers: Record<string, { options: { kind: string } & Record<string, unknown>; params: number[][] }>;
};

forEachBackend('float32 trajectories match PyTorch float32', (backend) => {
  for (const [name, { options, params: expected }] of Object.entries(ref.optimizers)) {
    it(`${name} to 1e-6 over ${expected.length} steps`, () => {
      const { kind, ...opts } = options;
      const o = opts as never;
      const p = new Parameter(t.tensor(Float32Array.from(ref.p0)));
      const opt = kind === 'SGD' ? new SGD([p], o) : kind === 'Adam' ? new Adam([p], o) : kind === 'AdamW' ? new AdamW([p], o)
        : kind === 'RMSprop' ? new RMSprop([p], o) : new Adagrad([p], o);
      const fusedBefore = wasmBackend.optimizerKernels.updates;
      expected.forEach((want, s) => {
        p.grad = t.tensor(Float32Array.from(ref.grads[s]!));
        opt.step();
        const got = p.data();
        want.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) <= 1e-6 * Math.max(1, Math.abs(v)), `${name} step ${s} [${i}]: ${got[i]} vs ${v}`));
      });
      assert.equal(wasmBackend.optimizerKernels.updates - fusedBefore, backend === 'wasm' ? expected.length : 0, 'steps run by the fused kernel');
    });
  }
});
