// Communication pipelined with compute: closed forms for the seconds of communication left on the
// critical path by each overlap pattern the frameworks implement, for the step-time model. Each is
// the makespan of two in-order streams (compute, communication) minus the compute alone, derived
// in docs/planner.md ("Overlapped communication") and checked against event-by-event simulations
// in test/plan/comm-overlap.test.ts. Sources per pattern:
//   - TransformerEngine's userbuffers overlap behind Megatron-LM's --tp-comm-overlap
//     (transformer_engine/pytorch/module/base.py, initialize_ub): 'ring_exchange' for each
//     all-gather → GEMM (qkv_fprop, fc1_fprop, proj_dgrad, fc2_dgrad), 'pipeline' with 4 splits
//     for each GEMM → reduce-scatter (proj_fprop, fc2_fprop), 'bulk' for the backward pass's
//     reduce-scatter under the weight-gradient GEMM (qkv_wgrad, fc1_wgrad).
//   - Tutel's a2a_ffn_overlap_degree (Hwang et al. 2023, arXiv:2206.03382): tokens split into
//     chunks whose all-to-alls pipeline with the experts' GEMMs.
//   - Megatron-LM's --overlap-p2p-comm for the interleaved 1F1B schedule (the flag is switched
//     off without interleaving: megatron/training/arguments.py).

/** GEMM chunks of a TransformerEngine 'pipeline' (GEMM → reduce-scatter) overlap: its default
 * num_splits. */
export const reduceScatterOverlapSplits = 4;

/** Token chunks of an overlapped expert all-to-all when the config does not say: Tutel's
 * a2a_ffn_overlap_degree = 2 ("overlap a2a with half gemm"). */
export const defaultExpertOverlapChunks = 2;

/**
 * Exposed seconds of a ring-exchange all-gather → GEMM: the GEMM is split into steps + 1 chunks
 * of `chunkSeconds`, one per rank's shard; the local shard needs no transfer, and each other
 * arrives by one ring step of `stepSeconds` while the chunk before it computes. Transfer j ends at
 * j·c, chunk j starts at max(end of chunk j − 1, j·c), so the GEMM ends at
 * max over j of j·c + (n + 1 − j)·g = max((n + 1)·g, n·c + g) (linear in j: an endpoint), and
 * n·max(0, c − g) of it is communication. The mirror image, GEMM chunks whose partial sums leave
 * by ring steps, has the same closed form.
 */
export function exposedRingExchange(steps: number, stepSeconds: number, chunkSeconds: number): number {
  if (steps <= 0) return 0;
  return steps * Math.max(0, stepSeconds - chunkSeconds);
}

/**
 * Exposed seconds of a GEMM split into `chunks` chunks of `chunkSeconds`, each followed by its
 * own collective of `commSeconds` on one communication stream (TE's 'pipeline' reduce-scatter):
 * collective i starts at max(end of collective i − 1, (i + 1)·g), so the last ends at
 * max(k·g + c, g + k·c) and c + (k − 1)·max(0, c − g) of it is communication: the last chunk's
 * collective always shows. (ZeRO-3's prefetched gathers are the same pipeline run backwards:
 * exposedPrefetchedGathers.)
 */
export function exposedPipelinedCollectives(chunks: number, commSeconds: number, chunkSeconds: number): number {
  if (chunks <= 0) return 0;
  return commSeconds + (chunks - 1) * Math.max(0, commSeconds - chunkSeconds);
}

/** Exposed seconds of a collective that runs beside independent compute (TE's 'bulk' overlap,
 * Megatron's asynchronous tensor-parallel all-reduce under the weight-gradient GEMM): whatever
 * outlasts the compute. */
export function exposedBesideCompute(commSeconds: number, computeSeconds: number): number {
  return Math.max(0, commSeconds - computeSeconds);
}

/**
 * Exposed seconds of an MoE layer's dispatch all-to-all → experts → combine all-to-all with the
 * tokens split into `chunks` (c) chunks, issued as Tutel issues them: every dispatch on the
 * communication stream first, then each chunk's combine once its experts are done; the experts
 * run on the compute stream in chunk order. With d, e, k the dispatch, expert and combine
 * seconds of one chunk, expert chunk i ends at max over j ≤ i of (j + 1)·d + (i − j + 1)·e,
 * combine i at max(previous combine, c·d, expert i) + k; the makespan is a linear function over
 * the triangle 0 ≤ j ≤ i < c, maximal at a corner, or the communication stream's own c·(d + k):
 *   T = max(c·(d + k), d + c·e + k, d + e + c·k, c·d + e + k),
 * and T − c·e is communication. One chunk gives d + k: nothing hidden.
 */
export function exposedChunkedAllToAll(chunks: number, dispatchSeconds: number, expertSeconds: number, combineSeconds: number): number {
  if (chunks <= 0) return 0;
  const c = chunks, d = dispatchSeconds, e = expertSeconds, k = combineSeconds;
  const makespan = Math.max(c * (d + k), d + c * e + k, d + e + c * k, c * d + e + k);
  return makespan - c * e;
}

/**
 * Exposed point-to-point seconds of the interleaved 1F1B schedule (p stages, v chunks per stage)
 * when every transfer of `p2pSeconds` runs beside compute, as with Megatron's
 * --overlap-p2p-comm: only the first micro-batch's forward trip through the p·v virtual stages
 * and the last one's backward trip wait on transfers, 2·(p·v − 1)·δ; in the steady state the
 * receiving stage always has another chunk to run first. Holds while δ is at most the shorter of
 * a chunk's forward and backward pass (interleavedP2pClosedFormHolds); the step-time model
 * simulates the schedule beyond that.
 */
export function exposedInterleavedP2p(stages: number, chunks: number, p2pSeconds: number): number {
  if (stages <= 1) return 0;
  return 2 * (stages * chunks - 1) * p2pSeconds;
}

/** Whether exposedInterleavedP2p is exact: the transfer is no longer than a chunk's forward and
 * backward pass, so every steady-state transfer finishes before its receiver runs out of work
 * (checked against the pipeline simulator on random cases). */
export function interleavedP2pClosedFormHolds(p2pSeconds: number, forwardChunkSeconds: number, backwardChunkSeconds: number): boolean {
  return p2pSeconds <= Math.min(forwardChunkSeconds, backwardChunkSeconds);
}
