// The pass manager: runs passes in order, validates after each, and reports per pass the node
// count before and after, the estimated FLOPs and bytes (from the ops' cost functions) and the
// planned peak memory of intermediates.
import type { Graph } from '../graph/graph.js';
import { validateGraph } from '../graph/validate.js';
import { analyze } from './analyze.js';
import { memoryPlan } from './memory-plan.js';
import type { Pass } from './passes/pass.js';
import { dce } from './passes/dce.js';
import { cse } from './passes/cse.js';
import { constantFold } from './passes/constant-fold.js';
import { simplify } from './passes/simplify.js';
import { mergeMatmuls } from './passes/merge-matmuls.js';
import { fuseElementwise } from './passes/fuse-elementwise.js';
import { matmulEpilogue } from './passes/matmul-epilogue.js';
import { layout } from './passes/layout.js';
import { foldAffine, freezeParameters } from './passes/fold-affine.js';
import { substitutionPass, type SearchOptions } from './substitutions/search.js';

export interface PassReport {
  pass: string;
  nodesBefore: number;
  nodesAfter: number;
  flops: number;
  bytes: number;
  peakBytes: number;
  changes: string[];
}

export interface PipelineResult {
  graph: Graph;
  reports: PassReport[];
}

/**
 * The default pipeline, in order. `substitutions` (opt-in) adds the TASO-style substitution search
 * (substitutions/search.ts) after dead-code elimination, before the hand-written matmul merge.
 */
export function defaultPasses(opts: { substitutions?: boolean | SearchOptions } = {}): Pass[] {
  // The search's concatenations of constants are folded right after it.
  const search = opts.substitutions === undefined || opts.substitutions === false ? [] : [substitutionPass(opts.substitutions === true ? {} : opts.substitutions), constantFold];
  return [simplify, constantFold, cse, dce, ...search, mergeMatmuls, layout, fuseElementwise, matmulEpilogue, dce];
}

/**
 * The passes whose result any backend's interpreter runs as well as the original: no fused
 * kernels or matmul epilogues (which only the cpu planned executor runs as generated kernels; the
 * interpreter would run them unfused, materializing their literals) and no layout rewrites.
 */
export function portablePasses(): Pass[] {
  return [simplify, constantFold, cse, dce, mergeMatmuls, dce];
}

/**
 * For inference: parameters frozen into constants, then the default passes with batchnorm (any
 * per-channel affine map after a conv/linear matmul) folded into the weights after fusion.
 */
export function inferencePasses(): Pass[] {
  return [freezeParameters, simplify, constantFold, cse, dce, mergeMatmuls, layout, fuseElementwise, foldAffine, constantFold, matmulEpilogue, dce];
}

const NOMINAL = { peakFlops: 1e11, memoryBandwidth: 2e10 };

function measure(g: Graph): { flops: number; bytes: number; peakBytes: number } {
  const a = analyze(g, NOMINAL);
  return { flops: a.totals.flops, bytes: a.totals.bytes, peakBytes: memoryPlan(g).peakLiveBytes };
}

export function runPipeline(g: Graph, passes: readonly Pass[] = defaultPasses(), opts: { log?: (line: string) => void; validate?: boolean } = {}): PipelineResult {
  let cur = g;
  const reports: PassReport[] = [];
  for (const p of passes) {
    const before = cur.nodes.length;
    const { graph, changes } = p.run(cur);
    if (opts.validate ?? true) validateGraph(graph);
    const m = measure(graph);
    const r: PassReport = { pass: p.name, nodesBefore: before, nodesAfter: graph.nodes.length, ...m, changes };
    reports.push(r);
    opts.log?.(formatReport(r));
    cur = graph;
  }
  return { graph: cur, reports };
}

export function formatReport(r: PassReport): string {
  const mb = (b: number): string => (b / 1024).toFixed(1) + ' KiB';
  return `${r.pass.padEnd(16)} nodes ${String(r.nodesBefore).padStart(4)} -> ${String(r.nodesAfter).padStart(4)}  ` +
    `flops ${r.flops.toExponential(2)}  bytes ${mb(r.bytes).padStart(10)}  peak ${mb(r.peakBytes).padStart(10)}  (${r.changes.length} change${r.changes.length === 1 ? '' : 's'})`;
}

/** The reports as a table (one line per pass, with a header). */
export function formatReports(rs: readonly PassReport[]): string {
  return ['pass             nodes before/after  est. FLOPs  bytes moved  peak intermediates', ...rs.map(formatReport)].join('\n');
}
