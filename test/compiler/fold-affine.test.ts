// Inference batchnorm folding (src/compiler/passes/fold-affine.ts) into both convolution paths of
// ops/nn: the direct `convDirect` primitive (scale into the weights, shift into the conv's bias)
// and im2col + matmul (scale into the GEMM weights, `+ shift` left in the kernel), on every
// backend under test, each optimized graph run by the compiled replay (cpu: the planned executor;
// wasm: the interpreter with the wasm fused kernels) and by the interpreter against the original.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { trace, interpret, type Graph } from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from './helpers.js';

after(() => t.setConvAlgorithm('auto'));

interface ConvCase {
  name: string;
  dims: 1 | 2;
  cIn: number;
  cOut: number;
  groups: number;
  bias: boolean;
  relu: boolean;
  stride: number;
  padding: number;
}

const cases: ConvCase[] = [
  { name: 'conv2d 1->6 3x3 + bias + BN + ReLU', dims: 2, cIn: 1, cOut: 6, groups: 1, bias: true, relu: true, stride: 1, padding: 1 },
  { name: 'conv2d 4->6 groups=2, no bias, + BN (no ReLU)', dims: 2, cIn: 4, cOut: 6, groups: 2, bias: false, relu: false, stride: 1, padding: 0 },
  { name: 'conv1d 3->6 groups=3 stride 2 + bias + BN + ReLU', dims: 1, cIn: 3, cOut: 6, groups: 3, bias: true, relu: true, stride: 2, padding: 1 },
];

const ops = (g: Graph): string[] => g.nodes.map((n) => n.op);
const bodyOps = (n: Graph['nodes'][number]): string[] =>
  (n.attrs as { spec: C.FusedSpec }).spec.body.flatMap((e) => (e.kind === 'op' ? [e.op] : []));

/** conv (+bias) → inference batchnorm (→ relu), traced with the given convolution algorithm forced. */
function traced(c: ConvCase, algorithm: t.ConvAlgorithm): { graph: Graph; inputs: () => t.Tensor[] } {
  const spatial = c.dims === 2 ? [7, 6] : [9];
  const w = t.randn([c.cOut, c.cIn / c.groups, ...spatial.map(() => 3)]).requiresGrad_();
  const b = c.bias ? t.randn([c.cOut]).requiresGrad_() : undefined;
  const mean = t.randn([c.cOut]), variance = t.add(t.rand([c.cOut]), 0.5);
  const gamma = t.randn([c.cOut]).requiresGrad_(), beta = t.randn([c.cOut]).requiresGrad_();
  const conv = c.dims === 2 ? t.conv2d : t.conv1d;
  const f = (x: t.Tensor): t.Tensor => {
    const y = t.batchNorm(conv(x, w, { ...(b ? { bias: b } : {}), groups: c.groups, stride: c.stride, padding: c.padding }), mean, variance,
      { weight: gamma, bias: beta, training: false });
    return c.relu ? t.relu(y) : y;
  };
  const inputs = (): t.Tensor[] => [t.randn([2, c.cIn, ...spatial])];
  const previous = t.setConvAlgorithm(algorithm);
  try {
    return { graph: trace(f, inputs()).graph, inputs };
  } finally {
    t.setConvAlgorithm(previous);
  }
}

forEachBackend('fold-affine: conv + batchnorm folding for inference', (backend) => {
  for (const c of cases) {
    describe(c.name, () => {
      it('direct convolution: the scale goes into the weights and the shift into the conv bias', () => {
        t.manualSeed(3);
        const { graph, inputs } = traced(c, 'direct');
        assert.ok(ops(graph).includes('convDirect'), `traced with the direct algorithm: ${ops(graph).join(' ')}`);
        const { graph: g2, reports } = C.runPipeline(graph, C.inferencePasses());
        const changes = reports.find((r) => r.pass === 'fold-affine')!.changes;
        assert.equal(changes.length, 1, changes.join('\n'));
        assert.match(changes[0]!, /folded into the weights and bias of convDirect/);
        const conv = g2.nodes.find((n) => n.op === 'convDirect')!;
        assert.equal(conv.inputs.length, 3, 'the shift is the conv\'s bias (created when the conv had none)');
        if (c.relu) {
          assert.deepEqual(ops(g2), ['convDirect', 'fusedElementwise'], g2.toString());
          assert.deepEqual(bodyOps(g2.nodes[1]!), ['relu'], 'only the relu remains after the conv');
        } else {
          assert.deepEqual(ops(g2), ['convDirect'], `the batchnorm's kernel is gone: ${g2.toString()}`);
        }
        // Without the fold the batchnorm stays a kernel of its own, with its arithmetic.
        const unfolded = C.runPipeline(graph, C.inferencePasses().filter((p) => p !== C.foldAffine)).graph;
        assert.deepEqual(ops(unfolded), ['convDirect', 'fusedElementwise'], unfolded.toString());
        assert.ok(bodyOps(unfolded.nodes[1]!).length >= 4, `sub, mul, mul, add (+ relu): ${unfolded.toString()}`);
        assertFoldedEqualsOriginal(graph, g2, inputs, backend);
      });

      it('im2col + matmul: the scale goes into the GEMM weights', () => {
        t.manualSeed(4);
        const { graph, inputs } = traced(c, 'im2col');
        assert.ok(!ops(graph).includes('convDirect'));
        const { graph: g2, reports } = C.runPipeline(graph, C.inferencePasses());
        assert.match(reports.find((r) => r.pass === 'fold-affine')!.changes.join('\n'), /folded into the weights of matmul/);
        assertFoldedEqualsOriginal(graph, g2, inputs, backend);
      });
    });
  }

  it('a scale that varies within an output channel is not folded into convDirect', () => {
    t.manualSeed(5);
    const w = t.randn([4, 1, 3, 3]), b = t.randn([4]);
    const perPixel = t.randn([1, 1, 5, 5]);
    const f = (x: t.Tensor): t.Tensor => t.relu(t.mul(t.conv2d(x, w, { bias: b, padding: 1 }), perPixel));
    const inputs = (): t.Tensor[] => [t.randn([2, 1, 5, 5])];
    const previous = t.setConvAlgorithm('direct');
    let graph: Graph;
    try { graph = trace(f, inputs()).graph; } finally { t.setConvAlgorithm(previous); }
    const { graph: g2, reports } = C.runPipeline(graph, C.inferencePasses());
    assert.deepEqual(reports.find((r) => r.pass === 'fold-affine')!.changes, []);
    assert.deepEqual(bodyOps(g2.nodes.find((n) => n.op === 'fusedElementwise')!), ['mul', 'relu']);
    assertFoldedEqualsOriginal(graph, g2, inputs, backend);
  });
});

/** The folded graph equals the original on fresh random inputs: interpreted, and compiled (the replay jit uses on this backend). */
function assertFoldedEqualsOriginal(original: Graph, folded: Graph, inputs: () => t.Tensor[], backend: string): void {
  const compiled = C.compile(folded, { passes: [] });
  for (let trial = 0; trial < 2; trial++) {
    const ins = inputs();
    assert.equal(ins[0]!.backend, backend);
    const [ref] = interpret(original, ins, { applyWrites: false });
    assertClose(interpret(folded, ins, { applyWrites: false })[0]!, ref!, 1e-4, 'folded graph, interpreted');
    assertClose(compiled.run(ins)[0]!, ref!, 1e-4, `folded graph, compiled (${compiled.executor ? 'planned executor' : 'interpreter + wasm kernels'})`);
  }
}
