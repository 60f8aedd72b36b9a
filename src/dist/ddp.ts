// Data-parallel training: every rank holds a replica of the model, computes gradients on its
// own share of the batch, and the gradients are averaged across ranks before the optimizer
// step, so every replica takes the same step as one process training on the whole batch
// (PyTorch's DistributedDataParallel; Li et al. 2020, arXiv:2006.15704).
//
// What differs from PyTorch, and why: tessera's backward pass is synchronous JavaScript and its
// collectives are asynchronous (they progress on the event loop), so a reduction started from a
// gradient hook could not make progress until the backward pass returns anyway. The reduction is
// therefore an explicit, awaited call after backward():
//
//   const loss = lossFn(ddp.call(x), y);
//   loss.backward();
//   await ddp.syncGradients();   // every rank's .grad is now the average over all ranks
//   optimizer.step();
//
// Gradient accumulation needs no `no_sync()`: call backward() on several micro-batches and
// syncGradients() once. Gradients travel in buckets (25 MB by default, PyTorch's bucket_cap_mb),
// in reverse registration order (roughly the order backward produces them), all buckets in
// flight at once; each bucket is one all-reduce with the 'avg' reduction.
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { Module, type Parameter } from '../nn/module.js';
import type { ProcessGroup } from './process-group.js';
import { broadcastTensors, commDType, reduceGradients } from './tensor-sync.js';
import type { DType } from './types.js';

export interface DdpOptions {
  /** Bytes per gradient bucket (default 25 MB). One all-reduce per bucket. */
  bucketBytes?: number;
  /**
   * Also copy the root's buffers (BatchNorm running statistics, ...) to every rank in each
   * `syncGradients()`, so that every replica starts its next forward pass with the root's, as
   * PyTorch's broadcast_buffers=True does before each forward. Default true.
   */
  broadcastBuffers?: boolean;
  /** Rank whose parameters and buffers every replica starts from (default 0). */
  root?: number;
}

/**
 * Wraps a module for data-parallel training over `group`. Create it with `await
 * DistributedDataParallel.create(model, group)` on every rank: that copies the root's
 * parameters and buffers to every replica, so ranks may build the model with different seeds.
 * The wrapper is a Module (its parameters are the model's, under `module.`), so optimizers,
 * `train()`/`eval()` and state dicts work on it as on the model. Move the model to its backend
 * before wrapping it: the gradient buckets hold the parameters that exist at creation.
 */
export class DistributedDataParallel<In extends unknown[] = [Tensor], Out = Tensor> extends Module<In, Out> {
  /** Parameters of one communication dtype whose gradients are reduced together. */
  private readonly buckets: Parameter[][];
  readonly root: number;
  private readonly syncBuffers: boolean;

  private constructor(readonly module: Module<In, Out>, readonly group: ProcessGroup, options: DdpOptions) {
    super();
    this.root = options.root ?? 0;
    this.syncBuffers = options.broadcastBuffers ?? true;
    const bucketBytes = options.bucketBytes ?? 25e6;
    if (!(bucketBytes > 0)) throw new TesseraError(`DistributedDataParallel: bucketBytes must be positive, got ${bucketBytes}.`);
    if (!Number.isInteger(this.root) || this.root < 0 || this.root >= group.size) {
      throw new TesseraError(`DistributedDataParallel: root ${this.root} is not a rank of this group of ${group.size}.`);
    }
    this.buckets = makeBuckets(module.parameters().filter((p) => p.requiresGrad), bucketBytes);
  }

  /** Wraps `module` and makes every replica equal to the root's (parameters and buffers). */
  static async create<In extends unknown[], Out>(module: Module<In, Out>, group: ProcessGroup, options: DdpOptions = {}): Promise<DistributedDataParallel<In, Out>> {
    const ddp = new DistributedDataParallel(module, group, options);
    await broadcastTensors(group, [...module.parameters(), ...module.buffers()], ddp.root, 'DistributedDataParallel.create');
    return ddp;
  }

  override forward(...args: In): Out {
    return this.module.call(...args);
  }

  /**
   * Averages every parameter's gradient over the group's ranks, in place (and, with
   * broadcastBuffers, copies the root's buffers to every rank). A parameter without a gradient
   * on this rank counts as a zero gradient here, and gets the average assigned. Every rank must
   * call it the same number of times (it is a collective).
   */
  async syncGradients(): Promise<void> {
    if (this.group.size === 1) return;
    // Every bucket's all-reduce is issued before any is awaited, so they are all in flight at once.
    await Promise.all(this.buckets.map((params) => reduceGradients(params, this.group, 'avg')));
    if (this.syncBuffers) await this.broadcastBuffers();
  }

  /** Copies the root's buffers (e.g. BatchNorm running statistics) to every rank. */
  async broadcastBuffers(): Promise<void> {
    await broadcastTensors(this.group, this.module.buffers(), this.root, 'DistributedDataParallel.broadcastBuffers');
  }

  /**
   * The largest difference between this rank's parameters and the root's (0 when the replicas
   * agree): a check that no rank skipped a step. A collective: every rank must call it.
   */
  async replicaDivergence(): Promise<number> {
    let worst = 0;
    for (const p of this.module.parameters()) {
      const mine = Float64Array.from(p.data());
      const root = Float64Array.from(mine);
      await this.group.broadcast(root, { root: this.root });
      for (let i = 0; i < mine.length; i++) worst = Math.max(worst, Math.abs(mine[i]! - root[i]!));
    }
    return worst;
  }
}

/** Gradient buckets in reverse registration order, at most `bucketBytes` each (a larger parameter gets its own). */
function makeBuckets(params: readonly Parameter[], bucketBytes: number): Parameter[][] {
  const buckets: Parameter[][] = [];
  const open = new Map<DType, { params: Parameter[]; bytes: number }>();
  for (const p of [...params].reverse()) {
    const dtype = commDType(p.dtype, 'DistributedDataParallel');
    const bytes = p.size * (dtype === 'float64' ? 8 : 4);
    let b = open.get(dtype);
    if (b !== undefined && b.bytes + bytes > bucketBytes) { buckets.push(b.params); b = undefined; }
    if (b === undefined) open.set(dtype, (b = { params: [], bytes: 0 }));
    b.params.push(p);
    b.bytes += bytes;
  }
  for (const b of open.values()) buckets.push(b.params);
  return buckets;
}
