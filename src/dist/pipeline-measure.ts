// ZB-H1 from measured times. Zero-bubble schedules place each rank's deferred W passes where its
// bubbles are, and where those are depends on how long each stage's F, B and W take; Qi et al. 2024
// (§3, and their implementation) profile the three per stage during the first iterations and then
// derive the schedule from those numbers. PipelineParallel with `order: 'measured'` does the same:
// it times its passes for a few steps in the equal-times order, the ranks all-gather their medians,
// and every rank runs the planner's simulator on the identical numbers, so they all derive the same
// orders without sending them. This file is the pure part: from the times to the orders.
//
// The simulator's ZB-H1 rule is a priority among ready passes, not an optimum: under some times it
// predicts a longer step than the equal-times order would take (up to a few percent in random
// trials on 3-4 stages). Both are simulated with the measured times (the equal-times order replayed
// as a fixed order), and the equal-times order is kept when the rule's is predicted slower, or not
// faster by at least `minPredictedGain` when that is given.
import { rankOrder, simulatePipeline, type PipelineInput } from '../plan/pipeline.js';
import type { PipelineOp } from './pipeline.js';

/** What the ranks measured, per stage (index: rank), in seconds per micro-batch. */
export interface PipelineStageTimes {
  /** Median F: the stage's forward pass (and the loss on the last stage), with copying its output out. */
  forward: number[];
  /** Median B: the input gradient (nothing on the first stage), with copying it out. */
  inputGrad: number[];
  /** Median W: the parameters' gradients. */
  weightGrad: number[];
  /**
   * One activation's transfer between neighbouring ranks: the group's α-β cost model (α and β
   * measured by ping-pong at initProcessGroup) for the header and the largest message any rank
   * sent. Not timed in the step: a receive's wait mixes the transfer with waiting for the sender.
   */
  p2p: number;
}

export interface MeasuredPipelineSchedule {
  times: PipelineStageTimes;
  /** Steps run untimed first, then steps timed (all in the equal-times order). */
  warmUpSteps: number;
  profiledSteps: number;
  /** The first step (counting from 0, this PipelineParallel's steps) that runs `order`: warmUpSteps + profiledSteps on every rank. */
  fromStep: number;
  /** Simulated seconds per step under the measured times. */
  predicted: {
    /** The simulator's ZB-H1 rule replayed with the measured times. */
    measuredOrder: number;
    /** ZB-H1's default order (the rule's order for equal F, B and W) under the measured times. */
    equalTimesOrder: number;
    /** 1F1B with B + W as one backward pass, for comparison. */
    oneFOneB: number;
    /** Peak micro-batches held per rank (from F to W) in the two ZB-H1 orders' simulations. */
    peakHeld: { measuredOrder: number[]; equalTimesOrder: number[] };
  };
  /** Which order runs from fromStep on: the rule's under measured times unless predicted slower than the equal-times one (or not faster by minPredictedGain). */
  chosen: 'measured' | 'equal-times';
  /** Every rank's order from the simulation with the measured times (index: rank), whether chosen or not. */
  simulatedOrders: PipelineOp[][];
  /** Ranks whose simulatedOrders entry differs from the equal-times order. */
  changedRanks: number[];
  /** This rank's order from fromStep on. */
  order: PipelineOp[];
}

/** The middle sample (mean of the two middle ones for an even count). */
export function medianOf(samples: readonly number[]): number {
  if (samples.length === 0) return 0;
  const s = [...samples].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/**
 * The simulator's input for these times. Every duration is raised to at least 1/1000 of the
 * longest: a first stage's B is next to nothing, and a pass of zero length could start at the same
 * instant as the next one on its rank, which rankOrder (by start time) might then list out of order.
 */
export function simulationInput(times: PipelineStageTimes, microBatches: number): Omit<PipelineInput, 'schedule'> {
  const p = times.forward.length;
  const longest = Math.max(...times.forward, ...times.inputGrad, ...times.weightGrad);
  const floor = longest > 0 ? longest * 1e-3 : 1e-9;
  const at = (x: number): number => (x > floor ? x : floor);
  const b = times.inputGrad.map(at), w = times.weightGrad.map(at);
  return {
    stages: p,
    microBatches,
    forward: times.forward.map(at),
    backward: b.map((x, d) => x + w[d]!),
    weightGradFraction: w.map((x, d) => x / (x + b[d]!)),
    p2p: times.p2p,
  };
}

const sameOrder = (a: readonly PipelineOp[], b: readonly PipelineOp[]): boolean =>
  a.length === b.length && a.every((op, k) => op.kind === b[k]!.kind && op.microBatch === b[k]!.microBatch && op.chunk === b[k]!.chunk);

/**
 * Every rank's ZB-H1 order for these times (`equalOrders`: the default order of each rank). The
 * same numbers give the same result on every rank: the simulation is plain IEEE arithmetic.
 */
export function ordersFromTimes(times: PipelineStageTimes, microBatches: number, equalOrders: readonly (readonly PipelineOp[])[], minPredictedGain = 0): Omit<MeasuredPipelineSchedule, 'times' | 'warmUpSteps' | 'profiledSteps' | 'fromStep' | 'order'> & { orders: PipelineOp[][] } {
  const input = simulationInput(times, microBatches);
  const p = input.stages;
  const rule = simulatePipeline({ schedule: 'zb-h1', ...input });
  const simulatedOrders = Array.from({ length: p }, (_, d) => rankOrder(rule, d));
  // Replaying the rule's orders as fixed orders also checks that they cannot wait on each other.
  const replayed = simulatePipeline({ schedule: 'zb-h1', ...input, order: simulatedOrders });
  const equal = simulatePipeline({ schedule: 'zb-h1', ...input, order: equalOrders });
  const measuredOrder = replayed.stepTime, equalTimesOrder = equal.stepTime;
  const oneFOneB = simulatePipeline({ schedule: '1f1b', stages: p, microBatches, forward: input.forward, backward: input.backward, p2p: input.p2p }).stepTime;
  // Without a required gain, a relative margin keeps a tie in exact arithmetic a tie after rounding.
  const limit = minPredictedGain > 0 ? equalTimesOrder * (1 - minPredictedGain) : equalTimesOrder * (1 + 1e-9);
  const chosen = measuredOrder <= limit ? 'measured' : 'equal-times';
  return {
    predicted: { measuredOrder, equalTimesOrder, oneFOneB, peakHeld: { measuredOrder: replayed.peakActivations, equalTimesOrder: equal.peakActivations } },
    chosen,
    simulatedOrders,
    changedRanks: simulatedOrders.flatMap((o, d) => (sameOrder(o, equalOrders[d]!) ? [] : [d])),
    orders: chosen === 'measured' ? simulatedOrders : equalOrders.map((o) => o.map((op) => ({ ...op }))),
  };
}

/** A 32-bit FNV-1a digest of every rank's order, which the ranks compare before switching. */
export function digestOrders(orders: readonly (readonly PipelineOp[])[]): number {
  let h = 0x811c9dc5;
  const mix = (x: number): void => {
    h ^= x & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= (x >>> 8) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const ops of orders) {
    mix(0xffff);
    for (const op of ops) {
      mix(op.kind === 'F' ? 1 : op.kind === 'B' ? 2 : 3);
      mix(op.microBatch);
      mix(op.chunk);
    }
  }
  return h;
}
