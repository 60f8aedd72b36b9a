// How the TCP transport reads: large bodies go straight into the receive's own array when it
// offers one (no copy after the kernel's), other bodies arrive 8-byte aligned for typed views,
// and large collectives (whose messages span many socket reads, unlike the collective matrix's
// short arrays) come out right over the two connections per pair.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deadlineIn } from '../../src/dist/deadline.js';
import { initProcessGroup } from '../../src/dist/index.js';
import type { ProcessGroup } from '../../src/dist/index.js';
import type { Inbound } from '../../src/dist/mailbox.js';
import { DataFrameReader, encodeDataHeader, KIND_DATA } from '../../src/dist/tcp/frames.js';
import { connectTcpTransport } from '../../src/dist/tcp/tcp-transport.js';
import type { TcpTransport } from '../../src/dist/tcp/tcp-transport.js';
import { freePort } from '../helpers/free-port.js';


async function twoTransports(): Promise<TcpTransport[]> {
  const port = await freePort();
  const common = { worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, bindAddr: undefined, secret: 'reads-secret', timeoutMs: 10_000, log: () => {} };
  return Promise.all([connectTcpTransport({ ...common, rank: 0 }), connectTcpTransport({ ...common, rank: 1 })]);
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** The receiving end of one message: where its pieces went, checked against the Sink contract. */
function recordingInbound(length: number, offerHome: boolean): { inbound: Inbound; home: Uint8Array; placed: () => number; problems: string[]; ended: () => boolean } {
  const home = new Uint8Array(length);
  let received = 0;
  let placed = 0;
  let ended = false;
  const problems: string[] = [];
  const inbound: Inbound = {
    write(chunk) {
      if (received % 8 !== 0) problems.push(`a piece at offset ${received}`);
      if (chunk.byteLength % 8 !== 0 && received + chunk.byteLength !== length) problems.push(`a piece of ${chunk.byteLength} bytes before the end`);
      if (chunk.buffer === home.buffer && chunk.byteOffset === received) placed += chunk.byteLength;
      else home.set(chunk, received);
      received += chunk.byteLength;
    },
    end() {
      if (received !== length) problems.push(`ended after ${received} of ${length} bytes`);
      ended = true;
    },
    rest: offerHome ? () => home.subarray(received) : undefined,
  };
  return { inbound, home, placed: () => placed, problems, ended: () => ended };
}

test('the frame reader delivers bodies intact and in 8-byte pieces whatever the read sizes, in place or not', () => {
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return 1 + (seed % n);
  };
  for (let trial = 0; trial < 30; trial++) {
    const n = 40_000 + trial * 13;
    const bodies = [pattern(n, trial), pattern(21, trial + 1), pattern(n + 3, trial + 2)];
    const stream = Buffer.concat(bodies.flatMap((b, i) => [encodeDataHeader(KIND_DATA, i, b.byteLength), Buffer.from(b)]));
    const ends: ReturnType<typeof recordingInbound>[] = [];
    const reader = new DataFrameReader(
      {
        begin: (_tag, length) => {
          const e = recordingInbound(length, ends.length !== 1); // the middle message offers no home
          ends.push(e);
          return e.inbound;
        },
        bye: () => {},
        abort: () => {},
      },
      2 ** 30,
      'test peer',
    );
    const scratch = new Uint8Array(9000 + 8);
    // Reads of random sizes (some tiny, most not multiples of 8), where the reader asks for them.
    for (let pos = 0; pos < stream.length; ) {
      const want = random(trial % 2 === 0 ? 9000 : 40);
      const target = reader.nextReadTarget();
      const into = target ?? scratch.subarray(reader.nextChunkOffset());
      const k = Math.min(want, into.byteLength, stream.length - pos, 9000);
      into.set(stream.subarray(pos, pos + k));
      reader.push(into.subarray(0, k));
      pos += k;
    }
    assert.equal(ends.length, 3);
    for (const [i, e] of ends.entries()) {
      assert.deepEqual(e.problems, [], `trial ${trial}, message ${i}`);
      assert.ok(e.ended(), `trial ${trial}, message ${i} never ended`);
      assert.ok(Buffer.from(e.home).equals(Buffer.from(bodies[i]!)), `trial ${trial}, message ${i}: bytes differ`);
    }
    if (trial % 2 === 0) assert.ok(ends[0]!.placed() > n / 2, `trial ${trial}: only ${ends[0]!.placed()} of ${n} bytes placed`);
    assert.equal(ends[1]!.placed(), 0);
  }
});

test('a large body is read straight into the array its receive offers, and arrives intact', { timeout: 60_000 }, async () => {
  const [t0, t1] = await twoTransports();
  try {
    const n = 3 * 1024 * 1024 + 5; // not a multiple of 8: the last bytes travel through the carry
    const sent = pattern(n, 7);
    const into = new Uint8Array(n);
    let placed = 0;
    let copied = 0;
    const deadline = deadlineIn(30_000, 'test recv');
    const received = t1!.recv(
      0,
      42,
      n,
      (chunk, offset) => {
        if (chunk.buffer === into.buffer && chunk.byteOffset === offset) {
          placed += chunk.byteLength;
        } else {
          into.set(chunk, offset);
          copied += chunk.byteLength;
        }
      },
      deadline,
      into,
    );
    await Promise.all([t0!.send(1, 42, sent, deadline), received]);
    assert.equal(placed + copied, n);
    assert.ok(placed > n * 0.9, `only ${placed} of ${n} bytes were read in place (${copied} copied)`);
    assert.ok(Buffer.from(into).equals(Buffer.from(sent)), 'the received bytes differ from the sent ones');
  } finally {
    await Promise.all([t0!.close(), t1!.close()]);
  }
});

test('bodies without a place of their own arrive in chunks aligned for typed views', { timeout: 60_000 }, async () => {
  const [t0, t1] = await twoTransports();
  try {
    const deadline = deadlineIn(30_000, 'test recv');
    // An odd-length message first, so that the next body starts at an odd stream position.
    const odd = pattern(13, 1);
    const gotOdd = new Uint8Array(13);
    const n = 2 * 1024 * 1024;
    const big = pattern(n, 3);
    const gotBig = new Uint8Array(n);
    let unaligned = 0;
    let chunks = 0;
    await Promise.all([
      t0!.send(1, 1, odd, deadline),
      t0!.send(1, 2, big, deadline),
      t1!.recv(0, 1, 13, (c, o) => gotOdd.set(c, o), deadline),
      t1!.recv(
        0,
        2,
        n,
        (c, o) => {
          chunks++;
          if (c.byteOffset % 8 !== 0) unaligned++;
          gotBig.set(c, o);
        },
        deadline,
      ),
    ]);
    assert.ok(Buffer.from(gotOdd).equals(Buffer.from(odd)));
    assert.ok(Buffer.from(gotBig).equals(Buffer.from(big)), 'the large body differs');
    // The first read may hold the header and the start of the body wherever the stream put
    // them; every later read starts where the body lands aligned.
    assert.ok(chunks > 4, `expected the body in many reads, got ${chunks}`);
    assert.ok(unaligned <= 1, `${unaligned} of ${chunks} chunks were unaligned`);
  } finally {
    await Promise.all([t0!.close(), t1!.close()]);
  }
});

async function twoRankGroups(): Promise<ProcessGroup[]> {
  const port = await freePort();
  const common = { transport: 'tcp' as const, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, secret: 'reads-secret', timeoutMs: 20_000, log: () => {} };
  return Promise.all([initProcessGroup({ ...common, rank: 0 }), initProcessGroup({ ...common, rank: 1 })]);
}

test('large all-reduces over tcp match a float64 reference (every algorithm, odd lengths)', { timeout: 120_000 }, async () => {
  const groups = await twoRankGroups();
  try {
    const n = 600_001;
    for (const algorithm of ['ring', 'tree', 'recursive-doubling', 'rabenseifner'] as const) {
      const a = new Float32Array(n).map((_, i) => (i % 1000) * 0.5);
      const b = new Float32Array(n).map((_, i) => ((i * 7) % 1000) * 0.25);
      const want = a.map((x, i) => x + b[i]!);
      await Promise.all([groups[0]!.allReduce(a, { algorithm }), groups[1]!.allReduce(b, { algorithm })]);
      for (const [rank, got] of [a, b].entries()) {
        const bad = got.findIndex((x, i) => x !== want[i]);
        assert.equal(bad, -1, `${algorithm}: rank ${rank} element ${bad} is ${got[bad]}, expected ${want[bad]}`);
      }
      const x = new Int32Array(n + 1).map((_, i) => i);
      const y = new Int32Array(n + 1).map((_, i) => -2 * i);
      await Promise.all([groups[0]!.allReduce(x, { algorithm, op: 'max' }), groups[1]!.allReduce(y, { algorithm, op: 'max' })]);
      assert.equal(x.findIndex((v, i) => v !== i), -1, `${algorithm}: int32 max on rank 0`);
      assert.equal(y.findIndex((v, i) => v !== i), -1, `${algorithm}: int32 max on rank 1`);
    }
  } finally {
    await Promise.all(groups.map((g) => g.destroy()));
  }
});
