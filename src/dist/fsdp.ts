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
// So at any time a rank holds its 1/W of every parameter, gradient and optimizer state, plus one
// unit's whole parameters and the units' inputs: the memory of ZeRO-3 with activation
// checkpointing at unit boundaries. Communication per step: two all-gathers and one
// reduce-scatter of the parameters, 1.5× data parallelism's all-reduce, as in the paper.
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
//   const fsdp = await FullyShardedDataParallel.create([block1, block2, head], group, (shards) => new optim.Adam(shards));
//   const out = await fsdp.forward(myShareOfTheBatch);
//   await fsdp.backward(lossOf(out));
//   fsdp.step();
// Units must not share parameters (tied weights stay inside one unit).
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { backward } from '../autodiff/backward.js';
import { noGrad } from '../autodiff/mode.js';
import { snapshotGenerators } from '../core/random.js';
import { copyValuesInto } from '../core/tensor.js';
import { assignValues } from '../nn/inplace.js';
import { Parameter, type AnyModule } from '../nn/module.js';
import { tensor } from '../ops/creation.js';
import type { BaseOptions, Optimizer, OptimizerStateDict, ParamState } from '../optim/optimizer.js';
import type { ProcessGroup } from './process-group.js';
import { evenBlocks } from './partition.js';
import { broadcastTensors, commDType } from './tensor-sync.js';
import { allocArray, sharedArray, type CommArray, type DType } from './types.js';

/** One unit: its module, where each of its parameters sits in its flat space, and this rank's shard. */
interface Unit {
  readonly module: AnyModule;
  /** Dotted parameter names (as namedParameters gives them), shapes and offsets. */
  readonly names: readonly string[];
  readonly shapes: readonly (readonly number[])[];
  readonly offsets: readonly number[];
  readonly dtype: DType;
  readonly tensorDType: Tensor['dtype'];
  readonly backend: string;
  readonly counts: readonly number[];
  /** Where each rank's range starts in the flat parameters. */
  readonly starts: readonly number[];
  /** This rank's range of the flat parameters, trained by the local optimizer. */
  readonly shard: Parameter;
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

/** A unit's reused communication arrays (see buffersOf). */
interface UnitBuffers {
  readonly shard: CommArray;
  readonly whole: CommArray;
  readonly grads: CommArray;
  readonly reduced: CommArray;
}

export class FullyShardedDataParallel {
  private inputs: Tensor[] = [];
  private readonly buffers = new Map<Unit, UnitBuffers>();
  /** The random generators' state before each unit's forward, restored for its recomputation. */
  private randomStates: ReturnType<typeof snapshotGenerators>[] = [];
  private output: Tensor | undefined;
  readonly prefetch: boolean;

  private constructor(
    private readonly units: readonly Unit[],
    readonly group: ProcessGroup,
    /** This rank's optimizer over its shards (one 1-D parameter per unit). */
    readonly optimizer: Optimizer<BaseOptions>,
    options: FsdpOptions,
  ) {
    this.prefetch = options.prefetch ?? true;
  }

  /**
   * Shards `modules`' parameters over the group (rank 0's values) and frees the modules' own
   * copies; builds this rank's optimizer over its shards. Every rank passes the same structure.
   */
  static async create(
    modules: readonly AnyModule[], group: ProcessGroup, makeOptimizer: (shards: Parameter[]) => Optimizer<BaseOptions>, options: FsdpOptions = {},
  ): Promise<FullyShardedDataParallel> {
    const seen = new Set<Tensor>();
    const units: Unit[] = [];
    for (const module of modules) {
      const params = [...module.namedParameters()];
      if (params.length === 0) throw new TesseraError('FullyShardedDataParallel: a unit has no parameters; merge it into a neighbour.');
      for (const [, p] of params) {
        if (seen.has(p)) throw new TesseraError('FullyShardedDataParallel: units share a parameter (tied weights); keep shared parameters inside one unit.');
        seen.add(p);
      }
      const dtypes = new Set(params.map(([, p]) => p.dtype));
      if (dtypes.size !== 1) throw new TesseraError(`FullyShardedDataParallel: a unit mixes parameter dtypes (${[...dtypes].join(', ')}); give each unit one dtype.`);
      await broadcastTensors(group, params.map(([, p]) => p), 0, 'FullyShardedDataParallel.create');
      const tensorDType = params[0]![1].dtype;
      const dtype = commDType(tensorDType, 'FullyShardedDataParallel');
      const offsets: number[] = [];
      let length = 0;
      for (const [, p] of params) { offsets.push(length); length += p.size; }
      const { counts, offsets: starts } = evenBlocks(length, group.size);
      const flat = allocArray(dtype, length);
      params.forEach(([, p], i) => flat.set(p.data(), offsets[i]));
      const backend = params[0]![1].storage.backend.name;
      const mine = flat.subarray(starts[group.rank]!, starts[group.rank]! + counts[group.rank]!);
      const shard = new Parameter(tensor(mine, { shape: [mine.length], dtype: tensorDType, backend }));
      units.push({
        module, names: params.map(([n]) => n), shapes: params.map(([, p]) => [...p.shape]), offsets, dtype, tensorDType, backend, counts, starts, shard,
      });
      for (const [, p] of params) p.dispose(); // the whole parameters live only while the unit runs
    }
    const optimizer = makeOptimizer(units.map((u) => u.shard));
    if (optimizer.paramGroups.length !== 1) throw new TesseraError('FullyShardedDataParallel.create: makeOptimizer must build one parameter group over the shards it is given.');
    return new FullyShardedDataParallel(units, group, optimizer, options);
  }

  /** This rank's shards (what its optimizer trains). */
  parameters(): Parameter[] {
    return this.units.map((u) => u.shard);
  }

  /** Elements of parameters this rank keeps between steps. */
  get shardElements(): number {
    return this.units.reduce((n, u) => n + u.shard.size, 0);
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
    let h = x;
    let next = this.gather(this.units[0]!);
    for (const [k, unit] of this.units.entries()) {
      this.inputs.push(h);
      const params = await next;
      const gatherNext = (): void => { if (k + 1 < this.units.length) next = this.gather(this.units[k + 1]!); };
      if (this.prefetch) gatherNext();
      this.randomStates.push(snapshotGenerators());
      const out = noGrad(() => unit.module.call(h) as Tensor);
      this.release(params);
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
    const last = this.units.length - 1;
    let next = this.gather(this.units[last]!);
    for (let i = last; i >= 0; i--) {
      const unit = this.units[i]!;
      const input = i === 0 ? this.inputs[0]! : tensor(this.inputs[i]!.data(), { shape: [...this.inputs[i]!.shape], dtype: this.inputs[i]!.dtype, backend: this.inputs[i]!.storage.backend.name, requiresGrad: true });
      const params = await next;
      const gatherNext = (): void => { if (i > 0) next = this.gather(this.units[i - 1]!); };
      if (this.prefetch) gatherNext();
      const out = this.recompute(unit, i, input);
      backward(out, grad);
      await this.reduceGradients(unit, params);
      this.release(params);
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
   * Every unit's whole parameters by name (a collective). They stay installed in the modules, so
   * the model can be evaluated or saved as usual, until the next forward() frees them.
   */
  async gatherParameters(): Promise<Map<string, Tensor>[]> {
    const out: Map<string, Tensor>[] = [];
    for (const unit of this.units) {
      const params = await this.gather(unit);
      out.push(new Map(unit.names.map((n, i) => [n, params[i]!])));
    }
    return out;
  }

  /**
   * The optimizer's state as one optimizer over the whole model would hold it: parameter indices
   * follow the units' parameters in order (unit by unit, each in namedParameters order), each
   * state tensor gathered whole from the ranks' shards. A collective; every rank gets the dict.
   */
  async stateDict(): Promise<OptimizerStateDict> {
    const local = this.optimizer.stateDict();
    const { params: _shards, ...options } = local.paramGroups[0]!;
    const count = this.units.reduce((n, u) => n + u.names.length, 0);
    const result: OptimizerStateDict = { state: {}, paramGroups: [{ ...options, params: Array.from({ length: count }, (_, i) => i) }] };
    let index = 0;
    for (const [k, unit] of this.units.entries()) {
      const shardState = local.state[String(k)];
      if (shardState === undefined) return result; // before the first step no rank has state
      const states: ParamState[] = unit.names.map(() => Object.fromEntries(Object.entries(shardState).filter(([, v]) => typeof v === 'number')));
      for (const [key, v] of Object.entries(shardState)) {
        if (typeof v === 'number') continue;
        const mine = sharedArray(unit.dtype, unit.shard.size);
        mine.set(v.data());
        const flat = await this.group.allGather(mine, { counts: unit.counts });
        unit.shapes.forEach((shape, i) => {
          const size = shape.reduce((a, b) => a * b, 1);
          states[i]![key] = tensor(flat.subarray(unit.offsets[i]!, unit.offsets[i]! + size), { shape: [...shape], dtype: unit.tensorDType, backend: unit.backend });
        });
      }
      for (const st of states) result.state[String(index++)] = st;
    }
    return result;
  }

  /** Restores a dict from stateDict() (saved on any number of ranks): each rank takes its range of every state tensor. */
  async loadStateDict(sd: OptimizerStateDict): Promise<void> {
    const state: Record<string, ParamState> = {};
    let index = 0;
    for (const [k, unit] of this.units.entries()) {
      const whole = unit.names.map(() => sd.state[String(index++)]);
      if (whole.some((st) => st === undefined)) continue;
      const mine: ParamState = {};
      const start = unit.starts[this.group.rank]!;
      for (const [key, v] of Object.entries(whole[0]!)) {
        if (typeof v === 'number') { mine[key] = v; continue; }
        const flat = allocArray(unit.dtype, unit.offsets[unit.offsets.length - 1]! + (unit.shapes[unit.shapes.length - 1]!.reduce((a, b) => a * b, 1)));
        whole.forEach((st, i) => flat.set((st![key] as Tensor).contiguous().data(), unit.offsets[i]));
        mine[key] = tensor(flat.subarray(start, start + unit.shard.size), { shape: [unit.shard.size], dtype: unit.tensorDType, backend: unit.backend });
      }
      state[String(k)] = mine;
    }
    const { params: _all, ...options } = sd.paramGroups[0]!;
    this.optimizer.loadStateDict({ state, paramGroups: [{ ...options, params: this.units.map((_, k) => k) }] });
  }

  /**
   * A unit's communication arrays, made at its first gather and reused every step: allocating
   * them per call (several MB per unit) kept the garbage collector busy for as long as the
   * matmuls ran. Everything read out of them is copied into tensors before they are reused.
   */
  private buffersOf(unit: Unit): UnitBuffers {
    let b = this.buffers.get(unit);
    if (b === undefined) {
      const total = unit.offsets[unit.offsets.length - 1]! + unit.shapes[unit.shapes.length - 1]!.reduce((a, c) => a * c, 1);
      b = {
        shard: sharedArray(unit.dtype, unit.shard.size),
        whole: sharedArray(unit.dtype, total),
        grads: sharedArray(unit.dtype, total),
        reduced: sharedArray(unit.dtype, unit.shard.size),
      };
      this.buffers.set(unit, b);
    }
    return b;
  }

  /** All-gathers a unit's flat parameters and installs them in its module as new Parameters. */
  private async gather(unit: Unit): Promise<Parameter[]> {
    const { shard: mine, whole } = this.buffersOf(unit);
    copyValuesInto(unit.shard, mine, 0);
    const flat = await this.group.allGather(mine, { counts: unit.counts, output: whole });
    const owners = new Map([...ownersOf(unit.module)].map(([dotted, owner, local]) => [dotted, { owner, local }]));
    return unit.names.map((name, i) => {
      const size = unit.shapes[i]!.reduce((a, b) => a * b, 1);
      const p = new Parameter(tensor(flat.subarray(unit.offsets[i]!, unit.offsets[i]! + size), { shape: [...unit.shapes[i]!], dtype: unit.tensorDType, backend: unit.backend }));
      const { owner, local } = owners.get(name)!;
      // Parameters gatherParameters() left installed are freed now.
      const installed = (owner as unknown as Record<string, unknown>)[local];
      if (installed instanceof Parameter && !installed.isDisposed) installed.dispose();
      owner.registerParameter(local, p);
      return p;
    });
  }

  /** Reduce-scatters (averages) a unit's parameter gradients into its shard's gradient, accumulating. */
  private async reduceGradients(unit: Unit, params: readonly Parameter[]): Promise<void> {
    const { grads: flat, reduced } = this.buffersOf(unit);
    params.forEach((p, i) => {
      if (p.grad !== undefined) copyValuesInto(p.grad, flat, unit.offsets[i]!);
      else flat.fill(0, unit.offsets[i]!, unit.offsets[i]! + p.size);
    });
    const mine = await this.group.reduceScatter(flat, { op: 'avg', counts: unit.counts, output: reduced });
    const previous = unit.shard.grad;
    const values = previous === undefined ? mine : Float64Array.from(previous.data(), (v, j) => v + mine[j]!);
    previous?.dispose();
    unit.shard.grad = tensor(values, { shape: [unit.shard.size], dtype: unit.tensorDType, backend: unit.backend });
  }

  private release(params: readonly Parameter[]): void {
    for (const p of params) {
      p.grad?.dispose();
      p.grad = undefined;
      p.dispose();
    }
  }
}
