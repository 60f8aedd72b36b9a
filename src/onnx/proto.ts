// The ONNX messages tessera reads, decoded from protobuf into plain objects. Field numbers are
// those of onnx/onnx.proto3 (IR version ≤ 10). Fields tessera does not use (doc strings,
// metadata, training info, quantization annotations) are skipped.

import { TesseraError } from '../core/errors.js';
import { ProtoReader, WireType } from './protobuf.js';

/** TensorProto.DataType. */
export enum ElemType {
  UNDEFINED = 0, FLOAT = 1, UINT8 = 2, INT8 = 3, UINT16 = 4, INT16 = 5, INT32 = 6, INT64 = 7,
  STRING = 8, BOOL = 9, FLOAT16 = 10, DOUBLE = 11, UINT32 = 12, UINT64 = 13, COMPLEX64 = 14,
  COMPLEX128 = 15, BFLOAT16 = 16, FLOAT8E4M3FN = 17, FLOAT8E4M3FNUZ = 18, FLOAT8E5M2 = 19,
  FLOAT8E5M2FNUZ = 20, UINT4 = 21, INT4 = 22,
}

export const ELEM_TYPE_NAMES: Record<number, string> = {
  0: 'UNDEFINED', 1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64',
  8: 'STRING', 9: 'BOOL', 10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64',
  15: 'COMPLEX128', 16: 'BFLOAT16', 17: 'FLOAT8E4M3FN', 18: 'FLOAT8E4M3FNUZ', 19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ', 21: 'UINT4', 22: 'INT4', 23: 'FLOAT4E2M1', 24: 'FLOAT8E8M0', 25: 'UINT2', 26: 'INT2',
};

export function elemTypeName(t: number): string {
  return ELEM_TYPE_NAMES[t] ?? `data type ${t}`;
}

export interface TensorProto {
  name: string;
  dims: number[];
  dataType: number;
  /** Exactly one of the payloads is normally set; raw data is little-endian. */
  rawData?: Uint8Array;
  floatData: number[];
  int32Data: number[];
  int64Data: number[];
  doubleData: number[];
  uint64Data: number[];
  stringData: Uint8Array[];
  /** Set when the payload lives in an external file (not supported: the error names the file). */
  externalLocation?: string;
}

export interface OperatorSetId {
  domain: string;
  version: number;
}

/** A tensor type: element type and shape, each dimension a size, a symbolic name or unknown. */
export interface TensorTypeProto {
  kind: 'tensor';
  elemType: number;
  shape?: (number | string | undefined)[];
}
export interface SequenceTypeProto {
  kind: 'sequence';
  elem?: TypeProto;
}
export interface OptionalTypeProto {
  kind: 'optional';
  elem?: TypeProto;
}
export interface OtherTypeProto {
  kind: 'map' | 'sparse' | 'unknown';
}
export type TypeProto = TensorTypeProto | SequenceTypeProto | OptionalTypeProto | OtherTypeProto;

export interface ValueInfoProto {
  name: string;
  type?: TypeProto;
}

/** AttributeProto.AttributeType. */
export enum AttrType {
  UNDEFINED = 0, FLOAT = 1, INT = 2, STRING = 3, TENSOR = 4, GRAPH = 5, FLOATS = 6, INTS = 7,
  STRINGS = 8, TENSORS = 9, GRAPHS = 10, SPARSE_TENSOR = 11, SPARSE_TENSORS = 12, TYPE_PROTO = 13,
  TYPE_PROTOS = 14,
}

export interface AttributeProto {
  name: string;
  type: number;
  /** Set inside a function body: the attribute takes the caller's attribute of this name. */
  refAttrName?: string;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  tp?: TypeProto;
  floats: number[];
  ints: number[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
}

export interface NodeProto {
  name: string;
  opType: string;
  domain: string;
  /** Input names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: AttributeProto[];
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  /** Count of sparse initializers (not supported; the loader refuses them by name). */
  sparseInitializers: number;
}

/** A model-local function (FunctionProto): a node whose op type names it runs its body. */
export interface FunctionProto {
  name: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  /** Attribute names the body may reference; with defaults where `attributeProtos` gives them. */
  attributes: string[];
  attributeDefaults: AttributeProto[];
  nodes: NodeProto[];
  opsetImport: OperatorSetId[];
}

export interface ModelProto {
  irVersion: number;
  opsetImport: OperatorSetId[];
  producerName: string;
  producerVersion: string;
  graph: GraphProto;
  functions: FunctionProto[];
}

/** SequenceProto and OptionalProto, as the ONNX backend tests store sequence and optional values. */
export interface SequenceProto {
  name: string;
  elemType: number;
  tensors: TensorProto[];
  sequences: SequenceProto[];
  optionals: OptionalProto[];
}
export interface OptionalProto {
  name: string;
  elemType: number;
  tensor?: TensorProto;
  sequence?: SequenceProto;
  optional?: OptionalProto;
}

export function decodeTensorProto(r: ProtoReader): TensorProto {
  const t: TensorProto = { name: '', dims: [], dataType: 0, floatData: [], int32Data: [], int64Data: [], doubleData: [], uint64Data: [], stringData: [] };
  let external = false;
  while (!r.done) {
    const { field, wire } = r.key();
    switch (field) {
      case 1: r.repeatedVarint(wire, t.dims); break;
      case 2: t.dataType = r.int32(); break;
      case 4: r.repeatedFloat(wire, t.floatData); break;
      case 5: r.repeatedVarint(wire, t.int32Data); break;
      case 6: t.stringData.push(r.bytesField()); break;
      case 7: r.repeatedVarint(wire, t.int64Data); break;
      case 8: t.name = r.string(); break;
      case 9: t.rawData = r.bytesField(); break;
      case 10: r.repeatedDouble(wire, t.doubleData); break;
      case 11: r.repeatedVarint(wire, t.uint64Data); break;
      case 13: {
        // StringStringEntryProto { key = 1; value = 2 }
        const entry = r.message('external_data');
        let key = '';
        let value = '';
        while (!entry.done) {
          const k = entry.key();
          if (k.field === 1) key = entry.string();
          else if (k.field === 2) value = entry.string();
          else entry.skip(k.wire);
        }
        if (key === 'location') t.externalLocation = value;
        break;
      }
      case 14: external = r.int32() === 1; break;
      default: r.skip(wire);
    }
  }
  if (external && t.externalLocation === undefined) t.externalLocation = '(no location given)';
  // The int32 fields of int32_data hold int8/int16/uint8/uint16/bool values too; varint decoding of
  // negative int32s gives the 64-bit two's complement, so fold them back to 32 bits.
  for (let i = 0; i < t.int32Data.length; i++) t.int32Data[i] = t.int32Data[i]! | 0;
  return t;
}

function decodeTensorShape(r: ProtoReader): (number | string | undefined)[] {
  const dims: (number | string | undefined)[] = [];
  while (!r.done) {
    const { field, wire } = r.key();
    if (field !== 1) { r.skip(wire); continue; }
    const d = r.message('dim');
    let dim: number | string | undefined;
    while (!d.done) {
      const k = d.key();
      if (k.field === 1) dim = d.varint();
      else if (k.field === 2) dim = d.string();
      else d.skip(k.wire);
    }
    dims.push(dim);
  }
  return dims;
}

export function decodeTypeProto(r: ProtoReader): TypeProto {
  let type: TypeProto = { kind: 'unknown' };
  while (!r.done) {
    const { field, wire } = r.key();
    switch (field) {
      case 1: {
        const tt = r.message('tensor_type');
        const tensor: TensorTypeProto = { kind: 'tensor', elemType: 0 };
        while (!tt.done) {
          const k = tt.key();
          if (k.field === 1) tensor.elemType = tt.int32();
          else if (k.field === 2) tensor.shape = decodeTensorShape(tt.message('shape'));
          else tt.skip(k.wire);
        }
        type = tensor;
        break;
      }
      case 4:
      case 9: {
        const inner = r.message(field === 4 ? 'sequence_type' : 'optional_type');
        let elem: TypeProto | undefined;
        while (!inner.done) {
          const k = inner.key();
          if (k.field === 1) elem = decodeTypeProto(inner.message('elem_type'));
          else inner.skip(k.wire);
        }
        type = field === 4 ? { kind: 'sequence', elem } : { kind: 'optional', elem };
        break;
      }
      case 5: r.skip(wire); type = { kind: 'map' }; break;
      case 8: r.skip(wire); type = { kind: 'sparse' }; break;
      default: r.skip(wire);
    }
  }
  return type;
}

function decodeValueInfo(r: ProtoReader): ValueInfoProto {
  const v: ValueInfoProto = { name: '' };
  while (!r.done) {
    const { field, wire } = r.key();
    if (field === 1) v.name = r.string();
    else if (field === 2) v.type = decodeTypeProto(r.message('type'));
    else r.skip(wire);
  }
  return v;
}

function decodeAttribute(r: ProtoReader): AttributeProto {
  const a: AttributeProto = { name: '', type: 0, floats: [], ints: [], strings: [], tensors: [], graphs: [] };
  while (!r.done) {
    const { field, wire } = r.key();
    switch (field) {
      case 1: a.name = r.string(); break;
      case 2: a.f = r.fixed32Float(); break;
      case 3: a.i = r.varint(); break;
      case 4: a.s = r.bytesField(); break;
      case 5: a.t = decodeTensorProto(r.message('t')); break;
      case 6: a.g = decodeGraph(r.message('g')); break;
      case 7: r.repeatedFloat(wire, a.floats); break;
      case 8: r.repeatedVarint(wire, a.ints); break;
      case 9: a.strings.push(r.bytesField()); break;
      case 10: a.tensors.push(decodeTensorProto(r.message('tensors'))); break;
      case 11: a.graphs.push(decodeGraph(r.message('graphs'))); break;
      case 14: a.tp = decodeTypeProto(r.message('tp')); break;
      case 20: a.type = r.int32(); break;
      case 21: a.refAttrName = r.string(); break;
      default: r.skip(wire);
    }
  }
  // Files from before IR version 2 may leave `type` unset; infer it from the field present.
  if (a.type === 0) {
    if (a.f !== undefined) a.type = AttrType.FLOAT;
    else if (a.i !== undefined) a.type = AttrType.INT;
    else if (a.s !== undefined) a.type = AttrType.STRING;
    else if (a.t !== undefined) a.type = AttrType.TENSOR;
    else if (a.g !== undefined) a.type = AttrType.GRAPH;
    else if (a.floats.length > 0) a.type = AttrType.FLOATS;
    else if (a.ints.length > 0) a.type = AttrType.INTS;
    else if (a.strings.length > 0) a.type = AttrType.STRINGS;
  }
  return a;
}

function decodeNode(r: ProtoReader): NodeProto {
  const n: NodeProto = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: [] };
  while (!r.done) {
    const { field, wire } = r.key();
    switch (field) {
      case 1: n.inputs.push(r.string()); break;
      case 2: n.outputs.push(r.string()); break;
      case 3: n.name = r.string(); break;
      case 4: n.opType = r.string(); break;
      case 5: n.attributes.push(decodeAttribute(r.message('attribute'))); break;
      case 7: n.domain = r.string(); break;
      default: r.skip(wire);
    }
  }
  return n;
}

export function decodeGraph(r: ProtoReader): GraphProto {
  const g: GraphProto = { name: '', nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [], sparseInitializers: 0 };
  while (!r.done) {
    const { field, wire } = r.key();
    switch (field) {
      case 1: g.nodes.push(decodeNode(r.message(`node[${g.nodes.length}]`))); break;
      case 2: g.name = r.string(); break;
      case 5: g.initializers.push(decodeTensorProto(r.message('initializer'))); break;
      case 11: g.inputs.push(decodeValueInfo(r.message('input'))); break;
      case 12: g.outputs.push(decodeValueInfo(r.message('output'))); break;
      case 13: g.valueInfo.push(decodeValueInfo(r.message('value_info'))); break;
      case 15: r.skip(wire); g.sparseInitializers++; break;
      default: r.skip(wire);
    }
  }
  return g;
}

function decodeOpset(r: ProtoReader): OperatorSetId {
  const o: OperatorSetId = { domain: '', version: 0 };
  while (!r.done) {
    const { field, wire } = r.key();
    if (field === 1) o.domain = r.string();
    else if (field === 2) o.version = r.varint();
    else r.skip(wire);
  }
  return o;
}

function decodeFunction(r: ProtoReader): FunctionProto {
  const f: FunctionProto = { name: '', domain: '', inputs: [], outputs: [], attributes: [], attributeDefaults: [], nodes: [], opsetImport: [] };
  while (!r.done) {
    const { field, wire } = r.key();
    switch (field) {
      case 1: f.name = r.string(); break;
      case 4: f.inputs.push(r.string()); break;
      case 5: f.outputs.push(r.string()); break;
      case 6: f.attributes.push(r.string()); break;
      case 7: f.nodes.push(decodeNode(r.message(`node[${f.nodes.length}]`))); break;
      case 9: f.opsetImport.push(decodeOpset(r.message('opset_import'))); break;
      case 10: f.domain = r.string(); break;
      case 11: {
        const a = decodeAttribute(r.message('attribute_proto'));
        f.attributes.push(a.name);
        f.attributeDefaults.push(a);
        break;
      }
      default: r.skip(wire);
    }
  }
  return f;
}

/** Decodes an ONNX model file (ModelProto). */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const r = new ProtoReader(bytes, 0, bytes.length, 'ModelProto');
  const m: Partial<ModelProto> & { opsetImport: OperatorSetId[]; functions: FunctionProto[] } = { irVersion: 0, producerName: '', producerVersion: '', opsetImport: [], functions: [] };
  while (!r.done) {
    const { field, wire } = r.key();
    switch (field) {
      case 1: m.irVersion = r.varint(); break;
      case 2: m.producerName = r.string(); break;
      case 3: m.producerVersion = r.string(); break;
      case 7: m.graph = decodeGraph(r.message('graph')); break;
      case 8: m.opsetImport.push(decodeOpset(r.message('opset_import'))); break;
      case 25: m.functions.push(decodeFunction(r.message('functions'))); break;
      default: r.skip(wire);
    }
  }
  if (m.graph === undefined) {
    throw new TesseraError(`onnx: the ${bytes.length} bytes hold no ModelProto.graph; they are not an ONNX model (a bare GraphProto or TensorProto is not loadable as a model)`);
  }
  return m as ModelProto;
}

/** Decodes a serialized TensorProto (the backend tests' input_N.pb / output_N.pb). */
export function decodeTensor(bytes: Uint8Array): TensorProto {
  return decodeTensorProto(new ProtoReader(bytes, 0, bytes.length, 'TensorProto'));
}

export function decodeSequenceProto(r: ProtoReader): SequenceProto {
  const s: SequenceProto = { name: '', elemType: 0, tensors: [], sequences: [], optionals: [] };
  while (!r.done) {
    const { field, wire } = r.key();
    switch (field) {
      case 1: s.name = r.string(); break;
      case 2: s.elemType = r.int32(); break;
      case 3: s.tensors.push(decodeTensorProto(r.message('tensor_values'))); break;
      case 5: s.sequences.push(decodeSequenceProto(r.message('sequence_values'))); break;
      case 7: s.optionals.push(decodeOptionalProto(r.message('optional_values'))); break;
      default: r.skip(wire);
    }
  }
  return s;
}

export function decodeOptionalProto(r: ProtoReader): OptionalProto {
  const o: OptionalProto = { name: '', elemType: 0 };
  while (!r.done) {
    const { field, wire } = r.key();
    switch (field) {
      case 1: o.name = r.string(); break;
      case 2: o.elemType = r.int32(); break;
      case 3: o.tensor = decodeTensorProto(r.message('tensor_value')); break;
      case 5: o.sequence = decodeSequenceProto(r.message('sequence_value')); break;
      case 7: o.optional = decodeOptionalProto(r.message('optional_value')); break;
      default: r.skip(wire);
    }
  }
  return o;
}

export { WireType };
