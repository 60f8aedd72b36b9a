// A process group: a set of ranks that run collectives together over one transport. The world
// group owns the transport; sub-groups (newGroup) share it, each with its own tag space, so
// that, e.g., the data-parallel and tensor-parallel groups of a mesh can be used concurrently.
import { barrierAlgorithms, runCollective } from './collectives.js';
import { Comm, ScratchPool } from './algorithms/comm.js';
import type { AlgorithmOf, Collective } from './algorithms/registry.js';
import { checkAlgorithm } from './algorithms/registry.js';
import type { CostModel } from './cost-model.js';
import { chooseAlgorithm } from './cost-model.js';
import { deadlineIn } from './deadline.js';
import { GroupClosedError } from './errors.js';
import type { Transport, TransportKind } from './transport.js';
import { makeTag, TAG_COLLECTIVE, TAG_P2P } from './transport.js';
import type { CommArray, DType, ReduceOp } from './types.js';
import { dtypeOf, elementBytes } from './types.js';
import { Work } from './work.js';

export interface CallOptions<C extends Collective> {
  /** An algorithm of this collective, or 'auto' (the default) to let the cost model choose. */
  algorithm?: AlgorithmOf<C> | 'auto';
  /** Milliseconds before the call fails; defaults to the group's timeout. */
  timeoutMs?: number;
}

/** State shared by the world group and all its sub-groups. */
export interface World {
  readonly transport: Transport;
  costModel: CostModel;
  readonly timeoutMs: number;
  nextGroupId: number;
  closed: boolean;
}

export class ProcessGroup {
  private sequence = 0;
  private destroyed = false;
  private readonly pool: ScratchPool;

  constructor(
    private readonly world: World,
    /** Global rank of each member, in group-rank order. */
    readonly ranks: readonly number[],
    /** This caller's rank within the group. */
    readonly rank: number,
    readonly groupId: number,
  ) {
    this.pool = new ScratchPool(world.transport);
  }

  get size(): number {
    return this.ranks.length;
  }

  get transportKind(): TransportKind {
    return this.world.transport.kind;
  }

  /**
   * Bytes of scratch memory this group keeps between collectives for reuse (copies that keep an
   * input intact, such as a reduce-scatter's of its input; at most 8 buffers, sizes rounded up to a
   * power of two), not counting what a collective under way holds.
   */
  get scratchBytes(): number {
    return this.pool.keptBytes;
  }

  /** The α, β, γ this group uses to choose algorithms. */
  get costModel(): CostModel {
    return this.world.costModel;
  }

  /** The algorithm 'auto' picks for `collective` over `bytes` bytes (see predictSeconds). */
  chooseAlgorithm<C extends Collective>(collective: C, bytes: number): AlgorithmOf<C> {
    return chooseAlgorithm(collective, this.size, bytes, this.world.costModel);
  }

  broadcast<T extends CommArray>(data: T, options: { root?: number } & CallOptions<'broadcast'> = {}): Work<T> {
    const root = this.checkRoot('broadcast', options.root ?? 0);
    return this.collective('broadcast', data, data.byteLength, options, (c, alg) =>
      runCollective.broadcast(c, alg, data, root).then(() => data),
    );
  }

  /** Reduces every rank's `data` into the root's `data`; other ranks' arrays are unchanged. */
  reduce<T extends CommArray>(data: T, options: { root?: number; op?: ReduceOp } & CallOptions<'reduce'> = {}): Work<T> {
    const root = this.checkRoot('reduce', options.root ?? 0);
    const op = options.op ?? 'sum';
    return this.collective('reduce', data, data.byteLength, options, (c, alg) =>
      runCollective.reduce(c, alg, data, op, root).then(() => data),
    );
  }

  allReduce<T extends CommArray>(data: T, options: { op?: ReduceOp } & CallOptions<'allReduce'> = {}): Work<T> {
    const op = options.op ?? 'sum';
    return this.collective('allReduce', data, data.byteLength, options, (c, alg) =>
      runCollective.allReduce(c, alg, data, op).then(() => data),
    );
  }

  /**
   * Splits the root's `input` into one block per rank (`counts[i]` elements for rank i; by
   * default every rank's `output.length`) and writes block i into rank i's `output`.
   */
  scatter<T extends CommArray>(output: T, options: { root?: number; input?: T; counts?: readonly number[] } & CallOptions<'scatter'> = {}): Work<T> {
    const root = this.checkRoot('scatter', options.root ?? 0);
    const blocks = runCollective.blocksFor('scatter', this.size, options.counts, output.length);
    if (this.rank === root) this.checkInput('scatter', options.input, blocks.total, dtypeOf(output), 'input');
    return this.collective('scatter', output, blocks.total * elementBytes(dtypeOf(output)), options, (c, alg) =>
      runCollective.scatter(c, alg, options.input, output, blocks, root).then(() => output),
    );
  }

  /** The opposite of scatter: rank i's `input` becomes block i of the root's `output`. */
  gather<T extends CommArray>(input: T, options: { root?: number; output?: T; counts?: readonly number[] } & CallOptions<'gather'> = {}): Work<T | undefined> {
    const root = this.checkRoot('gather', options.root ?? 0);
    const blocks = runCollective.blocksFor('gather', this.size, options.counts, input.length);
    if (this.rank === root) this.checkInput('gather', options.output, blocks.total, dtypeOf(input), 'output');
    return this.collective('gather', input, blocks.total * elementBytes(dtypeOf(input)), options, (c, alg) =>
      runCollective.gather(c, alg, input, options.output, blocks, root).then(() => (this.rank === root ? options.output : undefined)),
    );
  }

  /** Concatenates every rank's `input` (rank order) into `output` on every rank. */
  allGather<T extends CommArray>(input: T, options: { output?: T; counts?: readonly number[] } & CallOptions<'allGather'> = {}): Work<T> {
    const blocks = runCollective.blocksFor('allGather', this.size, options.counts, input.length);
    const output = options.output ?? (runCollective.alloc(input, blocks.total) as T);
    this.checkInput('allGather', output, blocks.total, dtypeOf(input), 'output');
    return this.collective('allGather', input, blocks.total * elementBytes(dtypeOf(input)), options, (c, alg) =>
      runCollective.allGather(c, alg, input, output, blocks).then(() => output),
    );
  }

  /**
   * Reduces `input` across ranks and gives rank i block i of the result: `counts[i]` elements,
   * by default an even split of input.length (the first length mod p blocks one longer).
   * `overwriteInput`: the collective may use `input` as its working memory (its values are then
   * unspecified) instead of copying it into the group's scratch memory first: for callers that
   * refill the input before every call (FSDP's gradient arrays), it saves the copy and its memory.
   */
  reduceScatter<T extends CommArray>(input: T, options: { op?: ReduceOp; output?: T; counts?: readonly number[]; overwriteInput?: boolean } & CallOptions<'reduceScatter'> = {}): Work<T> {
    const op = options.op ?? 'sum';
    const blocks = runCollective.blocksFor('reduceScatter', this.size, options.counts, undefined, input.length);
    const output = options.output ?? (runCollective.alloc(input, blocks.counts[this.rank]!) as T);
    this.checkInput('reduceScatter', output, blocks.counts[this.rank]!, dtypeOf(input), 'output');
    return this.collective('reduceScatter', input, input.byteLength, options, (c, alg) =>
      runCollective.reduceScatter(c, alg, input, output, blocks, op, options.overwriteInput ?? false).then(() => output),
    );
  }

  /**
   * Rank r sends block j of `input` to rank j, which stores it as block r of its `output`.
   * Blocks are equal (input.length / p) unless sendCounts and recvCounts are given.
   */
  allToAll<T extends CommArray>(
    input: T,
    options: { output?: T; sendCounts?: readonly number[]; recvCounts?: readonly number[] } & CallOptions<'allToAll'> = {},
  ): Work<T> {
    const { send, recv } = runCollective.allToAllBlocks(this.size, input.length, options.sendCounts, options.recvCounts);
    const output = options.output ?? (runCollective.alloc(input, recv.total) as T);
    this.checkInput('allToAll', output, recv.total, dtypeOf(input), 'output');
    return this.collective('allToAll', input, input.byteLength, options, (c, alg) =>
      runCollective.allToAll(c, alg, input, output, send, recv).then(() => output),
    );
  }

  barrier(options: CallOptions<'barrier'> = {}): Work<void> {
    return this.collective('barrier', new Int32Array(0), 0, options, (c, alg) => barrierAlgorithms[alg](c));
  }

  /** Sends `data` to group rank `dst`; messages with the same tag arrive in order. */
  send(data: CommArray, dst: number, options: { tag?: number; timeoutMs?: number } = {}): Work<void> {
    const c = this.pointToPoint('send', dst, data, options);
    return this.track(c, c.send(dst, data));
  }

  /** Receives into `data` from group rank `src`; the message must have data.length elements. */
  recv<T extends CommArray>(data: T, src: number, options: { tag?: number; timeoutMs?: number } = {}): Work<T> {
    const c = this.pointToPoint('recv', src, data, options);
    return this.track(c, c.recvInto(src, data).then(() => data));
  }

  /** Same as send: it starts now and returns a handle to wait on. */
  isend(data: CommArray, dst: number, options: { tag?: number; timeoutMs?: number } = {}): Work<void> {
    return this.send(data, dst, options);
  }

  irecv<T extends CommArray>(data: T, src: number, options: { tag?: number; timeoutMs?: number } = {}): Work<T> {
    return this.recv(data, src, options);
  }

  /**
   * A group of the given ranks of this group (in the order given). Every rank of this group
   * must call newGroup with the same list, in the same order relative to other newGroup calls;
   * ranks outside the list get undefined.
   */
  newGroup(ranks: readonly number[]): ProcessGroup | undefined {
    this.checkOpen('newGroup');
    const seen = new Set<number>();
    for (const r of ranks) {
      if (!Number.isInteger(r) || r < 0 || r >= this.size || seen.has(r)) {
        throw new RangeError(`newGroup: ranks must be distinct ranks of this group (0..${this.size - 1}), got [${ranks.join(', ')}]`);
      }
      seen.add(r);
    }
    if (ranks.length === 0) throw new RangeError('newGroup: a group needs at least one rank, got []');
    const groupId = this.world.nextGroupId++;
    const mine = ranks.indexOf(this.rank);
    if (mine < 0) return undefined;
    return new ProcessGroup(this.world, ranks.map((r) => this.ranks[r]!), mine, groupId);
  }

  /**
   * Shuts the group down. For the world group this closes the transport: pending operations
   * fail, peers see a clean departure (not a fault). Sub-groups just stop accepting calls.
   */
  async destroy(): Promise<void> {
    this.destroyed = true;
    if (this.groupId !== 0) return;
    if (this.world.closed) return;
    this.world.closed = true;
    await this.world.transport.close();
  }

  private collective<C extends Collective, R>(
    name: C,
    data: CommArray,
    bytes: number,
    options: CallOptions<C>,
    body: (c: Comm, algorithm: AlgorithmOf<C>) => Promise<R>,
  ): Work<R> {
    this.checkOpen(name);
    const dtype = dtypeOf(data);
    const requested = options.algorithm ?? 'auto';
    const algorithm = requested === 'auto' ? this.chooseAlgorithm(name, bytes) : checkAlgorithm(name, requested);
    const tag = makeTag(TAG_COLLECTIVE, this.groupId, this.sequence++);
    const c = this.comm(dtype, tag, options.timeoutMs, `${name}(${algorithm}) on rank ${this.rank} of group [${this.ranks.join(',')}]`);
    return this.track(c, body(c, algorithm));
  }

  private pointToPoint(what: string, peer: number, data: CommArray, options: { tag?: number; timeoutMs?: number }): Comm {
    this.checkOpen(what);
    const tag = options.tag ?? 0;
    if (!Number.isInteger(tag) || tag < 0 || tag >= 2 ** 32) throw new RangeError(`${what}: tag must be an integer in [0, 2^32), got ${tag}`);
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.size || peer === this.rank) {
      throw new RangeError(`${what}: peer ${peer} must be another rank of this group (0..${this.size - 1}, this is ${this.rank})`);
    }
    return this.comm(dtypeOf(data), makeTag(TAG_P2P, this.groupId, tag), options.timeoutMs, `${what}(tag ${tag}) between ranks ${this.rank} and ${peer} of group [${this.ranks.join(',')}]`);
  }

  private comm(dtype: DType, tag: number, timeoutMs: number | undefined, operation: string): Comm {
    const deadline = deadlineIn(timeoutMs ?? this.world.timeoutMs, operation);
    return new Comm(this.world.transport, this.ranks, this.rank, dtype, tag, deadline, this.pool);
  }

  private track<R>(c: Comm, promise: Promise<R>): Work<R> {
    return new Work(promise.finally(() => c.release()));
  }

  private checkOpen(what: string): void {
    if (this.destroyed && !this.world.closed) {
      throw new GroupClosedError(`${what}: this sub-group was destroyed; make a new one with newGroup on its parent`);
    }
    if (this.world.closed) throw new GroupClosedError(`${what}: the process group was destroyed; create a new one with initProcessGroup`);
    const failure = this.world.transport.failure;
    if (failure) throw failure;
  }

  private checkRoot(what: string, root: number): number {
    if (!Number.isInteger(root) || root < 0 || root >= this.size) {
      throw new RangeError(`${what}: root must be a rank of this group (0..${this.size - 1}), got ${root}`);
    }
    return root;
  }

  private checkInput(what: string, array: CommArray | undefined, length: number, dtype: DType, name: string): void {
    if (array === undefined) throw new TypeError(`${what}: rank ${this.rank} must pass options.${name} (${length} ${dtype} elements)`);
    if (array.length !== length || dtypeOf(array) !== dtype) {
      throw new RangeError(`${what}: options.${name} must hold ${length} ${dtype} elements, got ${array.length} ${dtypeOf(array)}`);
    }
  }
}
