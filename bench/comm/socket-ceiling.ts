// The ceiling for any TCP collective on this machine: two processes on loopback, each writing
// `bytes` and reading `bytes` at the same time (what each rank of a 2-rank all-reduce does, in
// total, per call), with nothing else done with the data. Reported as GB/s per direction; on 2
// ranks, an all-reduce's busbw (= S/t) cannot exceed it, since each rank sends S/2 of input and
// S/2 of result and receives as much. Two ways of reading, each over one connection per
// direction like the transport: 'chosen' reads into one reused 64 KiB buffer (Node's `onread`,
// what the transport does), 'node' takes the Buffers Node allocates per read ('data' events,
// what the transport did before).
// Run alone: `npx tsx bench/comm/socket-ceiling.ts [MB]`; bench:comm measures it too.
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { threadCpuSplitMs } from './thread-cpu.js';

export type CeilingReads = 'chosen' | 'node';

export interface SocketCeiling {
  /** Best-of-rounds GB/s per direction. */
  gbs: number;
  /** This process's CPU per round, ms: user (JavaScript, Node) and system (the kernel). */
  userMs: number;
  systemMs: number;
}

interface Ends {
  /** Opened by this process; the peer writes to it. */
  incoming: net.Socket;
  /** Accepted by this process; it writes to the peer. */
  outgoing: net.Socket;
  /** Bytes read so far and a wake-up for whoever waits on them. */
  state: { got: number; wake: (() => void) | undefined };
}

/** Listens, learns the peer's port through `exchangePort`, connects to it and accepts it. */
async function connectBothWays(reads: CeilingReads, exchangePort: (mine: number) => Promise<number>): Promise<Ends> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const peerPort = await exchangePort((server.address() as net.AddressInfo).port);
  const state: Ends['state'] = { got: 0, wake: undefined };
  const count = (n: number) => {
    state.got += n;
    state.wake?.();
  };
  const memory = new Uint8Array(64 * 1024);
  const onread = reads === 'chosen' ? { buffer: memory, callback: (n: number) => (count(n), true) } : undefined;
  const incoming = await new Promise<net.Socket>((resolve) => {
    const s = net.connect({ port: peerPort, host: '127.0.0.1', ...(onread ? { onread } : {}) }, () => resolve(s));
  });
  if (!onread) incoming.on('data', (chunk: Buffer) => count(chunk.byteLength));
  const outgoing = await accepted;
  server.close();
  for (const s of [incoming, outgoing]) s.setNoDelay(true);
  return { incoming, outgoing, state };
}

/** Both processes run the same rounds in lock step: each round writes `bytes` and waits until it has read as many. */
async function rounds(ends: Ends, bytes: number, count: number): Promise<{ times: number[]; userMs: number; systemMs: number }> {
  const payload = new Uint8Array(bytes).fill(7);
  const times: number[] = [];
  const cpu0 = threadCpuSplitMs();
  for (let i = 1; i <= count; i++) {
    const t0 = performance.now();
    const written = new Promise<void>((resolve) => ends.outgoing.write(payload, () => resolve()));
    await new Promise<void>((resolve) => {
      ends.state.wake = () => {
        if (ends.state.got >= i * bytes) resolve();
      };
      ends.state.wake();
    });
    await written;
    times.push(performance.now() - t0);
  }
  const cpu1 = threadCpuSplitMs();
  ends.incoming.end();
  ends.outgoing.end();
  return { times, userMs: (cpu1.userMs - cpu0.userMs) / count, systemMs: (cpu1.systemMs - cpu0.systemMs) / count };
}

/** Best-of-`count` GB/s per direction for `bytes` each way at once over loopback, and this side's CPU per round. */
export async function socketCeiling(bytes: number, reads: CeilingReads = 'chosen', count = 5): Promise<SocketCeiling> {
  const child = fork(fileURLToPath(import.meta.url), ['--peer', reads, String(bytes), String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ends = await connectBothWays(reads, async (mine) => {
    const theirs = new Promise<number>((resolve) => child.once('message', (m) => resolve(Number(m))));
    child.send(mine);
    return theirs;
  });
  const r = await rounds(ends, bytes, count);
  await new Promise((resolve) => child.once('exit', resolve));
  return { gbs: bytes / 1e9 / (Math.min(...r.times) / 1000), userMs: r.userMs, systemMs: r.systemMs };
}

/** The chosen-reads ceiling in GB/s per direction (what bench:comm reports next to the TCP busbw). */
export async function socketCeilingGBs(bytes: number, count = 5): Promise<number> {
  return (await socketCeiling(bytes, 'chosen', count)).gbs;
}

async function peer(reads: CeilingReads, bytes: number, count: number): Promise<void> {
  const ends = await connectBothWays(reads, async (mine) => {
    const theirs = new Promise<number>((resolve) => process.once('message', (m) => resolve(Number(m))));
    process.send!(mine);
    return theirs;
  });
  await rounds(ends, bytes, count);
  process.disconnect();
}

const self = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (self && process.argv[2] === '--peer') {
  await peer(process.argv[3] as CeilingReads, Number(process.argv[4]), Number(process.argv[5]));
} else if (self) {
  const mb = Number(process.argv[2] ?? 64);
  for (const reads of ['chosen', 'node'] as const) {
    const c = await socketCeiling(mb * 1024 * 1024, reads);
    console.log(
      `loopback, one connection per direction, ${mb} MB each way at once, ${reads} reads: ${c.gbs.toFixed(2)} GB/s per direction; ` +
        `CPU per round ${(c.userMs + c.systemMs).toFixed(0)} ms (system ${c.systemMs.toFixed(0)} ms)`,
    );
  }
}
