// Ranks as processes connected by TCP. Rendezvous: rank 0 serves the store; every rank listens
// on an ephemeral port of its bind address, publishes it, and connects to every other rank.
// Each pair of ranks thus has two connections, one per direction: a rank reads its peer's data
// from the connection it opened and writes its own data on the one it accepted. Reading only
// from connections it opened lets it read into memory of its choosing (ChosenReads; Node's
// `onread` exists only for sockets it connects), which saves an allocation per read; the two
// directions also get a socket, and socket buffers, each. Every connection starts with a mutual
// shared-secret handshake; anything else is refused and logged. A connection that closes
// without the peer's goodbye frame means the peer is lost, which fails every operation.
import net from 'node:net';
import type { Socket } from 'node:net';
import type { Deadline } from '../deadline.js';
import { remainingMs } from '../deadline.js';
import { DistError, DistTimeoutError, PeerLostError } from '../errors.js';
import { PeerTransport } from '../peer-transport.js';
import { newNonce, proof, proofMatches } from './auth.js';
import { ChosenReads } from './chosen-reads.js';
import { DataFrameReader, encodeDataHeader, encodeJson, JsonFrameReader, KIND_ABORT, KIND_BYE, KIND_DATA, readOneJson } from './frames.js';
import type { DataFrameHandlers } from './frames.js';
import { StoreClient, StoreServer } from './store.js';

export interface TcpOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Address to listen on for peers; see chooseBindAddress. */
  bindAddr: string | undefined;
  secret: string;
  /** Limit for connecting, ms. */
  timeoutMs: number;
  log: (message: string) => void;
  /** Largest message accepted from a peer, bytes (default 2^34). */
  maxMessageBytes?: number;
}

const HANDSHAKE_MS = 10_000;

function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr === '::1' || addr.startsWith('127.');
}

/** Loopback unless told otherwise; with a remote master, the interface that reaches it. */
function chooseBindAddress(o: TcpOptions, store: StoreClient): string {
  if (o.bindAddr) return o.bindAddr;
  if (isLoopback(o.masterAddr)) return '127.0.0.1';
  const local = store.localAddress;
  if (!local) throw new Error('tcp transport: cannot tell which local address reaches the master; set TESSERA_BIND_ADDR');
  return local.replace(/^::ffff:/, '');
}

/** The two connections between this rank and one peer. */
interface PeerLink {
  /** Opened by this rank: carries the peer's data to this rank. */
  incoming: Socket | undefined;
  /** Accepted by this rank: carries this rank's data to the peer. */
  outgoing: Socket | undefined;
}

export class TcpTransport extends PeerTransport {
  readonly kind = 'tcp' as const;
  private readonly links: PeerLink[];
  private closing = false;

  constructor(
    rank: number,
    worldSize: number,
    private readonly server: net.Server,
    private readonly store: StoreClient,
    private readonly storeServer: StoreServer | undefined,
    private readonly maxMessageBytes: number,
  ) {
    super(rank, worldSize);
    this.links = Array.from({ length: worldSize }, () => ({ incoming: undefined, outgoing: undefined }));
    // After rendezvous the store is not needed; losing it alone is not a fault.
    store.onLost = () => {};
  }

  /**
   * Takes over the authenticated connection that this rank opened to `peer`, on which the peer
   * sends its data; `early` holds bytes read past the handshake.
   */
  adoptIncoming(peer: number, socket: Socket, reads: ChosenReads, early: Buffer): void {
    this.links[peer]!.incoming = socket;
    const mailbox = this.mailboxes[peer]!;
    const reader = this.watch(peer, socket, 'incoming', (tag, length) => mailbox.begin(tag, length), () => {
      mailbox.close(new PeerLostError(peer, 'it closed its process group'));
    });
    if (early.length > 0) reader(early);
    reads.deliverTo(reader.push, reader.nextChunkOffset, reader.nextReadTarget);
  }

  /**
   * Takes over the authenticated connection that `peer` opened to this rank, on which this rank
   * sends its data. The peer sends only control frames (goodbye, abort) this way.
   */
  adoptOutgoing(peer: number, socket: Socket, early: Buffer): void {
    this.links[peer]!.outgoing = socket;
    const reader = this.watch(
      peer,
      socket,
      'outgoing',
      () => {
        throw new Error(`it sent data on the connection that carries rank ${this.rank}'s data to it`);
      },
      // Its goodbye on the other connection closes the mailbox: data may still be arriving there.
      () => {},
    );
    if (early.length > 0) reader(early);
    socket.on('data', reader.push);
  }

  /**
   * Parses what `peer` sends on `socket`, and fails the transport when the socket closes without
   * the peer's goodbye or the stream breaks the protocol. Returns the function that takes the
   * socket's bytes (also as `.push`) and where the reader would like the next read to go
   * (`.nextChunkOffset`, `.nextReadTarget`).
   */
  private watch(
    peer: number,
    socket: Socket,
    which: 'incoming' | 'outgoing',
    begin: DataFrameHandlers['begin'],
    onBye: () => void,
  ): ((chunk: Uint8Array) => void) & { push: (chunk: Uint8Array) => void; nextChunkOffset: () => number; nextReadTarget: () => Uint8Array | undefined } {
    let saidBye = false;
    const reader = new DataFrameReader(
      {
        begin,
        bye: () => {
          saidBye = true;
          onBye();
        },
        abort: (lostRank) => {
          saidBye = true;
          const reason = lostRank === peer ? 'its operation failed' : lostRank === this.rank ? `rank ${peer} lost contact with this rank` : `rank ${peer} lost it`;
          this.fail(new PeerLostError(lostRank, reason));
        },
      },
      this.maxMessageBytes,
      `rank ${peer}`,
    );
    const push = (chunk: Uint8Array) => {
      try {
        reader.push(chunk);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        this.fail(new PeerLostError(peer, `protocol error on its ${which} connection: ${msg}`));
        socket.destroy();
      }
    };
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.closing || saidBye) return;
      this.fail(new PeerLostError(peer, `its ${which} connection closed: the process died or the network failed`));
    });
    return Object.assign(push, { push, nextChunkOffset: () => reader.nextChunkOffset(), nextReadTarget: () => reader.nextReadTarget() });
  }

  protected sendBytes(peer: number, tag: number, bytes: Uint8Array, deadline: Deadline): Promise<void> {
    const socket = this.links[peer]!.outgoing;
    if (!socket || socket.destroyed) return Promise.reject(new PeerLostError(peer, 'there is no open connection to it'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new DistTimeoutError(peer, deadline.operation, deadline.timeoutMs);
        this.fail(err);
        reject(err);
      }, remainingMs(deadline));
      socket.cork();
      socket.write(encodeDataHeader(KIND_DATA, tag, bytes.byteLength));
      // The callback runs once the bytes are handed to the kernel; until then Node reads from `bytes`.
      socket.write(bytes, (err) => {
        clearTimeout(timer);
        if (err) reject(new PeerLostError(peer, `sending to it failed: ${err.message}`));
        else resolve();
      });
      socket.uncork();
    });
  }

  private allSockets(): Socket[] {
    const out: Socket[] = [];
    for (const link of this.links) {
      if (link.outgoing && !link.outgoing.destroyed) out.push(link.outgoing);
      if (link.incoming && !link.incoming.destroyed) out.push(link.incoming);
    }
    return out;
  }

  protected override onFail(err: Error): void {
    // Nothing more will be read or written correctly. Tell the peers which rank was lost (so
    // that all ranks name the same one) and free them from waiting on us; on both connections,
    // since a fault may have cut either.
    const lost = err instanceof PeerLostError ? err.lostRank : err instanceof DistTimeoutError ? err.waitingFor : this.rank;
    for (const s of this.allSockets()) {
      if (!this.closing) s.write(encodeDataHeader(KIND_ABORT, lost, 0));
      s.end();
      setTimeout(() => s.destroy(), 500).unref();
    }
    this.server.close();
    this.storeServer?.close();
    this.store.close();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // A goodbye on each connection, so that each side of each can tell an orderly end from a cut.
    const ends = this.allSockets().map(
      (s) =>
        new Promise<void>((resolve) => {
          s.write(encodeDataHeader(KIND_BYE, 0, 0));
          s.end(() => resolve());
          setTimeout(resolve, 1000).unref();
        }),
    );
    await Promise.all(ends);
    this.fail(this.closedError());
    this.server.close();
    this.storeServer?.close();
    this.store.close();
  }
}

export async function connectTcpTransport(o: TcpOptions): Promise<TcpTransport> {
  const storeServer = o.rank === 0 ? await StoreServer.listen(o.masterAddr, o.masterPort, o.secret, o.log) : undefined;
  let store: StoreClient | undefined;
  let server: net.Server | undefined;
  let transport: TcpTransport | undefined;
  try {
    store = await StoreClient.connect(o.masterAddr, o.masterPort, o.secret, o.timeoutMs);
    const bindAddr = chooseBindAddress(o, store);
    const listener = net.createServer();
    server = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(`tcp transport: cannot listen on ${bindAddr} (${err.code ?? err.message}); set TESSERA_BIND_ADDR to an address of this host`)),
      );
      listener.listen(0, bindAddr, () => resolve());
    });
    const port = (listener.address() as net.AddressInfo).port;
    const t = new TcpTransport(o.rank, o.worldSize, listener, store, storeServer, o.maxMessageBytes ?? 2 ** 34);
    transport = t;

    // Accept every other rank: each accepted connection carries this rank's data to that rank.
    const expected = new Set<number>();
    for (let r = 0; r < o.worldSize; r++) if (r !== o.rank) expected.add(r);
    let acceptTimer: ReturnType<typeof setTimeout> | undefined;
    const accepted = new Promise<void>((resolve, reject) => {
      if (expected.size === 0) {
        resolve();
        return;
      }
      acceptTimer = setTimeout(
        () => reject(new DistError(`tcp transport: rank ${o.rank} never heard from rank(s) ${[...expected].join(', ')} within ${o.timeoutMs} ms; are they running with the same MASTER_ADDR/MASTER_PORT?`)),
        o.timeoutMs,
      );
      listener.on('connection', (socket) => {
        void acceptPeer(socket, o, expected).then((result) => {
          if (!result) return;
          t.adoptOutgoing(result.peer, socket, result.early);
          if (expected.size === 0) {
            clearTimeout(acceptTimer);
            resolve();
          }
        });
      });
    });
    accepted.catch(() => {}); // awaited below; this only keeps an early rejection from counting as unhandled
    await store.set(`addr/${o.rank}`, `${bindAddr}:${port}`);
    // Connect to every other rank: each connection this rank opens carries that rank's data here.
    const client = store;
    const connected = Promise.all(
      Array.from({ length: o.worldSize }, async (_, peer) => {
        if (peer === o.rank) return;
        const addr = await withTimeout(client.get(`addr/${peer}`), o.timeoutMs, `tcp transport: rank ${peer} did not publish its address within ${o.timeoutMs} ms; is it running?`);
        const i = addr.lastIndexOf(':');
        const { socket, reads, early } = await connectPeer(addr.slice(0, i), Number(addr.slice(i + 1)), peer, o);
        t.adoptIncoming(peer, socket, reads, early);
      }),
    );
    connected.catch(() => {}); // awaited below, after `accepted`, whose error names the missing ranks
    try {
      await accepted;
    } finally {
      clearTimeout(acceptTimer);
    }
    await connected;
    return t;
  } catch (err) {
    // Leave nothing listening or connected behind a failed start.
    if (transport) transport.fail(err instanceof Error ? err : new DistError(String(err)));
    server?.close();
    store?.close();
    storeServer?.close();
    throw err;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DistError(message)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new DistError(String(e)));
      },
    );
  });
}

async function acceptPeer(socket: Socket, o: TcpOptions, expected: Set<number>): Promise<{ peer: number; early: Buffer } | undefined> {
  const who = `${socket.remoteAddress}:${socket.remotePort}`;
  socket.setNoDelay(true);
  const reader = new JsonFrameReader();
  const nonce = newNonce();
  try {
    socket.write(encodeJson({ nonce }));
    const hello = (await readOneJson(socket, reader, HANDSHAKE_MS, 'peer handshake')) as { rank?: unknown; nonce?: unknown; proof?: unknown };
    const peer = hello.rank;
    if (typeof peer !== 'number' || !proofMatches(o.secret, hello.proof, 'peer', nonce, peer, o.rank)) {
      throw new Error('it did not prove knowledge of the job secret (TESSERA_SECRET)');
    }
    if (!expected.has(peer)) throw new Error(`it claims rank ${peer}, which is not another rank of this job still to connect to rank ${o.rank}`);
    if (typeof hello.nonce !== 'string') throw new Error('its hello carried no nonce');
    expected.delete(peer);
    socket.write(encodeJson({ proof: proof(o.secret, 'peer-ack', hello.nonce, o.rank) }));
    return { peer, early: reader.rest() };
  } catch (err) {
    o.log(`tessera dist: rank ${o.rank} refused a connection from ${who}: ${err instanceof Error ? err.message : String(err)}`);
    socket.destroy();
    return undefined;
  }
}

async function connectPeer(host: string, port: number, peer: number, o: TcpOptions): Promise<{ socket: Socket; reads: ChosenReads; early: Buffer }> {
  const reads = new ChosenReads();
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = net.connect({ host, port, onread: reads.onread }, () => resolve(s));
    s.once('error', (err) => reject(new DistError(`tcp transport: rank ${o.rank} cannot connect to rank ${peer} at ${host}:${port} (${err.message})`)));
  });
  socket.setNoDelay(true);
  const reader = new JsonFrameReader();
  const challenge = (await readOneJson(socket, reader, HANDSHAKE_MS, `handshake with rank ${peer}`, reads.copies)) as { nonce?: unknown };
  if (typeof challenge.nonce !== 'string') throw new DistError(`rank ${peer} at ${host}:${port} sent no challenge`);
  const mine = newNonce();
  socket.write(encodeJson({ rank: o.rank, nonce: mine, proof: proof(o.secret, 'peer', challenge.nonce, o.rank, peer) }));
  const ack = (await readOneJson(socket, reader, HANDSHAKE_MS, `handshake with rank ${peer}`, reads.copies)) as { proof?: unknown };
  if (!proofMatches(o.secret, ack.proof, 'peer-ack', mine, peer)) {
    socket.destroy();
    const msg = `the listener at ${host}:${port} did not prove it is rank ${peer} of this job`;
    o.log(`tessera dist: rank ${o.rank} refused ${msg}`);
    throw new DistError(`tcp transport: ${msg}`);
  }
  return { socket, reads, early: reader.rest() };
}
