// Side effects a traced function may have: writing new data into an existing tensor (the in-place
// parameter update of a training step) and setting `.grad`. Eagerly they happen at once; under
// tracing they are recorded as graph writes, which a compiled function replays after each run.
import { TesseraError, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import { keep } from '../core/memory.js';
import type { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { cast } from '../ops/elementwise.js';
import type { GraphWrite } from './graph.js';
import { activeTracer, untracedRead } from './trace.js';

/**
 * Overwrites `target`'s elements with `value` (same shape; cast to target's dtype), like
 * `target.copy_(value)` under no_grad. Inside a traced function the write becomes a graph output
 * that the compiled function writes back on every call, and later reads of `target` in the same
 * trace see the new value.
 */
export function assign(target: Tensor, value: Tensor): Tensor {
  if (!shapesEqual(target.shape, value.shape)) {
    throw new TesseraError(`assign: value shape ${fmtShape(value.shape)} differs from target shape ${fmtShape(target.shape)}; reshape or broadcast the value first.`);
  }
  if (target.gradNode !== undefined) {
    throw new TesseraError('assign: the target was computed by an op (it has a gradient function); only leaf tensors (parameters, buffers) can be assigned.');
  }
  const v = noGrad(() => cast(value, target.dtype));
  const tracer = activeTracer();
  if (tracer !== undefined) tracer.recordWrite('data', target, v);
  writeData(target, v);
  if (tracer !== undefined) tracer.rebind(target, v);
  return target;
}

function writeData(target: Tensor, value: Tensor): void {
  target.assertAlive('assign');
  const backend = target.storage.backend;
  // The value is the target itself (an update applied in place already): nothing to copy.
  if (value.storage === target.storage && value.offset === target.offset && shapesEqual(value.strides, target.strides)) return;
  // A backend with its own memory may copy device-side (webgpu: no read back to JavaScript).
  if (backend.copyStrided !== undefined && value.storage.backend === backend && value.storage !== target.storage
    && backend.copyStrided(target.asKernelInput('assign'), value.asKernelInput('assign'))) return;
  backend.writeStrided(target, untracedRead(() => value.data()));
}

/** Applies writes computed by a graph run (data copies first, then .grad settings). */
export function applyWrites(ws: readonly { write: GraphWrite; value: Tensor }[]): void {
  for (const { write, value } of ws) {
    if (write.kind === 'data') writeData(write.target, value);
    else write.target.grad = keep(value);
  }
}
