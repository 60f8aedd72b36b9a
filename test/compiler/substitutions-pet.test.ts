import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { Graph, interpret } from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { petConvSplit, splitConvRows } from '../../src/compiler/substitutions/index.js';
import { pinBackend } from '../helpers/backends.js';

pinBackend('cpu');

function convGraph(x: number[], w: number[], pads: [number, number][], bias: boolean, dtype: 'float32' | 'float64'): Graph {
  const g = new Graph();
  const xi = g.addInput(x, dtype), wi = g.addInput(w, dtype);
  const ins = [xi, wi, ...(bias ? [g.addInput([w[0]!], dtype)] : [])];
  const ho = x[2]! + pads[0]![0] + pads[0]![1] - w[2]! + 1, wo = x[3]! + pads[1]![0] + pads[1]![1] - w[3]! + 1;
  const [y] = g.addNode('convDirect', ins, { kernel: [w[2]!, w[3]!], stride: [1, 1], dilation: [1, 1], pads, groups: 1 }, [{ shape: [x[0]!, w[0]!, ho, wo], dtype }]);
  g.outputs = [y!];
  return g;
}

const cases: { x: number[]; w: number[]; pads: [number, number][]; bias: boolean }[] = [
  { x: [2, 3, 8, 6], w: [4, 3, 3, 3], pads: [[1, 1], [1, 1]], bias: true },
  { x: [1, 2, 12, 5], w: [3, 2, 5, 3], pads: [[2, 2], [0, 0]], bias: false },
  { x: [3, 1, 10, 4], w: [2, 1, 3, 1], pads: [[0, 2], [0, 0]], bias: true },
  { x: [2, 2, 6, 6], w: [2, 2, 1, 3], pads: [[0, 0], [1, 1]], bias: false },
];

test('PET conv split: one conv over the stacked row halves + a correction conv equals the original exactly', () => {
  for (const c of cases) {
    for (const dtype of ['float64', 'float32'] as const) {
      const g = convGraph(c.x, c.w, c.pads, c.bias, dtype);
      const { graph, changes } = petConvSplit(g);
      assert.equal(changes.length, 1, JSON.stringify(c));
      const convs = graph.nodes.filter((n) => n.op === 'convDirect');
      const pt = c.pads[0]![0], pb = c.pads[0]![1];
      assert.equal(convs.length, pt + pb === 0 ? 1 : 2);
      assert.equal(graph.value(convs[0]!.inputs[0]!).shape[0], 2 * c.x[0]!);
      for (let trial = 0; trial < 3; trial++) {
        const ins = g.inputs.map((id) => t.randn([...g.value(id).shape], { dtype }));
        const a = interpret(g, ins)[0]!.data(), b = interpret(graph, ins)[0]!.data();
        assert.equal(a.length, b.length);
        for (let i = 0; i < a.length; i++) assert.equal(b[i], a[i], `${JSON.stringify(c)} ${dtype} element ${i}`);
      }
    }
  }
});

test('PET conv split: without the correction the transformed conv is wrong exactly on the boundary rows', () => {
  const c = cases[0]!;
  const g = convGraph(c.x, c.w, c.pads, c.bias, 'float64');
  const { graph } = petConvSplit(g);
  // Drop the correction: take the halves' own (partially wrong) boundary rows instead.
  const y = graph.nodes.find((n) => n.op === 'convDirect' && graph.value(n.inputs[0]!).shape[0] === 2 * c.x[0]!)!.outputs[0]!;
  const h = graph.clone();
  const n = c.x[0]!, s = c.x[2]! / 2;
  const [top] = h.addNode('slice', [y], { starts: [0, 0, 0, 0], steps: [1, 1, 1, 1], sizes: [n, c.w[0]!, s, c.x[3]!] }, [{ shape: [n, c.w[0]!, s, c.x[3]!], dtype: 'float64' }]);
  const [bot] = h.addNode('slice', [y], { starts: [n, 0, 0, 0], steps: [1, 1, 1, 1], sizes: [n, c.w[0]!, s, c.x[3]!] }, [{ shape: [n, c.w[0]!, s, c.x[3]!], dtype: 'float64' }]);
  const [cat] = h.addNode('cat', [top!, bot!], { axis: 2 }, [{ shape: [n, c.w[0]!, 2 * s, c.x[3]!], dtype: 'float64' }]);
  h.outputs = [cat!];
  const x = g.inputs.map((id) => t.randn([...g.value(id).shape], { dtype: 'float64' }));
  const ref = interpret(g, x)[0]!, got = interpret(h, x)[0]!;
  const [, , H, W] = ref.shape as [number, number, number, number];
  const a = ref.data(), b = got.data();
  const wrongRows = new Set<number>();
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) wrongRows.add(Math.floor(i / W) % H);
  assert.deepEqual([...wrongRows].sort(), [s - 1, s]); // pads (1, 1): rows [s - pb, s + pt)
});

test('PET conv split refuses ineligible convolutions and runs as a pass', () => {
  const odd = convGraph([1, 1, 7, 4], [1, 1, 3, 3], [[1, 1], [1, 1]], false, 'float64');
  assert.throws(() => splitConvRows(odd, 0), /odd number of rows/);
  assert.equal(petConvSplit(odd).changes.length, 0);
  const valid = convGraph([1, 1, 8, 4], [1, 1, 3, 3], [[0, 0], [0, 0]], false, 'float64');
  assert.throws(() => splitConvRows(valid, 0), /not "same"/);
  const g = convGraph([1, 2, 8, 8], [2, 2, 3, 3], [[1, 1], [1, 1]], true, 'float64');
  const { graph, reports } = C.runPipeline(g, [C.substitutions.convSplitPass()]);
  assert.equal(reports[0]!.changes.length, 1);
  const x = g.inputs.map((id) => t.randn([...g.value(id).shape], { dtype: 'float64' }));
  const a = interpret(g, x)[0]!.data(), b = interpret(graph, x)[0]!.data();
  assert.deepEqual(Array.from(b), Array.from(a));
});
