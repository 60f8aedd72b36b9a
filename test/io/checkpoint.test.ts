import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { tensor } from '../../src/ops/creation.js';
import { matmul } from '../../src/ops/linalg.js';
import { mean } from '../../src/ops/reduce.js';
import { mul, sub } from '../../src/ops/elementwise.js';
import { Tensor } from '../../src/core/tensor.js';
import { Generator } from '../../src/core/random.js';
import {
  CheckpointError,
  load,
  loadState,
  parseState,
  parseStateDict,
  rawToTensor,
  save,
  saveState,
  serializeState,
  serializeStateDict,
  type StateTree,
} from '../../src/io/checkpoint.js';
import { parseSafetensors, parseSafetensorsHeader, serializeSafetensors } from '../../src/io/safetensors.js';
import { TensorDataset } from '../../src/data/dataset.js';
import { DataLoader, type DataLoaderState } from '../../src/data/loader.js';

const fixture = new URL('../fixtures/safetensors/reference.safetensors', import.meta.url);

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-ckpt-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function bitsOf(t: Tensor): number[] {
  const d = t.data();
  return [...new Uint8Array(d.buffer, d.byteOffset, d.byteLength)];
}

function assertSameTensor(a: unknown, b: Tensor, what: string): void {
  assert.ok(a instanceof Tensor, `${what} is a tensor`);
  assert.equal(a.dtype, b.dtype, what);
  assert.deepEqual(a.shape, b.shape, what);
  assert.deepEqual(bitsOf(a), bitsOf(b), what);
}

test('save/load round-trips every tensor dtype bit-exactly, under the same names', () =>
  inTempDir(async (dir) => {
    const stateDict: Record<string, Tensor> = {
      'fc.weight': tensor([[0.1, -0.2, 3e38], [NaN, -0, 1e-45]], { dtype: 'float32' }),
      'fc.bias': tensor([Math.PI, -Math.E], { dtype: 'float64' }),
      half: tensor([1, -2.5, 65504, 1e-7], { dtype: 'float16' }),
      brain: tensor([1, -3.140625, 1e38], { dtype: 'bfloat16' }),
      steps: tensor([[1, -2147483648, 2147483647]], { dtype: 'int32' }),
      small: tensor([-128, 127], { dtype: 'int8' }),
      pixels: tensor([0, 255], { dtype: 'uint8' }),
      mask: tensor([true, false, true]),
      scalar: tensor(7.5, { dtype: 'float32' }),
    };
    const path = join(dir, 'model.safetensors');
    await save(path, stateDict, { epoch: '2' });
    const loaded = await load(path);
    assert.deepEqual(Object.keys(loaded).sort(), Object.keys(stateDict).sort());
    for (const [name, t] of Object.entries(stateDict)) assertSameTensor(loaded[name], t, name);

    // The file is plain safetensors: the names, the standard dtype strings, and our metadata.
    const header = parseSafetensorsHeader(new Uint8Array(readFileSync(path)));
    const dtypes = Object.fromEntries(header.entries.map((e) => [e.name, e.dtype]));
    assert.deepEqual(dtypes, { 'fc.weight': 'F32', 'fc.bias': 'F64', half: 'F16', brain: 'BF16', steps: 'I32', small: 'I8', pixels: 'U8', mask: 'BOOL', scalar: 'F32' });
    assert.deepEqual(header.metadata, { format: 'pt', epoch: '2' });
  }));

test('float16 tensors are stored as IEEE half bit patterns', () => {
  const bytes = serializeStateDict({ h: tensor([1, -2, 0.5], { dtype: 'float16' }) });
  const raw = parseSafetensors(bytes).tensors.get('h')!;
  assert.deepEqual([...raw.data], [0x3c00, 0xc000, 0x3800]);
});

test('loads the stdlib-Python reference file; its I64 beyond int32 is refused by name', () => {
  const bytes = new Uint8Array(readFileSync(fixture));
  assert.throws(() => parseStateDict(bytes), (e: unknown) => e instanceof CheckpointError && /tensor "step" is I64 and element 0 is 1234567890123, which does not fit int32/.test(e.message));
  // Without that tensor, everything converts: F16/BF16 decode to their values, I16 widens to int32.
  const parsed = parseSafetensors(bytes);
  parsed.tensors.delete('step');
  const { tensors } = parseStateDict(serializeSafetensors(parsed.tensors, parsed.metadata));
  assert.deepEqual(tensors['half']!.toArray(), [1, -2, 0.5, 65504]);
  assert.equal(tensors['half']!.dtype, 'float16');
  assert.deepEqual(tensors['brain']!.toArray(), [1, -3]);
  assert.deepEqual(tensors['short']!.toArray(), [-32768, 0, 32767]);
  assert.equal(tensors['short']!.dtype, 'int32');
  assert.deepEqual(tensors['mask']!.toArray(), [true, false, true]);
  assert.deepEqual(tensors['empty']!.shape, [0, 4]);
  assert.deepEqual(tensors['linear.weight']!.shape, [2, 3]);
});

test('I64 values that fit int32 load as int32 (PyTorch\'s int64 buffers); 8-bit floats are refused', () => {
  const small = rawToTensor({ dtype: 'I64', shape: [2], data: BigInt64Array.from([5n, -7n]) }, 'num_batches_tracked');
  assert.equal(small.dtype, 'int32');
  assert.deepEqual(small.toArray(), [5, -7]);
  assert.throws(() => rawToTensor({ dtype: 'F8_E4M3', shape: [1], data: Uint8Array.from([1]) }, 'q'), /tensor "q" is F8_E4M3, an 8-bit float type/);
});

test('a nested training state comes back as the same tree, numbers bit for bit', () =>
  inTempDir(async (dir) => {
    const generator = new Generator(5);
    generator.nextUint32();
    const state = {
      model: { 'fc.weight': tensor([[1, 2], [3, 4]], { dtype: 'float32' }), 'fc.bias': tensor([0.5, -0.5], { dtype: 'float32' }) },
      optimizer: { step: 12, lr: 1e-3, betas: [0.9, 0.999], state: [{ exp_avg: tensor([0.1, 0.2], { dtype: 'float32' }) }, { exp_avg: tensor([0.3], { dtype: 'float64' }) }] },
      rng: generator.getState(), // holds NaN when no spare normal is cached
      moduleState: new Map([['layer.weight', tensor([1.5], { dtype: 'float32' })]]),
      specials: { nan: NaN, inf: Infinity, ninf: -Infinity, negZero: -0, none: null, yes: true, name: 'char-gpt' },
    };
    const path = join(dir, 'train.safetensors');
    await saveState(path, state);
    const back = (await loadState(path)) as Record<string, Record<string, StateTree>>;
    assertSameTensor(back['model']!['fc.weight'], state.model['fc.weight'], 'model.fc.weight');
    assertSameTensor(back['model']!['fc.bias'], state.model['fc.bias'], 'model.fc.bias');
    const opt = back['optimizer'] as { step: number; lr: number; betas: number[]; state: Array<{ exp_avg: Tensor }> };
    assert.equal(opt.step, 12);
    assert.equal(opt.lr, 1e-3);
    assert.deepEqual(opt.betas, [0.9, 0.999]);
    assertSameTensor(opt.state[0]!.exp_avg, state.optimizer.state[0]!.exp_avg, 'exp_avg 0');
    assertSameTensor(opt.state[1]!.exp_avg, state.optimizer.state[1]!.exp_avg, 'exp_avg 1');
    assert.deepEqual(back['rng'], state.rng);
    const moduleState = back['moduleState'] as unknown as Map<string, Tensor>;
    assert.ok(moduleState instanceof Map);
    assertSameTensor(moduleState.get('layer.weight'), state.moduleState.get('layer.weight')!, 'Map entry');
    const restored = new Generator();
    restored.setState(back['rng'] as unknown as number[]);
    assert.equal(restored.nextUint32(), generator.nextUint32());
    const specials = back['specials'] as Record<string, unknown>;
    assert.ok(Number.isNaN(specials['nan']));
    assert.equal(specials['inf'], Infinity);
    assert.equal(specials['ninf'], -Infinity);
    assert.ok(Object.is(specials['negZero'], -0));
    assert.deepEqual([specials['none'], specials['yes'], specials['name']], [null, true, 'char-gpt']);
    // Other tools see ordinary tensors under dotted paths.
    const names = parseSafetensorsHeader(new Uint8Array(readFileSync(path))).entries.map((e) => e.name).sort();
    assert.deepEqual(names, ['model.fc.bias', 'model.fc.weight', 'moduleState.layer.weight', 'optimizer.state.0.exp_avg', 'optimizer.state.1.exp_avg']);
  }));

test('a foreign file without tessera metadata loads as a flat state dict', () => {
  const bytes = serializeSafetensors({ w: { dtype: 'F32', shape: [1], data: Float32Array.from([2]) } });
  const tree = parseState(bytes) as Record<string, Tensor>;
  assert.deepEqual(Object.keys(tree), ['w']);
  assert.deepEqual(tree['w']!.toArray(), [2]);
});

test('states that cannot be stored faithfully are refused with the path and advice', () => {
  assert.throws(() => serializeState({ a: { b: new Set() } }), /"a\.b" is a Set; /);
  assert.throws(() => serializeState({ m: new Map([[1, 2]]) }), /"m" is a Map with key a number; only string keys/);
  assert.throws(() => serializeState({ x: new Float32Array(2) }), /"x" is a Float32Array; .*Array.from/);
  assert.throws(() => serializeState({ $tensor: 1 }), /key "\$tensor" in the state starts with '\$'/);
  assert.throws(() => serializeState({ 'a.b': tensor([1]), a: { b: tensor([2]) } }), /both named "a\.b"/);
  assert.throws(() => serializeStateDict({ w: 3 as unknown as Tensor }), /"w" is a number, not a Tensor/);
});

test('training resumed from a checkpoint ends with bit-identical parameters', () =>
  inTempDir(async (dir) => {
    // A least-squares model trained with plain SGD steps on shuffled mini-batches.
    const n = 40;
    const x = tensor(Array.from({ length: n }, (_, i) => [Math.sin(i), Math.cos(3 * i), 1]), { dtype: 'float32' });
    const y = tensor(Array.from({ length: n }, (_, i) => [2 * Math.sin(i) - Math.cos(3 * i) + 0.5]), { dtype: 'float32' });
    const dataset = new TensorDataset([x, y]);
    const options = { batchSize: 6, shuffle: true, seed: 9, dropLast: false };
    const step = (w: Tensor, [bx, by]: Tensor[]): Tensor => {
      const residual = sub(matmul(bx!, w), by!);
      const gradient = mul(matmul(bx!.transpose(0, 1), residual), 2 / bx!.shape[0]!);
      return sub(w, mul(gradient, 0.05));
    };
    const totalSteps = 25; // 7 batches per epoch: crosses three epoch boundaries
    const w0 = tensor([[0], [0], [0]], { dtype: 'float32' });

    let w = w0;
    const straight = new DataLoader(dataset, options);
    for (let s = 0; s < totalSteps; ) for await (const batch of straight) if (s++ < totalSteps) w = step(w, batch); else break;

    const stopAt = 10;
    let w1 = w0;
    const first = new DataLoader(dataset, options);
    for (let s = 0; s < stopAt; ) for await (const batch of first) { w1 = step(w1, batch); if (++s === stopAt) break; }
    const path = join(dir, 'resume.safetensors');
    await saveState(path, { params: { w: w1 }, loader: { ...first.stateDict() }, stepsDone: stopAt });

    const saved = (await loadState(path)) as unknown as { params: { w: Tensor }; loader: DataLoaderState; stepsDone: number };
    let w2 = saved.params.w;
    const second = new DataLoader(dataset, options);
    second.loadStateDict(saved.loader);
    for (let s = saved.stepsDone; s < totalSteps; ) for await (const batch of second) if (s++ < totalSteps) w2 = step(w2, batch); else break;

    assert.deepEqual(bitsOf(w2), bitsOf(w));
    // And training did something: the loss went down from w0.
    const loss = (p: Tensor) => mean(mul(sub(matmul(x, p), y), sub(matmul(x, p), y))).item();
    assert.ok(loss(w) < 0.5 * loss(w0), `loss ${loss(w0)} -> ${loss(w)}`);
  }));
