import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';
import { SUGGESTED_PARALLEL_MIN_ELEMENTS } from '../../../src/backend/wasm/optimizer-kernel.js';
import type { OptimizerRule } from '../../../src/backend/backend.js';

// The generated optimizer kernels against a scalar float32 reference written here (Math.fround
// after every operation, which is exact float32 arithmetic for + − × ÷ √): bit for bit, for every
// rule and option combination, over gradient layouts that take each of the kernel's paths
// (contiguous f32x4 loads, gathered strided lanes, broadcast, rows with a stride, outer loops in JS)
// and sizes with a scalar tail.

const fr = Math.fround;

let seed = 11;
function uniform(lo: number, hi: number): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return fr(lo + (seed / 2 ** 32) * (hi - lo));
}
function values(n: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => uniform(lo, hi));
}

/** Value ranges of each state: second moments are positive; RMSprop's centered gradAvg stays small so that sq − ga² > 0. */
const STATE_RANGE: Record<string, [number, number]> = {
  expAvg: [-1, 1], expAvgSq: [0, 2], maxExpAvgSq: [0, 2], momentumBuffer: [-1, 1], squareAvg: [1, 2], gradAvg: [-0.5, 0.5], sum: [0, 3],
};

function stateNames(rule: OptimizerRule): string[] {
  switch (rule.kind) {
    case 'adam': return rule.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq'] : ['expAvg', 'expAvgSq'];
    case 'sgd': return rule.momentum !== 0 ? ['momentumBuffer'] : [];
    case 'rmsprop': return ['squareAvg', ...(rule.momentum > 0 ? ['momentumBuffer'] : []), ...(rule.centered ? ['gradAvg'] : [])];
    case 'adagrad': return ['sum'];
  }
}

/** One element's update in float32, on p (index 0) and the state values (in stateNames order). */
function referenceStep(rule: OptimizerRule, x: number[], grad: number): void {
  let p = x[0]!;
  let g = rule.maximize ? -grad : grad;
  switch (rule.kind) {
    case 'adam': {
      if (rule.decay !== 1) p = fr(p * fr(rule.decay));
      if (rule.weightDecay !== 0) g = fr(g + fr(fr(rule.weightDecay) * p));
      const m = fr(x[1]! + fr(fr(g - x[1]!) * fr(1 - rule.beta1)));
      let v = fr(fr(x[2]! * fr(rule.beta2)) + fr(fr(fr(1 - rule.beta2) * g) * g));
      x[1] = m;
      x[2] = v;
      if (rule.amsgrad) v = x[3] = Math.max(x[3]!, v);
      const denom = fr(fr(fr(Math.sqrt(v)) / fr(rule.biasCorrection2Sqrt)) + fr(rule.eps));
      x[0] = fr(p - fr(fr(rule.stepSize) * fr(m / denom)));
      return;
    }
    case 'sgd': {
      if (rule.weightDecay !== 0) g = fr(g + fr(fr(rule.weightDecay) * p));
      if (rule.momentum !== 0) {
        const buf = rule.firstStep ? g : fr(fr(x[1]! * fr(rule.momentum)) + fr(fr(1 - rule.dampening) * g));
        x[1] = buf;
        g = rule.nesterov ? fr(g + fr(fr(rule.momentum) * buf)) : buf;
      }
      x[0] = fr(p - fr(fr(rule.lr) * g));
      return;
    }
    case 'rmsprop': {
      if (rule.weightDecay !== 0) g = fr(g + fr(fr(rule.weightDecay) * p));
      const oma = fr(1 - rule.alpha);
      const sq = x[1] = fr(fr(x[1]! * fr(rule.alpha)) + fr(fr(oma * g) * g));
      let k = 2;
      const bufAt = rule.momentum > 0 ? k++ : -1;
      let avg: number;
      if (rule.centered) {
        const ga = x[k] = fr(x[k]! + fr(fr(g - x[k]!) * oma));
        avg = fr(fr(Math.sqrt(fr(sq - fr(ga * ga)))) + fr(rule.eps));
      } else {
        avg = fr(fr(Math.sqrt(sq)) + fr(rule.eps));
      }
      if (bufAt > 0) {
        const buf = x[bufAt] = fr(fr(x[bufAt]! * fr(rule.momentum)) + fr(g / avg));
        x[0] = fr(p - fr(fr(rule.lr) * buf));
      } else {
        x[0] = fr(p - fr(fr(rule.lr) * fr(g / avg)));
      }
      return;
    }
    case 'adagrad': {
      if (rule.weightDecay !== 0) g = fr(g + fr(fr(rule.weightDecay) * p));
      const acc = x[1] = fr(x[1]! + fr(g * g));
      x[0] = fr(p - fr(fr(rule.lr) * fr(g / fr(fr(Math.sqrt(acc)) + fr(rule.eps)))));
      return;
    }
  }
}

function combos<T extends Record<string, readonly unknown[]>>(axes: T): Array<{ [K in keyof T]: T[K][number] }> {
  let out: Array<Record<string, unknown>> = [{}];
  for (const [k, vs] of Object.entries(axes)) out = out.flatMap((o) => vs.map((v) => ({ ...o, [k]: v })));
  return out as Array<{ [K in keyof T]: T[K][number] }>;
}

const RULES: OptimizerRule[] = [
  ...combos({ amsgrad: [false, true], maximize: [false, true], decay: ['none', 'coupled', 'decoupled'] }).map(({ amsgrad, maximize, decay }): OptimizerRule => ({
    kind: 'adam', stepSize: 0.01 / (1 - 0.9 ** 3), biasCorrection2Sqrt: Math.sqrt(1 - 0.999 ** 3),
    decay: decay === 'decoupled' ? 1 - 0.01 * 0.1 : 1, weightDecay: decay === 'coupled' ? 0.1 : 0,
    beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad, maximize,
  })),
  ...combos({ maximize: [false, true], weightDecay: [0, 0.05], momentum: [0, 0.9], nesterov: [false, true], firstStep: [false, true], dampening: [0, 0.3] })
    .filter((o) => !o.nesterov || (o.momentum > 0 && o.dampening === 0))
    .map((o): OptimizerRule => ({ kind: 'sgd', lr: 0.1, ...o })),
  ...combos({ maximize: [false, true], weightDecay: [0, 0.05], momentum: [0, 0.9], centered: [false, true] })
    .map((o): OptimizerRule => ({ kind: 'rmsprop', lr: 0.01, alpha: 0.99, eps: 1e-8, ...o })),
  ...combos({ maximize: [false, true], weightDecay: [0, 0.05] }).map((o): OptimizerRule => ({ kind: 'adagrad', lr: 0.05, eps: 1e-10, ...o })),
];

/** Gradient layouts over a parameter of shape [7, 9] (63 elements: 15 vectors and a tail of 3), or [3, 4, 5]. */
const LAYOUTS: Array<{ name: string; shape: number[]; grad: () => t.Tensor }> = [
  { name: 'contiguous', shape: [7, 9], grad: () => t.tensor(values(63, -2, 2), { shape: [7, 9], backend: 'wasm' }) },
  { name: 'transposed', shape: [7, 9], grad: () => t.tensor(values(63, -2, 2), { shape: [9, 7], backend: 'wasm' }).mT },
  { name: 'broadcast row', shape: [7, 9], grad: () => t.tensor(values(9, -2, 2), { backend: 'wasm' }).expand([7, 9]) },
  { name: 'broadcast column', shape: [7, 9], grad: () => t.tensor(values(7, -2, 2), { shape: [7, 1], backend: 'wasm' }).expand([7, 9]) },
  { name: 'rows of a wider tensor', shape: [7, 9], grad: () => t.tensor(values(7 * 12, -2, 2), { shape: [7, 12], backend: 'wasm' }).narrow(1, 2, 9) },
  { name: '3-d permuted', shape: [3, 4, 5], grad: () => t.tensor(values(60, -2, 2), { shape: [5, 4, 3], backend: 'wasm' }).permute([2, 1, 0]) },
];

/** Runs `rule` on a parameter of `shape` with gradient `grad` through the backend and checks every element against the reference. */
function checkAgainstReference(rule: OptimizerRule, shape: number[], grad: t.Tensor): void {
  const n = shape.reduce((a, b) => a * b, 1);
  const names = stateNames(rule);
  // The parameter is a contiguous slice at an offset of a larger storage.
  const param = t.tensor(values(n + 8, -1, 1), { shape: [n + 8], backend: 'wasm' }).narrow(0, 5, n).reshape(shape);
  const state = Object.fromEntries(names.map((s) => [s, t.tensor(values(n, ...STATE_RANGE[s]!), { shape, backend: 'wasm' })]));
  const before = [param, ...names.map((s) => state[s]!)].map((x) => Float32Array.from(x.data()));
  const g = grad.data();
  const expected = before.map((a) => Float32Array.from(a));
  for (let i = 0; i < n; i++) {
    const x = expected.map((a) => a[i]!);
    referenceStep(rule, x, g[i]!);
    x.forEach((v, k) => { expected[k]![i] = v; });
  }
  const calls = wasmBackend.optimizerKernels.updates;
  assert.equal(wasmBackend.optimizerUpdate({ rule, param, grad, state }), true, `${JSON.stringify(rule)} was declined`);
  assert.equal(wasmBackend.optimizerKernels.updates, calls + 1);
  const got = [param, ...names.map((s) => state[s]!)].map((x) => Float32Array.from(x.data()));
  got.forEach((a, k) => {
    const what = `${JSON.stringify(rule)}: ${k === 0 ? 'param' : names[k - 1]}`;
    assert.notDeepEqual(a, before[k], `${what} did not change`);
    for (let i = 0; i < n; i++) {
      if (Object.is(a[i], expected[k]![i]) || (Number.isNaN(a[i]) && Number.isNaN(expected[k]![i]))) continue;
      assert.fail(`${what}[${i}]: ${a[i]} vs reference ${expected[k]![i]}`);
    }
  });
}

for (const layout of LAYOUTS) {
  test(`every optimizer rule matches the float32 reference bit for bit (gradient: ${layout.name})`, () => {
    for (const rule of RULES) checkAgainstReference(rule, layout.shape, layout.grad());
  });
}

test('a large update split over worker threads gives the same bits as the reference', () => {
  const previous = wasmBackend.pool.threads;
  const kernels = wasmBackend.optimizerKernels;
  const minElements = kernels.parallelMinElements;
  try {
    kernels.parallelMinElements = SUGGESTED_PARALLEL_MIN_ELEMENTS / 4;
    enableWasmThreads(2);
    wasmBackend.pool.waitUntilReady(10_000);
    // Chunks of 16384+ elements: several units and a last one with a scalar tail.
    const n = 40_003;
    const parallelBefore = wasmBackend.optimizerKernels.parallelUpdates;
    const rules = [RULES.find((r) => r.kind === 'adam' && r.amsgrad && r.weightDecay !== 0)!, RULES.find((r) => r.kind === 'rmsprop' && r.centered && r.momentum > 0)!];
    for (const rule of rules) checkAgainstReference(rule, [n], t.tensor(values(n, -2, 2), { backend: 'wasm' }));
    assert.equal(wasmBackend.optimizerKernels.parallelUpdates, parallelBefore + rules.length, 'the updates went to the pool');
    // A strided gradient stays on the calling thread.
    checkAgainstReference(rules[0]!, [200, 200], t.tensor(values(n - 3, -2, 2), { shape: [200, 200], backend: 'wasm' }).mT);
    assert.equal(wasmBackend.optimizerKernels.parallelUpdates, parallelBefore + rules.length);
    // By default (no threshold set here) an update of SUGGESTED_PARALLEL_MIN_ELEMENTS elements goes to the pool.
    kernels.parallelMinElements = minElements;
    assert.equal(minElements, SUGGESTED_PARALLEL_MIN_ELEMENTS, 'the default threshold');
    const atDefault = kernels.parallelUpdates;
    checkAgainstReference(rules[0]!, [SUGGESTED_PARALLEL_MIN_ELEMENTS], t.tensor(values(SUGGESTED_PARALLEL_MIN_ELEMENTS, -2, 2), { backend: 'wasm' }));
    assert.equal(kernels.parallelUpdates, atDefault + 1, 'a large update splits by default');
  } finally {
    kernels.parallelMinElements = minElements;
    enableWasmThreads(previous);
  }
});

test('optimizerUpdate declines what the kernels do not handle, writing nothing', () => {
  const rule: OptimizerRule = { kind: 'adagrad', lr: 0.1, weightDecay: 0, eps: 1e-10, maximize: false };
  const p = t.tensor([1, 2, 3, 4], { backend: 'wasm' });
  const sum = t.zeros([4], { backend: 'wasm' });
  const g = t.ones([4], { backend: 'wasm' });
  const cases: Array<[string, () => boolean]> = [
    ['a float64 parameter', () => wasmBackend.optimizerUpdate({ rule, param: t.tensor([1, 2, 3, 4], { dtype: 'float64', backend: 'wasm' }), grad: g, state: { sum } })],
    ['a float64 gradient', () => wasmBackend.optimizerUpdate({ rule, param: p, grad: t.ones([4], { dtype: 'float64', backend: 'wasm' }), state: { sum } })],
    ['a gradient on the cpu backend', () => wasmBackend.optimizerUpdate({ rule, param: p, grad: t.ones([4], { backend: 'cpu' }), state: { sum } })],
    ['a missing state tensor', () => wasmBackend.optimizerUpdate({ rule, param: p, grad: g, state: {} })],
    ['a state of another shape', () => wasmBackend.optimizerUpdate({ rule, param: p, grad: g, state: { sum: t.zeros([2, 2], { backend: 'wasm' }) } })],
    ['a gradient viewing the parameter', () => wasmBackend.optimizerUpdate({ rule, param: p, grad: p.detach(), state: { sum } })],
    ['a non-contiguous parameter', () => wasmBackend.optimizerUpdate({ rule, param: t.zeros([2, 2], { backend: 'wasm' }).mT, grad: g.reshape([2, 2]), state: { sum: sum.reshape([2, 2]) } })],
  ];
  for (const [what, run] of cases) assert.equal(run(), false, what);
  assert.deepEqual(Array.from(p.data()), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(sum.data()), [0, 0, 0, 0]);
});
