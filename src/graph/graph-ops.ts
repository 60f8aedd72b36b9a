// One interface over every op a graph node can hold: the primitives (src/ops/primitives.ts) and the
// graph-level ops that passes introduce (fused kernels, matmul+bias, split) or that control flow
// records (cond, whileLoop). Graph-level ops register themselves here, so the graph layer can run a
// graph containing them without importing the compiler (which sits above it).
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { bind } from '../ops/dispatch.js';
import { isRandomPrimitive, primitives, type Cost, type PrimitiveName, type ValueInfo } from '../ops/primitives.js';
import { Graph } from './graph.js';

export interface GraphOpDef {
  /** Output types from input types (validation: throws naming the op). */
  infer(inputs: readonly ValueInfo[], attrs: unknown): ValueInfo[];
  cost(inputs: readonly ValueInfo[], attrs: unknown, outputs: readonly ValueInfo[]): Cost;
  /** Runs the op on tensors of any backend (through `bind`, so it is also traceable). */
  execute(inputs: readonly Tensor[], attrs: unknown): Tensor[];
  /** Elementwise ops (same-shape inputs, output index = input index) may run in place. */
  elementwise?: boolean;
}

const graphOps = new Map<string, GraphOpDef>();

/** Registers a graph-level op (names must not clash with primitives). */
export function registerGraphOp(name: string, def: GraphOpDef): void {
  if (name in primitives) throw new TesseraError(`registerGraphOp: '${name}' is a primitive name; pick another name.`);
  graphOps.set(name, def);
}

export function isPrimitive(op: string): op is PrimitiveName {
  return Object.prototype.hasOwnProperty.call(primitives, op);
}

const ELEMENTWISE = new Set<string>([
  'exp', 'log', 'log1p', 'expm1', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'gelu', 'geluGrad',
  'neg', 'abs', 'relu', 'sign', 'floor', 'ceil', 'round', 'logicalNot', 'isnan',
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'reluGrad', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr',
  'where', 'cast',
]);

/** True for primitives that compute each output element from the same-index input elements. */
export function isElementwisePrimitive(op: string): boolean {
  return ELEMENTWISE.has(op);
}

const primitiveDefs = new Map<string, GraphOpDef>();

/** The uniform definition of an op, primitive or graph-level. */
export function opDef(op: string): GraphOpDef {
  if (isPrimitive(op)) {
    let d = primitiveDefs.get(op);
    if (d === undefined) {
      const p = primitives[op] as unknown as {
        infer(i: readonly ValueInfo[], a: unknown): ValueInfo;
        cost(i: readonly ValueInfo[], a: unknown, o: ValueInfo): Cost;
      };
      d = {
        infer: (inputs, attrs) => [p.infer(inputs, attrs)],
        cost: (inputs, attrs, outs) => p.cost(inputs, attrs, outs[0]!),
        execute: (inputs, attrs) => [bind(op, inputs, attrs as never)],
        elementwise: ELEMENTWISE.has(op),
      };
      primitiveDefs.set(op, d);
    }
    return d;
  }
  const d = graphOps.get(op);
  if (d === undefined) {
    throw new TesseraError(`graph: unknown op '${op}'. It is neither a primitive nor a registered graph op; ` +
      'import the module that registers it (e.g. tessera compiler ops) before running the graph.');
  }
  return d;
}

/**
 * Whether running the node has an effect beyond its outputs: it draws random numbers (a random
 * primitive, or a cond/whileLoop whose nested graphs draw), advancing a generator, or it is a fused
 * optimizer update (optimizer-update-op.ts), whose compiled replay overwrites its parameter and
 * state inputs. Passes must not fold, merge (CSE), drop (DCE) or reorder such nodes relative to each
 * other: a replayed graph then takes exactly the numbers the eager code would, in the same order.
 */
export function isImpureNode(n: { op: string; attrs: unknown }): boolean {
  return n.op === 'optimizerUpdate' || drawsRandom(n) || nestedGraphs(n).some((g) => g.nodes.some(isImpureNode));
}

function nestedGraphs(n: { attrs: unknown }): Graph[] {
  if (n.attrs === null || typeof n.attrs !== 'object') return [];
  return Object.values(n.attrs as Record<string, unknown>).filter((v): v is Graph => v instanceof Graph);
}

function drawsRandom(n: { op: string; attrs: unknown }): boolean {
  return isRandomPrimitive(n.op) || nestedGraphs(n).some(graphDrawsRandom);
}

/** Whether any node of `g` (or of a graph nested in one) draws random numbers. */
export function graphDrawsRandom(g: Graph): boolean {
  return g.nodes.some(drawsRandom);
}
