// Every compiler pass on graphs with random nodes: draws are impure, so no pass folds, merges,
// drops or reorders them, and an optimized graph run from a seed gives what the eager code gives.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { trace, interpret, cond, type Graph } from '../../src/index.js';
import * as C from '../../src/compiler/index.js';
import { isImpureNode } from '../../src/graph/graph-ops.js';
import { forEachBackend } from '../helpers/backends.js';

/** The random nodes of g in order, as `op[shape]` (nested graphs of cond/while included, marked). */
function draws(g: Graph): string[] {
  const out: string[] = [];
  for (const n of g.nodes) {
    if (n.op.startsWith('random')) out.push(`${n.op}[${(n.attrs as { shape: number[] }).shape.join(',')}]`);
    for (const v of Object.values(n.attrs as object ?? {})) if (v instanceof t.Graph) out.push(...draws(v).map((d) => `${n.op}:${d}`));
  }
  return out;
}

/** fn's outputs eagerly from `seed`, and g's outputs run (interpreted, or by `run`) from the same seed. */
function assertRunsLikeEager(fn: (...xs: t.Tensor[]) => t.Tensor[], g: Graph, inputs: t.Tensor[], what: string,
  run: (g: Graph, xs: t.Tensor[]) => t.Tensor[] = (gr, xs) => interpret(gr, xs)): void {
  for (const seed of [1, 2]) {
    t.manualSeed(seed);
    const eager = fn(...inputs).map((y) => Array.from(y.data()));
    const eagerState = t.defaultGenerator.getState();
    t.manualSeed(seed);
    const got = run(g, inputs).map((y) => Array.from(y.data()));
    assert.deepEqual(got, eager, `${what}: values from seed ${seed}`);
    assert.deepEqual(t.defaultGenerator.getState(), eagerState, `${what}: generator state after the run`);
  }
}

forEachBackend('compiler passes on random nodes', (backend) => {
  const f64 = { dtype: 'float64' as const };

  it('constant folding leaves draws (and ops on them) in the graph', () => {
    const fn = (): t.Tensor[] => [t.add(t.rand([4], f64), t.mul(t.full([4], 2, f64), 3)), t.dropout(t.full([4], 1, f64), 0.5)];
    const { graph } = trace(fn, []);
    const { graph: folded, changes } = C.constantFold.run(graph);
    assert.ok(changes.some((c) => /fold: mul/.test(c)), 'the constant product is folded');
    assert.deepEqual(draws(folded), ['randomUniform[4]', 'randomUniform[4]']);
    assert.ok(!changes.some((c) => /random/.test(c)), changes.join('\n'));
    assertRunsLikeEager(fn, folded, [], 'constant-fold');
  });

  it('CSE keeps two identical rand calls as two different tensors', () => {
    const fn = (): t.Tensor[] => [t.rand([6], f64), t.rand([6], f64), t.sub(t.rand([6], f64), t.rand([6], f64))];
    const { graph } = trace(fn, []);
    const { graph: g2, changes } = C.cse.run(graph);
    assert.deepEqual(draws(g2), ['randomUniform[6]', 'randomUniform[6]', 'randomUniform[6]', 'randomUniform[6]'], changes.join('\n'));
    t.manualSeed(3);
    const [a, b, d] = interpret(g2, []).map((y) => Array.from(y.data()));
    assert.notDeepEqual(a, b);
    assert.ok(d!.some((v) => v !== 0), 'rand - rand is not folded to zeros');
    assertRunsLikeEager(fn, g2, [], 'cse');
  });

  it('DCE keeps an unused draw, so the draws after it take the eager numbers', () => {
    const fn = (x: t.Tensor): t.Tensor[] => {
      t.randn([5], f64);
      t.exp(x);
      return [t.add(x, t.randn([3], f64))];
    };
    const x = t.tensor([1, 2, 3], f64);
    const { graph } = trace(fn, [x]);
    const { graph: g2, changes } = C.dce.run(graph);
    assert.match(changes.join('\n'), /removed exp/, 'pure dead work still goes');
    assert.deepEqual(draws(g2), ['randomNormal[5]', 'randomNormal[3]']);
    assertRunsLikeEager(fn, g2, [x], 'dce');
  });

  it('elementwise fusion and matmul epilogues keep draws as separate nodes in their order', () => {
    const w = t.randn([4, 3], f64);
    const fn = (x: t.Tensor): t.Tensor[] => {
      const h = t.dropout(t.relu(t.add(t.matmul(x, w), t.randn([3], f64))), 0.25);
      return [t.mul(t.add(h, t.rand([2, 3], f64)), t.uniform([2, 3], -1, 1, f64))];
    };
    const x = t.randn([2, 4], f64);
    const { graph } = trace(fn, [x]);
    const before = draws(graph);
    const fused = C.fuseElementwise.run(graph).graph;
    assert.ok(fused.nodes.some((n) => n.op === 'fusedElementwise'));
    assert.deepEqual(draws(fused), before);
    const epi = C.matmulEpilogue.run(fused).graph;
    assert.deepEqual(draws(epi), before);
    assertRunsLikeEager(fn, epi, [x], 'fusion');
  });

  it('merge-matmuls keeps a drawing cond before a later draw when it delays the cond after the merged product', () => {
    const w1 = t.randn([3, 4], f64), w2 = t.randn([3, 5], f64);
    const fn = (h: t.Tensor): t.Tensor[] => {
      const a = t.matmul(h, w1);
      const c = cond(t.gt(t.sum(a), -1e9), (v: t.Tensor) => t.add(v, t.rand([2, 4], f64)), (v: t.Tensor) => t.neg(v), [a]);
      const r = t.randn([3], f64);
      return [c, r, t.matmul(h, w2)];
    };
    const h = t.randn([2, 3], f64);
    const { graph } = trace(fn, [h]);
    const { graph: merged, changes } = C.mergeMatmuls.run(graph);
    assert.match(changes.join('\n'), /2 matmuls sharing/);
    assert.deepEqual(draws(merged), ['cond:randomUniform[2,4]', 'randomNormal[3]']);
    assertRunsLikeEager(fn, merged, [h], 'merge-matmuls');
  });

  it('the whole pipeline and the planned executor (memory plan, arena reuse) draw like eager code', () => {
    const w = t.randn([6, 6], f64);
    const fn = (x: t.Tensor): t.Tensor[] => {
      let h = x;
      for (let i = 0; i < 3; i++) h = t.dropout(t.gelu(t.matmul(h, w)), 0.2);
      return [t.sum(t.mul(h, t.randn([4, 6], f64)))];
    };
    const x = t.randn([4, 6], f64);
    const { graph } = trace(fn, [x]);
    const { graph: optimized } = C.runPipeline(graph, backend === 'cpu' ? C.defaultPasses() : C.portablePasses());
    assert.deepEqual(draws(optimized), draws(graph));
    assertRunsLikeEager(fn, optimized, [x], 'pipeline (interpreted)');
    if (backend === 'cpu') {
      const compiled = C.compile(graph);
      assert.ok(compiled.executor !== undefined, 'the graph is planned');
      assertRunsLikeEager(fn, compiled.graph, [x], 'planned executor', (_g, xs) => compiled.run(xs));
      assert.ok(!compiled.executor!.stats.fallbackOps.some((op) => op.startsWith('random')), 'draws go straight into the arena');
    } else {
      const g = trace(() => [t.rand([2])], []).graph;
      assert.match(C.executorUnsupportedReason(g) ?? '', new RegExp(`random draw \\(randomUniform, value %\\d+\\) is made on backend '${backend}'`));
    }
  });

  it('toOpGraph folds a dropout mask into its elementwise op, like a constant mask', () => {
    const w1 = t.randn([8, 16]).requiresGrad_(), w2 = t.randn([16, 8]).requiresGrad_();
    const { graph } = trace((x: t.Tensor) => t.matmul(t.dropout(t.gelu(t.matmul(x, w1)), 0.1), w2), [t.randn([4, 8])]);
    const og = C.toOpGraph(graph);
    t.plan.validateOpGraph(og);
    assert.equal(og.ops.filter((o) => o.kind === 'matmul').length, 2);
  });

  it('isImpureNode marks draws and control flow whose graphs draw, nothing else', () => {
    const { graph } = trace((p: t.Tensor, x: t.Tensor) => [
      cond(t.gt(p, 0), (v: t.Tensor) => t.add(v, t.rand([2])), (v: t.Tensor) => v, [x]),
      cond(t.gt(p, 0), (v: t.Tensor) => t.exp(v), (v: t.Tensor) => v, [x]),
      t.randint(0, 3, [2]),
    ], [t.tensor(1), t.zeros([2])]);
    const marked = graph.nodes.filter(isImpureNode).map((n) => n.op);
    assert.deepEqual(marked, ['cond', 'randomInteger']);
  });
});
