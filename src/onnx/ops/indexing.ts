// ONNX gather/scatter and selection operators: Gather, GatherElements, GatherND, ScatterElements
// (and the deprecated Scatter), ScatterND, Compress, NonZero, Unique, ReverseSequence,
// NonMaxSuppression, TensorScatter.
//
// Gathers and the none/add scatters run as tessera ops (gather, indexSelect, scatterAdd), so they
// work on every backend and differentiate with respect to the data and updates. Negative indices
// are wrapped with tensor ops; an index still out of range is made invalid on purpose so the
// kernel reports it instead of reading a wrong element. Ops whose output shape depends on the
// values (Compress, NonZero, Unique, NonMaxSuppression) and the mul/max/min scatters read values
// to the host, then move the data with tessera ops where there is data to move.

import { TesseraError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { registerOnnxOp } from '../registry.js';
import type { OnnxTensor } from '../value.js';
import { int64Tensor, normAxis, product, sameType } from './shape.js';

/** A constant int32 tensor on `backend`. */
function int32(values: readonly number[] | Int32Array, shape: readonly number[], backend: string): Tensor {
  return ops.tensor(Int32Array.from(values), { dtype: 'int32', shape: [...shape], backend });
}

/**
 * Indices into axes of length `n` (a number, or a tensor broadcasting against the indices), as
 * int32 in [0, n): negative ones count from the end, and any still outside [0, n) become
 * `invalid` (default: the index as given, which the kernels reject and name).
 */
function wrapIndices(index: Tensor, n: number | Tensor, invalid?: number): Tensor {
  const i = ops.cast(index, 'int32');
  const wrapped = ops.where(ops.lt(i, 0), ops.add(i, n), i);
  const bad = ops.logicalOr(ops.lt(wrapped, 0), ops.ge(wrapped, n));
  return ops.where(bad, invalid ?? i, wrapped);
}

/**
 * Runs a gather/scatter over flattened positions, turning the kernel's out-of-range report
 * (which names a flat position) into one about the node's indices.
 */
function checkedIndices<T>(ctx: NodeContext, dataShape: readonly number[], fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TesseraError && /out of bounds|outside/.test(e.message)) {
      ctx.fail(`an index is out of range for data of shape [${dataShape.join(', ')}] (indices must lie in [-n, n) along each indexed axis)`);
    }
    throw e;
  }
}

// Gather: out = data indexed along 'axis' by every index: shape data[:axis] + indices + data[axis+1:].
registerOnnxOp('Gather', (ctx) => {
  const x = ctx.tensor(0);
  const index = ctx.tensor(1);
  if (x.rank === 0) ctx.fail('the data must have rank >= 1');
  const a = normAxis(ctx, ctx.int('axis', 0), x.rank);
  const n = x.shape[a]!;
  const flat = ops.reshape(wrapIndices(index, n), [index.size]);
  const picked = ops.indexSelect(x, a, flat);
  return [sameType(ctx, ops.reshape(picked, [...x.shape.slice(0, a), ...index.shape, ...x.shape.slice(a + 1)]))];
});

// GatherElements: out[i][j][k] = data[i][indices[i][j][k]][k] along 'axis' (torch.gather).
registerOnnxOp('GatherElements', (ctx) => {
  const x = ctx.tensor(0);
  const index = ctx.tensor(1);
  if (x.rank === 0 || index.rank !== x.rank) ctx.fail(`data [${x.shape.join(', ')}] and indices [${index.shape.join(', ')}] must have one rank >= 1`);
  const a = normAxis(ctx, ctx.int('axis', 0), x.rank);
  return [sameType(ctx, ops.gather(x, a, wrapIndices(index, x.shape[a]!)))];
});

/**
 * The flat positions that index tuples (the last axis of `index`, of length k) address in the
 * row-major axes `dims`, or prod(dims) (an invalid row) for a tuple with an entry out of range.
 */
function tuplePositions(ctx: NodeContext, index: Tensor, dims: readonly number[], backend: string): Tensor {
  const k = dims.length;
  if (index.shape[index.rank - 1] !== k) ctx.fail(`index tuples have length ${index.shape[index.rank - 1]}, expected ${k}`);
  const rows = product(dims);
  const lead = index.shape.slice(0, -1);
  if (k === 0) return ops.full(lead, 0, { dtype: 'int32', backend });
  const strides = dims.map((_, i) => product(dims.slice(i + 1)));
  const wrapped = wrapIndices(index, int32(dims, [k], backend), -1);
  const pos = ops.sum(ops.mul(wrapped, int32(strides, [k], backend)), -1);
  const bad = ops.gt(ops.sum(ops.cast(ops.lt(wrapped, 0), 'int32'), -1), 0);
  return ops.where(bad, rows, ops.cast(pos, 'int32'));
}

// GatherND: each index tuple (last axis of indices, length k) picks a slice data[b..., i1..ik, :]
// after the first batch_dims axes, which data and indices share.
registerOnnxOp('GatherND', (ctx) => {
  const x = ctx.tensor(0);
  const index = ctx.tensor(1);
  const b = ctx.int('batch_dims', 0);
  if (index.rank < 1 || b < 0 || b >= Math.min(x.rank, index.rank)) ctx.fail(`batch_dims ${b} must be less than the ranks of data [${x.shape.join(', ')}] and indices [${index.shape.join(', ')}]`);
  const k = index.shape[index.rank - 1]!;
  if (b + k > x.rank) ctx.fail(`index tuples of length ${k} after ${b} batch axes exceed the data's rank ${x.rank}`);
  if (x.shape.slice(0, b).some((d, i) => d !== index.shape[i])) ctx.fail(`data and indices must share their first ${b} (batch) dims`);
  const batch = product(x.shape.slice(0, b));
  const rest = x.shape.slice(b + k);
  const inner = product(rest);
  const lookups = product(index.shape.slice(b, -1));
  const pos = tuplePositions(ctx, index, x.shape.slice(b, b + k), x.backend);
  const data = ops.reshape(x, [batch, product(x.shape.slice(b, b + k)), inner]);
  const at = ops.broadcastTo(ops.reshape(pos, [batch, lookups, 1]), [batch, lookups, inner]);
  const out = checkedIndices(ctx, x.shape, () => ops.gather(data, 1, at));
  return [sameType(ctx, ops.reshape(out, [...index.shape.slice(0, -1), ...rest]))];
});

type Reduction = 'none' | 'add' | 'mul' | 'max' | 'min';

function reductionOf(ctx: NodeContext): Reduction {
  const r = ctx.string('reduction', 'none');
  if (r !== 'none' && r !== 'add' && r !== 'mul' && r !== 'max' && r !== 'min') ctx.fail(`reduction '${r}' is not supported; supported: none, add, mul, max, min`);
  return r;
}

/**
 * Scatters rows of `updates` ([L, R]) into the rows of `data` ([M, R]) at `pos` ([L] int32; an
 * invalid position fails in the kernel or here). 'none' writes (ONNX leaves duplicates
 * undefined), 'add' sums into the row; mul/max/min read the positions to the host and combine the
 * updates aimed at each row in layers, one per repeat.
 */
function scatterRows(data: Tensor, pos: Tensor, updates: Tensor, reduction: Reduction): Tensor {
  const [m, r] = data.shape as [number, number];
  const l = updates.shape[0]!;
  // scatterAdd adds: bool data goes through uint8.
  const dtype = data.dtype;
  const asNum = (t: Tensor): Tensor => (dtype === 'bool' ? ops.cast(t, 'uint8') : t);
  const back = (t: Tensor): Tensor => (dtype === 'bool' ? ops.cast(t, 'bool') : t);
  if (reduction === 'none' || reduction === 'add') {
    const at = ops.broadcastTo(ops.reshape(pos, [l, 1]), [l, r]);
    if (reduction === 'add') return back(ops.scatterAdd(asNum(data), 0, at, asNum(updates)));
    const hits = ops.scatterAdd(ops.full([m, 1], 0, { dtype: 'int32', backend: data.backend }), 0, ops.reshape(pos, [l, 1]), ops.full([l, 1], 1, { dtype: 'int32', backend: data.backend }));
    const written = ops.scatterAdd(ops.zerosLike(asNum(data)), 0, at, asNum(updates));
    return ops.where(ops.gt(hits, 0), back(written), data);
  }
  const targets = Array.from(pos.data(), Number);
  const byRow = new Map<number, number[]>();
  targets.forEach((p, i) => {
    if (p < 0 || p >= m) throw new TesseraError(`scatter: position ${p} is outside the ${m} rows of the data`);
    const list = byRow.get(p) ?? [];
    list.push(i);
    byRow.set(p, list);
  });
  const layers = Math.max(0, ...[...byRow.values()].map((v) => v.length));
  const combine = reduction === 'mul' ? ops.mul : reduction === 'max' ? ops.maximum : ops.minimum;
  let acc = data;
  for (let j = 0; j < layers; j++) {
    const src = new Int32Array(m);
    const has = new Uint8Array(m);
    for (const [row, list] of byRow) if (list.length > j) { src[row] = list[j]!; has[row] = 1; }
    const layer = ops.indexSelect(updates, 0, int32(src, [m], data.backend));
    const mask = ops.tensor(has, { dtype: 'bool', shape: [m, 1], backend: data.backend });
    acc = ops.where(mask, combine(acc, layer), acc);
  }
  return acc;
}

// ScatterElements (and Scatter, its name before opset 11): a copy of data where
// out[...indices[i][j]...] = updates[i][j] along 'axis', combined by 'reduction' (opset 16:
// add, mul; 18: max, min). Runs on the flattened data: one row per element.
function scatterElements(ctx: NodeContext): OnnxTensor {
  const x = ctx.tensor(0);
  const index = ctx.tensor(1);
  const updates = ctx.tensor(2);
  if (index.rank !== x.rank || updates.rank !== x.rank || index.shape.some((d, i) => d !== updates.shape[i])) {
    ctx.fail(`indices [${index.shape.join(', ')}] and updates [${updates.shape.join(', ')}] must have one shape, of the rank of data [${x.shape.join(', ')}]`);
  }
  if (x.rank === 0) ctx.fail('the data must have rank >= 1');
  const a = normAxis(ctx, ctx.int('axis', 0), x.rank);
  if (index.shape.some((d, i) => i !== a && d > x.shape[i]!)) ctx.fail(`indices [${index.shape.join(', ')}] exceed data [${x.shape.join(', ')}] outside axis ${a}`);
  const strides = x.shape.map((_, i) => product(x.shape.slice(i + 1)));
  // The flat position of every index element with its own coordinate along the axis left out.
  const base = new Int32Array(index.size);
  for (let i = 0; i < index.size; i++) {
    let rem = i, p = 0;
    for (let d = index.rank - 1; d >= 0; d--) {
      const c = rem % index.shape[d]!;
      rem = (rem - c) / index.shape[d]!;
      if (d !== a) p += c * strides[d]!;
    }
    base[i] = p;
  }
  const along = wrapIndices(ops.reshape(index, [index.size]), x.shape[a]!, -x.size);
  const pos = ops.add(ops.mul(along, strides[a]!), int32(base, [index.size], x.backend));
  const valid = ops.where(ops.lt(pos, 0), x.size, pos);
  const reduction = ctx.opset >= 16 ? reductionOf(ctx) : 'none';
  const out = checkedIndices(ctx, x.shape, () => scatterRows(ops.reshape(x, [x.size, 1]), valid, ops.reshape(updates, [updates.size, 1]), reduction));
  return sameType(ctx, ops.reshape(out, x.shape));
}
registerOnnxOp('ScatterElements', (ctx) => [scatterElements(ctx)]);
registerOnnxOp('Scatter', (ctx) => [scatterElements(ctx)]);

// ScatterND: a copy of data where each index tuple (last axis of indices, length k) addresses
// the slice data[i1..ik, :], set from updates (shape indices[:-1] + data[k:]) and combined by
// 'reduction' (opset 16: add, mul; 18: max, min).
registerOnnxOp('ScatterND', (ctx) => {
  const x = ctx.tensor(0);
  const index = ctx.tensor(1);
  const updates = ctx.tensor(2);
  if (index.rank < 1) ctx.fail('indices must have rank >= 1');
  const k = index.shape[index.rank - 1]!;
  if (k > x.rank) ctx.fail(`index tuples of length ${k} exceed the data's rank ${x.rank}`);
  const rest = x.shape.slice(k);
  const want = [...index.shape.slice(0, -1), ...rest];
  if (updates.rank !== want.length || updates.shape.some((d, i) => d !== want[i])) ctx.fail(`updates must have shape [${want.join(', ')}], got [${updates.shape.join(', ')}]`);
  const rows = product(x.shape.slice(0, k));
  const inner = product(rest);
  const lookups = product(index.shape.slice(0, -1));
  const pos = ops.reshape(tuplePositions(ctx, index, x.shape.slice(0, k), x.backend), [lookups]);
  const reduction = ctx.opset >= 16 ? reductionOf(ctx) : 'none';
  const out = checkedIndices(ctx, x.shape, () => scatterRows(ops.reshape(x, [rows, inner]), pos, ops.reshape(updates, [lookups, inner]), reduction));
  return [sameType(ctx, ops.reshape(out, x.shape))];
});

// Compress: keeps the slices along 'axis' whose condition entry is true (the condition may be
// shorter than the axis); without an axis, the flattened input's elements.
registerOnnxOp('Compress', (ctx) => {
  const x0 = ctx.tensor(0);
  const axis = ctx.int('axis');
  const x = axis === undefined ? ops.reshape(x0, [x0.size]) : x0;
  const a = axis === undefined ? 0 : normAxis(ctx, axis, x.rank);
  const cond = Array.from(ctx.tensor(1).data(), Number);
  const keep = cond.flatMap((c, i) => (c !== 0 ? [i] : []));
  if (keep.some((i) => i >= x.shape[a]!)) ctx.fail(`the condition (length ${cond.length}) selects beyond axis ${a} of length ${x.shape[a]}`);
  return [sameType(ctx, ops.indexSelect(x, a, int32(keep, [keep.length], x.backend)))];
});

// NonZero: the coordinates of the non-zero elements, INT64 [rank, count], in row-major order.
registerOnnxOp('NonZero', (ctx) => {
  const x = ctx.tensor(0);
  const values = x.data();
  const shape = x.rank === 0 ? [1] : x.shape;
  const coords: number[][] = shape.map(() => []);
  for (let i = 0; i < values.length; i++) {
    if (Number(values[i]) === 0) continue;
    let rem = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rem % shape[d]!;
      rem = (rem - c) / shape[d]!;
      coords[d]!.push(c);
    }
  }
  const count = coords[0]!.length;
  return [int64Tensor(ctx, coords.flat(), [shape.length, count], x.backend)];
});

/** Orders equal-length rows of numbers lexicographically (NaN last, as numpy sorts). */
function compareRows(p: ArrayLike<number>, q: ArrayLike<number>): number {
  for (let i = 0; i < p.length; i++) {
    const a = p[i]!, b = q[i]!;
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
    if (Number.isNaN(a)) return 1;
    if (Number.isNaN(b)) return -1;
    return a < b ? -1 : 1;
  }
  return 0;
}

// Unique: the distinct elements (or slices along 'axis') in sorted order (sorted=1, default) or
// in order of first occurrence, with INT64 outputs: the first occurrence of each, the index
// into the result of every input element (slice), and the counts. Found on the host; the values
// are gathered from the input with tessera ops.
registerOnnxOp('Unique', (ctx) => {
  const x0 = ctx.tensor(0);
  const axis = ctx.int('axis');
  const x = axis === undefined ? ops.reshape(x0, [x0.size]) : x0;
  const a = axis === undefined ? 0 : normAxis(ctx, axis, x.rank);
  const n = x.shape[a]!;
  // Rows of the input moved to the front, read as one contiguous block.
  const moved = ops.contiguous(ops.permute(x, [a, ...[...x.shape.keys()].filter((i) => i !== a)]));
  const flat = Float64Array.from(moved.data(), Number);
  const width = n === 0 ? 0 : flat.length / n;
  const rows = Array.from({ length: n }, (_, i) => flat.subarray(i * width, (i + 1) * width));
  const key = (row: Float64Array): string => Array.from(row, (v) => (Object.is(v, -0) ? 0 : v)).join(',');
  const firstOf = new Map<string, number>();
  const seen: number[] = [];
  rows.forEach((row, i) => {
    const k = key(row);
    if (!firstOf.has(k)) { firstOf.set(k, i); seen.push(i); }
  });
  const order = ctx.int('sorted', 1) !== 0 ? [...seen].sort((p, q) => compareRows(rows[p]!, rows[q]!) || p - q) : seen;
  const slot = new Map(order.map((first, j) => [key(rows[first]!), j]));
  const inverse = rows.map((row) => slot.get(key(row))!);
  const counts = order.map(() => 0);
  for (const j of inverse) counts[j]!++;
  const y = ops.indexSelect(x, a, int32(order, [order.length], x.backend));
  return [
    sameType(ctx, y),
    int64Tensor(ctx, order, [order.length], x.backend),
    int64Tensor(ctx, inverse, [inverse.length], x.backend),
    int64Tensor(ctx, counts, [counts.length], x.backend),
  ];
});

// ReverseSequence: for each batch entry b, reverses the first sequence_lens[b] elements along
// time_axis and keeps the rest; batch_axis and time_axis are 0 and 1 in either order.
registerOnnxOp('ReverseSequence', (ctx) => {
  const x = ctx.tensor(0);
  const lens = ops.cast(ctx.tensor(1), 'int32');
  const batchAxis = ctx.int('batch_axis', 1);
  const timeAxis = ctx.int('time_axis', 0);
  if (x.rank < 2 || !((batchAxis === 0 && timeAxis === 1) || (batchAxis === 1 && timeAxis === 0))) {
    ctx.fail(`batch_axis ${batchAxis} and time_axis ${timeAxis} must be 0 and 1 (in either order) of an input of rank >= 2`);
  }
  const steps = x.shape[timeAxis]!, batch = x.shape[batchAxis]!;
  if (lens.rank !== 1 || lens.shape[0] !== batch) ctx.fail(`sequence_lens must have shape [${batch}], got [${lens.shape.join(', ')}]`);
  const along = (axis: number, length: number): number[] => x.shape.map((_, i) => (i === axis ? length : 1));
  const t = ops.reshape(ops.arange(steps, undefined, 1, { dtype: 'int32', backend: x.backend }), along(timeAxis, steps));
  const len = ops.reshape(lens, along(batchAxis, batch));
  const source = ops.where(ops.lt(t, len), ops.sub(ops.sub(len, 1), t), t);
  return [sameType(ctx, ops.gather(x, timeAxis, ops.broadcastTo(source, x.shape)))];
});

/** Intersection over union of two boxes given as [y1, x1, y2, x2] corners in any order. */
function iou(p: readonly number[], q: readonly number[]): number {
  const [py1, py2] = [Math.min(p[0]!, p[2]!), Math.max(p[0]!, p[2]!)];
  const [px1, px2] = [Math.min(p[1]!, p[3]!), Math.max(p[1]!, p[3]!)];
  const [qy1, qy2] = [Math.min(q[0]!, q[2]!), Math.max(q[0]!, q[2]!)];
  const [qx1, qx2] = [Math.min(q[1]!, q[3]!), Math.max(q[1]!, q[3]!)];
  const h = Math.max(0, Math.min(py2, qy2) - Math.max(py1, qy1));
  const w = Math.max(0, Math.min(px2, qx2) - Math.max(px1, qx1));
  const inter = h * w;
  const union = (py2 - py1) * (px2 - px1) + (qy2 - qy1) * (qx2 - qx1) - inter;
  return union > 0 ? inter / union : 0;
}

// NonMaxSuppression: per batch and class, greedily keeps the highest-scoring boxes (scores above
// score_threshold) that overlap no kept box by more than iou_threshold, at most
// max_output_boxes_per_class of them (0, the default, keeps none). Boxes are [y1, x1, y2, x2]
// corners (center_point_box=0) or [x_center, y_center, width, height] (1). Output: INT64
// [selected, 3] rows of (batch, class, box). Computed on the host.
registerOnnxOp('NonMaxSuppression', (ctx) => {
  const boxes = ctx.tensor(0);
  const scores = ctx.tensor(1);
  if (boxes.rank !== 3 || boxes.shape[2] !== 4 || scores.rank !== 3 || scores.shape[0] !== boxes.shape[0] || scores.shape[2] !== boxes.shape[1]) {
    ctx.fail(`boxes must be [batches, boxes, 4] and scores [batches, classes, boxes], got [${boxes.shape.join(', ')}] and [${scores.shape.join(', ')}]`);
  }
  const [batches, count] = boxes.shape as [number, number];
  const classes = scores.shape[1]!;
  const maxOut = ctx.has(2) ? ctx.scalar(2) : 0;
  const iouThreshold = ctx.has(3) ? ctx.scalar(3) : 0;
  const scoreThreshold = ctx.has(4) ? ctx.scalar(4) : -Infinity;
  const centered = ctx.int('center_point_box', 0) !== 0;
  const boxValues = Array.from(boxes.data(), Number);
  const scoreValues = Array.from(scores.data(), Number);
  const selected: number[] = [];
  for (let b = 0; b < batches; b++) {
    const corners = Array.from({ length: count }, (_, i) => {
      const [c0, c1, c2, c3] = boxValues.slice((b * count + i) * 4, (b * count + i + 1) * 4) as [number, number, number, number];
      // Center format is [x, y, w, h]; convert to [y1, x1, y2, x2].
      return centered ? [c1 - c3 / 2, c0 - c2 / 2, c1 + c3 / 2, c0 + c2 / 2] : [c0, c1, c2, c3];
    });
    for (let c = 0; c < classes; c++) {
      const s = scoreValues.slice((b * classes + c) * count, (b * classes + c + 1) * count);
      const candidates = [...s.keys()].filter((i) => s[i]! > scoreThreshold).sort((p, q) => s[q]! - s[p]! || p - q);
      const kept: number[] = [];
      for (const i of candidates) {
        if (kept.length >= maxOut) break;
        if (kept.every((j) => iou(corners[i]!, corners[j]!) <= iouThreshold)) kept.push(i);
      }
      for (const i of kept) selected.push(b, c, i);
    }
  }
  return [int64Tensor(ctx, selected, [selected.length / 3, 3], boxes.backend)];
});

/**
 * TensorScatter (opset 24): a KV-cache write. past_cache [B, ..., M (at `axis`, default −2), ...]
 * gets update [B, ..., S, ...] written at positions write_indices[b] .. write_indices[b] + S − 1
 * (default 0) along the axis, per batch entry b; mode 'circular' wraps the positions modulo M.
 * Computed as a gather: cache position p of batch b reads update entry p − write_indices[b] (mod
 * M when circular) where that is in [0, S), and keeps the cache value elsewhere.
 */
registerOnnxOp('TensorScatter', (ctx) => {
  const cache = ctx.tensor(0);
  const update = ctx.tensor(1);
  const mode = ctx.string('mode', 'linear');
  if (mode !== 'linear' && mode !== 'circular') ctx.fail(`mode '${mode}' is not supported; supported: linear, circular`);
  if (cache.rank < 2) ctx.fail(`past_cache must have a batch axis and a sequence axis, got shape [${cache.shape.join(', ')}]`);
  const axis = normAxis(ctx, ctx.int('axis', -2), cache.rank);
  if (axis === 0) ctx.fail('axis must not be the batch axis 0');
  const [b, m, s] = [cache.shape[0]!, cache.shape[axis]!, update.shape[axis] ?? 0];
  const fits = update.rank === cache.rank && update.shape.every((d, i) => (i === axis ? d <= m : d === cache.shape[i]));
  if (!fits) ctx.fail(`update [${update.shape.join(', ')}] must match past_cache [${cache.shape.join(', ')}] except along axis ${axis}, where it may not be longer`);
  const starts = ctx.has(2) ? ops.cast(ctx.tensor(2), 'int32') : ops.zeros([b], { dtype: 'int32', backend: cache.backend });
  if (starts.size !== b) ctx.fail(`write_indices must hold one index per batch entry (${b}), got shape [${starts.shape.join(', ')}]`);
  // [B, 1, ..., M, 1, ...]: the update entry each cache position reads.
  const lined = (t: Tensor, at: number, n: number): Tensor => ops.reshape(t, cache.shape.map((_, i) => (i === at ? n : 1)));
  let offset = ops.sub(lined(ops.arange(0, m, 1, { dtype: 'int32', backend: cache.backend }), axis, m), lined(starts, 0, b));
  if (mode === 'circular') offset = ops.remainder(offset, m);
  if (s === 0) return [sameType(ctx, cache)];
  const written = ops.logicalAnd(ops.ge(offset, 0), ops.lt(offset, s));
  const index = ops.expand(ops.clamp(offset, 0, s - 1), cache.shape);
  return [sameType(ctx, ops.where(written, ops.gather(ops.cast(update, cache.dtype), axis, index), cache))];
});
