// A compiled replay on any backend frees what it computes as it goes: after a call only its
// outputs are live, and its peak stays a few buffers. (On wasm fused nodes are generated kernels;
// on webgpu they run op by op through `bind`, whose intermediates must be freed at once rather
// than left to the garbage collector, which wasm and GPU memory do not prompt.)
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

forEachBackend('compiled replay memory', (backend) => {
  it('leaves only the outputs live, with a peak of a few buffers, fused bodies included', () => {
    const x = t.randn([64, 256]);
    const body = (a: t.Tensor): t.Tensor => t.where(t.gt(a, 0), t.add(t.sqrt(t.abs(t.pow(a, 3))), 1), t.mul(t.neg(t.exp(a)), 2)).sum(1);
    const f = t.jit(body);
    f(x).dispose(); // the trace
    f(x).dispose();
    const live = t.memoryStats().byBackend[backend]!.liveBytes;
    t.resetPeakMemory();
    const out = f(x);
    const buffer = 64 * 256 * 4;
    const mem = t.memoryStats().byBackend[backend]!;
    assert.equal(mem.liveBytes - live, 64 * 4, 'only the output stays live');
    assert.ok(mem.peakBytes - live <= 4 * buffer, `peak ${mem.peakBytes - live} bytes above the start on ${backend} (one buffer is ${buffer})`);
    assert.deepEqual(Array.from(out.data()), Array.from(body(x).data()));
    assert.equal(f.stats().traces, 1);
  });
});
