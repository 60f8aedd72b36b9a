// The thread pool's entry point for the row-wise kernel modules (softmax, layerNorm, reductions):
// task(unit, params, thread) reads unit's descriptor from the parameter block and calls the
// kernel it names with the arguments stored there. The host (row-jobs.ts) cuts one kernel call
// over many rows into several calls over fewer rows, one per unit, so each row runs the very
// same code it runs single-threaded.
//
// Descriptor of unit u at params + u·ROW_TASK_DESCRIPTOR_BYTES: i32 kernel index at byte 0, then
// the kernel's arguments in 8-byte slots from byte 8 (an i32 in the slot's low word, an f64 filling it).

import { ValType, Op, MemOp, type ModuleBuilder, type FunctionBuilder } from './encoder.js';

/** The export the thread pool calls (ThreadPool.run). */
export const ROW_TASK_EXPORT = 'task';
/** Argument slots per descriptor: the most parameters a row kernel takes. */
export const ROW_TASK_MAX_ARGS = 8;
export const ROW_TASK_DESCRIPTOR_BYTES = 8 + 8 * ROW_TASK_MAX_ARGS;

/** A row kernel function of the module and its parameter types (i32 or f64), in order. */
export interface RowKernelEntry {
  readonly fn: FunctionBuilder;
  readonly params: readonly ValType[];
}

/** Emits task(unit, params, thread) dispatching on the descriptor's kernel index (a br_table over `kernels`). */
export function emitRowTask(m: ModuleBuilder, kernels: readonly RowKernelEntry[]): void {
  for (const k of kernels) {
    if (k.params.length > ROW_TASK_MAX_ARGS || k.params.some((p) => p !== ValType.i32 && p !== ValType.f64)) {
      throw new Error(`emitRowTask: a row kernel takes at most ${ROW_TASK_MAX_ARGS} i32/f64 parameters (got ${k.params.length})`);
    }
  }
  const { i32 } = ValType;
  const f = m.function({ params: [i32, i32, i32], results: [] }, ROW_TASK_EXPORT);
  const base = f.local(i32);
  f.localGet(1).localGet(0).i32Const(ROW_TASK_DESCRIPTOR_BYTES).op(Op.i32Mul).op(Op.i32Add).localSet(base);
  const count = kernels.length;
  for (let b = 0; b <= count; b++) f.block();
  f.localGet(base).mem(MemOp.i32Load).brTable(kernels.map((_, i) => i), count);
  kernels.forEach(({ fn, params }, i) => {
    f.end();
    params.forEach((type, a) => f.localGet(base).mem(type === ValType.f64 ? MemOp.f64Load : MemOp.i32Load, 8 + 8 * a));
    f.call(fn.index).br(count - i - 1);
  });
  f.end();
}
