// What an ONNX op implementation sees of its node: the input values, typed attribute accessors
// with the ONNX defaults, the opset version in force, and a way to run subgraphs (If, Loop,
// Scan). Errors raised through `fail` name the op type, the node and the problem.

import type { Tensor } from '../core/tensor.js';
import { TesseraError } from '../core/errors.js';
import { AttrType, elemTypeName, type AttributeProto, type GraphProto, type NodeProto } from './proto.js';
import { tensorFromProto } from './tensor-proto.js';
import { defaultElemType, onnxTensor, type OnnxTensor, type OnnxValue } from './value.js';

const textDecoder = new TextDecoder();

/** A node's attributes by name, built once per node (a model's nodes run again on every call). */
const attributeMaps = new WeakMap<NodeProto, ReadonlyMap<string, AttributeProto>>();
function attributesOf(node: NodeProto): ReadonlyMap<string, AttributeProto> {
  let m = attributeMaps.get(node);
  if (m === undefined) {
    m = new Map(node.attributes.map((a) => [a.name, a]));
    attributeMaps.set(node, m);
  }
  return m;
}

/** Runs a subgraph with the given inputs, seeing the values of the scopes around it. */
export type SubgraphRunner = (graph: GraphProto, inputs: readonly OnnxValue[], where: string) => OnnxValue[];

export class NodeContext {
  private readonly attrs: ReadonlyMap<string, AttributeProto>;

  constructor(
    readonly node: NodeProto,
    /** The opset version of the node's domain that the model imports. */
    readonly opset: number,
    private readonly inputs: readonly (OnnxValue | undefined)[],
    private readonly subgraphRunner: SubgraphRunner,
    /** Decodes a tensor attribute once per model (the model keeps it for later runs). */
    private readonly decodeOnce: (attr: AttributeProto, decode: () => OnnxTensor) => OnnxTensor = (_a, decode) => decode(),
  ) {
    this.attrs = attributesOf(node);
  }

  /** "Conv (node 'conv1')" for messages. */
  get where(): string {
    return `${this.node.opType}${this.node.name !== '' ? ` (node '${this.node.name}')` : ''}`;
  }

  fail(problem: string): never {
    throw new TesseraError(`onnx ${this.where}: ${problem}`);
  }

  // ---- inputs ----------------------------------------------------------------------------

  /** How many inputs the node lists (omitted optional ones included, as ''). */
  get inputCount(): number {
    return this.inputs.length;
  }

  /** True when input i is given (listed and not the empty name). */
  has(i: number): boolean {
    return this.inputs[i] !== undefined;
  }

  value(i: number): OnnxValue | undefined {
    return this.inputs[i];
  }

  /** Input i as an ONNX tensor; fails when it is missing or not a tensor. */
  input(i: number): OnnxTensor {
    const v = this.inputs[i];
    if (v === undefined) this.fail(`input ${i} is required but the node does not give it`);
    if (v.kind !== 'tensor') this.fail(`input ${i} must be a tensor, got a ${v.kind === 'none' ? 'empty optional' : v.kind}`);
    return v;
  }

  /** Input i's tessera tensor. */
  tensor(i: number): Tensor {
    return this.input(i).tensor;
  }

  optionalTensor(i: number): Tensor | undefined {
    return this.has(i) ? this.tensor(i) : undefined;
  }

  /** Input i's ONNX element type. */
  typeOf(i: number): number {
    return this.input(i).type;
  }

  /** Every given input's tensor, in order (variadic ops: Sum, Max, Concat, ...). */
  tensors(): Tensor[] {
    const out: Tensor[] = [];
    for (let i = 0; i < this.inputs.length; i++) if (this.has(i)) out.push(this.tensor(i));
    return out;
  }

  /** The values of an integer (or float) tensor input read to the host: shapes, axes, pads. */
  ints(i: number): number[] {
    const t = this.tensor(i);
    return Array.from(t.data(), Number);
  }

  /** ints(i) when input i is given, else `fallback`. */
  optionalInts(i: number, fallback: number[]): number[];
  optionalInts(i: number): number[] | undefined;
  optionalInts(i: number, fallback?: number[]): number[] | undefined {
    return this.has(i) ? this.ints(i) : fallback;
  }

  /** A scalar input's value (a 0-d or one-element tensor) read to the host. */
  scalar(i: number): number {
    const t = this.tensor(i);
    if (t.size !== 1) this.fail(`input ${i} must hold one value, got shape [${t.shape.join(', ')}]`);
    return Number(t.data()[0]);
  }

  // ---- attributes --------------------------------------------------------------------------

  hasAttr(name: string): boolean {
    return this.attrs.has(name);
  }

  private attr(name: string, type: AttrType, typeName: string): AttributeProto | undefined {
    const a = this.attrs.get(name);
    if (a !== undefined && a.type !== type) this.fail(`attribute '${name}' must be ${typeName}, got attribute type ${a.type}`);
    return a;
  }

  int(name: string, fallback: number): number;
  int(name: string): number | undefined;
  int(name: string, fallback?: number): number | undefined {
    return this.attr(name, AttrType.INT, 'an int')?.i ?? fallback;
  }

  /** An int attribute that must be present. */
  requiredInt(name: string): number {
    const v = this.int(name);
    if (v === undefined) this.fail(`the required attribute '${name}' is missing`);
    return v;
  }

  float(name: string, fallback: number): number;
  float(name: string): number | undefined;
  float(name: string, fallback?: number): number | undefined {
    return this.attr(name, AttrType.FLOAT, 'a float')?.f ?? fallback;
  }

  string(name: string, fallback: string): string;
  string(name: string): string | undefined;
  string(name: string, fallback?: string): string | undefined {
    const s = this.attr(name, AttrType.STRING, 'a string')?.s;
    return s === undefined ? fallback : textDecoder.decode(s);
  }

  intList(name: string, fallback: number[]): number[];
  intList(name: string): number[] | undefined;
  intList(name: string, fallback?: number[]): number[] | undefined {
    return this.attr(name, AttrType.INTS, 'a list of ints')?.ints ?? fallback;
  }

  floatList(name: string, fallback: number[]): number[];
  floatList(name: string): number[] | undefined;
  floatList(name: string, fallback?: number[]): number[] | undefined {
    return this.attr(name, AttrType.FLOATS, 'a list of floats')?.floats ?? fallback;
  }

  stringList(name: string): string[] | undefined {
    return this.attr(name, AttrType.STRINGS, 'a list of strings')?.strings.map((s) => textDecoder.decode(s));
  }

  /** A tensor attribute (Constant's value, ConstantOfShape's value), decoded. */
  tensorAttr(name: string): OnnxTensor | undefined {
    const a = this.attr(name, AttrType.TENSOR, 'a tensor');
    const t = a?.t;
    return t === undefined ? undefined : this.decodeOnce(a!, () => tensorFromProto(t, `attribute '${name}' of ${this.where}`));
  }

  graph(name: string): GraphProto {
    const g = this.attr(name, AttrType.GRAPH, 'a graph')?.g;
    if (g === undefined) this.fail(`the required graph attribute '${name}' is missing`);
    return g;
  }

  // ---- outputs and subgraphs -----------------------------------------------------------------

  /** Tags a result with an ONNX element type (default: the type its tessera dtype stands for). */
  output(tensor: Tensor, type: number = defaultElemType(tensor.dtype)): OnnxTensor {
    return onnxTensor(tensor, type);
  }

  /** Runs a graph attribute with the given inputs (its outer scope is this node's). */
  runSubgraph(graph: GraphProto, inputs: readonly OnnxValue[]): OnnxValue[] {
    return this.subgraphRunner(graph, inputs, `the '${graph.name}' subgraph of ${this.where}`);
  }

  /** A readable element type name, for messages. */
  typeName(type: number): string {
    return elemTypeName(type);
  }
}
