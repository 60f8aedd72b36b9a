// Packed float16/bfloat16 storages on the wasm backend (packed-half.ts, half-pack-kernel.ts): 2 bytes
// per element in the heap, by the allocator's own numbers; the widening and narrowing kernels bit exact
// against a float64 reference over every one of the 65,536 patterns of each format (and the rounding
// of float32 values between them), the same on 1 and 2 threads; training steps bit for bit equal to
// the cpu reference's; strided views of packed storages; a jitted step equal to eager.
//
// NaN policy checked here (see half-pack-kernel.ts): widening keeps every payload bit; narrowing keeps
// the sign and the payload's top bits (bfloat16 7, float16 10) and sets the quiet bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../../src/index.js';
import { jit } from '../../../src/index.js';
import { createWasmBackend, type WasmBackend } from '../../../src/backend/wasm/backend.js';
import { nodeWorkerSpawner } from '../../../src/backend/wasm/node-workers.js';
import { enableWasmThreads } from '../../../src/backend/wasm/node.js';
import { SGD } from '../../../src/optim/index.js';
import { copyValuesInto } from '../../../src/core/tensor.js';
import { buildHalfRoundModule, ROUND_BF16_EXPORT, ROUND_F16_EXPORT } from '../../../src/backend/wasm/half-round-kernel.js';

const FORMATS = ['bfloat16', 'float16'] as const;
type Format = (typeof FORMATS)[number];

/** The float64 value of a 16-bit pattern, from the format's definition (NaN for NaN patterns). */
function valueOf(h: number, format: Format): number {
  const sign = h & 0x8000 ? -1 : 1;
  const [expBits, manBits] = format === 'bfloat16' ? [8, 7] : [5, 10];
  const bias = 2 ** (expBits - 1) - 1;
  const e = (h >> manBits) & (2 ** expBits - 1), m = h & (2 ** manBits - 1);
  if (e === 2 ** expBits - 1) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** (1 - bias - manBits);
  return sign * (1 + m / 2 ** manBits) * 2 ** (e - bias);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number): number => { f32[0] = x; return u32[0]!; };

/** The pattern nearest to x (ties to the even pattern; past the largest finite value's midpoint, inf), from the list of values. */
function nearestPattern(x: number, ladder: Float64Array, infPattern: number): number {
  if (Number.isNaN(x)) throw new Error('NaN has no nearest pattern');
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  // ladder[i] = value of positive pattern i, ladder[infPattern] = the next power of two (so the tie with inf goes to inf, the even one).
  let lo = 0, hi = infPattern;
  if (a >= ladder[infPattern]!) return sign | infPattern;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (ladder[mid]! <= a) lo = mid; else hi = mid;
  }
  const dLo = a - ladder[lo]!, dHi = ladder[hi]! - a;
  return sign | (dLo < dHi ? lo : dHi < dLo ? hi : (lo % 2 === 0 ? lo : hi));
}

function ladderOf(format: Format): { ladder: Float64Array; inf: number } {
  const inf = format === 'bfloat16' ? 0x7f80 : 0x7c00;
  const ladder = new Float64Array(inf + 1);
  for (let h = 0; h < inf; h++) ladder[h] = valueOf(h, format);
  ladder[inf] = format === 'bfloat16' ? 2 ** 128 : 2 ** 16;
  return { ladder, inf };
}

/** Runs the backend's widen or narrow over `input` (Uint16Array or Float32Array bits) and returns the output's raw bits. */
function convert(backend: WasmBackend, op: 'widen' | 'narrow', format: Format, input: Uint16Array | Uint32Array): Uint16Array | Uint32Array {
  const n = input.length;
  const heap = backend.heap;
  const src = heap.alloc(n * (op === 'widen' ? 2 : 4)), dst = heap.alloc(n * (op === 'widen' ? 4 : 2));
  try {
    if (op === 'widen') new Uint16Array(heap.memory.buffer, src, n).set(input);
    else new Uint32Array(heap.memory.buffer, src, n).set(input);
    backend.halfPack[op](format, dst, src, n);
    return op === 'widen' ? new Uint32Array(heap.memory.buffer, dst, n).slice() : new Uint16Array(heap.memory.buffer, dst, n).slice();
  } finally {
    heap.free(src);
    heap.free(dst);
  }
}

const ALL_PATTERNS = Uint16Array.from({ length: 65536 }, (_, i) => i);

test('a half-format tensor takes 2 bytes per element in the wasm heap (the allocator\'s block sizes), a float32 one 4', () => {
  const heap = t.wasmBackend.heap;
  for (const dtype of ['bfloat16', 'float16', 'float32'] as const) {
    const before = heap.stats().bytesInUse;
    const x = t.zeros([256, 128], { dtype, backend: 'wasm' });
    const block = heap.blockSize(t.wasmBackend.addressOf(x.storage));
    assert.equal(heap.stats().bytesInUse - before, block, `${dtype}: one block, no leftover temporaries`);
    assert.equal(block, (dtype === 'float32' ? 4 : 2) * 256 * 128, `${dtype}: heap block bytes`);
    assert.equal(t.wasmBackend.storageBytes(x.storage), (dtype === 'float32' ? 4 : 2) * 256 * 128);
    // An op's half-format output, and a cast, are packed too.
    if (dtype !== 'float32') {
      const y = t.add(x, x);
      const z = t.randn([256, 128], { backend: 'wasm' }).cast(dtype);
      for (const u of [y, z]) assert.equal(heap.blockSize(t.wasmBackend.addressOf(u.storage)), 2 * 256 * 128, `${dtype}: op output block`);
      y.dispose(); z.dispose();
    }
    x.dispose();
  }
  // A model's parameters: half the heap blocks in bfloat16.
  t.manualSeed(1);
  const model = new t.nn.Sequential(new t.nn.Linear(256, 512), new t.nn.ReLU(), new t.nn.Linear(512, 64));
  model.to('wasm');
  const blocks = (m: t.nn.Module): number => m.parameters().reduce((s, p) => s + heap.blockSize(t.wasmBackend.addressOf(p.storage)), 0);
  const fp32 = blocks(model);
  model.to('bfloat16');
  assert.equal(blocks(model), fp32 / 2);
  assert.ok(model.parameters().every((p) => p.dtype === 'bfloat16' && t.wasmBackend.isPacked(p.storage)));
});

for (const format of FORMATS) {
  test(`${format}: widening every one of the 65,536 patterns gives its float64 value as a float32, exactly (NaN: every payload bit kept)`, () => {
    const words = convert(t.wasmBackend, 'widen', format, ALL_PATTERNS) as Uint32Array;
    for (let h = 0; h < 65536; h++) {
      const v = valueOf(h, format);
      const want = Number.isNaN(v)
        ? (((h & 0x8000) << 16) | 0x7f800000 | (format === 'bfloat16' ? (h & 0x7f) << 16 : (h & 0x3ff) << 13)) >>> 0
        : bitsOf(v);
      assert.equal(Math.fround(v) === v || Number.isNaN(v), true, 'every half value is a float32');
      if (words[h] !== want) assert.fail(`${format} 0x${h.toString(16)}: got 0x${words[h]!.toString(16)}, want 0x${want.toString(16)} (${v})`);
    }
  });

  test(`${format}: narrowing rounds to the nearest pattern (ties to even, overflow to inf) for every pattern's value and the float32s around every midpoint; NaN keeps its top payload bits, quieted`, () => {
    const { ladder, inf } = ladderOf(format);
    const inputs: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const v = valueOf(h, format);
      inputs.push(bitsOf(v));
      const next = valueOf(h + 1, format);
      // The midpoint to the next pattern up (positive and negative), and the float32s either side of it.
      if ((h & 0x7fff) < inf && !Number.isNaN(v)) {
        const upper = (h & 0x7fff) + 1 === inf ? (h & 0x8000 ? -1 : 1) * ladder[inf]! : next;
        const mid = bitsOf((v + upper) / 2);
        inputs.push(mid, (mid - 1) >>> 0, (mid + 1) >>> 0);
      }
    }
    // NaNs with payloads in the bits either format keeps and in the bits it drops, and float32 values past the top.
    inputs.push(0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0x7f802000, 0x7f7fffff, 0xff7fffff, 0x477fefff, 0x477ff000, 0x477ff001, 0x00000001, 0x80000001);
    const words = Uint32Array.from(inputs);
    const packed = convert(t.wasmBackend, 'narrow', format, words) as Uint16Array;
    f32[0] = 0;
    for (let i = 0; i < words.length; i++) {
      u32[0] = words[i]!;
      const x = f32[0]!;
      let want: number;
      if (Number.isNaN(x)) {
        const top = format === 'bfloat16' ? words[i]! >>> 16 : (((words[i]! >>> 16) & 0x8000) | 0x7c00 | ((words[i]! >>> 13) & 0x3ff));
        want = top | (format === 'bfloat16' ? 0x40 : 0x200);
      } else {
        want = nearestPattern(x, ladder, inf);
      }
      if (packed[i] !== want) assert.fail(`${format} narrow 0x${words[i]!.toString(16)} (${x}): got 0x${packed[i]!.toString(16)}, want 0x${want.toString(16)}`);
    }
    // Every non-NaN pattern comes back from its own value.
    const back = convert(t.wasmBackend, 'narrow', format, convert(t.wasmBackend, 'widen', format, ALL_PATTERNS) as Uint32Array) as Uint16Array;
    for (let h = 0; h < 65536; h++) if (!Number.isNaN(valueOf(h, format))) assert.equal(back[h], h, `${format} round trip 0x${h.toString(16)}`);
  });
}

test('reading a view of a packed storage (data(), copyValuesInto) decodes only the elements it touches', () => {
  const pack = t.wasmBackend.halfPack;
  const widen = pack.widen.bind(pack);
  let widened = 0;
  pack.widen = (format, dst, src, n) => { widened += n; widen(format, dst, src, n); };
  try {
    for (const dtype of FORMATS) {
      const big = t.randn([512, 256], { backend: 'wasm' }).cast(dtype);
      const whole = big.data();
      widened = 0;
      const row = big.narrow(0, 300, 1).data();
      assert.equal(widened, 256, `${dtype}: one row of 256 decoded, not the storage's ${512 * 256}`);
      assert.deepEqual(Array.from(row), Array.from(whole.subarray(300 * 256, 301 * 256)), `${dtype}: the row's values`);
      widened = 0;
      const column = big.narrow(1, 5, 1).data(); // rows 0..511 at column 5: the span from element 5 to 511·256 + 5
      assert.equal(widened, 511 * 256 + 1, `${dtype}: a column decodes the span between its first and last element`);
      assert.deepEqual(Array.from(column), Array.from({ length: 512 }, (_, r) => whole[r * 256 + 5]));
      const out = new Float32Array(256);
      widened = 0;
      copyValuesInto(big.narrow(0, 7, 1), out);
      assert.equal(widened, 256, `${dtype}: copyValuesInto decodes the row alone`);
      assert.deepEqual(Array.from(out), Array.from(whole.subarray(7 * 256, 8 * 256)));
      assert.deepEqual(Array.from(big.narrow(0, 3, 0).data()), [], `${dtype}: an empty view reads nothing`);
      big.dispose();
    }
  } finally {
    pack.widen = widen;
  }
});

test('narrowing random float32 words gives the top bits of half-round-kernel.ts\'s rounding (an independent implementation, checked against cpu roundToFormat)', () => {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 2 });
  const round = new WebAssembly.Instance(new WebAssembly.Module(buildHalfRoundModule({ module: 'env', name: 'memory', minPages: 1, maxPages: 2, shared: false })), { env: { memory } }).exports;
  let seed = 3;
  const n = 8191;
  const words = Uint32Array.from({ length: n }, () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0));
  for (const format of FORMATS) {
    const rounded = new Uint32Array(memory.buffer, 64, n);
    rounded.set(words);
    (round[format === 'bfloat16' ? ROUND_BF16_EXPORT : ROUND_F16_EXPORT] as (p: number, n: number) => void)(64, n);
    const packed = convert(t.wasmBackend, 'narrow', format, words) as Uint16Array;
    const widened = convert(t.wasmBackend, 'widen', format, packed) as Uint32Array;
    for (let i = 0; i < n; i++) {
      const isNaN = (words[i]! & 0x7fffffff) > 0x7f800000;
      if (!isNaN && widened[i] !== rounded[i]) assert.fail(`${format} 0x${words[i]!.toString(16)}: packed 0x${packed[i]!.toString(16)} reads 0x${widened[i]!.toString(16)}, rounding gives 0x${rounded[i]!.toString(16)}`);
    }
  }
});

test('widening and narrowing split over 2 threads give the bits of 1 thread (and the split path runs)', () => {
  const two = createWasmBackend({ threads: 2, spawner: nodeWorkerSpawner, name: 'wasm-packed-2' });
  try {
    two.pool.waitUntilReady();
    const n = 3 * 65536 + 13; // above the split threshold, not a multiple of the chunk
    let seed = 7;
    const words = Uint32Array.from({ length: n }, () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0));
    const halves = Uint16Array.from(words, (w) => w >>> 16);
    for (const format of FORMATS) {
      const before = two.halfPack.counts.parallel;
      assert.deepEqual(convert(two, 'narrow', format, words), convert(oneThread(), 'narrow', format, words), `${format} narrow`);
      assert.deepEqual(convert(two, 'widen', format, halves), convert(oneThread(), 'widen', format, halves), `${format} widen`);
      assert.equal(two.halfPack.counts.parallel - before, 2, `${format}: both conversions were split`);
    }
  } finally {
    two.pool.dispose();
  }
});

test('matmul of packed operands (the SGEMM widens them as it packs) equals the float32 product of the same values, rounded once: every layout, 1 and 2 threads', () => {
  let seed = 21;
  const draw = (shape: number[]) => t.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return (seed / 2 ** 32) * 4 - 2;
  }), { shape, backend: 'wasm' });
  // [name, a, b]: plain, Linear-style (B = Wᵀ: contiguous along k), weight-gradient style (A = Gᵀ),
  // odd edges, batched with a broadcast B (rows folded), permuted heads (outer batch), and products
  // large enough for the shared packing plans on 2 threads.
  const cases: [string, () => [t.Tensor, t.Tensor]][] = [
    ['plain 7x13 @ 13x9', () => [draw([7, 13]), draw([13, 9])]],
    ['x @ wᵀ', () => [draw([33, 40]), draw([24, 40]).mT]],
    ['gᵀ @ x', () => [draw([50, 19]).mT, draw([50, 31])]],
    ['both transposed', () => [draw([17, 6]).mT, draw([11, 17]).mT]],
    ['batched, broadcast B', () => [draw([3, 10, 12]), draw([12, 5])]],
    ['permuted heads', () => [draw([2, 9, 3, 8]).permute([0, 2, 1, 3]), draw([2, 9, 3, 8]).permute([0, 2, 3, 1])]],
    ['large (shared B)', () => [draw([512, 96]), draw([80, 96]).mT]],
    ['large (shared A)', () => [draw([300, 48]).mT, draw([300, 200])]],
  ];
  const previous = t.wasmBackend.pool.threads;
  try {
    for (const threads of [1, 2]) {
      enableWasmThreads(threads);
      for (const format of FORMATS) {
        for (const [name, make] of cases) {
          const [a0, b0] = make();
          const a = a0.cast(format), b = b0.cast(format);
          const calls = t.wasmBackend.kernelCalls.get('matmul')?.wasm ?? 0;
          const widened = t.wasmBackend.halfPack.counts.widen;
          const got = t.matmul(a, b);
          assert.equal(t.wasmBackend.halfPack.counts.widen, widened, `${format} ${name}: no widened copy of an operand`);
          assert.equal((t.wasmBackend.kernelCalls.get('matmul')?.wasm ?? 0) - calls, 1, `${format} ${name}: the wasm SGEMM ran`);
          const want = t.matmul(a.float(), b.float()).cast(format);
          assert.deepEqual(Array.from(got.data()), Array.from(want.data()), `${format} ${name} on ${threads} thread(s)`);
        }
      }
    }
  } finally {
    enableWasmThreads(previous);
  }
});

let single: WasmBackend | undefined;
function oneThread(): WasmBackend {
  return (single ??= createWasmBackend({ threads: 1, name: 'wasm-packed-1' }));
}

/**
 * A small MLP (Linear, ReLU, Linear; MSE against a target) whose inputs, weights and targets are
 * dyadic numbers with few bits, so that every float32 sum of the wasm kernels is exact and equals the
 * cpu reference's float64 sum: the only roundings are to the half format, and they must agree bit for
 * bit. Returns the loss, the gradients and the parameters after one SGD step, as raw bits.
 */
function mlpStepBits(backend: string, dtype: Format, mode: 'model' | 'autocast'): Uint32Array[] {
  let seed = 11;
  const next = (k: number): number => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return (seed >>> 8) % (2 * k + 1) - k; };
  const make = (shape: number[], k: number, scale: number) => t.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next(k) * scale), { shape, backend });
  const model = new t.nn.Sequential(new t.nn.Linear(8, 16), new t.nn.ReLU(), new t.nn.Linear(16, 4));
  model.to(backend);
  const [l1, , l2] = [...model.children()] as unknown as [t.nn.Linear, t.nn.Module, t.nn.Linear];
  t.noGrad(() => {
    for (const lin of [l1, l2]) {
      lin.weight.copy_(make(lin.weight.shape as number[], 16, 1 / 16));
      lin.bias!.copy_(make(lin.bias!.shape as number[], 8, 1 / 8));
    }
  });
  if (mode === 'model') model.to(dtype);
  const x0 = make([4, 8], 8, 1 / 8), target = make([4, 4], 8, 1 / 4);
  const x = mode === 'model' ? x0.cast(dtype) : x0;
  const opt = new SGD(model.parameters(), { lr: 1 / 16 });
  const loss = mode === 'model'
    ? t.mseLoss(model.call(x), target.cast(dtype))
    : t.quant.autocast({ dtype }, () => t.mseLoss(model.call(x), target));
  loss.backward();
  const grads = model.parameters().map((p) => p.grad!);
  if (backend === 'wasm' && mode === 'model') {
    for (const g of grads) assert.ok(t.wasmBackend.isPacked(g.storage), 'gradients are packed');
  }
  const bits = (u: t.Tensor) => new Uint32Array(Float32Array.from(u.data() as Float32Array).buffer);
  const out = [bits(loss), ...grads.map(bits)];
  opt.step();
  out.push(...model.parameters().map(bits));
  return out;
}

for (const dtype of FORMATS) {
  for (const mode of ['model', 'autocast'] as const) {
    test(`${dtype} MLP training step (${mode === 'model' ? 'Module.to(dtype)' : 'autocast'}): loss, gradients and updated parameters on wasm bit for bit the cpu reference's`, () => {
      const calls = t.wasmBackend.kernelCalls.get('matmul')?.wasm ?? 0;
      const wasm = mlpStepBits('wasm', dtype, mode);
      assert.ok((t.wasmBackend.kernelCalls.get('matmul')?.wasm ?? 0) > calls, 'the wasm matmul ran');
      const cpu = mlpStepBits('cpu', dtype, mode);
      wasm.forEach((w, k) => assert.deepEqual(w, cpu[k], `${dtype} ${mode}: result ${k}`));
      // Not a vacuous agreement: the step differs from a float32 one (the half-format roundings happened).
      assert.notDeepEqual(wasm[0], mlpStepBitsFloat32()[0]);
    });
  }
}

function mlpStepBitsFloat32(): Uint32Array[] {
  let seed = 11;
  const next = (k: number): number => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return (seed >>> 8) % (2 * k + 1) - k; };
  const make = (shape: number[], k: number, scale: number) => t.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next(k) * scale), { shape, backend: 'cpu' });
  const w1 = make([16, 8], 16, 1 / 16), b1 = make([16], 8, 1 / 8), w2 = make([4, 16], 16, 1 / 16), b2 = make([4], 8, 1 / 8);
  const x = make([4, 8], 8, 1 / 8), target = make([4, 4], 8, 1 / 4);
  const y = t.add(t.matmul(t.relu(t.add(t.matmul(x, w1.mT), b1)), w2.mT), b2);
  return [new Uint32Array(Float32Array.from(t.mseLoss(y, target).data() as Float32Array).buffer)];
}

test('strided views of packed storages (transposes, steps, flips, broadcasts, slices of a large storage) read, compute and are written through as on the cpu', () => {
  for (const dtype of FORMATS) {
    const values = Array.from({ length: 6 * 10 }, (_, i) => ((i * 37) % 23 - 11) / 8);
    const on = (backend: string) => t.tensor(values, { shape: [6, 10], backend }).cast(dtype);
    const cases: [string, (x: t.Tensor) => t.Tensor][] = [
      ['transpose', (x) => x.mT.contiguous()],
      ['step slice', (x) => t.slice(x, 1, 1, 9, 3).contiguous()],
      ['flip', (x) => t.flip(x, [0, 1])],
      ['negative-stride view + add', (x) => t.add(t.flip(x, 1).mT, x.mT)],
      ['broadcast', (x) => t.mul(t.expand(t.narrow(x, 0, 2, 1), [4, 10]), t.narrow(x, 0, 1, 4))],
      ['middle slice of the storage', (x) => t.relu(t.narrow(t.narrow(x, 0, 2, 3), 1, 3, 4))],
      ['cat and pad', (x) => t.pad(t.cat([t.narrow(x, 1, 0, 3), t.narrow(x, 1, 7, 3)], 1), [1, 2])],
      ['matmul of views', (x) => t.matmul(t.narrow(x, 1, 0, 6), t.narrow(x, 1, 4, 6).mT)],
      ['gather', (x) => t.gather(x, 1, t.tensor([[9, 0], [3, 3], [1, 8], [0, 0], [5, 6], [2, 7]], { dtype: 'int32', backend: x.backend }))],
      ['sum over a transposed view', (x) => t.sum(x.mT, 1)],
      ['cast of a strided view', (x) => x.mT.float()],
    ];
    for (const [name, f] of cases) {
      const a = f(on('wasm')), b = f(on('cpu'));
      assert.deepEqual(Array.from(a.data()), Array.from(b.data()), `${dtype} ${name}`);
      if (a.rank === 2) assert.deepEqual(Array.from(a.mT.data()), Array.from(b.mT.contiguous().data()), `${dtype} ${name}: data() of a view`);
      if (a.dtype === dtype) assert.ok(t.wasmBackend.isPacked(a.storage), `${dtype} ${name}: packed output`);
    }
    // Writes through strided views (writeStrided on packed storage) round to the format, as on the cpu.
    const write = (backend: string) => {
      const x = on(backend);
      t.noGrad(() => {
        t.slice(x, 1, 0, 10, 2).copy_(t.full([6, 5], 1 / 3, { backend }));
        x.mT.narrow(0, 9, 1).fill_(-2.75);
      });
      return Array.from(x.data());
    };
    assert.deepEqual(write('wasm'), write('cpu'), `${dtype}: writes through strided views`);
  }
});

for (const mode of ['autocast', 'Module.to(bfloat16) + master weights'] as const) {
  test(`a jitted bfloat16 training step (${mode}) equals the eager one bit for bit`, () => {
    const run = (jitted: boolean): number[][] => {
      t.manualSeed(5);
      const model = new t.nn.Sequential(new t.nn.Linear(12, 24), new t.nn.GELU(), new t.nn.Linear(24, 6));
      model.to('wasm');
      const half = mode !== 'autocast';
      if (half) model.to('bfloat16');
      // With bfloat16 parameters the update runs on float32 masters and is written back into the
      // packed parameters: inside the jitted step, as graph writes.
      const opt = half
        ? new t.quant.MasterWeightOptimizer(model.parameters(), (ms) => new SGD(ms, { lr: 0.05, momentum: 0.9 }))
        : new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const x = t.randn([16, 12], { backend: 'wasm' }), y = t.randn([16, 6], { backend: 'wasm' });
      const body = (a: t.Tensor, b: t.Tensor): t.Tensor => {
        opt.zeroGrad();
        const l = half
          ? t.mseLoss(model.call(a.cast('bfloat16')).float(), b)
          : t.quant.autocast({ dtype: 'bfloat16' }, () => t.mseLoss(model.call(a), b));
        l.backward();
        opt.step();
        return l;
      };
      const step = jitted ? jit(body) : body;
      const losses: number[] = [];
      for (let i = 0; i < 4; i++) losses.push(step(x, y).item());
      if (half) assert.ok(model.parameters().every((p) => t.wasmBackend.isPacked(p.storage)), 'parameters stay packed');
      return [losses, ...model.parameters().map((p) => Array.from(p.data()))];
    };
    const eager = run(false);
    const narrowed = t.wasmBackend.halfPack.counts.narrow;
    const jitted = run(true);
    assert.ok(t.wasmBackend.halfPack.counts.narrow > narrowed, 'the jitted steps computed packed bfloat16 values');
    assert.ok(eager[0]![3]! < eager[0]![0]!, 'the loss goes down');
    eager.forEach((e, k) => assert.deepEqual(jitted[k], e, k === 0 ? 'losses' : `parameter ${k - 1}`));
  });
}
