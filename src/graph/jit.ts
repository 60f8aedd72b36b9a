// jit(fn): a function with fn's signature that traces fn once per input signature into a Graph,
// compiles it (when a graph compiler is registered, see setGraphCompiler; the compiler module does
// so on import) and replays it on later calls. Guards: the signature (shapes, dtypes, backend,
// requiresGrad of every tensor argument, the other arguments' values, grad mode), and the values
// the traced code read (item/toArray/data), checked during the replay. A failed guard traces again,
// and stats() says which guard failed. By default (piecewise) a value read in a function without
// writes is a graph break instead (piecewise.ts): the parts compile separately and fn's plain code
// between them runs on every call; a changed control path traces again.
import { TesseraError, fmtShape } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { isGradEnabled } from '../autodiff/mode.js';
import { autocastKey, withAutocastHook } from '../ops/dispatch.js';
import type { Graph } from './graph.js';
import { GuardFailure, prepareInterpret } from './interpret.js';
import { finishWithGrads, flattenTensors, isTracing, unflattenTensors, withTracer, type TraceOptions } from './trace.js';
import { bucketPlan, dynamicAnalysis, unpad, type DynamicAnalysis, type DynamicSpec } from './dynamic.js';
import { buildPiecewise, piecewiseObstacle, replayPiecewise, type PiecewisePlan } from './piecewise.js';
import { graphDrawsRandom } from './graph-ops.js';
import { snapshotGenerators } from '../core/random.js';
// Registers the offload graph ops (a traced offload() records them) and their tracing hooks.
import './offload-ops.js';
// An optimizer's step() inside a traced function must be recorded (else a replay would never update
// the parameters): register the traced optimizers wherever jit is imported from.
import './traced-optimizers.js';

/** A graph turned into something that runs fast; produced by a registered GraphCompiler. */
export interface CompiledGraph {
  /** Runs the graph (checking its guards; throwing GuardFailure) and applies its writes. */
  run(inputs: readonly Tensor[]): Tensor[];
  /** The optimized graph (for printing and analysis). */
  readonly graph: Graph;
}

export interface GraphCompiler {
  /** onCpu: every input is a cpu tensor (the planned executor can run the graph); otherwise only backend-independent passes apply. */
  compile(g: Graph, opts: { reuseOutputs: boolean; onCpu: boolean }): CompiledGraph;
}

let graphCompiler: GraphCompiler | undefined;

/** Installs the compiler jit uses (the compiler module calls this when imported). */
export function setGraphCompiler(c: GraphCompiler | undefined): void {
  graphCompiler = c;
}

export interface JitOptions extends TraceOptions {
  /** Dimensions that vary between calls: `{ argIndex: [axes] }`; sizes are bucketed to the next power of two. */
  dynamic?: DynamicSpec;
  /**
   * Whether replays record the autodiff tape (so backward() can run through the outputs later).
   * 'auto' (default): when grad mode is on and a tensor argument or a parameter requires grad and
   * the function did not already run backward itself. Differentiable replays use the interpreter.
   */
  differentiable?: boolean | 'auto';
  /** Compile (optimize + generate kernels) the graph; false replays it with the interpreter. */
  compile?: boolean;
  /**
   * Return the same output tensors on every call, overwritten in place (like CUDA graphs' static
   * outputs): no allocation per call. Off by default, so results of earlier calls stay valid.
   */
  reuseOutputs?: boolean;
  /**
   * Graph breaks at value reads (item/toArray/data): the parts before and after each read compile
   * separately, and every call re-runs fn's plain code between them (logging, branching on the
   * value read) with the ops served from the compiled parts; a changed control path traces again
   * on the next call. On by default; false (and functions with writes: assign, a traced
   * backward; or with control-flow nodes) makes a read a guard inside one graph instead (the
   * plain code between is baked into the trace, and a different value read traces again).
   */
  piecewise?: boolean;
}

export interface JitStats {
  /** Times fn was traced (first calls, new signatures, failed value guards). */
  traces: number;
  /** Calls answered by a cached graph. */
  cacheHits: number;
  /** Why each trace happened, in order. */
  traceReasons: string[];
  /** Cached graphs. */
  entries: number;
  /** Calls replayed with the interpreter because a differentiable result was needed. */
  differentiableReplays: number;
  /** Graph breaks (value reads) of the piecewise-compiled entries, summed. */
  graphBreaks: number;
}

interface CacheEntry {
  key: string;
  signature: ArgSignature[];
  graph: Graph;
  compiled: CompiledGraph | undefined;
  /** Replays the entry: the compiled graph, or the traced graph's interpreter prepared once. */
  run: (inputs: readonly Tensor[]) => Tensor[];
  template: unknown;
  needsTape: boolean;
  piecewise: PiecewisePlan | undefined;
  /** Host code to run before each replay (see Tracer.replayHooks). */
  replayHooks: (() => () => void)[];
}

type ArgSignature = { kind: 'tensor'; shape: readonly number[]; dtype: string; backend: string; requiresGrad: boolean } | { kind: 'value'; text: string };

/** Whether a non-tensor argument holds a tensor inside (an array or a plain object of tensors). */
function holdsTensor(a: unknown, depth = 0): boolean {
  if (a instanceof Tensor) return true;
  if (depth > 4 || a === null || typeof a !== 'object') return false;
  const values = Array.isArray(a) ? a : Object.getPrototypeOf(a) === Object.prototype ? Object.values(a) : [];
  return values.some((v) => holdsTensor(v, depth + 1));
}

function signatureOf(args: readonly unknown[]): ArgSignature[] {
  return args.map((a, i) => {
    if (a instanceof Tensor) return { kind: 'tensor' as const, shape: a.shape, dtype: a.dtype, backend: a.backend, requiresGrad: a.requiresGrad };
    // Other arguments are part of the cache key by value; a tensor among them would be baked into
    // the graph as a constant (and stringifying it is meaningless), so say how to pass it instead.
    if (holdsTensor(a)) {
      throw new TesseraError(`jit: argument ${i} is an array or object holding tensors; a jitted function takes its tensors as separate arguments (f(x, y), not f([x, y]) or f({ x })) so that each becomes a graph input`);
    }
    return { kind: 'value' as const, text: JSON.stringify(a) ?? String(a) };
  });
}

/** The cache key: the arguments' signature, grad mode and the autocast state (a region's casts are in its graph). */
function keyOf(sig: readonly ArgSignature[], gradMode: boolean): string {
  return JSON.stringify([sig, gradMode, autocastKey()]);
}

/** Names the first guard that differs between a cached signature and the new one. */
function explainMiss(old: readonly ArgSignature[], now: readonly ArgSignature[]): string {
  if (old.length !== now.length) return `argument count changed (${old.length} -> ${now.length})`;
  for (let i = 0; i < now.length; i++) {
    const a = old[i]!, b = now[i]!;
    if (a.kind !== b.kind) return `argument ${i} changed kind (${a.kind} -> ${b.kind})`;
    if (a.kind === 'value' && b.kind === 'value' && a.text !== b.text) return `argument ${i} value changed (${a.text} -> ${b.text})`;
    if (a.kind === 'tensor' && b.kind === 'tensor') {
      if (fmtShape(a.shape) !== fmtShape(b.shape)) return `argument ${i} shape changed (${fmtShape(a.shape)} -> ${fmtShape(b.shape)})`;
      if (a.dtype !== b.dtype) return `argument ${i} dtype changed (${a.dtype} -> ${b.dtype})`;
      if (a.backend !== b.backend) return `argument ${i} backend changed (${a.backend} -> ${b.backend})`;
      if (a.requiresGrad !== b.requiresGrad) return `argument ${i} requiresGrad changed (${a.requiresGrad} -> ${b.requiresGrad})`;
    }
  }
  return 'grad mode or autocast changed';
}

export type JitFunction<A extends unknown[], R> = ((...args: A) => R) & {
  stats(): JitStats;
  /** The traced graphs (and their optimized versions) in the cache. */
  graphs(): { traced: Graph; optimized: Graph | undefined }[];
  /** Forgets every cached graph. */
  reset(): void;
};

/**
 * Compiles `fn` by tracing. Tensor arguments are positional; other arguments are part of the
 * signature (a new value traces again). fn may return a tensor or arrays / plain objects of them.
 */
export function jit<A extends unknown[], R>(fn: (...args: A) => R, opts: JitOptions = {}): JitFunction<A, R> {
  const cache = new Map<string, CacheEntry>();
  const stats: JitStats = { traces: 0, cacheHits: 0, traceReasons: [], entries: 0, differentiableReplays: 0, graphBreaks: 0 };
  let lastSignature: ArgSignature[] | undefined;
  /** Why an entry was dropped after a call (a piecewise divergence): the next trace's reason. */
  const dropped = new Map<string, string>();
  /** Per signature, constants a replay found changed ('<event>:<input>'): inputs of the next plan. */
  const dynamicConstants = new Map<string, Set<string>>();

  const traceAndRun = (args: A, signature: ArgSignature[], key: string, reason: string): R => {
    stats.traces++;
    stats.traceReasons.push(reason);
    const tensors = args.filter((a): a is Tensor => a instanceof Tensor);
    const { tracer, result } = withTracer(tensors, opts, () => fn(...args));
    const outs = flattenTensors(result);
    const { graph } = finishWithGrads(tracer, outs);
    const hasGradWrites = graph.writes.some((w) => w.kind === 'grad');
    const wantsGrad = tensors.some((t) => t.requiresGrad) || [...graph.parameters.values()].some((p) => p.requiresGrad);
    const needsTape = opts.differentiable === true || (opts.differentiable !== false && isGradEnabled() && wantsGrad && !hasGradWrites);
    // The planned executor runs cpu tensors; graphs over other backends are optimized by the
    // backend-independent passes and interpreted (see setGraphCompiler in src/compiler/index.ts).
    const onCpu = tensors.every((t) => t.backend === 'cpu') && [...graph.parameters.values()].every((p) => p.backend === 'cpu');
    const useCompiler = (opts.compile ?? true) && graphCompiler !== undefined && !needsTape;
    let piecewise: PiecewisePlan | undefined;
    if ((opts.piecewise ?? true) && tracer.reads.length > 0 && !needsTape) {
      const obstacle = piecewiseObstacle(tracer, graph);
      if (obstacle !== undefined) stats.traceReasons.push(`piecewise compilation not used: ${obstacle}; value reads are guards`);
      else {
        piecewise = buildPiecewise(tracer, outs, (g) => {
          if ((opts.compile ?? true) && graphCompiler !== undefined) return graphCompiler.compile(g, { reuseOutputs: false, onCpu }).run;
          return prepareInterpret(g);
        }, dynamicConstants.get(key));
        stats.graphBreaks += piecewise.breaks.length;
      }
    }
    const compiled = useCompiler && piecewise === undefined ? graphCompiler!.compile(graph, { reuseOutputs: opts.reuseOutputs ?? false, onCpu }) : undefined;
    const replayHooks = [...tracer.replayHooks];
    // Random nodes draw while the graph runs: a replay abandoned at a failed guard puts the
    // generators back, so the retrace (which runs fn eagerly) draws what an eager call would.
    if (graphDrawsRandom(graph)) replayHooks.push(() => snapshotGenerators().restore);
    const run = compiled !== undefined ? (inputs: readonly Tensor[]) => compiled.run(inputs) : prepareInterpret(graph);
    cache.set(key, { key, signature, graph, compiled, run, template: result, needsTape, piecewise, replayHooks });
    stats.entries = cache.size;
    lastSignature = signature;
    return result;
  };

  const dynamicVerdicts = new Map<string, DynamicAnalysis>();
  const call = (...args: A): R => {
    // Inside another trace, a jitted function is inlined: its ops belong to the enclosing graph.
    if (isTracing()) return fn(...args);
    const plan = opts.dynamic === undefined ? undefined : bucketPlan(args, opts.dynamic);
    if (plan === undefined || !plan.padded) return callExact(...args);
    const paddedArgs = plan.args as A;
    const key = keyOf(signatureOf(paddedArgs), isGradEnabled());
    const known = dynamicVerdicts.get(key);
    if (known !== undefined && !known.exact) return callExact(...args);
    // The padded run may be redone at exact sizes below; its random draws must then not count.
    const generators = known === undefined ? snapshotGenerators() : undefined;
    const result = callExact(...paddedArgs);
    let verdict: DynamicAnalysis | undefined = known;
    if (verdict === undefined) {
      const entry = cache.get(key)!;
      const v: DynamicAnalysis = dynamicAnalysis(entry.graph, plan.tensorAxes, plan.bucket);
      verdict = v;
      if (!v.exact && entry.graph.writes.length > 0) {
        throw new TesseraError(`jit: dynamic dims are not exact for this function (${v.reason}) and it has side effects (assign/.grad), ` +
          'so the padded run cannot be redone; remove the dynamic option for this function.');
      }
      dynamicVerdicts.set(key, v);
      if (!v.exact) {
        stats.traceReasons.push(`dynamic bucket ${plan.bucket} is not exact (${v.reason}); using exact sizes`);
        generators?.restore();
        return callExact(...args);
      }
    }
    const axes = (verdict as { outputAxes: number[][] }).outputAxes;
    const outs = flattenTensors(result).map((t, i) => unpad(t, axes[i] ?? [], plan.size));
    return unflattenTensors(result, outs);
  };

  const callExact = (...args: A): R => {
    const signature = signatureOf(args);
    const key = keyOf(signature, isGradEnabled());
    const entry = cache.get(key);
    if (entry === undefined) {
      const why = dropped.get(key);
      dropped.delete(key);
      const reason = why ?? (lastSignature === undefined ? 'first call' : `new signature: ${explainMiss(lastSignature, signature)}`);
      return traceAndRun(args, signature, key, reason);
    }
    const tensors = args.filter((a): a is Tensor => a instanceof Tensor);
    if (entry.piecewise !== undefined) {
      const { result, divergence, changedConstants } = replayPiecewise(entry.piecewise, () => fn(...args), tensors);
      lastSignature = signature;
      if (divergence === undefined) stats.cacheHits++;
      else {
        // This call finished eagerly from the point where its control path left the trace.
        cache.delete(key);
        stats.entries = cache.size;
        dropped.set(key, `control path changed after a value read: ${divergence}`);
        // A scalar made from a value read that changes call to call: the next plan takes it as an input.
        if (changedConstants !== undefined) {
          let hints = dynamicConstants.get(key);
          if (hints === undefined) dynamicConstants.set(key, (hints = new Set()));
          for (const c of changedConstants) hints.add(c);
        }
      }
      return result;
    }
    const undos: (() => void)[] = [];
    try {
      for (const h of entry.replayHooks) undos.push(h());
      if (entry.compiled === undefined && entry.needsTape) stats.differentiableReplays++;
      // The graph holds the casts of the autocast state it was traced under (the key matches).
      const outs = withAutocastHook(undefined, () => entry.run(tensors));
      stats.cacheHits++;
      lastSignature = signature;
      return unflattenTensors(entry.template as R, outs);
    } catch (e) {
      if (e instanceof GuardFailure) {
        for (let i = undos.length - 1; i >= 0; i--) undos[i]!();
        cache.delete(key);
        return traceAndRun(args, signature, key, e.message);
      }
      throw e;
    }
  };

  const f = call as JitFunction<A, R>;
  f.stats = () => ({ ...stats, traceReasons: [...stats.traceReasons] });
  f.graphs = () => [...cache.values()].map((e) => ({ traced: e.graph, optimized: e.compiled?.graph }));
  f.reset = () => {
    cache.clear();
    stats.entries = 0;
    lastSignature = undefined;
  };
  return f;
}

