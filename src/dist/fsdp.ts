// ZeRO stage 3 (Rajbhandari et al. 2019 §5.3; PyTorch's FullyShardedDataParallel, Zhao et al.
// 2023): data parallelism in which the parameters themselves are sharded. The model is a sequence
// of units (modules); each unit's parameters are laid end to end and cut into W ranges, and rank
// r keeps only range r (with its optimizer state). A unit's whole parameters exist only while
// the unit runs:
//   forward:  all-gather the unit's parameters, run it without recording a graph, keep only its
//             input, free the parameters;
//   backward: all-gather them again, run the unit forward once more with a graph (the
//             recomputation FSDP avoids by keeping the graph; here it frees the activations too),
//             differentiate it, reduce-scatter the parameter gradients (averaged over the ranks)
//             into the shards, free the parameters and their gradients.
// So at any time a rank's tensors are its 1/W of every parameter, gradient and optimizer state,
// plus one unit's whole parameters and the units' inputs: the memory of ZeRO-3 with activation
// checkpointing at unit boundaries. Communication per step: two all-gathers and one
// reduce-scatter of the parameters, 1.5× data parallelism's all-reduce, as in the paper.
//
// Communication arrays. The collectives work on plain shared-memory arrays, not tensors: a space's
// whole parameters (all-gather output) and whole gradients (reduce-scatter input), and a shard to
// send or receive. They are needed only while the collective runs (its result is copied into
// tensors at once), so they are not kept per space but lent from a few slots (CommSlot), each
// allocated at its first use at the size of the largest space it serves and reused every step
// after: allocating them per call had kept the garbage collector as busy as the matmuls, and
// keeping one set per space cost (2 + 2/W)× the whole model on every rank, more than ZeRO-3
// saves. At most one gather is in flight (prefetch starts the next only after the current one
// finished), so slot j serves the j-th largest of the spaces gathered together; a reduce-scatter
// that overlaps a prefetched gather (backward, every unit but the first) has a slot of its own,
// and one that overlaps none borrows gather slot 0. With one space per unit that is at most
// 2 × (1 + 1/W) × the largest space, whatever the number of units; see memory().
//
// Each unit runs twice per step, so the recomputation must see what the forward saw: the random
// generators are restored to their state at the unit's forward (dropout draws the same masks, as
// checkpoint() does) and the unit's buffers to their values before the recomputation (a BatchNorm
// updates its running statistics once per step, not twice).
//
// Prefetch (on by default, like FSDP's forward_prefetch and backward_prefetch=BACKWARD_PRE): the
// all-gather of the next unit's parameters starts before the current unit runs, so its messages
// travel while this rank computes; a rank then holds two units' whole parameters at a time.
//
// Shared parameters (tied weights, such as a GPT's head and token embedding, used by its first
// and last units). The flat spaces are not one per unit but one per *set of users*: a parameter
// used by one unit goes into that unit's own space as above; the parameters used by several
// units go into a shared space (one per set of using units and dtype), sharded over the ranks
// like a unit's. A shared space is whole from its first user to its last, in both passes:
//   forward:  gathered together with its first user's parameters, kept while the units between
//             run, freed after its last user ran;
//   backward: gathered together with its last user's parameters (the first the backward meets)
//             and kept through the recomputations and backward passes of every user below it:
//             each backward() adds that user's contribution into the one whole parameter's .grad
//             (autograd accumulates into a leaf), so after the first user's backward the gradient
//             is the sum over the users; it is then reduce-scattered (averaged) into the shard
//             once, and the whole parameter and gradient freed.
// A shared space costs the communication of a unit (two all-gathers and one reduce-scatter per
// step), and memory: its whole parameters for the span between its first and last use, and in
// backward its whole gradient too. For a GPT cut into [embeddings, blocks..., norm + head] that
// span is the whole pass: every rank holds the token embedding and, in backward, its gradient
// whole throughout, as PyTorch FSDP keeps a parameter that children share in the enclosing
// (root) unit, unsharded while any child runs. Prefetch treats a shared space as part of the unit
// that opens it in the direction of the pass: prefetching unit k + 1 (in backward k − 1) also
// gathers the shared spaces it is the first (last) user of. A model without shared parameters
// has only the units' own spaces and runs exactly as before.
//
// Names and checkpoints with shared parameters: gatherParameters() installs each whole parameter
// in every place the modules hold it (both the head's and the embedding's field), so the model's
// own stateDict() then has the tied keys as the plain model gives them. The consolidated optimizer
// state numbers the parameters by first appearance over the units in order (a shared one once, at
// its first user): optimizer.stateDict() of a plain model whose registration order the units
// follow. Not supported: distinct Parameter objects over the same memory (views of one tensor);
// FSDP would copy them apart, so create() refuses them.
//
//   const fsdp = await FullyShardedDataParallel.create([embeddings, block1, block2, head], group, (shards) => new optim.Adam(shards));
//   const out = await fsdp.forward(myShareOfTheBatch);
//   await fsdp.backward(lossOf(out));
//   fsdp.step();
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { backward } from '../autodiff/backward.js';
import { noGrad } from '../autodiff/mode.js';
import { itemsize } from '../core/dtype.js';
import { snapshotGenerators } from '../core/random.js';
import { copyValuesInto } from '../core/tensor.js';
import { assignValues } from '../nn/inplace.js';
import { Parameter, type AnyModule } from '../nn/module.js';
import { tensor } from '../ops/creation.js';
import type { BaseOptions, Optimizer, OptimizerStateDict, ParamState } from '../optim/optimizer.js';
import type { ProcessGroup } from './process-group.js';
import { evenBlocks } from './partition.js';
import { broadcastTensors, commDType } from './tensor-sync.js';
import { allocArray, elementBytes, type CommArray, type DType } from './types.js';

/** A module field that holds a parameter: where a gathered whole parameter is installed. */
interface Slot {
  readonly owner: AnyModule;
  readonly local: string;
}

/** One parameter of a flat space: its place in it, and every field that holds it. */
interface FlatParam {
  readonly shape: readonly number[];
  readonly size: number;
  readonly offset: number;
  readonly slots: readonly Slot[];
  /** Its index in the consolidated optimizer state (first appearance over the units). */
  readonly index: number;
}

/**
 * Parameters laid end to end and sharded over the ranks: one unit's own parameters, or those that
 * a set of units shares.
 */
interface FlatSpace {
  readonly params: readonly FlatParam[];
  /** The units that use these parameters, ascending (one for a unit's own space). */
  readonly users: readonly number[];
  /** The parameters' dotted names in their first user, for messages and flatSpaces(). */
  readonly names: readonly string[];
  readonly total: number;
  readonly dtype: DType;
  readonly tensorDType: Tensor['dtype'];
  readonly backend: string;
  readonly counts: readonly number[];
  /** Where each rank's range starts in the flat parameters. */
  readonly starts: readonly number[];
  /** This rank's range of the flat parameters, trained by the local optimizer. */
  readonly shard: Parameter;
}

/** One unit: its module and, in its namedParameters order, where each parameter it uses lives. */
interface Unit {
  readonly module: AnyModule;
  readonly entries: readonly { readonly name: string; readonly space: FlatSpace; readonly position: number }[];
}

/** What each unit's forward and backward gather, release and reduce (see the header). */
interface Schedule {
  readonly forwardGather: readonly (readonly FlatSpace[])[];
  readonly forwardRelease: readonly (readonly FlatSpace[])[];
  readonly backwardGather: readonly (readonly FlatSpace[])[];
  readonly backwardReduce: readonly (readonly FlatSpace[])[];
}

function* ownersOf(module: AnyModule): Generator<[string, AnyModule, string]> {
  for (const [prefix, m] of module.namedModules()) {
    for (const [name, p] of Object.entries(m)) {
      if (p instanceof Parameter) yield [prefix ? `${prefix}.${name}` : name, m, name];
    }
  }
}

export interface FsdpOptions {
  /**
   * Start the all-gather of the next unit's parameters before running the current one (default
   * true): communication overlaps computation, for one more unit's parameters held at a time.
   */
  prefetch?: boolean;
}

/** One flat space as flatSpaces() describes it. */
export interface FsdpFlatSpace {
  /** Indices of the units that use its parameters: one for a unit's own space, several for a shared one. */
  readonly users: readonly number[];
  /** The parameters' dotted names, as their first user's namedParameters gives them. */
  readonly names: readonly string[];
  /** Elements of the whole space. */
  readonly elements: number;
  /** This rank's shard of it (a parameter of the local optimizer). */
  readonly shard: Parameter;
}

/** This rank's memory as the FSDP accounts for it (memory(); bytes). */
export interface FsdpMemory {
  /** Its shards: the parameters it keeps between steps. */
  readonly shardBytes: number;
  /** Its optimizer's state tensors (over the shards). */
  readonly optimizerStateBytes: number;
  /**
   * The communication arrays kept for reuse (plain shared-memory arrays, not tensors: not in
   * memoryStats): a few slots, each with a whole-size and a shard-size array, allocated at their
   * first use and reused every step after (see CommSlot in the source).
   */
  readonly bufferBytes: number;
  /** Of bufferBytes, the whole-size arrays (all-gathered parameters, gradients to reduce-scatter). */
  readonly wholeBufferBytes: number;
  /** Communication arrays allocated since create(): each is kept and reused, so this stops growing after the first step. */
  readonly bufferAllocations: number;
  /** The most bytes of whole parameters and whole parameter gradients held at once in the last forward and backward. */
  readonly peakGatheredBytes: number;
}

/** What a slot lends one collective: views of its arrays at the space's sizes. */
interface LentArrays {
  /** The space's whole parameters (all-gather output) or gradients (reduce-scatter input). */
  readonly whole: CommArray;
  /** This rank's shard (all-gather input) or its reduced gradient (reduce-scatter output). */
  readonly shard: CommArray;
}

/**
 * Memory for one collective at a time: a whole-size and a shard-size array, each over a
 * SharedArrayBuffer (the thread transport reads it in place and registers it with a peer once)
 * allocated at the slot's first use at the size of the largest space it serves, then kept.
 *
 * Lifetime rule: an array may be reused only once the collective that used it has settled on this
 * rank and its result has been copied out. A thread-transport send resolves only after the peer
 * has read our memory, and a receive after it was written, so a resolved collective touches the
 * arrays no more; run() gives them back only then, after its body copied what it needs into
 * tensors. A slot lent while still lent throws (two collectives would share memory). A collective
 * that fails may leave a peer still reading: the slot then drops its arrays, never reusing them,
 * and allocates new ones at its next use.
 */
class CommSlot {
  private arrays: { whole: SharedArrayBuffer; shard: SharedArrayBuffer } | undefined;
  private lentTo: FlatSpace | undefined;
  /** Arrays allocated so far (two per allocation of the slot). */
  allocations = 0;

  constructor(
    /** What the slot serves, for the lifetime error. */
    private readonly role: string,
    readonly wholeBytes: number,
    readonly shardBytes: number,
  ) {}

  /** Bytes held now: the whole-size and the shard-size array (0 before the first use). */
  get keptBytes(): { whole: number; shard: number } {
    return this.arrays === undefined ? { whole: 0, shard: 0 } : { whole: this.arrays.whole.byteLength, shard: this.arrays.shard.byteLength };
  }

  /**
   * Lends the arrays, viewed at `space`'s sizes, to `collective`, and takes them back once the
   * promise it returns has resolved: it must have copied out of them whatever it keeps.
   */
  async run<T>(space: FlatSpace, collective: (arrays: LentArrays) => Promise<T>): Promise<T> {
    if (this.lentTo !== undefined) {
      throw new TesseraError(`FullyShardedDataParallel: the communication arrays of ${this.role} are still in use by a collective over ` +
        `[${this.lentTo.names.join(', ')}] while another over [${space.names.join(', ')}] asks for them; await each forward(), backward(), ` +
        'gatherParameters() and stateDict() before starting the next.');
    }
    const whole = space.total * elementBytes(space.dtype);
    const shard = space.shard.size * elementBytes(space.dtype);
    if (whole > this.wholeBytes || shard > this.shardBytes) {
      throw new TesseraError(`FullyShardedDataParallel (internal): ${this.role} holds ${this.wholeBytes} + ${this.shardBytes} B, ` +
        `too small for [${space.names.join(', ')}] (${whole} + ${shard} B).`);
    }
    if (this.arrays === undefined) {
      this.arrays = { whole: new SharedArrayBuffer(this.wholeBytes), shard: new SharedArrayBuffer(this.shardBytes) };
      this.allocations += 2;
    }
    this.lentTo = space;
    const lent = { whole: allocArray(space.dtype, space.total, this.arrays.whole), shard: allocArray(space.dtype, space.shard.size, this.arrays.shard) };
    try {
      return await collective(lent);
    } catch (err) {
      this.arrays = undefined;
      throw err;
    } finally {
      this.lentTo = undefined;
    }
  }
}

export class FullyShardedDataParallel {
  private inputs: Tensor[] = [];
  /** Slot j serves the j-th largest space of the group being gathered (see the header). */
  private readonly gatherSlots: readonly CommSlot[];
  /** For the reduce-scatters that overlap a prefetched gather; absent where none does. */
  private readonly reduceSlot: CommSlot | undefined;
  /** The whole parameters of the spaces gathered for the pass under way. */
  private readonly held = new Map<FlatSpace, Parameter[]>();
  private peakGathered = 0;
  /** The random generators' state before each unit's forward, restored for its recomputation. */
  private randomStates: ReturnType<typeof snapshotGenerators>[] = [];
  private output: Tensor | undefined;
  readonly prefetch: boolean;

  private constructor(
    private readonly units: readonly Unit[],
    /** Every flat space, in the local optimizer's order: the units' own, then the shared ones. */
    private readonly spaces: readonly FlatSpace[],
    private readonly schedule: Schedule,
    /** Distinct parameters over all units (the consolidated optimizer state's length). */
    private readonly parameterCount: number,
    readonly group: ProcessGroup,
    /** This rank's optimizer over its shards (one 1-D parameter per flat space). */
    readonly optimizer: Optimizer<BaseOptions>,
    options: FsdpOptions,
  ) {
    this.prefetch = options.prefetch ?? true;
    const bytes = (space: FlatSpace): { whole: number; shard: number } =>
      ({ whole: space.total * elementBytes(space.dtype), shard: space.shard.size * elementBytes(space.dtype) });
    const sizes: { whole: number; shard: number }[] = [];
    const serve = (j: number, space: FlatSpace): void => {
      const b = bytes(space);
      sizes[j] = { whole: Math.max(sizes[j]?.whole ?? 0, b.whole), shard: Math.max(sizes[j]?.shard ?? 0, b.shard) };
    };
    for (const group of [...schedule.forwardGather, ...schedule.backwardGather]) group.forEach((space, j) => serve(j, space));
    // Slot 0 also serves any one space alone: gatherParameters(), stateDict(), reduce-scatters overlapping no gather.
    for (const space of spaces) serve(0, space);
    this.gatherSlots = sizes.map((b, j) => new CommSlot(`gather slot ${j}`, b.whole, b.shard));
    // Unit 0's reduce-scatters, and all of them without prefetch, overlap no gather: they borrow gather slot 0.
    const overlapping = this.prefetch ? schedule.backwardReduce.slice(1).flat() : [];
    this.reduceSlot = overlapping.length === 0 ? undefined : new CommSlot('the reduce-scatter slot',
      Math.max(...overlapping.map((s) => bytes(s).whole)), Math.max(...overlapping.map((s) => bytes(s).shard)));
  }

  /**
   * Shards `modules`' parameters over the group (rank 0's values) and frees the modules' own
   * copies; builds this rank's optimizer over its shards. Every rank passes the same structure.
   * Parameters that several units use (tied weights) are sharded once, in a shared space.
   */
  static async create(
    modules: readonly AnyModule[], group: ProcessGroup, makeOptimizer: (shards: Parameter[]) => Optimizer<BaseOptions>, options: FsdpOptions = {},
  ): Promise<FullyShardedDataParallel> {
    const perUnit = modules.map((module) => [...module.namedParameters()]);
    const users = new Map<Parameter, number[]>();
    const index = new Map<Parameter, number>();
    const firstName = new Map<Parameter, string>();
    const byStorage = new Map<Parameter['storage'], { p: Parameter; name: string; unit: number }>();
    for (const [k, params] of perUnit.entries()) {
      if (params.length === 0) throw new TesseraError('FullyShardedDataParallel: a unit has no parameters; merge it into a neighbour.');
      for (const [name, p] of params) {
        const known = users.get(p);
        if (known === undefined) {
          users.set(p, [k]);
          index.set(p, index.size);
          firstName.set(p, name);
        } else if (known[known.length - 1] !== k) known.push(k);
        const other = byStorage.get(p.storage);
        if (other !== undefined && other.p !== p) {
          throw new TesseraError(`FullyShardedDataParallel: '${other.name}' (unit ${other.unit}) and '${name}' (unit ${k}) are different Parameter objects over the same memory; ` +
            'sharding copies each parameter, which would untie them. Tie weights by holding one Parameter in both places (as GPT does: head.weight = wte.weight), or give each its own tensor.');
        }
        byStorage.set(p.storage, { p, name, unit: k });
      }
    }
    // Every field of the units' modules that holds one of the parameters: gather installs there.
    const slots = new Map<Parameter, Slot[]>();
    for (const module of modules) {
      for (const [, owner, local] of ownersOf(module)) {
        const p = (owner as unknown as Record<string, unknown>)[local] as Parameter;
        const list = slots.get(p) ?? [];
        if (!list.some((s) => s.owner === owner && s.local === local)) list.push({ owner, local });
        slots.set(p, list);
      }
    }
    const makeSpace = async (params: readonly [string, Parameter][], spaceUsers: readonly number[]): Promise<FlatSpace> => {
      await broadcastTensors(group, params.map(([, p]) => p), 0, 'FullyShardedDataParallel.create');
      const tensorDType = params[0]![1].dtype;
      const dtype = commDType(tensorDType, 'FullyShardedDataParallel');
      const flatParams: FlatParam[] = [];
      let total = 0;
      for (const [, p] of params) {
        flatParams.push({ shape: [...p.shape], size: p.size, offset: total, slots: slots.get(p)!, index: index.get(p)! });
        total += p.size;
      }
      const { counts, offsets: starts } = evenBlocks(total, group.size);
      const flat = allocArray(dtype, total);
      params.forEach(([, p], i) => flat.set(p.data(), flatParams[i]!.offset));
      const backend = params[0]![1].storage.backend.name;
      const mine = flat.subarray(starts[group.rank]!, starts[group.rank]! + counts[group.rank]!);
      const shard = new Parameter(tensor(mine, { shape: [mine.length], dtype: tensorDType, backend }));
      return { params: flatParams, users: spaceUsers, names: params.map(([, p]) => firstName.get(p)!), total, dtype, tensorDType, backend, counts, starts, shard };
    };
    const spaceOf = new Map<Parameter, { space: FlatSpace; position: number }>();
    const place = (space: FlatSpace, params: readonly [string, Parameter][]): void => params.forEach(([, p], position) => spaceOf.set(p, { space, position }));
    const spaces: FlatSpace[] = [];
    for (const [k, params] of perUnit.entries()) {
      const own = params.filter(([, p]) => users.get(p)!.length === 1);
      if (own.length === 0) continue;
      const dtypes = new Set(own.map(([, p]) => p.dtype));
      if (dtypes.size !== 1) throw new TesseraError(`FullyShardedDataParallel: a unit mixes parameter dtypes (${[...dtypes].join(', ')}); give each unit one dtype.`);
      const space = await makeSpace(own, [k]);
      spaces.push(space);
      place(space, own);
      for (const [, p] of own) p.dispose(); // the whole parameters live only while the unit runs
    }
    // Shared parameters: one space per set of users and dtype, in order of first appearance.
    const sharedGroups = new Map<string, { users: number[]; params: [string, Parameter][] }>();
    for (const params of perUnit) {
      for (const entry of params) {
        const u = users.get(entry[1])!;
        if (u.length === 1 || spaceOf.has(entry[1])) continue;
        const key = `${u.join(',')}:${entry[1].dtype}`;
        const g = sharedGroups.get(key) ?? { users: u, params: [] };
        if (!g.params.some(([, p]) => p === entry[1])) g.params.push(entry);
        sharedGroups.set(key, g);
      }
    }
    for (const g of sharedGroups.values()) {
      const space = await makeSpace(g.params, g.users);
      spaces.push(space);
      place(space, g.params);
    }
    for (const g of sharedGroups.values()) for (const [, p] of g.params) p.dispose();
    const units: Unit[] = modules.map((module, k) => ({
      module, entries: perUnit[k]!.map(([name, p]) => ({ name, ...spaceOf.get(p)! })),
    }));
    const optimizer = makeOptimizer(spaces.map((s) => s.shard));
    if (optimizer.paramGroups.length !== 1) throw new TesseraError('FullyShardedDataParallel.create: makeOptimizer must build one parameter group over the shards it is given.');
    return new FullyShardedDataParallel(units, spaces, scheduleOf(spaces, units.length), index.size, group, optimizer, options);
  }

  /** This rank's shards (what its optimizer trains): one per flat space, the units' own then the shared ones. */
  parameters(): Parameter[] {
    return this.spaces.map((s) => s.shard);
  }

  /** Elements of parameters this rank keeps between steps. */
  get shardElements(): number {
    return this.spaces.reduce((n, s) => n + s.shard.size, 0);
  }

  /** The flat spaces (each unit's own; one per set of units sharing parameters), in the optimizer's order. */
  flatSpaces(): FsdpFlatSpace[] {
    return this.spaces.map((s) => ({ users: s.users, names: s.names, elements: s.total, shard: s.shard }));
  }

  /** This rank's bytes, by what holds them (see FsdpMemory). */
  memory(): FsdpMemory {
    let optimizerStateBytes = 0;
    for (const st of this.optimizer.state.values()) {
      for (const v of Object.values(st)) if (typeof v !== 'number') optimizerStateBytes += v.size * itemsize(v.dtype);
    }
    let bufferBytes = 0, wholeBufferBytes = 0, bufferAllocations = 0;
    for (const slot of this.slots()) {
      const kept = slot.keptBytes;
      bufferBytes += kept.whole + kept.shard;
      wholeBufferBytes += kept.whole;
      bufferAllocations += slot.allocations;
    }
    return {
      shardBytes: this.spaces.reduce((n, s) => n + s.shard.size * itemsize(s.tensorDType), 0),
      optimizerStateBytes,
      bufferBytes,
      wholeBufferBytes,
      bufferAllocations,
      peakGatheredBytes: this.peakGathered,
    };
  }

  zeroGrad(): void {
    this.optimizer.zeroGrad();
  }

  /**
   * Runs the units on this rank's share of the batch. The result is a leaf requiring grad: compute
   * the loss from it and pass the loss to backward().
   */
  async forward(x: Tensor): Promise<Tensor> {
    this.inputs = [];
    this.randomStates = [];
    this.peakGathered = 0;
    const { forwardGather, forwardRelease } = this.schedule;
    let h = x;
    let next = this.gatherAll(forwardGather[0]!);
    for (const [k, unit] of this.units.entries()) {
      this.inputs.push(h);
      await next;
      const gatherNext = (): void => { if (k + 1 < this.units.length) next = this.gatherAll(forwardGather[k + 1]!); };
      if (this.prefetch) gatherNext();
      this.randomStates.push(snapshotGenerators());
      const out = noGrad(() => unit.module.call(h) as Tensor);
      this.releaseAll(forwardRelease[k]!);
      h = out;
      if (!this.prefetch) gatherNext();
    }
    this.output = tensor(h.data(), { shape: [...h.shape], dtype: h.dtype, backend: h.storage.backend.name, requiresGrad: true });
    return this.output;
  }

  /**
   * Differentiates `loss` (computed from forward's result) back through every unit, each
   * gathered and recomputed in turn; the shards' gradients become the average over the ranks.
   */
  async backward(loss: Tensor): Promise<void> {
    const output = this.output;
    if (output === undefined) throw new TesseraError('FullyShardedDataParallel.backward: call forward first.');
    this.output = undefined;
    backward(loss);
    let grad = output.grad;
    if (grad === undefined) throw new TesseraError('FullyShardedDataParallel.backward: the loss does not depend on the output of forward().');
    const { backwardGather, backwardReduce } = this.schedule;
    const last = this.units.length - 1;
    let next = this.gatherAll(backwardGather[last]!);
    for (let i = last; i >= 0; i--) {
      const unit = this.units[i]!;
      const input = i === 0 ? this.inputs[0]! : tensor(this.inputs[i]!.data(), { shape: [...this.inputs[i]!.shape], dtype: this.inputs[i]!.dtype, backend: this.inputs[i]!.storage.backend.name, requiresGrad: true });
      await next;
      const gatherNext = (): void => { if (i > 0) next = this.gatherAll(backwardGather[i - 1]!); };
      if (this.prefetch) gatherNext();
      const out = this.recompute(unit, i, input);
      backward(out, grad);
      this.notePeak();
      // While the prefetched gather of unit i − 1 is in flight its slots are lent; otherwise none is.
      const slot = this.prefetch && i > 0 ? this.reduceSlot! : this.gatherSlots[0]!;
      for (const space of backwardReduce[i]!) {
        await this.reduceGradients(space, this.held.get(space)!, slot);
        this.releaseAll([space]);
      }
      grad = i === 0 ? undefined : input.grad;
      if (!this.prefetch) gatherNext();
    }
    this.inputs = [];
    this.randomStates = [];
  }

  /**
   * Unit i's forward again, with a graph: the generators as they were at its forward (the same
   * dropout masks), and its buffers left as the forward left them (statistics updated once).
   */
  private recompute(unit: Unit, i: number, input: Tensor): Tensor {
    const buffers = unit.module.buffers();
    const values = buffers.map((b) => b.data());
    const now = snapshotGenerators();
    this.randomStates[i]!.restore();
    try {
      return unit.module.call(input) as Tensor;
    } finally {
      now.restore();
      noGrad(() => buffers.forEach((b, k) => assignValues(b, values[k]!, 'FullyShardedDataParallel.backward')));
    }
  }

  /** Updates this rank's shards. */
  step(): void {
    this.optimizer.step();
  }

  /**
   * Every unit's whole parameters by name (a collective): one map per unit, of the parameters it
   * uses (a shared one in each user's map, the same tensor). They stay installed in the modules, in
   * every field that holds them (a tied head and its embedding alike), so the model can be
   * evaluated or saved as usual (its stateDict() has the plain model's keys), until the next
   * forward() frees them.
   */
  async gatherParameters(): Promise<Map<string, Tensor>[]> {
    const whole = new Map<FlatSpace, Parameter[]>();
    for (const space of this.spaces) whole.set(space, await this.gather(space, this.gatherSlots[0]!));
    return this.units.map((unit) => new Map(unit.entries.map((e) => [e.name, whole.get(e.space)![e.position]!])));
  }

  /**
   * The optimizer's state as one optimizer over the whole model would hold it: parameter indices
   * follow the units' parameters in order (unit by unit, each in namedParameters order, a shared
   * parameter once at its first user), each state tensor gathered whole from the ranks' shards. A
   * collective; every rank gets the dict.
   */
  async stateDict(): Promise<OptimizerStateDict> {
    const local = this.optimizer.stateDict();
    const { params: _shards, ...options } = local.paramGroups[0]!;
    const result: OptimizerStateDict = { state: {}, paramGroups: [{ ...options, params: Array.from({ length: this.parameterCount }, (_, i) => i) }] };
    const byIndex: ParamState[] = [];
    for (const [k, space] of this.spaces.entries()) {
      const shardState = local.state[String(k)];
      if (shardState === undefined) return result; // before the first step no rank has state
      const states: ParamState[] = space.params.map(() => Object.fromEntries(Object.entries(shardState).filter(([, v]) => typeof v === 'number')));
      for (const [key, v] of Object.entries(shardState)) {
        if (typeof v === 'number') continue;
        await this.gatherSlots[0]!.run(space, async ({ whole, shard }) => {
          shard.set(v.data());
          const flat = await this.group.allGather(shard, { counts: space.counts, output: whole });
          space.params.forEach((fp, i) => {
            states[i]![key] = tensor(flat.subarray(fp.offset, fp.offset + fp.size), { shape: [...fp.shape], dtype: space.tensorDType, backend: space.backend });
          });
        });
      }
      space.params.forEach((fp, i) => { byIndex[fp.index] = states[i]!; });
    }
    byIndex.forEach((st, i) => { result.state[String(i)] = st; });
    return result;
  }

  /** Restores a dict from stateDict() (saved on any number of ranks): each rank takes its range of every state tensor. */
  async loadStateDict(sd: OptimizerStateDict): Promise<void> {
    const state: Record<string, ParamState> = {};
    for (const [k, space] of this.spaces.entries()) {
      const whole = space.params.map((fp) => sd.state[String(fp.index)]);
      if (whole.some((st) => st === undefined)) continue;
      const mine: ParamState = {};
      const start = space.starts[this.group.rank]!;
      for (const [key, v] of Object.entries(whole[0]!)) {
        if (typeof v === 'number') { mine[key] = v; continue; }
        const flat = allocArray(space.dtype, space.total);
        whole.forEach((st, i) => flat.set((st![key] as Tensor).contiguous().data(), space.params[i]!.offset));
        mine[key] = tensor(flat.subarray(start, start + space.shard.size), { shape: [space.shard.size], dtype: space.tensorDType, backend: space.backend });
      }
      state[String(k)] = mine;
    }
    const { params: _all, ...options } = sd.paramGroups[0]!;
    this.optimizer.loadStateDict({ state, paramGroups: [{ ...options, params: this.spaces.map((_, k) => k) }] });
  }

  private slots(): CommSlot[] {
    return this.reduceSlot === undefined ? [...this.gatherSlots] : [...this.gatherSlots, this.reduceSlot];
  }

  /**
   * Gathers the spaces a pass needs next (collectives started in the same order on every rank) and
   * holds them; the j-th space (the schedule lists a group largest first) uses gather slot j. The
   * caller awaits this before it gathers again, which keeps the slots free for the next group.
   */
  private async gatherAll(spaces: readonly FlatSpace[]): Promise<void> {
    if (spaces.length === 1) {
      this.held.set(spaces[0]!, await this.gather(spaces[0]!, this.gatherSlots[0]!));
    } else {
      const gathered = await Promise.all(spaces.map((s, j) => this.gather(s, this.gatherSlots[j]!)));
      spaces.forEach((s, i) => this.held.set(s, gathered[i]!));
    }
    this.notePeak();
  }

  /**
   * All-gathers a space's flat parameters through `slot`'s arrays and installs them, as new
   * Parameters (copies: the slot is reused after), in every field that holds them.
   */
  private gather(space: FlatSpace, slot: CommSlot): Promise<Parameter[]> {
    return slot.run(space, async ({ whole, shard }) => {
      copyValuesInto(space.shard, shard, 0);
      const flat = await this.group.allGather(shard, { counts: space.counts, output: whole });
      return space.params.map((fp) => {
        const p = new Parameter(tensor(flat.subarray(fp.offset, fp.offset + fp.size), { shape: [...fp.shape], dtype: space.tensorDType, backend: space.backend }));
        for (const { owner, local } of fp.slots) {
          // Parameters gatherParameters() left installed are freed now.
          const installed = (owner as unknown as Record<string, unknown>)[local];
          if (installed instanceof Parameter && !installed.isDisposed) installed.dispose();
          owner.registerParameter(local, p);
        }
        return p;
      });
    });
  }

  /**
   * Reduce-scatters (averages) a space's parameter gradients, through `slot`'s arrays, into its
   * shard's gradient (a new tensor: the slot is reused after), accumulating.
   */
  private reduceGradients(space: FlatSpace, params: readonly Parameter[], slot: CommSlot): Promise<void> {
    return slot.run(space, async ({ whole: flat, shard: reduced }) => {
      params.forEach((p, i) => {
        const { offset } = space.params[i]!;
        const g = p._peekGrad();
        if (g !== undefined) copyValuesInto(g, flat, offset);
        else flat.fill(0, offset, offset + p.size);
      });
      // flat is refilled before every use, so the collective may reduce in it (no copy into the group's scratch).
      const mine = await this.group.reduceScatter(flat, { op: 'avg', counts: space.counts, output: reduced, overwriteInput: true });
      const previous = space.shard.grad;
      const values = previous === undefined ? mine : Float64Array.from(previous.data(), (v, j) => v + mine[j]!);
      previous?.dispose();
      space.shard.grad = tensor(values, { shape: [space.shard.size], dtype: space.tensorDType, backend: space.backend });
    });
  }

  /** Frees held spaces' whole parameters and their gradients. */
  private releaseAll(spaces: readonly FlatSpace[]): void {
    for (const space of spaces) {
      for (const p of this.held.get(space) ?? []) {
        p._peekGrad()?.dispose();
        p._replaceGrad(undefined, false);
        p.dispose();
      }
      this.held.delete(space);
    }
  }

  /** Updates peakGatheredBytes with the whole parameters and gradients held now. */
  private notePeak(): void {
    let bytes = 0;
    for (const [space, params] of this.held) {
      const width = itemsize(space.tensorDType);
      for (const p of params) bytes += (p.grad === undefined ? p.size : 2 * p.size) * width;
    }
    this.peakGathered = Math.max(this.peakGathered, bytes);
  }
}

/**
 * Which spaces each unit gathers and releases in forward, and gathers and reduces in backward: a
 * space opens at its first user in the pass's direction and closes after its last. The spaces
 * gathered together are listed largest first (ties in creation order, the same on every rank),
 * so that gather slot j is sized to the j-th largest.
 */
function scheduleOf(spaces: readonly FlatSpace[], unitCount: number): Schedule {
  const empty = (): FlatSpace[][] => Array.from({ length: unitCount }, () => []);
  const schedule = { forwardGather: empty(), forwardRelease: empty(), backwardGather: empty(), backwardReduce: empty() };
  for (const space of spaces) {
    const first = space.users[0]!, last = space.users[space.users.length - 1]!;
    schedule.forwardGather[first]!.push(space);
    schedule.forwardRelease[last]!.push(space);
    schedule.backwardGather[last]!.push(space);
    schedule.backwardReduce[first]!.push(space);
  }
  const bytes = (s: FlatSpace): number => s.total * elementBytes(s.dtype);
  for (const group of [...schedule.forwardGather, ...schedule.backwardGather]) group.sort((a, b) => bytes(b) - bytes(a));
  return schedule;
}
