// The backend tessera starts on (issue 6): wasm where WebAssembly SIMD validates, else cpu;
// TESSERA_BACKEND overrides it in Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../../src/index.js';

/** Runs fn with TESSERA_BACKEND set to value (or unset for undefined), restoring it after. */
function withBackendEnv<R>(value: string | undefined, fn: () => R): R {
  const saved = process.env[t.BACKEND_ENV];
  if (value === undefined) delete process.env[t.BACKEND_ENV];
  else process.env[t.BACKEND_ENV] = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env[t.BACKEND_ENV];
    else process.env[t.BACKEND_ENV] = saved;
  }
}

test('Node 20 validates WebAssembly SIMD, so wasm is the default and both backends are registered', () => {
  assert.equal(t.wasmSimdSupported(), true);
  assert.deepEqual(t.listBackends().sort(), ['cpu', 'wasm']);
  assert.equal(withBackendEnv(undefined, () => t.defaultBackendName()), 'wasm');
});

test('TESSERA_BACKEND picks the default; an unknown name is an error that lists the registered ones', () => {
  assert.equal(withBackendEnv('cpu', () => t.defaultBackendName()), 'cpu');
  assert.equal(withBackendEnv(' wasm ', () => t.defaultBackendName()), 'wasm');
  assert.equal(withBackendEnv('', () => t.defaultBackendName()), 'wasm');
  assert.throws(() => withBackendEnv('gpu', () => t.defaultBackendName()), /TESSERA_BACKEND="gpu" names no registered backend \(registered: cpu, wasm\)/);
});

test('without WebAssembly SIMD the default stays on cpu, without an error', () => {
  // The engine's validator is swapped for one that rejects every module, as an engine without
  // SIMD rejects the probe; restored right after.
  const original = WebAssembly.validate;
  WebAssembly.validate = () => false;
  try {
    assert.equal(t.wasmSimdSupported(), false);
    assert.equal(withBackendEnv(undefined, () => t.defaultBackendName()), 'cpu');
    assert.throws(() => withBackendEnv('wasm', () => t.defaultBackendName()), /cannot compile WebAssembly SIMD; use TESSERA_BACKEND=cpu/);
  } finally {
    WebAssembly.validate = original;
  }
});

test("setBackend switches between 'wasm' and 'cpu'; results agree", () => {
  const previous = t.currentBackendName();
  try {
    t.setBackend('wasm');
    const a = t.tensor([[1, 2], [3, 4]]).matmul(t.tensor([[5], [6]]));
    t.setBackend('cpu');
    const b = t.tensor([[1, 2], [3, 4]]).matmul(t.tensor([[5], [6]]));
    assert.equal(a.backend, 'wasm');
    assert.equal(b.backend, 'cpu');
    assert.deepEqual(a.toArray(), b.toArray());
    assert.deepEqual(b.toArray(), [[17], [39]]);
  } finally {
    t.setBackend(previous);
  }
});

test("the backends load in a browser: no module under src/backend imports Node's modules at load time", () => {
  // The public entry imports every backend, so a static `import … from 'node:…'` here would break
  // `import 'tessera'` in a page. Node's modules are reached through process.getBuiltinModule at
  // run time instead; only the worker thread's own entry file (never imported) may name them.
  const files = (dir: string): string[] => readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
  // Worker entries for Node (the wasm pool's, the webgpu device thread's) run only in Node's worker_threads.
  const checked = files('src/backend').filter((f) => !/node-(worker|device)-entry\.ts$/.test(f));
  assert.ok(checked.some((f) => f.endsWith('default.ts')) && checked.some((f) => f.endsWith('node-workers.ts')), `walked ${checked.length} files`);
  for (const file of checked) {
    const source = readFileSync(file, 'utf8');
    const offending = source.match(/^\s*(import(?!\s+type\b)[^;]*from\s*'node:[^']+'|import\s*'node:[^']+'|export[^;]*from\s*'node:[^']+')/m);
    assert.equal(offending, null, `${file} imports a Node module at load time: ${offending?.[0]}`);
  }
});
