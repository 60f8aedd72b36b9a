// A compiled graph's parameter writes (assign, an optimizer's update) on the wasm backend as copies
// inside the heap. The generic path (graph/state.ts applyWrites) reads each new value out to a JS
// array and scatters it back element by element: for a jitted Adam step of the bench MLP that is
// three copies of 670k floats through JS per step, about as long as the fused update itself. Here a
// float32 value whose layout matches its contiguous target is one `copyWithin` of the heap, and the
// value (an intermediate nothing else holds) is freed right away instead of at garbage collection.
// Anything else (other dtypes, strided targets, .grad writes) takes the generic path, in order.
import type { Tensor } from '../core/tensor.js';
import { contiguousStrides, sizeOf } from '../core/shape.js';
import { WasmBackend } from '../backend/wasm/backend.js';
import type { Graph, GraphWrite } from '../graph/graph.js';
import { applyWrites } from '../graph/state.js';

const isContiguous = (t: Tensor): boolean => {
  const cs = contiguousStrides(t.shape);
  return t.shape.every((d, i) => d === 1 || t.strides[i] === cs[i]);
};

/** Copies `value` into `target` inside the wasm heap; false (nothing written) when it cannot. */
function copyOnHeap(target: Tensor, value: Tensor): boolean {
  const backend = target.storage.backend;
  if (!(backend instanceof WasmBackend) || value.storage.backend !== backend) return false;
  if (target.dtype !== 'float32' || value.dtype !== 'float32') return false;
  if (target.shape.length !== value.shape.length || target.shape.some((d, i) => d !== value.shape[i])) return false;
  if (!isContiguous(target) || !isContiguous(value)) return false;
  target.assertAlive('assign');
  value.assertAlive('assign');
  const n = sizeOf(target.shape);
  const dst = (backend.addressOf(target.storage) >>> 2) + target.offset;
  const src = (backend.addressOf(value.storage) >>> 2) + value.offset;
  if (dst !== src) backend.heap.f32.copyWithin(dst, src, src + n);
  return true;
}

/**
 * A writer for interpret's `writer` option: the graph's writes in their order, data writes of
 * float32 wasm tensors as heap copies, then the copied values freed when no output, input,
 * constant, parameter or other write holds them.
 */
export function heapWriter(graph: Graph, inputs: readonly Tensor[], counts: { heapWrites: number } = { heapWrites: 0 }): (writes: { write: GraphWrite; value: Tensor }[], outputs: readonly Tensor[]) => void {
  return (writes, outputs) => {
    const copied: Tensor[] = [];
    for (const w of writes) {
      if (w.write.kind === 'data' && copyOnHeap(w.write.target, w.value)) {
        copied.push(w.value);
        counts.heapWrites++;
      }
      else applyWrites([w]);
    }
    if (copied.length === 0) return;
    const held = new Set<Tensor>([...outputs, ...inputs, ...graph.constants.values(), ...graph.parameters.values()]);
    for (const w of writes) {
      if (w.write.kind === 'grad') held.add(w.value);
      held.add(w.write.target);
    }
    for (const v of new Set(copied)) if (!held.has(v) && !v.isDisposed) v.dispose();
  };
}
