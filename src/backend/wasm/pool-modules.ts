// Kernel modules registered with the backend's current thread pool, by key. The pool changes
// when the thread count does (setThreads), and a module registered with the old pool cannot run
// on the new one, so the cache follows the pool and starts over when it changes. Generators that
// bake a geometry into each module (window and convolution kernels) also cap how many they keep:
// a program with many layer shapes starts over rather than growing without bound.
import type { KernelModule, ThreadPool } from './threads.js';

export class PoolModules {
  private pool: ThreadPool | undefined;
  private readonly modules = new Map<string, KernelModule>();

  constructor(private readonly maxModules = Infinity) {}

  /** The module under `key` registered with `pool` (the backend's current one), building its bytes on first use. */
  get(pool: ThreadPool, key: string, build: () => Uint8Array<ArrayBuffer>): KernelModule {
    if (pool !== this.pool) {
      this.pool = pool;
      this.modules.clear();
    }
    let module = this.modules.get(key);
    if (module === undefined) {
      if (this.modules.size >= this.maxModules) this.modules.clear();
      module = pool.register(build());
      this.modules.set(key, module);
    }
    return module;
  }
}
