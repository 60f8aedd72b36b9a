// ONNX sequences and optionals: Sequence*, SplitToSequence, ConcatFromSequence, SequenceMap,
// Optional*.
//
// A sequence is an OnnxSequence (a list of typed tensors and the element type, known even when
// empty). An optional holding a value is the value itself; the empty optional is NONE. Sequences
// are immutable: the ops that "modify" one build a new list sharing the item tensors.

import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';
import { NONE, onnxTensor, requireStorageDType, type OnnxSequence, type OnnxTensor, type OnnxValue } from '../value.js';

/** Input i as a sequence. */
function sequenceInput(ctx: NodeContext, i: number): OnnxSequence {
  const v = ctx.value(i);
  if (v?.kind !== 'sequence') ctx.fail(`input ${i} must be a sequence, got ${v === undefined ? 'nothing' : v.kind === 'none' ? 'an empty optional' : 'a tensor'}`);
  return v;
}

function sequence(items: readonly OnnxTensor[], elemType: number): OnnxSequence {
  return { kind: 'sequence', items, elemType };
}

/** Checks that a tensor may join a sequence of `elemType`. */
function checkItemType(ctx: NodeContext, item: OnnxTensor, elemType: number): void {
  if (item.type !== elemType) ctx.fail(`a ${ctx.typeName(item.type)} tensor cannot join a sequence of ${ctx.typeName(elemType)}`);
}

/**
 * A position input (or `fallback` when it is omitted), negative counting from the end, checked
 * against [-n, n-1] (or [-n, n] where `allowEnd`, for inserting at the end).
 */
function position(ctx: NodeContext, i: number, n: number, fallback: number, allowEnd: boolean): number {
  const p = ctx.has(i) ? ctx.scalar(i) : fallback;
  const hi = allowEnd ? n : n - 1;
  if (p < -n || p > hi) ctx.fail(`position ${p} is out of range for a sequence of ${n} tensors ([${-n}, ${hi}])`);
  return p < 0 ? p + n : p;
}

// SequenceEmpty (opset 11): an empty sequence of the 'dtype' attribute's type (default FLOAT).
registerOnnxOp('SequenceEmpty', (ctx) => {
  const type = ctx.int('dtype', ElemType.FLOAT);
  requireStorageDType(type, `${ctx.where}'s dtype`);
  return [sequence([], type)];
});

// SequenceConstruct (opset 11): the inputs, all of one element type, as a sequence.
registerOnnxOp('SequenceConstruct', (ctx) => {
  const items = Array.from({ length: ctx.inputCount }, (_, i) => ctx.input(i));
  if (items.length === 0) ctx.fail('needs at least one input tensor');
  for (const item of items) checkItemType(ctx, item, items[0]!.type);
  return [sequence(items, items[0]!.type)];
});

// SequenceInsert (opset 11): a copy of the sequence with the tensor inserted at `position`
// (default: appended).
registerOnnxOp('SequenceInsert', (ctx) => {
  const seq = sequenceInput(ctx, 0);
  const item = ctx.input(1);
  checkItemType(ctx, item, seq.elemType);
  const items = [...seq.items];
  items.splice(position(ctx, 2, items.length, items.length, true), 0, item);
  return [sequence(items, seq.elemType)];
});

// SequenceAt (opset 11): the tensor at `position` (negative counts from the end).
registerOnnxOp('SequenceAt', (ctx) => {
  const seq = sequenceInput(ctx, 0);
  return [seq.items[position(ctx, 1, seq.items.length, 0, false)]];
});

// SequenceErase (opset 11): a copy of the sequence without the tensor at `position` (default: the last).
registerOnnxOp('SequenceErase', (ctx) => {
  const seq = sequenceInput(ctx, 0);
  const items = [...seq.items];
  items.splice(position(ctx, 1, items.length, -1, false), 1);
  return [sequence(items, seq.elemType)];
});

// SequenceLength (opset 11): the number of tensors, an INT64 scalar.
registerOnnxOp('SequenceLength', (ctx) => [ctx.output(ops.scalar(sequenceInput(ctx, 0).items.length, 'int32'), ElemType.INT64)]);

// SplitToSequence (opset 11): splits along `axis` into a sequence. Without `split`, into pieces
// of size 1, squeezed when keepdims is 1 (the default); a scalar `split` gives pieces of that size
// (the last may be shorter); a 1-D `split` gives the sizes.
registerOnnxOp('SplitToSequence', (ctx) => {
  const input = ctx.input(0);
  const x = input.tensor;
  const rank = x.rank;
  const axisAttr = ctx.int('axis', 0);
  if (axisAttr < -rank || axisAttr >= rank) ctx.fail(`axis ${axisAttr} is out of range for rank ${rank}`);
  const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
  const length = x.shape[axis]!;
  let pieces;
  if (!ctx.has(1)) {
    pieces = ops.split(x, 1, axis);
    if (ctx.int('keepdims', 1) === 0) pieces = pieces.map((p) => ops.squeeze(p, axis));
  } else {
    const split = ctx.ints(1);
    if (ctx.tensor(1).rank === 0) {
      if (!(split[0]! > 0)) ctx.fail(`split ${split[0]} must be positive`);
      pieces = ops.split(x, split[0]!, axis);
    } else {
      if (split.some((s) => s < 0) || split.reduce((a, b) => a + b, 0) !== length) {
        ctx.fail(`split [${split.join(', ')}] must be non-negative sizes adding up to ${length}, the length of axis ${axis}`);
      }
      pieces = ops.split(x, split, axis);
    }
  }
  return [sequence(pieces.map((p) => onnxTensor(p, input.type)), input.type)];
});

// ConcatFromSequence (opset 11): concatenates the sequence's tensors along `axis`, or stacks
// them along a new axis when new_axis is 1 (then axis may be -rank-1..rank).
registerOnnxOp('ConcatFromSequence', (ctx) => {
  const seq = sequenceInput(ctx, 0);
  if (seq.items.length === 0) ctx.fail('cannot concatenate an empty sequence');
  const newAxis = ctx.int('new_axis', 0) === 1;
  const rank = seq.items[0]!.tensor.rank + (newAxis ? 1 : 0);
  const axis = ctx.requiredInt('axis');
  if (axis < -rank || axis >= rank) ctx.fail(`axis ${axis} is out of range for ${newAxis ? 'stacking' : 'concatenating'} rank-${seq.items[0]!.tensor.rank} tensors`);
  const tensors = seq.items.map((i) => i.tensor);
  const a = axis < 0 ? axis + rank : axis;
  return [onnxTensor(newAxis ? ops.stack(tensors, a) : ops.cat(tensors, a), seq.elemType)];
});

// SequenceMap (opset 17): runs the body once per position of the input sequence. The body gets
// that item, and for each additional input either its item at the same position (a sequence of
// the same length) or the whole tensor; each body output is collected into an output sequence.
registerOnnxOp('SequenceMap', (ctx) => {
  const body = ctx.graph('body');
  const seq = sequenceInput(ctx, 0);
  const extras = Array.from({ length: ctx.inputCount - 1 }, (_, k) => ctx.value(k + 1) ?? ctx.fail(`input ${k + 1} is omitted`));
  for (const e of extras) {
    if (e.kind === 'sequence' && e.items.length !== seq.items.length) ctx.fail(`the additional sequences must have ${seq.items.length} items like the first, got ${e.items.length}`);
    if (e.kind === 'none') ctx.fail('an additional input is an empty optional');
  }
  const outputs: OnnxTensor[][] = body.outputs.map(() => []);
  seq.items.forEach((item, i) => {
    const args: OnnxValue[] = [item, ...extras.map((e) => (e.kind === 'sequence' ? e.items[i]! : e))];
    ctx.runSubgraph(body, args).forEach((v, k) => {
      outputs[k]!.push(v.kind === 'tensor' ? v : ctx.fail(`body output ${k} must be a tensor, got a ${v.kind === 'none' ? 'empty optional' : 'sequence'}`));
    });
  });
  return outputs.map((items, k) => {
    const declared = body.outputs[k]?.type;
    const type = items[0]?.type ?? (declared?.kind === 'tensor' ? declared.elemType : ElemType.FLOAT);
    return sequence(items, type);
  });
});

// Optional (opset 15): wraps the input (an optional holding a value is the value itself), or with
// no input, the empty optional (its 'type' attribute is not needed to represent it).
registerOnnxOp('Optional', (ctx) => [ctx.value(0) ?? NONE]);

// OptionalHasElement (opset 15, 18): whether the input holds a value (an omitted input, allowed
// from opset 18, holds none).
registerOnnxOp('OptionalHasElement', (ctx) => {
  const v = ctx.value(0);
  return [ctx.output(ops.scalar(v !== undefined && v.kind !== 'none', 'bool'), ElemType.BOOL)];
});

// OptionalGetElement (opset 15, 18): the value an optional holds; an empty optional is an error.
// A plain tensor or sequence (allowed from opset 18) is returned as it is.
registerOnnxOp('OptionalGetElement', (ctx) => {
  const v = ctx.value(0);
  if (v === undefined || v.kind === 'none') ctx.fail('the optional input is empty');
  return [v];
});
