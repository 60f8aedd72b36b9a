// Algebraic simplification: identities that remove work without changing results.
//   x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1, x ** 1 -> x   (0 and 1 are constants, possibly broadcast)
//   neg(neg(x)) -> x;  cast to x's own dtype -> x
//   permute(permute(x)) -> one permute (dropped when it is the identity)  [transpose of transpose]
//   reshape(reshape(x)) -> one reshape; reshape / expand to x's own shape -> x
//   expand(expand(x)) -> one expand
// (x * 0 -> 0 is not applied: it is wrong for NaN and infinity.)
import { shapesEqual } from '../../core/shape.js';
import type { Graph, GraphNode, ValueId } from '../../graph/graph.js';
import { untracedRead } from '../../graph/trace.js';
import { commitRewrite, type Pass, type PassResult } from './pass.js';

export function simplifyAlgebra(input: Graph): PassResult {
  const g = input.clone();
  const changes: string[] = [];
  const rep = new Map<ValueId, ValueId>();
  const canon = (v: ValueId): ValueId => rep.get(v) ?? v;
  const producer = (v: ValueId): GraphNode | undefined => {
    const p = g.value(v).producer;
    return p === undefined ? undefined : g.nodes[p];
  };
  const uniformCache = new Map<ValueId, number | undefined>();
  /** The one value every element of v has, when v is a constant (or a view of one) with equal elements. */
  const uniform = (v: ValueId): number | undefined => {
    if (uniformCache.has(v)) return uniformCache.get(v);
    let r: number | undefined;
    const c = g.constants.get(v);
    if (c !== undefined && !c.isDisposed && c.size <= 1 << 16) {
      const d = untracedRead(() => c.data());
      r = d.length > 0 && d.every((x) => x === d[0]) ? d[0] : undefined;
    } else {
      const p = producer(v);
      if (p !== undefined && ['expand', 'reshape', 'permute'].includes(p.op)) r = uniform(p.inputs[0]!);
    }
    uniformCache.set(v, r);
    return r;
  };
  const replace = (n: GraphNode, by: ValueId, why: string): boolean => {
    rep.set(n.outputs[0]!, by);
    changes.push(`simplify: %${n.outputs[0]} = %${by} (${why})`);
    return true;
  };
  const kept: GraphNode[] = [];
  for (const n of g.nodes) {
    n.inputs = n.inputs.map(canon);
    const [a, b] = n.inputs;
    const out = g.value(n.outputs[0]!);
    const same = (v: ValueId): boolean => shapesEqual(g.value(v).shape, out.shape) && g.value(v).dtype === out.dtype;
    let removed = false;
    switch (n.op) {
      case 'add':
        if (uniform(b!) === 0 && same(a!)) removed = replace(n, a!, 'x + 0');
        else if (uniform(a!) === 0 && same(b!)) removed = replace(n, b!, '0 + x');
        break;
      case 'sub':
        if (uniform(b!) === 0 && same(a!)) removed = replace(n, a!, 'x - 0');
        break;
      case 'mul':
        if (uniform(b!) === 1 && same(a!)) removed = replace(n, a!, 'x * 1');
        else if (uniform(a!) === 1 && same(b!)) removed = replace(n, b!, '1 * x');
        break;
      case 'div':
        if (uniform(b!) === 1 && same(a!)) removed = replace(n, a!, 'x / 1');
        break;
      case 'pow':
        if (uniform(b!) === 1 && same(a!)) removed = replace(n, a!, 'x ** 1');
        break;
      case 'neg': {
        const p = producer(a!);
        if (p?.op === 'neg') removed = replace(n, p.inputs[0]!, 'neg(neg(x))');
        break;
      }
      case 'cast':
        if (same(a!)) removed = replace(n, a!, 'cast to own dtype');
        break;
      case 'permute': {
        const perm = (n.attrs as { perm: number[] }).perm;
        const p = producer(a!);
        if (p?.op === 'permute') {
          const inner = (p.attrs as { perm: number[] }).perm;
          const composed = perm.map((i) => inner[i]!);
          if (composed.every((x, i) => x === i)) removed = replace(n, p.inputs[0]!, 'permute∘permute = identity');
          else {
            n.inputs = [p.inputs[0]!];
            n.attrs = { perm: composed };
            changes.push(`simplify: %${n.outputs[0]} permute∘permute -> one permute`);
          }
        } else if (perm.every((x, i) => x === i)) removed = replace(n, a!, 'identity permute');
        break;
      }
      case 'reshape': {
        const p = producer(a!);
        if (same(a!)) removed = replace(n, a!, 'reshape to own shape');
        else if (p?.op === 'reshape') {
          if (same(p.inputs[0]!)) removed = replace(n, p.inputs[0]!, 'reshape chain back to the original shape');
          else {
            n.inputs = [p.inputs[0]!];
            changes.push(`simplify: %${n.outputs[0]} reshape∘reshape -> one reshape`);
          }
        }
        break;
      }
      case 'expand': {
        const p = producer(a!);
        if (same(a!)) removed = replace(n, a!, 'expand to own shape');
        else if (p?.op === 'expand') {
          n.inputs = [p.inputs[0]!];
          changes.push(`simplify: %${n.outputs[0]} expand∘expand -> one expand`);
        }
        break;
      }
    }
    if (!removed) kept.push(n);
  }
  commitRewrite(g, kept, canon);
  return { graph: g, changes };
}

export const simplify: Pass = { name: 'simplify', run: simplifyAlgebra };
