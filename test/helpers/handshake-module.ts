// A kernel module for checking that a thread pool's workers really take part in a job:
// task(unit, params, thread) on the calling thread (0) spins until the flag at `params` is set,
// trapping after 2^30 checks; on a worker it sets the flag. So a job of two units can only finish
// if a worker runs one: a deterministic check, whatever the machine's load. Used in Node
// (test/backend/wasm/threads.test.ts) and on Web Workers (test/browser/training-worker.ts).
import { ModuleBuilder, ValType, Op, AtomicOp } from '../../src/backend/wasm/encoder.js';

export function handshakeModule(maxPages: number): Uint8Array<ArrayBuffer> {
  const { i32 } = ValType;
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', minPages: 1, maxPages, shared: true });
  const f = m.function({ params: [i32, i32, i32], results: [] }, 'task');
  const count = f.local(i32);
  f.localGet(2).if();
  f.localGet(1).i32Const(1).atomic(AtomicOp.i32AtomicStore);
  f.else();
  f.block().loop();
  f.localGet(1).atomic(AtomicOp.i32AtomicLoad).brIf(1);
  f.localGet(count).i32Const(1).op(Op.i32Add).localTee(count).i32Const(0x40000000).op(Op.i32Eq).if().op(Op.unreachable).end();
  f.br(0);
  f.end().end();
  f.end();
  return m.encode();
}
