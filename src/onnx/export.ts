// ONNX export, the counterpart of torch.onnx.export: `exportOnnx(fn, exampleInputs)` traces fn
// with tessera's tracer (graph/trace.ts) on the example inputs and writes the traced graph as an
// ONNX model (the bytes of a .onnx file). Each primitive node becomes a few ONNX nodes
// (export-ops.ts has the table), parameters and constants become initializers.
import { noGrad } from '../autodiff/mode.js';
import type { DType } from '../core/dtype.js';
import { castScalar } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { Graph, GraphNode, ValueId } from '../graph/graph.js';
import { trace } from '../graph/trace.js';
import { setConvAlgorithm } from '../ops/nn/conv-algorithm.js';
import type { PrimitiveName, ValueInfo } from '../ops/primitives.js';
import { encodeModel, type GraphDesc, type TensorDesc, type ValueDesc } from './encode.js';
import { dynamicGraphDesc } from './export-dynamic.js';
import { ElemType } from './proto.js';
import { onnxElemType, TRANSLATIONS, type Emitter, type OnnxAttrs, type Translator } from './export-ops.js';

export interface ExportOnnxOptions {
  /** Names of the graph inputs, one per example input (default input_0, input_1, ...). */
  inputNames?: readonly string[];
  /**
   * Names of the graph outputs (default: 'output' for a single tensor, output_0, ... for an
   * array, the keys of a returned record).
   */
  outputNames?: readonly string[];
  /** Default-domain opset, 13 to 21 (default 17). */
  opset?: number;
  /** ModelProto.producer_name (default 'tessera'). */
  producerName?: string;
  /**
   * The module whose parameters and buffers fn uses: their initializers are then named as in
   * module.namedParameters() / namedBuffers() (e.g. 'blocks.0.attn.in_proj_weight'); others are
   * named param_0, param_1, ... and const_0, const_1, ...
   */
  module?: { namedParameters(): Iterable<[string, Tensor]>; namedBuffers?(): Iterable<[string, Tensor]> };
  /**
   * Axes of the inputs whose size the model accepts at any value, like torch.onnx.export's
   * dynamic_axes: per input name, axis → symbol name (`{ x: { 0: 'batch' } }`), or a list of axes
   * (named `<input>_dim<axis>`). Inputs may share a symbol. See export-dynamic.ts for how sizes
   * that depend on them (reshape targets, a mean's count) become computed in the graph.
   */
  dynamicAxes?: Readonly<Record<string, Readonly<Record<number, string>> | readonly number[]>>;
}

type ExportResult = Tensor | readonly Tensor[] | Readonly<Record<string, Tensor>>;

const MIN_OPSET = 13;
const MAX_OPSET = 21;

/**
 * Exports `fn` as an ONNX model: runs it once on `exampleInputs` (under noGrad, with convolutions
 * forced onto the direct algorithm so that each traces to one Conv), and translates what it
 * computed. The result is the bytes of a .onnx file (IR 8 up to opset 18, newer IR for newer opsets).
 *
 * Shapes are static unless `dynamicAxes` names axes that may vary (export-dynamic.ts): the model
 * takes inputs of exactly the example inputs' shapes otherwise, and dtypes as given (tessera's
 * dtypes map onto ONNX's: int32 stays INT32, bool is BOOL). JavaScript control flow is baked in as the example inputs took it, so a
 * function that reads tensor values (item, toArray, data) is refused, as are in-place writes
 * (BatchNorm statistics in training mode, optimizer steps), random draws (dropout in training
 * mode: call model.eval() first), backward-only primitives and primitives without an ONNX
 * counterpart (quantized matmuls, matrix decompositions); the error names the primitive.
 */
export function exportOnnx(fn: (...inputs: Tensor[]) => ExportResult, exampleInputs: readonly Tensor[], options: ExportOnnxOptions = {}): Uint8Array {
  const opset = options.opset ?? 17;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new TesseraError(`exportOnnx: opset ${opset} is not supported; tessera writes opsets ${MIN_OPSET} to ${MAX_OPSET} (default 17).`);
  }
  if (options.inputNames !== undefined && options.inputNames.length !== exampleInputs.length) {
    throw new TesseraError(`exportOnnx: ${options.inputNames.length} input name(s) for ${exampleInputs.length} example input(s).`);
  }
  const inputNames = options.inputNames ?? exampleInputs.map((_, i) => `input_${i}`);
  const toDesc = (inputs: readonly Tensor[], dedupConstants: boolean): GraphDesc => traceToGraphDesc(fn, inputs, inputNames, options, opset, dedupConstants);
  const graph = options.dynamicAxes === undefined
    ? toDesc(exampleInputs, true)
    : dynamicGraphDesc(exampleInputs, inputNames, options.dynamicAxes, opset, (inputs) => toDesc(inputs, false));
  return encodeModel({ graph, opset, irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : 8, producerName: options.producerName ?? 'tessera' });
}

/** Traces fn on `inputs` and translates the graph (every shape static). */
function traceToGraphDesc(
  fn: (...inputs: Tensor[]) => ExportResult, inputs: readonly Tensor[], inputNames: readonly string[],
  options: ExportOnnxOptions, opset: number, dedupConstants: boolean,
): GraphDesc {
  const previous = setConvAlgorithm('direct');
  let traced: { graph: Graph; result: ExportResult };
  try {
    traced = noGrad(() => trace(fn, inputs));
  } finally {
    setConvAlgorithm(previous);
  }
  const { graph, result } = traced;
  if (graph.guards.length > 0) {
    throw new TesseraError(`exportOnnx: the traced function read the values of ${graph.guards.length} traced tensor(s) (item, toArray, data, or an op that reads values); `
      + 'an exported graph would assume those values for every input. Compute with tensor ops instead of reading values.');
  }
  if (graph.writes.length > 0) {
    throw new TesseraError('exportOnnx: the traced function writes into tensors (in-place updates of parameters or buffers, such as BatchNorm running statistics in training mode, or a gradient); '
      + 'an exported inference graph has no state. Call model.eval() before exporting and keep optimizer steps and backward() out of the function.');
  }
  const outputNames = options.outputNames ?? defaultOutputNames(result, graph.outputs.length);
  if (outputNames.length !== graph.outputs.length) {
    throw new TesseraError(`exportOnnx: ${outputNames.length} output name(s) for ${graph.outputs.length} output tensor(s).`);
  }
  const all = [...inputNames, ...outputNames];
  const dup = all.find((n, i) => all.indexOf(n) !== i);
  if (dup !== undefined) throw new TesseraError(`exportOnnx: the name '${dup}' is given to two graph inputs/outputs; names must be unique.`);
  const builder = new Builder(graph, opset, all, dedupConstants);
  return builder.build(inputNames, outputNames, knownNames(options.module));
}

function defaultOutputNames(result: ExportResult, count: number): string[] {
  if (Array.isArray(result)) return Array.from({ length: count }, (_, i) => `output_${i}`);
  if (count === 1 && !isRecord(result)) return ['output'];
  if (isRecord(result) && Object.keys(result).length === count) return Object.keys(result);
  return Array.from({ length: count }, (_, i) => `output_${i}`);
}

function isRecord(v: unknown): v is Record<string, Tensor> {
  return v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
}

function knownNames(module: ExportOnnxOptions['module']): Map<Tensor, string> {
  const names = new Map<Tensor, string>();
  if (module === undefined) return names;
  for (const [name, p] of module.namedParameters()) if (!names.has(p)) names.set(p, name);
  for (const [name, b] of module.namedBuffers?.() ?? []) if (!names.has(b)) names.set(b, name);
  return names;
}

/** An ONNX node being built (outputs may be renamed to graph output names, or trimmed). */
interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: OnnxAttrs;
}

/** ONNX nodes whose trailing outputs are optional (dropped when nothing reads them). */
const OPTIONAL_TRAILING_OUTPUTS = new Set(['MaxPool']);

class Builder {
  private readonly nodes: OnnxNode[] = [];
  private readonly initializers = new Map<string, TensorDesc>();
  private readonly taken = new Set<string>();
  /** Constants this export made (shapes, scalars), by content: each is written once. */
  private readonly madeConstants = new Map<string, string>();
  /** ONNX name of each translated tessera value. */
  private readonly names = new Map<ValueId, string>();
  private readonly memo = new Map<string, string>();
  private counter = 0;

  private madeCount = 0;

  /**
   * `dedupConstants`: write equal constants once. Off for dynamic axes, whose traces at several
   * sizes must name the same constants alike even when two of them coincide at one size only.
   */
  constructor(private readonly graph: Graph, private readonly opset: number, reserved: readonly string[], private readonly dedupConstants = true) {
    for (const n of reserved) this.taken.add(n);
  }

  /** `base`, or base_1, base_2... if taken. */
  private unique(base: string): string {
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }

  private fresh(): string {
    return this.unique(`t${this.counter++}`);
  }

  addNode(op: string, inputs: readonly string[], n: number, attrs: OnnxAttrs = {}): string[] {
    const outputs = Array.from({ length: n }, () => this.fresh());
    const node = { op, inputs: [...inputs], outputs, attrs };
    this.nodes.push(node);
    for (const o of outputs) this.producers.set(o, node);
    return outputs;
  }

  /** Static shapes of ONNX names: traced values, and names declared by translations. */
  private readonly shapes = new Map<string, readonly number[]>();
  /** The ONNX node that writes each name. */
  private readonly producers = new Map<string, OnnxNode>();

  reshape(x: string, to: readonly number[]): string {
    const p = this.producers.get(x);
    const src = p !== undefined && p.op === 'Reshape' ? p.inputs[0]! : x;
    const shape = this.shapes.get(src);
    if (shape !== undefined && shape.length === to.length && shape.every((d, i) => d === to[i])) return src;
    // allowzero (opset 14): a 0 in the shape is a size, not "copy this dim".
    if (to.includes(0) && this.opset < 14) {
      throw new TesseraError(`exportOnnx: reshaping to [${to.join(', ')}] (an empty tensor) needs Reshape's allowzero, opset 14 or later; export with { opset: 17 }.`);
    }
    const [out] = this.addNode('Reshape', [src, this.constant(ElemType.INT64, [to.length], to)], 1, to.includes(0) ? { allowzero: 1 } : {});
    this.shapes.set(out!, [...to]);
    return out!;
  }

  constant(type: number, dims: readonly number[], values: ArrayLike<number>): string {
    const key = `${type}|${dims.join(',')}|${Array.from(values).join(',')}`;
    const have = this.dedupConstants ? this.madeConstants.get(key) : undefined;
    if (have !== undefined) return have;
    const name = this.unique(`c${this.madeCount++}`);
    this.initializers.set(name, { type, dims: [...dims], values: Array.from(values) });
    this.madeConstants.set(key, name);
    return name;
  }

  private tensorInitializer(base: string, t: Tensor): string {
    const name = this.unique(base);
    this.initializers.set(name, { type: onnxElemType(t.dtype), dims: [...t.shape], values: t.data() });
    return name;
  }

  /** The ONNX graph: inputs, initializers, the translated nodes that reach the outputs. */
  build(inputNames: readonly string[], outputNames: readonly string[], known: Map<Tensor, string>): GraphDesc {
    const g = this.graph;
    const name = (id: ValueId, n: string): void => {
      this.names.set(id, n);
      this.shapes.set(n, g.value(id).shape);
    };
    g.inputs.forEach((id, i) => name(id, inputNames[i]!));
    let p = 0, c = 0;
    for (const [id, t] of g.parameters) name(id, this.tensorInitializer(known.get(t) ?? `param_${p++}`, t));
    for (const [id, t] of g.constants) name(id, this.tensorInitializer(known.get(t) ?? `const_${c++}`, t));
    for (const node of this.liveNodes()) this.translate(node);

    // Graph outputs: the node that computes one writes it under the output's name; an input, an
    // initializer or a value returned twice goes through an Identity.
    const renames = new Map<string, string>();
    const producer = new Map<string, OnnxNode>();
    for (const n of this.nodes) for (const o of n.outputs) producer.set(o, n);
    g.outputs.forEach((id, k) => {
      const src = this.names.get(id)!;
      const outName = outputNames[k]!;
      if (producer.has(src) && !renames.has(src)) renames.set(src, outName);
      else this.nodes.push({ op: 'Identity', inputs: [renames.get(src) ?? src], outputs: [outName], attrs: {} });
    });
    for (const n of this.nodes) {
      n.inputs = n.inputs.map((s) => renames.get(s) ?? s);
      n.outputs = n.outputs.map((s) => renames.get(s) ?? s);
    }
    const live = this.prune(outputNames);
    const usedNames = new Set(live.flatMap((n) => n.inputs));
    const initializers: Record<string, TensorDesc> = {};
    for (const [name, t] of this.initializers) if (usedNames.has(name) || outputNames.includes(name)) initializers[name] = t;
    const desc = (name: string, id: ValueId): ValueDesc => {
      const v = g.value(id);
      return { name, type: onnxElemType(v.dtype), shape: [...v.shape] };
    };
    return {
      nodes: live.map((n) => ({ op: n.op, inputs: n.inputs, outputs: n.outputs, attrs: n.attrs })),
      inputs: g.inputs.map((id, i) => desc(inputNames[i]!, id)),
      outputs: g.outputs.map((id, k) => desc(outputNames[k]!, id)),
      initializers,
    };
  }

  /** The traced nodes that the outputs depend on, in graph order (the trace records dead ones too). */
  private liveNodes(): GraphNode[] {
    const g = this.graph;
    const needed = new Set<ValueId>(g.outputs);
    const live: boolean[] = new Array<boolean>(g.nodes.length).fill(false);
    for (let i = g.nodes.length - 1; i >= 0; i--) {
      const n = g.nodes[i]!;
      if (!n.outputs.some((o) => needed.has(o))) continue;
      live[i] = true;
      for (const v of n.inputs) needed.add(v);
    }
    return g.nodes.filter((_, i) => live[i]);
  }

  /** ONNX nodes that reach an output, with unread optional trailing outputs dropped. */
  private prune(outputNames: readonly string[]): OnnxNode[] {
    const needed = new Set<string>(outputNames);
    const kept: OnnxNode[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (!n.outputs.some((o) => needed.has(o))) continue;
      if (OPTIONAL_TRAILING_OUTPUTS.has(n.op)) while (n.outputs.length > 1 && !needed.has(n.outputs[n.outputs.length - 1]!)) n.outputs.pop();
      for (const s of n.inputs) needed.add(s);
      kept.push(n);
    }
    return kept.reverse();
  }

  private translate(node: GraphNode): void {
    const entry = (TRANSLATIONS as Partial<Record<string, (typeof TRANSLATIONS)[PrimitiveName]>>)[node.op];
    if (entry === undefined) {
      throw new TesseraError(`exportOnnx: cannot export '${node.op}': it is a graph-level op (such as cond, whileLoop or a fused kernel), not one of tessera's primitives; `
        + 'export the plain function (not a compiled one) and keep data-dependent control flow (cond/whileLoop) out of it.');
    }
    const fail = (why: string): never => {
      throw new TesseraError(`exportOnnx: cannot export primitive '${node.op}': ${why}`);
    };
    if ('refuse' in entry) fail(entry.refuse);
    if (node.outputs.length !== 1) fail(`expected one output, got ${node.outputs.length}.`);
    const g = this.graph;
    const info = (id: ValueId): ValueInfo => g.value(id);
    const nameOf = (id: ValueId): string => {
      const n = this.names.get(id);
      if (n === undefined) throw new TesseraError(`exportOnnx: internal error: value %${id} used by '${node.op}' was not translated.`);
      return n;
    };
    const cast = (name: string, from: DType, to: DType): string => (from === to ? name : this.addNode('Cast', [name], 1, { to: onnxElemType(to) })[0]!);
    const e: Emitter = {
      attrs: node.attrs as Emitter['attrs'],
      opset: this.opset,
      dynamicShapes: !this.dedupConstants,
      inputs: node.inputs.map(info),
      output: info(node.outputs[0]!),
      node,
      in: (i) => nameOf(node.inputs[i]!),
      nameOf,
      inAs: (i, dtype) => cast(nameOf(node.inputs[i]!), info(node.inputs[i]!).dtype, dtype),
      add: (op, inputs, attrs) => this.addNode(op, inputs, 1, attrs)[0]!,
      addMulti: (op, inputs, n, attrs) => this.addNode(op, inputs, n, attrs),
      cast,
      reshape: (x, to) => this.reshape(x, to),
      declareShape: (name, shape) => { this.shapes.set(name, [...shape]); },
      ints: (values) => this.constant(ElemType.INT64, [values.length], values),
      scalar: (value, dtype) => this.constant(onnxElemType(dtype), [], [castScalar(value, dtype)]),
      constant: (type, dims, values) => this.constant(type, dims, values),
      producerOf: (id) => {
        const v = g.value(id);
        return v.kind === 'node' && v.producer !== undefined ? g.nodes[v.producer] : undefined;
      },
      info,
      memo: this.memo,
      fail,
    };
    const result = (entry as Translator<PrimitiveName>)(e);
    this.names.set(node.outputs[0]!, result);
    if (!this.shapes.has(result)) this.shapes.set(result, e.output.shape);
  }
}
