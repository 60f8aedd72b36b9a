// Writes ONNX models: plain descriptions of a graph (nodes, initializers, typed inputs and
// outputs) encoded as a ModelProto. ONNX export builds on it, and tests use it to make small
// models without Python.

import { TesseraError } from '../core/errors.js';
import { AttrType, ElemType } from './proto.js';
import { ProtoWriter } from './protobuf.js';
import { encodeTensorProto } from './tensor-proto.js';

/** A tensor value: element type, dimensions, row-major values. */
export interface TensorDesc {
  readonly type: number;
  readonly dims: readonly number[];
  readonly values: ArrayLike<number>;
}

/** An attribute value: numbers are INT unless wrapped as { float }, arrays are INTS unless { floats }. */
export type AttrDesc =
  | number
  | { readonly float: number }
  | readonly number[]
  | { readonly floats: readonly number[] }
  | string
  | { readonly tensor: TensorDesc }
  | { readonly graph: GraphDesc };

export interface NodeDesc {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  readonly domain?: string;
  readonly attrs?: Readonly<Record<string, AttrDesc>>;
}

/** A graph input or output: a tensor of an element type and shape (dims may be symbolic names). */
export interface ValueDesc {
  readonly name: string;
  readonly type: number;
  readonly shape?: readonly (number | string)[];
}

export interface GraphDesc {
  readonly name?: string;
  readonly nodes: readonly NodeDesc[];
  readonly inputs: readonly ValueDesc[];
  readonly outputs: readonly ValueDesc[];
  readonly initializers?: Readonly<Record<string, TensorDesc>>;
}

export interface ModelDesc {
  readonly graph: GraphDesc;
  /** Default-domain opset version (default 17). */
  readonly opset?: number;
  readonly irVersion?: number;
  readonly producerName?: string;
}

function writeValueInfo(w: ProtoWriter, v: ValueDesc): void {
  w.stringField(1, v.name);
  w.messageField(2, (type) => type.messageField(1, (tensor) => {
    tensor.varintField(1, v.type);
    if (v.shape !== undefined) {
      tensor.messageField(2, (shape) => {
        for (const d of v.shape!) shape.messageField(1, (dim) => (typeof d === 'number' ? dim.varintField(1, d) : dim.stringField(2, d)));
      });
    }
  }));
}

function writeAttribute(w: ProtoWriter, name: string, a: AttrDesc): void {
  w.stringField(1, name);
  if (typeof a === 'number') {
    w.varintField(3, a).varintField(20, AttrType.INT);
  } else if (typeof a === 'string') {
    w.stringField(4, a).varintField(20, AttrType.STRING);
  } else if (Array.isArray(a)) {
    w.packedVarints(8, a as readonly number[]).varintField(20, AttrType.INTS);
  } else if ('float' in a) {
    w.floatField(2, a.float).varintField(20, AttrType.FLOAT);
  } else if ('floats' in a) {
    w.packedFloats(7, a.floats).varintField(20, AttrType.FLOATS);
  } else if ('tensor' in a) {
    w.bytesField(5, encodeTensorProto('', a.tensor.type, a.tensor.dims, a.tensor.values)).varintField(20, AttrType.TENSOR);
  } else if ('graph' in a) {
    w.messageField(6, (g) => writeGraph(g, a.graph)).varintField(20, AttrType.GRAPH);
  } else {
    throw new TesseraError(`onnx: cannot encode attribute '${name}': ${JSON.stringify(a)}`);
  }
}

function writeGraph(w: ProtoWriter, g: GraphDesc): void {
  g.nodes.forEach((n, i) => {
    w.messageField(1, (node) => {
      for (const input of n.inputs) node.stringField(1, input);
      for (const output of n.outputs) node.stringField(2, output);
      node.stringField(3, n.name ?? `${n.op}_${i}`);
      node.stringField(4, n.op);
      for (const [name, value] of Object.entries(n.attrs ?? {})) node.messageField(5, (attr) => writeAttribute(attr, name, value));
      if (n.domain !== undefined) node.stringField(7, n.domain);
    });
  });
  w.stringField(2, g.name ?? 'graph');
  for (const [name, t] of Object.entries(g.initializers ?? {})) w.bytesField(5, encodeTensorProto(name, t.type, t.dims, t.values));
  for (const v of g.inputs) w.messageField(11, (vi) => writeValueInfo(vi, v));
  for (const v of g.outputs) w.messageField(12, (vi) => writeValueInfo(vi, v));
}

/** Encodes a model description as the bytes of a .onnx file. */
export function encodeModel(m: ModelDesc): Uint8Array {
  const w = new ProtoWriter();
  w.varintField(1, m.irVersion ?? 8);
  w.stringField(2, m.producerName ?? 'tessera');
  w.messageField(7, (g) => writeGraph(g, m.graph));
  w.messageField(8, (o) => o.stringField(1, '').varintField(2, m.opset ?? 17));
  return w.finish();
}

export { ElemType };
