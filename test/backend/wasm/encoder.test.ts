import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteWriter } from '../../../src/backend/wasm/byte-writer.js';
import {
  ModuleBuilder, FunctionBuilder, ValType, Op, MemOp, MiscOp, SimdOp, SimdMemOp, SimdLaneOp,
} from '../../../src/backend/wasm/encoder.js';

const { i32, i64, f32, f64, v128 } = ValType;

function instantiate(bytes: Uint8Array<ArrayBuffer>, memory?: WebAssembly.Memory): Record<string, unknown> {
  assert.ok(WebAssembly.validate(bytes), 'WebAssembly.validate rejected the module');
  const mod = new WebAssembly.Module(bytes);
  const inst = new WebAssembly.Instance(mod, memory ? { env: { memory } } : {});
  return inst.exports as Record<string, unknown>;
}

test('LEB128 encodings match the spec examples', () => {
  const u = (v: number) => Array.from(new ByteWriter().u32(v).toBytes());
  const s = (v: number) => Array.from(new ByteWriter().s32(v).toBytes());
  const s64 = (v: bigint) => Array.from(new ByteWriter().s64(v).toBytes());
  assert.deepEqual(u(0), [0]);
  assert.deepEqual(u(127), [0x7f]);
  assert.deepEqual(u(128), [0x80, 0x01]);
  assert.deepEqual(u(624485), [0xe5, 0x8e, 0x26]);
  assert.deepEqual(u(0xffffffff), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  assert.deepEqual(s(-1), [0x7f]);
  assert.deepEqual(s(63), [0x3f]);
  assert.deepEqual(s(64), [0xc0, 0x00]);
  assert.deepEqual(s(-64), [0x40]);
  assert.deepEqual(s(-65), [0xbf, 0x7f]);
  assert.deepEqual(s(-123456), [0xc0, 0xbb, 0x78]);
  assert.deepEqual(s64(-1n), [0x7f]);
  assert.deepEqual(s64(1n << 40n), [0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
  assert.deepEqual(s64(1n << 41n), [0x80, 0x80, 0x80, 0x80, 0x80, 0xc0, 0x00]);
  assert.throws(() => new ByteWriter().u32(-1), /not an integer in \[0, 2\^32\)/);
});

test('the byte writer grows past its initial capacity without losing bytes', () => {
  const w = new ByteWriter(16);
  for (let i = 0; i < 1000; i++) w.byte(i);
  const bytes = w.toBytes();
  assert.equal(bytes.length, 1000);
  for (let i = 0; i < 1000; i++) assert.equal(bytes[i], i & 0xff);
});

test('scalar i32/i64/f32/f64 arithmetic agrees with JavaScript', () => {
  // A body that leaves two values for one result must be rejected by the engine's validator.
  const bad = new ModuleBuilder();
  bad.function({ params: [i32, i32], results: [i32] }, 'twoValues').localGet(0).localGet(1);
  assert.equal(WebAssembly.validate(bad.encode()), false);

  const ok = new ModuleBuilder();
  ok.function({ params: [i32, i32], results: [i32] }, 'mixI32')
    .localGet(0).localGet(1).op(Op.i32Mul).i32Const(-7).op(Op.i32Add)
    .localGet(0).i32Const(3).op(Op.i32ShrS).op(Op.i32Xor);
  ok.function({ params: [i64, i64], results: [i64] }, 'mixI64')
    .localGet(0).localGet(1).op(Op.i64Mul).i64Const(-(1n << 40n)).op(Op.i64Sub);
  ok.function({ params: [f32, f32], results: [f32] }, 'mixF32')
    .localGet(0).localGet(1).op(Op.f32Div).f32Const(0.1).op(Op.f32Add).op(Op.f32Sqrt);
  ok.function({ params: [f64, f64], results: [f64] }, 'mixF64')
    .localGet(0).localGet(1).op(Op.f64Max).f64Const(1e-300).op(Op.f64Mul).localGet(0).op(Op.f64Min);
  ok.function({ params: [f64], results: [i32] }, 'truncSat').localGet(0).misc(MiscOp.i32TruncSatF64S);
  const ex = instantiate(ok.encode());
  const mixI32 = ex.mixI32 as (a: number, b: number) => number;
  const mixI64 = ex.mixI64 as (a: bigint, b: bigint) => bigint;
  const mixF32 = ex.mixF32 as (a: number, b: number) => number;
  const mixF64 = ex.mixF64 as (a: number, b: number) => number;
  const truncSat = ex.truncSat as (a: number) => number;
  for (const [a, b] of [[3, 4], [-100000, 77777], [2 ** 30, 5]] as const) {
    assert.equal(mixI32(a, b), ((Math.imul(a, b) - 7) | 0) ^ (a >> 3));
  }
  assert.equal(mixI64(123456789n, 987654321n), BigInt.asIntN(64, 123456789n * 987654321n + (1n << 40n)));
  const fr = Math.fround;
  assert.equal(mixF32(1.5, 0.3), fr(Math.sqrt(fr(fr(fr(1.5) / fr(0.3)) + fr(0.1)))));
  assert.equal(mixF64(2, 3), Math.min(3 * 1e-300, 2));
  assert.equal(truncSat(1e20), 2147483647);
  assert.equal(truncSat(-3.7), -3);
});

test('control flow: a forRange loop, if/else and br_table', () => {
  const m = new ModuleBuilder();
  // sum of i*i for i in [0, n), skipping multiples of 3
  const f = m.function({ params: [i32], results: [i32] }, 'sumSquares');
  const i = f.local(i32);
  const acc = f.local(i32);
  f.forRange(i, () => f.i32Const(0), () => f.localGet(0), 1, () => {
    f.localGet(i).i32Const(3).op(Op.i32RemS).if()
      .localGet(acc).localGet(i).localGet(i).op(Op.i32Mul).op(Op.i32Add).localSet(acc)
      .end();
  });
  f.localGet(acc);
  // br_table: 0 → 10, 1 → 20, anything else → 30
  const g = m.function({ params: [i32], results: [i32] }, 'select3');
  g.block().block().block().localGet(0).brTable([0, 1], 2).end()
    .i32Const(10).return().end()
    .i32Const(20).return().end()
    .i32Const(30);
  const ex = instantiate(m.encode());
  let expected = 0;
  for (let k = 0; k < 50; k++) if (k % 3 !== 0) expected += k * k;
  assert.equal((ex.sumSquares as (n: number) => number)(50), expected);
  assert.equal((ex.sumSquares as (n: number) => number)(0), 0);
  const select3 = ex.select3 as (x: number) => number;
  assert.deepEqual([select3(0), select3(1), select3(2), select3(99)], [10, 20, 30, 30]);
});

test('an unclosed block is reported when encoding', () => {
  const m = new ModuleBuilder();
  m.function({ params: [], results: [] }, 'broken').block();
  assert.throws(() => m.encode(), /1 block\(s\) left open/);
  const f = new FunctionBuilder(0, { params: [], results: [] }, 'x');
  assert.throws(() => f.end(), /no open block/);
});

test('loads and stores with offsets on an imported memory; a shared memory import validates', () => {
  for (const shared of [false, true]) {
    const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 4, shared: true } : { initial: 1 });
    const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', minPages: 1, maxPages: shared ? 4 : undefined, shared });
    // out[p + 8] = f32(in[p]) * 2 + f64(in[p + 16]); returns i32.load8_u(p + 1)
    m.function({ params: [i32], results: [i32] }, 'go')
      .localGet(0)
      .localGet(0).mem(MemOp.f32Load).f32Const(2).op(Op.f32Mul).op(Op.f64PromoteF32)
      .localGet(0).mem(MemOp.f64Load, 16).op(Op.f64Add)
      .mem(MemOp.f64Store, 32)
      .localGet(0).mem(MemOp.i32Load8U, 1);
    const ex = instantiate(m.encode(), memory);
    const dv = new DataView(memory.buffer);
    dv.setFloat32(64, 1.25, true);
    dv.setFloat64(80, 0.5, true);
    const byte1 = dv.getUint8(65);
    assert.equal((ex.go as (p: number) => number)(64), byte1);
    assert.equal(dv.getFloat64(96, true), 3);
  }
});

test('f32x4 arithmetic, conversions, lanes and bitselect agree with JavaScript per lane', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', minPages: 1, shared: false });
  const binary: Array<[string, SimdOp, (a: number, b: number) => number]> = [
    ['add', SimdOp.f32x4Add, (a, b) => a + b],
    ['sub', SimdOp.f32x4Sub, (a, b) => a - b],
    ['mul', SimdOp.f32x4Mul, (a, b) => a * b],
    ['div', SimdOp.f32x4Div, (a, b) => a / b],
    ['min', SimdOp.f32x4Min, (a, b) => Math.min(a, b)],
    ['max', SimdOp.f32x4Max, (a, b) => Math.max(a, b)],
  ];
  const unary: Array<[string, SimdOp, (a: number) => number]> = [
    ['sqrt', SimdOp.f32x4Sqrt, Math.sqrt],
    ['neg', SimdOp.f32x4Neg, (a) => -a],
    ['abs', SimdOp.f32x4Abs, Math.abs],
    ['floor', SimdOp.f32x4Floor, Math.floor],
    ['roundTripI32', SimdOp.i32x4TruncSatF32x4S, (a) => Math.trunc(a)],
  ];
  // binary ops: out(32) = a(0) op b(16)
  for (const [name, code] of binary) {
    m.function({ params: [], results: [] }, name)
      .i32Const(32).i32Const(0).simdMem(SimdMemOp.v128Load).i32Const(16).simdMem(SimdMemOp.v128Load).simd(code)
      .simdMem(SimdMemOp.v128Store);
  }
  for (const [name, code] of unary) {
    const f = m.function({ params: [], results: [] }, name).i32Const(32).i32Const(0).simdMem(SimdMemOp.v128Load).simd(code);
    if (code === SimdOp.i32x4TruncSatF32x4S) f.simd(SimdOp.f32x4ConvertI32x4S);
    f.simdMem(SimdMemOp.v128Store);
  }
  // select: out = a > b ? a : b*2 via compare + bitselect; uses splat and load32_splat
  m.function({ params: [], results: [] }, 'select')
    .i32Const(32)
    .i32Const(0).simdMem(SimdMemOp.v128Load)
    .i32Const(16).simdMem(SimdMemOp.v128Load).f32Const(2).simd(SimdOp.f32x4Splat).simd(SimdOp.f32x4Mul)
    .i32Const(0).simdMem(SimdMemOp.v128Load).i32Const(16).simdMem(SimdMemOp.v128Load).simd(SimdOp.f32x4Gt)
    .simd(SimdOp.v128Bitselect)
    .simdMem(SimdMemOp.v128Store);
  // lanes: returns lane2(a) + lane0(b) and writes a with lane 1 replaced by 7, then adds splat(b[3]) via load32_splat
  const lanes = m.function({ params: [], results: [f32] }, 'lanes');
  lanes.i32Const(32)
    .i32Const(0).simdMem(SimdMemOp.v128Load).f32Const(7).simdLane(SimdLaneOp.f32x4ReplaceLane, 1)
    .i32Const(0).simdMem(SimdMemOp.v128Load32Splat, 28).simd(SimdOp.f32x4Add)
    .simdMem(SimdMemOp.v128Store)
    .i32Const(0).simdMem(SimdMemOp.v128Load).simdLane(SimdLaneOp.f32x4ExtractLane, 2)
    .i32Const(16).simdMem(SimdMemOp.v128Load).simdLane(SimdLaneOp.f32x4ExtractLane, 0).op(Op.f32Add);
  // i32x4 mask arithmetic: out = (a_i32 + b_i32) & mask(a_i32 < b_i32)
  m.function({ params: [], results: [] }, 'intMask')
    .i32Const(32)
    .i32Const(0).simdMem(SimdMemOp.v128Load).i32Const(16).simdMem(SimdMemOp.v128Load).simd(SimdOp.i32x4Add)
    .i32Const(0).simdMem(SimdMemOp.v128Load).i32Const(16).simdMem(SimdMemOp.v128Load).simd(SimdOp.i32x4LtS)
    .simd(SimdOp.v128And)
    .simdMem(SimdMemOp.v128Store);
  const ex = instantiate(m.encode(), memory);
  const f32v = new Float32Array(memory.buffer);
  const a = [1.5, -2.25, 9, -0.0001];
  const b = [0.5, 4, -3, 1e-3];
  const fr = Math.fround;
  const run = (name: string) => {
    f32v.set(a, 0);
    f32v.set(b, 4);
    (ex[name] as () => void)();
    return Array.from(f32v.subarray(8, 12));
  };
  for (const [name, , ref] of binary) assert.deepEqual(run(name), a.map((x, i) => fr(ref(fr(x), fr(b[i]!)))), name);
  for (const [name, , ref] of unary) {
    const got = run(name);
    a.forEach((x, i) => {
      const want = fr(ref(fr(x)));
      if (Number.isNaN(want)) assert.ok(Number.isNaN(got[i]!), `${name} lane ${i}`);
      else assert.equal(got[i], want === 0 ? got[i] : want, `${name} lane ${i}`);
    });
  }
  assert.deepEqual(run('select'), a.map((x, i) => (fr(x) > fr(b[i]!) ? fr(x) : fr(fr(b[i]!) * 2))));
  f32v.set(a, 0);
  f32v.set(b, 4);
  const laneSum = (ex.lanes as () => number)();
  assert.equal(laneSum, fr(fr(a[2]!) + fr(b[0]!)));
  const splat3 = fr(b[3]!);
  assert.deepEqual(Array.from(f32v.subarray(8, 12)), [fr(a[0]! + splat3), fr(7 + splat3), fr(a[2]! + splat3), fr(a[3]! + splat3)]);
  const i32v = new Int32Array(memory.buffer);
  i32v.set([1, -5, 100, 7], 0);
  i32v.set([2, -9, 300, 7], 4);
  (ex.intMask as () => void)();
  assert.deepEqual(Array.from(i32v.subarray(8, 12)), [3, 0, 400, 0]);
});

test('v128 locals and constants: a 4-lane dot product loop', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const m = new ModuleBuilder().importMemory({ module: 'env', name: 'memory', minPages: 1, shared: false });
  const f = m.function({ params: [i32, i32, i32], results: [f32] }, 'dot'); // (x, y, n) with n a multiple of 4
  const acc = f.local(v128);
  const i = f.local(i32);
  f.f32x4Const(0, 0, 0, 0).localSet(acc);
  f.forRange(i, () => f.i32Const(0), () => f.localGet(2), 4, () => {
    f.localGet(acc)
      .localGet(0).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add).simdMem(SimdMemOp.v128Load)
      .localGet(1).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add).simdMem(SimdMemOp.v128Load)
      .simd(SimdOp.f32x4Mul).simd(SimdOp.f32x4Add).localSet(acc);
  });
  f.localGet(acc).simdLane(SimdLaneOp.f32x4ExtractLane, 0)
    .localGet(acc).simdLane(SimdLaneOp.f32x4ExtractLane, 1).op(Op.f32Add)
    .localGet(acc).simdLane(SimdLaneOp.f32x4ExtractLane, 2).op(Op.f32Add)
    .localGet(acc).simdLane(SimdLaneOp.f32x4ExtractLane, 3).op(Op.f32Add);
  const ex = instantiate(m.encode(), memory);
  const v = new Float32Array(memory.buffer);
  const n = 64;
  let expected = 0;
  for (let k = 0; k < n; k++) {
    v[k] = k * 0.5;
    v[256 + k] = 1 - k * 0.25;
    expected += v[k]! * v[256 + k]!;
  }
  const got = (ex.dot as (x: number, y: number, n: number) => number)(0, 1024, n);
  assert.ok(Math.abs(got - expected) <= 1e-4 * Math.abs(expected), `${got} vs ${expected}`);
  assert.throws(() => f.simdLane(SimdLaneOp.f32x4ExtractLane, 4), /lane 4 is out of range/);
});

test('function imports and calls between functions', () => {
  const m = new ModuleBuilder();
  const log: number[] = [];
  const hostIndex = m.importFunction('host', 'record', { params: [f64], results: [] });
  const twice = m.function({ params: [f64], results: [f64] });
  twice.localGet(0).localGet(0).op(Op.f64Add);
  m.function({ params: [f64], results: [] }, 'go').localGet(0).call(twice.index).call(hostIndex);
  const bytes = m.encode();
  assert.ok(WebAssembly.validate(bytes));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { host: { record: (x: number) => log.push(x) } });
  (inst.exports.go as (x: number) => void)(21);
  assert.deepEqual(log, [42]);
  assert.throws(() => m.importFunction('host', 'late', { params: [], results: [] }), /declare imports first/);
});

test('the name section names the module and its functions (what profiles and stack traces show)', () => {
  const m = new ModuleBuilder().named('demo kernels');
  const helper = m.function({ params: [], results: [] });
  helper.op(Op.unreachable);
  m.function({ params: [], results: [] }, 'boom').call(helper.index);
  const module = new WebAssembly.Module(m.encode());
  assert.equal(WebAssembly.Module.customSections(module, 'name').length, 1);
  const inst = new WebAssembly.Instance(module, {});
  let stack = '';
  try { (inst.exports.boom as () => void)(); } catch (error) { stack = String((error as Error).stack); }
  assert.match(stack, /at demo kernels\.f0 \(wasm:\/\/wasm\/demo kernels-/);
  assert.match(stack, /at demo kernels\.boom \(wasm:\/\/wasm\/demo kernels-/);
});
