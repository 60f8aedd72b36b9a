// The webgpu backend in a real browser: the package's source, bundled by esbuild as a user's bundler
// would, runs in headless Chromium with WebGPU on (on a machine without a GPU, Chromium's adapter is
// SwiftShader, a CPU Vulkan driver: the same WGSL and protocol, slowly). The page's main thread is
// refused with a reason; a dedicated Worker starts the device on navigator.gpu, trains the seeded
// MLP of workload.ts and computes its ops there, and the results are compared with the wasm backend
// in this process. Skips only where chromium is not installed.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as t from '../../src/index.js';
import { bundleForBrowser, findChromium, runPageInChromium } from './harness.js';
import { maxRelativeDifference, MLP, opResults, trainSmallMlp } from './workload.js';
import type { WebgpuPageReport } from './webgpu-page.js';

const chromium = findChromium();
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/**
 * The GPU sums matmul products and reductions in another order than the wasm SGEMM (workgroup
 * tiles), so float32 results differ in the last bits; after 8 Adam steps that stays below 1e-5
 * relative, and 1e-4 leaves room for other drivers' rounding of exp/log.
 */
const GPU_TOLERANCE = 1e-4;

describe('the webgpu backend in headless Chromium', { skip: chromium === undefined ? 'chromium is not installed (`command -v chromium` found nothing; .ci/run installs it)' : false }, () => {
  let page: WebgpuPageReport;
  let nodeLosses: number[];
  let nodeOps: Record<string, number[]>;

  before(async () => {
    const previous = t.currentBackendName();
    t.setBackend('wasm');
    try {
      nodeLosses = trainSmallMlp();
      nodeOps = opResults();
    } finally {
      t.setBackend(previous);
    }
    const files = await bundleForBrowser({
      'webgpu-page': here('./webgpu-page.ts'),
      'webgpu-worker': here('./webgpu-worker.ts'),
      // The device thread's script, emitted next to the chunks: enableWebGPUInBrowser's default URL
      // (new URL('./web-device-entry.js', import.meta.url)) then finds it without configuration.
      'web-device-entry': here('../../src/backend/webgpu/web-device-entry.ts'),
    });
    const report = await runPageInChromium({ chromium: chromium!, files, pageScript: 'webgpu-page.js', crossOriginIsolated: true, webgpu: true, timeoutMs: 90_000 }) as WebgpuPageReport | { error: string };
    if ('error' in report) assert.fail(`the page failed: ${report.error}`);
    page = report;
  }, { timeout: 120_000 });

  it('refuses the page\'s main thread, saying why and where to run instead', () => {
    assert.equal(page.crossOriginIsolated, true);
    assert.match(page.mainThreadRefusal, /enableWebGPUInBrowser: called on a page's main thread, where Atomics\.wait .* is not allowed; run tessera inside a dedicated Worker/);
  });

  it('reports a device script that does not load, naming it', () => {
    if (!page.worker.ok) assert.fail(`the worker failed: ${page.worker.error}`);
    assert.match(page.worker.missingScript, /the webgpu device worker \(http:\/\/127\.0\.0\.1:\d+\/no-such-device\.js\) failed/);
  });

  it(`in a Worker, trains the MLP on the GPU to the wasm backend's losses (relative ${GPU_TOLERANCE})`, (ctx) => {
    const worker = page.worker;
    if (!worker.ok) assert.fail(`the worker failed: ${worker.error}`);
    ctx.diagnostic(`${page.userAgent}; adapter ${worker.adapter}; ${worker.gpuRuns} kernel launches for ${MLP.steps} steps`);
    assert.equal(worker.backend, 'webgpu');
    assert.equal(worker.tensorBackend, 'webgpu');
    assert.ok(worker.gpuRuns >= MLP.steps * 10, `the steps ran as GPU kernels (${worker.gpuRuns} launches)`);
    assert.equal(worker.losses.length, MLP.steps);
    assert.ok(worker.losses.at(-1)! < worker.losses[0]!, `the loss falls: ${worker.losses.join(', ')}`);
    const diff = maxRelativeDifference(worker.losses, nodeLosses);
    ctx.diagnostic(`max relative difference browser GPU vs Node wasm: ${diff}`);
    assert.ok(diff <= GPU_TOLERANCE, `GPU  ${worker.losses.join(', ')}\nwasm ${nodeLosses.join(', ')}`);
  });

  it(`computes matmul, softmax, conv2d (each path) and tanh+sum as the wasm backend does (relative ${GPU_TOLERANCE})`, (ctx) => {
    const worker = page.worker;
    if (!worker.ok) assert.fail(`the worker failed: ${worker.error}`);
    assert.deepEqual(Object.keys(worker.ops).sort(), Object.keys(nodeOps).sort());
    for (const [name, values] of Object.entries(nodeOps)) {
      const diff = maxRelativeDifference(worker.ops[name]!, values);
      ctx.diagnostic(`${name}: ${values.length} values, max relative difference ${diff}`);
      assert.ok(diff <= GPU_TOLERANCE, `${name}: GPU and wasm differ by ${diff}`);
    }
  });
});

it('enableWebGPUInBrowser outside a browser: no Web Workers, said so', async () => {
  const { enableWebGPUInBrowser } = await import('../../src/backend/webgpu/browser.js');
  assert.equal(typeof (globalThis as { Worker?: unknown }).Worker, 'undefined', 'Node has no Web Worker global');
  await assert.rejects(enableWebGPUInBrowser(), /enableWebGPUInBrowser: this environment has no Web Workers \(Worker is undefined\); in Node, import 'tessera\/webgpu' instead/);
});
