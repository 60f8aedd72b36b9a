// The small, plain-data graph the intra-operator sharding planner works on. It is deliberately
// independent of the compiler's Graph: an adapter can map compiler nodes (matmul, element-wise
// ops) onto these records when that IR exists.
import type { TransformerSpec } from './model.js';

export interface TensorInfo {
  name: string;
  shape: readonly number[];
  /** Default 2 (bf16). */
  bytesPerElement?: number;
  /** A trainable weight: its gradient is all-reduced over every mesh axis it is replicated on. */
  parameter?: boolean;
}

export type OpNode =
  /** A[M,K] · B[K,N] → C[M,N]. */
  | { kind: 'matmul'; name: string; inputs: readonly [string, string]; output: string }
  /** Same-shape inputs and output (activation, residual add, bias, dropout, ...). */
  | { kind: 'elementwise'; name: string; inputs: readonly string[]; output: string };

export interface OpGraph {
  tensors: readonly TensorInfo[];
  ops: readonly OpNode[];
}

export function validateOpGraph(g: OpGraph): Map<string, TensorInfo> {
  const byName = new Map<string, TensorInfo>();
  for (const t of g.tensors) {
    if (byName.has(t.name)) throw new Error(`op graph: tensor '${t.name}' is declared twice.`);
    byName.set(t.name, t);
  }
  const produced = new Set<string>();
  for (const op of g.ops) {
    for (const name of [...op.inputs, op.output]) {
      if (!byName.has(name)) throw new Error(`op graph: op '${op.name}' uses tensor '${name}', which is not declared in tensors.`);
    }
    if (produced.has(op.output)) throw new Error(`op graph: tensor '${op.output}' is produced by more than one op.`);
    produced.add(op.output);
    const shape = (n: string): readonly number[] => byName.get(n)!.shape;
    if (op.kind === 'matmul') {
      const [a, b] = op.inputs.map(shape) as [readonly number[], readonly number[]];
      const c = shape(op.output);
      if (a.length !== 2 || b.length !== 2 || c.length !== 2 || a[1] !== b[0] || c[0] !== a[0] || c[1] !== b[1]) {
        throw new Error(`op graph: matmul '${op.name}' needs A[M,K]·B[K,N] → C[M,N]; got [${a.join(',')}]·[${b.join(',')}] → [${c.join(',')}].`);
      }
    } else {
      const out = shape(op.output).join(',');
      for (const i of op.inputs) {
        if (shape(i).join(',') !== out) throw new Error(`op graph: element-wise '${op.name}' needs equal shapes; '${i}' is [${shape(i).join(',')}], output is [${out}].`);
      }
    }
  }
  return byName;
}

/** The MLP block of one transformer layer as an op graph (tokens = micro-batch × sequence):
 * x·W1 → activation → ·W2 → + x. The sharding ILP should rediscover Megatron's column-then-row split. */
export function transformerMlpGraph(m: TransformerSpec, microBatch = 1): OpGraph {
  const tokens = microBatch * m.seqLen, h = m.hidden, f = m.ffn;
  return {
    tensors: [
      { name: 'x', shape: [tokens, h] }, { name: 'w1', shape: [h, f], parameter: true }, { name: 'a', shape: [tokens, f] },
      { name: 'g', shape: [tokens, f] }, { name: 'w2', shape: [f, h], parameter: true }, { name: 'y', shape: [tokens, h] },
      { name: 'out', shape: [tokens, h] },
    ],
    ops: [
      { kind: 'matmul', name: 'fc1', inputs: ['x', 'w1'], output: 'a' },
      { kind: 'elementwise', name: 'gelu', inputs: ['a'], output: 'g' },
      { kind: 'matmul', name: 'fc2', inputs: ['g', 'w2'], output: 'y' },
      { kind: 'elementwise', name: 'residual', inputs: ['y', 'x'], output: 'out' },
    ],
  };
}
