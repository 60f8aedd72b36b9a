// Checkpoints of tensors in the safetensors format.
//
// A state dict ({name: Tensor}) is stored as-is: every tensor under its own name, readable by any
// safetensors tool. A training state is a nested tree (model, optimizer, scheduler, data-loader position,
// random-generator state, step counters...): its tensors are stored under their dotted paths
// ("optimizer.state.0.exp_avg"), and the tree's shape (objects, arrays, Maps with string keys) with its plain values (numbers, strings, booleans,
// null, arrays) is kept as JSON in the header's metadata under "tessera.state", so `loadState` gives back
// the same tree, bit for bit.
//
// The byte-level functions (serialize*/parse*) are browser-safe; save/load/saveState/loadState write and
// read files through the Node adapter, atomically.

import type { DType, TypedArray } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';
import { fromValues } from '../ops/creation.js';
import { loadFile, saveFile } from './file.js';
import { fromHalfBits, toHalfBits } from './half.js';
import { parseSafetensors, serializeSafetensors, type RawTensor, type ParseSafetensorsOptions } from './safetensors.js';

/** A nested training state: tensors and plain JSON-like values in objects and arrays. */
export type StateTree = Tensor | number | string | boolean | null | StateTree[] | Map<string, StateTree> | { [key: string]: StateTree };

export interface LoadOptions {
  /** Backend of the loaded tensors (default: the current backend). */
  backend?: string;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const STATE_KEY = 'tessera.state';
const FORMAT_KEY = 'format';

// --- Tensor <-> raw safetensors records ---------------------------------------------------------------

/** The safetensors record of a tensor (its values in row-major order). */
export function tensorToRaw(t: Tensor): RawTensor {
  const shape = [...t.shape];
  const values = t.data();
  switch (t.dtype) {
    case 'float64': return { dtype: 'F64', shape, data: values as Float64Array };
    case 'float32': return { dtype: 'F32', shape, data: values as Float32Array };
    case 'float16': return { dtype: 'F16', shape, data: toHalfBits(values, 'float16') };
    case 'bfloat16': return { dtype: 'BF16', shape, data: toHalfBits(values, 'bfloat16') };
    case 'int32': return { dtype: 'I32', shape, data: values as Int32Array };
    case 'int8': return { dtype: 'I8', shape, data: values as Int8Array };
    case 'uint8': return { dtype: 'U8', shape, data: values as Uint8Array };
    case 'bool': return { dtype: 'BOOL', shape, data: values as Uint8Array };
  }
}

/**
 * A tensor from a safetensors record. Types tessera lacks are converted when no value changes (I16, U16,
 * and I64/U64/U32 whose values fit int32, as PyTorch's int64 buffers usually do); otherwise an error
 * names the tensor and the value that does not fit.
 */
export function rawToTensor(raw: RawTensor, name: string, options: LoadOptions = {}): Tensor {
  const opts = options.backend === undefined ? {} : { backend: options.backend };
  const make = (values: TypedArray, dtype: DType) => fromValues(values, raw.shape, dtype, opts);
  switch (raw.dtype) {
    case 'F64': return make(raw.data, 'float64');
    case 'F32': return make(raw.data, 'float32');
    case 'F16': return make(fromHalfBits(raw.data, 'float16'), 'float16');
    case 'BF16': return make(fromHalfBits(raw.data, 'bfloat16'), 'bfloat16');
    case 'I32': return make(raw.data, 'int32');
    case 'I8': return make(raw.data, 'int8');
    case 'U8': return make(raw.data, 'uint8');
    case 'BOOL': return make(raw.data, 'bool');
    case 'I16':
    case 'U16': return make(Int32Array.from(raw.data), 'int32');
    case 'I64':
    case 'U64':
    case 'U32': {
      const out = new Int32Array(raw.data.length);
      for (let i = 0; i < raw.data.length; i++) {
        const v = raw.data[i]!;
        const n = Number(v);
        if (n < -(2 ** 31) || n >= 2 ** 31) {
          throw new CheckpointError(
            `checkpoint: tensor "${name}" is ${raw.dtype} and element ${i} is ${v}, which does not fit int32 (tessera's widest integer type); store it as F64 or I32.`,
          );
        }
        out[i] = n;
      }
      return make(out, 'int32');
    }
    case 'F8_E4M3':
    case 'F8_E5M2':
      throw new CheckpointError(`checkpoint: tensor "${name}" is ${raw.dtype}, an 8-bit float type tessera cannot hold; convert it to F16 or F32 before loading.`);
  }
}

// --- Flat state dicts -----------------------------------------------------------------------------------

function entriesOf(stateDict: Record<string, Tensor> | Map<string, Tensor>): Array<[string, Tensor]> {
  return stateDict instanceof Map ? [...stateDict] : Object.entries(stateDict);
}

/** The bytes of a safetensors file holding a state dict (tensor names = keys). */
export function serializeStateDict(stateDict: Record<string, Tensor> | Map<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  const raw = new Map<string, RawTensor>();
  for (const [name, t] of entriesOf(stateDict)) {
    if (!(t instanceof Tensor)) throw new CheckpointError(`checkpoint: "${name}" is ${describe(t)}, not a Tensor; a state dict maps names to tensors (use saveState for other values).`);
    raw.set(name, tensorToRaw(t));
  }
  return serializeSafetensors(raw, metadata);
}

/** The tensors of a safetensors file, by name (in the file's data order), and its metadata. */
export function parseStateDict(bytes: Uint8Array, options: LoadOptions = {}): { tensors: Record<string, Tensor>; metadata: Record<string, string> | undefined } {
  const parsed = parseSafetensors(bytes, { copy: false } satisfies ParseSafetensorsOptions);
  const tensors: Record<string, Tensor> = Object.create(null) as Record<string, Tensor>;
  for (const [name, raw] of parsed.tensors) tensors[name] = rawToTensor(raw, name, options);
  return { tensors, metadata: parsed.metadata };
}

/** Saves a state dict ({name: Tensor}) as a safetensors file, atomically. */
export async function save(path: string, stateDict: Record<string, Tensor> | Map<string, Tensor>, metadata?: Record<string, string>): Promise<void> {
  await saveFile(path, serializeStateDict(stateDict, { [FORMAT_KEY]: 'pt', ...metadata }));
}

/** Loads every tensor of a safetensors file into a state dict ({name: Tensor}). */
export async function load(path: string, options: LoadOptions = {}): Promise<Record<string, Tensor>> {
  return parseStateDict(await loadFile(path), options).tensors;
}

// --- Nested training states ------------------------------------------------------------------------------

type Skeleton =
  | null
  | boolean
  | string
  | number
  | { $tensor: string }
  | { $number: string }
  | { $map: Array<[string, Skeleton]> }
  | Skeleton[]
  | { [key: string]: Skeleton };

function describe(x: unknown): string {
  if (x === undefined) return 'undefined';
  if (x === null) return 'null';
  if (typeof x === 'object') return `a ${(x as object).constructor?.name ?? 'object'}`;
  return `a ${typeof x}`;
}

/** Splits a state tree into its tensors (by dotted path) and a JSON skeleton referring to them. */
function flatten(tree: unknown, path: string, tensors: Map<string, RawTensor>): Skeleton {
  const where = path === '' ? 'the state' : `"${path}"`;
  if (tree instanceof Tensor) {
    if (path === '') throw new CheckpointError('checkpoint: the state is a single tensor; put it in an object, e.g. { weight: t }.');
    if (tensors.has(path)) {
      throw new CheckpointError(`checkpoint: two entries of the state are both named "${path}" once their paths are joined with dots; rename one of them.`);
    }
    tensors.set(path, tensorToRaw(tree));
    return { $tensor: path };
  }
  if (typeof tree === 'number') {
    // JSON has no NaN, Infinity or -0; spell them out so they come back exactly.
    if (Number.isFinite(tree) && !Object.is(tree, -0)) return tree;
    return { $number: Object.is(tree, -0) ? '-0' : String(tree) };
  }
  if (tree === null || typeof tree === 'string' || typeof tree === 'boolean') return tree;
  if (Array.isArray(tree)) return tree.map((x, i) => flatten(x, path === '' ? String(i) : `${path}.${i}`, tensors));
  if (tree instanceof Map) {
    // Module.stateDict() is a Map<string, Tensor>; it comes back as a Map.
    const entries: Array<[string, Skeleton]> = [];
    for (const [key, value] of tree) {
      if (typeof key !== 'string') throw new CheckpointError(`checkpoint: ${where} is a Map with key ${describe(key)}; only string keys can be stored.`);
      entries.push([key, flatten(value, path === '' ? key : `${path}.${key}`, tensors)]);
    }
    return { $map: entries };
  }
  if (typeof tree === 'object' && (Object.getPrototypeOf(tree) === Object.prototype || Object.getPrototypeOf(tree) === null)) {
    const out: { [key: string]: Skeleton } = {};
    for (const [key, value] of Object.entries(tree)) {
      if (key.startsWith('$')) throw new CheckpointError(`checkpoint: key "${key}" in ${where} starts with '$', which the checkpoint format reserves; rename it.`);
      if (value === undefined) continue; // like JSON.stringify: absent and undefined are the same
      Object.defineProperty(out, key, { value: flatten(value, path === '' ? key : `${path}.${key}`, tensors), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  throw new CheckpointError(
    `checkpoint: ${where} is ${describe(tree)}; a state may hold tensors, numbers, strings, booleans, null, arrays, plain objects and Maps with string keys (convert typed arrays with Array.from).`,
  );
}

function unflatten(skeleton: Skeleton, tensors: Record<string, Tensor>): StateTree {
  if (skeleton === null || typeof skeleton !== 'object') return skeleton;
  if (Array.isArray(skeleton)) return skeleton.map((s) => unflatten(s, tensors));
  if ('$tensor' in skeleton && typeof skeleton.$tensor === 'string') {
    const t = tensors[skeleton.$tensor];
    if (t === undefined) throw new CheckpointError(`checkpoint: the state refers to tensor "${skeleton.$tensor}", which the file lacks; the file was edited or is corrupt.`);
    return t;
  }
  if ('$number' in skeleton && typeof skeleton.$number === 'string') return skeleton.$number === '-0' ? -0 : Number(skeleton.$number);
  if ('$map' in skeleton && Array.isArray(skeleton.$map)) {
    return new Map((skeleton.$map as Array<[string, Skeleton]>).map(([k, v]) => [k, unflatten(v, tensors)]));
  }
  const out: { [key: string]: StateTree } = {};
  for (const [key, value] of Object.entries(skeleton)) {
    Object.defineProperty(out, key, { value: unflatten(value as Skeleton, tensors), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * The bytes of a safetensors file holding a nested state (see the module comment): an object or array
 * whose leaves are tensors, numbers, strings, booleans or null. Anything else is refused with its path.
 */
export function serializeState(state: object, metadata?: Record<string, string>): Uint8Array {
  const tensors = new Map<string, RawTensor>();
  const skeleton = flatten(state, '', tensors);
  if (metadata !== undefined && Object.hasOwn(metadata, STATE_KEY)) {
    throw new CheckpointError(`checkpoint: metadata key "${STATE_KEY}" is reserved for the state's structure; use another key.`);
  }
  return serializeSafetensors(tensors, { [FORMAT_KEY]: 'pt', ...metadata, [STATE_KEY]: JSON.stringify(skeleton) });
}

/**
 * The nested state of a safetensors file written by serializeState/saveState. A file from another tool
 * (no "tessera.state" metadata) gives its flat state dict.
 */
export function parseState(bytes: Uint8Array, options: LoadOptions = {}): StateTree {
  const { tensors, metadata } = parseStateDict(bytes, options);
  const text = metadata?.[STATE_KEY];
  if (text === undefined) return tensors;
  let skeleton: Skeleton;
  try {
    skeleton = JSON.parse(text) as Skeleton;
  } catch (e) {
    throw new CheckpointError(`checkpoint: the "${STATE_KEY}" metadata is not valid JSON (${(e as Error).message}); the file was edited or is corrupt.`, { cause: e });
  }
  return unflatten(skeleton, tensors);
}

/** Saves a nested training state (model, optimizer, scheduler, loader, RNG, counters) atomically. */
export async function saveState(path: string, state: object, metadata?: Record<string, string>): Promise<void> {
  await saveFile(path, serializeState(state, metadata));
}

/** Loads a nested training state saved by saveState. */
export async function loadState(path: string, options: LoadOptions = {}): Promise<StateTree> {
  return parseState(await loadFile(path), options);
}
