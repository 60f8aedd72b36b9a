// The rendezvous store, served by rank 0 (like torch's TCPStore): a key-value map with set,
// get (waits until the key exists), add (atomic counter) and wait. Ranks use it to publish the
// addresses they listen on. Every client must pass the shared-secret handshake first.
import net from 'node:net';
import type { Socket } from 'node:net';
import { newNonce, proof, proofMatches } from './auth.js';
import { encodeJson, JsonFrameReader, readOneJson } from './frames.js';

type Request =
  | { id: number; op: 'set'; key: string; value: string }
  | { id: number; op: 'get'; key: string }
  | { id: number; op: 'add'; key: string; delta: number }
  | { id: number; op: 'wait'; keys: string[] };

type RequestBody = Request extends unknown ? (Request extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never) : never;

type Reply = { id: number; ok: true; value?: string | number } | { id: number; ok: false; error: string };

const HANDSHAKE_MS = 10_000;

export class StoreServer {
  private readonly values = new Map<string, string>();
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly clients = new Set<Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly secret: string,
    private readonly log: (m: string) => void,
  ) {
    server.on('connection', (s) => void this.accept(s));
  }

  static listen(host: string, port: number, secret: string, log: (m: string) => void): Promise<StoreServer> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(`rendezvous store: cannot listen on ${host}:${port} (${err.code ?? err.message}); choose another MASTER_PORT`)),
      );
      server.listen(port, host, () => resolve(new StoreServer(server, secret, log)));
    });
  }

  /** The port it listens on (useful when it was asked for port 0). */
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  close(): void {
    for (const c of this.clients) c.destroy();
    this.server.close();
  }

  private async accept(socket: Socket): Promise<void> {
    const who = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    const reader = new JsonFrameReader();
    const nonce = newNonce();
    try {
      socket.write(encodeJson({ nonce }));
      const hello = (await readOneJson(socket, reader, HANDSHAKE_MS, 'store handshake')) as { proof?: unknown; nonce?: unknown };
      if (!proofMatches(this.secret, hello.proof, 'store', nonce) || typeof hello.nonce !== 'string') {
        throw new Error('it did not prove knowledge of the job secret (TESSERA_SECRET)');
      }
      socket.write(encodeJson({ proof: proof(this.secret, 'store-ack', hello.nonce) }));
    } catch (err) {
      this.log(`tessera dist: refused a rendezvous-store connection from ${who}: ${err instanceof Error ? err.message : String(err)}`);
      socket.destroy();
      return;
    }
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    socket.on('error', () => socket.destroy());
    const serve = (frames: unknown[]) => {
      for (const f of frames) this.handle(socket, f as Request);
    };
    serve(reader.push(Buffer.alloc(0)));
    socket.on('data', (chunk: Buffer) => {
      try {
        serve(reader.push(chunk));
      } catch (err) {
        this.log(`tessera dist: dropped rendezvous-store client ${who}: ${err instanceof Error ? err.message : String(err)}`);
        socket.destroy();
      }
    });
  }

  private handle(socket: Socket, r: Request): void {
    const reply = (m: Reply) => {
      if (!socket.destroyed) socket.write(encodeJson(m));
    };
    switch (r.op) {
      case 'set':
        this.values.set(r.key, r.value);
        reply({ id: r.id, ok: true });
        for (const w of this.waiters.get(r.key) ?? []) w();
        this.waiters.delete(r.key);
        return;
      case 'get':
        this.whenSet([r.key], () => reply({ id: r.id, ok: true, value: this.values.get(r.key)! }));
        return;
      case 'wait':
        this.whenSet(r.keys, () => reply({ id: r.id, ok: true }));
        return;
      case 'add': {
        const next = Number(this.values.get(r.key) ?? '0') + r.delta;
        this.values.set(r.key, String(next));
        reply({ id: r.id, ok: true, value: next });
        for (const w of this.waiters.get(r.key) ?? []) w();
        this.waiters.delete(r.key);
        return;
      }
      default:
        reply({ id: (r as { id: number }).id, ok: false, error: `unknown store operation ${JSON.stringify((r as { op: unknown }).op)}` });
    }
  }

  private whenSet(keys: string[], then: () => void): void {
    const missing = keys.find((k) => !this.values.has(k));
    if (missing === undefined) {
      then();
      return;
    }
    const list = this.waiters.get(missing) ?? [];
    list.push(() => this.whenSet(keys, then));
    this.waiters.set(missing, list);
  }
}

export class StoreClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: string | number | undefined) => void; reject: (e: Error) => void }>();
  private closedError: Error | undefined;
  /** Called when the connection to the store ends while not closing. */
  onLost: ((err: Error) => void) | undefined;

  private constructor(private readonly socket: Socket) {}

  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  /** Connects (retrying while rank 0 starts) and proves the secret. */
  static async connect(host: string, port: number, secret: string, timeoutMs: number): Promise<StoreClient> {
    const until = performance.now() + timeoutMs;
    let lastError = '';
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = net.connect({ host, port }, () => resolve(s));
          s.once('error', reject);
        });
        socket.setNoDelay(true);
        const reader = new JsonFrameReader();
        const challenge = (await readOneJson(socket, reader, HANDSHAKE_MS, 'store handshake')) as { nonce?: unknown };
        if (typeof challenge.nonce !== 'string') throw new Error('the store sent no challenge');
        const mine = newNonce();
        socket.write(encodeJson({ proof: proof(secret, 'store', challenge.nonce), nonce: mine }));
        const ack = (await readOneJson(socket, reader, HANDSHAKE_MS, 'store handshake')) as { proof?: unknown };
        if (!proofMatches(secret, ack.proof, 'store-ack', mine)) {
          socket.destroy();
          throw new Error(`the rendezvous store at ${host}:${port} does not know the job secret; is MASTER_PORT another job's?`);
        }
        const client = new StoreClient(socket);
        client.attach(reader);
        return client;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        if (/does not know the job secret/.test(lastError)) throw err;
        if (performance.now() > until) {
          throw new Error(`cannot reach the rendezvous store at ${host}:${port} within ${timeoutMs} ms (${lastError}); is rank 0 running, and are MASTER_ADDR/MASTER_PORT right?`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  set(key: string, value: string): Promise<void> {
    return this.request({ op: 'set', key, value }).then(() => undefined);
  }

  async get(key: string): Promise<string> {
    return String(await this.request({ op: 'get', key }));
  }

  async add(key: string, delta: number): Promise<number> {
    return Number(await this.request({ op: 'add', key, delta }));
  }

  wait(keys: string[]): Promise<void> {
    return this.request({ op: 'wait', keys }).then(() => undefined);
  }

  close(): void {
    this.closedError = new Error('the rendezvous store client was closed');
    this.socket.end();
    this.socket.destroy();
  }

  private attach(reader: JsonFrameReader): void {
    const onFrames = (frames: unknown[]) => {
      for (const f of frames) {
        const r = f as Reply;
        const p = this.pending.get(r.id);
        if (!p) continue;
        this.pending.delete(r.id);
        if (r.ok) p.resolve(r.value);
        else p.reject(new Error(`rendezvous store: ${r.error}`));
      }
    };
    onFrames(reader.push(Buffer.alloc(0)));
    this.socket.on('data', (chunk: Buffer) => onFrames(reader.push(chunk)));
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      const err = this.closedError ?? new Error('the connection to the rendezvous store (rank 0) closed');
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      if (!this.closedError) this.onLost?.(err);
    });
  }

  private request(body: RequestBody): Promise<string | number | undefined> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(encodeJson({ id, ...body }));
    });
  }
}
