import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { wasmBackend } from '../../../src/backend/wasm/backend.js';
import { timings } from '../../../src/ops/nn/conv-algorithm.js';
import { primitivesIn } from '../../helpers/primitives.js';

// The per-shape choice between the direct kernel and im2col + GEMM: measured once per geometry on
// the wasm backend and cached, the measured path is the one that runs, other backends, dtypes and
// 3-D keep im2col + GEMM, and setConvAlgorithm overrides everything. Which path wins a measurement
// depends on the machine, so the tests check that a choice is made, kept and followed, not which.


function onBackend<T>(name: string, f: () => T): T {
  const previous = t.currentBackendName();
  t.setBackend(name);
  try {
    return f();
  } finally {
    t.setBackend(previous);
  }
}

test('on wasm the choice is measured once per geometry, cached, and followed (forward and weight gradient)', () => {
  onBackend('wasm', () => {
    t.setConvAlgorithm('auto');
    t.clearConvAlgorithmChoices();
    const x = t.randn([4, 1, 12, 12]), w = t.randn([8, 1, 3, 3], { requiresGrad: true }), b = t.randn([8]);
    const first = primitivesIn(() => t.conv2d(x, w, { padding: 1, bias: b }));
    const keys = [...t.convAlgorithmChoices().keys()];
    assert.equal(keys.length, 1, `one forward choice, got ${keys.join('; ')}`);
    assert.match(keys[0]!, /^wasm forward /);
    const choice = t.convAlgorithmChoices().get(keys[0]!)!;
    assert.ok(first.has(choice === 'direct' ? 'convDirect' : 'im2col'), `the ${choice} path ran (saw ${[...first].join(', ')})`);
    // Same geometry again: no new measurement, the same path.
    const again = primitivesIn(() => t.conv2d(x, w, { padding: 1, bias: b }).sum().backward());
    assert.ok(again.has(choice === 'direct' ? 'convDirect' : 'im2col'));
    const after = [...t.convAlgorithmChoices().keys()];
    if (choice === 'direct') {
      // convDirect's vjp chose the weight-gradient algorithm too.
      assert.equal(after.length, 2);
      const wg = after.find((k) => k.startsWith('wasm weightGrad '))!;
      assert.ok(again.has(t.convAlgorithmChoices().get(wg) === 'direct' ? 'convWeightGrad' : 'matmul'));
    } else {
      assert.equal(after.length, 1, 'the im2col path differentiates through its primitives, no second choice');
    }
    // Another geometry is measured on its own.
    t.conv2d(x, t.randn([8, 1, 3, 3]), { padding: 0 });
    assert.equal(t.convAlgorithmChoices().size, after.length + 1);
  });
});

test('measuring frees its scratch tensors', () => {
  const attrs = { kernel: [3, 3], stride: [1, 1], dilation: [1, 1], pads: [[1, 1], [1, 1]] as [number, number][], groups: 1 };
  const problem = { backend: wasmBackend, dtype: 'float32' as const, inputShape: [2, 2, 9, 9], outChannels: 4, bias: true, attrs };
  // The first runs compile modules (kept, with their bytes in the heap for the workers).
  timings('forward', problem);
  timings('weightGrad', problem);
  const before = wasmBackend.heap.stats().bytesInUse;
  for (const pass of ['forward', 'weightGrad'] as const) {
    const r = timings(pass, problem);
    assert.ok(r.direct >= 0 && r.im2col >= 0 && Number.isFinite(r.direct + r.im2col));
  }
  assert.equal(wasmBackend.heap.stats().bytesInUse, before);
});

test('other backends, float64 and 3-D keep im2col + GEMM without measuring', () => {
  t.setConvAlgorithm('auto');
  t.clearConvAlgorithmChoices();
  const cases: [string, () => void][] = [
    ['cpu float32', () => onBackend('cpu', () => t.conv2d(t.randn([2, 1, 8, 8]), t.randn([4, 1, 3, 3])))],
    ['wasm float64', () => onBackend('wasm', () => t.conv2d(t.randn([2, 1, 8, 8], { dtype: 'float64' }), t.randn([4, 1, 3, 3], { dtype: 'float64' })))],
    ['wasm 3-D', () => onBackend('wasm', () => t.conv3d(t.randn([1, 1, 4, 4, 4]), t.randn([2, 1, 2, 2, 2])))],
  ];
  for (const [name, f] of cases) {
    const seen = primitivesIn(f);
    assert.ok(seen.has('im2col') && !seen.has('convDirect'), `${name}: im2col + GEMM (saw ${[...seen].join(', ')})`);
  }
  assert.equal(t.convAlgorithmChoices().size, 0);
});

test('setConvAlgorithm forces either path on any backend and rejects unknown names', () => {
  const previous = t.setConvAlgorithm('direct');
  try {
    for (const backend of ['cpu', 'wasm']) {
      const seen = primitivesIn(() => onBackend(backend, () => t.conv1d(t.randn([2, 3, 10]), t.randn([4, 3, 3]))));
      assert.ok(seen.has('convDirect') && !seen.has('im2col'), backend);
    }
    assert.equal(t.setConvAlgorithm('im2col'), 'direct');
    const seen = primitivesIn(() => onBackend('wasm', () => t.conv1d(t.randn([2, 1, 10]), t.randn([4, 1, 3]))));
    assert.ok(seen.has('im2col') && !seen.has('convDirect'));
    assert.throws(() => t.setConvAlgorithm('winograd' as 'direct'), /'winograd' is not an algorithm; use 'direct', 'im2col' or 'auto'/);
  } finally {
    t.setConvAlgorithm(previous);
  }
});
