// Pipeline parallelism (GPipe, Huang et al. 2019; 1F1B and interleaved 1F1B, Narayanan et al.
// 2021 §2.2; ZB-H1, Qi et al. 2024 §3): the model's layers are cut into consecutive stages; a
// step's batch is cut into m micro-batches that flow forward through the stages and their
// gradients backward. Rank d of p holds stage d, or with interleaving v chunks: model stages d,
// p + d, ..., (v−1)p + d. Each rank runs its forward (F) and backward (B) passes in the order of
// the schedule:
//   gpipe: every micro-batch's F, then every B, holding all m micro-batches' activations;
//   1f1b:  p − d − 1 warm-up F's on rank d, then F and B alternating, then the remaining B's,
//          holding at most p − d micro-batches' activations;
//   interleaved-1f1b: Megatron-LM's order over the v chunks (m a multiple of p), which shrinks
//          the bubble v-fold for v-fold more messages;
//   zb-h1: each backward split in two (autodiff/split-backward.ts): B, the gradient of the stage's
//          input, sent upstream at once, and W, its parameters' gradients, deferred to fill what
//          would be 1F1B's bubbles. min(p − d, m) warm-up F's, then B, F, W per micro-batch (the
//          last stage B, W, F), then B, W: at most p − d micro-batches between F and B, as in
//          1F1B, and one more between its B and W holding what W needs. B and W together run
//          each node's vjp once, as one backward pass does (no recomputation).
// The planner's pipeline simulator runs the same orders (ZB-H1's with equal F, B and W times: its
// priority rule reorders them for other times); test/dist/pipeline.test.ts checks that they agree.
// With `order: 'measured'`, zb-h1 times its passes during the first steps and then runs the order
// the simulator gives for the measured times (pipeline-measure.ts), every rank from the same step.
// Activations go to the next stage and their gradients come back by point-to-point messages: a
// small header (dtype, shape) then the values. The last stage's loss of each micro-batch is
// divided by m, so that the gradients accumulated over a step are those of the mean loss over the
// whole batch, as one process computing the whole batch would get. A stage may also be a
// ParallelStack over a tensor-parallel group (data × pipeline × tensor parallelism): its forward
// and backward passes are then awaited (not with zb-h1, which refuses it).
//
//   const pipe = new PipelineParallel(myStage, group, { microBatches: 8 });
//   optimizer.zeroGrad();
//   const loss = await pipe.step({ inputs, loss: (out, i) => crossEntropy(out, targets[i]) });
//   optimizer.step();   // each rank updates its own stage's parameters
import { TesseraError, fmtShape } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { backward } from '../autodiff/backward.js';
import { backwardSplit } from '../autodiff/split-backward.js';
import type { AnyModule } from '../nn/module.js';
import { ParallelStack } from './parallel-stack.js';
import { tensor } from '../ops/creation.js';
import type { ProcessGroup } from './process-group.js';
import { commDType } from './tensor-sync.js';
import { allocArray, elementBytes, type DType } from './types.js';
import { TiedParameters, type TiedParameter } from './tied-parameters.js';
import { digestOrders, medianOf, ordersFromTimes, type MeasuredPipelineSchedule, type PipelineStageTimes } from './pipeline-measure.js';

export type PipelineSchedule = 'gpipe' | '1f1b' | 'interleaved-1f1b' | 'zb-h1';

const SCHEDULES: readonly PipelineSchedule[] = ['gpipe', '1f1b', 'interleaved-1f1b', 'zb-h1'];

export interface PipelineOptions {
  /** Micro-batches per step (m; a multiple of the ranks for interleaved-1f1b). */
  microBatches: number;
  /** Default '1f1b'; 'interleaved-1f1b' when the rank is given several chunks. 'zb-h1': one chunk, not a ParallelStack. */
  schedule?: PipelineSchedule;
  /**
   * This rank's passes in the order to run them, in place of the schedule's default order: for
   * example the planner's simulation with given times (`simulatePipeline` with the stages'
   * forward/backward seconds, then `rankOrder(result, rank)`), which for ZB-H1 places the W passes
   * where that rank's bubbles really are. Every rank must take its order from one consistent
   * simulation (orders that do not fit together would wait on each other forever); each is checked
   * here for completeness and for the order of each micro-batch's own passes.
   *
   * 'measured' (zb-h1 only, on every rank): the first `warmUpSteps` + `profileSteps` steps run the
   * default order, and during the last `profileSteps` of them each rank times its F, B and W passes;
   * at the end of the last one the ranks all-gather their medians over the group, each simulates
   * ZB-H1 with those times, and from the next step on every rank runs its order from that
   * simulation (unless the simulation predicts it slower than the default order under the same
   * times). See `measured` for what was measured and chosen.
   */
  order?: readonly PipelineOp[] | 'measured';
  /** With order 'measured': steps whose passes are timed (default 1: m samples of each pass). */
  profileSteps?: number;
  /** With order 'measured': steps run before the timed ones and not timed (default 1: the first step runs cold code and allocates). */
  warmUpSteps?: number;
  /**
   * With order 'measured': switch only if the simulation predicts the measured-times order at least
   * this fraction faster than the default order. Default 0.02 (2%): on a 2-core host, switching on
   * predicted ties made steps up to 27% slower (bench/results/pipeline-zb-measured.md); 0 switches
   * unless predicted slower.
   */
  minPredictedGain?: number;
  /**
   * Parameters this rank shares with stages on other ranks, by name (a GPT's token embedding, used
   * by the first stage and, tied, by the last stage's head: `gpt.pipelineStage(...)` gives them).
   * The copies are made equal at the first step (the lowest holder's values) and after every step
   * each holder's gradient is the sum over the holders, as Megatron-LM's embedding group does
   * (tied-parameters.ts). Ranks pass their own; a tie's holders must give it the same name and size.
   */
  tiedParameters?: readonly TiedParameter[];
}

export interface PipelineOp {
  /** Forward; backward (with zb-h1, the input gradient only); zb-h1's parameter gradients. */
  kind: 'F' | 'B' | 'W';
  microBatch: number;
  /** Which of the rank's chunks (0 without interleaving). */
  chunk: number;
}

/**
 * The order in which rank `rank` of `ranks` runs its passes over `microBatches` micro-batches
 * (`chunks` model chunks per rank for interleaved-1f1b; W ops only with zb-h1).
 */
export function pipelineOrder(schedule: PipelineSchedule, ranks: number, rank: number, microBatches: number, chunks = 1): PipelineOp[] {
  const m = microBatches, p = ranks;
  const ops: PipelineOp[] = [];
  if (schedule === 'gpipe') {
    for (let i = 0; i < m; i++) ops.push({ kind: 'F', microBatch: i, chunk: 0 });
    for (let i = 0; i < m; i++) ops.push({ kind: 'B', microBatch: i, chunk: 0 });
    return ops;
  }
  if (schedule === 'zb-h1') {
    // The simulator's ZB-H1 rule (a ready B first; then a W if rank d has already deferred p − 1 − d
    // of them; then an F if fewer than p − d micro-batches await their B; then a W), played out
    // with equal F, B and W times. Only the last stage, which may defer none, runs W before F;
    // elsewhere the next F has arrived when B ends and the next B has not when F ends, so W fills
    // that gap.
    const lastRank = rank === p - 1;
    const op = (kind: PipelineOp['kind'], microBatch: number): PipelineOp => ({ kind, microBatch, chunk: 0 });
    let f = 0, b = 0;
    while (f < Math.min(p - rank, m)) ops.push(op('F', f++));
    while (f < m) {
      ops.push(op('B', b));
      if (lastRank) ops.push(op('W', b));
      ops.push(op('F', f++));
      if (!lastRank) ops.push(op('W', b));
      b++;
    }
    for (; b < m; b++) ops.push(op('B', b), op('W', b));
    return ops;
  }
  // 1F1B is the interleaved order with one chunk. Megatron-LM (schedules.py): forward k runs chunk
  // ⌊(k mod pv)/p⌋ of micro-batch ⌊k/pv⌋·p + k mod p (with v = 1: micro-batch k); backwards
  // visit the chunks in reverse; (p − d − 1)·2 + (v − 1)·p warm-up forwards (p − d − 1 for 1F1B).
  const v = schedule === 'interleaved-1f1b' ? chunks : 1;
  const total = m * v;
  const microBatchOf = (k: number): number => (v === 1 ? k : Math.floor(k / (p * v)) * p + (k % p));
  const chunkOf = (k: number): number => (v === 1 ? 0 : Math.floor((k % (p * v)) / p));
  const warmUp = Math.min(v === 1 ? p - rank - 1 : (p - rank - 1) * 2 + (v - 1) * p, total);
  const F = (k: number): PipelineOp => ({ kind: 'F', microBatch: microBatchOf(k), chunk: chunkOf(k) });
  const B = (k: number): PipelineOp => ({ kind: 'B', microBatch: microBatchOf(k), chunk: v - 1 - chunkOf(k) });
  let f = 0, b = 0;
  while (f < warmUp) ops.push(F(f++));
  while (f < total) {
    ops.push(F(f++));
    ops.push(B(b++));
  }
  while (b < total) ops.push(B(b++));
  return ops;
}

/** Longest activation shape a header carries. */
const MAX_RANK = 8;
const HEADER = 2 + MAX_RANK;
const DTYPE_CODES: readonly DType[] = ['float32', 'float64'];

/** What a stage keeps of a micro-batch between its forward and backward passes. */
interface InFlight {
  /** The received activation (a leaf whose .grad goes back upstream); undefined on the first stage. */
  input: Tensor | undefined;
  /** The stage's output. */
  output: Tensor;
  /** On the last stage, the micro-batch's loss divided by m. */
  loss?: Tensor;
}

/**
 * A stage (or chunk): a module, or a ParallelStack whose blocks communicate within a
 * tensor-parallel group (pipeline × tensor parallelism).
 */
export type PipelineChunk = AnyModule | ParallelStack;

/**
 * A rank's order as given: every (micro-batch, chunk) exactly once as F and B (and W for zb-h1),
 * F before B before W. Returns a copy.
 */
function checkOrder(order: readonly PipelineOp[], schedule: PipelineSchedule, m: number, v: number): PipelineOp[] {
  const kinds = schedule === 'zb-h1' ? ['F', 'B', 'W'] : ['F', 'B'];
  const done = new Map<string, number>();
  order.forEach((op, k) => {
    const where = `PipelineParallel: order[${k}] (${op.kind} of micro-batch ${op.microBatch}, chunk ${op.chunk})`;
    if (!kinds.includes(op.kind)) throw new TesseraError(`${where}: ${schedule} runs ${kinds.join(', ')} passes only.`);
    if (!Number.isInteger(op.microBatch) || op.microBatch < 0 || op.microBatch >= m || !Number.isInteger(op.chunk) || op.chunk < 0 || op.chunk >= v) {
      throw new TesseraError(`${where}: micro-batches are 0..${m - 1} and chunks 0..${v - 1}.`);
    }
    const key = `${op.microBatch}.${op.chunk}`;
    const before = done.get(key) ?? 0;
    if (kinds[before] !== op.kind) {
      throw new TesseraError(`${where}: comes ${before === kinds.length ? 'after all its passes' : `where its ${kinds[before]} pass is due`}; each micro-batch runs ${kinds.join(' then ')}, once each.`);
    }
    done.set(key, before + 1);
  });
  const missing = order.length !== m * v * kinds.length;
  if (missing) throw new TesseraError(`PipelineParallel: order has ${order.length} passes; ${m} micro-batches × ${v} chunk(s) × ${kinds.length} (${kinds.join(', ')}) = ${m * v * kinds.length} are needed.`);
  return order.map((op) => ({ ...op }));
}

/**
 * Disposes what the pipeline made for a micro-batch once its last backward pass ran: the received
 * activation, the received output gradient, the scaled loss, and the stage's output unless the
 * user's loss function saw it (last stage). Without this they would wait for the garbage
 * collector and the finalizers in the wasm heap.
 */
function releaseMicroBatch(kept: InFlight, outputGrad: Tensor | undefined, last: boolean): void {
  kept.input?.dispose();
  outputGrad?.dispose();
  kept.loss?.dispose();
  if (!last) kept.output.dispose();
}

export class PipelineParallel {
  readonly schedule: PipelineSchedule;
  readonly microBatches: number;
  /** This rank's chunks: chunk c is model stage c·p + rank. */
  readonly chunks: readonly PipelineChunk[];
  /**
   * Most (chunk, micro-batch) pairs between their forward and backward (B) passes at once during
   * the last step: whole activations kept.
   */
  peakInFlight = 0;
  /**
   * Most (chunk, micro-batch) pairs between their forward and their last backward pass at once:
   * peakInFlight, or with zb-h1 also those between B and W (which keep what W needs: the layers'
   * inputs and output gradients). The simulator's peakActivations counts these.
   */
  peakHeld = 0;
  /**
   * With order 'measured': what the ranks measured and which order runs from which step, once the
   * profiled steps are done (the same on every rank but `order`); undefined before.
   */
  measured: MeasuredPipelineSchedule | undefined;
  /** The passes the last step ran on this rank, in order. */
  lastOrder: readonly PipelineOp[] = [];
  /** The parameters shared with other ranks' stages (options.tiedParameters), matched at the first step. */
  readonly tied: TiedParameters;
  private steps = 0;
  private readonly customOrder: readonly PipelineOp[] | undefined;
  /** With order 'measured', until the switch: the untimed and timed steps, and the pass times so far (ms). */
  private profile: { warmUp: number; steps: number; minGain: number; F: number[]; B: number[]; W: number[]; maxBytes: number } | undefined;

  /**
   * `stage`: this rank's layers (rank r of the group is stage r), or with interleaved-1f1b its
   * chunks in order (chunk c is model stage c·p + r). Every rank must construct it with the same
   * options and the same number of chunks. zb-h1 takes one module per rank (not a ParallelStack).
   */
  constructor(stage: PipelineChunk | readonly PipelineChunk[], readonly group: ProcessGroup, options: PipelineOptions) {
    this.chunks = Array.isArray(stage) ? [...stage] : [stage as PipelineChunk];
    this.schedule = options.schedule ?? (this.chunks.length > 1 ? 'interleaved-1f1b' : '1f1b');
    this.microBatches = options.microBatches;
    const m = this.microBatches, p = group.size, v = this.chunks.length;
    if (!Number.isInteger(m) || m < 1) {
      throw new TesseraError(`PipelineParallel: microBatches must be a positive integer, got ${String(options.microBatches)}.`);
    }
    if (!SCHEDULES.includes(this.schedule)) {
      throw new TesseraError(`PipelineParallel: schedule '${String(this.schedule)}' is not one of ${SCHEDULES.join(', ')}.`);
    }
    if (this.schedule === 'zb-h1' && v > 1) {
      throw new TesseraError(`PipelineParallel: zb-h1 runs one chunk per rank, got ${v}; pass one module (ZB-V, the paper's two-chunk schedule, is not implemented), or use interleaved-1f1b for several chunks.`);
    }
    if (this.schedule === 'zb-h1' && this.chunks[0] instanceof ParallelStack) {
      // A ParallelStack's backward pass is awaited block by block around its collectives; it has no
      // input-gradient-only half to run before the parameters' gradients.
      throw new TesseraError('PipelineParallel: zb-h1 cannot split the backward pass of a ParallelStack stage (tensor-parallel blocks) into B and W; use 1f1b for pipeline × tensor parallelism.');
    }
    if ((this.schedule === 'interleaved-1f1b') !== (v > 1)) {
      throw new TesseraError(`PipelineParallel: ${this.schedule} with ${v} chunk(s) per rank; interleaved-1f1b needs at least 2 chunks, the others exactly 1.`);
    }
    if (options.order === 'measured') {
      if (this.schedule !== 'zb-h1') {
        throw new TesseraError(`PipelineParallel: order 'measured' places zb-h1's W passes from measured times; ${this.schedule}'s order does not depend on the times. Use schedule 'zb-h1', or leave order out.`);
      }
      const steps = options.profileSteps ?? 1, warmUp = options.warmUpSteps ?? 1, minGain = options.minPredictedGain ?? 0.02;
      if (!Number.isInteger(steps) || steps < 1) throw new TesseraError(`PipelineParallel: profileSteps must be a positive integer, got ${String(options.profileSteps)}.`);
      if (!Number.isInteger(warmUp) || warmUp < 0) throw new TesseraError(`PipelineParallel: warmUpSteps must be a non-negative integer, got ${String(options.warmUpSteps)}.`);
      if (!(minGain >= 0 && minGain < 1)) throw new TesseraError(`PipelineParallel: minPredictedGain is a fraction in [0, 1), got ${String(options.minPredictedGain)}.`);
      this.profile = { warmUp, steps, minGain, F: [], B: [], W: [], maxBytes: 0 };
    } else if (options.profileSteps !== undefined || options.warmUpSteps !== undefined || options.minPredictedGain !== undefined) {
      throw new TesseraError("PipelineParallel: profileSteps, warmUpSteps and minPredictedGain apply to order 'measured' only; pass order: 'measured' with schedule 'zb-h1', or leave them out.");
    } else if (options.order !== undefined) {
      this.customOrder = checkOrder(options.order, this.schedule, m, v);
    }
    if (v > 1 && m % p !== 0) {
      throw new TesseraError(`PipelineParallel: interleaved-1f1b needs micro-batches (${m}) to be a multiple of the ranks (${p}); use ${Math.ceil(m / p) * p}.`);
    }
    // Their messages' tags come after the step's (see step: 6 kinds × stages × micro-batches).
    this.tied = new TiedParameters(group, options.tiedParameters ?? [], 6 * p * v * m, 'PipelineParallel');
  }

  /** The model stage that chunk `chunk` of rank `rank` is. */
  private modelStage(rank: number, chunk: number): number {
    return chunk * this.group.size + rank;
  }

  get isFirst(): boolean { return this.group.rank === 0; }
  get isLast(): boolean { return this.group.rank === this.group.size - 1; }

  /**
   * Runs the forward and backward passes of one step. The first stage passes `inputs` (one
   * tensor per micro-batch); the last stage passes `loss`, the loss of a micro-batch's output.
   * Gradients accumulate into this stage's parameters' .grad (those of the mean loss). Returns
   * the mean loss over the micro-batches on the last stage, undefined elsewhere.
   */
  async step(args: { inputs?: readonly Tensor[]; loss?: (output: Tensor, microBatch: number) => Tensor }): Promise<number | undefined> {
    const m = this.microBatches;
    if (this.isFirst && args.inputs?.length !== m) {
      throw new TesseraError(`PipelineParallel.step: the first stage must pass ${m} input micro-batches, got ${args.inputs?.length ?? 'none'}.`);
    }
    if (this.isLast && args.loss === undefined) throw new TesseraError('PipelineParallel.step: the last stage must pass a loss function.');
    const stepIndex = this.steps++;
    const parity = stepIndex % 2;
    const p = this.group.size, v = this.chunks.length, stages = p * v;
    // A message's tag names its kind (0 header, 1 values, 2 gradient), the model stage that
    // receives it and the micro-batch; steps alternate between two tag ranges.
    const tag = (kind: number, receiver: number, microBatch: number): number => ((parity * 3 + kind) * stages + receiver) * m + microBatch;
    const inFlight = new Map<number, InFlight>();
    /** zb-h1: the W halves of the micro-batches whose B ran. */
    const awaitingW = new Map<number, () => void>();
    const sends: Promise<void>[] = [];
    let lossSum = 0;
    const rank = this.group.rank;
    this.peakInFlight = 0;
    this.peakHeld = 0;
    // Timing (order 'measured', profiled steps only): each pass from the moment its inputs are here
    // to the moment its messages are handed to the transport. Waiting on a receive is left out (it
    // is the neighbour's time, or the bubble), and so is waiting for sends to complete at the end of
    // the step; copying values into send buffers is in, as the rank does it.
    const profile = this.profile;
    const timing = profile !== undefined && stepIndex >= profile.warmUp ? profile : undefined;
    const order = this.customOrder ?? this.measured?.order ?? pipelineOrder(this.schedule, p, rank, m, v);
    this.lastOrder = order;
    // Every rank matches the tied parameters (possibly none) at the first step; each step's tied
    // gradients are summed over their holders at its end.
    if (!this.tied.ready) await this.tied.setUp();
    const tiedBefore = this.tied.takeGradients();

    for (const op of order) {
      const i = op.microBatch;
      const s = this.modelStage(rank, op.chunk);
      const key = op.chunk * m + i;
      const first = s === 0, last = s === stages - 1;
      const chunk = this.chunks[op.chunk]!;
      if (op.kind === 'F') {
        const input = first ? undefined : await this.receiveActivation((s - 1) % p, tag(0, s, i), tag(1, s, i), op.chunk);
        const started = timing ? performance.now() : 0;
        const x = input ?? args.inputs![i]!;
        const output = chunk instanceof ParallelStack ? await chunk.forward(x) : chunk.call(x) as Tensor;
        if (last) {
          const loss = args.loss!(output, i);
          lossSum += loss.item();
          inFlight.set(key, { input, output, loss: loss.mul(1 / m) });
        } else {
          sends.push(...this.sendActivation(output, (s + 1) % p, tag(0, s + 1, i), tag(1, s + 1, i)));
          inFlight.set(key, { input, output });
          if (timing) timing.maxBytes = Math.max(timing.maxBytes, output.size * elementBytes(commDType(output.dtype, 'PipelineParallel')));
        }
        if (timing) timing.F.push(performance.now() - started);
        this.peakInFlight = Math.max(this.peakInFlight, inFlight.size);
      } else if (op.kind === 'W') {
        const started = timing ? performance.now() : 0;
        const weights = awaitingW.get(key)!;
        awaitingW.delete(key);
        weights();
        if (timing) timing.W.push(performance.now() - started);
      } else {
        const kept = inFlight.get(key)!;
        inFlight.delete(key);
        let outputGrad: Tensor | undefined;
        if (!last) {
          const out = kept.output;
          const values = allocArray(commDType(out.dtype, 'PipelineParallel'), out.size);
          await this.group.recv(values, (s + 1) % p, { tag: tag(2, s, i) });
          outputGrad = tensor(values, { shape: [...out.shape], dtype: out.dtype, backend: out.storage.backend.name });
        }
        const started = timing ? performance.now() : 0;
        let inputGrad: Tensor | undefined;
        if (this.schedule === 'zb-h1') {
          // The first stage's input needs no gradient: its B computes nothing and W does it all.
          const split = backwardSplit(last ? kept.loss! : kept.output, kept.input === undefined ? [] : [kept.input], outputGrad);
          inputGrad = split.inputGrads[0];
          // W still reads the micro-batch's tensors (a layer's input for its weight gradient).
          awaitingW.set(key, () => {
            split.weights();
            releaseMicroBatch(kept, outputGrad, last);
          });
        } else if (chunk instanceof ParallelStack) {
          inputGrad = last ? await chunk.backward(kept.loss!, kept.output) : await chunk.backwardFrom(kept.output, outputGrad!);
        } else {
          if (last) backward(kept.loss!);
          else backward(kept.output, outputGrad);
          inputGrad = kept.input?.grad;
        }
        if (kept.input !== undefined) {
          if (inputGrad === undefined) throw new TesseraError(`PipelineParallel: stage ${s}'s input received no gradient; the stage's output must depend on its input.`);
          const values = allocArray(commDType(inputGrad.dtype, 'PipelineParallel'), inputGrad.size);
          values.set(inputGrad.data());
          sends.push(this.group.send(values, (s - 1) % p, { tag: tag(2, s - 1, i) }).wait());
        }
        if (!(chunk instanceof ParallelStack)) {
          inputGrad?.dispose();
          if (this.schedule !== 'zb-h1') releaseMicroBatch(kept, outputGrad, last);
        }
        if (timing) timing.B.push(performance.now() - started);
      }
      this.peakHeld = Math.max(this.peakHeld, inFlight.size + awaitingW.size);
    }
    await Promise.all(sends);
    await this.tied.sumGradients(tiedBefore);
    if (profile) await this.exchangeTimes(profile, stepIndex);
    return this.isLast ? lossSum / m : undefined;
  }

  /**
   * The end of a warm-up or timed step (order 'measured'): the ranks all-gather their settings and
   * their medians so far over the group, and check that the settings agree, so that ranks
   * constructed with different step counts fail here together with an error rather than wait on
   * each other. After the last timed step every rank derives every rank's order from the same
   * numbers, and the ranks compare digests of them before any runs: the switch is at step
   * warmUpSteps + profileSteps on all.
   */
  private async exchangeTimes(profile: NonNullable<PipelineParallel['profile']>, stepIndex: number): Promise<void> {
    const p = this.group.size, m = this.microBatches;
    const { alpha, beta } = this.group.costModel;
    const mine = Float64Array.of(profile.warmUp, profile.steps, stepIndex, m, medianOf(profile.F) / 1e3, medianOf(profile.B) / 1e3, medianOf(profile.W) / 1e3,
      2 * alpha + beta * (profile.maxBytes + HEADER * 4));
    const FIELDS = mine.length;
    const all = await this.group.allGather(mine).wait();
    const field = (r: number, k: number): number => all[r * FIELDS + k]!;
    const ranks = Array.from({ length: p }, (_, r) => r);
    if (ranks.some((r) => [0, 1, 2, 3].some((k) => field(r, k) !== mine[k]))) {
      const each = ranks.map((r) => `rank ${r}: warmUpSteps ${field(r, 0)}, profileSteps ${field(r, 1)}, step ${field(r, 2)}, microBatches ${field(r, 3)}`).join('; ');
      throw new TesseraError(`PipelineParallel: the ranks' measured-order settings disagree (${each}); every rank must construct PipelineParallel with the same options and call step the same number of times.`);
    }
    if (stepIndex < profile.warmUp + profile.steps - 1) return;
    const times: PipelineStageTimes = {
      forward: ranks.map((r) => field(r, 4)),
      inputGrad: ranks.map((r) => field(r, 5)),
      weightGrad: ranks.map((r) => field(r, 6)),
      p2p: Math.max(...ranks.map((r) => field(r, 7))),
    };
    const equal = ranks.map((r) => pipelineOrder(this.schedule, p, r, m));
    const derived = this.deriveOrders(times, equal, profile.minGain);
    // The runtime's own checks of every rank's order (each micro-batch's F, B, W once, in order).
    derived.orders.forEach((o) => checkOrder(o, this.schedule, m, 1));
    const digests = await this.group.allGather(Float64Array.of(digestOrders(derived.orders))).wait();
    if (ranks.some((r) => digests[r] !== digests[0])) {
      throw new TesseraError(`PipelineParallel: the ranks derived different orders from the same measured times (order digests: ${ranks.map((r) => `rank ${r} ${digests[r]!.toString(16)}`).join(', ')}); ` +
        'every rank must run the same tessera version. Not switching to them: orders that do not fit together would wait on each other.');
    }
    const { orders, ...rest } = derived;
    this.measured = { times, warmUpSteps: profile.warmUp, profiledSteps: profile.steps, fromStep: stepIndex + 1, ...rest, order: orders[this.group.rank]! };
    this.profile = undefined;
  }

  /** Every rank's order from the gathered times (the same on every rank; a subclass may replace it in tests). */
  protected deriveOrders(times: PipelineStageTimes, equalOrders: readonly (readonly PipelineOp[])[], minPredictedGain: number): ReturnType<typeof ordersFromTimes> {
    return ordersFromTimes(times, this.microBatches, equalOrders, minPredictedGain);
  }

  /** Sends a header (dtype code, rank, shape) and the values; returns the sends' completions. */
  private sendActivation(t: Tensor, dst: number, headerTag: number, dataTag: number): Promise<void>[] {
    if (t.shape.length > MAX_RANK) throw new TesseraError(`PipelineParallel: a stage's output has ${t.shape.length} dimensions (${fmtShape(t.shape)}); at most ${MAX_RANK} cross stages.`);
    const dtype = commDType(t.dtype, 'PipelineParallel');
    const header = new Int32Array(HEADER);
    header[0] = DTYPE_CODES.indexOf(dtype);
    header[1] = t.shape.length;
    t.shape.forEach((d, k) => { header[2 + k] = d; });
    const values = allocArray(dtype, t.size);
    values.set(t.data());
    return [this.group.send(header, dst, { tag: headerTag }).wait(), this.group.send(values, dst, { tag: dataTag }).wait()];
  }

  /** Receives an activation as a leaf tensor that requires grad (its .grad goes back to `src`). */
  private async receiveActivation(src: number, headerTag: number, dataTag: number, chunk: number): Promise<Tensor> {
    const header = await this.group.recv(new Int32Array(HEADER), src, { tag: headerTag });
    const dtype = DTYPE_CODES[header[0]!]!;
    const shape = Array.from(header.subarray(2, 2 + header[1]!));
    const values = await this.group.recv(allocArray(dtype, shape.reduce((a, b) => a * b, 1)), src, { tag: dataTag });
    const firstParam = this.chunks[chunk]!.parameters()[0];
    return tensor(values, { shape, dtype: firstParam?.dtype ?? dtype, backend: firstParam?.storage.backend.name, requiresGrad: true });
  }
}
