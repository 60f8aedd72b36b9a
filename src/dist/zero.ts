// ZeRO stages 1 and 2 (Rajbhandari et al. 2019, arXiv:1910.02054): data-parallel training in
// which each rank keeps the optimizer state of only its 1/W share of the parameters' elements.
//
// All trainable parameters are laid end to end (registration order, one flat space per
// communication dtype) and cut into W contiguous element ranges; rank r owns range r. A step:
//   1. the gradients are averaged over the ranks: stage 1 all-reduces them (every rank keeps the
//      whole averaged gradient), stage 2 reduce-scatters them (each rank receives only its range,
//      and the full gradients are released);
//   2. each rank runs its own optimizer on "shard parameters": one 1-D tensor per parameter
//      that overlaps its range, holding that slice of the parameter (elementwise optimizers such
//      as SGD, Adam, AdamW, RMSprop and Adagrad give the same update as on the whole tensor);
//   3. the updated ranges are all-gathered and written back into every rank's parameters.
// Optimizer state memory is divided by W; communication is that of an all-reduce (a
// reduce-scatter plus an all-gather), as in the paper.
//
//   const zero = await ZeroOptimizer.create(model, group, (params) => new optim.Adam(params, { lr }), { stage: 2 });
//   loss.backward();
//   await zero.step();   // average gradients, update this rank's share, gather the parameters
//   zero.zeroGrad();
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { assignValues } from '../nn/inplace.js';
import { Parameter, type AnyModule } from '../nn/module.js';
import { tensor } from '../ops/creation.js';
import type { BaseOptions, Optimizer, OptimizerStateDict, ParamState } from '../optim/optimizer.js';
import type { ProcessGroup } from './process-group.js';
import { evenBlocks } from './partition.js';
import { broadcastTensors, commDType } from './tensor-sync.js';
import { sharedArray, type CommArray, type DType } from './types.js';

export interface ZeroOptions {
  /** 1: optimizer states sharded; 2: gradients too (reduce-scattered, full gradients released). Default 2. */
  stage?: 1 | 2;
  /** Copy rank 0's buffers (BatchNorm statistics) to every rank at each step (default true). */
  broadcastBuffers?: boolean;
}

/** The slice of one parameter that this rank owns: elements [from, from + length) of its flat values. */
interface OwnedSlice {
  readonly param: Parameter;
  readonly from: number;
  readonly shard: Parameter;
  /** Where the slice starts in this rank's range of the flat space. */
  readonly at: number;
}

/** One communication dtype's flat space of parameters and this rank's range of it. */
interface FlatSpace {
  readonly dtype: DType;
  readonly params: readonly Parameter[];
  readonly offsets: readonly number[];
  readonly length: number;
  /** Elements each rank owns (contiguous, in rank order). */
  readonly counts: readonly number[];
  readonly start: number;
  readonly owned: readonly OwnedSlice[];
}

export class ZeroOptimizer {
  private constructor(
    readonly module: AnyModule,
    readonly group: ProcessGroup,
    /** This rank's optimizer, over its shard parameters only (its state is this rank's share). */
    readonly optimizer: Optimizer<BaseOptions>,
    readonly stage: 1 | 2,
    private readonly spaces: readonly FlatSpace[],
    private readonly syncBuffers: boolean,
    /** The trainable parameters in registration order: the indices of a consolidated state dict. */
    private readonly trainable: readonly Parameter[],
  ) {}

  /**
   * Partitions `module`'s trainable parameters over the group, copies rank 0's parameters and
   * buffers to every rank, and builds this rank's optimizer with `makeOptimizer` over its shard
   * parameters. Every rank must call it with the same model structure.
   */
  static async create<M extends AnyModule>(
    module: M, group: ProcessGroup, makeOptimizer: (params: Parameter[]) => Optimizer<BaseOptions>, options: ZeroOptions = {},
  ): Promise<ZeroOptimizer> {
    const stage = options.stage ?? 2;
    if (stage !== 1 && stage !== 2) throw new TesseraError(`ZeroOptimizer: stage must be 1 or 2, got ${String(stage)}; for stage 3 (sharded parameters) use FullyShardedDataParallel.`);
    await broadcastTensors(group, [...module.parameters(), ...module.buffers()], 0, 'ZeroOptimizer.create');
    const trainable = module.parameters().filter((p) => p.requiresGrad);
    const spaces = partition(trainable, group.size, group.rank);
    const shards = spaces.flatMap((s) => s.owned.map((o) => o.shard));
    const optimizer = makeOptimizer(shards);
    const known = new Set<Tensor>(shards);
    for (const g of optimizer.paramGroups) {
      for (const p of g.params) {
        if (!known.has(p)) throw new TesseraError('ZeroOptimizer.create: makeOptimizer must build the optimizer over the parameters it is given (this rank\'s shards), not the model\'s.');
      }
    }
    if (optimizer.paramGroups.length !== 1) throw new TesseraError('ZeroOptimizer.create: makeOptimizer must build one parameter group over the shards it is given.');
    return new ZeroOptimizer(module, group, optimizer, stage, spaces, options.broadcastBuffers ?? true, trainable);
  }

  /**
   * The optimizer's state as one optimizer over the whole model would hold it (parameter indices
   * in the model's registration order), gathered from every rank's share: what a checkpoint
   * saves. A collective; every rank gets the whole dict.
   */
  async stateDict(): Promise<OptimizerStateDict> {
    const local = this.optimizer.stateDict();
    const { params: _shards, ...options } = local.paramGroups[0]!;
    const result: OptimizerStateDict = { state: {}, paramGroups: [{ ...options, params: this.trainable.map((_, i) => i) }] };
    const first = local.state['0'];
    if (first === undefined) return result; // before the first step every rank has no state
    const tensorKeys = Object.keys(first).filter((k) => typeof first[k] !== 'number');
    const counters = Object.fromEntries(Object.entries(first).filter(([, v]) => typeof v === 'number'));
    this.trainable.forEach((_, i) => { result.state[String(i)] = { ...counters }; });
    const indexOf = new Map(this.trainable.map((p, i) => [p, String(i)]));
    let shardIndex = 0;
    for (const s of this.spaces) {
      for (const key of tensorKeys) {
        const mine = sharedArray(s.dtype, s.counts[this.group.rank]!);
        s.owned.forEach((o, k) => mine.set((local.state[String(shardIndex + k)]![key] as Tensor).data(), o.at));
        const flat = await this.group.allGather(mine, { counts: s.counts });
        s.params.forEach((p, i) => {
          const values = flat.subarray(s.offsets[i], s.offsets[i]! + p.size);
          result.state[indexOf.get(p)!]![key] = tensor(values, { shape: [...p.shape], dtype: p.dtype, backend: p.storage.backend.name });
        });
      }
      shardIndex += s.owned.length;
    }
    return result;
  }

  /** Restores a consolidated state dict (from stateDict(), on any number of ranks): each rank takes its share. */
  async loadStateDict(sd: OptimizerStateDict): Promise<void> {
    const owned = this.spaces.flatMap((s) => s.owned);
    const indexOf = new Map(this.trainable.map((p, i) => [p, String(i)]));
    const state: Record<string, ParamState> = {};
    owned.forEach((o, k) => {
      const whole = sd.state[indexOf.get(o.param)!];
      if (whole === undefined) return;
      const mine: ParamState = {};
      for (const [key, v] of Object.entries(whole)) {
        mine[key] = typeof v === 'number' ? v
          : tensor(v.contiguous().data().subarray(o.from, o.from + o.shard.size), { shape: [o.shard.size], dtype: o.shard.dtype, backend: o.shard.storage.backend.name });
      }
      state[String(k)] = mine;
    });
    const { params: _all, ...options } = sd.paramGroups[0]!;
    this.optimizer.loadStateDict({ state, paramGroups: [{ ...options, params: owned.map((_, k) => k) }] });
  }

  /** Elements of parameters whose optimizer state this rank keeps. */
  get ownedElements(): number {
    return this.spaces.reduce((n, s) => n + s.counts[this.group.rank]!, 0);
  }

  /** Clears the model's gradients (and the shards'). */
  zeroGrad(): void {
    for (const p of this.module.parameters()) p._replaceGrad(undefined, true); // disposed unless the caller read it
    this.optimizer.zeroGrad();
  }

  /**
   * Averages the gradients over the ranks, updates this rank's share of the parameters, and
   * writes every rank's updated share into every rank's parameters. A collective.
   * `maxGradNorm` clips the joint norm of the averaged gradient first (as clipGradNorm would
   * on one process); the norm before clipping is returned (NaN when not asked).
   */
  async step(options: { maxGradNorm?: number } = {}): Promise<number> {
    const reduced = await Promise.all(this.spaces.map((s) => this.averageGradients(s)));
    let norm = NaN;
    if (options.maxGradNorm !== undefined) {
      let squares = 0;
      for (const own of reduced) for (let i = 0; i < own.length; i++) squares += own[i]! * own[i]!;
      const total = Float64Array.of(squares);
      await this.group.allReduce(total);
      norm = Math.sqrt(total[0]!);
      const scale = options.maxGradNorm / (norm + 1e-6);
      if (scale < 1) for (const own of reduced) for (let i = 0; i < own.length; i++) own[i]! *= scale;
    }
    this.spaces.forEach((s, k) => {
      const own = reduced[k]!;
      for (const o of s.owned) {
        const values = own.subarray(o.at, o.at + o.shard.size);
        if (o.shard.grad === undefined) o.shard.grad = tensor(Array.from(values), { shape: [o.shard.size], dtype: o.shard.dtype, backend: o.shard.storage.backend.name });
        else assignValues(o.shard.grad, values, 'ZeroOptimizer.step');
      }
    });
    this.optimizer.step();
    await Promise.all(this.spaces.map((s) => this.gatherParameters(s)));
    if (this.stage === 2) for (const p of this.module.parameters()) { p.grad?.dispose(); p.grad = undefined; }
    if (this.syncBuffers) await broadcastTensors(this.group, this.module.buffers(), 0, 'ZeroOptimizer.step');
    return norm;
  }

  /** This rank's range of the averaged flat gradient (stage 1 also writes the whole average back into every .grad). */
  private async averageGradients(s: FlatSpace): Promise<CommArray> {
    const flat = sharedArray(s.dtype, s.length);
    s.params.forEach((p, i) => { const g = p._peekGrad(); if (g !== undefined) flat.set(g.data(), s.offsets[i]); });
    if (this.stage === 1) {
      await this.group.allReduce(flat, { op: 'avg' });
      s.params.forEach((p, i) => {
        const values = flat.subarray(s.offsets[i], s.offsets[i]! + p.size);
        const g = p._peekGrad();
        if (g === undefined) p._replaceGrad(tensor(Array.from(values), { shape: [...p.shape], dtype: p.dtype, backend: p.storage.backend.name }), true);
        else assignValues(g, values, 'ZeroOptimizer.step');
      });
      return flat.subarray(s.start, s.start + s.counts[this.group.rank]!);
    }
    return this.group.reduceScatter(flat, { op: 'avg', counts: s.counts });
  }

  /** All-gathers every rank's updated range and writes the result into the parameters. */
  private async gatherParameters(s: FlatSpace): Promise<void> {
    const mine = sharedArray(s.dtype, s.counts[this.group.rank]!);
    for (const o of s.owned) mine.set(o.shard.data(), o.at);
    const flat = await this.group.allGather(mine, { counts: s.counts });
    s.params.forEach((p, i) => assignValues(p, flat.subarray(s.offsets[i], s.offsets[i]! + p.size), 'ZeroOptimizer.step'));
  }
}

/**
 * The flat spaces (one per communication dtype, parameters in registration order), each cut
 * into `ranks` contiguous ranges as equal as possible, with this rank's shard parameters.
 */
function partition(params: readonly Parameter[], ranks: number, rank: number): FlatSpace[] {
  const byDtype = new Map<DType, Parameter[]>();
  for (const p of params) {
    const d = commDType(p.dtype, 'ZeroOptimizer');
    byDtype.set(d, [...(byDtype.get(d) ?? []), p]);
  }
  return [...byDtype].map(([dtype, ps]) => {
    const offsets: number[] = [];
    let length = 0;
    for (const p of ps) { offsets.push(length); length += p.size; }
    const { counts, offsets: starts } = evenBlocks(length, ranks);
    const start = starts[rank]!, end = start + counts[rank]!;
    const owned: OwnedSlice[] = [];
    ps.forEach((p, i) => {
      const from = Math.max(start, offsets[i]!) - offsets[i]!;
      const to = Math.min(end, offsets[i]! + p.size) - offsets[i]!;
      if (to <= from) return;
      const values = Array.from(p.data().subarray(from, to));
      const shard = new Parameter(tensor(values, { shape: [to - from], dtype: p.dtype, backend: p.storage.backend.name }));
      owned.push({ param: p, from, shard, at: offsets[i]! + from - start });
    });
    return { dtype, params: ps, offsets, length, counts, start, owned };
  });
}
