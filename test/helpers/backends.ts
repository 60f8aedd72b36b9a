// Which backends the numerical suites run on: TESSERA_TEST_BACKENDS (comma separated, e.g.
// "wasm") or, by default, the cpu reference, wasm (the library's default backend) and webgpu where a
// WebGPU adapter can be started (in Node: the `webgpu` package with a Vulkan driver; CI installs
// libvulkan1 and uses chromium's SwiftShader). Each suite loops over them with forEachBackend, so one
// suite checks every backend (issue 6: "one suite, run per backend").
// TESSERA_TEST_WEBGPU=0 leaves webgpu out of the default; =1 makes a failure to start it an error.
import { describe, it, before, after } from 'node:test';
import * as t from '../../src/index.js';

let defaultBackends: string[] | undefined;

async function webgpuStarts(): Promise<boolean> {
  const flag = process.env.TESSERA_TEST_WEBGPU;
  if (flag === '0') return false;
  try {
    await import('../../src/backend/webgpu/backend.js');
    return true;
  } catch (e) {
    if (flag === '1') throw new Error(`TESSERA_TEST_WEBGPU=1 but the webgpu backend did not start: ${String(e)}`);
    if (!(globalThis as { __tesseraWebgpuNoted?: boolean }).__tesseraWebgpuNoted) {
      (globalThis as { __tesseraWebgpuNoted?: boolean }).__tesseraWebgpuNoted = true;
      console.log(`# webgpu left out of the numerical suites: ${String(e).split('\n')[0]}`);
    }
    return false;
  }
}

export function backendsUnderTest(): string[] {
  const env = process.env.TESSERA_TEST_BACKENDS;
  if (env !== undefined && env.trim() !== '') return env.split(',').map((s) => s.trim()).filter(Boolean);
  return defaultBackends ?? ['cpu', 'wasm'];
}

if (process.env.TESSERA_TEST_BACKENDS === undefined || process.env.TESSERA_TEST_BACKENDS.trim() === '') {
  defaultBackends = ['cpu', 'wasm', ...((await webgpuStarts()) ? ['webgpu'] : [])];
}

/** Loads a backend that is not registered yet from its conventional module, src/backend/<name>/backend.ts. */
async function ensureRegistered(name: string): Promise<void> {
  if (t.listBackends().includes(name)) return;
  try {
    await import(`../../src/backend/${name}/backend.js`);
  } catch (e) {
    throw new Error(`TESSERA_TEST_BACKENDS names '${name}', which is not registered and could not be loaded from src/backend/${name}/backend.ts: ${String(e)}`);
  }
  if (!t.listBackends().includes(name)) {
    throw new Error(`src/backend/${name}/backend.ts loaded but registered no backend named '${name}' (registered: ${t.listBackends().join(', ')}).`);
  }
}

for (const name of backendsUnderTest()) await ensureRegistered(name);

/** Whether the backends under test are the default set (TESSERA_TEST_BACKENDS unset). */
function defaultSet(): boolean {
  const env = process.env.TESSERA_TEST_BACKENDS;
  return env === undefined || env.trim() === '';
}

/**
 * Whether to run float64 derivative checks (gradcheck, gradgradcheck) on this backend. On webgpu
 * float64 has no GPU kernel: every op reads back and runs the cpu kernel, so in the default run
 * those checks would add minutes (on SwiftShader) and test nothing of the GPU. Naming webgpu in
 * TESSERA_TEST_BACKENDS runs them too (as on the H100, bench/results/webgpu-h100.md).
 */
export function runsFloat64Checks(backend: string): boolean {
  return backend !== 'webgpu' || !defaultSet();
}

/**
 * Registers `body` once per backend under test, inside a describe block named after it, with that
 * backend selected while its tests run. `float64Only`: the suite checks float64 alone, so it is
 * left out where runsFloat64Checks says so. `skipWebgpu`: why the suite leaves webgpu out of the
 * default run (naming webgpu in TESSERA_TEST_BACKENDS runs it there too).
 */
export function forEachBackend(title: string, body: (backend: string) => void, options: { float64Only?: boolean; skipWebgpu?: string } = {}): void {
  for (const name of backendsUnderTest()) {
    if (options.float64Only === true && !runsFloat64Checks(name)) continue;
    // skipWebgpu (the reason, said at the call site): a suite whose subject is backend-neutral code
    // over ops the GPU suites already cover, too slow on SwiftShader for the default run.
    if (options.skipWebgpu !== undefined && name === 'webgpu' && defaultSet()) continue;
    describe(`${title} [${name}]`, () => {
      let previous = 'cpu';
      before(() => {
        previous = t.currentBackendName();
        t.setBackend(name);
      });
      after(() => t.setBackend(previous));
      it(`creates tensors on '${name}'`, () => {
        const probe = t.zeros([1]);
        if (probe.backend !== name) throw new Error(`setBackend('${name}') did not take effect: a new tensor lives on '${probe.backend}'.`);
      });
      body(name);
    });
  }
}

/**
 * Runs a whole test file on one backend (selected now, so that tensors made while the file loads
 * live there too, and restored after its last test), for tests of something that only exists on
 * that backend. Say why at the call site.
 */
export function pinBackend(name: string): void {
  const previous = t.currentBackendName();
  t.setBackend(name);
  after(() => t.setBackend(previous));
}
