// ONNX control flow: If, Loop, Scan. Each runs its graph attributes through ctx.runSubgraph, so
// the bodies see the values of the scopes around them; the condition and trip count are read to
// the host (the graph is interpreted eagerly, so the control flow itself is plain JavaScript).

import * as ops from '../../ops/index.js';
import type { Tensor } from '../../core/tensor.js';
import type { NodeContext } from '../node-context.js';
import { ElemType, type GraphProto } from '../proto.js';
import { registerOnnxOp, type OpResult } from '../registry.js';
import { onnxTensor, storageDType, type OnnxTensor, type OnnxValue } from '../value.js';

/** A subgraph output as a tensor, failing with a clear message when it is a sequence or optional. */
function tensorOutput(ctx: NodeContext, v: OnnxValue | undefined, what: string): OnnxTensor {
  if (v?.kind !== 'tensor') ctx.fail(`${what} must be a tensor, got ${v === undefined ? 'nothing' : v.kind === 'none' ? 'an empty optional' : 'a sequence'}`);
  return v;
}

/** x[..., i, ...] with i taken along `axis` (the axis removed). */
function indexAlong(x: Tensor, axis: number, i: number): Tensor {
  return ops.at(x, ...new Array<null>(axis).fill(null), i);
}

/** An axis attribute value in [-rank, rank) made non-negative. */
function normalizeAxis(ctx: NodeContext, axis: number, rank: number, what: string): number {
  if (axis < -rank || axis >= rank) ctx.fail(`${what} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/**
 * Stacks per-iteration scan outputs along a new `axis`. With no iterations the result is empty
 * along that axis, its other dimensions taken from the body's declared output when all are known
 * numbers (else the result is just [0]).
 */
function stackScan(ctx: NodeContext, items: OnnxTensor[], body: GraphProto, output: number, axis = 0): OnnxTensor {
  if (items.length > 0) {
    const rank = items[0]!.tensor.rank;
    return onnxTensor(ops.stack(items.map((i) => i.tensor), normalizeAxis(ctx, axis, rank + 1, 'the scan output axis')), items[0]!.type);
  }
  const declared = body.outputs[output]?.type;
  const type = declared?.kind === 'tensor' ? declared.elemType : ElemType.FLOAT;
  const dims = declared?.kind === 'tensor' && declared.shape !== undefined && declared.shape.every((d) => typeof d === 'number') ? declared.shape as number[] : [];
  const shape = [...dims];
  shape.splice(normalizeAxis(ctx, axis, dims.length + 1, 'the scan output axis'), 0, 0);
  const empty = ops.zeros(shape, { dtype: storageDType(type) ?? 'float32' });
  return onnxTensor(empty, type);
}

// If (opset 1, 11, 13, 16): runs then_branch or else_branch (no inputs; they read the outer
// scope) and returns its outputs, which may be tensors, sequences or optionals.
registerOnnxOp('If', (ctx) => {
  const cond = ctx.scalar(0) !== 0;
  return ctx.runSubgraph(ctx.graph(cond ? 'then_branch' : 'else_branch'), []);
});

// Loop (opset 1, 11, 13, 16): inputs M (max trip count), cond, and the initial loop-carried
// values; the body takes (iteration number, condition, carried...) and returns (condition,
// carried..., scan outputs...). It runs while i < M (when M is given) and the condition holds
// (when cond is given; without it the body's condition output is ignored). Results: the final
// carried values, then each scan output stacked along a new axis 0.
registerOnnxOp('Loop', (ctx) => {
  const body = ctx.graph('body');
  const hasM = ctx.has(0);
  const hasCond = ctx.has(1);
  if (!hasM && !hasCond) ctx.fail('neither the trip count M nor the condition is given: the loop would never end');
  const maxTrips = hasM ? ctx.scalar(0) : Infinity;
  let cond = hasCond ? ctx.scalar(1) !== 0 : true;
  let carried: OnnxValue[] = [];
  for (let i = 2; i < ctx.inputCount; i++) carried.push(ctx.value(i) ?? ctx.fail(`loop-carried input ${i} is omitted`));
  const numScans = body.outputs.length - 1 - carried.length;
  if (numScans < 0) ctx.fail(`the body returns ${body.outputs.length} values, fewer than 1 + ${carried.length} loop-carried ones`);
  const scans: OnnxTensor[][] = Array.from({ length: numScans }, () => []);
  for (let i = 0; i < maxTrips && cond; i++) {
    const out = ctx.runSubgraph(body, [
      onnxTensor(ops.scalar(i, 'int32'), ElemType.INT64),
      onnxTensor(ops.scalar(cond, 'bool'), ElemType.BOOL),
      ...carried,
    ]);
    if (hasCond) cond = Number(tensorOutput(ctx, out[0], 'the body\'s condition output').tensor.data()[0]) !== 0;
    carried = out.slice(1, 1 + carried.length);
    out.slice(1 + carried.length).forEach((v, k) => scans[k]!.push(tensorOutput(ctx, v, `scan output ${k}`)));
  }
  return [...carried, ...scans.map((items, k) => stackScan(ctx, items, body, 1 + carried.length + k))];
});

/**
 * The common Scan loop: runs the body once per position of the scan inputs (each sliced along
 * its axis, walked backwards where its direction is 1), threading the state values through.
 * Returns the final states and, per scan output, the items of each iteration in order.
 */
function scanLoop(
  ctx: NodeContext, body: GraphProto, states: OnnxValue[], scanInputs: OnnxTensor[],
  axes: number[], directions: number[], steps: number,
): { states: OnnxValue[]; outputs: OnnxTensor[][] } {
  const numOutputs = body.outputs.length - states.length;
  if (numOutputs < 0) ctx.fail(`the body returns ${body.outputs.length} values, fewer than the ${states.length} state values`);
  const outputs: OnnxTensor[][] = Array.from({ length: numOutputs }, () => []);
  for (let t = 0; t < steps; t++) {
    const slices = scanInputs.map((x, j) => {
      const position = directions[j] === 1 ? steps - 1 - t : t;
      return onnxTensor(indexAlong(x.tensor, axes[j]!, position), x.type);
    });
    const out = ctx.runSubgraph(body, [...states, ...slices]);
    states = out.slice(0, states.length);
    out.slice(states.length).forEach((v, k) => outputs[k]!.push(tensorOutput(ctx, v, `scan output ${k}`)));
  }
  return { states, outputs };
}

/** The length of the scanned axis, the same for every scan input. */
function scanLength(ctx: NodeContext, scanInputs: OnnxTensor[], axes: number[]): number {
  const lengths = scanInputs.map((x, j) => x.tensor.shape[axes[j]!]!);
  if (lengths.some((n) => n !== lengths[0])) ctx.fail(`the scan inputs have different lengths along their scan axes: ${lengths.join(', ')}`);
  return lengths[0] ?? ctx.fail('Scan needs at least one scan input');
}

// Scan, opset 9 and later: inputs are the N initial states then the M scan inputs
// (num_scan_inputs), each sliced along scan_input_axes (default 0) in scan_input_directions
// (0 forward, 1 reverse). Results: the final states, then the scan outputs, stacked along
// scan_output_axes (default 0) in scan_output_directions (1: the last iteration first).
function scan9(ctx: NodeContext): OpResult[] {
  const body = ctx.graph('body');
  const m = ctx.requiredInt('num_scan_inputs');
  const values = Array.from({ length: ctx.inputCount }, (_, i) => ctx.value(i) ?? ctx.fail(`input ${i} is omitted`));
  const n = values.length - m;
  const states = values.slice(0, n);
  const scanInputs = values.slice(n).map((v, j) => tensorOutput(ctx, v, `scan input ${j}`));
  const axes = scanInputs.map((x, j) => normalizeAxis(ctx, ctx.intList('scan_input_axes')?.[j] ?? 0, x.tensor.rank, 'scan_input_axes entry'));
  const directions = ctx.intList('scan_input_directions', []);
  const result = scanLoop(ctx, body, states, scanInputs, axes, directions, scanLength(ctx, scanInputs, axes));
  const outAxes = ctx.intList('scan_output_axes', []);
  const outDirections = ctx.intList('scan_output_directions', []);
  const stacked = result.outputs.map((items, k) =>
    stackScan(ctx, outDirections[k] === 1 ? [...items].reverse() : items, body, n + k, outAxes[k] ?? 0));
  return [...result.states, ...stacked];
}

// Scan, opset 8: a leading batch axis on every state and scan input (the scan axis is 1), an
// optional sequence_lens input first, and `directions` for the scan inputs. Each batch entry is
// scanned on its own; scan outputs past an entry's length are zero.
function scan8(ctx: NodeContext): OpResult[] {
  const body = ctx.graph('body');
  const m = ctx.requiredInt('num_scan_inputs');
  const values: OnnxTensor[] = [];
  for (let i = 1; i < ctx.inputCount; i++) values.push(ctx.input(i));
  const n = values.length - m;
  const batch = values[0]?.tensor.shape[0] ?? ctx.fail('Scan needs inputs');
  const seqLength = scanLength(ctx, values.slice(n), values.slice(n).map(() => 1));
  const lens = ctx.optionalInts(0, new Array<number>(batch).fill(seqLength));
  const directions = ctx.intList('directions', []);
  const perBatch = Array.from({ length: batch }, (_, b) => {
    const pick = (x: OnnxTensor): OnnxTensor => onnxTensor(indexAlong(x.tensor, 0, b), x.type);
    const scanInputs = values.slice(n).map(pick);
    const steps = lens[b]!;
    const r = scanLoop(ctx, body, values.slice(0, n).map(pick), scanInputs, scanInputs.map(() => 0), directions, steps);
    const outputs = r.outputs.map((items, k) => {
      const stacked = stackScan(ctx, items, body, n + k).tensor;
      // Zero padding after the sequence's end, up to the longest sequence.
      return steps === seqLength ? stacked : ops.pad(stacked, [...new Array<number>(2 * (stacked.rank - 1)).fill(0), 0, seqLength - steps]);
    });
    return { states: r.states.map((s, k) => tensorOutput(ctx, s, `state ${k}`)), outputs };
  });
  const stackBatch = (items: Tensor[], type: number): OnnxTensor => onnxTensor(ops.stack(items, 0), type);
  return [
    ...values.slice(0, n).map((v, k) => stackBatch(perBatch.map((p) => p.states[k]!.tensor), v.type)),
    ...body.outputs.slice(n).map((o, k) => {
      const type = o.type?.kind === 'tensor' ? o.type.elemType : ElemType.FLOAT;
      return stackBatch(perBatch.map((p) => p.outputs[k]!), type);
    }),
  ];
}

registerOnnxOp('Scan', (ctx) => (ctx.opset >= 9 ? scan9(ctx) : scan8(ctx)));
