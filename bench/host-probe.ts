// Is the host giving this VM's cores their full SIMD throughput right now? On a shared VM the
// answer changes from minute to minute: the SGEMM micro-kernel measured 43-48 GFLOP/s per core in
// one minute and 25-31 in the next on an otherwise idle guest (docs/performance.md), because work
// outside the guest (e.g. on a core's hyperthread sibling) takes the vector units. The spin loop
// of idle-check.ts cannot see this: a dependent multiply chain is bound by latency, not by
// throughput, and runs at the same speed either way.
//
// The probe runs tessera's SGEMM micro-kernel on L1-resident panels (arithmetic only, no memory
// traffic) in one worker per core, all at once, and returns each one's GFLOP/s. The workers live
// for the whole benchmark run and sleep between probes, so a probe costs only its own duration.

import { Worker } from 'node:worker_threads';
import { defaultMatmulConfig } from '../src/backend/wasm/matmul-config.js';
import { buildMatmulModule } from '../src/backend/wasm/matmul-kernel.js';

/** One call of the micro-kernel on fixed panels: the module, its memory size and the arguments. */
export interface MicroKernelCall {
  bytes: Uint8Array<ArrayBuffer>;
  pages: number;
  args: number[];
  flopsPerCall: number;
}

/** A 4×8 block of C over k = 256 from panels at fixed offsets in a 4 MiB memory (all in L1/L2). */
export function microKernelCall(): MicroKernelCall {
  const config = defaultMatmulConfig();
  const pages = 64;
  const bytes = buildMatmulModule(config, { module: 'env', name: 'memory', minPages: 1, maxPages: pages, shared: false });
  const kc = 256;
  // micro(kc, packedA, packedB, C, ldc bytes, elem bytes, rows, cols, beta, …, scratch): the
  // layout bench/contention.ts measured; the panels are zeros, which costs the same as any data.
  const args = [kc, 1 << 16, 1 << 18, 1 << 20, config.nr * 4, 4, config.mr, config.nr, 1, 0, 0, 0, 1 << 21];
  return { bytes, pages, args, flopsPerCall: 2 * config.mr * config.nr * kc };
}

const workerSource = `
  const { parentPort, workerData } = require('node:worker_threads');
  const memory = new WebAssembly.Memory({ initial: workerData.pages, maximum: workerData.pages });
  const micro = new WebAssembly.Instance(new WebAssembly.Module(workerData.bytes), { env: { memory } }).exports.micro;
  const args = workerData.args;
  function run(ms) {
    const t0 = performance.now();
    let calls = 0;
    while (performance.now() - t0 < ms) {
      for (let i = 0; i < 256; i++) micro(...args);
      calls += 256;
    }
    return (calls * workerData.flopsPerCall) / ((performance.now() - t0) * 1e6);
  }
  run(30); // tier up before the first probe
  parentPort.on('message', (ms) => parentPort.postMessage(run(ms)));
`;

export class HostProbe {
  private readonly workers: Worker[];

  constructor(readonly cores: number) {
    const call = microKernelCall();
    this.workers = Array.from({ length: cores }, () => {
      const w = new Worker(workerSource, { eval: true, workerData: call });
      w.unref(); // a sleeping probe never keeps the benchmark alive
      return w;
    });
  }

  /** Runs the micro-kernel on every core at once for `ms`; GFLOP/s per core, in worker order. */
  measure(ms = 250): Promise<number[]> {
    return Promise.all(this.workers.map((w) => new Promise<number>((resolve, reject) => {
      const onError = (e: Error): void => reject(new Error(`host probe: a worker failed: ${e.message}`));
      w.once('error', onError);
      w.once('message', (gflops: number) => {
        w.off('error', onError);
        resolve(gflops);
      });
      w.postMessage(ms);
    })));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
