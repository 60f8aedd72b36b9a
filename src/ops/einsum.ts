// einsum: Einstein summation over any number of operands, lowered to ops that already exist
// (diagonal masks, sum, permute, expand, reshape, matmul), so it differentiates in both modes and
// the attention contractions ('bhqd,bhkd->bhqk', 'bhqk,bhkd->bhqd') become one batched matmul.
//
// Supported: explicit ('ij,jk->ik') and implicit ('ij,jk': output = labels seen once, sorted)
// outputs, repeated labels within one operand (diagonals, 'ii->i', traces 'ii->'), an ellipsis
// '...' for broadcast dimensions, size-1 broadcasting of any label, and 0-d operands.
import { type DType, promoteTypes } from '../core/dtype.js';
import { check, fmtShape } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { arange } from './creation.js';
import { cast, eq, where } from './elementwise.js';
import { matmul } from './linalg.js';
import { sum } from './reduce.js';
import { expand, permute, reshape } from './shape.js';

/** A label is a letter's char code, or ELLIPSIS_BASE + i for the i-th broadcast dimension. */
type Label = number;
const ELLIPSIS_BASE = 1000;

interface Term {
  labels: Label[];
  hasEllipsis: boolean;
}

interface Operand {
  t: Tensor;
  labels: Label[];
}

function labelName(l: Label): string {
  return l >= ELLIPSIS_BASE ? `...[${l - ELLIPSIS_BASE}]` : String.fromCharCode(l);
}

/** Parses one subscript term into letter codes with an ellipsis marker (-1) where '...' stood. */
function parseTerm(term: string, equation: string): { codes: number[]; hasEllipsis: boolean } {
  const codes: number[] = [];
  let hasEllipsis = false;
  for (let i = 0; i < term.length; i++) {
    const ch = term[i]!;
    if (ch === '.') {
      check(term.slice(i, i + 3) === '...' && !hasEllipsis, 'einsum', () =>
        `malformed ellipsis in '${term}' of "${equation}": use exactly one '...' per operand.`);
      hasEllipsis = true;
      codes.push(-1);
      i += 2;
      continue;
    }
    check(/[a-zA-Z]/.test(ch), 'einsum', () => `invalid subscript '${ch}' in "${equation}"; subscripts are letters a-z, A-Z and '...'.`);
    codes.push(ch.charCodeAt(0));
  }
  return { codes, hasEllipsis };
}

/** Expands an ellipsis into `count` broadcast labels aligned to the right of `total`. */
function expandEllipsis(codes: readonly number[], count: number, total: number): Label[] {
  const out: Label[] = [];
  for (const c of codes) {
    if (c === -1) for (let j = total - count; j < total; j++) out.push(ELLIPSIS_BASE + j);
    else out.push(c);
  }
  return out;
}

/** Takes the diagonal over repeated labels within one operand ('ii' → 'i'). */
function collapseRepeats(op: Operand): Operand {
  let { t, labels } = op;
  for (;;) {
    const q = labels.findIndex((l, i) => labels.indexOf(l) !== i);
    if (q < 0) return { t, labels };
    const p = labels.indexOf(labels[q]!);
    const n = t.shape[p]!;
    check(t.shape[q] === n, 'einsum', () =>
      `label '${labelName(labels[p]!)}' is repeated in one operand of shape ${fmtShape(t.shape)} with sizes ${n} and ${t.shape[q]}; repeated labels need equal sizes.`);
    // Zeroing everything off the (p, q) diagonal and summing q keeps exactly the diagonal, and
    // differentiates like it (the gradient lands on the diagonal only). `where` rather than a
    // multiply by a 0/1 mask, so an inf or NaN off the diagonal cannot turn into NaN.
    const at = (axis: number): Tensor => reshape(arange(n, undefined, 1, { backend: t.backend }), t.shape.map((d, i) => (i === axis ? n : 1)));
    t = sum(where(eq(at(p), at(q)), t, t.dtype === 'bool' ? false : 0), q);
    labels = labels.filter((_, i) => i !== q);
  }
}

/** Sums away the labels of `op` that no one else needs. */
function sumUnneeded(op: Operand, needed: ReadonlySet<Label>): Operand {
  const axes = op.labels.map((l, i) => (needed.has(l) ? -1 : i)).filter((i) => i >= 0);
  if (axes.length === 0) return op;
  return { t: sum(op.t, axes), labels: op.labels.filter((l) => needed.has(l)) };
}

/** Broadcasts size-1 dims of `t` (with `labels`) to the global label sizes. */
function expandTo(t: Tensor, labels: readonly Label[], sizes: ReadonlyMap<Label, number>): Tensor {
  const target = labels.map((l) => sizes.get(l)!);
  return target.every((d, i) => d === t.shape[i]) ? t : expand(t, target);
}

function permuteTo(op: Operand, order: readonly Label[]): Tensor {
  return permute(op.t, order.map((l) => op.labels.indexOf(l)));
}

/** Contracts two operands into one whose labels are the ones in `keep` (batch, a-only, b-only). */
function contractPair(a: Operand, b: Operand, keep: ReadonlySet<Label>, sizes: ReadonlyMap<Label, number>): Operand {
  const inB = new Set(b.labels), inA = new Set(a.labels);
  a = sumUnneeded(a, new Set([...keep, ...b.labels]));
  b = sumUnneeded(b, new Set([...keep, ...a.labels]));
  const batch = a.labels.filter((l) => inB.has(l) && keep.has(l));
  const contracted = a.labels.filter((l) => inB.has(l) && !keep.has(l));
  const aOnly = a.labels.filter((l) => !inB.has(l));
  const bOnly = b.labels.filter((l) => !inA.has(l));
  const size = (l: Label, t: Operand): number => t.t.shape[t.labels.indexOf(l)]!;
  const prod = (ls: readonly Label[], of: (l: Label) => number): number => ls.reduce((p, l) => p * of(l), 1);
  const shared = [...batch, ...contracted];
  // Shared labels are broadcast to their common size; one-sided labels keep their own size.
  const sharedSize = (l: Label): number => sizes.get(l)!;
  const aSizes = new Map<Label, number>([...shared.map((l) => [l, sharedSize(l)] as const), ...aOnly.map((l) => [l, size(l, a)] as const)]);
  const bSizes = new Map<Label, number>([...shared.map((l) => [l, sharedSize(l)] as const), ...bOnly.map((l) => [l, size(l, b)] as const)]);
  const aOrder = [...batch, ...aOnly, ...contracted];
  const bOrder = [...batch, ...contracted, ...bOnly];
  const batchShape = batch.map(sharedSize);
  const m = prod(aOnly, (l) => size(l, a)), k = prod(contracted, sharedSize), n = prod(bOnly, (l) => size(l, b));
  const x = reshape(expandTo(permuteTo(a, aOrder), aOrder, aSizes), [...batchShape, m, k]);
  const y = reshape(expandTo(permuteTo(b, bOrder), bOrder, bSizes), [...batchShape, k, n]);
  const out = matmul(x, y);
  return {
    t: reshape(out, [...batchShape, ...aOnly.map((l) => size(l, a)), ...bOnly.map((l) => size(l, b))]),
    labels: [...batch, ...aOnly, ...bOnly],
  };
}

/**
 * Einstein summation (torch.einsum): `einsum('bhqd,bhkd->bhqk', q, k)`. Operands are promoted to one
 * dtype; labels of size 1 broadcast against the same label elsewhere.
 */
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  const eqn = equation.replace(/\s+/g, '');
  const arrow = eqn.split('->');
  check(arrow.length <= 2, 'einsum', () => `"${equation}" has more than one '->'.`);
  const lhs = arrow[0]!.split(',');
  check(lhs.length === operands.length, 'einsum', () =>
    `"${equation}" names ${lhs.length} operand(s) but ${operands.length} tensor(s) were given.`);
  check(operands.length > 0, 'einsum', () => 'needs at least one operand.');

  const dtype: DType = operands.map((t) => t.dtype).reduce((p, q) => promoteTypes(p, q));
  const parsed = lhs.map((term) => parseTerm(term, equation));
  const ellipsisDims = parsed.map(({ codes, hasEllipsis }, i) => {
    const letters = codes.filter((c) => c !== -1).length;
    const rank = operands[i]!.rank;
    check(hasEllipsis ? rank >= letters : rank === letters, 'einsum', () =>
      `operand ${i} has shape ${fmtShape(operands[i]!.shape)} (${rank} dims) but its subscripts '${lhs[i]}' name ${letters}${hasEllipsis ? ' or more' : ''}.`);
    return hasEllipsis ? rank - letters : 0;
  });
  const totalEllipsis = Math.max(0, ...ellipsisDims);
  const terms: Term[] = parsed.map(({ codes, hasEllipsis }, i) => ({
    labels: expandEllipsis(codes, ellipsisDims[i]!, totalEllipsis),
    hasEllipsis,
  }));

  // Global size of each label: equal sizes, or 1 broadcasting against n.
  const sizes = new Map<Label, number>();
  terms.forEach(({ labels }, i) => labels.forEach((l, axis) => {
    const d = operands[i]!.shape[axis]!;
    const prev = sizes.get(l);
    check(prev === undefined || prev === d || prev === 1 || d === 1, 'einsum', () =>
      `label '${labelName(l)}' has size ${prev} in one operand and ${d} in operand ${i} (shape ${fmtShape(operands[i]!.shape)}) in "${equation}"; sizes must match or be 1.`);
    if (prev === undefined || prev === 1) sizes.set(l, d);
  }));

  let output: Label[];
  const ellipsisLabels = Array.from({ length: totalEllipsis }, (_, j) => ELLIPSIS_BASE + j);
  if (arrow.length === 2) {
    const out = parseTerm(arrow[1]!, equation);
    output = expandEllipsis(out.codes, totalEllipsis, totalEllipsis);
    for (const l of output) {
      check(l >= ELLIPSIS_BASE || sizes.has(l), 'einsum', () => `output label '${labelName(l)}' of "${equation}" does not appear in any input.`);
    }
    check(new Set(output).size === output.length, 'einsum', () => `output subscripts of "${equation}" repeat a label.`);
  } else {
    const counts = new Map<Label, number>();
    for (const { labels } of terms) for (const l of labels) if (l < ELLIPSIS_BASE) counts.set(l, (counts.get(l) ?? 0) + 1);
    const once = [...counts].filter(([, c]) => c === 1).map(([l]) => l).sort((p, q) => p - q);
    output = [...ellipsisLabels, ...once];
  }

  let ops: Operand[] = operands.map((t, i) => collapseRepeats({ t: cast(t, dtype), labels: terms[i]!.labels }));
  const outSet = new Set(output);
  // Sum every label that appears in only one operand and not in the output right away.
  ops = ops.map((op, i) => sumUnneeded(op, new Set([...outSet, ...ops.flatMap((o, j) => (j === i ? [] : o.labels))])));

  let acc = ops[0]!;
  for (let i = 1; i < ops.length; i++) {
    const keep = new Set([...outSet, ...ops.slice(i + 1).flatMap((o) => o.labels)]);
    acc = contractPair(acc, ops[i]!, keep, sizes);
  }
  acc = sumUnneeded(acc, outSet);
  return expandTo(permuteTo(acc, output), output, sizes);
}
