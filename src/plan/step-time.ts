// Predicted time of one training step for a parallel configuration: a roofline per layer (matmuls
// at the device's achievable matmul rate, element-wise work at memory bandwidth), tensor-parallel
// all-reduces, pipeline fill/drain (Megatron §2.2), point-to-point transfers, the data-parallel
// gradient reduction and the optimizer update; for MoE models with expert parallelism, the token
// all-to-alls of every MoE layer. Communication is assumed not to overlap compute, as in
// Megatron-LM's 2021 implementation that the paper's Table 1 measured, except where the config
// says the framework overlaps it: the gradient reduction under the last backward pass (bucketed,
// as DDP does), ZeRO-3's parameter gathers prefetched one layer ahead, tensor-parallel collectives
// pipelined with their GEMMs, expert all-to-alls pipelined with the experts over token chunks,
// and the interleaved schedule's transfers beside compute (closed forms in comm-overlap.ts).
import type { Conventions } from './conventions.js';
import { bestCollective, alphaBetaOf, type Collective, type CollectiveAlgorithm } from './collectives.js';
import { type ClusterSpec, type Dtype, type LinkSpec, clusterSize, peakFlops } from './hardware.js';
import { flopsPerStep } from './flops.js';
import { activationBytesPerLayer, optimizerBytesPerParam } from './memory.js';
import { stageParamsPerDevice } from './comm-volumes.js';
import { expertSlotsPerToken, type TransformerSpec } from './model.js';
import { expertZeroShardRanks, microBatchCount, zeroShardRanks, type ParallelConfig } from './parallel-config.js';
import {
  defaultExpertOverlapChunks, exposedBesideCompute, exposedChunkedAllToAll, exposedInterleavedP2p, exposedPipelinedCollectives,
  exposedRingExchange, interleavedP2pClosedFormHolds, reduceScatterOverlapSplits,
} from './comm-overlap.js';
import { simulatePipeline } from './pipeline.js';

/** Bytes moved by element-wise kernels (norms, bias+activation, softmax, dropout, residual) per
 * byte of activation they store: each stored tensor is written once and read about once more in
 * the same pass. The backward pass moves twice what the forward pass moves. */
export const elementwiseTrafficPerStoredByte = 1.5;

/** Gradient bucket of an overlapped reduction: PyTorch DDP's bucket_cap_mb default, 25 MB. */
export const gradientBucketBytes = 25e6;

/**
 * Seconds of a bucketed gradient reduction left after the backward pass that produces the
 * gradients (`backward` seconds, at an even rate): bucket j is ready at j/n of it, and the
 * buckets are reduced one after another, each taking `bucketSeconds`. Either the last bucket is
 * all that is left (communication keeps up) or the reduction is the bottleneck and finishes
 * n·bucketSeconds after the first bucket is ready.
 */
export function exposedBucketedReduction(buckets: number, bucketSeconds: number, backward: number): number {
  if (buckets <= 0) return 0;
  return Math.max(bucketSeconds, buckets * bucketSeconds - backward * (buckets - 1) / buckets);
}

/**
 * Seconds of `units` prefetched gathers left exposed in a pass over `units` layers: the gather
 * of layer i + 1 is issued when layer i starts computing, so the first gather is exposed and each
 * later one only by what it takes beyond the layer before it (`gatherSeconds` and
 * `computeSeconds` per layer): the pass takes a + (L − 1)·max(a, c) + c instead of L·c.
 */
export function exposedPrefetchedGathers(units: number, gatherSeconds: number, computeSeconds: number): number {
  if (units <= 0) return 0;
  return gatherSeconds + (units - 1) * Math.max(0, gatherSeconds - computeSeconds);
}

export interface CommCost {
  /** dp / zero3-gather: the dense weights' reduction and gathers; expert-dp / expert-zero3-gather:
   * the experts', over the ranks that hold the same experts (dp/ep of them). */
  kind: 'tp' | 'pp' | 'ep' | 'dp' | 'expert-dp' | 'zero3-gather' | 'expert-zero3-gather';
  collective: Collective | 'send-recv';
  algorithm: CollectiveAlgorithm | 'p2p';
  /** Bytes of one call. */
  bytes: number;
  /** Calls per step on one device. */
  calls: number;
  ranks: number;
  link: string;
  /** Seconds per step on one device (calls × time of one call). */
  seconds: number;
}

export interface StepTime {
  /** Seconds per optimizer step. */
  seconds: number;
  /** Forward and backward seconds of one micro-batch on the slowest stage (including TP comm and p2p). */
  forwardPerMicroBatch: number;
  backwardPerMicroBatch: number;
  microBatches: number;
  /** Pipeline fill/drain time in seconds. */
  bubbleSeconds: number;
  /** Seconds of communication hidden under compute, not in `seconds`: the gradient reduction under
   * the last backward pass (config.overlapGradReduce), prefetched ZeRO-3 gathers
   * (overlapParamGather), tensor-parallel collectives under their GEMMs (overlapTensorParallelComm),
   * expert all-to-alls under the experts (overlapExpertParallelComm) and interleaved pipeline
   * transfers under other chunks (overlapPipelineComm). For each kind, exposed part + hidden = the
   * seconds of its entries in `comms`. */
  hiddenCommSeconds: number;
  /** hiddenCommSeconds by kind of communication (dataParallel includes ZeRO-3 gathers). */
  hiddenCommByKind: { dataParallel: number; tensorParallel: number; expertParallel: number; pipeline: number };
  /** Seconds the GEMMs lose to communication running beside them (config.overlapComputeSlowdown),
   * included in parts.compute. */
  overlapSlowdownSeconds: number;
  /** Seconds of each part, summing to `seconds`. */
  parts: {
    compute: number; tensorParallelComm: number; expertParallelComm: number; pipelineComm: number; bubble: number;
    dataParallelComm: number; optimizer: number;
  };
  comms: CommCost[];
  tokensPerSecond: number;
  mfu: number;
  hfu: number;
  modelFlopsPerDevice: number;
  hardwareFlopsPerDevice: number;
  dtype: Dtype;
  peakPerDevice: number;
}

/** The dtype a device trains in: bf16 where it has it, else fp16, else fp32. */
export function trainingDtype(c: ClusterSpec): Dtype {
  const p = c.device.peak;
  return p.bf16 !== undefined ? 'bf16' : p.fp16 !== undefined ? 'fp16' : 'fp32';
}

/** The link a group uses: consecutive members `stride` ranks apart (Megatron orders ranks TP
 * fastest, then DP, then PP). A ring that leaves the node is limited by the inter-node link. */
export function groupLink(c: ClusterSpec, size: number, stride: number): LinkSpec {
  return size * stride <= c.devicesPerNode || size === 1 ? c.intraLink : c.interLink;
}

/** One layer's communication of one kind for one micro-batch: seconds on the critical path
 * (fwd, bwd), seconds it runs (fwdComm, bwdComm) and seconds its overlap slows the GEMMs. */
interface LayerComm { fwd: number; bwd: number; fwdComm: number; bwdComm: number; fwdSlow: number; bwdSlow: number }

function addLayerComm(x: LayerComm, y: LayerComm): LayerComm {
  return { fwd: x.fwd + y.fwd, bwd: x.bwd + y.bwd, fwdComm: x.fwdComm + y.fwdComm, bwdComm: x.bwdComm + y.bwdComm, fwdSlow: x.fwdSlow + y.fwdSlow, bwdSlow: x.bwdSlow + y.bwdSlow };
}

export function stepTime(m: TransformerSpec, conv: Conventions, c: ClusterSpec, cfg: ParallelConfig): StepTime {
  const n = clusterSize(c);
  const dtype = trainingDtype(c);
  const peak = peakFlops(c.device, dtype, 'dense');
  const matmulRate = peak * c.device.matmulEfficiency;
  const bw = c.device.memoryBandwidth;
  const t = cfg.tp, p = cfg.pp, v = Math.max(1, cfg.interleave);
  const b = cfg.microBatch, s = m.seqLen, h = m.hidden;
  const mb = microBatchCount(cfg);
  const actBytes = 2; // bf16/fp16 activations

  // --- one layer, one micro-batch, one device ---
  const qw = m.heads * m.headDim, kvw = m.kvHeads * m.headDim;
  // Each token runs the MLP once per expert slot it fills (top-k × capacity factor for MoE).
  const layerWeights = 2 * h * qw + 2 * h * kvw + (m.gatedMlp ? 3 : 2) * h * m.ffn * expertSlotsPerToken(m) + (m.moe ? h * m.moe.experts : 0);
  const attnCore = (conv.attention === 'causal' ? 0.5 : 1) * 4 * b * s * s * qw;
  const gemmFwd = (2 * b * s * layerWeights + attnCore) / t / matmulRate;
  const stored = activationBytesPerLayer(m, conv, { tp: t, sequenceParallel: cfg.sequenceParallel, recompute: 'none', microBatch: b });
  const memFwd = (elementwiseTrafficPerStoredByte * stored) / bw;
  const scoreTraffic = conv.flashAttention ? 0 : (elementwiseTrafficPerStoredByte * 5 * b * m.heads * s * s) / t / bw;

  const tpLink = groupLink(c, t, 1);
  const tpAb = alphaBetaOf(tpLink);
  const tpBytes = actBytes * b * s * h;
  // Sequence parallelism swaps each all-reduce for a reduce-scatter + all-gather of the same volume.
  const tpCall = t === 1 ? 0 : cfg.sequenceParallel
    ? bestCollective('reduce-scatter', tpBytes, t, tpAb).seconds + bestCollective('all-gather', tpBytes, t, tpAb).seconds
    : bestCollective('all-reduce', tpBytes, t, tpAb).seconds;
  const tpAlg: CollectiveAlgorithm = t === 1 ? 'ring' : bestCollective('all-reduce', tpBytes, t, tpAb).algorithm;
  // Expert parallelism: members are consecutive data-parallel ranks (t apart). Dispatch and
  // combine all-to-alls of the device's token slots in the forward pass, both again backward.
  const ep = cfg.ep;
  const epLink = groupLink(c, ep, t);
  const epAb = alphaBetaOf(epLink);
  const epBytes = actBytes * (b * s / (t > 1 && cfg.sequenceParallel ? t : 1)) * expertSlotsPerToken(m) * h;
  const epChoice = bestCollective('all-to-all', epBytes, ep, epAb);
  const epCall = ep === 1 || m.moe === undefined ? 0 : epChoice.seconds;

  // The GEMM of each linear layer, which overlapped communication can hide under (TE names them
  // qkv, proj, fc1, fc2); a backward dgrad or wgrad GEMM takes as long as the forward one.
  const gemmOf = (weights: number): number => (2 * b * s * weights) / t / matmulRate;
  const qkvGemm = gemmOf(h * qw + 2 * h * kvw), projGemm = gemmOf(qw * h);
  const fc1Gemm = gemmOf((m.gatedMlp ? 2 : 1) * h * m.ffn * expertSlotsPerToken(m)), fc2Gemm = gemmOf(h * m.ffn * expertSlotsPerToken(m));
  const slowdown = Math.max(0, cfg.overlapComputeSlowdown ?? 0);
  const overlapTp = cfg.overlapTensorParallelComm && t > 1;
  // Megatron §3.2: two all-reduces (SP: reduce-scatter + all-gather pairs) in the forward pass and
  // two in the backward pass per layer, one pair per sublayer (attention, MLP).
  const tpSublayer = (columnGemm: number, rowGemm: number, overlapped: boolean): LayerComm => {
    if (!overlapped) return { fwd: tpCall, bwd: tpCall, fwdComm: tpCall, bwdComm: tpCall, fwdSlow: 0, bwdSlow: 0 };
    const slow = 1 + slowdown;
    if (cfg.sequenceParallel) {
      // Forward: all-gather → column GEMM as a ring exchange (t chunks, t − 1 steps), row GEMM →
      // reduce-scatter in TE's 4 pipelined splits. Backward: the output gradient's all-gather as a
      // ring exchange under the row layer's dgrad GEMM; the input gradient's reduce-scatter beside
      // the column layer's wgrad GEMM (TE 'bulk'). The backward re-gather of the column layer's
      // input is counted in neither model: Megatron overlaps it with the dgrad GEMM by default.
      const step = tpAb.alpha + (tpBytes / t) * tpAb.beta;
      const splits = reduceScatterOverlapSplits;
      const rsSplit = bestCollective('reduce-scatter', tpBytes / splits, t, tpAb).seconds;
      const rsWhole = bestCollective('reduce-scatter', tpBytes, t, tpAb).seconds;
      return {
        fwd: exposedRingExchange(t - 1, step, (columnGemm * slow) / t) + exposedPipelinedCollectives(splits, rsSplit, (rowGemm * slow) / splits),
        bwd: exposedRingExchange(t - 1, step, (rowGemm * slow) / t) + exposedBesideCompute(rsWhole, columnGemm * slow),
        fwdComm: (t - 1) * step + splits * rsSplit,
        bwdComm: (t - 1) * step + rsWhole,
        fwdSlow: slowdown * (columnGemm + rowGemm),
        bwdSlow: slowdown * (rowGemm + columnGemm),
      };
    }
    // No SP: the forward all-reduce feeds the residual add at once, so it stays exposed; the
    // backward one (the column layer's input gradient) runs beside that layer's wgrad GEMM.
    return { fwd: tpCall, bwd: exposedBesideCompute(tpCall, columnGemm * slow), fwdComm: tpCall, bwdComm: tpCall, fwdSlow: 0, bwdSlow: slowdown * columnGemm };
  };
  const noComm: LayerComm = { fwd: 0, bwd: 0, fwdComm: 0, bwdComm: 0, fwdSlow: 0, bwdSlow: 0 };
  const tpLayer = t === 1 ? noComm : addLayerComm(tpSublayer(qkvGemm, projGemm, overlapTp), tpSublayer(fc1Gemm, fc2Gemm, overlapTp && m.moe === undefined));
  // Expert all-to-alls: dispatch and combine forward, their gradients backward (around the
  // experts' dgrad + wgrad, twice the forward GEMMs), pipelined over token chunks when overlapped.
  const chunks = cfg.expertOverlapChunks ?? defaultExpertOverlapChunks;
  const overlapEp = cfg.overlapExpertParallelComm && epCall > 0 && chunks > 1;
  let epLayer = epCall === 0 ? noComm : { fwd: 2 * epCall, bwd: 2 * epCall, fwdComm: 2 * epCall, bwdComm: 2 * epCall, fwdSlow: 0, bwdSlow: 0 };
  const epChunk = overlapEp ? bestCollective('all-to-all', epBytes / chunks, ep, epAb) : epChoice;
  if (overlapEp) {
    const experts = fc1Gemm + fc2Gemm, slow = 1 + slowdown;
    epLayer = {
      fwd: exposedChunkedAllToAll(chunks, epChunk.seconds, (experts * slow) / chunks, epChunk.seconds),
      bwd: exposedChunkedAllToAll(chunks, epChunk.seconds, (2 * experts * slow) / chunks, epChunk.seconds),
      fwdComm: 2 * chunks * epChunk.seconds, bwdComm: 2 * chunks * epChunk.seconds,
      fwdSlow: slowdown * experts, bwdSlow: 2 * slowdown * experts,
    };
  }
  const layerFwd = gemmFwd + memFwd + tpLayer.fwd + tpLayer.fwdSlow + epLayer.fwd + epLayer.fwdSlow;
  let layerBwd = 2 * gemmFwd + 2 * memFwd + tpLayer.bwd + tpLayer.bwdSlow + epLayer.bwd + epLayer.bwdSlow;
  if (cfg.recompute === 'full') layerBwd += layerFwd;
  else if (cfg.recompute === 'selective') layerBwd += attnCore / t / matmulRate + scoreTraffic / 2;

  // --- the LM head (last stage) ---
  const headGemm = (2 * b * s * m.vocab * h) / t / matmulRate;
  const headMem = (elementwiseTrafficPerStoredByte * 4 * b * s * m.vocab) / t / bw; // fp32 logits + softmax
  const layersPerStage = m.layers / p;
  const lastFwd = layersPerStage * layerFwd + headGemm + headMem;
  const lastBwd = layersPerStage * layerBwd + 2 * headGemm + headMem;
  const firstFwd = layersPerStage * layerFwd, firstBwd = layersPerStage * layerBwd;
  let fwd = Math.max(firstFwd, lastFwd), bwd = Math.max(firstBwd, lastBwd);

  // --- pipeline point-to-point (Megatron §4.1 scatter/gather: bsh/t per transfer when t > 1) ---
  const ppLink = groupLink(c, p, t * cfg.dp);
  const p2pBytes = (actBytes * b * s * h) / t;
  const p2p = p === 1 ? 0 : ppLink.latency + p2pBytes / (ppLink.bandwidth * ppLink.efficiency);
  const compute = mb * (fwd + bwd);
  // Per layer and micro-batch: the forward pass's communication twice under full recomputation.
  const perStep = (x: LayerComm, of: 'exposed' | 'comm' | 'slow'): number => {
    const [f, bw] = of === 'exposed' ? [x.fwd, x.bwd] : of === 'comm' ? [x.fwdComm, x.bwdComm] : [x.fwdSlow, x.bwdSlow];
    return mb * layersPerStage * (f * (cfg.recompute === 'full' ? 2 : 1) + bw);
  };
  const tpCommTotal = perStep(tpLayer, 'exposed');
  const tpCommRun = perStep(tpLayer, 'comm');
  const epCalls = mb * layersPerStage * (4 + (cfg.recompute === 'full' ? 2 : 0));
  const epCommTotal = perStep(epLayer, 'exposed');
  const epCommRun = perStep(epLayer, 'comm');
  const overlapSlowdownSeconds = perStep(tpLayer, 'slow') + perStep(epLayer, 'slow');
  // What the stage computes per pass over the step's micro-batches, for prefetched ZeRO-3 gathers.
  const stageFwd = mb * fwd, stageBwd = mb * bwd;
  // Interleaving: m·v chunk slots plus p−1 fill slots, each chunk slot sends once each way.
  const ppComm = p === 1 ? 0 : mb * v * 2 * p2p;
  let pipelineTotal: number, bubble: number, ppExposed: number;
  if (p > 1 && v > 1 && cfg.overlapPipelineComm) {
    // Transfers beside compute: only those the schedule waits on show (comm-overlap.ts); past the
    // closed form's range (a transfer longer than a chunk's pass) the schedule is simulated.
    const fc = fwd / v, bc = bwd / v;
    if (interleavedP2pClosedFormHolds(p2p, fc, bc)) ppExposed = exposedInterleavedP2p(p, v, p2p);
    else if (mb % p === 0) ppExposed = simulatePipeline({ schedule: 'interleaved-1f1b', stages: p, microBatches: mb, interleave: v, forward: fwd, backward: bwd, p2p }).stepTime - (mb * v + p - 1) * (fc + bc);
    else ppExposed = (mb * v + p - 1) * 2 * p2p; // an invalid interleaving: keep the blocking cost
    bubble = (p - 1) * (fc + bc);
    pipelineTotal = (mb * v + p - 1) * (fc + bc) + ppExposed;
  } else {
    const chunkSlot = (fwd + bwd) / v + 2 * p2p;
    pipelineTotal = p === 1 ? compute : (mb * v + p - 1) * chunkSlot;
    bubble = p === 1 ? 0 : (p - 1) * chunkSlot;
    ppExposed = ppComm;
    // Blocking transfers lengthen every pass of a micro-batch through the stage's chunks.
    fwd += v * p2p; bwd += v * p2p;
  }

  // --- data-parallel gradient reduction (+ ZeRO-3 parameter gathers), after the flush ---
  // Dense weights over all dp ranks; each expert over the dp/ep ranks that hold it (ep·t apart).
  const { dense, expert } = stageParamsPerDevice(m, cfg);
  const gradBytes = conv.bytesPerParam === 18 ? 4 : 2;
  const comms: CommCost[] = [];
  let dpComm = 0;
  const denseGroup = { ranks: cfg.dp, stride: t, kind: 'dp' as const, gather: 'zero3-gather' as const, shard: zeroShardRanks(cfg) };
  // Without EP every rank holds every expert: one reduction of all the weights, as for a dense model.
  const reduceGroups = ep === 1 ? [{ ...denseGroup, params: dense + expert }] : [
    { ...denseGroup, params: dense },
    { params: expert, ranks: cfg.dp / ep, stride: t * ep, kind: 'expert-dp' as const, gather: 'expert-zero3-gather' as const, shard: expertZeroShardRanks(cfg) },
  ];
  // Gradient reductions: one all-reduce per group after the flush, or (overlapGradReduce) buckets
  // reduced one after another while the last micro-batch's backward pass runs.
  let reduceSeconds = 0, buckets = 0, bucketSeconds = 0, hiddenGathers = 0;
  for (const g of reduceGroups) {
    if (g.params === 0 || g.ranks <= 1) continue;
    const link = groupLink(c, g.ranks, g.stride);
    const bytes = gradBytes * g.params;
    const ab = alphaBetaOf(link);
    if (!cfg.overlapGradReduce) {
      // ZeRO-1/2 replace the all-reduce with reduce-scatter + all-gather: the same volume (ZeRO §7).
      const ar = bestCollective('all-reduce', bytes, g.ranks, ab);
      reduceSeconds += ar.seconds;
      comms.push({ kind: g.kind, collective: 'all-reduce', algorithm: ar.algorithm, bytes, calls: 1, ranks: g.ranks, link: link.name, seconds: ar.seconds });
    } else {
      // Buckets reduced during the backward pass: all-reduces, or under ZeRO-1/2 reduce-scatters
      // whose updated weights are all-gathered after the optimizer step (not hidden here).
      const calls = Math.max(1, Math.ceil(bytes / gradientBucketBytes));
      const sharded = cfg.zero >= 1 && cfg.zero <= 2;
      const op = sharded ? 'reduce-scatter' : 'all-reduce';
      const bucket = bestCollective(op, bytes / calls, g.ranks, ab);
      reduceSeconds += calls * bucket.seconds;
      buckets += calls;
      bucketSeconds = Math.max(bucketSeconds, bucket.seconds);
      comms.push({ kind: g.kind, collective: op, algorithm: bucket.algorithm, bytes: bytes / calls, calls, ranks: g.ranks, link: link.name, seconds: calls * bucket.seconds });
      if (sharded) {
        const gather = bestCollective('all-gather', 2 * g.params, g.ranks, ab);
        dpComm += gather.seconds;
        comms.push({ kind: g.kind, collective: 'all-gather', algorithm: gather.algorithm, bytes: 2 * g.params, calls: 1, ranks: g.ranks, link: link.name, seconds: gather.seconds });
      }
    }
    if (cfg.zero === 3 && g.shard > 1) {
      // ZeRO-3 gathers the weights again in the forward and the backward pass: 1.5× DP volume.
      const gatherLink = groupLink(c, g.shard, g.stride);
      if (!cfg.overlapParamGather) {
        const ag = bestCollective('all-gather', 2 * g.params, g.shard, alphaBetaOf(gatherLink));
        dpComm += 2 * ag.seconds;
        comms.push({ kind: g.gather, collective: 'all-gather', algorithm: ag.algorithm, bytes: 2 * g.params, calls: 2, ranks: g.shard, link: gatherLink.name, seconds: 2 * ag.seconds });
      } else {
        // One gather per layer and pass, each issued while the layer before it computes.
        const units = Math.max(1, Math.round(layersPerStage));
        const ag = bestCollective('all-gather', (2 * g.params) / units, g.shard, alphaBetaOf(gatherLink));
        const exposed = exposedPrefetchedGathers(units, ag.seconds, stageFwd / units) + exposedPrefetchedGathers(units, ag.seconds, stageBwd / units);
        dpComm += exposed;
        hiddenGathers += 2 * units * ag.seconds - exposed;
        comms.push({ kind: g.gather, collective: 'all-gather', algorithm: ag.algorithm, bytes: (2 * g.params) / units, calls: 2 * units, ranks: g.shard, link: gatherLink.name, seconds: 2 * units * ag.seconds });
      }
    }
  }
  const exposedReduce = cfg.overlapGradReduce ? exposedBucketedReduction(buckets, bucketSeconds, bwd) : reduceSeconds;
  dpComm += exposedReduce;
  // The communication as run (overlapped or not): its exposed part is in `parts`, the rest hidden.
  if (epCall > 0) comms.push({ kind: 'ep', collective: 'all-to-all', algorithm: epChunk.algorithm, bytes: overlapEp ? epBytes / chunks : epBytes, calls: overlapEp ? epCalls * chunks : epCalls, ranks: ep, link: epLink.name, seconds: epCommRun });
  if (t > 1) comms.push({ kind: 'tp', collective: cfg.sequenceParallel ? 'reduce-scatter' : 'all-reduce', algorithm: overlapTp && cfg.sequenceParallel ? 'ring' : tpAlg, bytes: tpBytes, calls: mb * layersPerStage * (4 + (cfg.recompute === 'full' ? 2 : 0)), ranks: t, link: tpLink.name, seconds: tpCommRun });
  if (p > 1) comms.push({ kind: 'pp', collective: 'send-recv', algorithm: 'p2p', bytes: p2pBytes, calls: 2 * mb * v, ranks: 2, link: ppLink.name, seconds: ppComm });

  // --- optimizer: streams weights, grads and states once in and out of memory ---
  // The parameters this device updates: its ZeRO shard (dense and expert states shard over their own groups).
  const updated = cfg.zero >= 1 ? dense / zeroShardRanks(cfg) + expert / expertZeroShardRanks(cfg) : dense + expert;
  const stateBytes = (2 + gradBytes + optimizerBytesPerParam(cfg.optimizer)) * updated;
  let optimizer = (2 * stateBytes) / bw;
  if (cfg.offload !== 'none') {
    // ZeRO-Offload: gradients down and weights up over PCIe (~25 GB/s), Adam on the host (~100 GB/s).
    optimizer = ((gradBytes + 2) * (dense / zeroShardRanks(cfg) + expert / expertZeroShardRanks(cfg))) / 25e9 + (2 * stateBytes) / 100e9;
  }

  const seconds = pipelineTotal + dpComm + optimizer;
  const hidden = {
    dataParallel: reduceSeconds - exposedReduce + hiddenGathers,
    tensorParallel: tpCommRun - tpCommTotal,
    expertParallel: epCommRun - epCommTotal,
    // Beyond the closed form's range the simulated wait can exceed the transfers themselves.
    pipeline: Math.max(0, ppComm - ppExposed),
  };
  const flops = flopsPerStep(m, conv, cfg.globalBatch, cfg.recompute);
  const tokensPerSecond = (cfg.globalBatch * s) / seconds;
  const modelFlopsPerDevice = flops.model / seconds / n;
  const hardwareFlopsPerDevice = flops.hardware / seconds / n;
  return {
    seconds,
    forwardPerMicroBatch: fwd,
    backwardPerMicroBatch: bwd,
    microBatches: mb,
    bubbleSeconds: bubble,
    hiddenCommSeconds: hidden.dataParallel + hidden.tensorParallel + hidden.expertParallel + hidden.pipeline,
    hiddenCommByKind: hidden,
    overlapSlowdownSeconds,
    parts: {
      compute: compute - tpCommTotal - epCommTotal,
      tensorParallelComm: tpCommTotal,
      expertParallelComm: epCommTotal,
      pipelineComm: ppExposed,
      bubble: p === 1 ? 0 : bubble,
      dataParallelComm: dpComm,
      optimizer,
    },
    comms,
    tokensPerSecond,
    mfu: modelFlopsPerDevice / peak,
    hfu: hardwareFlopsPerDevice / peak,
    modelFlopsPerDevice,
    hardwareFlopsPerDevice,
    dtype,
    peakPerDevice: peak,
  };
}
