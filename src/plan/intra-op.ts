// Intra-operator sharding as Alpa formulates it (Zheng et al. 2022, arXiv:2201.12023 §4.2): pick
// one sharding strategy per op on a logical device mesh so that compute + communication inside
// ops + resharding between ops is minimal:
//   min Σ_v s_vᵀ(c_v + d_v) + Σ_(u,v) e_uvᵀ R_uv,  s_v one-hot,  e_uv linearising s_u s_vᵀ,
// solved exactly as a mixed-integer program by HiGHS (npm `highs`, HiGHS compiled to wasm).
import * as highsModule from 'highs';
import { bestCollective, type AlphaBeta } from './collectives.js';
import type { OpGraph, TensorInfo } from './op-graph.js';
import { validateOpGraph } from './op-graph.js';
import { formatSpec, type ShardingSpec } from './sharding-spec.js';

export interface DeviceMesh {
  /** Devices along each mesh axis, e.g. [8] or [2, 4]. */
  shape: readonly number[];
  /** α-β of the link each axis uses. */
  axes: readonly AlphaBeta[];
  /** Achievable FLOP/s of one device. */
  flopsPerSecond: number;
}

export interface Strategy {
  /** Alpa-style description, e.g. "S0R = S0R x RR" for a matmul split on rows over axis 0. */
  label: string;
  output: ShardingSpec;
  /** Sharding each input must arrive in. */
  inputs: ShardingSpec[];
  computeSeconds: number;
  commSeconds: number;
  /** Bytes of the op's output (and, for sources, the tensor) on one device. */
  memoryBytes: number;
}

export interface ShardingPlan {
  /** Chosen strategy per op (and per graph input, named `input:<tensor>`). */
  choices: { node: string; strategy: Strategy }[];
  /** The sharding of every tensor as produced. */
  tensorSpecs: Map<string, ShardingSpec>;
  /** Resharding between producer and consumer where their specs differ. */
  reshards: { tensor: string; consumer: string; from: string; to: string; seconds: number }[];
  objectiveSeconds: number;
  computeSeconds: number;
  commSeconds: number;
  reshardSeconds: number;
  variables: number;
  constraints: number;
  status: string;
}

export interface ShardingOptions {
  /** Fix the sharding of some tensors (GSPMD-style user annotations). */
  annotations?: ReadonlyMap<string, ShardingSpec>;
  /** Per-device bytes for all op outputs and graph inputs together (Alpa's memory constraint). */
  memoryBudget?: number;
  /** Cost a training step rather than a forward pass (default true): compute ×3 (backward = 2×
   * forward), in-op and resharding communication ×2 (the backward pass mirrors each one), and
   * each parameter's gradient all-reduced over the mesh axes it is replicated on (Alpa counts
   * these in the backward graph). */
  training?: boolean;
}

const bytesOf = (t: TensorInfo): number => t.shape.reduce((a, b) => a * b, 1) * (t.bytesPerElement ?? 2);

/** Every assignment of tensor dimensions to distinct mesh axes (or replication). */
export function enumerateSpecs(rank: number, meshAxes: number): ShardingSpec[] {
  const out: ShardingSpec[] = [];
  const rec = (prefix: (number | null)[]): void => {
    if (prefix.length === rank) { out.push(prefix); return; }
    rec([...prefix, null]);
    for (let a = 0; a < meshAxes; a++) if (!prefix.includes(a)) rec([...prefix, a]);
  };
  rec([]);
  return out;
}

function shardCount(spec: ShardingSpec, mesh: DeviceMesh): number {
  return spec.reduce<number>((n, a) => n * (a === null ? 1 : mesh.shape[a]!), 1);
}

/** Cost of turning a tensor sharded as `from` into `to`: an axis that disappears is all-gathered,
 * an axis that moves to another dimension is an all-to-all, a new axis is a free local slice. */
export function reshardSeconds(t: TensorInfo, from: ShardingSpec, to: ShardingSpec, mesh: DeviceMesh): number {
  let seconds = 0;
  const local = bytesOf(t) / shardCount(from, mesh);
  for (let a = 0; a < mesh.shape.length; a++) {
    const i = from.indexOf(a), j = to.indexOf(a);
    if (i === j || i < 0) continue;
    const n = mesh.shape[a]!;
    if (j < 0) seconds += bestCollective('all-gather', local * n, n, mesh.axes[a]!).seconds;
    else seconds += (n - 1) * mesh.axes[a]!.alpha + ((n - 1) / n) * local * mesh.axes[a]!.beta; // all-to-all
  }
  return seconds;
}

function strategiesFor(op: OpGraph['ops'][number], tensors: Map<string, TensorInfo>, mesh: DeviceMesh): Strategy[] {
  const axes = mesh.shape.length;
  if (op.kind === 'elementwise') {
    const t = tensors.get(op.output)!;
    const elems = bytesOf(t) / (t.bytesPerElement ?? 2);
    return enumerateSpecs(t.shape.length, axes).map((spec) => ({
      label: formatSpec(spec),
      output: spec,
      inputs: op.inputs.map(() => spec),
      computeSeconds: (op.inputs.length * elems) / shardCount(spec, mesh) / mesh.flopsPerSecond,
      commSeconds: 0,
      memoryBytes: bytesOf(t) / shardCount(spec, mesh),
    }));
  }
  const [A, B] = op.inputs.map((n) => tensors.get(n)!) as [TensorInfo, TensorInfo];
  const C = tensors.get(op.output)!;
  const [M, K] = A.shape as [number, number];
  const N = B.shape[1]!;
  const out: Strategy[] = [];
  for (const [m, k, n] of enumerateSpecs(3, axes) as [number | null, number | null, number | null][]) {
    const output: ShardingSpec = [m, n];
    const size = (a: number | null): number => (a === null ? 1 : mesh.shape[a]!);
    const parts = size(m) * size(k) * size(n);
    const localC = bytesOf(C) / (size(m) * size(n));
    // Splitting K leaves partial sums: all-reduce them over that axis.
    const commSeconds = k === null ? 0 : bestCollective('all-reduce', localC, size(k), mesh.axes[k]!).seconds;
    out.push({
      label: `${formatSpec(output)} = ${formatSpec([m, k])} x ${formatSpec([k, n])}`,
      output,
      inputs: [[m, k], [k, n]],
      computeSeconds: (2 * M * K * N) / parts / mesh.flopsPerSecond,
      commSeconds,
      memoryBytes: localC,
    });
  }
  return out;
}

// highs ships CommonJS type declarations for an ES module build; under `nodenext` its default
// export's declared type sits one `default` deeper than at run time. The planner needs only the
// one-shot LP-text API, typed here.
interface HighsSolver {
  solve(problem: string, options?: { output_flag?: boolean; time_limit?: number }): { Status: string; Columns: Record<string, { Primal: number } | undefined> };
}
const loadHighs = (): Promise<HighsSolver> => {
  const mod = highsModule as unknown as { default: unknown };
  const fn = typeof mod.default === 'function' ? mod.default : (mod.default as { default: unknown }).default;
  return (fn as () => Promise<HighsSolver>)();
};
let highsPromise: Promise<HighsSolver> | undefined;

export async function solveSharding(g: OpGraph, mesh: DeviceMesh, opts: ShardingOptions = {}): Promise<ShardingPlan> {
  const tensors = validateOpGraph(g);
  const training = opts.training ?? true;
  const reshardFactor = training ? 2 : 1;
  if (mesh.shape.length === 0 || mesh.shape.length !== mesh.axes.length || mesh.shape.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new Error(`device mesh: give positive integer sizes and one α-β per axis; got shape [${mesh.shape.join(',')}] with ${mesh.axes.length} axes.`);
  }
  // Nodes: graph inputs (tensors nobody produces) and ops.
  const producer = new Map<string, number>();
  interface Node { name: string; strategies: Strategy[]; inputs: string[] }
  const nodes: Node[] = [];
  const produced = new Set(g.ops.map((o) => o.output));
  for (const t of g.tensors) {
    if (produced.has(t.name)) continue;
    producer.set(t.name, nodes.length);
    nodes.push({
      name: `input:${t.name}`,
      inputs: [],
      strategies: enumerateSpecs(t.shape.length, mesh.shape.length).map((spec) => {
        const local = bytesOf(t) / shardCount(spec, mesh);
        let gradSync = 0;
        if (training && t.parameter === true) {
          for (let a = 0; a < mesh.shape.length; a++) if (!spec.includes(a)) gradSync += bestCollective('all-reduce', local, mesh.shape[a]!, mesh.axes[a]!).seconds;
        }
        return { label: formatSpec(spec), output: spec, inputs: [], computeSeconds: 0, commSeconds: gradSync, memoryBytes: local };
      }),
    });
  }
  for (const op of g.ops) {
    producer.set(op.output, nodes.length);
    const strategies = strategiesFor(op, tensors, mesh);
    if (training) for (const st of strategies) { st.computeSeconds *= 3; st.commSeconds *= 2; }
    nodes.push({ name: op.name, inputs: [...op.inputs], strategies });
  }
  // User annotations fix the sharding a tensor is produced in.
  for (const [name, spec] of opts.annotations ?? []) {
    const v = producer.get(name);
    if (v === undefined) throw new Error(`sharding annotation names tensor '${name}', which is not in the graph.`);
    const node = nodes[v]!;
    const allowed = node.strategies.filter((s) => formatSpec(s.output) === formatSpec(spec));
    if (allowed.length === 0) throw new Error(`sharding annotation ${formatSpec(spec)} for '${name}' is not a valid sharding on a ${mesh.shape.length}-axis mesh.`);
    node.strategies = allowed;
  }

  const us = 1e6; // the objective in microseconds keeps coefficients well inside HiGHS' tolerances
  const lines: string[] = [];
  const obj: string[] = [];
  const cons: string[] = [];
  const vars: string[] = [];
  nodes.forEach((node, v) => {
    const row: string[] = [];
    node.strategies.forEach((s, i) => {
      const name = `s_${v}_${i}`;
      vars.push(name);
      row.push(name);
      const c = (s.computeSeconds + s.commSeconds) * us;
      if (c > 0) obj.push(`${c.toFixed(6)} ${name}`);
    });
    cons.push(` one_${v}: ${row.join(' + ')} = 1`);
  });
  interface Edge { u: number; v: number; tensor: string; input: number; cost: number[][] }
  const edges: Edge[] = [];
  nodes.forEach((node, v) => {
    node.inputs.forEach((tensorName, input) => {
      const u = producer.get(tensorName)!;
      const t = tensors.get(tensorName)!;
      const cost = nodes[u]!.strategies.map((su) => node.strategies.map((sv) => reshardFactor * reshardSeconds(t, su.output, sv.inputs[input]!, mesh)));
      edges.push({ u, v, tensor: tensorName, input, cost });
    });
  });
  const edgeVars: string[] = [];
  edges.forEach((e, ei) => {
    const U = nodes[e.u]!.strategies.length, V = nodes[e.v]!.strategies.length;
    // Σ_j e_ij = s_u,i and Σ_i e_ij = s_v,j: the tight linearisation of e_ij = s_u,i · s_v,j.
    for (let i = 0; i < U; i++) {
      const row: string[] = [];
      for (let j = 0; j < V; j++) {
        const name = `e_${ei}_${i}_${j}`;
        row.push(name);
        edgeVars.push(name);
        const c = e.cost[i]![j]! * us;
        if (c > 0) obj.push(`${c.toFixed(6)} ${name}`);
      }
      cons.push(` eu_${ei}_${i}: ${row.join(' + ')} - s_${e.u}_${i} = 0`);
    }
    for (let j = 0; j < V; j++) {
      const row: string[] = [];
      for (let i = 0; i < U; i++) row.push(`e_${ei}_${i}_${j}`);
      cons.push(` ev_${ei}_${j}: ${row.join(' + ')} - s_${e.v}_${j} = 0`);
    }
  });
  if (opts.memoryBudget !== undefined) {
    const terms: string[] = [];
    nodes.forEach((node, v) => node.strategies.forEach((s, i) => terms.push(`${(s.memoryBytes / 1e6).toFixed(6)} s_${v}_${i}`)));
    cons.push(` memory: ${terms.join(' + ')} <= ${(opts.memoryBudget / 1e6).toFixed(6)}`);
  }
  lines.push('Minimize', ` obj: ${obj.length ? obj.join(' + ') : '0 ' + vars[0]}`, 'Subject To', ...cons, 'Bounds');
  for (const e of edgeVars) lines.push(` 0 <= ${e} <= 1`);
  lines.push('Binary', ...vars.map((x) => ` ${x}`), 'End');

  highsPromise ??= loadHighs();
  const highs = await highsPromise;
  const sol = highs.solve(lines.join('\n'), { output_flag: false });
  if (sol.Status !== 'Optimal') {
    throw new Error(`sharding ILP ended with status '${sol.Status}'${opts.memoryBudget !== undefined ? ` (memory budget ${opts.memoryBudget} bytes may be too small)` : ''}.`);
  }
  const chosen = nodes.map((node, v) => {
    const i = node.strategies.findIndex((_, k) => (sol.Columns[`s_${v}_${k}`]?.Primal ?? 0) > 0.5);
    return node.strategies[i]!;
  });
  const tensorSpecs = new Map<string, ShardingSpec>();
  for (const [t, v] of producer) tensorSpecs.set(t, chosen[v]!.output);
  const reshards: ShardingPlan['reshards'] = [];
  let reshardTotal = 0;
  for (const e of edges) {
    const from = chosen[e.u]!.output, to = chosen[e.v]!.inputs[e.input]!;
    const seconds = reshardFactor * reshardSeconds(tensors.get(e.tensor)!, from, to, mesh);
    reshardTotal += seconds;
    if (formatSpec(from) !== formatSpec(to)) reshards.push({ tensor: e.tensor, consumer: nodes[e.v]!.name, from: formatSpec(from), to: formatSpec(to), seconds });
  }
  const computeSeconds = chosen.reduce((a, s) => a + s.computeSeconds, 0);
  const commSeconds = chosen.reduce((a, s) => a + s.commSeconds, 0);
  return {
    choices: nodes.map((n, v) => ({ node: n.name, strategy: chosen[v]! })),
    tensorSpecs,
    reshards,
    objectiveSeconds: computeSeconds + commSeconds + reshardTotal,
    computeSeconds, commSeconds, reshardSeconds: reshardTotal,
    variables: vars.length + edgeVars.length,
    constraints: cons.length,
    status: sol.Status,
  };
}
