// Child process of bench/run.ts for tessera: one workload group on one backend and thread count.
// The backend is 'wasm' when the public API lists it, else the 'cpu' reference backend; the
// record says which. Threads are requested through TESSERA_THREADS (set by bench/run.ts) and
// the record carries the count the backend reports, so a request it cannot honour is visible.
//
// With --backend=checkout-wasm (bench/run.ts's 'tessera-wasm' library) it first enables the wasm
// backend the way README.md shows for a checkout, before the package exports it: importing
// src/backend/wasm/node.js registers the backend, and enableWasmThreads gives it the threads.
// With --backend=jit ('tessera-jit') the training steps run as `t.jit`-compiled graphs.

import * as t from '../../src/index.js';
import { emit, parseChildArgs, reasonOf, runMatmulCases, runTrainCase, type RecordBase } from '../harness.js';
import { trainStepFlops } from '../spec.js';
import { tesseraCnnStep, tesseraGptStep, tesseraMatmul, tesseraMlpStep } from './tessera-models.js';

/** The thread count a backend reports, for backends that have a pool (the wasm one); else 1. */
function backendThreads(backend: t.Backend): number {
  const pool = (backend as { pool?: { threads?: unknown } }).pool;
  return typeof pool?.threads === 'number' ? pool.threads : 1;
}

async function main(): Promise<void> {
  const args = parseChildArgs();
  let library = 'tessera';
  const jit = args.backend === 'jit';
  if (args.backend === 'checkout-wasm') {
    const { enableWasmThreads } = await import('../../src/backend/wasm/node.js');
    enableWasmThreads(args.threads);
    library = 'tessera-wasm';
  } else if (jit) {
    library = 'tessera-jit';
  } else if (args.backend !== undefined) {
    throw new Error(`tessera bench child: unknown --backend=${args.backend}; expected checkout-wasm, jit or none`);
  }
  const backendName = t.listBackends().includes('wasm') ? 'wasm' : 'cpu';
  t.setBackend(backendName);
  const threads = backendThreads(t.getBackend());
  const base: RecordBase = { library, backend: backendName, threads };
  if (threads !== args.threads) {
    emit({ ...base, threads: args.threads, workload: args.group, case: args.group === 'matmul' ? 'all' : args.group, status: 'skipped',
      reason: `asked for ${args.threads} threads; the ${backendName} backend runs ${threads}` });
    return;
  }
  if (args.group === 'matmul') {
    if (jit) throw new Error('tessera bench child: --backend=jit times training steps only (bench/run.ts does not ask it for matmul)');
    await runMatmulCases(args.spec, base, tesseraMatmul);
    return;
  }
  const build = { mlp: tesseraMlpStep, cnn: tesseraCnnStep, gpt: tesseraGptStep }[args.group];
  await runTrainCase(args.spec, base, args.group, trainStepFlops(args.spec, args.group), () => build(args.spec, { jit }));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`tessera bench child: ${reasonOf(e)}\n`);
    process.exit(1);
  },
);
