// Memory: dispose() releases a tensor's reference, storages are freed with their last view, scopes
// dispose what they created except what they return, memoryScope works with `using`, and
// memoryStats counts live tensors, storages and bytes. (FinalizationRegistry callbacks only run
// between tasks, so the counts below are stable within each synchronous test body.)
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertThrowsWith } from '../helpers/close.js';

forEachBackend('memory', () => {
  it('memoryStats counts tensors, storages and bytes; views share a storage', () => {
    const before = t.memoryStats();
    const x = t.zeros([4, 8], { dtype: 'float64' });
    const v = x.T;
    const y = t.ones([10], { dtype: 'int32' });
    const mid = t.memoryStats();
    assert.equal(mid.liveTensors - before.liveTensors, 3);
    assert.equal(mid.liveStorages - before.liveStorages, 2, 'the view adds a tensor, not a storage');
    assert.equal(mid.liveBytes - before.liveBytes, 4 * 8 * 8 + 10 * 4);
    assert.ok(mid.peakBytes >= mid.liveBytes);
    x.dispose();
    assert.equal(t.memoryStats().liveStorages - before.liveStorages, 2, 'the storage lives while a view does');
    assert.deepEqual(v.shape, [8, 4]);
    const total = v.sum();
    assert.equal(total.item(), 0, 'the view is still readable');
    for (const z of [v, y, total]) z.dispose();
    const after = t.memoryStats();
    assert.equal(after.liveStorages, before.liveStorages);
    assert.equal(after.liveBytes, before.liveBytes);
    assert.equal(after.liveTensors, before.liveTensors);
  });

  it('float16 and bfloat16 are counted at 2 bytes per element', () => {
    const before = t.memoryStats().liveBytes;
    const h = t.zeros([5], { dtype: 'float16' });
    const b = t.zeros([3], { dtype: 'bfloat16' });
    assert.equal(t.memoryStats().liveBytes - before, 16);
    h.dispose();
    b.dispose();
  });

  it('using a disposed tensor raises an error naming the op, the shape and the dtype', () => {
    const x = t.ones([2, 3]);
    x.dispose();
    x.dispose(); // idempotent
    assert.equal(x.isDisposed, true);
    assertThrowsWith(() => x.add(1), 'add', 'disposed', '[2, 3]', 'float32');
    assertThrowsWith(() => x.data(), 'data', 'disposed');
    assertThrowsWith(() => x.sum(), 'sum', 'disposed');
    assert.match(x.toString(), /disposed/);
  });

  it('scope disposes what it created except what it returns (arrays, objects, Maps), and nests', () => {
    const outside = t.ones([2]);
    let inner: t.Tensor | undefined;
    const before = t.memoryStats().liveTensors;
    const result = t.scope(() => {
      inner = outside.mul(2);
      const kept = t.keep(outside.mul(5));
      const nested = t.scope(() => {
        const tmp = outside.add(1);
        return { value: tmp.mul(3), list: [tmp] };
      });
      assert.equal(nested.list[0]!.isDisposed, false, 'returned from the inner scope');
      return { a: inner.add(1), pair: [nested.value, new Map([['k', kept]])] as const };
    });
    assert.equal(inner!.isDisposed, true);
    assert.equal(outside.isDisposed, false, 'tensors created before the scope are untouched');
    assert.equal(result.a.isDisposed, false);
    assert.deepEqual(result.a.toArray(), [3, 3]);
    assert.equal(result.pair[0].isDisposed, false, 'returned from the inner scope, then from the outer scope');
    assert.deepEqual(result.pair[1].get('k')!.toArray(), [5, 5]);
    // a, nested.value and kept survive; nested.list[0] was returned by the inner scope only.
    assert.equal(t.memoryStats().liveTensors - before, 3);
  });

  it('scope disposes its tensors when fn throws, and supports async functions', async () => {
    let made: t.Tensor | undefined;
    assert.throws(() => t.scope(() => { made = t.ones([1]); throw new Error('boom'); }), /boom/);
    assert.equal(made!.isDisposed, true);
    let early: t.Tensor | undefined;
    const out = await t.scope(async () => {
      early = t.ones([2]);
      await new Promise((r) => setTimeout(r, 1));
      return early.add(1);
    });
    assert.equal(early!.isDisposed, true);
    assert.deepEqual(out.toArray(), [2, 2]);
  });

  it('memoryScope works with `using` and can keep tensors', () => {
    let temp: t.Tensor;
    let kept: t.Tensor;
    {
      using s = t.memoryScope();
      temp = t.ones([3]);
      kept = s.keep(temp.mul(2));
      assert.equal(temp.isDisposed, false);
    }
    assert.equal(temp.isDisposed, true);
    assert.equal(kept.isDisposed, false);
    assert.deepEqual(kept.toArray(), [2, 2, 2]);
    assert.equal(typeof Symbol.dispose, 'symbol');
    {
      using x = t.ones([2]);
      temp = x;
    }
    assert.equal(temp.isDisposed, true, 'a tensor is itself disposable');
  });

  it('the FinalizationRegistry releases tensors that were garbage-collected without dispose()', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const before = t.memoryStats();
    (() => { for (let i = 0; i < 10; i++) t.ones([1000], { dtype: 'float64' }); })();
    assert.equal(t.memoryStats().liveTensors - before.liveTensors, 10);
    assert.equal(t.memoryStats().liveBytes - before.liveBytes, 80000);
    // Finalizers run some time after a collection; give them a few turns of the event loop.
    for (let round = 0; round < 100 && t.memoryStats().liveBytes > before.liveBytes; round++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(t.memoryStats().liveBytes <= before.liveBytes, 'the unreachable tensors were released');
  });
});

it('an op with a number operand or a cast frees the tensors it made for itself (no leak until a collection), except where they may still be read', () => {
  const x = t.tensor([1, 2, 3]);
  const before = t.memoryStats().liveTensors;
  for (let i = 0; i < 50; i++) {
    t.mul(x, 2).dispose();
    t.add(t.tensor([1], { dtype: 'int32' }), x).dispose(); // a cast and a broadcast view of the int tensor
    t.gt(x, 1.5).dispose();
  }
  // The int32 [1] tensors the loop made itself are the caller's to free: 50 of them, nothing else.
  assert.equal(t.memoryStats().liveTensors - before, 50);
  // With a tape the scalar stays: mul's vjp reads it.
  const w = t.tensor([1, 2, 3], { requiresGrad: true });
  const y = t.mul(w, 3);
  t.sum(y).backward();
  assert.deepEqual(Array.from(w.grad!.data()), [3, 3, 3]);
  // Traced: the scalar is a graph constant and stays usable on every call.
  const f = t.jit((a: t.Tensor) => t.mul(a, 4));
  for (let i = 0; i < 3; i++) assert.deepEqual(Array.from(f(x).data()), [4, 8, 12]);
});
