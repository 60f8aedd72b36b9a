// Sharding annotations in the style of GSPMD (Xu et al. 2021, arXiv:2105.04663) and Mesh-TF
// (Shazeer et al. 2018, arXiv:1811.02084): each tensor dimension is either replicated or split
// over one axis of a logical device mesh, and annotations on a few tensors are propagated to the
// rest through the ops.
import type { OpGraph } from './op-graph.js';
import { validateOpGraph } from './op-graph.js';

/** Per tensor dimension: the mesh axis it is split over, or null (replicated). */
export type ShardingSpec = readonly (number | null)[];

/** "S0R" style: S<axis> per split dimension, R per replicated one (Alpa's notation). */
export function formatSpec(spec: ShardingSpec): string {
  return spec.map((a) => (a === null ? 'R' : `S${a}`)).join('');
}

export function parseSpec(text: string, rank: number): ShardingSpec {
  const parts = text.match(/S\d|R/g) ?? [];
  if (parts.join('') !== text || parts.length !== rank) {
    throw new Error(`sharding spec '${text}' must have one R or S<axis> per dimension (${rank} dimensions), e.g. ${'S0' + 'R'.repeat(Math.max(0, rank - 1))}.`);
  }
  const spec = parts.map((p) => (p === 'R' ? null : Number(p.slice(1))));
  checkSpec(spec, text);
  return spec;
}

function checkSpec(spec: ShardingSpec, label: string): void {
  const used = spec.filter((a): a is number => a !== null);
  if (new Set(used).size !== used.length) throw new Error(`sharding spec ${label}: a mesh axis may split at most one dimension.`);
}

export interface PropagationResult {
  specs: Map<string, ShardingSpec>;
  /** Tensors whose propagated spec disagreed with one already set (the first one wins). */
  conflicts: string[];
}

/** Propagates annotations through matmuls (A[m,k]·B[k,n] → C[m,n] share m, k, n) and element-wise
 * ops (all the same) until nothing changes. Dimensions that no annotation reaches stay replicated. */
export function propagateShardings(g: OpGraph, annotations: ReadonlyMap<string, ShardingSpec>): PropagationResult {
  const tensors = validateOpGraph(g);
  const specs = new Map<string, ShardingSpec>();
  for (const [name, spec] of annotations) {
    const t = tensors.get(name);
    if (t === undefined) throw new Error(`sharding annotation names tensor '${name}', which is not in the graph.`);
    if (spec.length !== t.shape.length) throw new Error(`sharding annotation for '${name}' has ${spec.length} entries but the tensor has ${t.shape.length} dimensions.`);
    checkSpec(spec, name);
    specs.set(name, spec);
  }
  const conflicts: string[] = [];
  const offer = (name: string, spec: ShardingSpec): boolean => {
    const used = spec.filter((a) => a !== null);
    if (new Set(used).size !== used.length) return false;
    const cur = specs.get(name);
    if (cur === undefined) { specs.set(name, spec); return true; }
    if (formatSpec(cur) !== formatSpec(spec) && !conflicts.includes(name) && !annotations.has(name)) conflicts.push(name);
    return false;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (const op of g.ops) {
      if (op.kind === 'elementwise') {
        const known = [...op.inputs, op.output].map((n) => specs.get(n)).find((s) => s !== undefined);
        if (known !== undefined) for (const n of [...op.inputs, op.output]) if (!specs.has(n)) changed = offer(n, known) || changed;
      } else {
        const [a, b] = op.inputs, c = op.output;
        const A = specs.get(a), B = specs.get(b), C = specs.get(c);
        const pick = (...xs: (number | null | undefined)[]): number | null | undefined => xs.find((x) => x !== undefined && x !== null) ?? xs.find((x) => x !== undefined);
        const mAxis = pick(A?.[0], C?.[0]), kAxis = pick(A?.[1], B?.[0]), nAxis = pick(B?.[1], C?.[1]);
        const orR = (x: number | null | undefined): number | null => x ?? null;
        if (!specs.has(a) && (mAxis !== undefined || kAxis !== undefined)) changed = offer(a, [orR(mAxis), orR(kAxis)]) || changed;
        if (!specs.has(b) && (kAxis !== undefined || nAxis !== undefined)) changed = offer(b, [orR(kAxis), orR(nAxis)]) || changed;
        // A split contraction dimension leaves partial sums that are all-reduced: C is not split on it.
        if (!specs.has(c) && (mAxis !== undefined || nAxis !== undefined)) changed = offer(c, [orR(mAxis), orR(nAxis)]) || changed;
      }
    }
  }
  return { specs, conflicts };
}
