// Matching of incoming messages to receives: early (unexpected) messages, per-tag order,
// size checks, timeouts and closed peers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deadlineIn } from '../../src/dist/deadline.js';
import { DistTimeoutError, PeerLostError } from '../../src/dist/errors.js';
import { Mailbox } from '../../src/dist/mailbox.js';
import { evenBlocks } from '../../src/dist/index.js';

function collect(n: number): { bytes: Uint8Array; sink: (c: Uint8Array, o: number) => void } {
  const bytes = new Uint8Array(n);
  return { bytes, sink: (c, o) => bytes.set(c, o) };
}

test('a message that arrives before its receive is kept and delivered; tags match out of order', async () => {
  const mb = new Mailbox(1, 0, () => {});
  const d = deadlineIn(5000, 'test');
  const m7 = mb.begin(7, 4);
  m7.write(new Uint8Array([1, 2, 3, 4]));
  m7.end();
  const a = collect(2);
  const pa = mb.post(9, 2, a.sink, d);
  const b = collect(4);
  await mb.post(7, 4, b.sink, d);
  assert.deepEqual([...b.bytes], [1, 2, 3, 4]);
  const m9 = mb.begin(9, 2);
  m9.write(new Uint8Array([5, 6]));
  m9.end();
  await pa;
  assert.deepEqual([...a.bytes], [5, 6]);
});

test('a receive posted while its message is half in streams the rest', async () => {
  const mb = new Mailbox(1, 0, () => {});
  const m = mb.begin(1, 16);
  m.write(new Uint8Array(8).fill(1));
  const r = collect(16);
  const p = mb.post(1, 16, r.sink, deadlineIn(5000, 'test'));
  m.write(new Uint8Array(8).fill(2));
  m.end();
  await p;
  assert.deepEqual([...r.bytes], [...new Array(8).fill(1), ...new Array(8).fill(2)]);
});

test('size mismatches, timeouts and closed peers reject with explanations', async () => {
  let timedOut: DistTimeoutError | undefined;
  const mb = new Mailbox(3, 0, (e) => (timedOut = e));
  const r = collect(8);
  const p = mb.post(1, 8, r.sink, deadlineIn(5000, 'allReduce(ring)'));
  mb.begin(1, 12).end();
  await assert.rejects(p, /allReduce\(ring\): rank 3 announced a message of 12 bytes .* but rank 0 expected 8 bytes/);
  await assert.rejects(mb.post(2, 8, r.sink, deadlineIn(30, 'barrier')), /barrier timed out after 30 ms waiting for rank 3/);
  assert.ok(timedOut instanceof DistTimeoutError);
  mb.close(new PeerLostError(3, 'it closed its process group'));
  await assert.rejects(mb.post(5, 8, r.sink, deadlineIn(5000, 'x')), /rank 3 was lost \(it closed its process group\)/);
});

test('even blocks cover any length, the first n mod p one longer', () => {
  assert.deepEqual(evenBlocks(10, 4).counts, [3, 3, 2, 2]);
  assert.deepEqual(evenBlocks(10, 4).offsets, [0, 3, 6, 8]);
  assert.deepEqual(evenBlocks(2, 5).counts, [1, 1, 0, 0, 0]);
  assert.equal(evenBlocks(0, 3).total, 0);
});

test('a receive whose message is cut off half-way fails with the transport failure', async () => {
  const mb = new Mailbox(2, 0, () => {});
  const r = collect(16);
  const p = mb.post(4, 16, r.sink, deadlineIn(60_000, 'allReduce(ring)'));
  const inbound = mb.begin(4, 16);
  inbound.write(new Uint8Array(8));
  mb.failAll(new PeerLostError(2, 'its connection closed'));
  await assert.rejects(p, /rank 2 was lost \(its connection closed\)/);
});

test('whenPosted: a reader holding a message is woken by the matching receive, and the message then streams into it in peer memory', async () => {
  const mb = new Mailbox(1, 0, () => {});
  const d = deadlineIn(5000, 'test');
  let woken = false;
  // A long grace, so only the post can wake it within the test.
  const held = mb.whenPosted(3, 60_000).then(() => {
    woken = true;
  });
  assert.equal(mb.hasPosted(3), false);
  // A receive for another tag does not wake it.
  const other = collect(1);
  const pOther = mb.post(4, 1, other.sink, d);
  await new Promise((r) => setImmediate(r));
  assert.equal(woken, false);
  const flags: boolean[] = [];
  const got = new Uint8Array(2);
  const p3 = mb.post(3, 2, (c, o, inPeerMemory) => {
    got.set(c, o);
    flags.push(inPeerMemory);
  }, d);
  await held;
  assert.equal(woken, true);
  assert.equal(mb.hasPosted(3), true);
  const m = mb.begin(3, 2);
  m.write(new Uint8Array([8, 9]), true);
  m.end();
  await p3;
  assert.deepEqual([...got], [8, 9]);
  assert.deepEqual(flags, [true]);
  const m4 = mb.begin(4, 1);
  m4.write(new Uint8Array([1]));
  m4.end();
  await pOther;
});

test('whenPosted: gives up after its grace, and at once when the mailbox fails; a message kept early reaches its sink as a copy', async () => {
  const mb = new Mailbox(1, 0, () => {});
  await mb.whenPosted(5, 1); // nobody posts: the grace ends it
  const failing = mb.whenPosted(6, 60_000);
  mb.failAll(new PeerLostError(1, 'test'));
  await failing;
  const mb2 = new Mailbox(1, 0, () => {});
  const early = mb2.begin(7, 1);
  early.write(new Uint8Array([42]), true);
  early.end();
  const flags: boolean[] = [];
  await mb2.post(7, 1, (_c, _o, inPeerMemory) => flags.push(inPeerMemory), deadlineIn(5000, 'test'));
  assert.deepEqual(flags, [false]);
});

test('a receive posted while its early message is half in fails at once when the transport fails, not at its timeout', async () => {
  const mb = new Mailbox(1, 0, () => {});
  const early = mb.begin(2, 8);
  early.write(new Uint8Array([1, 2, 3, 4]));
  const into = collect(8);
  const pending = mb.post(2, 8, into.sink, deadlineIn(60_000, 'test'));
  mb.failAll(new PeerLostError(1, 'its connection closed'));
  await assert.rejects(pending, (err: Error) => err instanceof PeerLostError);
});

test("a receive's own array is offered for direct reads while it streams, and no longer once it failed", async () => {
  const mb = new Mailbox(1, 0, () => {});
  const home = new Uint8Array(16);
  const p = mb.post(3, 16, (c, o) => home.set(c, o), deadlineIn(5000, 'test'), home);
  const m = mb.begin(3, 16);
  const first = m.rest?.();
  assert.ok(first && first.buffer === home.buffer && first.byteOffset === 0 && first.byteLength === 16);
  m.write(new Uint8Array(8).fill(4));
  const second = m.rest?.();
  assert.ok(second && second.byteOffset === 8 && second.byteLength === 8, 'the rest starts after the bytes written');
  // Nothing arriving early is read into a receive's memory: an unexpected message has no rest.
  assert.equal(mb.begin(5, 8).rest?.(), undefined);
  mb.failAll(new PeerLostError(1, 'test'));
  await assert.rejects(p, PeerLostError);
  assert.equal(m.rest?.(), undefined, 'a failed receive must not be written to any more');
});
