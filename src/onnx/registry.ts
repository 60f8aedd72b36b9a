// The table of ONNX operators tessera runs: op type (and domain) → an implementation written with
// tessera ops. Implementations live in ops/*.ts, one file per family, and register themselves
// when ops/index.ts imports them.

import type { Tensor } from '../core/tensor.js';
import type { NodeContext } from './node-context.js';
import type { OnnxValue } from './value.js';

/** What an implementation returns per node output: a value, a bare Tensor, or undefined for an output it does not produce. */
export type OpResult = OnnxValue | Tensor | undefined;

export interface OnnxOpImpl {
  /** Runs one node. Returns its outputs in order (trailing optional outputs may be left off). */
  run(ctx: NodeContext): OpResult[];
  /** The opset versions implemented, inclusive (default: every version from 1 on). */
  readonly minOpset?: number;
  readonly maxOpset?: number;
}

const DEFAULT_DOMAIN = '';
const registry = new Map<string, OnnxOpImpl>();

/** The canonical domain: '' and 'ai.onnx' are the same default domain. */
export function canonicalDomain(domain: string): string {
  return domain === 'ai.onnx' ? DEFAULT_DOMAIN : domain;
}

function key(domain: string, opType: string): string {
  return `${canonicalDomain(domain)}::${opType}`;
}

/** Registers an implementation; a second registration of the same op replaces the first. */
export function registerOnnxOp(opType: string, impl: OnnxOpImpl | OnnxOpImpl['run'], domain = DEFAULT_DOMAIN): void {
  registry.set(key(domain, opType), typeof impl === 'function' ? { run: impl } : impl);
}

export function lookupOnnxOp(domain: string, opType: string): OnnxOpImpl | undefined {
  return registry.get(key(domain, opType));
}

/** Every registered op as "OpType" (default domain) or "domain::OpType", sorted. */
export function supportedOnnxOps(): string[] {
  return [...registry.keys()].map((k) => (k.startsWith('::') ? k.slice(2) : k)).sort();
}
