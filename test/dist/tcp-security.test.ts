// The TCP transport only talks to processes that know the job's secret, refuses (and logs)
// everything else, and checks message sizes against what the receiver expects.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { DistError, initProcessGroup } from '../../src/dist/index.js';
import type { ProcessGroup } from '../../src/dist/index.js';
import { encodeJson, JsonFrameReader, readOneJson } from '../../src/dist/tcp/frames.js';
import { StoreClient, StoreServer } from '../../src/dist/tcp/store.js';
import { freePort } from '../helpers/free-port.js';


function until(pred: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (pred()) resolve();
      else if (Date.now() - started > 10_000) reject(new Error(`never happened: ${what}`));
      else setTimeout(tick, 20);
    };
    tick();
  });
}

test('the rendezvous store refuses clients with the wrong secret or garbage, and logs them', async () => {
  const logs: string[] = [];
  const server = await StoreServer.listen('127.0.0.1', 0, 'right-secret', (m) => logs.push(m));
  try {
    await assert.rejects(StoreClient.connect('127.0.0.1', server.port, 'wrong-secret', 500), /cannot reach the rendezvous store/);
    await until(() => logs.some((l) => /refused a rendezvous-store connection .*did not prove knowledge of the job secret/.test(l)), 'wrong secret logged');
    const raw = net.connect(server.port, '127.0.0.1');
    raw.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    await until(() => logs.some((l) => /refused a rendezvous-store connection .*control frame of \d+ bytes/.test(l)), 'garbage logged');
    raw.destroy();
    const good = await StoreClient.connect('127.0.0.1', server.port, 'right-secret', 2000);
    await good.set('k', 'v');
    assert.equal(await good.get('k'), 'v');
    assert.equal(await good.add('n', 2), 2);
    assert.equal(await good.add('n', 3), 5);
    good.close();
  } finally {
    server.close();
  }
});

async function twoRankWorld(logs: string[]): Promise<{ groups: ProcessGroup[]; port: number; secret: string }> {
  const port = await freePort();
  const secret = 'test-secret-0123';
  const common = { transport: 'tcp' as const, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, secret, timeoutMs: 5000, log: (m: string) => logs.push(m) };
  const groups = await Promise.all([initProcessGroup({ ...common, rank: 0 }), initProcessGroup({ ...common, rank: 1 })]);
  return { groups, port, secret };
}

test('a peer connection without the secret is refused and logged; the job carries on', async () => {
  const logs: string[] = [];
  const { groups, port, secret } = await twoRankWorld(logs);
  try {
    const store = await StoreClient.connect('127.0.0.1', port, secret, 2000);
    const addr = await store.get('addr/0');
    store.close();
    // With a loopback master and no bind address given, ranks listen on loopback only.
    assert.match(addr, /^127\.0\.0\.1:\d+$/);
    const [host, p] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
    const intruder = net.connect(p, host);
    const reader = new JsonFrameReader();
    const challenge = (await readOneJson(intruder, reader, 2000, 'intruder')) as { nonce: string };
    assert.equal(typeof challenge.nonce, 'string');
    intruder.write(encodeJson({ rank: 1, nonce: 'aa', proof: '00'.repeat(32) }));
    await until(() => logs.some((l) => /rank 0 refused a connection from .*did not prove knowledge of the job secret/.test(l)), 'intruder logged');
    await until(() => intruder.destroyed || intruder.readableEnded, 'intruder disconnected');
    intruder.destroy();
    const a = new Float64Array([1, 2, 3]);
    const b = new Float64Array([10, 20, 30]);
    await Promise.all([groups[0]!.allReduce(a), groups[1]!.allReduce(b)]);
    assert.deepEqual([...a], [11, 22, 33]);
    assert.deepEqual([...b], [11, 22, 33]);
  } finally {
    await Promise.all(groups.map((g) => g.destroy()));
  }
});

test('a message longer or shorter than the receiver expects is rejected with both sizes', async () => {
  const logs: string[] = [];
  const { groups } = await twoRankWorld(logs);
  try {
    const sent = groups[0]!.send(new Float32Array(10), 1, { tag: 3 });
    await assert.rejects(groups[1]!.recv(new Float32Array(12), 0, { tag: 3 }).wait(), (err: unknown) => {
      assert.ok(err instanceof DistError);
      assert.match(err.message, /rank 0 announced a message of 40 bytes .* but rank 1 expected 48 bytes/);
      return true;
    });
    await sent;
  } finally {
    await Promise.all(groups.map((g) => g.destroy()));
  }
});

test('tcp without a secret is refused with advice', async () => {
  await assert.rejects(
    initProcessGroup({ transport: 'tcp', rank: 0, worldSize: 2, env: {} }),
    /needs a shared secret .*TESSERA_SECRET/,
  );
});

test('a rank whose peers never come fails within its timeout and leaves nothing listening', async () => {
  const port = await freePort();
  const opts = { transport: 'tcp' as const, rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, secret: 's', timeoutMs: 400, log: () => {} };
  await assert.rejects(initProcessGroup(opts), /rank 0 never heard from rank\(s\) 1 within 400 ms/);
  // The store's port was released: a second attempt fails the same way, not with EADDRINUSE.
  await assert.rejects(initProcessGroup(opts), /never heard from rank\(s\) 1/);
});
