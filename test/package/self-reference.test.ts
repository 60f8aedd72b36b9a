// The package refers to itself through `exports`: after `npm ci` (which builds dist/), a script in
// the repository root can `import * as t from 'tessera'` and gets the built, typed library.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type * as Tessera from 'tessera';

test("a script in the repository root can import 'tessera' (package self-reference)", () => {
  assert.ok(existsSync('dist/index.js'), 'dist/ is missing: run `npm ci` or `npm run build` first');
  const script = [
    "import * as t from 'tessera';",
    "const x = t.tensor([[1, 2], [3, 4]], { requiresGrad: true });",
    "x.mul(x).sum().backward();",
    "console.log(JSON.stringify(x.grad.toArray()));",
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '[[2,4],[6,8]]');
});

test("'tessera' starts on the wasm backend, with cpu registered next to it (issue 6)", () => {
  assert.ok(existsSync('dist/index.js'), 'dist/ is missing: run `npm ci` or `npm run build` first');
  const script = [
    "import * as t from 'tessera';",
    "const before = t.currentBackendName();",
    "const y = t.tensor([1, 2, 3]).mul(2);",
    "t.setBackend('cpu');",
    "console.log(JSON.stringify({ before, listed: t.listBackends().sort(), onWasm: y.backend, values: y.toArray(), after: t.zeros([1]).backend }));",
  ].join('\n');
  // Without TESSERA_BACKEND, which would override the default being checked here.
  const env = { ...process.env };
  delete env.TESSERA_BACKEND;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { before: 'wasm', listed: ['cpu', 'wasm'], onWasm: 'wasm', values: [2, 4, 6], after: 'cpu' });
});

test('the self-referenced package is typed (this file typechecks against dist/index.d.ts)', () => {
  // A type-only use: if 'tessera' had no declarations, `npm test`'s typecheck would fail on this file.
  const shape: Tessera.Tensor['shape'] = [2, 2];
  assert.deepEqual(shape, [2, 2]);
});

test("'tessera/webgpu' registers the webgpu backend from the built package (where a WebGPU adapter starts)", (t) => {
  assert.ok(existsSync('dist/backend/webgpu/backend.js'), 'dist/ is missing: run `npm ci` or `npm run build` first');
  const script = [
    "import * as t from 'tessera';",
    "import { webgpuBackend } from 'tessera/webgpu';",
    "t.setBackend('webgpu');",
    "const y = t.tensor([[1, 2], [3, 4]]).matmul(t.tensor([[1], [1]]));",
    "console.log(JSON.stringify({ listed: t.listBackends().sort(), on: y.backend, values: y.toArray(), fallback: webgpuBackend.device.info.isFallbackAdapter }));",
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0 && r.stderr.includes('no WebGPU adapter') && process.env.TESSERA_TEST_WEBGPU !== '1') {
    t.skip('no WebGPU adapter here (TESSERA_TEST_WEBGPU=1 makes this a failure)');
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { listed: string[]; on: string; values: number[][] };
  assert.deepEqual({ listed: out.listed, on: out.on, values: out.values }, { listed: ['cpu', 'wasm', 'webgpu'], on: 'webgpu', values: [[3], [7]] });
});

test("'tessera/webgpu/browser' resolves in the built package and, outside a browser, says where it runs", () => {
  assert.ok(existsSync('dist/backend/webgpu/browser.js'), 'dist/ is missing: run `npm ci` or `npm run build` first');
  const script = [
    "import { enableWebGPUInBrowser } from 'tessera/webgpu/browser';",
    "enableWebGPUInBrowser().then(() => console.log('started'), (e) => console.log(String(e)));",
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /no Web Workers \(Worker is undefined\); in Node, import 'tessera\/webgpu' instead/);
});
