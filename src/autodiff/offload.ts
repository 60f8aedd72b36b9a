// Activation offloading ("swapping", like torch.autograd.graph.save_on_cpu): run a block with its
// tape recorded as usual, then move the tensors that tape saved for backward out of the backend's
// memory (the wasm heap, the GPU) into host arrays, and bring them back when backward reaches the
// block. Device memory for the block's activations drops to its output, as with checkpoint(), but
// nothing is recomputed: the price is two copies of each saved tensor instead of a forward pass.
//
// How it works: fn runs with recording on inside a memory scope. A dispatch observer notes every
// tensor its ops create and every outside tensor they read that requires grad (the block's inputs,
// parameters included). The block's own tape (the nodes between those inputs and its output) is
// private: its saved tensors are copied to host arrays and then disposed with the scope. The output
// gets one tape node whose vjp recreates the saved tensors on their backend, puts them back in the
// private nodes, differentiates up to the inputs (backward's boundary, as checkpoint does) and
// disposes them again. The host copies live as long as that node (until backward frees the graph).
//
// Under a tracer (jit) the same happens symbolically: each saved tensor on a backend other than the
// cpu (whose memory is the host's) goes through an `offloadStore` graph node after the block, and
// the traced backward reads it back through an `offloadFetch` node (graph/offload-ops.ts). A replay
// frees the backend tensor at the store, its last forward use, and holds only the host copy until
// the fetch: the backend's peak drops as it does eagerly, and nothing is recomputed.
import { TesseraError } from '../core/errors.js';
import { keep as keepTensor, scope, trackStorage } from '../core/memory.js';
import { Tensor } from '../core/tensor.js';
import type { DType, TypedArray } from '../core/dtype.js';
import type { Backend, Storage } from '../backend/backend.js';
import { addDispatchObserver, bind } from '../ops/dispatch.js';
import { primitives, type PrimitiveName } from '../ops/primitives.js';
import { detach } from '../ops/shape.js';
import { gradientsUpTo } from './backward.js';
import { activeTracing, blockOutputs, tracingHooks, type CheckpointResult } from './checkpoint.js';
import { forwardModeActive } from './forward.js';
import { isGradEnabled, noGrad } from './mode.js';
import { recordCustom, type GradNode } from './node.js';

/** One storage behind the tensors the block's tape saved, copied to the host (whole, once). */
interface HostStorage {
  readonly values: TypedArray;
  readonly dtype: DType;
  readonly backend: Backend;
}

/** One saved tensor: a view (shape, strides, offset) of a host storage, and its place in the tape. */
interface HostCopy {
  readonly storage: HostStorage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  readonly gradNode: GradNode | undefined;
  readonly requiresGrad: boolean;
}

/** Where a saved tensor sits in the private tape: node.inputs[slot], or node.output for slot -1. */
interface SavedSlot {
  readonly node: GradNode;
  readonly slot: number;
  readonly copy: HostCopy;
}

/** What offload() moved off the backend, for reports and tests. */
export interface OffloadStats {
  /** Saved tensors copied to the host. */
  tensors: number;
  /** Bytes of their storages, each copied once (float16/bfloat16 are held as float32 on the host: 4 bytes per element). */
  hostBytes: number;
}

// Host arrays are reused from step to step: a block saves the same shapes every step, and allocating
// (zero-filling) ~0.5 GB of fresh arrays per step cost 8x more than copying into pooled ones
// (455 vs 55 ms measured). Arrays return to the pool when backward has run through the block for the
// last time (no retainGraph); the pool keeps at most `poolLimitBytes`.
const pool = new Map<string, TypedArray[]>();
let pooledBytes = 0;
let poolLimitBytes = 2 ** 30;

const poolKey = (a: { constructor: { name: string } }, length: number): string => `${a.constructor.name}:${length}`;

/** A pooled array of `like`'s type and `length` elements, if the pool holds one. */
function fromPool(like: TypedArray, length: number): TypedArray | undefined {
  const reused = pool.get(poolKey(like, length))?.pop();
  if (reused !== undefined) pooledBytes -= reused.byteLength;
  return reused;
}

/** A host array of `like`'s type and length holding a copy of `like`'s values. */
function hostCopyOf(like: TypedArray): TypedArray {
  const reused = fromPool(like, like.length);
  if (reused === undefined) return like.slice();
  reused.set(like);
  return reused;
}

/**
 * A host array of the type of `like` and `length` elements from the pool (contents undefined), or
 * a new one; give it back with releaseHostArray. For the graph's offloadStore (graph/offload-ops.ts).
 */
export function takeHostArray(like: TypedArray, length: number): TypedArray {
  return fromPool(like, length) ?? new (like.constructor as { new (n: number): TypedArray })(length);
}

/** Returns a host array to the pool (up to the pool's limit). */
export function releaseHostArray(a: TypedArray): void {
  if (pooledBytes + a.byteLength > poolLimitBytes) return;
  const key = poolKey(a, a.length);
  const list = pool.get(key);
  if (list === undefined) pool.set(key, [a]);
  else list.push(a);
  pooledBytes += a.byteLength;
}

/** Sets how many bytes of host arrays offload keeps for reuse between steps (default 1 GiB; 0 turns reuse off). */
export function setOffloadPoolLimit(bytes: number): void {
  if (!(bytes >= 0)) throw new TesseraError(`setOffloadPoolLimit: the limit must be a non-negative number of bytes, got ${bytes}.`);
  poolLimitBytes = bytes;
  if (pooledBytes > bytes) {
    pool.clear();
    pooledBytes = 0;
  }
}

/** The host arrays offload holds for reuse now. */
export function offloadPoolStats(): { arrays: number; bytes: number } {
  let arrays = 0;
  for (const list of pool.values()) arrays += list.length;
  return { arrays, bytes: pooledBytes };
}

let lastStats: OffloadStats = { tensors: 0, hostBytes: 0 };
const totals: OffloadStats = { tensors: 0, hostBytes: 0 };

/** What the most recent offload() call moved to the host. */
export function lastOffloadStats(): OffloadStats {
  return { ...lastStats };
}

/** What every offload() call so far moved to the host, summed (take differences to measure a step). */
export function offloadTotals(): OffloadStats {
  return { ...totals };
}

/** What a block's ops touched: the tensors they made, the outside tensors needing grad, the outside storages. */
interface BlockWatch {
  readonly created: Set<Tensor>;
  readonly inputs: Set<Tensor>;
  readonly outside: Set<Storage>;
  /** Views made by a view primitive over another tensor's storage (for the traced path). */
  readonly views: Map<Tensor, Producer>;
  readonly stop: () => void;
}

function watchBlock(): BlockWatch {
  const created = new Set<Tensor>(), inputs = new Set<Tensor>(), outside = new Set<Storage>(), views = new Map<Tensor, Producer>();
  const stop = addDispatchObserver({
    onPrimitive(prim, ins, attrs, out) {
      for (const t of ins) {
        if (created.has(t)) continue;
        outside.add(t.storage);
        if (t.requiresGrad) inputs.add(t);
      }
      created.add(out);
      if (primitives[prim].view !== undefined && out.storage === ins[0]!.storage) views.set(out, { prim, input: ins[0]!, attrs });
    },
  });
  return { created, inputs, outside, views, stop };
}

/**
 * Runs `fn(...args)` and keeps the activations its backward needs in host memory instead of the
 * tensors' backend (like torch.autograd.graph.save_on_cpu); backward copies them back. Gradients,
 * results and random draws are those of running fn plainly (it runs once). Returns fn's result.
 *
 * On the wasm backend this frees the wasm heap (bounded by 4 GiB) for the JavaScript heap; on webgpu
 * it frees GPU memory. Under jit the graph copies to the host and back (offloadStore/offloadFetch
 * nodes), except on the cpu backend, whose memory is the host's. Under noGrad or inside a jvp, fn
 * simply runs.
 */
export function offload<A extends unknown[], R extends CheckpointResult>(fn: (...args: A) => R, ...args: A): R {
  if (!isGradEnabled() || forwardModeActive()) return fn(...args);
  if (activeTracing()) return offloadTraced(fn, args);

  const { created, inputs, outside, stop } = watchBlock();
  let outs: Tensor[] = [];
  let slots: SavedSlot[] = [];
  let result: R;
  try {
    result = scope(() => {
      const r = fn(...args);
      outs = blockOutputs('offload', r);
      slots = moveSavedToHost(outs, created, outside);
      return r;
    });
  } finally {
    stop();
  }
  const boundary = [...inputs];
  const moved = [...new Set(slots.map((s) => s.copy.storage))];
  lastStats = { tensors: new Set(slots.map((s) => s.copy)).size, hostBytes: moved.reduce((n, c) => n + c.values.byteLength, 0) };
  totals.tensors += lastStats.tensors;
  totals.hostBytes += lastStats.hostBytes;
  if (boundary.length === 0 || !outs.some((o) => o.requiresGrad)) return result;

  // Fresh tensors over the outputs carry the block's node; the inner outputs keep the private tape.
  const aliases = noGrad(() => outs.map((o) => detach(o)));
  // The host arrays go back to the pool once every output's node has had its last backward.
  let pending = outs.filter((o) => o.requiresGrad).length;
  let released = false;
  aliases.forEach((alias, k) => {
    const inner = outs[k]!;
    if (!inner.requiresGrad) return;
    recordCustom('offload', boundary, alias, (grad, info) => {
      if (released) throw new TesseraError('offload: backward reached a block whose saved tensors were already released; pass { retainGraph: true } to run backward through it again.');
      const grads = backwardThroughBlock(inner, boundary, slots, grad);
      if (info.lastUse && --pending === 0) {
        released = true;
        for (const host of moved) releaseHostArray(host.values);
      }
      return grads;
    });
  });
  return (Array.isArray(result) ? aliases : aliases[0]) as unknown as R;
}

/**
 * Visits every tensor the block's private tape saved (each node's inputs, then its output as slot
 * −1), walking from the outputs through the nodes of tensors the block created.
 */
function forEachSaved(outs: readonly Tensor[], created: ReadonlySet<Tensor>, visit: (node: GradNode, slot: number, t: Tensor, savedIndex: number) => void): void {
  const seen = new Set<GradNode>();
  const stack = outs.map((o) => o.gradNode).filter((n): n is GradNode => n !== undefined);
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    const saved = [...node.inputs, ...(node.output === undefined ? [] : [node.output])];
    saved.forEach((t, i) => {
      const slot = i < node.inputs.length ? i : -1;
      if (slot >= 0 && t.gradNode !== undefined && created.has(t)) stack.push(t.gradNode);
      visit(node, slot, t, i);
    });
  }
}

/** Copies every tensor the block's private tape saved to host arrays and points the tape's slots at those copies. */
function moveSavedToHost(outs: readonly Tensor[], created: ReadonlySet<Tensor>, outside: ReadonlySet<Storage>): SavedSlot[] {
  // The outputs' storages stay, and so do storages of tensors from outside the block (a view the
  // block took of a parameter, say): they live on anyway.
  const keep = new Set([...outs.map((o) => o.storage), ...outside]);
  const copies = new Map<Tensor, HostCopy>();
  // Views of one storage (a reshape's input and output, say) share one host copy, as on the backend.
  const storages = new Map<Storage, HostStorage>();
  const slots: SavedSlot[] = [];
  forEachSaved(outs, created, (node, slot, t, i) => {
    // Outside tensors stay where they are; so do views of kept storages, and a tensor already
    // changed in place since the op saved it (backward must refuse it).
    if (!created.has(t)) return;
    if (keep.has(t.storage) || t.storage.version !== node.savedVersions[i]) {
      keepTensor(t); // the block's scope must not dispose a tensor the tape still holds
      return;
    }
    let copy = copies.get(t);
    if (copy === undefined) {
      let host = storages.get(t.storage);
      if (host === undefined) {
        // readAll may be a view into the backend's memory (the wasm heap): copy it out.
        host = { values: hostCopyOf(t.storage.backend.readAll(t.storage)), dtype: t.storage.dtype, backend: t.storage.backend };
        storages.set(t.storage, host);
      }
      copy = { storage: host, shape: [...t.shape], strides: [...t.strides], offset: t.offset, dtype: t.dtype, gradNode: t.gradNode, requiresGrad: t.requiresGrad };
      copies.set(t, copy);
    }
    slots.push({ node, slot, copy });
  });
  return slots;
}

/** The vjp of the block: saved tensors back on their backend, backward through the private tape, then released. */
function backwardThroughBlock(inner: Tensor, boundary: readonly Tensor[], slots: readonly SavedSlot[], grad: Tensor): (Tensor | undefined)[] {
  const createGraph = isGradEnabled();
  const run = (): (Tensor | undefined)[] => {
    const restored = new Map<HostCopy, Tensor>();
    const storages = new Map<HostStorage, Storage>();
    for (const { node, slot, copy } of slots) {
      let t = restored.get(copy);
      if (t === undefined) {
        let storage = storages.get(copy.storage);
        if (storage === undefined) {
          storage = copy.storage.backend.fromArray(copy.storage.dtype, copy.storage.values);
          storages.set(copy.storage, storage);
          trackStorage(storage);
        }
        t = new Tensor(storage, copy.shape, copy.strides, copy.offset, copy.dtype);
        if (copy.requiresGrad) t._setRequiresGradFromOp(true);
        t.gradNode = copy.gradNode;
        restored.set(copy, t);
      }
      const index = slot >= 0 ? slot : node.inputs.length;
      if (slot >= 0) node.inputs[slot] = t;
      else node.output = t;
      // The copy holds the values the op saw (checked when it was made); its storage starts a new count.
      (node.savedVersions as number[])[index] = t.storage.version;
    }
    // retainGraph: the private tape must survive for a second backward through the block, which
    // brings the tensors back again (the host copies stay until the outer graph is freed).
    return gradientsUpTo(inner, boundary, grad, { retainGraph: true, createGraph });
  };
  // The restored tensors live until the gradients are computed, unless the backward pass is being
  // recorded (then the gradients' graph needs them).
  return createGraph ? run() : scope(run);
}

/** How a tensor the traced block created was made: a view primitive over another tensor, or not a view. */
interface Producer {
  readonly prim: PrimitiveName;
  readonly input: Tensor;
  readonly attrs: unknown;
}

/** Where a traced block's saved tensor comes from: a stored root, and the view ops that lead from it. */
interface TracedSource {
  readonly host: Tensor;
  readonly backend: string;
  readonly views: readonly Producer[];
}

/** One saved tensor of a traced block: its source and its place in the tape. */
interface TracedSlot {
  readonly node: GradNode;
  readonly slot: number;
  readonly source: TracedSource;
  readonly gradNode: GradNode | undefined;
  readonly requiresGrad: boolean;
}

/** offload() while a tracer records: the copies to the host and back become graph nodes. */
function offloadTraced<A extends unknown[], R extends CheckpointResult>(fn: (...args: A) => R, args: A): R {
  const { created, inputs, outside, views, stop } = watchBlock();
  let outs: Tensor[];
  let result: R;
  try {
    result = fn(...args);
    outs = blockOutputs('offload', result);
  } finally {
    stop();
  }
  const boundary = [...inputs];
  if (boundary.length === 0 || !outs.some((o) => o.requiresGrad)) return result;
  const slots = storeSavedOnHost(outs, created, views, outside);
  if (slots.length === 0) return result; // everything saved is on the cpu backend: nothing to move
  const aliases = noGrad(() => outs.map((o) => detach(o)));
  aliases.forEach((alias, k) => {
    const inner = outs[k]!;
    if (inner.requiresGrad) recordCustom('offload', boundary, alias, (grad) => fetchAndBackward(inner, boundary, slots, grad));
  });
  return (Array.isArray(result) ? aliases : aliases[0]) as unknown as R;
}

/**
 * Records one offloadStore per storage off the cpu that the block's private tape saved: a saved
 * view of a tensor the block made is stored as that tensor, and backward replays the view ops on
 * the fetched copy (as the eager path copies each storage once).
 */
function storeSavedOnHost(outs: readonly Tensor[], created: ReadonlySet<Tensor>, views: ReadonlyMap<Tensor, Producer>, outside: ReadonlySet<Storage>): TracedSlot[] {
  const keep = new Set([...outs.map((o) => o.storage), ...outside]);
  const hosts = new Map<Tensor, Tensor>();
  const sources = new Map<Tensor, TracedSource>();
  const sourceOf = (t: Tensor): TracedSource => {
    let s = sources.get(t);
    if (s !== undefined) return s;
    const chain: Producer[] = [];
    let root = t;
    for (let p = views.get(root); p !== undefined && created.has(p.input); p = views.get(root)) {
      chain.unshift(p);
      root = p.input;
    }
    let host = hosts.get(root);
    if (host === undefined) {
      host = tracingHooks().storeOnHost(root);
      hosts.set(root, host);
    }
    s = { host, backend: t.backend, views: chain };
    sources.set(t, s);
    return s;
  };
  const slots: TracedSlot[] = [];
  forEachSaved(outs, created, (node, slot, t, i) => {
    if (!created.has(t) || keep.has(t.storage) || t.storage.version !== node.savedVersions[i] || t.backend === 'cpu') return;
    slots.push({ node, slot, source: sourceOf(t), gradNode: t.gradNode, requiresGrad: t.requiresGrad });
  });
  return slots;
}

/** The traced vjp of the block: fetch the saved tensors back (graph nodes), then backward through the private tape. */
function fetchAndBackward(inner: Tensor, boundary: readonly Tensor[], slots: readonly TracedSlot[], grad: Tensor): (Tensor | undefined)[] {
  const roots = new Map<Tensor, Tensor>();
  const restored = new Map<TracedSource, Tensor>();
  for (const { node, slot, source, gradNode, requiresGrad } of slots) {
    let t = restored.get(source);
    if (t === undefined) {
      let root = roots.get(source.host);
      if (root === undefined) {
        root = tracingHooks().fetchFromHost(source.host, source.backend);
        roots.set(source.host, root);
      }
      // Views are replayed without a tape: the restored tensor takes the saved one's place in it.
      t = noGrad(() => source.views.reduce((x, v) => bind(v.prim, [x], v.attrs as never), root!));
      if (requiresGrad) t._setRequiresGradFromOp(true);
      t.gradNode = gradNode;
      restored.set(source, t);
    }
    const index = slot >= 0 ? slot : node.inputs.length;
    if (slot >= 0) node.inputs[slot] = t;
    else node.output = t;
    (node.savedVersions as number[])[index] = t.storage.version;
  }
  return gradientsUpTo(inner, boundary, grad, { retainGraph: true, createGraph: isGradEnabled() });
}
