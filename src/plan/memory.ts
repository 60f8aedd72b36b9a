// Memory per device for training: model states (ZeRO, Rajbhandari et al. arXiv:1910.02054 §3.1,
// §5), activations (Korthikanti et al. arXiv:2205.05198 Table 2, generalised to GQA and gated
// MLPs the way Megatron's theoretical_memory_usage.py does) and temporary buffers (DeepSpeed's
// ZeRO-3 estimator, DDP buckets). parallel-anchors.md §3.
import type { Conventions } from './conventions.js';
import { expertSlotsPerToken, type TransformerSpec } from './model.js';
import { countParams } from './params.js';
import type { ParallelConfig, Optimizer } from './parallel-config.js';
import { expertZeroShardRanks, microBatchCount, zeroShardRanks } from './parallel-config.js';

export interface MemoryBreakdown {
  weights: number;
  gradients: number;
  optimizer: number;
  activations: number;
  /** Gathered ZeRO-3 layers, gradient buckets, the layer being recomputed, MoE all-to-all buffers. */
  temporary: number;
  total: number;
  /** Model states moved to host memory by offloading (not part of total). */
  hostOffloaded: number;
  /** Parameters held by the most loaded device before ZeRO sharding. */
  paramsPerDevice: number;
  /** Of paramsPerDevice, the MoE experts' share (experts/ep of each MoE layer's, over TP). */
  expertParamsPerDevice: number;
  /** Which pipeline stage the numbers describe (the most loaded one). */
  stage: 'first' | 'last' | 'only';
  /** Micro-batch-layers of activations held at the peak (see activationLayersInFlight). */
  layersInFlight: number;
}

export interface MemoryOptions {
  /** DDP gradient bucket (bucket_cap_mb, 25 MB by default: pytorch/pytorch#118421). Two are in flight. */
  gradientBucketBytes?: number;
}

/** Optimizer-state bytes per parameter, the K of ZeRO §3.1: Adam keeps fp32 master, m and v. */
export function optimizerBytesPerParam(opt: Optimizer): number {
  return opt === 'adam' ? 12 : opt === 'sgd-momentum' ? 8 : 4;
}

/** Bytes per sequence-position-hidden element (the coefficient of s·b·h) of one layer's stored
 * activations, split into the part that tensor parallelism shards and the part it replicates
 * (Korthikanti Table 2: 10 replicated + 24 sharded = 34 for a GPT layer; MHA, ffn = 4h). */
export function activationCoefficients(m: TransformerSpec): { replicated: number; sharded: number; scores: number } {
  const h = m.hidden;
  const qw = m.heads * m.headDim, kvw = m.kvHeads * m.headDim;
  const norms = m.parallelBlock ? 2 : 4; // inputs of each LayerNorm, 2 bytes
  // attention input 2 + attention dropout mask 1 + MLP input 2 + MLP dropout mask 1
  const replicated = norms + 6;
  // Q, K, V (2 bytes each, K and V narrower under GQA), softmax·V output feeding the out projection.
  const attention = (4 * qw + 4 * kvw) / h;
  // fc1 output + activation output (2 bytes each; 2·4 + 2·4 = 16 for ffn = 4h); gated MLPs also keep
  // the gate branch. An MoE layer keeps them for each expert slot a token fills (top-k × capacity
  // factor), plus the permuted copy of the token that each slot's expert reads (2 bytes × h).
  const slots = expertSlotsPerToken(m);
  const mlp = ((m.gatedMlp ? 6 : 4) * m.ffn) / h * slots + (m.moe === undefined ? 0 : 2 * slots);
  // softmax output 2 + dropout mask 1 + dropout output 2 bytes per score: 5·a·s / h.
  const scores = (5 * m.heads * m.seqLen) / h;
  return { replicated, sharded: attention + mlp, scores };
}

/** Stored activation bytes of one transformer layer for one micro-batch on one device. */
export function activationBytesPerLayer(m: TransformerSpec, c: Conventions, cfg: Pick<ParallelConfig, 'tp' | 'sequenceParallel' | 'recompute' | 'microBatch'>): number {
  const sbh = m.seqLen * cfg.microBatch * m.hidden;
  const t = cfg.tp;
  const replicatedDivisor = cfg.sequenceParallel ? t : 1;
  if (cfg.recompute === 'full') return (2 * sbh) / replicatedDivisor; // only the layer input
  const k = activationCoefficients(m);
  // Selective recomputation and flash attention both drop the s×s tensors.
  const scores = cfg.recompute === 'selective' || c.flashAttention ? 0 : k.scores;
  return sbh * (k.replicated / replicatedDivisor + (k.sharded + scores) / t);
}

/** Micro-batch-layers whose activations the most loaded pipeline stage holds at its peak.
 * 1F1B: the first stage holds min(p, m) micro-batches of L/p layers (Megatron §2.2.1);
 * interleaved (v ≥ 2): (v+1)p − 1 chunks of L/(pv) layers, i.e. L(1 + (p−1)/(pv)) (Korthikanti §4.2.3);
 * GPipe: all m micro-batches. */
export function activationLayersInFlight(m: TransformerSpec, cfg: ParallelConfig): number {
  const p = cfg.pp, L = m.layers, mb = microBatchCount(cfg);
  if (p === 1) return L;
  if (cfg.schedule === 'gpipe') return (mb * L) / p;
  if (cfg.interleave <= 1) return (Math.min(p, mb) * L) / p;
  const v = cfg.interleave;
  return (Math.min((v + 1) * p - 1, mb * v) * L) / (p * v);
}

export function memoryPerDevice(m: TransformerSpec, c: Conventions, cfg: ParallelConfig, opts: MemoryOptions = {}): MemoryBreakdown {
  const params = countParams(m);
  const t = cfg.tp, p = cfg.pp;
  const layersPerStage = m.layers / p;
  const sbh = m.seqLen * cfg.microBatch * m.hidden;
  const inFlight = activationLayersInFlight(m, cfg);
  const perLayerAct = activationBytesPerLayer(m, c, cfg);
  const spDiv = cfg.sequenceParallel ? t : 1;

  // Embedding on the first stage; the LM head on the last (Megatron keeps a copy of a tied
  // embedding on the last stage too, so both ends hold V·h when p > 1).
  const vocabParams = m.vocab * m.hidden;
  const first = { params: layersPerStage * params.perLayer + params.embedding + (p === 1 ? params.lmHead + params.finalNorm : 0), layers: inFlight };
  const lastHead = m.tiedEmbeddings ? vocabParams : params.lmHead;
  const stages: { stage: 'first' | 'last' | 'only'; params: number; actLayers: number; extraAct: number }[] = [];
  // Input-embedding dropout mask (1 byte) for each in-flight micro-batch; logits + final norm
  // output for the micro-batch being finished: 4sb(h + V)/t (Korthikanti §4.3).
  const inFlightMicroBatches = p === 1 ? 1 : Math.max(1, Math.round((inFlight * p) / m.layers));
  const embedAct = (sbh * inFlightMicroBatches) / spDiv;
  const outputAct = (4 * m.seqLen * cfg.microBatch * (m.hidden + m.vocab)) / t;
  if (p === 1) {
    stages.push({ stage: 'only', params: first.params, actLayers: inFlight, extraAct: embedAct + outputAct });
  } else {
    stages.push({ stage: 'first', params: first.params, actLayers: inFlight, extraAct: embedAct });
    stages.push({ stage: 'last', params: layersPerStage * params.perLayer + lastHead + params.finalNorm, actLayers: layersPerStage, extraAct: outputAct });
  }

  const gradBytes = c.bytesPerParam === 18 ? 4 : 2;
  const optBytes = optimizerBytesPerParam(cfg.optimizer);
  const shard = zeroShardRanks(cfg);
  if (!Number.isInteger(shard) || shard < 1) throw new Error(`zeroShardGroup must be a positive integer, got ${String(cfg.zeroShardGroup)}.`);
  const ep = cfg.ep;
  if (!Number.isInteger(ep) || ep < 1) throw new Error(`ep must be a positive integer, got ${String(ep)}.`);
  const expertShard = expertZeroShardRanks(cfg);
  // A device holds experts/ep of each MoE layer's experts; every other weight as without EP.
  const layerOnDevice = params.perLayer - params.expertsPerLayer + params.expertsPerLayer / ep;
  const largestLayerParams = Math.max(layerOnDevice, vocabParams) / t;
  const stageExpertParams = layersPerStage * params.expertsPerLayer;
  const bucket = opts.gradientBucketBytes ?? 25e6;
  // Expert parallelism: each MoE layer's dispatch all-to-all sends this device's token slots out
  // and receives as many back (send + receive buffers, 2 bytes per element; tokens split over TP
  // with sequence parallelism, as Megatron-Core requires for MoE with TP).
  const a2aBuffers = ep > 1 ? 2 * 2 * (m.seqLen * cfg.microBatch / spDiv) * expertSlotsPerToken(m) * m.hidden : 0;

  let best: MemoryBreakdown | undefined;
  for (const st of stages) {
    const expertP = stageExpertParams / (t * ep);
    const denseP = (st.params - stageExpertParams) / t;
    const P = denseP + expertP;
    // Dense states shard over the ZeRO group, expert states over its expert-data-parallel part.
    const sharded = denseP / shard + expertP / expertShard;
    let weights = 2 * P, gradients = gradBytes * P, optimizer = optBytes * P;
    if (cfg.zero >= 1) optimizer = optBytes * sharded;
    if (cfg.zero >= 2) gradients = gradBytes * sharded;
    if (cfg.zero >= 3) weights = 2 * sharded;
    let hostOffloaded = 0;
    if (cfg.offload !== 'none') { hostOffloaded += optimizer + gradients; optimizer = 0; gradients = 0; }
    if (cfg.offload === 'optimizer+params') { hostOffloaded += weights; weights = 0; }
    const activations = st.actLayers * perLayerAct + st.extraAct;
    let temporary = 0;
    // ZeRO-3 gathers a layer's fp16 weights and produces its fp16 gradient before reduce-scatter:
    // 4 bytes × the largest layer (DeepSpeed's estimate_zero3_model_states_mem_needs).
    if (cfg.zero === 3 || cfg.offload === 'optimizer+params') temporary += 4 * largestLayerParams;
    else if (shard > 1 || cfg.dp > 1) temporary += 2 * Math.min(bucket, gradients); // buckets in flight
    // Full recomputation rebuilds one layer's activations at a time during the backward pass.
    if (cfg.recompute === 'full') temporary += activationBytesPerLayer(m, c, { ...cfg, recompute: 'none' });
    temporary += a2aBuffers;
    const total = weights + gradients + optimizer + activations + temporary;
    const candidate: MemoryBreakdown = {
      weights, gradients, optimizer, activations, temporary, total, hostOffloaded,
      paramsPerDevice: P, expertParamsPerDevice: expertP, stage: st.stage, layersInFlight: st.actLayers,
    };
    if (best === undefined || candidate.total > best.total) best = candidate;
  }
  return best!;
}

/** ZeRO paper §5 / Fig. 1: model-state bytes per device for Ψ parameters, K = 12, N_d ranks. */
export function zeroModelStateBytes(psi: number, stage: 0 | 1 | 2 | 3, nd: number, k = 12): number {
  switch (stage) {
    case 0: return (2 + 2 + k) * psi;
    case 1: return 4 * psi + (k * psi) / nd;
    case 2: return 2 * psi + ((2 + k) * psi) / nd;
    case 3: return ((2 + 2 + k) * psi) / nd;
  }
}

export interface Zero3Estimate {
  /** Bytes per GPU. */
  gpu: number;
  /** Bytes of host memory per node. */
  cpu: number;
}

/** DeepSpeed's `estimate_zero3_model_states_mem_needs` (deepspeed/runtime/zero/stage3.py, PR
 * deepspeedai/DeepSpeed#965): model states under ZeRO-3 with 18 B/param, the largest layer
 * gathered in fp16 with its gradient (4 B/param), and a 1.5× host buffer factor. */
export function deepspeedZero3Estimate(
  params: number, largestLayerParams: number, gpusPerNode: number, nodes: number,
  offload: { params: boolean; optimizer: boolean }, zeroInit = true,
): Zero3Estimate {
  const gpus = gpusPerNode * nodes;
  const largest = 4 * largestLayerParams;
  if (offload.params && offload.optimizer) {
    return { gpu: largest, cpu: 18 * params * 1.5 / nodes };
  }
  if (offload.optimizer) {
    return { gpu: largest + (2 * params) / gpus, cpu: 16 * params * 1.5 / nodes };
  }
  // Without zero.Init every process first materialises the whole fp32 model on the host.
  return { gpu: largest + (18 * params) / gpus, cpu: (zeroInit ? largestLayerParams : params) * 4 * gpusPerNode * 1.5 };
}
