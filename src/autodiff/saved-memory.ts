// What the tape keeps alive for backward: the distinct storages (a view shares its base's) of every
// node's saved inputs and output reachable from a tensor. Benchmarks and tests of the memory
// techniques (checkpoint, offload, autocast) measure with it; it walks the tape, reads no values.
import { allocStorage, itemsize } from '../core/dtype.js';
import type { Storage } from '../backend/backend.js';
import type { Tensor } from '../core/tensor.js';
import type { GradNode } from './node.js';

export interface SavedMemory {
  /** Distinct storages the tape behind the tensor holds (its own included). */
  storages: number;
  /** Their bytes at the dtypes' sizes (float16/bfloat16: 2 bytes per element). */
  bytes: number;
  /**
   * Their bytes as their backends store them: float16/bfloat16 take 2 bytes per element on wasm
   * (packed) and 4 on cpu (a Float32Array); see Backend.storageBytes.
   */
  storedBytes: number;
}

/** The storages the tape behind `root` keeps for backward (nothing when root has no grad function). */
export function savedTensorMemory(root: Tensor): SavedMemory {
  const storages = new Set<Storage>();
  const seen = new Set<GradNode>();
  const stack: GradNode[] = root.gradNode === undefined ? [] : [root.gradNode];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    for (const x of [...node.inputs, ...(node.output === undefined ? [] : [node.output])]) {
      storages.add(x.storage);
      if (x.gradNode !== undefined) stack.push(x.gradNode);
    }
  }
  let bytes = 0, storedBytes = 0;
  for (const s of storages) {
    bytes += s.size * itemsize(s.dtype);
    storedBytes += s.backend.storageBytes?.(s) ?? s.size * allocStorage(s.dtype, 0).BYTES_PER_ELEMENT;
  }
  return { storages: storages.size, bytes, storedBytes };
}
