// tessera in a real browser: the package's source, bundled by esbuild the way a user's bundler
// would bundle it, runs in headless Chromium on the wasm backend. The page trains a seeded MLP
// and computes a few ops on its main thread (1 thread); a dedicated Worker of the page trains
// the same MLP on 2 threads over nested Web Workers. The results are compared with the same code
// run here in Node (wasm backend, 1 thread). The page is loaded twice: cross-origin isolated
// (shared memory, threads) and as an ordinary page (unshared memory, one thread, threads refused
// with the reason). Skips only where chromium is not installed.
import { describe, it, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as t from '../../src/index.js';
import { createWasmBackend } from '../../src/backend/wasm/index.js';
import { bundleForBrowser, findChromium, runPageInChromium } from './harness.js';
import { maxRelativeDifference, MLP, opResults, trainSmallMlp } from './workload.js';
import type { PageReport } from './page.js';

const chromium = findChromium();
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/**
 * Node and Chromium run the same generated WebAssembly on the same CPU (FMA through relaxed SIMD
 * in both); the JavaScript math on the way (the init's uniform draws and bounds, Adam's bias
 * correction) is Math.sqrt/Math.pow at most. So equal bits are expected (and seen), and a
 * difference would be a platform bug; 1e-6 relative leaves room for a libm ulp in Math.pow.
 */
const NODE_TOLERANCE = 1e-6;
/**
 * 2 threads split the SGEMM by output rows or columns and the elementwise kernels by blocks, so
 * each output element is summed in the same order as on 1 thread; equal bits are expected, and
 * the tolerance only leaves room for a future split along K (float32 reassociation, ~1e-6).
 */
const THREADS_TOLERANCE = 1e-5;

describe('tessera in headless Chromium (wasm backend)', { skip: chromium === undefined ? 'chromium is not installed (`command -v chromium` found nothing; .ci/run installs it)' : false }, () => {
  let page: PageReport;
  let plainPage: PageReport;
  let nodeLosses: number[];
  let nodeOps: Record<string, number[]>;
  let timings = '';

  before(async () => {
    // The reference, in this process: wasm backend, 1 thread, the same code as the page.
    t.setBackend('wasm');
    t.wasmBackend.setThreads(1);
    nodeLosses = trainSmallMlp();
    nodeOps = opResults();

    const bundleStart = performance.now();
    const files = await bundleForBrowser({
      page: here('./page.ts'),
      'training-worker': here('./training-worker.ts'),
      // The pool's worker script, emitted next to the chunks: webWorkerSpawner's default URL
      // (new URL('./web-worker-entry.js', import.meta.url)) then finds it without configuration.
      'web-worker-entry': here('../../src/backend/wasm/web-worker-entry.ts'),
    });
    const browserStart = performance.now();
    const load = async (crossOriginIsolated: boolean) => {
      const report = await runPageInChromium({ chromium: chromium!, files, pageScript: 'page.js', crossOriginIsolated, timeoutMs: 20_000 }) as PageReport | { error: string };
      if ('error' in report) assert.fail(`the page (crossOriginIsolated: ${crossOriginIsolated}) failed: ${report.error}`);
      return report;
    };
    page = await load(true);
    timings = `esbuild ${(browserStart - bundleStart).toFixed(0)} ms (${files.size} files), `
      + `Chromium start to results ${(performance.now() - browserStart).toFixed(0)} ms`;
    plainPage = await load(false);
  }, { timeout: 60_000 });

  it('the page is cross-origin isolated and starts on the wasm backend with SIMD and a shared heap', (ctx) => {
    ctx.diagnostic(`${page.userAgent}; ${timings}`);
    assert.match(page.userAgent, /Chrome\//);
    assert.equal(page.crossOriginIsolated, true);
    assert.equal(page.defaultBackend, 'wasm');
    assert.equal(page.simd, true);
    assert.equal(page.heapShared, true);
    assert.equal(page.mainThreadPoolThreads, 1, 'a page starts on one thread (no Node workers there)');
    assert.ok(page.wasmMatmulCalls > 0, 'matmuls ran on the generated SGEMM, not the cpu reference');
  });

  it(`the MLP's ${MLP.steps} Adam losses on the page equal Node's (relative ${NODE_TOLERANCE})`, (ctx) => {
    assert.equal(page.mainLosses.length, MLP.steps);
    assert.ok(page.mainLosses.at(-1)! < page.mainLosses[0]!, `the loss falls: ${page.mainLosses.join(', ')}`);
    const diff = maxRelativeDifference(page.mainLosses, nodeLosses);
    ctx.diagnostic(`max relative difference page vs Node: ${diff}`);
    assert.ok(diff <= NODE_TOLERANCE, `page ${page.mainLosses.join(', ')}\nnode ${nodeLosses.join(', ')}`);
  });

  it(`matmul, softmax, conv2d (each path) and tanh+sum on the page equal Node's (relative ${NODE_TOLERANCE})`, (ctx) => {
    assert.deepEqual(Object.keys(page.ops).sort(), Object.keys(nodeOps).sort());
    for (const [name, values] of Object.entries(nodeOps)) {
      const diff = maxRelativeDifference(page.ops[name]!, values);
      ctx.diagnostic(`${name}: ${values.length} values, max relative difference ${diff}`);
      assert.ok(diff <= NODE_TOLERANCE, `${name}: page and Node differ by ${diff} (lengths ${page.ops[name]!.length} and ${values.length})`);
    }
  });

  it('on the main thread, enableWasmThreadsInBrowser refuses threads with a clear error', () => {
    assert.match(page.mainThreadRefusal, /main thread.*Atomics\.wait.*dedicated Worker/);
  });

  it(`in a dedicated Worker, 2 threads over Web Workers train to the same losses as 1 (relative ${THREADS_TOLERANCE})`, (ctx) => {
    const worker = page.worker;
    if (!worker.ok) assert.fail(`the training worker failed: ${worker.error}`);
    assert.equal(worker.threadsBefore, 1);
    assert.equal(worker.threads, 2);
    assert.equal(worker.poolThreads, 2, 'the pool still has 2 threads after training');
    assert.equal(worker.handshakeJobs, 5, 'in every job a Web Worker ran a unit while the calling thread waited for it');
    assert.match(worker.missingScript.error, /web worker 1 \(http:\/\/127\.0\.0\.1:\d+\/no-such-worker\.js\) failed.*back on 1 thread/);
    assert.equal(worker.missingScript.threadsAfter, 1, 'a failed start leaves the backend on 1 thread');
    const diff = maxRelativeDifference(worker.losses, page.mainLosses);
    ctx.diagnostic(`max relative difference 2 threads vs 1: ${diff}; vs Node: ${maxRelativeDifference(worker.losses, nodeLosses)}`);
    assert.ok(diff <= THREADS_TOLERANCE, `2 threads ${worker.losses.join(', ')}\n1 thread  ${page.mainLosses.join(', ')}`);
  });

  it('an ordinary page (not cross-origin isolated) runs on one thread with an unshared heap, with the same results', () => {
    assert.equal(plainPage.crossOriginIsolated, false);
    assert.equal(plainPage.defaultBackend, 'wasm');
    assert.equal(plainPage.heapShared, false);
    assert.deepEqual(plainPage.mainLosses, page.mainLosses, 'same losses with an unshared memory');
    assert.deepEqual(plainPage.ops, page.ops);
    const worker = plainPage.worker;
    assert.equal(worker.ok, false, 'threads cannot start without SharedArrayBuffer');
    if (!worker.ok) assert.match(worker.error, /no shared memory \(crossOriginIsolated = false\).*Cross-Origin-Opener-Policy: same-origin/);
  });
});

test('enableWasmThreadsInBrowser outside a browser: bad counts and a missing Worker are reported, 1 thread works', async () => {
  const backend = createWasmBackend({ heap: { initialBytes: 2 ** 16, maximumBytes: 2 ** 22 } });
  await assert.rejects(t.enableWasmThreadsInBrowser(0, { backend }), /threads = 0 must be a positive integer/);
  await assert.rejects(t.enableWasmThreadsInBrowser(2.5, { backend }), /threads = 2.5 must be a positive integer/);
  assert.equal(typeof (globalThis as { Worker?: unknown }).Worker, 'undefined', 'Node has no Web Worker global');
  await assert.rejects(t.enableWasmThreadsInBrowser(2, { backend }), /no Web Workers \(Worker is undefined\); in Node use enableWasmThreads/);
  assert.equal(backend.pool.threads, 1);
  assert.equal(await t.enableWasmThreadsInBrowser(1, { backend }), 1);
});
