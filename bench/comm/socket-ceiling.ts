// The ceiling for any TCP collective on this machine: two processes on a loopback socket pair,
// each writing `bytes` and reading `bytes` at the same time (what each rank of a 2-rank
// all-reduce does, in total, per call), with nothing else done with the data. Reported as
// GB/s per direction; on 2 ranks, an all-reduce's busbw (= S/t) cannot exceed it, since each
// rank sends S/2 of input and S/2 of result and receives as much.
// Run alone: `npx tsx bench/comm/socket-ceiling.ts [MB]`; bench:comm measures it too.
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Both processes run the same rounds in lock step: each round writes `bytes` and waits until it
 * has read as many (one listener for the whole run, so that a peer that starts its next round
 * early loses nothing).
 */
async function rounds(socket: net.Socket, bytes: number, count: number): Promise<number[]> {
  const payload = new Uint8Array(bytes).fill(7);
  let got = 0;
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    got += chunk.byteLength;
    wake?.();
  });
  const times: number[] = [];
  for (let i = 1; i <= count; i++) {
    const t0 = performance.now();
    const written = new Promise<void>((resolve) => socket.write(payload, () => resolve()));
    await new Promise<void>((resolve) => {
      wake = () => {
        if (got >= i * bytes) resolve();
      };
      wake();
    });
    await written;
    times.push(performance.now() - t0);
  }
  return times;
}

/** Best-of-`count` GB/s per direction for `bytes` each way at once over loopback. */
export async function socketCeilingGBs(bytes: number, count = 5): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const child = fork(fileURLToPath(import.meta.url), ['--peer', String(port), String(bytes), String(count)], { stdio: 'inherit' });
  const socket = await new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  socket.setNoDelay(true);
  const times = await rounds(socket, bytes, count);
  socket.end();
  server.close();
  await new Promise((resolve) => child.once('exit', resolve));
  return bytes / 1e9 / (Math.min(...times) / 1000);
}

async function peer(port: number, bytes: number, count: number): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.setNoDelay(true);
  await rounds(socket, bytes, count);
  socket.end();
}

const self = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (self && process.argv[2] === '--peer') {
  await peer(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
} else if (self) {
  const mb = Number(process.argv[2] ?? 64);
  console.log(`loopback socket pair, ${mb} MB each way at once: ${(await socketCeilingGBs(mb * 1024 * 1024)).toFixed(2)} GB/s per direction`);
}
