// Loading and running an ONNX model with tessera's ops: `OnnxModel.load(bytes)` decodes the file,
// checks that every operator is implemented (naming those that are not), turns the initializers
// into tensors, and `run(feeds)` interprets the graph node by node.
//
// Because every node runs as ordinary tessera ops, a loaded model runs on any backend, works
// inside `jit`, and is differentiable: gradients flow to the feeds and, with
// `{ trainable: true }`, to the float initializers, which become Parameters to fine-tune.

import { Tensor } from '../core/tensor.js';
import { TesseraError } from '../core/errors.js';
import { keep, scope } from '../core/memory.js';
import { cast } from '../ops/elementwise.js';
import { isGradEnabled } from '../autodiff/mode.js';
import { activeTracer } from '../graph/trace.js';
import { piecewiseReplayActive } from '../graph/piecewise.js';
import { canonicalDomain, lookupOnnxOp, type OnnxOpImpl, type OpResult } from './registry.js';
import { NodeContext } from './node-context.js';
import { decodeModel, elemTypeName, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type TypeProto, AttrType } from './proto.js';
import { tensorFromProto } from './tensor-proto.js';
import { defaultElemType, isNarrowElemType, onnxTensor, requireStorageDType, storageDType, tensorsOf, type OnnxTensor, type OnnxValue } from './value.js';
import './ops/index.js';

/** A graph input or output as the model declares it. */
export interface OnnxValueInfo {
  readonly name: string;
  /** 'tensor', 'sequence', 'optional', or what else the file says. */
  readonly kind: TypeProto['kind'] | 'unknown';
  /** The ONNX element type name (FLOAT, INT64, ...) of a tensor, or of a sequence's tensors. */
  readonly elemType?: string;
  /** Sizes, symbolic names (e.g. 'batch') or undefined for unknown dimensions. */
  readonly shape?: readonly (number | string | undefined)[];
}

export interface OnnxLoadOptions {
  /**
   * Make the float initializers Parameters (requiresGrad), to fine-tune the model with tessera's
   * optimizers (`model.parameters()`). Default false.
   */
  readonly trainable?: boolean;
}

export interface OnnxRunOptions {
  /** The outputs to compute (default: every graph output). */
  readonly outputs?: readonly string[];
}

type Lookup = (name: string) => OnnxValue | undefined;

function describeType(type: TypeProto | undefined): Pick<OnnxValueInfo, 'kind' | 'elemType' | 'shape'> {
  if (type === undefined) return { kind: 'unknown' };
  if (type.kind === 'tensor') return { kind: 'tensor', elemType: elemTypeName(type.elemType), shape: type.shape };
  if ((type.kind === 'sequence' || type.kind === 'optional') && type.elem?.kind === 'tensor') {
    return { kind: type.kind, elemType: elemTypeName(type.elem.elemType) };
  }
  return { kind: type.kind };
}

/** Names a graph reads from the scopes around it (its free variables), subgraphs included. */
function outerNames(graph: GraphProto): Set<string> {
  const defined = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.map((i) => i.name)]);
  const used = new Set<string>();
  for (const node of graph.nodes) {
    for (const name of nodeReads(node)) if (!defined.has(name)) used.add(name);
    for (const out of node.outputs) defined.add(out);
  }
  for (const out of graph.outputs) if (!defined.has(out.name)) used.add(out.name);
  return used;
}

/** Every name a node reads: its inputs and the outer names of its subgraphs. */
function nodeReads(node: NodeProto): string[] {
  const names = node.inputs.filter((n) => n !== '');
  for (const a of node.attributes) {
    const graphs = a.type === AttrType.GRAPH && a.g !== undefined ? [a.g] : a.type === AttrType.GRAPHS ? a.graphs : [];
    for (const g of graphs) names.push(...outerNames(g));
  }
  return names;
}

interface GraphAnalysis {
  /** Per node, the names it reads (inputs and its subgraphs' outer names). */
  reads: string[][];
  /** The index of the last node reading each name. */
  lastRead: Map<string, number>;
  /** Per node, whether its outputs are the same on every run (see constantNodes). */
  constant: boolean[];
  /** Per node: its implementation, the opset of its domain, whether it has subgraphs. */
  impls: OnnxOpImpl[];
  opsets: number[];
  hasSubgraph: boolean[];
}

/** Operators whose outputs vary between runs with equal inputs. */
const NONDETERMINISTIC = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial', 'Dropout']);

/**
 * Which nodes of a graph compute the same values on every run: default-domain, deterministic nodes
 * without subgraphs whose inputs are all initializers (the model's or the graph's own) or outputs
 * of earlier such nodes (Constant nodes, having no inputs, are the usual roots).
 */
function constantNodes(graph: GraphProto, modelInitializers: ReadonlySet<string>): boolean[] {
  const known = new Set<string>([...modelInitializers, ...graph.initializers.map((i) => i.name)]);
  // A graph input shadows an initializer of the same name (IR < 4 allowed inputs with defaults).
  for (const input of graph.inputs) known.delete(input.name);
  return graph.nodes.map((node) => {
    const ok = canonicalDomain(node.domain) === '' && !NONDETERMINISTIC.has(node.opType)
      && !node.attributes.some((a) => a.type === AttrType.GRAPH || a.type === AttrType.GRAPHS)
      && node.inputs.every((name) => name === '' || known.has(name));
    if (ok) for (const out of node.outputs) if (out !== '') known.add(out);
    return ok;
  });
}

/** The op types (with their domain where not the default one) that tessera does not implement. */
function unsupportedOps(graph: GraphProto, opsets: ReadonlyMap<string, number>, out: Map<string, number>): void {
  for (const node of graph.nodes) {
    const impl = lookupOnnxOp(node.domain, node.opType);
    const domain = canonicalDomain(node.domain);
    const label = domain === '' ? node.opType : `${domain}::${node.opType}`;
    const version = opsets.get(domain);
    if (impl === undefined) {
      out.set(label, (out.get(label) ?? 0) + 1);
    } else if (version !== undefined && ((impl.minOpset !== undefined && version < impl.minOpset) || (impl.maxOpset !== undefined && version > impl.maxOpset))) {
      const l = `${label} (opset ${version}; tessera implements ${impl.minOpset ?? 1}..${impl.maxOpset ?? 'latest'})`;
      out.set(l, (out.get(l) ?? 0) + 1);
    }
    for (const a of node.attributes) {
      if (a.type === AttrType.GRAPH && a.g !== undefined) unsupportedOps(a.g, opsets, out);
      if (a.type === AttrType.GRAPHS) for (const g of a.graphs) unsupportedOps(g, opsets, out);
    }
  }
}

export class OnnxModel {
  /** The decoded file. */
  readonly proto: ModelProto;
  /** Opset version per domain ('' is the default ai.onnx domain). */
  readonly opsets: ReadonlyMap<string, number>;
  /** Initializers by name, as tensors. */
  readonly initializers: ReadonlyMap<string, OnnxTensor>;
  /** The inputs a caller feeds (graph inputs that are not initializers). */
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  private disposed = false;
  /**
   * Tensors the model owns beyond the initializers: Constant values, tensor attributes and
   * subgraph initializers, decoded on first use and kept for later runs (decoding them every run
   * cost more than running small models). A run never frees them; dispose() does.
   */
  private readonly decoded = new Map<AttributeProto | TensorProto, OnnxTensor>();
  private readonly owned = new Set<Tensor>();
  /** Per graph: what each node reads, the last node reading each name, and the constant nodes (computed once). */
  private readonly readsCache = new WeakMap<GraphProto, GraphAnalysis>();
  /** The outputs of constant nodes (see GraphAnalysis.constant), computed at their first eager run. */
  private readonly folded = new Map<NodeProto, (OnnxValue | undefined)[]>();
  /** Float initializers are Parameters: nothing is folded, so gradients reach them through every node. */
  private readonly trainable: boolean;
  /** Initializers no feed can replace (those that are not also graph inputs): constants everywhere. */
  private readonly fixedInitializers: ReadonlySet<string>;

  private constructor(proto: ModelProto, options: OnnxLoadOptions) {
    this.proto = proto;
    const opsets = new Map<string, number>();
    for (const o of proto.opsetImport) opsets.set(canonicalDomain(o.domain), o.version);
    // IR version 3 and before may omit opset_import; ONNX then means opset 1 of the default domain.
    if (!opsets.has('')) opsets.set('', 1);
    this.opsets = opsets;
    const graph = proto.graph;
    if (graph.sparseInitializers > 0) {
      throw new TesseraError(`onnx: the graph has ${graph.sparseInitializers} sparse initializer(s); tessera loads dense initializers only (densify them with onnx tools before loading)`);
    }
    if (proto.functions.length > 0) {
      const names = proto.functions.map((f) => `${f.domain}::${f.name}`).join(', ');
      throw new TesseraError(`onnx: the model defines local functions (${names}); tessera does not run model-local functions yet: inline them (onnx.inliner.inline_local_functions) before loading`);
    }
    const missing = new Map<string, number>();
    unsupportedOps(graph, opsets, missing);
    if (missing.size > 0) {
      const list = [...missing].map(([op, n]) => `${op}${n > 1 ? ` (${n} nodes)` : ''}`).join(', ');
      throw new TesseraError(`onnx: the model uses operators tessera does not implement: ${list}; onnx.supportedOps() lists those it does`);
    }
    const inits = new Map<string, OnnxTensor>();
    for (const init of graph.initializers) {
      const value = tensorFromProto(init, `initializer '${init.name}'`);
      if (options.trainable === true && (value.tensor.dtype === 'float32' || value.tensor.dtype === 'float64')) value.tensor.requiresGrad = true;
      inits.set(init.name, value);
    }
    this.initializers = inits;
    for (const v of inits.values()) this.owned.add(v.tensor);
    this.trainable = options.trainable === true;
    const inputNames = new Set(graph.inputs.map((i) => i.name));
    this.fixedInitializers = new Set([...inits.keys()].filter((name) => !inputNames.has(name)));
    this.inputs = graph.inputs.filter((i) => !inits.has(i.name)).map((i) => ({ name: i.name, ...describeType(i.type) }));
    this.outputs = graph.outputs.map((o) => ({ name: o.name, ...describeType(o.type) }));
  }

  /** Decodes and prepares an ONNX model from the bytes of a .onnx file. */
  static load(bytes: Uint8Array, options: OnnxLoadOptions = {}): OnnxModel {
    return new OnnxModel(decodeModel(bytes), options);
  }

  /** The float initializers (Parameters when loaded with `{ trainable: true }`), in file order. */
  parameters(): Tensor[] {
    return [...this.initializers.values()].map((v) => v.tensor).filter((t) => t.dtype === 'float32' || t.dtype === 'float64');
  }

  /**
   * Runs the model. Feeds are tessera tensors by input name; returns the outputs as tensors by
   * name. Sequence outputs come back as arrays of tensors; an empty optional as undefined.
   */
  run(feeds: Readonly<Record<string, Tensor | OnnxValue>>, options: OnnxRunOptions = {}): Record<string, Tensor> {
    const values = this.runValues(feeds, options);
    const out: Record<string, Tensor> = {};
    for (const [name, v] of Object.entries(values)) {
      if (v.kind !== 'tensor') throw new TesseraError(`onnx: output '${name}' is a ${v.kind === 'none' ? 'empty optional' : 'sequence'}; use runValues() for non-tensor outputs`);
      out[name] = v.tensor;
    }
    return out;
  }

  /** Like run(), returning ONNX values (tensors tagged with their ONNX type, sequences, optionals). */
  runValues(feeds: Readonly<Record<string, Tensor | OnnxValue>>, options: OnnxRunOptions = {}): Record<string, OnnxValue> {
    if (this.disposed) throw new TesseraError('onnx: this model was disposed; load it again to run it');
    const graph = this.proto.graph;
    const declared = new Map(graph.inputs.map((i) => [i.name, i.type]));
    const bound = new Map<string, OnnxValue>();
    for (const [name, feed] of Object.entries(feeds)) {
      if (!declared.has(name)) {
        throw new TesseraError(`onnx: the model has no input '${name}'; its inputs are ${this.inputs.map((i) => `'${i.name}'`).join(', ') || '(none)'}`);
      }
      bound.set(name, this.checkFeed(name, feed, declared.get(name)));
    }
    for (const input of this.inputs) {
      if (!bound.has(input.name)) throw new TesseraError(`onnx: input '${input.name}' is not fed; run() needs ${this.inputs.map((i) => `'${i.name}'`).join(', ')}`);
    }
    const wanted = options.outputs ?? graph.outputs.map((o) => o.name);
    for (const name of wanted) {
      if (!graph.outputs.some((o) => o.name === name)) {
        throw new TesseraError(`onnx: the model has no output '${name}'; its outputs are ${graph.outputs.map((o) => `'${o.name}'`).join(', ')}`);
      }
    }
    const outer: Lookup = (name) => this.initializers.get(name);
    // Recording for autodiff, backward may need any tensor made during the run (an op's vjp saves
    // its operands, with or without requiresGrad), so nothing made here is freed early: the run is
    // left to the caller's scope and the garbage collector, as any eager code. Otherwise the run's
    // own scope frees every temporary when it returns.
    const recording = isGradEnabled() && ([...bound.values()].some((v) => tensorsOf(v).some((t) => t.requiresGrad))
      || [...this.initializers.values()].some((v) => v.tensor.requiresGrad));
    // Under jit's tracer, a tensor an op made from host values (a Constant's ints, a shape) becomes
    // a constant of the traced graph, which compiles after the run: it must not be freed early. In
    // a piecewise replay the kernels run later than the ops that call them (a segment runs at its
    // first kernel call), so a value freed after its last reader may not have been read yet.
    const freeEarly = !recording && activeTracer() === undefined && !piecewiseReplayActive();
    const execute = (): Record<string, OnnxValue> => {
      const results = this.runGraph(graph, bound, outer, wanted, 'the main graph', freeEarly);
      const out: Record<string, OnnxValue> = {};
      wanted.forEach((name, i) => { out[name] = results[i]!; });
      return out;
    };
    return recording ? execute() : scope(execute);
  }

  /** Checks a feed against the declared input type and shape; wraps bare tensors. */
  private checkFeed(name: string, feed: Tensor | OnnxValue, type: TypeProto | undefined): OnnxValue {
    if (!(feed instanceof Tensor)) return feed;
    if (type?.kind !== 'tensor') return onnxTensor(feed);
    const dtype = requireStorageDType(type.elemType, `input '${name}'`);
    if (feed.dtype !== dtype) {
      throw new TesseraError(`onnx: input '${name}' is ${elemTypeName(type.elemType)} (a tessera ${dtype} tensor), got a ${feed.dtype} tensor; cast it first (x.to('${dtype}'))`);
    }
    const shape = type.shape;
    if (shape !== undefined) {
      const ok = shape.length === feed.rank && shape.every((d, i) => typeof d !== 'number' || d === feed.shape[i]);
      if (!ok) {
        const want = shape.map((d) => (d === undefined ? '?' : String(d))).join(', ');
        throw new TesseraError(`onnx: input '${name}' must have shape [${want}], got [${feed.shape.join(', ')}]`);
      }
    }
    return onnxTensor(feed, type.elemType);
  }

  /**
   * Interprets one graph: binds `inputs`, runs each node in file order (ONNX requires a
   * topological order), frees each intermediate after its last reader, and returns the values
   * of `wanted` (the graph's outputs).
   */
  private runGraph(graph: GraphProto, inputs: ReadonlyMap<string, OnnxValue>, outer: Lookup, wanted: readonly string[], where: string, freeEarly: boolean): OnnxValue[] {
    const values = new Map<string, OnnxValue>(inputs);
    const local = new Map<string, OnnxValue>();
    for (const init of graph !== this.proto.graph ? graph.initializers : []) {
      local.set(init.name, this.decodeOnce(init, () => tensorFromProto(init, `initializer '${init.name}' of ${where}`)));
    }
    const lookup: Lookup = (name) => values.get(name) ?? local.get(name) ?? outer(name);

    // The index of the last node that reads each name produced here, to free it after.
    const { reads, lastRead, constant, impls, opsets, hasSubgraph } = this.analyze(graph);
    const keep = new Set<string>([...wanted, ...inputs.keys()]);
    // Tensors this graph did not create (inputs, initializers, outer values) are never freed
    // here, even when an op hands one back under a new name (Identity).
    const foreign = new Set<Tensor>([...inputs.values()].flatMap(tensorsOf));
    // A tensor may be bound to several names (Identity may return its input); count them.
    const bindings = new Map<Tensor, number>();
    const bind = (name: string, v: OnnxValue): void => {
      values.set(name, v);
      for (const t of tensorsOf(v)) bindings.set(t, (bindings.get(t) ?? 0) + 1);
    };
    const release = (name: string): void => {
      const v = values.get(name);
      if (v === undefined || keep.has(name)) return;
      values.delete(name);
      for (const t of tensorsOf(v)) {
        const n = (bindings.get(t) ?? 1) - 1;
        bindings.set(t, n);
        if (n === 0 && freeEarly && !foreign.has(t) && !this.owned.has(t) && !t.isDisposed) t.dispose();
      }
    };

    const runSubgraph = (g: GraphProto, subInputs: readonly OnnxValue[], subWhere: string): OnnxValue[] => {
      if (subInputs.length !== g.inputs.length) {
        throw new TesseraError(`onnx: ${subWhere} takes ${g.inputs.length} inputs, got ${subInputs.length}`);
      }
      const bound = new Map<string, OnnxValue>();
      g.inputs.forEach((input, i) => bound.set(input.name, subInputs[i]!));
      return this.runGraph(g, bound, lookup, g.outputs.map((o) => o.name), subWhere, freeEarly);
    };

    graph.nodes.forEach((node, index) => {
      const args = node.inputs.map((name) => {
        if (name === '') return undefined;
        const v = lookup(name);
        if (v === undefined) throw new TesseraError(`onnx: ${node.opType} node '${node.name}' in ${where} reads '${name}', which no earlier node, input or initializer defines`);
        if (!values.has(name)) for (const t of tensorsOf(v)) foreign.add(t);
        return v;
      });
      // A subgraph (If, Loop, Scan, SequenceMap) may hand back a value it read from outside this
      // graph (an If branch returning an initializer): like the inputs above, not this graph's to free.
      if (hasSubgraph[index]) {
        for (const name of reads[index]!) if (!values.has(name)) for (const t of tensorsOf(lookup(name))) foreign.add(t);
      }
      const run = (): OpResult[] => impls[index]!.run(new NodeContext(node, opsets[index]!, args, runSubgraph, this.decodeAttr));
      const results = constant[index] === true ? this.foldOnce(node, run, args) : run();
      node.outputs.forEach((name, i) => {
        if (name === '') return;
        const r = results[i];
        if (r === undefined) {
          if (lastRead.has(name) || wanted.includes(name)) throw new TesseraError(`onnx ${node.opType}${node.name !== '' ? ` (node '${node.name}')` : ''}: output ${i} ('${name}') is used but this implementation does not produce it`);
          return;
        }
        bind(name, r instanceof Tensor ? onnxTensor(r, inferType(r, args)) : r);
      });
      // Outputs nobody reads (and that are not graph outputs) go at once.
      for (const name of node.outputs) if (name !== '' && !lastRead.has(name)) release(name);
      for (const name of node.inputs) if (name !== '' && lastRead.get(name) === index && values.has(name)) release(name);
    });

    return wanted.map((name) => {
      const v = lookup(name);
      if (v === undefined) throw new TesseraError(`onnx: ${where} declares output '${name}', but nothing produces it`);
      return v;
    });
  }

  /** decodeOnce for NodeContext's tensor attributes (one function for every node). */
  private readonly decodeAttr = (a: AttributeProto, decode: () => OnnxTensor): OnnxTensor => this.decodeOnce(a, decode);

  /** A tensor decoded from the file once and kept, owned by the model, for every later run. */
  private decodeOnce(key: AttributeProto | TensorProto, decode: () => OnnxTensor): OnnxTensor {
    let v = this.decoded.get(key);
    if (v === undefined) {
      v = decode();
      keep(v.tensor);
      this.owned.add(v.tensor);
      this.decoded.set(key, v);
    }
    return v;
  }

  private analyze(graph: GraphProto): GraphAnalysis {
    let a = this.readsCache.get(graph);
    if (a === undefined) {
      const reads = graph.nodes.map(nodeReads);
      const lastRead = new Map<string, number>();
      reads.forEach((names, i) => { for (const name of names) lastRead.set(name, i); });
      a = {
        reads, lastRead,
        constant: this.trainable ? graph.nodes.map(() => false) : constantNodes(graph, this.fixedInitializers),
        // load() checked that every node has an implementation.
        impls: graph.nodes.map((n) => lookupOnnxOp(n.domain, n.opType)!),
        opsets: graph.nodes.map((n) => this.opsets.get(canonicalDomain(n.domain)) ?? 1),
        hasSubgraph: graph.nodes.map((n) => n.attributes.some((at) => at.type === AttrType.GRAPH || at.type === AttrType.GRAPHS)),
      };
      this.readsCache.set(graph, a);
    }
    return a;
  }

  /**
   * A constant node's outputs: computed by `run` at the first eager run and kept for every later
   * one (the shape arithmetic of Constant → Unsqueeze → Concat → Slice chains that models carry).
   * Nothing is cached while jit traces or replays: a trace must record the ops its replays will
   * meet, and a replay's kernels return placeholders.
   */
  private foldOnce(node: NodeProto, run: () => OpResult[], args: readonly (OnnxValue | undefined)[]): OpResult[] {
    const cached = this.folded.get(node);
    if (cached !== undefined) return cached;
    const results = run();
    if (activeTracer() !== undefined || piecewiseReplayActive()) return results;
    const values = results.map((r) => (r instanceof Tensor ? onnxTensor(r, inferType(r, args)) : r));
    for (const v of values) {
      for (const t of tensorsOf(v)) {
        keep(t);
        this.owned.add(t);
      }
    }
    this.folded.set(node, values);
    return values;
  }

  /** Frees the initializers' memory and every tensor decoded from the file or folded. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.owned) if (!t.isDisposed) t.dispose();
    this.owned.clear();
    this.decoded.clear();
    this.folded.clear();
  }
}

/**
 * The ONNX type of a bare tensor an op returned: the first tensor input's type when it has the
 * same storage (an INT64 Add stays INT64), else the type the tessera dtype stands for.
 */
function inferType(result: Tensor, args: readonly (OnnxValue | undefined)[]): number {
  for (const a of args) {
    // Narrow types held in a wider storage (8/4-bit floats in float32, 4/2-bit integers in int8)
    // are never adopted: a float32 result computed from a FLOAT8 input is no longer FLOAT8.
    if (a?.kind === 'tensor' && storageDType(a.type) === result.dtype && !isNarrowElemType(a.type)) return a.type;
  }
  return defaultElemType(result.dtype);
}

/** Loads an ONNX model from the bytes of a .onnx file (`OnnxModel.load`). */
export function load(bytes: Uint8Array, options: OnnxLoadOptions = {}): OnnxModel {
  return OnnxModel.load(bytes, options);
}

/** Casts a tensor to the storage of an ONNX element type (for ops that produce a declared type). */
export function toElemType(x: Tensor, type: number, where: string): OnnxTensor {
  const dtype = requireStorageDType(type, where);
  return onnxTensor(x.dtype === dtype ? x : cast(x, dtype), type);
}
