import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WasmHeap } from '../../../src/backend/wasm/memory.js';
import { ThreadPool } from '../../../src/backend/wasm/threads.js';
import { createNodeThreadPool, defaultThreadCount, THREADS_ENV } from '../../../src/backend/wasm/node-workers.js';
import { ModuleBuilder, ValType, Op, MemOp, AtomicOp } from '../../../src/backend/wasm/encoder.js';
import { handshakeModule } from '../../helpers/handshake-module.js';

const { i32 } = ValType;

/**
 * task(unit, params, thread): out[unit] = unit * 3 + 1 and who[unit] = thread + 1, where
 * out = params, who = params + 4 * 4096; traps (unreachable) when unit equals the word at
 * params - 4 (a "poison" unit; -1 = none).
 */
function taskModule(heap: WasmHeap): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', minPages: 1, maxPages: heap.maxPages, shared: heap.shared });
  const f = m.function({ params: [i32, i32, i32], results: [] }, 'task');
  f.localGet(0).localGet(1).i32Const(4).op(Op.i32Sub).mem(MemOp.i32Load).op(Op.i32Eq).if().op(Op.unreachable).end();
  f.localGet(1).localGet(0).i32Const(2).op(Op.i32Shl).op(Op.i32Add)
    .localGet(0).i32Const(3).op(Op.i32Mul).i32Const(1).op(Op.i32Add).mem(MemOp.i32Store);
  f.localGet(1).localGet(0).i32Const(2).op(Op.i32Shl).op(Op.i32Add)
    .localGet(2).i32Const(1).op(Op.i32Add).mem(MemOp.i32Store, 4 * 4096);
  return m.encode();
}

const heap = new WasmHeap({ initialBytes: 2 ** 20, maximumBytes: 64 * 2 ** 20 });
const pools: ThreadPool[] = [];
after(() => pools.forEach((p) => p.dispose()));

function runJob(pool: ThreadPool, units: number, poison = -1): { out: Int32Array; who: Int32Array } {
  const module = pool.register(taskModule(heap));
  const block = heap.alloc(4 * (2 * 4096 + 16));
  const params = block + 64;
  const w = heap.i32;
  w[params / 4 - 1] = poison;
  w.fill(0, params / 4, params / 4 + 2 * 4096);
  try {
    pool.run(module, params, units);
    return {
      out: heap.i32.slice(params / 4, params / 4 + units),
      who: heap.i32.slice(params / 4 + 4096, params / 4 + 4096 + units),
    };
  } finally {
    heap.free(block);
  }
}

test('every unit runs exactly once, on the calling thread or a worker (2 and 3 threads)', () => {
  for (const threads of [2, 3]) {
    const pool = createNodeThreadPool(heap, { threads });
    pools.push(pool);
    assert.equal(pool.threads, threads);
    for (let job = 0; job < 5; job++) {
      const units = 1 + job * 997;
      const { out, who } = runJob(pool, units);
      for (let u = 0; u < units; u++) {
        assert.equal(out[u], u * 3 + 1, `unit ${u} of job ${job}`);
        assert.ok(who[u]! >= 1 && who[u]! <= threads, `unit ${u} ran on thread ${who[u]! - 1}`);
      }
    }
  }
});

// handshakeModule (test/helpers/handshake-module.ts): the job can only finish if a worker runs a unit.
test('workers take part in jobs (a calling-thread unit waits for a worker unit)', { timeout: 60_000 }, () => {
  const pool = createNodeThreadPool(heap, { threads: 2 });
  pools.push(pool);
  assert.equal(pool.waitUntilReady(), 1);
  const module = pool.register(handshakeModule(heap.maxPages));
  const flag = heap.alloc(64);
  for (let job = 0; job < 5; job++) {
    heap.i32[flag / 4] = 0;
    pool.run(module, flag, 2);
    assert.equal(heap.i32[flag / 4], 1, `job ${job}: no worker ran a unit`);
  }
  heap.free(flag);
});

test('a trap in a worker or the calling thread becomes an error, and the pool stays usable', () => {
  const pool = createNodeThreadPool(heap, { threads: 2 });
  pools.push(pool);
  for (let attempt = 0; attempt < 3; attempt++) {
    assert.throws(() => runJob(pool, 4000, 1234), /unreachable/);
    const { out } = runJob(pool, 100);
    assert.equal(out[99], 298);
  }
});

test('one thread, or an unshared memory, runs everything on the calling thread', () => {
  const single = new ThreadPool(heap, { threads: 1 });
  const { out, who } = runJob(single, 50);
  assert.equal(out[49], 148);
  assert.ok(who.every((t) => t === 1));
  const unshared = new WasmHeap({ initialBytes: 2 ** 16, shared: false });
  const fallback = createNodeThreadPool(unshared, { threads: 2 });
  assert.equal(fallback.threads, 1);
  fallback.dispose();
});

test('misuse is reported: no spawner, bad thread count, use after dispose, foreign module', () => {
  assert.throws(() => new ThreadPool(heap, { threads: 2 }), /no WorkerSpawner was given/);
  assert.throws(() => new ThreadPool(heap, { threads: 0 }), /threads = 0 must be a positive integer/);
  const pool = new ThreadPool(heap, { threads: 1 });
  const other = new ThreadPool(heap, { threads: 1 });
  const mod = other.register(taskModule(heap)); // registered with `other` only
  assert.throws(() => pool.run({ id: 999, bytesPtr: 0, bytesLen: 0 }, 64, 1), /module 999 was not registered/);
  pool.dispose();
  assert.throws(() => pool.run(mod, 64, 1), /used after dispose/);
});

test(`${THREADS_ENV} overrides the default thread count and is validated`, () => {
  const saved = process.env[THREADS_ENV];
  try {
    process.env[THREADS_ENV] = '3';
    assert.equal(defaultThreadCount(), 3);
    process.env[THREADS_ENV] = 'lots';
    assert.throws(() => defaultThreadCount(), /TESSERA_THREADS="lots" must be a positive integer/);
    delete process.env[THREADS_ENV];
    assert.ok(defaultThreadCount() >= 1);
  } finally {
    if (saved === undefined) delete process.env[THREADS_ENV];
    else process.env[THREADS_ENV] = saved;
  }
});

test('worker threads boot from the TypeScript sources in a process run with --input-type=module (eval\'d worker code is then ES module code)', async () => {
  const { spawnSync } = await import('node:child_process');
  const index = new URL('../../../src/index.ts', import.meta.url).pathname;
  // A 1M-element add is split over the pool, so the worker threads start; jobs posted while they
  // boot run on the calling thread, so the second add, after a pause, is the one they must serve.
  const code = `import(${JSON.stringify(index)}).then(async (t) => {
    const x = t.ones([1024, 1024]);
    t.add(x, x).dispose();
    await new Promise((r) => setTimeout(r, 1000));
    console.log(t.sum(t.add(x, x)).item());
    process.exit(0);
  })`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    encoding: 'utf8', env: { ...process.env, [THREADS_ENV]: '2' }, timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), String(2 * 1024 * 1024));
});
