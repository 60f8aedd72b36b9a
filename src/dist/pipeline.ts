// Pipeline parallelism (GPipe, Huang et al. 2019; 1F1B, Narayanan et al. 2021 §2.2): the model's
// layers are cut into consecutive stages, one per rank; a step's batch is cut into m
// micro-batches that flow forward through the stages and their gradients backward. Each rank
// runs its stage's forward (F) and backward (B) passes in the order of the schedule:
//   gpipe: every micro-batch's F, then every B, holding all m micro-batches' activations;
//   1f1b:  p − s − 1 warm-up F's on stage s, then F and B alternating, then the remaining B's,
//          holding at most p − s micro-batches' activations (the planner's pipeline simulator
//          runs the same orders; test/dist/pipeline.test.ts checks that they agree).
// Activations go to the next stage and their gradients come back by point-to-point messages: a
// small header (dtype, shape) then the values. The last stage's loss of each micro-batch is
// divided by m, so that the gradients accumulated over a step are those of the mean loss over the
// whole batch, as one process computing the whole batch would get.
//
//   const pipe = new PipelineParallel(myStage, group, { microBatches: 8 });
//   optimizer.zeroGrad();
//   const loss = await pipe.step({ inputs, loss: (out, i) => crossEntropy(out, targets[i]) });
//   optimizer.step();   // each rank updates its own stage's parameters
import { TesseraError, fmtShape } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { backward } from '../autodiff/backward.js';
import type { AnyModule } from '../nn/module.js';
import { tensor } from '../ops/creation.js';
import type { ProcessGroup } from './process-group.js';
import { commDType } from './tensor-sync.js';
import { allocArray, type DType } from './types.js';

export type PipelineSchedule = 'gpipe' | '1f1b';

export interface PipelineOptions {
  /** Micro-batches per step (m). */
  microBatches: number;
  /** Default '1f1b'. */
  schedule?: PipelineSchedule;
}

export interface PipelineOp {
  kind: 'F' | 'B';
  microBatch: number;
}

/** The order in which stage `stage` of `stages` runs its passes over `microBatches` micro-batches. */
export function pipelineOrder(schedule: PipelineSchedule, stages: number, stage: number, microBatches: number): PipelineOp[] {
  const m = microBatches;
  const ops: PipelineOp[] = [];
  if (schedule === 'gpipe') {
    for (let i = 0; i < m; i++) ops.push({ kind: 'F', microBatch: i });
    for (let i = 0; i < m; i++) ops.push({ kind: 'B', microBatch: i });
    return ops;
  }
  const warmUp = Math.min(stages - stage - 1, m);
  let f = 0, b = 0;
  while (f < warmUp) ops.push({ kind: 'F', microBatch: f++ });
  while (f < m) {
    ops.push({ kind: 'F', microBatch: f++ });
    ops.push({ kind: 'B', microBatch: b++ });
  }
  while (b < m) ops.push({ kind: 'B', microBatch: b++ });
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
  /** The stage's output, or on the last stage the micro-batch's scaled loss. */
  output: Tensor;
}

export class PipelineParallel {
  readonly schedule: PipelineSchedule;
  readonly microBatches: number;
  /** Most micro-batches whose activations this stage held at once during the last step. */
  peakInFlight = 0;
  private steps = 0;

  /**
   * `stage`: this rank's layers (rank r of the group is stage r). Every rank must construct it
   * with the same options.
   */
  constructor(readonly stage: AnyModule, readonly group: ProcessGroup, options: PipelineOptions) {
    this.schedule = options.schedule ?? '1f1b';
    this.microBatches = options.microBatches;
    if (!Number.isInteger(this.microBatches) || this.microBatches < 1) {
      throw new TesseraError(`PipelineParallel: microBatches must be a positive integer, got ${String(options.microBatches)}.`);
    }
    if (this.schedule !== 'gpipe' && this.schedule !== '1f1b') {
      throw new TesseraError(`PipelineParallel: schedule '${String(this.schedule)}' is not one of gpipe, 1f1b.`);
    }
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
    const parity = this.steps++ % 2;
    const tag = (kind: number, microBatch: number): number => ((parity * 3 + kind) * m + microBatch);
    const inFlight = new Map<number, InFlight>();
    const sends: Promise<void>[] = [];
    let lossSum = 0;
    const rank = this.group.rank;
    this.peakInFlight = 0;

    for (const op of pipelineOrder(this.schedule, this.group.size, rank, m)) {
      const i = op.microBatch;
      if (op.kind === 'F') {
        const input = this.isFirst ? undefined : await this.receiveActivation(rank - 1, tag(0, i), tag(1, i));
        const output = this.stage.call(input ?? args.inputs![i]!) as Tensor;
        if (this.isLast) {
          const loss = args.loss!(output, i);
          lossSum += loss.item();
          inFlight.set(i, { input, output: loss.mul(1 / m) });
        } else {
          sends.push(...this.sendActivation(output, rank + 1, tag(0, i), tag(1, i)));
          inFlight.set(i, { input, output });
        }
        this.peakInFlight = Math.max(this.peakInFlight, inFlight.size);
      } else {
        const kept = inFlight.get(i)!;
        inFlight.delete(i);
        if (this.isLast) backward(kept.output);
        else {
          const out = kept.output;
          const values = allocArray(commDType(out.dtype, 'PipelineParallel'), out.size);
          await this.group.recv(values, rank + 1, { tag: tag(2, i) });
          backward(out, tensor(values, { shape: [...out.shape], dtype: out.dtype, backend: out.storage.backend.name }));
        }
        if (kept.input !== undefined) {
          const g = kept.input.grad;
          if (g === undefined) throw new TesseraError(`PipelineParallel: stage ${rank}'s input received no gradient; the stage's output must depend on its input.`);
          const values = allocArray(commDType(g.dtype, 'PipelineParallel'), g.size);
          values.set(g.data());
          sends.push(this.group.send(values, rank - 1, { tag: tag(2, i) }).wait());
        }
      }
    }
    await Promise.all(sends);
    return this.isLast ? lossSum / m : undefined;
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
  private async receiveActivation(src: number, headerTag: number, dataTag: number): Promise<Tensor> {
    const header = await this.group.recv(new Int32Array(HEADER), src, { tag: headerTag });
    const dtype = DTYPE_CODES[header[0]!]!;
    const shape = Array.from(header.subarray(2, 2 + header[1]!));
    const values = await this.group.recv(allocArray(dtype, shape.reduce((a, b) => a * b, 1)), src, { tag: dataTag });
    const firstParam = this.stage.parameters()[0];
    return tensor(values, { shape, dtype: firstParam?.dtype ?? dtype, backend: firstParam?.storage.backend.name, requiresGrad: true });
  }
}
