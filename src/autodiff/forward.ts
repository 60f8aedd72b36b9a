// Forward mode (jvp) by dual numbers: while a jvp is running, every primitive applied to a tensor
// that has a tangent also computes its output's tangent with the primitive's jvp rule. Levels nest,
// so jvp of jvp works, and tangents are computed with ops, so reverse mode can differentiate them.
import type { Tensor } from '../core/tensor.js';
import { isFloating } from '../core/dtype.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import type { PrimitiveAttrs, PrimitiveName } from '../ops/primitives.js';
import { jvpRules } from './jvp-rules.js';
import { bind } from '../ops/dispatch.js';
import { zerosLike } from '../ops/creation.js';

interface Level {
  tangents: WeakMap<Tensor, Tensor>;
}

const levels: Level[] = [];

/** Called by dispatch after each primitive: derives the output's tangent at every active level. */
export function forwardTangents<P extends PrimitiveName>(prim: P, inputs: readonly Tensor[], attrs: PrimitiveAttrs[P], output: Tensor): void {
  if (levels.length === 0 || !isFloating(output.dtype)) return;
  // Innermost level first; while a level's rule runs, it and the levels inside it are suspended,
  // so the rule's own ops get tangents only from the enclosing levels.
  for (let li = levels.length - 1; li >= 0; li--) {
    const level = levels[li]!;
    const ts = inputs.map((x) => level.tangents.get(x));
    if (ts.every((t) => t === undefined)) continue;
    const suspended = levels.splice(li);
    try {
      const t = jvpRules[prim](ts, inputs, output, attrs);
      if (t !== undefined) level.tangents.set(output, t);
    } finally {
      levels.push(...suspended);
    }
  }
}

/** Whether a jvp is running (tangents are being propagated). */
export function forwardModeActive(): boolean {
  return levels.length > 0;
}

/** Gives `to` the tangents `from` has at every active level (used when aliasing a primal). */
export function copyTangents(from: Tensor, to: Tensor): void {
  for (const level of levels) {
    const t = level.tangents.get(from);
    if (t !== undefined) level.tangents.set(to, t);
  }
}

/**
 * Evaluates f at `primals` and its directional derivative along `tangents` in one forward pass.
 * Returns [f(primals), J·tangents].
 */
export function jvp(f: (...xs: Tensor[]) => Tensor, primals: readonly Tensor[], tangents: readonly Tensor[]): [Tensor, Tensor] {
  if (primals.length !== tangents.length) {
    throw new TesseraError(`jvp: got ${primals.length} primals but ${tangents.length} tangents; give one tangent per primal.`);
  }
  primals.forEach((p, i) => {
    const t = tangents[i]!;
    if (!shapesEqual(p.shape, t.shape) || p.dtype !== t.dtype) {
      throw new TesseraError(`jvp: tangent ${i} is ${fmtShape(t.shape)} ${t.dtype} but its primal is ${fmtShape(p.shape)} ${p.dtype}; they must match.`);
    }
    if (!isFloating(p.dtype)) throw new TesseraError(`jvp: primal ${i} is ${p.dtype}; only floating tensors have tangents.`);
  });
  const level: Level = { tangents: new WeakMap() };
  levels.push(level);
  try {
    // Fresh aliases, so the same tensor used elsewhere does not carry this level's tangent.
    const xs = primals.map((p) => aliasOf(p));
    xs.forEach((x, i) => level.tangents.set(x, tangents[i]!));
    const out = f(...xs);
    const t = level.tangents.get(out);
    return [out, t ?? zerosLike(out)];
  } finally {
    const i = levels.lastIndexOf(level);
    if (i >= 0) levels.splice(i, 1);
  }
}

/** A new tensor object viewing the same data and connected to p's autodiff graph. */
function aliasOf(p: Tensor): Tensor {
  return bind('reshape', [p], { shape: [...p.shape] });
}
