// Memory planning: liveness of every intermediate buffer (views extend their base's life), then
// offsets in one arena, reusing the space of buffers that are dead. An elementwise kernel may write
// its result over an input that dies at that kernel (same size, read at the same index it writes).
//
// Two numbers come out: peakLiveBytes, the most bytes simultaneously live (what an allocator that
// frees at last use reaches — the interpreter with disposeDead measures the same), and arenaBytes,
// the arena the offsets need (>= peakLiveBytes; the difference is fragmentation).
//
// An offloadStore's output (a saved activation copied to the host under jit, graph/offload-ops.ts)
// lives in host memory, not in the arena: it is counted apart, in hostBytes.
import { itemsize } from '../core/dtype.js';
import { sizeOf } from '../core/shape.js';
import type { Graph, ValueId } from '../graph/graph.js';
import { staticLayouts, type ValueLayout } from './layouts.js';
import type { FusedSpec } from './fused-ops.js';
import { composeViews } from './fused-ops.js';
import { OFFLOAD_STORE_OP } from '../graph/offload-ops.js';

export interface PlannedBuffer {
  value: ValueId;
  bytes: number;
  /** Node index that writes it. */
  start: number;
  /** Last node index that reads it (nodes.length when it is returned or written back). */
  end: number;
  offset: number;
  /** The buffer whose space this one takes over in place, if any. */
  inPlaceOf?: ValueId;
}

export interface MemoryPlan {
  buffers: PlannedBuffer[];
  arenaBytes: number;
  peakLiveBytes: number;
  /** Live bytes after each node runs (node index, op). */
  timeline: { step: number; op: string; liveBytes: number }[];
  layouts: Map<ValueId, ValueLayout>;
  /** Bytes of activations the graph copies to host memory (offloadStore outputs), outside the arena. */
  hostBytes: number;
}

export interface MemoryPlanOptions {
  /** Let elementwise kernels overwrite a dying input (default true). */
  inPlace?: boolean;
  /** Offset alignment in bytes (default 16, enough for float64 and SIMD). */
  alignment?: number;
}

export function memoryPlan(g: Graph, opts: MemoryPlanOptions = {}): MemoryPlan {
  const align = opts.alignment ?? 16;
  const layouts = staticLayouts(g);
  const owner = (v: ValueId): ValueId => layouts.get(v)!.base;
  const nodeOutputs = new Set<ValueId>();
  g.nodes.forEach((n) => n.outputs.forEach((o) => nodeOutputs.add(o)));
  const buffers = new Map<ValueId, PlannedBuffer>();
  let hostBytes = 0;
  g.nodes.forEach((n, i) => {
    for (const o of n.outputs) {
      if (owner(o) !== o) continue;
      const v = g.value(o);
      const bytes = sizeOf(v.shape) * itemsize(v.dtype);
      if (n.op === OFFLOAD_STORE_OP) hostBytes += bytes;
      else buffers.set(o, { value: o, bytes, start: i, end: i, offset: 0 });
    }
  });
  g.nodes.forEach((n, i) => {
    for (const v of n.inputs) {
      const b = buffers.get(owner(v));
      if (b !== undefined) b.end = Math.max(b.end, i);
    }
  });
  const pinned = new Set<ValueId>();
  for (const v of [...g.outputs, ...g.writes.map((w) => w.value), ...g.guards.map((x) => x.value)]) {
    const b = buffers.get(owner(v));
    if (b !== undefined) {
      b.end = g.nodes.length;
      pinned.add(b.value);
    }
  }

  // In place: a fused elementwise kernel's output takes over a dying input of the same size that
  // it reads exactly at the output index.
  const groupOf = new Map<ValueId, ValueId>();
  const root = (v: ValueId): ValueId => {
    let r = v;
    while (groupOf.has(r)) r = groupOf.get(r)!;
    return r;
  };
  const taken = new Set<ValueId>();
  if (opts.inPlace ?? true) {
    g.nodes.forEach((n, i) => {
      if (n.op !== 'fusedElementwise') return;
      const spec = (n.attrs as { spec: FusedSpec }).spec;
      const out = buffers.get(n.outputs[0]!);
      if (spec.reduce !== undefined || out === undefined) return;
      for (let j = 0; j < n.inputs.length; j++) {
        const base = owner(n.inputs[j]!);
        const b = buffers.get(base);
        if (b === undefined || pinned.has(base) || b.end !== i || b.bytes !== out.bytes || taken.has(base)) continue;
        if (itemsize(g.value(base).dtype) !== itemsize(g.value(n.outputs[0]!).dtype)) continue;
        const reads = n.inputs.map((v, k) => ({ v, k })).filter(({ v }) => owner(v) === base)
          .map(({ v, k }) => composeViews(layouts.get(v)!.layout, spec.inputs[k]!.views));
        const contiguousAtOutput = (l: typeof reads[number]): boolean =>
          l !== undefined && l.offset === 0 && l.strides.every((s, d) => s === contiguousStride(spec.shape, d) || spec.shape[d] === 1);
        if (!reads.every(contiguousAtOutput)) continue;
        groupOf.set(n.outputs[0]!, base);
        taken.add(base);
        out.inPlaceOf = base;
        break;
      }
    });
  }
  // Merge in-place chains into groups (one interval each).
  const groups = new Map<ValueId, { bytes: number; start: number; end: number; members: PlannedBuffer[] }>();
  for (const b of buffers.values()) {
    const r = root(b.value);
    const grp = groups.get(r) ?? { bytes: b.bytes, start: b.start, end: b.end, members: [] };
    grp.start = Math.min(grp.start, b.start);
    grp.end = Math.max(grp.end, b.end);
    grp.members.push(b);
    groups.set(r, grp);
  }
  // Greedy by size: each group goes at the lowest offset free during its whole lifetime.
  const placed: { offset: number; size: number; start: number; end: number }[] = [];
  let arenaBytes = 0;
  const sorted = [...groups.values()].sort((a, b) => b.bytes - a.bytes || a.start - b.start);
  for (const grp of sorted) {
    const size = Math.ceil(grp.bytes / align) * align;
    const conflicts = placed.filter((p) => p.start <= grp.end && grp.start <= p.end).sort((a, b) => a.offset - b.offset);
    let offset = 0;
    for (const c of conflicts) {
      if (offset + size <= c.offset) break;
      offset = Math.max(offset, c.offset + c.size);
    }
    placed.push({ offset, size, start: grp.start, end: grp.end });
    for (const m of grp.members) m.offset = offset;
    arenaBytes = Math.max(arenaBytes, offset + size);
  }
  const timeline = g.nodes.map((n, i) => ({
    step: i,
    op: n.op,
    liveBytes: [...groups.values()].reduce((s, grp) => s + (grp.start <= i && i <= grp.end ? grp.bytes : 0), 0),
  }));
  const peakLiveBytes = timeline.reduce((m, t) => Math.max(m, t.liveBytes), 0);
  return { buffers: [...buffers.values()], arenaBytes, peakLiveBytes, timeline, layouts, hostBytes };
}

function contiguousStride(shape: readonly number[], d: number): number {
  let s = 1;
  for (let i = d + 1; i < shape.length; i++) s *= shape[i]!;
  return s;
}
