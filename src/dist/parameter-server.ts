// A parameter server (Li et al. 2014, OSDI; Ho et al. 2013, NIPS for stale synchronous
// parallel): ranks 0..S−1 are servers, each holding one contiguous range of the parameters and
// the optimizer of that range; ranks S..S+W−1 are workers that compute gradients on their own
// data, push each server its slice, and pull every server's range back. Three consistency models:
//   bsp — bulk synchronous: a server waits for every worker's gradient of a step, applies their
//         average once, and answers everyone with the same new parameters (synchronous SGD: the
//         same steps as one process on the union of the workers' batches);
//   asp — asynchronous: a server applies each gradient the moment it arrives and answers that
//         worker at once; workers never wait for each other (gradients may be computed on stale
//         parameters, without bound);
//   ssp — stale synchronous with staleness s: like asp, but a worker that has pushed c gradients
//         is answered only once every worker has pushed at least c − s, so no worker runs more
//         than s steps ahead of the slowest.
// Each server decides on its own, from the clocks that come with the pushes; since a worker
// pushes the same clock to every server and waits for all of them, the rule that holds at each
// server holds for the whole model.
//
// The layout, as in ZeRO: the trainable parameters are laid end to end (registration order) and
// the flat vector is cut into S contiguous ranges as equal as possible (the first n mod S one
// element longer). Cuts fall by element, inside parameters where they must, so that shards are
// balanced whatever the parameter sizes. A server's optimizer gets the model's own parameter
// when the parameter lies wholly in its range (so that S = 1 is the plain optimizer over the
// model) and a 1-D parameter holding the slice otherwise; elementwise optimizers (SGD, Adam,
// AdamW, RMSprop, Adagrad) then take exactly the steps they would on the whole tensor.
//
// Messages are point-to-point, all float64: a push to server k is [clock, gradient of range k]
// (clock −1: the worker is done), a reply is [server version, slowest clock, range k].
//
// A server can checkpoint its state (its range, its optimizer's state, its version, the workers'
// clocks, and the layout) every N updates and at the end; `resumeFrom` restores every server
// from its file and gives the workers the saved parameters and clocks (see `create`).
//
//   const ps = await ParameterServer.create(model, group, { mode: 'ssp', staleness: 2, servers: 2 });
//   if (ps.isServer) await ps.serve((params) => new optim.SGD(params, { lr: 0.1 }));
//   else { for (...) { ps.model.zeroGrad(); loss(...).backward(); await ps.pushPull(); } await ps.done(); }
import { TesseraError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { loadState, saveState } from '../io/checkpoint.js';
import { checkWritable } from '../io/file.js';
import { Parameter, type AnyModule } from '../nn/module.js';
import { assignValues } from '../nn/inplace.js';
import { tensor } from '../ops/creation.js';
import type { BaseOptions, Optimizer, OptimizerStateDict } from '../optim/optimizer.js';
import { evenBlocks, type Blocks } from './partition.js';
import type { ProcessGroup } from './process-group.js';
import { broadcastTensors } from './tensor-sync.js';

export type ConsistencyModel = 'bsp' | 'asp' | 'ssp';

export interface ParameterServerCheckpoint {
  /**
   * The file each server writes; `{server}` stands for the server's index (0..S−1) and is
   * required with more than one server, so that every server has its own file.
   */
  path: string;
  /** Also save after every `every` updates (by version: 2, 4, ... for every = 2); default: only at the end. */
  every?: number;
}

export interface ParameterServerOptions {
  mode: ConsistencyModel;
  /** For ssp: how many steps a worker may run ahead of the slowest one (0 = lock step). */
  staleness?: number;
  /** Server ranks (the first `servers` ranks of the group), each owning one range of the parameters. Default 1. */
  servers?: number;
  /** Servers save their state atomically to these files (see ParameterServerCheckpoint). */
  checkpoint?: ParameterServerCheckpoint;
  /**
   * Resume from the files a run with the same layout saved (a path as in `checkpoint.path`):
   * servers restore their ranges, optimizer states (loaded into the optimizer serve() builds),
   * versions and the workers' clocks; workers start from the saved parameters and clocks.
   * Every rank passes the same options.
   */
  resumeFrom?: string;
}

/** What a worker learns with each pull. */
export interface PullInfo {
  /** Updates the servers had applied when they answered (the fewest over the servers). */
  serverVersion: number;
  /** This worker's clock (gradients pushed so far). */
  clock: number;
  /** The fewest gradients any worker had pushed when the servers answered (the fewest any server saw). */
  slowestClock: number;
}

/** One server's range of the flat parameter vector. */
export interface ParameterShard {
  readonly start: number;
  readonly count: number;
}

/** The piece of one trainable parameter that lies in a server's range. */
interface Piece {
  readonly param: Parameter;
  /** First element of the piece within the parameter's (row-major) values. */
  readonly from: number;
  readonly size: number;
  /** Where the piece starts within the server's range. */
  readonly at: number;
}

/** What a server restored from its checkpoint, waiting for serve() to build the optimizer. */
interface Resumed {
  readonly file: string;
  readonly optimizer: { name: string } & OptimizerStateDict;
  /** The server's range of the flat parameter vector. */
  readonly range: Float64Array;
  readonly version: number;
  readonly clocks: number[];
}

const PUSH_TAG = 7001;
const REPLY_TAG = 7002;
const DONE = -1;
const CHECKPOINT_FORMAT = 'tessera.ParameterServer/1';

export class ParameterServer {
  private readonly params: Parameter[];
  /** Elements of the trainable parameters, laid end to end. */
  private readonly size: number;
  /** The servers' ranges of the flat vector, in server order. */
  private readonly blocks: Blocks;
  private pushes = 0;
  private resumed: Resumed | undefined;

  private constructor(
    readonly model: AnyModule,
    readonly group: ProcessGroup,
    readonly mode: ConsistencyModel,
    readonly staleness: number,
    /** Server ranks: ranks 0..servers−1 serve, the rest are workers. */
    readonly servers: number,
    private readonly checkpoint: ParameterServerCheckpoint | undefined,
  ) {
    this.params = model.parameters().filter((p) => p.requiresGrad);
    this.size = this.params.reduce((n, p) => n + p.size, 0);
    this.blocks = evenBlocks(this.size, servers);
  }

  /**
   * Every rank builds the same model structure and passes the same options; rank 0's initial
   * parameters become everyone's (or, with resumeFrom, the saved ones). A collective.
   */
  static async create(model: AnyModule, group: ProcessGroup, options: ParameterServerOptions): Promise<ParameterServer> {
    const servers = options.servers ?? 1;
    if (group.size < 2) throw new TesseraError('ParameterServer: needs a server (rank 0) and at least one worker; the group has one rank.');
    if (!Number.isInteger(servers) || servers < 1 || servers >= group.size) {
      throw new TesseraError(`ParameterServer: servers must be an integer from 1 to ${group.size - 1} (the group's ${group.size} ranks less at least one worker), got ${String(servers)}.`);
    }
    const staleness = options.mode === 'ssp' ? options.staleness ?? 0 : options.mode === 'bsp' ? 0 : Infinity;
    if (options.mode !== 'bsp' && options.mode !== 'asp' && options.mode !== 'ssp') throw new TesseraError(`ParameterServer: mode must be bsp, asp or ssp, got '${String(options.mode)}'.`);
    if (!(staleness >= 0)) throw new TesseraError(`ParameterServer: staleness must be a non-negative integer, got ${String(options.staleness)}.`);
    const elements = model.parameters().filter((p) => p.requiresGrad).reduce((n, p) => n + p.size, 0);
    if (servers > 1 && elements < servers) throw new TesseraError(`ParameterServer: ${elements} trainable parameter elements cannot be split over ${servers} servers; use at most ${Math.max(1, elements)}.`);
    const { checkpoint, resumeFrom } = options;
    if (checkpoint !== undefined) {
      checkPath(checkpoint.path, servers, 'checkpoint.path');
      if (checkpoint.every !== undefined && !(Number.isInteger(checkpoint.every) && checkpoint.every >= 1)) {
        throw new TesseraError(`ParameterServer: checkpoint.every must be a positive integer (updates between saves), got ${String(checkpoint.every)}.`);
      }
    }
    if (resumeFrom !== undefined) checkPath(resumeFrom, servers, 'resumeFrom');
    await broadcastTensors(group, model.parameters(), 0, 'ParameterServer.create');
    const ps = new ParameterServer(model, group, options.mode, staleness, servers, checkpoint);
    if (checkpoint !== undefined) {
      // A save that fails later would stop a server while its workers wait for replies: check
      // the servers' paths now, on every rank's behalf.
      await ps.everyServer(`write checkpoint.path "${checkpoint.path}"`, async () => { await checkWritable(ParameterServer.checkpointFile(checkpoint.path, group.rank)); });
    }
    if (resumeFrom !== undefined) await ps.resume(resumeFrom);
    return ps;
  }

  /**
   * Runs `fn` on every server and lets every rank learn whether all of them succeeded: a server's
   * own error is thrown on it, the others throw one that names the failed servers.
   */
  private async everyServer(what: string, fn: () => Promise<void>): Promise<void> {
    const failed = new Float64Array(this.servers);
    let error: unknown;
    if (this.isServer) {
      try {
        await fn();
      } catch (e) {
        error = e;
        failed[this.group.rank] = 1;
      }
    }
    await this.group.allReduce(failed);
    if (error !== undefined) throw error instanceof TesseraError ? error : new TesseraError(`ParameterServer.create: could not ${what}: ${String((error as Error).message ?? error)}`);
    const bad = [...failed.keys()].filter((k) => failed[k] !== 0);
    if (bad.length > 0) {
      throw new TesseraError(`ParameterServer.create: server${bad.length > 1 ? 's' : ''} ${bad.join(', ')} could not ${what}; ${bad.length > 1 ? 'their ranks say' : 'its rank says'} why.`);
    }
  }

  /** The file server `server` saves to and resumes from, given a path as in `checkpoint.path`. */
  static checkpointFile(path: string, server: number): string {
    return path.replaceAll('{server}', String(server));
  }

  get isServer(): boolean { return this.group.rank < this.servers; }
  get workers(): number { return this.group.size - this.servers; }
  /** Every server's range of the flat parameter vector (trainable parameters end to end), in server order. */
  get shards(): ParameterShard[] {
    return this.blocks.counts.map((count, k) => ({ start: this.blocks.offsets[k]!, count }));
  }
  /** This server's range; undefined on a worker. */
  get shard(): ParameterShard | undefined {
    return this.isServer ? this.shards[this.group.rank] : undefined;
  }
  /** Worker: gradients pushed so far; after a resume, counting those before it (the step to go on from). */
  get clock(): number { return this.pushes; }

  /**
   * Worker: sends each server its slice of this replica's gradients, waits for every server's
   * answer (which consistency model decides when), and loads the parameters they carry. Clears
   * nothing: call zeroGrad.
   */
  async pushPull(): Promise<PullInfo> {
    this.assertWorker('pushPull');
    const gradient = new Float64Array(this.size);
    let offset = 0;
    for (const p of this.params) {
      const g = p._peekGrad(); // not marked seen: zeroGrad can still dispose it (tensor.ts)
      if (g !== undefined) gradient.set(g.data(), offset);
      offset += p.size;
    }
    const clock = ++this.pushes;
    const replies = await Promise.all(this.shards.map(async ({ start, count }, server) => {
      const push = new Float64Array(1 + count);
      push[0] = clock;
      push.set(gradient.subarray(start, start + count), 1);
      const [reply] = await Promise.all([
        this.group.recv(new Float64Array(2 + count), server, { tag: REPLY_TAG }).wait(),
        this.group.send(push, server, { tag: PUSH_TAG }).wait(),
      ]);
      return reply;
    }));
    const values = new Float64Array(this.size);
    replies.forEach((reply, server) => values.set(reply.subarray(2), this.blocks.offsets[server]));
    this.loadFlat(values, 'ParameterServer.pushPull');
    return {
      serverVersion: Math.min(...replies.map((r) => r[0]!)),
      clock,
      slowestClock: Math.min(...replies.map((r) => r[1]!)),
    };
  }

  /** Worker: tells every server this worker has no more gradients. */
  async done(): Promise<void> {
    this.assertWorker('done');
    await Promise.all(this.shards.map(({ count }, server) => {
      const push = new Float64Array(1 + count);
      push[0] = DONE;
      return this.group.send(push, server, { tag: PUSH_TAG }).wait();
    }));
  }

  /**
   * Server: applies the workers' gradients to this server's range with the optimizer that
   * `makeOptimizer` builds over the parameters it is given (the model's own parameters that lie
   * wholly in the range, 1-D slices of those cut by its ends), until every worker has called
   * done(). Returns the server's version: the updates applied, counting those before a resume.
   */
  async serve(makeOptimizer: (params: Parameter[]) => Optimizer<BaseOptions>): Promise<number> {
    if (!this.isServer) {
      throw new TesseraError(this.servers === 1
        ? 'ParameterServer.serve: only rank 0 serves; workers call pushPull() and done().'
        : `ParameterServer.serve: only ranks 0..${this.servers - 1} serve; rank ${this.group.rank} is a worker: call pushPull() and done().`);
    }
    const { start, count } = this.shard!;
    const pieces = this.piecesOf(start, count);
    // A piece that is a whole parameter is the parameter itself; a cut one gets its own storage,
    // written back into the model after each update so that the server's model shows its range.
    const tensors = pieces.map((pc) => pc.size === pc.param.size ? pc.param
      : new Parameter(tensor(pc.param.data().slice(pc.from, pc.from + pc.size), { shape: [pc.size], dtype: pc.param.dtype, backend: pc.param.storage.backend.name })));
    const optimizer = makeOptimizer(tensors);
    const known = new Set<Tensor>(tensors);
    for (const g of optimizer.paramGroups) {
      for (const p of g.params) {
        if (!known.has(p)) throw new TesseraError('ParameterServer.serve: makeOptimizer must build the optimizer over the parameters it is given (this server\'s range), not the model\'s.');
      }
    }
    const workers = Array.from({ length: this.workers }, (_, k) => k + this.servers);
    const clocks = new Map<number, number>(workers.map((w, k) => [w, this.resumed?.clocks[k] ?? 0]));
    let version = this.resumed?.version ?? 0;
    if (this.resumed !== undefined) this.loadOptimizer(optimizer, this.resumed);
    this.resumed = undefined;
    let savedVersion = version; // nothing new to save until an update
    const finished = new Set<number>();
    /** Workers waiting for an answer, with the clock they pushed. */
    const waiting = new Map<number, number>();
    /** bsp: the pushes of the current step, by worker (summed in worker order, so runs repeat bit for bit). */
    const pending = new Map<number, Float64Array>();
    // A failed receive (a worker lost) is held as a value until the loop takes it, so that it
    // never goes unhandled while the server is busy answering.
    const receive = (w: number) => this.group.recv(new Float64Array(1 + count), w, { tag: PUSH_TAG }).wait()
      .then((msg) => ({ w, msg, error: undefined }), (error: unknown) => ({ w, msg: new Float64Array(0), error }));
    const inbox = new Map(workers.map((w) => [w, receive(w)]));

    const slowest = (): number => Math.min(...[...clocks].filter(([w]) => !finished.has(w)).map(([, c]) => c), Infinity);
    const apply = (gradient: Float64Array, scale: number): void => {
      pieces.forEach((pc, i) => {
        const t = tensors[i]!;
        const g = Array.from(gradient.subarray(pc.at, pc.at + pc.size), (v) => v * scale);
        // Unseen, so the optimizer's zeroGrad below disposes it rather than leaving it to the collector.
        t._replaceGrad(tensor(g, { shape: [...t.shape], dtype: t.dtype, backend: t.storage.backend.name }), true);
      });
      optimizer.step();
      optimizer.zeroGrad();
      pieces.forEach((pc, i) => {
        if (tensors[i] === pc.param) return;
        const whole = pc.param.data().slice();
        whole.set(tensors[i]!.data(), pc.from);
        assignValues(pc.param, whole, 'ParameterServer.serve');
      });
      version++;
    };
    const range = (): Float64Array => {
      const values = new Float64Array(count);
      pieces.forEach((pc, i) => values.set(tensors[i]!.data(), pc.at));
      return values;
    };
    const save = async (): Promise<void> => {
      if (this.checkpoint === undefined || savedVersion === version) return;
      savedVersion = version;
      await saveState(ParameterServer.checkpointFile(this.checkpoint.path, this.group.rank), {
        format: CHECKPOINT_FORMAT,
        ...this.layout(),
        shard: { start, count },
        version,
        clocks: workers.map((w) => clocks.get(w)!),
        params: tensor(range(), { shape: [count], dtype: 'float64', backend: 'cpu' }),
        optimizer: { name: optimizer.constructor.name, ...optimizer.stateDict() },
      });
    };
    const answer = async (): Promise<void> => {
      const low = slowest();
      const sends: Promise<void>[] = [];
      let values: Float64Array | undefined;
      for (const [w, c] of [...waiting]) {
        if (c - low > this.staleness) continue;
        waiting.delete(w);
        values ??= range();
        const reply = new Float64Array(2 + count);
        reply[0] = version;
        reply[1] = low === Infinity ? c : low;
        reply.set(values, 2);
        sends.push(this.group.send(reply, w, { tag: REPLY_TAG }).wait());
      }
      await Promise.all(sends);
    };

    while (inbox.size > 0) {
      const { w, msg, error } = await Promise.race(inbox.values());
      if (error !== undefined) throw error;
      inbox.delete(w);
      if (msg[0] === DONE) {
        finished.add(w);
      } else {
        clocks.set(w, msg[0]!);
        waiting.set(w, msg[0]!);
        inbox.set(w, receive(w));
        if (this.mode === 'bsp') pending.set(w, msg.subarray(1));
        else apply(msg.subarray(1), 1);
      }
      // bsp: the step is complete once every worker still running has pushed its gradient.
      if (this.mode === 'bsp' && pending.size > 0 && pending.size === this.workers - finished.size) {
        const sum = new Float64Array(count);
        for (const worker of workers) {
          const g = pending.get(worker);
          if (g !== undefined) for (let i = 0; i < count; i++) sum[i] += g[i]!;
        }
        apply(sum, 1 / pending.size);
        pending.clear();
      }
      // Saved before answering: what a worker has been told is never newer than the file.
      if (this.checkpoint?.every !== undefined && version % this.checkpoint.every === 0) await save();
      // bsp answers once the step's update is applied (nobody is waiting on a partial sum).
      if (this.mode !== 'bsp' || pending.size === 0) await answer();
    }
    await save();
    return version;
  }

  /** What a checkpoint must match to be resumed (the server's range follows from servers and shapes). */
  private layout(): { mode: ConsistencyModel; staleness: number; servers: number; server: number; workers: number; shapes: number[][] } {
    return { mode: this.mode, staleness: this.staleness, servers: this.servers, server: this.group.rank, workers: this.workers, shapes: this.params.map((p) => [...p.shape]) };
  }

  /**
   * Servers read and check their files; everyone learns whether all of them could (so that a
   * bad file fails every rank at once rather than leaving workers waiting); then each server
   * broadcasts its range and the workers' clocks, which every rank loads.
   */
  private async resume(path: string): Promise<void> {
    await this.everyServer(`resume from resumeFrom "${path}"`, async () => {
      this.resumed = await this.readCheckpoint(ParameterServer.checkpointFile(path, this.group.rank));
    });
    const values = new Float64Array(this.size);
    const clocks = new Array<number>(this.workers).fill(Infinity);
    for (const [server, { start, count }] of this.shards.entries()) {
      const message = new Float64Array(count + this.workers);
      if (server === this.group.rank) {
        message.set(this.resumed!.range, 0);
        message.set(this.resumed!.clocks, count);
      }
      await this.group.broadcast(message, { root: server });
      values.set(message.subarray(0, count), start);
      // Servers save on their own, so under asp/ssp their clocks may differ: everyone goes on
      // from each worker's lowest (never looser for ssp's bound; a server that had more of
      // that worker's gradients just sees the clock step back).
      message.subarray(count).forEach((c, k) => { clocks[k] = Math.min(clocks[k]!, c); });
    }
    this.loadFlat(values, 'ParameterServer.create');
    if (this.isServer) this.resumed = { ...this.resumed!, clocks };
    else this.pushes = clocks[this.group.rank - this.servers]!;
  }

  /** Reads a server's checkpoint and checks that it has this run's layout. */
  private async readCheckpoint(file: string): Promise<Resumed> {
    const what = `ParameterServer.create: cannot resume server ${this.group.rank} from "${file}"`;
    let saved: Record<string, unknown>;
    try {
      saved = await loadState(file, { backend: 'cpu' }) as Record<string, unknown>;
    } catch (e) {
      throw new TesseraError(`${what}: ${(e as Error).message}`);
    }
    if (saved.format !== CHECKPOINT_FORMAT) throw new TesseraError(`${what}: it is not a parameter-server checkpoint (format '${String(saved.format)}', expected '${CHECKPOINT_FORMAT}').`);
    const differences: string[] = [];
    for (const [key, now] of Object.entries(this.layout())) {
      const then = saved[key];
      if (JSON.stringify(then) !== JSON.stringify(now) || (typeof now === 'number' && !Object.is(then, now))) {
        differences.push(key === 'shapes' ? `parameter shapes ${describeShapes(then)}, now ${describeShapes(now)}` : `${key} ${String(then)}, now ${String(now)}`);
      }
    }
    if (differences.length > 0) {
      throw new TesseraError(`${what}: it was saved with another layout (${differences.join('; ')}). Resume with the same servers, workers, mode, staleness and model, or start afresh without resumeFrom.`);
    }
    const params = saved.params;
    const { count } = this.shard!;
    if (!(params instanceof Tensor) || params.size !== count) throw new TesseraError(`${what}: its parameters are missing or not ${count} values; the file was edited or is corrupt.`);
    return { file, optimizer: saved.optimizer as Resumed['optimizer'], range: Float64Array.from(params.data()), version: saved.version as number, clocks: saved.clocks as number[] };
  }

  private loadOptimizer(optimizer: Optimizer<BaseOptions>, resumed: Resumed): void {
    const name = optimizer.constructor.name;
    if (resumed.optimizer.name !== name) {
      throw new TesseraError(`ParameterServer.serve: the checkpoint "${resumed.file}" holds the state of ${resumed.optimizer.name}, but makeOptimizer built ${name}; build the same optimizer to resume.`);
    }
    const { name: _name, ...state } = resumed.optimizer;
    try {
      optimizer.loadStateDict(state);
    } catch (e) {
      throw new TesseraError(`ParameterServer.serve: cannot load the optimizer state of "${resumed.file}": ${(e as Error).message}`);
    }
  }

  /** The pieces of the trainable parameters that lie in elements [start, start + count) of the flat vector. */
  private piecesOf(start: number, count: number): Piece[] {
    const pieces: Piece[] = [];
    let offset = 0;
    for (const param of this.params) {
      const from = Math.max(start, offset), to = Math.min(start + count, offset + param.size);
      if (to > from) pieces.push({ param, from: from - offset, size: to - from, at: from - start });
      offset += param.size;
    }
    return pieces;
  }

  /** Writes a flat vector (trainable parameters end to end) into the parameters. */
  private loadFlat(values: Float64Array, op: string): void {
    let offset = 0;
    for (const p of this.params) {
      assignValues(p, values.subarray(offset, offset + p.size), op);
      offset += p.size;
    }
  }

  private assertWorker(op: string): void {
    if (this.isServer) {
      throw new TesseraError(this.servers === 1
        ? `ParameterServer.${op}: rank 0 is the server; call serve() there.`
        : `ParameterServer.${op}: rank ${this.group.rank} is a server (ranks 0..${this.servers - 1} are); call serve() there.`);
    }
  }
}

/** With several servers every one needs its own file, so the path must name the server. */
function checkPath(path: string, servers: number, what: string): void {
  if (typeof path !== 'string' || path === '') throw new TesseraError(`ParameterServer: ${what} must be a file path, got ${String(path)}.`);
  if (servers > 1 && !path.includes('{server}')) {
    throw new TesseraError(`ParameterServer: with ${servers} servers, ${what} must contain '{server}' (replaced by each server's index, e.g. 'ps-{server}.safetensors') so that every server has its own file; got '${path}'.`);
  }
}

function describeShapes(shapes: unknown): string {
  return Array.isArray(shapes) ? `[${shapes.map((s) => (Array.isArray(s) ? `[${s.join(', ')}]` : String(s))).join(', ')}]` : String(shapes);
}
